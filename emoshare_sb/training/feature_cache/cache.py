"""The feature cache: which clips to extract, by which process, and reading them back.

:class:`FeatureCache` ties the parts of this package together: the settings
fingerprint (:mod:`.fingerprint`) names the folder, the store
(:mod:`.storage`) keeps the shards, the extraction helpers
(:mod:`.extraction`) encode in length-sorted batches, and
:class:`~.lookup.CachedFeatures` reads a clip back in a SpeechBrain pipeline.

Authors
 * emoshare_sb contributors 2026
"""

import os

import torch
from speechbrain.utils.logger import get_logger

from emoshare_sb.data.audio import SAMPLE_RATE
from emoshare_sb.data.files import audio_signature
from emoshare_sb.training.feature_cache.building import (
    STORAGE_DTYPES,
    CacheBuilder,
)
from emoshare_sb.training.feature_cache.fingerprint import (
    cache_settings,
    conv_layout,
    frames_for_samples,
)
from emoshare_sb.training.feature_cache.items import normalise_items
from emoshare_sb.training.feature_cache.lookup import CachedFeatures
from emoshare_sb.training.feature_cache.storage import ShardStore

logger = get_logger(__name__)

# Bump when the on-disk layout or the meaning of stored features changes.
FORMAT_VERSION = 1


