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
* **atomic and resumable**: a shard and its index are written with
  :func:`emoshare_sb.utils.io.atomic_write` (complete or absent, data before index),
  so after a kill the finished shards are reused and only the clips of the
  unfinished shard are extracted again;
* **distributed**: under ``torchrun`` (``torch.distributed`` initialised) each
  process extracts its share of the clips, balanced by duration;
* **self-invalidating**: the cache lives in a sub-folder named by a hash of
  everything that changes the features (encoder architecture and weights,
  layer selection, sample rate, extraction chunking, storage dtype); each entry
  also records its audio file's path, size and modification time, so a changed
  audio file is re-extracted and nothing else is.

Why a content hash of the weights rather than the model folder's file
size/mtime: the encoder may come from the hub cache, a copy, or a fine-tuned
checkpoint loaded in memory; hashing the ``state_dict`` catches all of them
and costs about 0.3 s per GB here (SHA-256), negligible next to extraction.

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

Authors
 * emoshare_sb contributors 2026
"""

import contextlib
import csv
import glob
import hashlib
import json
import math
import os
import re
import time

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_save
from speechbrain.utils import distributed as sb_distributed
from speechbrain.utils.data_pipeline import DynamicItem
from speechbrain.utils.logger import get_logger

from emoshare_sb.data.audio import (
    MIN_SAMPLES,
    SAMPLE_RATE,
    audio_info,
    random_crop,
    read_audio,
)
from emoshare_sb.lobes.padding import padding_invariant
from emoshare_sb.utils.io import atomic_write, write_json

logger = get_logger(__name__)

# Bump when the on-disk layout or the meaning of stored features changes.
FORMAT_VERSION = 1

_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
}
_SHARD_RE = re.compile(r"^shard-r(\d+)-(\d+)\.json$")
# Encoder attributes that change what the encoder returns for the same weights.
_ENCODER_OPTIONS = (
    "layer",
    "output_norm",
    "normalize_wav",
    "output_all_hiddens",
)
# HF config keys that do not change the computation (names, bookkeeping).
_VOLATILE_CONFIG_KEYS = (
    "transformers_version",
    "architectures",
    "output_hidden_states",
)


def state_dict_sha256(module):
    """SHA-256 of a module's parameters and buffers (names, dtypes, shapes, bytes).

    Arguments
    ---------
    module : torch.nn.Module
        Any module.

    Returns
    -------
    str
        Hex digest; identical weights give identical digests wherever they
        were loaded from.

    Example
    -------
    >>> a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    >>> _ = b.load_state_dict(a.state_dict())
    >>> state_dict_sha256(a) == state_dict_sha256(b)
    True
    >>> with torch.no_grad():
    ...     b.bias[0] += 1e-3
    >>> state_dict_sha256(a) == state_dict_sha256(b)
    False
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        # A uint8 view of any dtype (bfloat16 included) exposes the raw bytes
        # without a copy.
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _hf_model(encoder):
    """The HuggingFace model inside an SSL lobe (or the encoder itself), or None."""
    model = getattr(encoder, "model", encoder)
    return model if hasattr(model, "config") else None


def _conv_layout(encoder):
    """``[[kernel, stride], ...]`` of a wav2vec2-family front-end, or None."""
    model = _hf_model(encoder)
    config = getattr(model, "config", None)
    kernels = getattr(config, "conv_kernel", None)
    strides = getattr(config, "conv_stride", None)
    if kernels is None or strides is None:
        return None
    return [[int(k), int(s)] for k, s in zip(kernels, strides, strict=True)]


