#!/usr/bin/env python3
"""Benchmarks 1 and 4: head training from the feature cache vs re-encoding, and disk size.

On one synthetic corpus (clips of 1-8 s) and a HuBERT-Base-shaped random
encoder (``transformers.HubertConfig()``, 95 M parameters, frozen, loaded by
the recipe's :class:`~emoshare_sb.lobes.ssl.SSLEncoder`), with
``torch.set_num_threads(2)``, this measures side by side:

1. the time of one head-training epoch of the recipe's model (masked attentive
   pooling + 256-unit MLP head, CCC loss, AdamW; 5.5 s random training crop;
   the same length-bucketed batches) when every batch is re-encoded, and when
   features come from the cache (mean of several epochs), plus the one-off
   extraction time and whether the predictions agree;
4. the cache's size on disk against the dense layout of Mohapatra et al.
   (every clip padded to 398 frames, float64).

    .venv/bin/python benchmarks/bench_feature_cache.py [--quick]

Authors
 * emoshare_sb contributors 2026
"""

import argparse
import os
import tempfile
import time
import warnings

import _common

TARGET_SPEEDUP = 20.0
DENSE_FRAMES, DENSE_BYTES = (
    398,
    8,
)  # Mohapatra et al.: padded to 398 frames, float64


def make_head(encoder_dim, seed=0):
    """The recipe's trainable part (hparams/hubert_attn.yaml)."""
    import torch

    from emoshare_sb.nnet.heads import MLPHead
    from emoshare_sb.nnet.pooling import MaskedAttentivePooling

    torch.manual_seed(seed)
    pooling = MaskedAttentivePooling(input_size=encoder_dim)
    head = MLPHead(
        input_size=encoder_dim,
        output_size=9,
        hidden_size=256,
        activation=torch.nn.GELU,
        output_activation="sigmoid",
    )
    return pooling, head


def train_epoch(loader, features_of, pooling, head, optimizer):
    """One epoch as the recipe's Brain runs it: forward, CCC loss, step."""
    from emoshare_sb.nnet.losses import ccc_loss

    pooling.train()
    head.train()
    start, cpu_start = time.perf_counter(), time.process_time()
    for batch in loader:
        features, lens = features_of(batch)
        loss = ccc_loss(head(pooling(features, lens)), batch.targets.data)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start, time.process_time() - cpu_start


