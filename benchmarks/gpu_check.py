#!/usr/bin/env python3
"""The Python steps of ``benchmarks/gpu_check.sh`` (one JSON result per step).

Subcommands (each writes ``--out`` as JSON: a list of table rows):

* ``rtf``: real-time factor of HuBERT-Large- and WavLM-Large-shaped random
  encoders (:class:`~emoshare_sb.lobes.ssl.SSLEncoder`, frozen, layer 20 as
  the MSP YAML reads) in fp32, bf16 and fp16 autocast;
* ``cache``: feature-cache extraction throughput (hours of audio per
  minute) with a Large-shaped encoder on the generated corpus;
* ``cuda-paths``: under ``torchrun`` (one process, nccl on CUDA): the CUDA-only
  paths the recipes take, i.e. SyncBatchNorm conversion of an ECAPA/TC-GRU
  aggregator wrapped in DDP (as ``EmotionBrain._wrap_distributed`` does on
  CUDA only), a pinned-memory DataLoader with non-blocking copies, and AMP
  (fp16 autocast with a GradScaler step, bf16 autocast);
* ``table``: prints every result as one table.

With ``--device cpu`` and ``--smoke`` every step runs small on the CPU, so
the script's non-GPU parts are tested (``tests/test_gpu_check.py``).

Authors
 * emoshare_sb contributors 2026
"""

import argparse
import glob
import json
import os
import sys
import tempfile
import time

import _common


def _write(path, rows):
    with open(path, "w") as handle:
        json.dump(rows, handle)


