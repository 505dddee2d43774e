#!/usr/bin/env python3
"""Benchmark 3: CPU inference, every path side by side: RTF, peak RSS, accuracy cost.

On the same clips (16 kHz, 1-8 s) and the same random HuBERT weights
(``transformers.HubertConfig()`` defaults, 95 M parameters; ``--size
large`` for the Large shape, ``--layer k`` to read hidden state ``k``), with
a pooling + head trained briefly on the train split (so that a devel
Spearman exists to lose), one clip at a time, each path in its own process
(so its peak RSS is its own), paths alternating over rounds, fastest pass
kept:

* ``plain``: ``transformers.HubertModel`` (eager attention, ``no_grad``,
  ``hidden_states[k]`` when a layer is read), then the head: the reference;
* ``ours``: the recipe's :class:`~emoshare_sb.lobes.ssl.SSLEncoder` through
  :func:`~emoshare_sb.training.feature_cache.encode_clips` (inference mode,
  stops at the layer read, no mask work for unpadded input, the attention
  kernel :func:`~emoshare_sb.utils.cpu.choose_attention` picks: logged in
  the ``attention`` column); ``ours-sdpa`` and ``ours-eager`` force each
  kernel, to check the choice;
* ``ours-bf16``: bfloat16 autocast, only where the CPU has native bfloat16
  (``--force-bf16`` runs it anyway, with the package's warning);
* ``torch-int8``: the Linear layers dynamically quantised to int8;
* ``ort-fp32`` / ``ort-int8``: the whole model exported to ONNX
  (:func:`~emoshare_sb.inference.onnx.export_onnx`) in ONNX Runtime, and its
  dynamic int8 quantisation.

Accuracy cost: the largest absolute difference of the devel predictions from
``plain``, and the change of devel mean Spearman (the head trained on
``ours`` features of the train split; targets from the generated corpus, a
random encoder: the *change* is the cost, the level means nothing).

    .venv/bin/python benchmarks/bench_inference.py [--quick] [--size large] [--layer 20]

Authors
 * emoshare_sb contributors 2026
"""

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import _common

ALL_VARIANTS = (
    "plain,ours,ours-sdpa,ours-eager,ours-bf16,torch-int8,ort-fp32,ort-int8"
)


def load_clips(manifest):
    """The waveforms of a manifest's clips."""
    from emoshare_sb.data.audio import read_audio

    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [read_audio(row["wav"]) for row in rows]


def load_targets(manifest):
    """``[N, 9]`` emotion shares of a manifest."""
    import torch

    from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS

    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return torch.tensor(
        [[float(r[e]) for e in COMPARE23_EMOTIONS] for r in rows]
    )


def make_head(encoder_dim):
    """The recipe's pooling + head (hparams/hubert_attn.yaml)."""
    import torch

    from emoshare_sb.nnet.heads import MLPHead
    from emoshare_sb.nnet.pooling import MaskedAttentivePooling

    torch.manual_seed(0)
    pooling = MaskedAttentivePooling(input_size=encoder_dim)
    head = MLPHead(encoder_dim, 9, hidden_size=256, activation=torch.nn.GELU,
                   output_activation="sigmoid")  # fmt: skip
    return pooling, head


