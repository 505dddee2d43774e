"""The feature cache on disk: write-once shards, their indexes, and builder locks.

Layout of one cache configuration's folder::

    settings.json                        what the features depend on
    shard-r000-<builder>-00000.safetensors   features of many clips, concatenated
    shard-r000-<builder>-00000.json          id -> offset, frames, audio signature
    index.json                           all shard indexes merged (a shortcut)
    builders/<builder>.lock              held (flock) while that builder runs

**Write-once shards, safe under concurrent builds.** Every builder (one
process of one run) names its shards with its own random token, so two runs
building the same cache at once never write the same file. A shard's data is
written before its index, each atomically
(:func:`emoshare_sb.utils.io.atomic_write`), and a shard counts as finished
once its index exists. Finished shards are never deleted. What a killed
builder leaves (temporary files, data without an index) is removed only when
that builder's lock is free, i.e. its process is gone: another builder's
shard in the middle of being written is never touched. (Before this, builders
named shards by rank alone and cleaned every rank-0 leftover, so one run
deleted another's finished data before its index was written, and later
runs failed with FileNotFoundError.) When two runs extract the same clip,
both shards are valid and the newest one is read.

Authors
 * emoshare_sb contributors 2026
"""

import contextlib
import fcntl
import glob
import json
import os
import re
import secrets
import time

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_save

from emoshare_sb.data.files import audio_signature
from emoshare_sb.utils.io import atomic_write, write_json

# shard-r<rank>-<builder>-<n>.json; "shard-r<rank>-<n>" is the older naming.
_SHARD_RE = re.compile(r"^shard-r(\d+)-(?:([0-9a-f]{12})-)?(\d+)\.json$")
_BUILDER_RE = re.compile(r"shard-r\d+-([0-9a-f]{12})-")


class ShardBuffer:
    """Features waiting to be written as one shard.

    Example
    -------
    >>> buffer = ShardBuffer()
    >>> buffer.num_bytes, buffer.entries
    (0, {})
    """

    def __init__(self):
        self.tensors, self.entries, self.offset, self.num_bytes = [], {}, 0, 0

    def add(self, item, num_samples, features):
        """Appends one clip's time-first features.

        Arguments
        ---------
        item : tuple
            ``(id, wav, duration)``.
        num_samples : int
            Samples of the clip's audio.
        features : torch.Tensor
            ``[T, ...]`` in the storage dtype.
        """
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


class ShardStore:
    """Reads and writes the shards and indexes of one cache configuration.

    Arguments
    ---------
    folder : str
        The configuration's folder.
    key : str
        The configuration's hash (recorded in every index).

    Example
    -------
    >>> store = ShardStore(str(getfixture("tmpdir") / "c"), "k")
    >>> with store.builder():
    ...     buffer = ShardBuffer()
    ...     buffer.entries["a"] = {"offset": 0, "frames": 2}
    ...     buffer.tensors.append(torch.ones(2, 3))
    ...     store.write_shard(buffer, rank=0)
    >>> store.write_index()
    >>> store.read("a").shape
    torch.Size([2, 3])
    """

    def __init__(self, folder, key):
        self.folder = folder
        self.key = key
        self._entries = None
        self._handles = {}
        self._builder = None  # (token, open lock file) while building

    # ----------------------------------------------------------------- index
    def shard_names(self):
        """Names (without extension) of the finished shards, sorted.

        Returns
        -------
        list of str
        """
        names = []
        for path in glob.glob(os.path.join(self.folder, "shard-r*.json")):
            if _SHARD_RE.match(os.path.basename(path)):
                names.append(os.path.basename(path)[: -len(".json")])
        return sorted(names)

    def _merge(self, names):
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
        names = self.shard_names()
        index_path = os.path.join(self.folder, "index.json")
        if os.path.exists(index_path):
            with open(index_path) as handle:
                index = json.load(handle)
            if index.get("shards") == names:
                self._entries = index["entries"]
                return
        self._entries = self._merge(names)

    def write_index(self):
        """Merges every finished shard's index into ``index.json`` (atomically)."""
        names = self.shard_names()
        self._entries = self._merge(names)
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

    # --------------------------------------------------------------- reading
    def read(self, clip_id):
        """One clip's stored features, or None when it is not in the index.

        Arguments
        ---------
        clip_id : str
            The clip.

        Returns
        -------
        torch.Tensor or None
            ``[T, ...]`` in the storage dtype.
        """
        entry = self.entries.get(clip_id)
        if entry is None:
            return None
        handle = self._handles.get(entry["shard"])
        if handle is None:
            path = os.path.join(self.folder, entry["shard"] + ".safetensors")
            handle = safe_open(path, framework="pt")
            self._handles[entry["shard"]] = handle
        offset, frames = entry["offset"], entry["frames"]
        return handle.get_slice("features")[offset : offset + frames]

    def disk_bytes(self):
        """Bytes of this configuration's files on disk.

        Returns
        -------
        int
        """
        return sum(
            os.path.getsize(path)
            for path in glob.glob(os.path.join(self.folder, "*"))
            if os.path.isfile(path)
        )

    def __getstate__(self):
        # Open memory maps do not pickle (each process reopens them lazily);
        # a builder lock belongs to its process.
        state = dict(self.__dict__)
        state["_handles"] = {}
        state["_builder"] = None
        return state

    # --------------------------------------------------------------- writing
    @contextlib.contextmanager
    def builder(self):
        """Holds this process's builder lock while it writes shards.

        Leftovers of builders whose lock is free (killed processes) are
        removed on entry.

        Yields
        ------
        str
            This builder's token.
        """
        locks = os.path.join(self.folder, "builders")
        os.makedirs(locks, exist_ok=True)
        token = secrets.token_hex(6)
        handle = open(os.path.join(locks, token + ".lock"), "w")
        fcntl.flock(handle, fcntl.LOCK_EX)
        self._builder = (token, handle)
        try:
            self._remove_dead_leftovers()
            yield token
        finally:
            self._builder = None
            with contextlib.suppress(FileNotFoundError):
                os.remove(handle.name)
            handle.close()

    def _is_alive(self, token):
        """Whether builder ``token`` still holds its lock."""
        if self._builder is not None and token == self._builder[0]:
            return True
        path = os.path.join(self.folder, "builders", token + ".lock")
        try:
            handle = open(path)
        except FileNotFoundError:
            return False  # finished or killed and cleaned up
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)  # a killed builder's lock
        return False

    def _remove_dead_leftovers(self):
        """Deletes temporary files and index-less data of builders that are gone."""
        candidates = glob.glob(os.path.join(self.folder, ".shard-r*.tmp"))
        for path in glob.glob(
            os.path.join(self.folder, "shard-r*.safetensors")
        ):
            if not os.path.exists(path[: -len(".safetensors")] + ".json"):
                candidates.append(path)
        for path in candidates:
            match = _BUILDER_RE.search(os.path.basename(path))
            # Files without a builder token were written by an older version.
            if match is None or not self._is_alive(match.group(1)):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)

    def write_shard(self, buffer, rank):
        """Writes one finished shard: its data, then its index.

        Arguments
        ---------
        buffer : ShardBuffer
            The clips to write.
        rank : int
            This process's share index (part of the name).
        """
        if self._builder is None:
            raise RuntimeError("write_shard() must run inside builder()")
        prefix = f"shard-r{rank:03d}-{self._builder[0]}-"
        numbers = [
            int(os.path.basename(path)[len(prefix) :].split(".")[0])
            for path in glob.glob(os.path.join(self.folder, prefix + "*"))
        ]
        name = f"{prefix}{max(numbers, default=-1) + 1:05d}"
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
