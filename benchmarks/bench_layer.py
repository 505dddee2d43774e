#!/usr/bin/env python3
"""Benchmark: reading hidden layer k of a Large encoder, ours vs plain transformers.

A recipe that reads hidden state ``k`` (``ssl_layer: 20`` of WavLM-Large in
the MSP-Podcast YAML, 18 in the Aalto system) needs only the first ``k``
transformer layers. On the same clips (16 kHz, 1-8 s) and the same random
Large-shaped weights (24 layers, 1024 wide), one clip at a time, in one
process with the passes interleaved (so both see the same machine load):

* ``plain``: ``transformers.HubertModel`` (or ``WavLMModel``) with its
  default attention, ``output_hidden_states=True``, ``hidden_states[k]``
  (what a user writes), under ``torch.inference_mode``;
* ``ours``: :class:`~emoshare_sb.lobes.ssl.SSLEncoder` with ``layer=k``
  (:func:`~emoshare_sb.training.feature_cache.encode_clips`), which runs
  only layers ``0 .. k - 1``.

Both get the same normalised waveform. Printed: the fastest and median pass
of each (wall clock), the ratio, the CPU time per second of audio (less
affected by other processes on a shared machine; use ``--threads 1`` there),
and whether the features are bit-identical (``torch.equal``).

    .venv/bin/python benchmarks/bench_layer.py [--quick] [--layer 20] [--family wavlm]

Authors
 * emoshare_sb contributors 2026
"""

import argparse
import os
import statistics
import tempfile
import time
import warnings

import _common

TARGET = 1.2


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="4 clips, 2 rounds"
    )
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--layer", type=int, nargs="+", default=[20, 18])
    parser.add_argument(
        "--family", choices=("hubert", "wavlm"), default="hubert"
    )
    parser.add_argument("--threads", type=int, default=_common.NUM_THREADS)
    args = parser.parse_args()
    if args.quick:
        args.clips, args.rounds = 4, 2

    import torch
    import transformers

    from emoshare_sb.lobes.ssl import SSLEncoder, masked_normalize
    from emoshare_sb.training.feature_cache import encode_clips

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    config_class, model_class = {
        "hubert": (transformers.HubertConfig, transformers.HubertModel),
        "wavlm": (transformers.WavLMConfig, transformers.WavLMModel),
    }[args.family]
    with tempfile.TemporaryDirectory() as tmp:
        manifest = _common.make_corpus(tmp, n_train=args.clips, seed=2)["train"]
        from bench_inference import load_clips

        wavs = load_clips(manifest)
        folder = os.path.join(tmp, "large")
        torch.manual_seed(0)
        config = config_class(**_common.LARGE_SHAPE)
        model_class(config).save_pretrained(folder)
        transformers.Wav2Vec2FeatureExtractor(
            return_attention_mask=True
        ).save_pretrained(folder)
        plain = model_class.from_pretrained(folder).eval()
        audio = sum(w.shape[0] for w in wavs) / 16000
        normalised = [
            masked_normalize(
                w[None], torch.ones(1, w.shape[0], dtype=torch.bool)
            )[0]
            for w in wavs
        ]
        print(_common.machine_line())
        print(
            f"{args.family} Large shape (24 layers, 1024 wide), {args.clips} clips, "
            f"{audio:.1f} s of audio, {args.rounds} rounds, attention "
            f"{plain.config._attn_implementation} (plain)"
        )
        rows = []
        for layer in args.layer:
            ours = SSLEncoder(folder, tmp, layer=layer)
            ours.normalize_wav = False  # both get the same normalised input

            def run_plain(layer=layer):
                with torch.inference_mode():
                    return [
                        plain(w[None], output_hidden_states=True).hidden_states[
                            layer
                        ][0]
                        for w in normalised
                    ]

            def run_ours(encoder=ours):
                return encode_clips(encoder, normalised)

            run_plain()  # warm-up
            run_ours()
            times = {"plain": [], "ours": []}
            cpu_times = {"plain": [], "ours": []}
            for _ in range(args.rounds):
                for name, run in (("plain", run_plain), ("ours", run_ours)):
                    start, cpu_start = time.perf_counter(), time.process_time()
                    outputs = run()
                    times[name].append(time.perf_counter() - start)
                    cpu_times[name].append(time.process_time() - cpu_start)
                    if name == "plain":
                        reference = outputs
                    else:
                        identical = all(
                            torch.equal(a, b)
                            for a, b in zip(outputs, reference, strict=True)
                        )
            best = {n: min(t) / audio for n, t in times.items()}
            median = {n: statistics.median(t) / audio for n, t in times.items()}
            ratio = best["plain"] / best["ours"]
            cpu = {n: min(t) / audio for n, t in cpu_times.items()}
            rows.append(
                [
                    f"layer {layer} of 24",
                    f"{best['plain']:.3f} / {median['plain']:.3f}",
                    f"{best['ours']:.3f} / {median['ours']:.3f}",
                    f"{ratio:.2f}x ({median['plain'] / median['ours']:.2f}x)",
                    f"{cpu['plain']:.3f} / {cpu['ours']:.3f}: "
                    f"{cpu['plain'] / cpu['ours']:.2f}x",
                    "yes" if identical else "NO",
                    f">= {TARGET}x: {'met' if ratio >= TARGET else 'missed'}",
                ]
            )
            del ours
        print(f"load average after: {os.getloadavg()[0]:.2f}\n")
        _common.print_table(
            [
                "hidden state read", "plain RTF best / median",
                "ours RTF best / median", "speed-up best (median)",
                "CPU-s per audio-s plain / ours",
                "bit-identical", "target",
            ],
            rows,
        )  # fmt: skip


if __name__ == "__main__":
    main()