def frames_for_samples(num_samples, conv_layout):
    """Number of encoder frames for ``num_samples`` input samples.

    Arguments
    ---------
    num_samples : int or torch.Tensor
        Input lengths in samples.
    conv_layout : list of [kernel, stride]
        The convolutional front-end (``conv_kernel``/``conv_stride`` of the
        wav2vec2-family configs).

    Returns
    -------
    int or torch.Tensor
        Frames (0 when the input is shorter than the receptive field).

    Example
    -------
    >>> layout = [[10, 5]] + [[3, 2]] * 4 + [[2, 2]] * 2
    >>> frames_for_samples(16000, layout), frames_for_samples(88000, layout)
    (49, 274)
    """
    frames = num_samples
    for kernel, stride in conv_layout:
        frames = (frames - kernel) // stride + 1
    if isinstance(frames, torch.Tensor):
        return frames.clamp(min=0)
    return max(int(frames), 0)


def encoder_fingerprint(encoder, encoder_id=None):
    """Everything about an encoder that changes the features it returns.

    Arguments
    ---------
    encoder : torch.nn.Module
        The encoder (e.g. :class:`emoshare_sb.lobes.ssl.SSLEncoder`).
    encoder_id : str, optional
        Anything else the caller knows changes the features.

    Returns
    -------
    dict
        JSON-serialisable: class, architecture config, weights hash, options.

    Example
    -------
    >>> fingerprint = encoder_fingerprint(torch.nn.Linear(2, 2))
    >>> sorted(fingerprint)
    ['class', 'config', 'id', 'options', 'weights_sha256']
    """
    model = _hf_model(encoder)
    config = None
    if model is not None and hasattr(model.config, "to_dict"):
        config = {
            key: value
            for key, value in model.config.to_dict().items()
            if not key.startswith("_") and key not in _VOLATILE_CONFIG_KEYS
        }
    options = {
        name: getattr(encoder, name)
        for name in _ENCODER_OPTIONS
        if hasattr(encoder, name)
    }
    return {
        "class": f"{type(encoder).__module__}.{type(encoder).__qualname__}",
        "config": config,
        "weights_sha256": state_dict_sha256(encoder),
        "options": options,
        "id": encoder_id,
    }


def audio_signature(path):
    """``{"path", "size", "mtime_ns"}`` of an audio file: changes when it does.

    Arguments
    ---------
    path : str
        The audio file.

    Returns
    -------
    dict
        Absolute path, size in bytes and modification time in nanoseconds.

    Example
    -------
    >>> path = getfixture("tmpdir") / "a.wav"
    >>> _ = path.write_binary(b"1234")
    >>> audio_signature(str(path))["size"]
    4
    """
    stat = os.stat(path)
    return {
        "path": os.path.abspath(path),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }


def to_encoder_layout(features):
    """Turns a padded batch of cached features into the encoder's output layout.

    Cached clips are time-first (``[T, C]`` or ``[T, L, C]``) so that
    SpeechBrain pads them along time; the encoder returns ``[B, T, C]`` or,
    for all layers, ``[L, B, T, C]``.

    Arguments
    ---------
    features : torch.Tensor
        ``[B, T, C]`` or ``[B, T, L, C]``.

    Returns
    -------
    torch.Tensor
        ``[B, T, C]`` or ``[L, B, T, C]``.

    Example
    -------
    >>> to_encoder_layout(torch.zeros(2, 7, 13, 4)).shape
    torch.Size([13, 2, 7, 4])
    >>> to_encoder_layout(torch.zeros(2, 7, 4)).shape
    torch.Size([2, 7, 4])
    """
    if features.ndim == 4:
        return features.permute(2, 0, 1, 3)
    return features


