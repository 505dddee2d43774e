"""The per-clip lookup of cached features, as a SpeechBrain cached dynamic item.

:class:`CachedFeatures` is a
:class:`speechbrain.utils.data_pipeline.CachedDynamicItem`: a dynamic item
whose result for an ``id`` comes from storage when it is there. SpeechBrain's
class stores one ``torch.save`` file per id and computes a missing item on
the spot; what it lacks for frozen-encoder features, and what is kept here:

* the storage is :class:`~emoshare_sb.training.feature_cache.storage.ShardStore`
  (float16, unpadded, a few large memory-mapped shards instead of one file
  per clip, validated by the encoder's fingerprint and each audio file's
  signature);
* items are extracted beforehand in batches, and shared between processes,
  by :meth:`FeatureCache.build`, not one clip at a time inside a DataLoader
  worker (which has no encoder): a missing clip is an error that says to
  build the cache;
* a random training crop is cut from the stored frames after loading.

The overridden ``_is_cached`` and ``_load`` are the storage hooks
``CachedDynamicItem.__call__`` is written around (it has no public ones); no
other behaviour of the parent is changed.

Authors
 * emoshare_sb contributors 2026
"""

from speechbrain.utils.data_pipeline import CachedDynamicItem

from emoshare_sb.data.audio import random_crop


class CachedFeatures(CachedDynamicItem):
    """Clip id -> cached features ``[T, C]`` (or ``[T, L, C]``), optionally cropped.

    Picklable (for DataLoader workers): it holds the cache, which pickles
    without its encoder and open shards.

    Arguments
    ---------
    cache : emoshare_sb.training.feature_cache.FeatureCache
        The cache to read.
    window_frames : int
        Random crop length in frames; 0 keeps the whole clip.
    provides : str
        The key to provide.
    """

    def __init__(self, cache, window_frames=0, provides="feats"):
        super().__init__(
            cache.folder,
            takes=["id"],
            func=self.not_cached,
            provides=[provides],
        )
        self.cache = cache
        self.window_frames = window_frames

    def not_cached(self, clip_id):
        """Called for a clip that is not in the cache: says how to fix it.

        Arguments
        ---------
        clip_id : str
            The clip.

        Raises
        ------
        KeyError
        """
        raise KeyError(
            f"clip '{clip_id}' is not in the feature cache {self.cache.folder}: "
            "run FeatureCache.build() on its manifest first"
        )

    def _is_cached(self, uid):
        """Whether the clip is in the cache (re-reading the index on a miss)."""
        return self.cache.has(uid)

    def _load(self, uid):
        """The clip's float32 features, randomly cropped to the window."""
        return random_crop(self.cache.load(uid), self.window_frames)