def datasets(manifest, emotions, cache, train_window, sample_rate=16000):
    import speechbrain as sb
    import torch

    from emoshare_sb.data.audio import random_crop, read_audio

    window = int(train_window * sample_rate)

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio(wav):
        return random_crop(read_audio(wav, sample_rate), window)

    @sb.utils.data_pipeline.takes(*emotions)
    @sb.utils.data_pipeline.provides("targets")
    def targets(*shares):
        return torch.tensor([float(share) for share in shares])

    def make(item, key):
        return sb.dataio.dataset.DynamicItemDataset.from_csv(
            manifest,
            dynamic_items=[item, targets],
            output_keys=["id", key, "targets"],
        )

    return make(audio, "sig"), make(
        cache.dynamic_item(train_window=train_window), "feats"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="8 clips, 2 cached epochs"
    )
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument(
        "--epochs", type=int, default=5, help="cached epochs timed"
    )
    parser.add_argument("--train-window", type=float, default=5.5)
    parser.add_argument("--max-batch-seconds", type=float, default=44.0)
    parser.add_argument(
        "--threads",
        type=int,
        default=_common.NUM_THREADS,
        help="torch threads (1 is more robust to other processes on the machine)",
    )
    args = parser.parse_args()
    if args.quick:
        args.clips, args.epochs = 8, 2

    import speechbrain as sb
    import torch

    from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS
    from emoshare_sb.lobes.ssl import SSLEncoder
    from emoshare_sb.training.batching import dataloader_options
    from emoshare_sb.training.feature_cache import (
        FeatureCache,
        to_encoder_layout,
    )

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = _common.make_corpus(tmp, n_train=args.clips, seed=2)["train"]
        folder, params = _common.make_hubert_folder(os.path.join(tmp, "hubert"))
        encoder = SSLEncoder(folder, save_path=tmp)  # frozen, as in the YAML
        print(
            f"HuBERT-Base-shaped random encoder ({params / 1e6:.1f} M parameters), "
            f"{args.clips} training clips of 1-8 s, train_window {args.train_window} s"
        )

        cache = FeatureCache(os.path.join(tmp, "cache"), encoder)
        build = cache.build([manifest], progress=False)
        audio_set, cached_set = datasets(
            manifest, COMPARE23_EMOTIONS, cache, args.train_window
        )
        loader_kwargs = dict(
            train=True,
            train_window=args.train_window,
            max_batch_length=args.max_batch_seconds,
        )

        def encode(batch):
            wavs, wav_lens = batch.sig
            return encoder(wavs, wav_lens), wav_lens

        def from_cache(batch):
            features, lens = batch.feats
            return to_encoder_layout(features), lens

        timings = {}
        for name, dataset, features_of, epochs in (
            ("re-encoding every epoch", audio_set, encode, 1),
            ("from the feature cache", cached_set, from_cache, args.epochs),
        ):
            loader = sb.dataio.dataloader.make_dataloader(
                dataset, **dataloader_options(dataset, **loader_kwargs)
            )
            pooling, head = make_head(encoder.output_size)
            optimizer = torch.optim.AdamW(
                [*pooling.parameters(), *head.parameters()],
                lr=1e-3,
                weight_decay=1e-3,
            )
            if (
                dataset is cached_set
            ):  # warm-up (cheap here; re-encoding is warmed below)
                train_epoch(loader, features_of, pooling, head, optimizer)
            else:
                with torch.no_grad():
                    encoder(torch.randn(1, 16000), torch.ones(1))
            times = [
                train_epoch(loader, features_of, pooling, head, optimizer)
                for _ in range(epochs)
            ]
            timings[name] = [sum(t) / len(t) for t in zip(*times, strict=True)]

        # Same predictions? The head on padded cached batches vs on each clip
        # encoded alone (what training without the cache computes, batch 1).
        pooling, head = make_head(encoder.output_size, seed=1)
        pooling.eval()
        head.eval()
        ids = list(cache.entries)[:8]
        with torch.no_grad():
            batch = sb.dataio.batch.PaddedBatch(
                [{"feats": cache.load(clip_id)} for clip_id in ids]
            )
            cached_predictions = head(pooling(*from_cache(batch)))
            wavs = {
                clip_id: row["wav"] for clip_id, row in audio_set.data.items()
            }
            from emoshare_sb.data.audio import read_audio

            solo = [
                head(
                    pooling(
                        encoder(read_audio(wavs[i])[None], torch.ones(1)), None
                    )
                )
                for i in ids
            ]
        prediction_diff = float(
            (cached_predictions - torch.cat(solo)).abs().max()
        )

        cache_bytes = cache.disk_bytes()
        frames = sum(entry["frames"] for entry in cache.entries.values())
        width = encoder.output_size
        dense_bytes = len(cache.entries) * DENSE_FRAMES * width * DENSE_BYTES
        longer = sum(e["frames"] > DENSE_FRAMES for e in cache.entries.values())
        machine = _common.machine_line()

    (slow, slow_cpu) = timings["re-encoding every epoch"]
    (fast, fast_cpu) = timings["from the feature cache"]
    speedup = slow / fast
    print(f"{machine}\n")
    _common.print_table(
        ["head-training epoch", "seconds", "CPU seconds", "ratio", "target"],
        [
            [
                "re-encoding every epoch",
                f"{slow:.2f}",
                f"{slow_cpu:.2f}",
                "1x",
                "",
            ],
            [
                f"from the feature cache (mean of {args.epochs})",
                f"{fast:.4f}",
                f"{fast_cpu:.4f}",
                f"{speedup:.0f}x faster (CPU time: {slow_cpu / fast_cpu:.0f}x)",
                f">= {TARGET_SPEEDUP:.0f}x: {_common.verdict(speedup >= TARGET_SPEEDUP)}",
            ],
            [
                "one-off extraction (build)",
                f"{build['seconds']:.2f}",
                "",
                f"pays off after {build['seconds'] / max(slow - fast, 1e-9):.1f} epochs",
                "",
            ],
        ],
    )
    print(
        f"\nPredictions, cached vs re-encoded alone ({len(ids)} clips): "
        f"max abs difference {prediction_diff:.1e} (float16 rounding)\n"
    )
    _common.print_table(
        ["layout (same clips, one layer)", "bytes", "ratio"],
        [
            [
                f"dense float64 padded to {DENSE_FRAMES} frames (computed)",
                f"{dense_bytes:,}",
                "1x",
            ],
            [
                f"our cache: float16, unpadded, {frames:,} frames + index (on disk)",
                f"{cache_bytes:,}",
                f"{dense_bytes / cache_bytes:.1f}x smaller",
            ],
        ],
    )
    if longer:
        print(
            f"({longer} clips are longer than {DENSE_FRAMES} frames: the dense layout truncates them)"
        )


if __name__ == "__main__":
    main()