class FeatureCache:
    """Frozen-encoder features on disk: float16, unpadded, sharded, indexed.

    See the package docstring (:mod:`emoshare_sb.training.feature_cache`).

    Arguments
    ---------
    folder : str
        The cache root. Each distinct encoder/settings combination gets its
        own sub-folder (named by a hash of the settings), so switching between
        configurations reuses earlier extractions.
    encoder : torch.nn.Module
        A frozen encoder called as ``encoder(wavs, wav_lens)`` returning
        ``[B, T, C]`` or ``[L, B, T, C]`` (e.g.
        :class:`emoshare_sb.lobes.ssl.SSLEncoder`, whose ``layer`` option is
        part of the fingerprint: ``layer="all"`` caches every hidden state for
        a learned layer mix).
    layers : list of int, optional
        With an encoder returning all hidden states, keep only these (e.g.
        ``[6, 12]`` for a sweep over two layers). ``None`` keeps what the
        encoder returns.
    sample_rate : int
        Audio is read (and resampled) at this rate.
    chunk_seconds : float, optional
        Encode clips longer than this in consecutive chunks (bounded memory
        on very long recordings). ``None`` encodes whole clips.
    dtype : str
        ``"float16"`` (default), ``"bfloat16"`` or ``"float32"`` on disk.
    shard_size_mb : float
        Target size of a shard; also the most work lost to a kill.
    encoder_id : str, optional
        Extra text to put in the fingerprint (anything else that changes the
        features).

    Example
    -------
    >>> from emoshare_sb.lobes.ssl import SSLEncoder
    >>> from emoshare_sb.synthetic import (
    ...     make_compare23_corpus,
    ...     make_tiny_ssl_model,
    ... )
    >>> tmp = getfixture("tmpdir")
    >>> encoder = SSLEncoder(make_tiny_ssl_model(str(tmp / "tiny")), str(tmp))
    >>> corpus = make_compare23_corpus(str(tmp / "corpus"), 3, 0, 0)
    >>> items = [
    ...     ("a", corpus + "/wav/00001.wav"),
    ...     ("b", corpus + "/wav/00002.wav"),
    ... ]
    >>> cache = FeatureCache(str(tmp / "cache"), encoder)
    >>> cache.build(items, progress=False)["extracted"]
    2
    >>> cache.load("a").shape[1:], cache.load("a").dtype
    (torch.Size([32]), torch.float32)
    >>> FeatureCache(str(tmp / "cache"), encoder).build(items, progress=False)[
    ...     "extracted"
    ... ]
    0
    """

    def __init__(
        self,
        folder,
        encoder,
        layers=None,
        sample_rate=SAMPLE_RATE,
        chunk_seconds=None,
        dtype="float16",
        shard_size_mb=256.0,
        encoder_id=None,
    ):
        if getattr(encoder, "freeze", True) is False:
            raise ValueError(
                "FeatureCache needs a frozen encoder (freeze=True): the features of "
                "an encoder that is being trained change at every step"
            )
        if dtype not in STORAGE_DTYPES:
            raise ValueError(
                f"dtype must be one of {sorted(STORAGE_DTYPES)}, got {dtype!r}"
            )
        self.encoder = encoder
        self.layers = (
            None if layers is None else [int(layer) for layer in layers]
        )
        self.sample_rate = int(sample_rate)
        self.chunk_seconds = chunk_seconds
        self.dtype = dtype
        self.shard_bytes = int(shard_size_mb * 2**20)
        self.conv_layout = conv_layout(encoder)
        self.settings, self.key = cache_settings(
            encoder,
            encoder_id,
            layers=self.layers,
            sample_rate=self.sample_rate,
            chunk_seconds=chunk_seconds,
            dtype=dtype,
            conv_layout=self.conv_layout,
            format_version=FORMAT_VERSION,
        )
        self.root = os.fspath(folder)
        self.folder = os.path.join(self.root, self.key)
        self.store = ShardStore(self.folder, self.key)

    # ---------------------------------------------------------------- reading
    @property
    def entries(self):
        """``{id: {"shard", "offset", "frames", "num_samples", "audio"}}``."""
        return self.store.entries

    def refresh(self):
        """Re-reads the index from disk (after another process extracted)."""
        self.store.refresh()

    def __contains__(self, clip_id):
        return clip_id in self.entries

    def __len__(self):
        return len(self.entries)

    def has(self, clip_id):
        """Whether ``clip_id`` is cached, re-reading the index once on a miss.

        Arguments
        ---------
        clip_id : str

        Returns
        -------
        bool
        """
        if clip_id not in self.entries:
            self.refresh()  # another process may have added it since
        return clip_id in self.entries

    def load(self, clip_id, dtype=torch.float32):
        """The cached features of one clip, time first.

        Arguments
        ---------
        clip_id : str
            The clip's ID (the manifest's ``ID`` column).
        dtype : torch.dtype
            Returned dtype (stored values are float16 by default).

        Returns
        -------
        torch.Tensor
            ``[T, C]``, or ``[T, L, C]`` when several layers are cached.

        Raises
        ------
        KeyError
            When the clip has not been extracted.
        """
        if not self.has(clip_id):
            raise KeyError(
                f"clip '{clip_id}' is not in the feature cache {self.folder}: "
                "run FeatureCache.build() on its manifest first"
            )
        return self.store.read(clip_id).to(dtype)

    def num_frames(self, num_samples):
        """Encoder frames for an input of ``num_samples`` samples.

        Arguments
        ---------
        num_samples : int
            Samples at ``sample_rate``.

        Returns
        -------
        int
        """
        if self.conv_layout is None:
            raise ValueError(
                "this encoder has no wav2vec2-style conv_kernel/conv_stride config, "
                "so its frame rate is unknown: cropping cached features needs it"
            )
        return frames_for_samples(num_samples, self.conv_layout)

    def disk_bytes(self):
        """Bytes used on disk by this configuration's shards and indexes.

        Returns
        -------
        int
        """
        return self.store.disk_bytes()

    def dynamic_item(self, train_window=0.0, takes="id", provides="feats"):
        """A SpeechBrain dynamic item: clip id -> cached features.

        Arguments
        ---------
        train_window : float
            Seconds; > 0 takes a random crop of that many frames' worth (as
            ``random_crop`` does on waveforms). Exactly the features of the
            encoded crop when a clip fits the window; for longer clips the
            cached frames saw the whole clip through self-attention.
        takes : str
            The key holding the clip id (``"id"``, as SpeechBrain's
            ``CachedDynamicItem`` requires).
        provides : str
            The key to provide.

        Returns
        -------
        CachedFeatures
            A ``speechbrain.utils.data_pipeline.CachedDynamicItem`` for
            ``DynamicItemDataset(..., dynamic_items=[...])``; batches hold
            ``PaddedBatch`` ``(features, relative_lengths)`` padded along time.
        """
        if takes != "id":
            raise ValueError(f"the clip id key must be 'id', got {takes!r}")
        window_frames = 0
        if train_window and train_window > 0:
            # int(), as the recipe computes its waveform window.
            window_frames = self.num_frames(
                int(train_window * self.sample_rate)
            )
        return CachedFeatures(self, window_frames, provides)

    def __getstate__(self):
        # For DataLoader workers started with spawn: reading needs no encoder
        # (so it is not copied into every worker).
        state = dict(self.__dict__)
        state["encoder"] = None
        return state

    # -------------------------------------------------------------- extraction
    def pending(self, items):
        """The items whose features are missing or stale (audio file changed).

        Arguments
        ---------
        items : list of str or list of tuple
            Manifest CSV paths, or ``(id, wav[, duration])`` tuples.

        Returns
        -------
        list of tuple
            ``(id, wav, duration)`` to extract.
        """
        self.refresh()
        stale = []
        for clip_id, wav, duration in normalise_items(items):
            entry = self.entries.get(clip_id)
            if entry is None or entry.get("audio") != audio_signature(wav):
                stale.append((clip_id, wav, duration))
        return stale

    def build(
        self,
        items,
        batch_seconds=None,
        num_workers=0,
        device=None,
        shard_index=None,
        num_shards=None,
        progress=True,
    ):
        """Extracts the features of every item not cached yet (or stale).

        Call it on every process under ``torchrun`` (not inside
        ``run_on_main``): each process extracts its share, then all wait for
        each other and the merged ``index.json`` is written by the main
        process. For separate jobs without ``torch.distributed``, pass
        ``shard_index``/``num_shards``; the last job to finish completes the
        index. Separate runs building the same cache at the same time are
        safe (write-once shards, see :mod:`.storage`).

        Arguments
        ---------
        items : list of str or list of tuple
            Manifest CSV paths (``ID``, ``wav``, optional ``duration``
            columns), or ``(id, wav_path[, duration])`` tuples.
        batch_seconds : float, optional
            Padded audio per forward pass (clips are sorted by length).
            Default: :func:`default_batch_seconds` for the device (one clip
            at a time on CPU, where batching was measured to be slower).
        num_workers : int
            DataLoader workers reading audio.
        device : str or torch.device, optional
            Defaults to the encoder's device.
        shard_index, num_shards : int, optional
            This process's share; default from ``torch.distributed``.
        progress : bool
            Show a progress bar.

        Returns
        -------
        dict
            ``requested``, ``extracted`` (by this process), ``missing``
            (still not cached, e.g. other jobs' shares) and ``seconds``.
        """
        return CacheBuilder(self).build(
            items,
            batch_seconds=batch_seconds,
            num_workers=num_workers,
            device=device,
            shard_index=shard_index,
            num_shards=num_shards,
            progress=progress,
        )