def train_head(args, tmp, train_manifest):
    """Trains pooling + head on ``ours`` features of the train clips; saves them."""
    import torch

    from emoshare_sb.lobes.ssl import SSLEncoder
    from emoshare_sb.nnet.losses import ccc_loss
    from emoshare_sb.training.feature_cache import encode_clips

    encoder = SSLEncoder(args.model, tmp, layer=args.layer)
    features = encode_clips(encoder, load_clips(train_manifest))
    targets = load_targets(train_manifest)
    pooling, head = make_head(encoder.output_size)
    params = list(pooling.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(args.head_steps):
        index = torch.randperm(len(features), generator=generator)[:8]
        batch = torch.nn.utils.rnn.pad_sequence(
            [features[i] for i in index], batch_first=True
        )
        lens = (
            torch.tensor([features[i].shape[0] for i in index]) / batch.shape[1]
        )
        loss = ccc_loss(head(pooling(batch, lens)), targets[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    path = os.path.join(tmp, "head.pt")
    torch.save(
        {"pooling": pooling.state_dict(), "head": head.state_dict()}, path
    )
    return path


def build_interface(args, attention="auto"):
    """EmotionShareRegressor: our encoder + the trained pooling and head."""
    import torch

    from emoshare_sb.inference.interfaces import EmotionShareRegressor
    from emoshare_sb.lobes.ssl import SSLEncoder

    encoder = SSLEncoder(
        args.model, args.tmp, layer=args.layer, attention=attention
    )
    pooling, head = make_head(encoder.output_size)
    state = torch.load(args.head, weights_only=True)
    pooling.load_state_dict(state["pooling"])
    head.load_state_dict(state["head"])
    from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS

    return EmotionShareRegressor(
        {"encoder": encoder, "pooling": pooling, "head": head},
        {"emotions": COMPARE23_EMOTIONS, "sample_rate": 16000, "window": None,
         "hop": None},
        run_opts={"device": "cpu"},
    )  # fmt: skip


def run_worker(args):
    """One path in this process: times a pass over the devel clips."""
    import torch

    from emoshare_sb.lobes.ssl import masked_normalize

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    wavs = load_clips(args.manifest)
    audio_seconds = sum(w.shape[0] for w in wavs) / 16000
    attention = "-"
    if args.worker.startswith("ort"):
        from emoshare_sb.inference.onnx import load_onnx_model

        model = load_onnx_model(
            args.onnx, quantized=args.worker == "ort-int8", threads=args.threads
        )

        def run(clips):
            return [model(w[None])[0] for w in clips]

    else:
        interface = build_interface(
            args,
            {"ours-sdpa": "sdpa", "ours-eager": "eager"}.get(
                args.worker, "auto"
            ),
        )
        pooling, head = interface.mods.pooling, interface.mods.head
        if args.worker == "plain":
            import transformers

            plain = transformers.HubertModel.from_pretrained(
                args.model, attn_implementation="eager"
            ).eval()
            attention = "eager"

            def run(clips):
                outputs = []
                with torch.no_grad():
                    for wav in clips:
                        wav = masked_normalize(
                            wav[None],
                            torch.ones(1, wav.shape[0], dtype=torch.bool),
                        )
                        out = plain(
                            wav, output_hidden_states=args.layer is not None
                        )
                        feats = (
                            out.last_hidden_state
                            if args.layer is None
                            else out.hidden_states[args.layer]
                        )
                        outputs.append(head(pooling(feats))[0])
                return outputs

        else:
            from emoshare_sb.training.feature_cache import encode_clips

            encoder = interface.mods.encoder
            if args.worker == "torch-int8":
                encoder.model = torch.ao.quantization.quantize_dynamic(
                    encoder.model, {torch.nn.Linear}, dtype=torch.qint8,
                    inplace=True,
                )  # fmt: skip
            options = {}
            if args.worker == "ours-bf16":
                options["autocast_dtype"] = torch.bfloat16

            def run(clips):
                features = encode_clips(encoder, clips, **options)
                with torch.inference_mode():
                    return [head(pooling(f[None]))[0] for f in features]

    run(sorted(wavs, key=len)[:2])  # warm-up: allocator, kernels
    if not args.worker.startswith(("ort", "plain")):
        attention = encoder.model.config._attn_implementation
    passes = []
    for _ in range(args.passes):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        outputs = run(wavs)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - usage.ru_utime) + (
            after.ru_stime - usage.ru_stime
        )
        passes.append((wall, cpu))
    wall, cpu = min(passes)
    torch.save(torch.stack([o.float() for o in outputs]), args.out + ".pt")
    with open(args.out + ".json", "w") as handle:
        json.dump(
            {
                "attention": attention,
                "rtf": wall / audio_seconds,
                "cpu_share": cpu / wall,
                "audio_seconds": audio_seconds,
                "peak_rss_mb": _common.peak_rss_mb(),
            },
            handle,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="few clips, 1 round"
    )
    parser.add_argument("--clips", type=int, default=12, help="devel clips")
    parser.add_argument("--train-clips", type=int, default=24)
    parser.add_argument("--head-steps", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--size", choices=("base", "large"), default="base")
    parser.add_argument(
        "--layer", type=int, default=None, help="hidden state read"
    )
    parser.add_argument("--threads", type=int, default=_common.NUM_THREADS)
    parser.add_argument("--variants", default=ALL_VARIANTS)
    parser.add_argument(
        "--force-bf16", action="store_true",
        help="run ours-bf16 even without native bfloat16 (it warns)",
    )  # fmt: skip
    for hidden in ("--worker", "--model", "--manifest", "--tmp", "--out",
                   "--head", "--onnx"):  # fmt: skip
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_worker(args)
    if args.quick:
        args.clips, args.train_clips, args.rounds, args.passes = 6, 12, 1, 1
        args.head_steps = 60

    import torch

    from emoshare_sb.inference.onnx import export_onnx, quantize_onnx
    from emoshare_sb.metrics.regression import regression_scores
    from emoshare_sb.utils.cpu import has_native_bf16

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    variants = args.variants.split(",")
    skipped = []
    if "ours-bf16" in variants and not (has_native_bf16() or args.force_bf16):
        variants.remove("ours-bf16")
        skipped.append(
            "ours-bf16 (no native bfloat16 on this CPU: not offered)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        manifests = _common.make_corpus(
            tmp, n_train=args.train_clips, n_devel=args.clips, seed=1
        )
        args.model, params = _common.make_hubert_folder(
            os.path.join(tmp, "hubert"), args.size
        )
        args.tmp = tmp
        args.head = train_head(args, tmp, manifests["train"])
        args.onnx = os.path.join(tmp, "onnx")
        if any(v.startswith("ort") for v in variants):
            export_onnx(build_interface(args), args.onnx)
            quantize_onnx(args.onnx)
        print(
            f"HuBERT-{args.size.capitalize()}-shaped random encoder "
            f"({params / 1e6:.1f} M parameters), hidden state "
            f"{'last' if args.layer is None else args.layer}, {args.clips} devel "
            f"clips of 1-8 s, {args.rounds} round(s) x {args.passes} pass(es)"
        )
        results = {v: [] for v in variants}
        for round_index in range(args.rounds):
            for variant in variants:
                out = os.path.join(tmp, f"{variant}-{round_index}")
                command = [sys.executable, __file__, "--worker", variant]
                for name in (
                    "model",
                    "tmp",
                    "head",
                    "onnx",
                    "threads",
                    "passes",
                ):
                    command += [f"--{name}", str(getattr(args, name))]
                if args.layer is not None:
                    command += ["--layer", str(args.layer)]
                command += ["--manifest", manifests["devel"], "--out", out]
                subprocess.run(command, check=True)
                with open(out + ".json") as handle:
                    results[variant].append(json.load(handle))
        predictions = {
            v: torch.load(os.path.join(tmp, f"{v}-0.pt")) for v in variants
        }
        targets = load_targets(manifests["devel"]).numpy()
        machine = _common.machine_line()

    from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS

    def spearman(values):
        scores = regression_scores(targets, values.numpy(), COMPARE23_EMOTIONS)
        return scores["spearman"]["mean"]

    reference = predictions["plain"]
    plain_spearman = spearman(reference)
    best = {v: min(r, key=lambda x: x["rtf"]) for v, r in results.items()}
    plain_rtf = best["plain"]["rtf"]
    rows = []
    for variant in variants:
        run = best[variant]
        diff = float((predictions[variant] - reference).abs().max())
        rows.append(
            [
                variant, run["attention"], f"{run['rtf']:.3f}",
                f"{plain_rtf / run['rtf']:.2f}x", f"{run['cpu_share']:.2f}",
                f"{max(r['peak_rss_mb'] for r in results[variant]):.0f}",
                f"{diff:.1e}",
                f"{spearman(predictions[variant]) - plain_spearman:+.4f}",
            ]
        )  # fmt: skip
    print(machine)
    print(
        f"Audio: {best['plain']['audio_seconds']:.1f} s per pass; devel mean "
        f"Spearman of plain: {plain_spearman:.3f} (random encoder: only the change "
        "per path is meaningful)\n"
    )
    _common.print_table(
        ["path", "attention", "RTF", "vs plain", "CPU cores used",
         "peak RSS MB", "max pred. diff vs plain", "devel Spearman change"],
        rows,
    )  # fmt: skip
    for line in skipped:
        print(f"skipped: {line}")
    for variant in variants:
        if best[variant]["cpu_share"] < 0.9 * args.threads:
            print(f"{variant}: measured while other processes held the cores")


if __name__ == "__main__":
    main()
