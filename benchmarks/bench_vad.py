#!/usr/bin/env python3
"""Benchmark: ``emoshare-predict --vad`` on a long recording that is 40 % silence.

A 20-minute recording is built from espeak-ng sentences (real synthesised
speech, :mod:`emoshare_sb.synthetic.speech`) in turns of 1-6 sentences separated by pauses of 0.5-30 s (log-uniform), so
that 40 % of it is silence (a -60 dB noise floor, as in a quiet room). It is
scored by ``emoshare-predict`` (in this process, model loading included) on
a random HuBERT-shaped encoder, with and without ``--vad``, in one run. The
table gives the real-time factor of each, the detector's own share of the
``--vad`` time, the share of windows marked silent and the share of the
recording the detector calls speech.

    .venv/bin/python benchmarks/bench_vad.py [--quick] [--size small]

Authors
 * emoshare_sb contributors 2026
"""

import argparse
import csv
import os
import sys
import tempfile
import time

import _common
import numpy as np
import soundfile
import torch
from bench_predict import SHAPES, make_encoder

SENTENCES = (
    "I told you already, the meeting has been moved to Thursday afternoon.",
    "Honestly, I did not expect the results to come back so quickly.",
    "Could you please send me the report before the end of the day?",
    "We walked along the river until the sun went down behind the hills.",
    "That is the third time this week the train has been late.",
    "She laughed and said that it was the best news she had heard all year.",
)


def make_recording(path, minutes, silence_share, seed=0):
    """Writes the recording; returns its speech and silence seconds as built."""
    import torchaudio

    from emoshare_sb.synthetic.speech import speak

    rng = np.random.default_rng(seed)
    utterances = []
    for index, sentence in enumerate(SENTENCES):
        wav, rate = speak(sentence, rate=150 + 15 * index, pitch=40 + 8 * index)
        utterances.append(
            torchaudio.functional.resample(torch.from_numpy(wav), rate, 16000)
        )
    total = int(minutes * 60 * 16000)
    speech_target = int(total * (1 - silence_share))
    # Turns of 1-6 sentences (0.3 s apart), then a pause of 0.5-30 s
    # (log-uniform, scaled so that silence is ``silence_share``).
    turns, speech = [], 0
    gap = torch.zeros(int(0.3 * 16000))
    while speech < speech_target:
        count = int(rng.integers(1, 7))
        parts = []
        for _ in range(count):
            parts += [utterances[rng.integers(len(utterances))], gap]
        turn = torch.cat(parts[:-1])[: speech_target - speech]
        turns.append(turn)
        speech += len(turn)
    pauses = np.exp(rng.uniform(np.log(0.5), np.log(30.0), size=len(turns)))
    pauses *= (total - speech) / pauses.sum()
    signal = []
    for turn, pause in zip(turns, pauses, strict=True):
        signal.append(torch.zeros(int(pause)))
        signal.append(turn)
    signal = torch.cat(signal)
    signal = torch.nn.functional.pad(signal, (0, max(0, total - len(signal))))
    signal = signal[:total] + 1e-3 * torch.from_numpy(
        rng.standard_normal(total).astype("float32")
    )
    soundfile.write(path, signal.numpy(), 16000, subtype="PCM_16")
    return speech / 16000, (total - speech) / 16000


def run_predict(export, path, output, vad):
    """Times ``emoshare-predict`` on the recording; returns (seconds, rows)."""
    from emoshare_sb.cli.predict import main

    arguments = ["-m", export, path, "-o", output, "--no_progress"]
    start = time.perf_counter()
    status = main(arguments + (["--vad"] if vad else []))
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"emoshare-predict exited with {status}")
    with open(output, newline="") as handle:
        return seconds, list(csv.DictReader(handle))


def main(argv=None):
    """Runs the benchmark and prints its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--silence", type=float, default=0.4)
    parser.add_argument(
        "--size", choices=(*SHAPES, "base", "large"), default="small"
    )
    parser.add_argument("--threads", type=int, default=_common.NUM_THREADS)
    parser.add_argument(
        "--quick", action="store_true", help="a 3-minute recording"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes = 3.0
    torch.set_num_threads(args.threads)
    print(_common.machine_line())

    from emoshare_sb.data.vad import speech_regions
    from emoshare_sb.inference.interfaces import _tiny_experiment, export_model
    from emoshare_sb.inference.scoring import one_torch_thread

    with tempfile.TemporaryDirectory() as tmp:
        encoder, width = make_encoder(os.path.join(tmp, "encoder"), args.size)
        experiment = _tiny_experiment(
            os.path.join(tmp, "experiment"), encoder, ("Calm", "Sad"), width
        )
        export = export_model(experiment, os.path.join(tmp, "export"))
        path = os.path.join(tmp, "recording.wav")
        speech, silence = make_recording(path, args.minutes, args.silence)
        duration = speech + silence

        signal = torch.from_numpy(soundfile.read(path, dtype="float32")[0])
        speech_regions(signal[:16000])  # load the detector once
        start = time.perf_counter()
        with one_torch_thread():  # as emoshare-predict runs it
            regions = speech_regions(signal)
        vad_seconds = time.perf_counter() - start
        found = sum(end - start for start, end in regions) / 16000

        output = os.path.join(tmp, "out.csv")
        plain_seconds, _ = run_predict(export, path, output, vad=False)
        vad_total, rows = run_predict(export, path, output, vad=True)

    windows = [r for r in rows if r["segment"] != "clip"]
    silent = sum(r["silent"] == "1" for r in windows) / len(windows)
    print(
        f"{duration / 60:.1f} min recording, {silence / duration:.0%} silence "
        f"as built; HuBERT {args.size} shape (random weights); model windows "
        f"8 s every 4 s; {args.threads} torch threads; one pass each"
    )
    _common.print_table(
        ["path", "seconds", "RTF", "vs without", "detector", "windows silent"],
        [
            [
                "without --vad",
                f"{plain_seconds:.1f}",
                f"{plain_seconds / duration:.4f}",
                "1.00x",
                "",
                "",
            ],
            [
                "--vad",
                f"{vad_total:.1f}",
                f"{vad_total / duration:.4f}",
                f"{plain_seconds / vad_total:.2f}x",
                f"{vad_seconds:.1f} s (RTF {vad_seconds / duration:.4f})",
                f"{silent:.0%}",
            ],
        ],
    )
    print(
        f"speech found by the detector: {found / duration:.0%} of the "
        f"recording ({speech / duration:.0%} speech as built)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
