"""Extracting a feature cache: each process's share, in batches, into shards.

Authors
 * emoshare_sb contributors 2026
"""

import contextlib
import os
import time

import torch
from speechbrain.utils import distributed as sb_distributed
from speechbrain.utils.logger import get_logger

from emoshare_sb.data.audio import audio_info
from emoshare_sb.lobes.early_exit import hidden_state_selection
from emoshare_sb.lobes.padding import padding_invariant
from emoshare_sb.training.feature_cache.extraction import (
    AudioItems,
    default_batch_seconds,
    encode_batch,
    length_batches,
    module_device,
)
from emoshare_sb.training.feature_cache.fingerprint import hf_model
from emoshare_sb.training.feature_cache.items import normalise_items
from emoshare_sb.training.feature_cache.storage import ShardBuffer
from emoshare_sb.utils.io import write_json

logger = get_logger(__name__)

STORAGE_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
}


def _distributed_shard():
    """``(index, count)`` of this process among those sharing the extraction."""
    if (
        not sb_distributed.is_distributed_initialized()
        or sb_distributed.MAIN_PROC_ONLY >= 1
    ):
        # Inside run_on_main the other processes do not take part: do it all.
        return 0, 1
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


class CacheBuilder:
    """Extracts the missing clips of a :class:`FeatureCache` (see its ``build``).

    Arguments
    ---------
    cache : emoshare_sb.training.feature_cache.FeatureCache
        The cache to fill; its encoder does the work.
    """

    def __init__(self, cache):
        self.cache = cache
        self.encoder = cache.encoder
        self.store = cache.store

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
        """Extracts this process's share of the missing items (see ``FeatureCache.build``).

        Arguments
        ---------
        items : list of str or list of tuple
            Manifests or ``(id, wav[, duration])`` tuples.
        batch_seconds : float, optional
            Padded audio per forward pass.
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
            ``requested``, ``extracted``, ``missing`` and ``seconds``.
        """
        cache = self.cache
        start = time.perf_counter()
        items = normalise_items(items)
        if shard_index is None or num_shards is None:
            shard_index, num_shards = _distributed_shard()
        os.makedirs(cache.folder, exist_ok=True)
        settings_path = os.path.join(cache.folder, "settings.json")
        if not os.path.exists(settings_path):
            write_json(settings_path, cache.settings)

        # Assign by position in a duration-sorted list of *all* items, so
        # every process agrees on the split whatever it finds already cached.
        order = sorted(items, key=lambda item: (-(item[2] or 0.0), item[0]))
        mine = {item[0] for item in order[shard_index::num_shards]}
        todo = [item for item in cache.pending(items) if item[0] in mine]
        logger.info(
            "Feature cache %s: %d clips requested, %d to extract by process %d/%d",
            cache.folder,
            len(items),
            len(todo),
            shard_index,
            num_shards,
        )
        if todo:
            # Other runs may build the same cache at once (storage.py).
            with self.store.builder():
                self._extract(
                    todo,
                    batch_seconds,
                    num_workers,
                    device,
                    shard_index,
                    progress,
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
            self.store.write_index()
        if synchronised:
            sb_distributed.ddp_barrier()
        cache.refresh()
        missing = len(cache.pending(items))
        return {
            "requested": len(items),
            "extracted": len(todo),
            "missing": missing,
            "seconds": time.perf_counter() - start,
        }

    def _extract(
        self, todo, batch_seconds, num_workers, device, shard_index, progress
    ):
        """Encodes ``todo`` in length-sorted batches and writes shards."""
        from tqdm import tqdm

        if device is None:
            device = module_device(self.encoder)
        if batch_seconds is None:
            batch_seconds = default_batch_seconds(device)
        model = hf_model(self.encoder)
        # Batching is exact only for encoders we know mask padding everywhere.
        batchable = self.cache.conv_layout is not None and model is not None
        todo = [
            item
            if item[2] is not None
            else (item[0], item[1], audio_info(item[1])[0])
            for item in todo
        ]
        todo.sort(key=lambda item: (-item[2], item[0]))
        batches = length_batches(
            [item[2] for item in todo],
            batch_seconds if batchable else 0.0,
            self.cache.chunk_seconds,
        )
        loader = torch.utils.data.DataLoader(
            AudioItems(todo, self.cache.sample_rate),
            batch_sampler=batches,
            num_workers=num_workers,
            collate_fn=list,
        )
        buffer = ShardBuffer()
        was_training = self.encoder.training
        self.encoder.eval()
        context = (
            padding_invariant(model)
            if model is not None
            else contextlib.nullcontext()
        )
        try:
            # Only the cached layers are computed (and the encoder stops at
            # the highest of them).
            selection = hidden_state_selection(self.encoder, self.cache.layers)
            with torch.inference_mode(), context, selection:
                for batch in tqdm(
                    loader, disable=not progress, desc="feature cache"
                ):
                    wavs = [wav for _, wav in batch]
                    features = self.encode(wavs, device)
                    for (item, wav), feats in zip(batch, features, strict=True):
                        buffer.add(
                            item, wav.shape[0], self._to_storage(feats, item[0])
                        )
                    if buffer.num_bytes >= self.cache.shard_bytes:
                        self.store.write_shard(buffer, shard_index)
                        buffer = ShardBuffer()
            if buffer.entries:
                self.store.write_shard(buffer, shard_index)
        finally:
            self.encoder.train(was_training)

    def _to_storage(self, features, clip_id):
        stored = features.to("cpu", STORAGE_DTYPES[self.cache.dtype])
        if not torch.isfinite(stored).all():
            raise ValueError(
                f"clip '{clip_id}': features overflow {self.cache.dtype} (largest magnitude "
                f"{features.abs().max().item():.4g}); use dtype='bfloat16' or 'float32'"
            )
        return stored

    def encode(self, wavs, device):
        """Encodes one padded batch; returns each clip's stored time-first frames."""
        chunk = (
            int(self.cache.chunk_seconds * self.cache.sample_rate)
            if self.cache.chunk_seconds
            else 0
        )
        features = encode_batch(
            self.encoder, wavs, self.cache.conv_layout, chunk, device
        )
        if (
            self.cache.layers is None
            or getattr(self.encoder, "layer", None) == self.cache.layers
        ):
            return features  # the encoder already returned only these
        if features[0].ndim != 3:
            raise ValueError(
                "layers= selects hidden states, but the encoder returns one layer: "
                "give it layer='all'"
            )
        return [clip[:, self.cache.layers] for clip in features]
