"""A disk cache of frozen-encoder features: extract once, train many heads.

With a frozen SSL encoder, the encoder's forward pass is almost all the cost of
an epoch, and it gives the same features every epoch. :class:`FeatureCache`
runs it once per clip and stores the result compactly:

* **float16, unpadded**: each clip keeps its own number of frames (no padding
  to the longest clip), half the bytes of float32 and a quarter of float64;
* **sharded**: clips are appended to shards of a few hundred MB
  (``safetensors`` files, read by slices through a memory map), each with a
  JSON index (``id -> offset, frames, audio file signature``), merged into
  ``index.json``;
* **atomic, resumable and safe to share**: a shard and its index are written
  with :func:`emoshare_sb.utils.io.atomic_write` (complete or absent, data
  before index), so after a kill the finished shards are reused and only the
  clips of the unfinished shard are extracted again; shards are write-once
  and named by their builder, so runs building the same cache at the same
  time do not harm each other (:mod:`.storage`);
* **distributed**: under ``torchrun`` (``torch.distributed`` initialised) each
  process extracts its share of the clips, balanced by duration;
* **self-invalidating**: the cache lives in a sub-folder named by a hash of
  everything that changes the features (encoder architecture and weights,
  layer selection, sample rate, extraction chunking, storage dtype); each entry
  also records its audio file's path, size and modification time, so a changed
  audio file is re-extracted and nothing else is.

Features are stored whole-clip. Training crops (``train_window``) are taken
from the cached frames (:meth:`FeatureCache.dynamic_item`), which is exactly
the same as encoding the cropped waveform when the clip fits the window (or
``train_window`` is 0), and an approximation otherwise: the cached frames of a
long clip were computed with self-attention over the whole clip, whereas
encoding a crop lets the encoder see only the crop.

Extraction encodes clips in length-sorted padded batches. This gives each
clip exactly the features it gets when encoded alone, because the
wav2vec2-family models mask padding in attention, and the group-normalised
convolutional front-end of the Base models (whose statistics would otherwise
include the padding) is made padding-invariant by :func:`padding_invariant`.
Encoders of unknown structure are encoded one clip at a time.

In a recipe (every process under ``torchrun``, after the Brain has put the
encoder on its device)::

    cache = FeatureCache(hparams["feature_cache_folder"], hparams["encoder"])
    cache.build([train_csv, devel_csv, test_csv], device=brain.device)
    train_item = cache.dynamic_item(
        train_window=hparams["train_window"]
    )  # "feats"
    ...
    features, lens = batch.feats  # in compute_forward
    embeddings = pooling(to_encoder_layout(features), lens)

The package is split by responsibility: :mod:`.fingerprint` (what the
features depend on), :mod:`.storage` (shards, indexes, builder locks),
:mod:`.extraction` (batched and bounded encoding, also used for inference
and evaluation), :mod:`.building` (each process's share, written to shards),
:mod:`.lookup` (the per-clip SpeechBrain ``CachedDynamicItem``),
:mod:`.items` (manifests) and :mod:`.cache` (:class:`FeatureCache`).

Authors
 * emoshare_sb contributors 2026
"""

from emoshare_sb.training.feature_cache.cache import (
    FORMAT_VERSION,
    FeatureCache,
)
from emoshare_sb.training.feature_cache.extraction import (
    default_batch_seconds,
    encode_batch,
    encode_clips,
    encode_padded_bounded,
    length_batches,
    split_chunks,
)
from emoshare_sb.training.feature_cache.fingerprint import (
    encoder_fingerprint,
    frames_for_samples,
    state_dict_sha256,
)
from emoshare_sb.training.feature_cache.items import (
    read_manifest_items,
    to_encoder_layout,
)
from emoshare_sb.training.feature_cache.lookup import CachedFeatures

__all__ = [
    "FORMAT_VERSION",
    "CachedFeatures",
    "FeatureCache",
    "default_batch_seconds",
    "encode_batch",
    "encode_clips",
    "encode_padded_bounded",
    "encoder_fingerprint",
    "frames_for_samples",
    "length_batches",
    "read_manifest_items",
    "split_chunks",
    "state_dict_sha256",
    "to_encoder_layout",
]