def read_manifest_items(
    csv_paths, id_field="ID", wav_field="wav", duration_field="duration"
):
    """``(id, wav, duration)`` of every row of SpeechBrain CSV manifests.

    Arguments
    ---------
    csv_paths : list of str
        Manifests (e.g. those :func:`emoshare_sb.data.compare23.prepare_compare23` writes).
    id_field, wav_field, duration_field : str
        Column names; a missing duration column gives ``None`` durations.

    Returns
    -------
    list of tuple
        ``(id, wav_path, duration_seconds_or_None)``.

    Example
    -------
    >>> path = getfixture("tmpdir") / "train.csv"
    >>> _ = path.write_text(
    ...     "ID,duration,wav,Anger\\na,1.5,/x/a.wav,0.2\\n", "utf-8"
    ... )
    >>> read_manifest_items([str(path)])
    [('a', '/x/a.wav', 1.5)]
    """
    items = []
    for csv_path in csv_paths:
        with open(csv_path, newline="") as handle:
            for row in csv.DictReader(handle):
                duration = row.get(duration_field)
                items.append(
                    (
                        row[id_field],
                        row[wav_field],
                        float(duration) if duration else None,
                    )
                )
    return items


def _normalise_items(items):
    """Accepts manifest paths or ``(id, wav[, duration])`` tuples; drops duplicates."""
    if isinstance(items, str | os.PathLike):
        items = [items]  # one manifest
    items = list(items)
    if items and isinstance(items[0], str | os.PathLike):
        items = read_manifest_items([os.fspath(p) for p in items])
    unique = {}
    for item in items:
        clip_id, wav = str(item[0]), os.fspath(item[1])
        duration = item[2] if len(item) > 2 else None
        if clip_id in unique and os.path.abspath(
            unique[clip_id][1]
        ) != os.path.abspath(wav):
            raise ValueError(
                f"clip id '{clip_id}' names two audio files: '{unique[clip_id][1]}' and "
                f"'{wav}'; ids must be unique within a feature cache"
            )
        unique.setdefault(clip_id, (clip_id, wav, duration))
    return list(unique.values())


def _distributed_shard():
    """``(index, count)`` of this process among those sharing the extraction."""
    if (
        not sb_distributed.is_distributed_initialized()
        or sb_distributed.MAIN_PROC_ONLY >= 1
    ):
        # Inside run_on_main the other processes do not take part: do it all.
        return 0, 1
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


class CachedFeatures:
    """Loads one clip's cached features, optionally randomly cropped (picklable).

    Wrapped in a SpeechBrain :class:`DynamicItem` by
    :meth:`FeatureCache.dynamic_item`.

    Arguments
    ---------
    cache : FeatureCache
        The cache to read.
    window_frames : int
        Random crop length in frames; 0 keeps the whole clip.
    """

    def __init__(self, cache, window_frames=0):
        self.cache = cache
        self.window_frames = window_frames

    def __call__(self, clip_id):
        """Returns ``[T, C]`` or ``[T, L, C]`` float32 features of ``clip_id``."""
        return random_crop(self.cache.load(clip_id), self.window_frames)


