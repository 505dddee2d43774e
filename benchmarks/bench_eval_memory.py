#!/usr/bin/env python3
"""Benchmark: peak memory of evaluating a devel split that holds one 10-minute clip.

The recipes evaluate devel in duration-sorted padded batches (batch size 8),
so one 10-minute clip pads its whole batch to 10 minutes. On a devel split of
15 clips of 1-8 s plus one of ``--long-seconds`` (default 600) and the tiny
32-wide encoder, the recipe's evaluation step (``EmotionBrain.encode`` then
pooling and head) runs in its own process per setting, side by side:

* ``before``: no bound (``max_eval_batch_seconds: 0``, what the recipes did);
* ``after``: ``max_eval_batch_seconds`` of 120 s (the YAMLs' default) and 30 s.

Printed per setting: peak RSS of the process, time, and the largest change
of the predictions of the normal clips and of the long clip against each
clip encoded alone without a bound (the predictions the recipes give a clip
in a batch, padding-invariant encoders being exact up to float rounding). Each worker runs under an address-space limit (``--limit-gb``,
default 12) so that an unbounded run fails with MemoryError instead of
taking the memory of a shared machine; such a run prints "> limit".

    .venv/bin/python benchmarks/bench_eval_memory.py [--long-seconds 600]

Authors
 * emoshare_sb contributors 2026
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import _common


def run_worker(args):
    """One evaluation pass over the devel split with one bound."""
    import torch

    from emoshare_sb.lobes.ssl import SSLEncoder
    from emoshare_sb.nnet.heads import MLPHead
    from emoshare_sb.nnet.pooling import MaskedAttentivePooling
    from emoshare_sb.training.feature_cache import encode_padded_bounded

    limit = int(args.limit_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    durations = [float(d) for d in args.durations.split(",")]
    clips = [
        torch.randn(int(d * 16000), generator=generator) for d in durations
    ]
    order = sorted(range(len(clips)), key=lambda i: -durations[i])
    encoder = SSLEncoder(args.model, args.tmp)
    torch.manual_seed(0)
    pooling, head = MaskedAttentivePooling(32), MLPHead(32, 9, hidden_size=16)
    predictions = [None] * len(clips)
    start = time.perf_counter()
    result = {"setting": args.worker}
    try:
        with torch.no_grad():
            size = 1 if args.max_seconds < 0 else 8
            for first in range(0, len(order), size):
                batch = order[first : first + size]
                wavs = torch.nn.utils.rnn.pad_sequence(
                    [clips[i] for i in batch], batch_first=True
                )
                lens = (
                    torch.tensor([clips[i].shape[0] for i in batch])
                    / wavs.shape[1]
                )
                feats, feat_lens = encode_padded_bounded(
                    encoder, wavs, lens, max(args.max_seconds, 0.0)
                )
                for index, row in zip(
                    batch, head(pooling(feats, feat_lens)), strict=False
                ):
                    predictions[index] = row
        torch.save(torch.stack(predictions), args.out + ".pt")
        result["ok"] = True
    except (MemoryError, RuntimeError) as error:  # over the address-space limit
        result["ok"] = False
        result["error"] = str(error).splitlines()[0][:120]
    result["seconds"] = time.perf_counter() - start
    result["peak_rss_mb"] = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    with open(args.out + ".json", "w") as handle:
        json.dump(result, handle)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--long-seconds", type=float, default=600.0)
    parser.add_argument("--limit-gb", type=float, default=12.0)
    parser.add_argument("--threads", type=int, default=_common.NUM_THREADS)
    for hidden in ("--worker", "--model", "--tmp", "--out", "--durations"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--max-seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_worker(args)

    import torch

    from emoshare_sb.synthetic import make_tiny_ssl_model

    settings = {
        "before (no bound)": 0.0,
        "after, 120 s": 120.0,
        "after, 30 s": 30.0,
        "reference: each clip alone, no bound": -1.0,
    }
    generator = torch.Generator().manual_seed(1)
    normal = (1.0 + 7.0 * torch.rand(15, generator=generator)).tolist()
    durations = [args.long_seconds] + normal
    results, outputs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_ssl_model(os.path.join(tmp, "tiny"))
        for name, bound in settings.items():
            out = os.path.join(tmp, str(bound))
            subprocess.run(
                [sys.executable, __file__, "--worker", name, "--model", model,
                 "--tmp", tmp, "--out", out, "--max-seconds", str(bound),
                 "--durations", ",".join(f"{d:.3f}" for d in durations),
                 "--threads", str(args.threads), "--limit-gb", str(args.limit_gb)],
                check=True,
            )  # fmt: skip
            with open(out + ".json") as handle:
                results[name] = json.load(handle)
            if results[name]["ok"]:
                outputs[name] = torch.load(out + ".pt")
    print(_common.machine_line())
    print(
        f"devel: one clip of {args.long_seconds:.0f} s + 15 clips of 1-8 s, batches "
        "of 8 sorted by duration, tiny 32-wide encoder (2 layers)\n"
    )
    reference = outputs.get("reference: each clip alone, no bound")
    rows = []
    for name, result in results.items():
        if not result["ok"]:
            rows.append([name, f"> {args.limit_gb:.0f} GB ({result['error']})",
                         "-", "-", "-"])  # fmt: skip
            continue
        normal_diff = long_diff = "-"
        if reference is not None:
            diff = (outputs[name] - reference).abs().amax(dim=1)
            normal_diff = f"{float(diff[1:].max()):.1e}"
            long_diff = f"{float(diff[0]):.1e}"
        rows.append(
            [name, f"{result['peak_rss_mb']:.0f} MB", f"{result['seconds']:.1f} s",
             normal_diff, long_diff]
        )  # fmt: skip
    _common.print_table(
        ["max_eval_batch_seconds", "peak RSS", "time",
         "max pred. change, normal clips", "long clip"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