def _sync(device):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def step_rtf(args):
    """RTF of Large-shaped encoders per dtype."""
    import torch
    import transformers

    from emoshare_sb.lobes.ssl import SSLEncoder

    shapes = {
        "HuBERT-Large": transformers.HubertConfig,
        "WavLM-Large": transformers.WavLMConfig,
    }
    size = dict(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        conv_bias=True,
    )
    if args.smoke:
        size.update(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
        )
    layer = 20 if not args.smoke else 2
    seconds, count = (8.0, 16) if not args.smoke else (1.0, 2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, config_class in shapes.items():
            folder = os.path.join(tmp, name)
            model_class = getattr(
                transformers, config_class.__name__[:-6] + "Model"
            )
            model_class(config_class(**size)).save_pretrained(folder)
            transformers.Wav2Vec2FeatureExtractor(
                return_attention_mask=True
            ).save_pretrained(folder)
            encoder = SSLEncoder(folder, tmp, layer=layer).to(args.device)
            wavs = torch.randn(count, int(seconds * 16000), device=args.device)
            lens = torch.ones(count, device=args.device)
            for dtype_name in ("fp32", "bf16", "fp16"):
                dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(
                    dtype_name
                )
                if dtype is not None and args.device == "cpu":
                    continue  # the CPU benchmark is bench_inference.py
                autocast = torch.autocast(
                    args.device.split(":")[0],
                    dtype=dtype or torch.float32,
                    enabled=dtype is not None,
                )
                with torch.inference_mode(), autocast:
                    encoder(wavs[:2], lens[:2])  # warm-up
                    _sync(args.device)
                    start = time.perf_counter()
                    out = encoder(wavs, lens)
                    _sync(args.device)
                    elapsed = time.perf_counter() - start
                if not torch.isfinite(out).all():
                    raise RuntimeError(
                        f"{name} {dtype_name}: non-finite features"
                    )
                rows.append(
                    [
                        f"RTF {name}-shaped{' (tiny: smoke)' if args.smoke else ''}, "
                        f"layer {layer}, {dtype_name}",
                        f"{elapsed / (count * seconds):.4f}",
                        f"batch of {count} x {seconds:.0f} s",
                    ]
                )
            del encoder
    _write(args.out, rows)


def step_cache(args):
    """Feature-cache extraction throughput on the generated corpus."""
    import transformers

    from emoshare_sb.lobes.ssl import SSLEncoder
    from emoshare_sb.training.feature_cache import (
        FeatureCache,
        read_manifest_items,
    )

    with tempfile.TemporaryDirectory() as tmp:
        clips = 8 if args.smoke else 200
        manifest = _common.make_corpus(tmp, n_train=clips)["train"]
        config = _common.hubert_config("base" if args.smoke else "large")
        if args.smoke:
            config = transformers.HubertConfig(
                hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=64, conv_dim=(32,) * 7,
            )  # fmt: skip
        folder = os.path.join(tmp, "encoder")
        transformers.HubertModel(config).save_pretrained(folder)
        transformers.Wav2Vec2FeatureExtractor(
            return_attention_mask=True
        ).save_pretrained(folder)
        encoder = SSLEncoder(folder, tmp).to(args.device)
        cache = FeatureCache(os.path.join(tmp, "cache"), encoder)
        start = time.perf_counter()
        stats = cache.build([manifest], device=args.device, progress=False)
        elapsed = time.perf_counter() - start
        if stats["missing"] or stats["extracted"] != clips:
            raise RuntimeError(f"feature cache incomplete: {stats}")
        audio = sum(d for _, _, d in read_manifest_items([manifest]))
    _write(
        args.out,
        [
            [
                "feature-cache extraction, "
                + ("tiny" if args.smoke else "HuBERT-Large-shaped"),
                f"{audio / 3600 / (elapsed / 60):.2f} h of audio per minute",
                f"{clips} clips, {audio / 60:.1f} min of audio in {elapsed:.1f} s",
            ]
        ],
    )


def step_cuda_paths(args):
    """SyncBatchNorm under DDP, pinned memory and AMP, as the recipes use them."""
    import torch
    import torch.distributed as dist

    from emoshare_sb.nnet.aggregators import TCGRU

    cuda = args.device.startswith("cuda")
    backend = "nccl" if cuda else "gloo"
    dist.init_process_group(backend)
    rows = []
    try:
        device = torch.device(args.device)
        model = TCGRU(32, conv_channels=8, gru_size=8, embedding_size=8)
        if cuda:  # EmotionBrain._wrap_distributed converts on CUDA only
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            if not any(
                isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules()
            ):
                raise RuntimeError("no SyncBatchNorm after conversion")
        model = model.to(device)
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index or 0] if cuda else None
        )
        data = torch.utils.data.TensorDataset(torch.randn(16, 50, 32))
        loader = torch.utils.data.DataLoader(
            data, batch_size=4, pin_memory=cuda
        )
        optimizer = torch.optim.AdamW(ddp.parameters(), lr=1e-3)
        scaler = torch.amp.GradScaler(device.type, enabled=cuda)
        for (batch,) in loader:
            if cuda and not batch.is_pinned():
                raise RuntimeError("the DataLoader did not pin memory")
            batch = batch.to(device, non_blocking=True)
            lens = torch.ones(batch.shape[0], device=device)
            with torch.autocast(device.type, dtype=torch.float16, enabled=cuda):
                loss = ddp(batch, lens).float().pow(2).mean()
            optimizer.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        with (
            torch.no_grad(),
            torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda),
        ):
            out = ddp.module(batch, lens)
        if not torch.isfinite(loss) or not torch.isfinite(out).all():
            raise RuntimeError("non-finite loss or output under AMP")
        rows.append(
            [
                f"CUDA paths ({backend}, {dist.get_world_size()} process)",
                "ok",
                "SyncBatchNorm+DDP, pinned memory, fp16 GradScaler, bf16 autocast"
                if cuda
                else "CPU smoke: DDP (gloo), no CUDA-only paths",
            ]
        )
    finally:
        dist.destroy_process_group()
    _write(args.out, rows)


def step_table(args):
    """Prints every step's rows as one table."""
    rows = []
    for path in sorted(glob.glob(os.path.join(args.results, "*.json"))):
        with open(path) as handle:
            rows.extend(json.load(handle))
    print(_common.machine_line())
    _common.print_table(["check", "result", "details"], rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("rtf", "cache", "cuda-paths", "table"))
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny, for CPU tests"
    )
    parser.add_argument("--out", help="JSON result file")
    parser.add_argument("--results", help="folder of JSON results (table)")
    args = parser.parse_args()
    step = {
        "rtf": step_rtf,
        "cache": step_cache,
        "cuda-paths": step_cuda_paths,
        "table": step_table,
    }[args.step]
    step(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