class FeatureCache:
    """Frozen-encoder features on disk: float16, unpadded, sharded, indexed.

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
        if dtype not in _DTYPES:
            raise ValueError(
                f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}"
            )
        self.encoder = encoder
        self.layers = (
            None if layers is None else [int(layer) for layer in layers]
        )
        self.sample_rate = int(sample_rate)
        self.chunk_seconds = chunk_seconds
        self.dtype = dtype
        self.shard_bytes = int(shard_size_mb * 2**20)
        self.conv_layout = _conv_layout(encoder)
        settings = {
            "format": FORMAT_VERSION,
            "encoder": encoder_fingerprint(encoder, encoder_id),
            # transformers 5 changed which hidden state pre-norm models return
            # as the last layer; major versions may change features.
            "transformers_major": _transformers_major(),
            "layers": self.layers,
            "sample_rate": self.sample_rate,
            "chunk_seconds": chunk_seconds,
            "dtype": dtype,
            "conv_layout": self.conv_layout,
        }
        # A JSON round trip turns config values such as torch dtypes into text.
        self.settings = json.loads(json.dumps(settings, default=str))
        canonical = json.dumps(self.settings, sort_keys=True, default=str)
        self.key = hashlib.sha256(canonical.encode()).hexdigest()[:16]
        self.root = os.fspath(folder)
        self.folder = os.path.join(self.root, self.key)
        self._entries = None
        self._handles = {}

    # ------------------------------------------------------------------ index
    def _shard_names(self):
        names = []
        for path in glob.glob(os.path.join(self.folder, "shard-r*-*.json")):
            if _SHARD_RE.match(os.path.basename(path)):
                names.append(os.path.basename(path)[: -len(".json")])
        return sorted(names)

    def _merge_shard_indexes(self, names):
        """Entries of all finished shards; the newest shard wins for an id."""
        shards = []
        for name in names:
            with open(os.path.join(self.folder, name + ".json")) as handle:
                shards.append(json.load(handle))
        shards.sort(key=lambda shard: (shard["created_ns"], shard["shard"]))
        entries = {}
        for shard in shards:
            for clip_id, entry in shard["entries"].items():
                entries[clip_id] = {**entry, "shard": shard["shard"]}
        return entries

    def refresh(self):
        """Re-reads the index from disk (after another process extracted)."""
        names = self._shard_names()
        index_path = os.path.join(self.folder, "index.json")
        if os.path.exists(index_path):
            with open(index_path) as handle:
                index = json.load(handle)
            if index.get("shards") == names:
                self._entries = index["entries"]
                return
        self._entries = self._merge_shard_indexes(names)

    def _write_index(self):
        names = self._shard_names()
        self._entries = self._merge_shard_indexes(names)
        write_json(
            os.path.join(self.folder, "index.json"),
            {"key": self.key, "shards": names, "entries": self._entries},
        )

    @property
    def entries(self):
        """``{id: {"shard", "offset", "frames", "num_samples", "audio"}}``."""
        if self._entries is None:
            self.refresh()
        return self._entries

    def __contains__(self, clip_id):
        return clip_id in self.entries

    def __len__(self):
        return len(self.entries)

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
        return sum(
            os.path.getsize(path)
            for path in glob.glob(os.path.join(self.folder, "*"))
            if os.path.isfile(path)
        )

    # ---------------------------------------------------------------- reading
    def _shard(self, name):
        handle = self._handles.get(name)
        if handle is None:
            handle = safe_open(
                os.path.join(self.folder, name + ".safetensors"), framework="pt"
            )
            self._handles[name] = handle
        return handle

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
        entry = self.entries.get(clip_id)
        if entry is None:
            self.refresh()  # another process may have added it since
            entry = self.entries.get(clip_id)
        if entry is None:
            raise KeyError(
                f"clip '{clip_id}' is not in the feature cache {self.folder}: "
                "run FeatureCache.build() on its manifest first"
            )
        offset, frames = entry["offset"], entry["frames"]
        features = self._shard(entry["shard"]).get_slice("features")[
            offset : offset + frames
        ]
        return features.to(dtype)

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
            The key holding the clip id.
        provides : str
            The key to provide.

        Returns
        -------
        speechbrain.utils.data_pipeline.DynamicItem
            For ``DynamicItemDataset(..., dynamic_items=[...])``; batches hold
            ``PaddedBatch`` ``(features, relative_lengths)`` padded along time.
        """
        window_frames = 0
        if train_window and train_window > 0:
            # int(), as the recipe computes its waveform window.
            window_frames = self.num_frames(
                int(train_window * self.sample_rate)
            )
        return DynamicItem(
            takes=[takes],
            func=CachedFeatures(self, window_frames),
            provides=[provides],
        )

    def __getstate__(self):
        # For DataLoader workers started with spawn: open memory maps do not
        # pickle (each process reopens its shards lazily), and reading needs
        # no encoder (so it is not copied into every worker).
        state = dict(self.__dict__)
        state["_handles"] = {}
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
        for clip_id, wav, duration in _normalise_items(items):
            entry = self._entries.get(clip_id)
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
        index.

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
        start = time.perf_counter()
        items = _normalise_items(items)
        if shard_index is None or num_shards is None:
            shard_index, num_shards = _distributed_shard()
        os.makedirs(self.folder, exist_ok=True)
        settings_path = os.path.join(self.folder, "settings.json")
        if not os.path.exists(settings_path):
            write_json(settings_path, self.settings)
        self._remove_own_leftovers(shard_index)

        # Assign by position in a duration-sorted list of *all* items, so
        # every process agrees on the split whatever it finds already cached.
        order = sorted(items, key=lambda item: (-(item[2] or 0.0), item[0]))
        mine = {item[0] for item in order[shard_index::num_shards]}
        todo = [item for item in self.pending(items) if item[0] in mine]
        logger.info(
            "Feature cache %s: %d clips requested, %d to extract by process %d/%d",
            self.folder,
            len(items),
            len(todo),
            shard_index,
            num_shards,
        )
        if todo:
            self._extract(
                todo, batch_seconds, num_workers, device, shard_index, progress
            )

        # Under torch.distributed, wait for every share, then one process
        # merges the index; separate jobs each merge what is finished (the
        # write is atomic and a stale index is detected by refresh()).
        synchronised = (
            num_shards > 1 and sb_distributed.is_distributed_initialized()
        )
        if synchronised:
            sb_distributed.ddp_barrier()
        if shard_index == 0 or not synchronised:
            self._write_index()
        if synchronised:
            sb_distributed.ddp_barrier()
        self.refresh()
        missing = len(self.pending(items))
        return {
            "requested": len(items),
            "extracted": len(todo),
            "missing": missing,
            "seconds": time.perf_counter() - start,
        }

    def _remove_own_leftovers(self, shard_index):
        """Deletes this process's temporary files and data without an index (killed runs)."""
        prefix = f"shard-r{shard_index:03d}-"
        for path in glob.glob(os.path.join(self.folder, f".{prefix}*.tmp")):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        for path in glob.glob(
            os.path.join(self.folder, f"{prefix}*.safetensors")
        ):
            if not os.path.exists(path[: -len(".safetensors")] + ".json"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)

    def _next_shard_name(self, shard_index):
        prefix = f"shard-r{shard_index:03d}-"
        numbers = [
            int(os.path.basename(path)[len(prefix) :].split(".")[0])
            for path in glob.glob(os.path.join(self.folder, prefix + "*"))
        ]
        return f"{prefix}{max(numbers, default=-1) + 1:05d}"

    def _extract(
        self, todo, batch_seconds, num_workers, device, shard_index, progress
    ):
        from tqdm import tqdm

        if device is None:
            device = _module_device(self.encoder)
        if batch_seconds is None:
            batch_seconds = default_batch_seconds(device)
        model = _hf_model(self.encoder)
        # Batching is exact only for encoders we know mask padding everywhere.
        batchable = self.conv_layout is not None and model is not None
        todo = [
            item
            if item[2] is not None
            else (item[0], item[1], audio_info(item[1])[0])
            for item in todo
        ]
        todo.sort(key=lambda item: (-item[2], item[0]))
        batches = _length_batches(
            [item[2] for item in todo],
            batch_seconds if batchable else 0.0,
            self.chunk_seconds,
        )
        loader = torch.utils.data.DataLoader(
            _AudioItems(todo, self.sample_rate),
            batch_sampler=batches,
            num_workers=num_workers,
            collate_fn=list,
        )
        buffer = _ShardBuffer()
        was_training = self.encoder.training
        self.encoder.eval()
        context = (
            padding_invariant(model)
            if model is not None
            else contextlib.nullcontext()
        )
        try:
            with torch.inference_mode(), context:
                for batch in tqdm(
                    loader, disable=not progress, desc="feature cache"
                ):
                    wavs = [wav for _, wav in batch]
                    features = self._encode(wavs, device)
                    for (item, wav), feats in zip(batch, features, strict=True):
                        buffer.add(
                            item, wav.shape[0], self._to_storage(feats, item[0])
                        )
                    if buffer.num_bytes >= self.shard_bytes:
                        self._write_shard(buffer, shard_index)
                        buffer = _ShardBuffer()
            if buffer.entries:
                self._write_shard(buffer, shard_index)
        finally:
            self.encoder.train(was_training)

    def _to_storage(self, features, clip_id):
        stored = features.to("cpu", _DTYPES[self.dtype])
        if not torch.isfinite(stored).all():
            raise ValueError(
                f"clip '{clip_id}': features overflow {self.dtype} (largest magnitude "
                f"{features.abs().max().item():.4g}); use dtype='bfloat16' or 'float32'"
            )
        return stored

    def _encode(self, wavs, device):
        """Encodes one padded batch; returns each clip's stored ``[T, ...]`` frames."""
        chunk = (
            int(self.chunk_seconds * self.sample_rate)
            if self.chunk_seconds
            else 0
        )
        features = encode_batch(
            self.encoder, wavs, self.conv_layout, chunk, device
        )
        if self.layers is None:
            return features
        if features[0].ndim != 3:
            raise ValueError(
                "layers= selects hidden states, but the encoder returns one layer: "
                "give it layer='all'"
            )
        return [clip[:, self.layers] for clip in features]

    def _write_shard(self, buffer, shard_index):
        name = self._next_shard_name(shard_index)
        data = safetensors_save({"features": torch.cat(buffer.tensors, dim=0)})
        # Data first, index second: a shard counts as finished once its JSON exists.
        with atomic_write(
            os.path.join(self.folder, name + ".safetensors"), "wb"
        ) as handle:
            handle.write(data)
        write_json(
            os.path.join(self.folder, name + ".json"),
            {
                "shard": name,
                "key": self.key,
                "created_ns": time.time_ns(),
                "entries": buffer.entries,
            },
        )


def encode_batch(encoder, wavs, conv_layout=None, chunk_samples=0, device=None):
    """Encodes clips as one zero-padded batch; returns each clip's own frames.

    Call it under :func:`padding_invariant` (as :func:`encode_clips` does)
    for Base-type models, whose front-end otherwise sees the padding.

    Arguments
    ---------
    encoder : torch.nn.Module
        Called as ``encoder(wavs, relative_lengths)``; returns ``[B, T, C]``
        or ``[L, B, T, C]``.
    wavs : list of torch.Tensor
        ``[samples]`` each.
    conv_layout : list of [kernel, stride], optional
        Gives each clip's number of frames; without it every clip gets the
        batch's frame count (so pass a single clip).
    chunk_samples : int
        > 0: clips longer than this are encoded as consecutive chunks (a tail
        shorter than the encoder's receptive field joins the last chunk) and
        their frames concatenated.
    device : str or torch.device, optional
        Where to run; default: the encoder's device.

    Returns
    -------
    list of torch.Tensor
        ``[T_i, C]`` or ``[T_i, L, C]`` per clip, on the encoder's device.

    Example
    -------
    >>> from emoshare_sb.lobes.ssl import SSLEncoder
    >>> from emoshare_sb.synthetic import make_tiny_ssl_model
    >>> tmp = getfixture("tmpdir")
    >>> encoder = SSLEncoder(make_tiny_ssl_model(str(tmp / "tiny")), str(tmp))
    >>> layout = [[10, 5]] + [[3, 2]] * 4 + [[2, 2]] * 2
    >>> with torch.no_grad():
    ...     feats = encode_batch(
    ...         encoder, [torch.randn(16000), torch.randn(8000)], layout
    ...     )
    >>> [tuple(f.shape) for f in feats]
    [(49, 32), (24, 32)]
    """
    if device is None:
        device = _module_device(encoder)
    pieces, owners = [], []
    for owner, wav in enumerate(wavs):
        for piece in _split_chunks(wav, chunk_samples):
            pieces.append(piece)
            owners.append(owner)
    lengths = torch.tensor([piece.shape[0] for piece in pieces])
    padded = torch.nn.utils.rnn.pad_sequence(pieces, batch_first=True)
    relative = lengths.float() / padded.shape[1]
    output = encoder(padded.to(device), relative.to(device))
    if output.ndim == 4:  # [L, B, T, C] -> [B, T, L, C]: time first per clip
        output = output.permute(1, 2, 0, 3)
    if conv_layout is not None:
        frames = frames_for_samples(lengths, conv_layout).tolist()
    else:
        frames = [output.shape[1]] * len(pieces)
    per_clip = [[] for _ in wavs]
    for index, (owner, count) in enumerate(zip(owners, frames, strict=True)):
        per_clip[owner].append(output[index, :count])
    return [torch.cat(parts, dim=0) for parts in per_clip]


def default_batch_seconds(device):
    """Padded audio per forward pass that suits a device.

    On CPU one clip at a time is fastest (measured on 2 cores: batches of
    12 s and 32 s of padded audio cost 6 % and 47 % more CPU time per second
    of audio than single clips, the large activations of the convolutional
    front-end no longer fitting in cache); GPUs want large batches.

    Arguments
    ---------
    device : str or torch.device
        Where the encoder runs.

    Returns
    -------
    float
        0.0 (one clip per pass) on CPU, 64.0 seconds elsewhere.

    Example
    -------
    >>> default_batch_seconds("cpu"), default_batch_seconds("cuda:0")
    (0.0, 64.0)
    """
    return 0.0 if torch.device(device).type == "cpu" else 64.0


def encode_clips(
    encoder,
    wavs,
    batch_seconds=None,
    sample_rate=SAMPLE_RATE,
    device=None,
    autocast_dtype=None,
):
    """Fast frozen-encoder inference that gives each clip its solo features.

    Clips are sorted by length and encoded in padded batches of at most
    ``batch_seconds`` of padded audio, under ``torch.inference_mode`` and
    :func:`padding_invariant`; attention uses whatever the encoder was loaded
    with (SDPA by default in transformers 5). Encoders without a known
    wav2vec2-style front-end are run one clip at a time.

    Arguments
    ---------
    encoder : torch.nn.Module
        E.g. :class:`emoshare_sb.lobes.ssl.SSLEncoder` (or one whose Linear
        layers were quantised with ``torch.ao.quantization.quantize_dynamic``).
    wavs : list of torch.Tensor
        ``[samples]`` each, at ``sample_rate``.
    batch_seconds : float, optional
        Padded audio per forward pass; default :func:`default_batch_seconds`.
    sample_rate : int
        Of ``wavs``.
    device : str or torch.device, optional
        Default: the encoder's device.
    autocast_dtype : torch.dtype, optional
        E.g. ``torch.bfloat16``: run under ``torch.autocast`` (faster on CPUs
        with AMX/AVX512-BF16, at a rounding cost the inference benchmark
        measures). Features are returned in float32.

    Returns
    -------
    list of torch.Tensor
        ``[T_i, C]`` (or ``[T_i, L, C]``) per clip, in the input order.

    Example
    -------
    >>> from emoshare_sb.lobes.ssl import SSLEncoder
    >>> from emoshare_sb.synthetic import make_tiny_ssl_model
    >>> tmp = getfixture("tmpdir")
    >>> encoder = SSLEncoder(make_tiny_ssl_model(str(tmp / "tiny")), str(tmp))
    >>> wavs = [torch.randn(8000), torch.randn(16000)]
    >>> [tuple(f.shape) for f in encode_clips(encoder, wavs)]
    [(24, 32), (49, 32)]
    >>> batched = encode_clips(encoder, wavs, batch_seconds=8.0)
    >>> torch.allclose(batched[0], encode_clips(encoder, wavs)[0], atol=1e-5)
    True
    """
    if device is None:
        device = _module_device(encoder)
    if batch_seconds is None:
        batch_seconds = default_batch_seconds(device)
    conv_layout = _conv_layout(encoder)
    model = _hf_model(encoder)
    if conv_layout is None or model is None:
        batch_seconds = 0.0  # unknown encoder: one clip per forward pass
    order = sorted(range(len(wavs)), key=lambda i: -wavs[i].shape[0])
    batches = _length_batches(
        [wavs[i].shape[0] / sample_rate for i in order], batch_seconds
    )
    results = [None] * len(wavs)
    padding = (
        padding_invariant(model)
        if model is not None
        else contextlib.nullcontext()
    )
    autocast = (
        torch.autocast(torch.device(device).type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else contextlib.nullcontext()
    )
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.inference_mode(), padding, autocast:
            for batch in batches:
                indices = [order[j] for j in batch]
                features = encode_batch(
                    encoder,
                    [wavs[i] for i in indices],
                    conv_layout,
                    device=device,
                )
                for index, clip in zip(indices, features, strict=True):
                    results[index] = clip.float()
    finally:
        encoder.train(was_training)
    return results


def _module_device(module):
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


class _ShardBuffer:
    """Features waiting to be written as one shard."""

    def __init__(self):
        self.tensors, self.entries, self.offset, self.num_bytes = [], {}, 0, 0

    def add(self, item, num_samples, features):
        """Appends one clip's features to the shard and records its entry."""
        clip_id, wav, _ = item
        self.entries[clip_id] = {
            "offset": self.offset,
            "frames": int(features.shape[0]),
            "num_samples": int(num_samples),
            "audio": audio_signature(wav),
        }
        self.tensors.append(features)
        self.offset += features.shape[0]
        self.num_bytes += features.numel() * features.element_size()


class _AudioItems(torch.utils.data.Dataset):
    """Reads the audio of ``(id, wav, duration)`` items."""

    def __init__(self, items, sample_rate):
        self.items, self.sample_rate = items, sample_rate

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        item = self.items[index]
        return item, read_audio(item[1], self.sample_rate)


def _split_chunks(wav, chunk):
    """Consecutive chunks of ``chunk`` samples; a too-short tail joins the last one."""
    if chunk <= 0 or wav.shape[0] <= chunk:
        return [wav]
    starts = list(range(0, wav.shape[0], chunk))
    if wav.shape[0] - starts[-1] < MIN_SAMPLES:
        starts.pop()
    ends = starts[1:] + [wav.shape[0]]
    return [wav[s:e] for s, e in zip(starts, ends, strict=True)]


def _length_batches(durations, batch_seconds, chunk_seconds=None):
    """Groups consecutive (length-sorted) items while the padded batch fits.

    The padded batch costs (number of pieces) x (longest piece), where a clip
    is one piece, or ``ceil(duration / chunk_seconds)`` chunks when chunked.
    ``batch_seconds <= 0`` gives one item per batch.

    Example
    -------
    >>> _length_batches([8.0, 7.0, 2.0, 1.0, 1.0], 16.0)
    [[0, 1], [2, 3, 4]]
    >>> _length_batches([8.0, 1.0], 0)
    [[0], [1]]
    """
    batches, current, pieces, longest = [], [], 0, 0.0
    for index, duration in enumerate(durations):
        count = 1
        if chunk_seconds and duration > chunk_seconds:
            count, duration = math.ceil(duration / chunk_seconds), chunk_seconds
        if current and (
            batch_seconds <= 0
            or max(longest, duration) * (pieces + count) > batch_seconds
        ):
            batches.append(current)
            current, pieces, longest = [], 0, 0.0
        current.append(index)
        pieces += count
        longest = max(longest, duration)
    if current:
        batches.append(current)
    return batches


def _transformers_major():
    try:
        import transformers
    except ImportError:  # a non-HF encoder
        return None
    return transformers.__version__.split(".")[0]
