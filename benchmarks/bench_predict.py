#!/usr/bin/env python3
"""Benchmark: ``emoshare-predict`` throughput vs the simplest correct user script.

A folder of 200 clips of 2-8 s (two thirds 16 kHz mono WAV, one third
44.1 kHz stereo FLAC, so that decoding and resampling cost something) is
scored twice in one run, on the same random HuBERT-shaped encoder and the
same pooling + head (an export of an untrained experiment):

* ``plain``: what a user writes with transformers and our head, one file at
  a time: ``soundfile.read``, down-mix, ``torchaudio.functional.resample``,
  ``Wav2Vec2FeatureExtractor``, ``HubertModel`` under ``no_grad``, then the
  export's pooling and head;
* ``emoshare-predict``: the command (in this process), which sorts the files
  by duration, decodes them in DataLoader worker processes and scores
  ``--batch_size`` windows per forward pass.

Both include loading the model; both use the same torch thread count. The
table gives files per second, the ratio and the largest difference of the
two paths' predictions (they compute the same model).

    .venv/bin/python benchmarks/bench_predict.py [--quick] [--size base]

Authors
 * emoshare_sb contributors 2026
"""

import argparse
import os
import sys
import tempfile
import time

import _common
import numpy as np
import soundfile
import torch

# Random HuBERT shapes smaller than Base: ``small`` (4 layers, 256 wide) for
# a run of minutes on 2 cores; ``micro`` (1 layer, 16 wide, 4-channel
# front-end, the command-line tests' encoder), where decoding, resampling
# and batching are most of the work: what this benchmark is about.
SHAPES = {
    "small": dict(
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    ),
    "micro": dict(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(4,) * 7,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    ),
}


def make_encoder(folder, size):
    """A random HuBERT of ``size`` (see ``SHAPES``, or ``base``/``large``) saved to ``folder``."""
    import transformers

    if size in SHAPES:
        config = transformers.HubertConfig(**SHAPES[size])
        torch.manual_seed(0)
        transformers.HubertModel(config).save_pretrained(folder)
        transformers.Wav2Vec2FeatureExtractor(
            feature_size=1,
            sampling_rate=16000,
            padding_value=0.0,
            do_normalize=True,
            return_attention_mask=True,
        ).save_pretrained(folder)
        return folder, config.hidden_size
    _common.make_hubert_folder(folder, size)
    return folder, _common.hubert_config(size).hidden_size


def make_clips(folder, count, seed=0):
    """``count`` clips of 2-8 s: WAV 16 kHz mono, every third FLAC 44.1 kHz stereo."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    total = 0.0
    for index in range(count):
        seconds = rng.uniform(2.0, 8.0)
        total += seconds
        if index % 3 == 2:
            samples = 0.1 * rng.standard_normal((int(seconds * 44100), 2))
            soundfile.write(
                os.path.join(folder, f"{index:03d}.flac"), samples, 44100
            )
        else:
            samples = 0.1 * rng.standard_normal(int(seconds * 16000))
            soundfile.write(
                os.path.join(folder, f"{index:03d}.wav"), samples, 16000
            )
    return total


def plain_script(encoder_folder, export_folder, files):
    """The user's script: one file at a time, transformers + our head."""
    import torchaudio
    import transformers

    from emoshare_sb.inference.interfaces import load_model

    extractor = transformers.Wav2Vec2FeatureExtractor.from_pretrained(
        encoder_folder
    )
    encoder = transformers.HubertModel.from_pretrained(encoder_folder).eval()
    ours = load_model(export_folder)  # only its pooling and head are used
    pooling, head = ours.mods.pooling, ours.mods.head
    predictions = {}
    for path in files:
        wav, rate = soundfile.read(path, dtype="float32", always_2d=True)
        wav = torch.from_numpy(wav.mean(axis=1))
        if rate != 16000:
            wav = torchaudio.functional.resample(wav, rate, 16000)
        inputs = extractor(
            wav.numpy(), sampling_rate=16000, return_tensors="pt"
        )
        with torch.no_grad():
            features = encoder(inputs.input_values).last_hidden_state
            embedding = pooling(features, torch.ones(1))
            predictions[path] = head(embedding)[0].tolist()
    return predictions


def our_command(export_folder, clips_folder, output, workers, batch_size):
    """``emoshare-predict`` on the folder; returns {file: [values]}."""
    import csv

    from emoshare_sb.cli.predict import main

    status = main(
        ["-m", export_folder, clips_folder, "-o", output, "--no_progress"]
        + ["--num_workers", str(workers), "--batch_size", str(batch_size)]
    )
    if status != 0:
        raise SystemExit(f"emoshare-predict exited with {status}")
    with open(output, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["segment"] == "clip"]
    names = [c for c in rows[0] if c not in ("file", "segment", "start", "end")]
    names.remove("error")
    return {r["file"]: [float(r[n]) for n in names] for r in rows}


def main(argv=None):
    """Runs the benchmark and prints its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=None)
    parser.add_argument(
        "--size", choices=(*SHAPES, "base", "large"), default="small"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating passes per path"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=_common.NUM_THREADS)
    parser.add_argument(
        "--quick", action="store_true", help="40 clips instead of 200"
    )
    args = parser.parse_args(argv)
    if args.clips is None:
        args.clips = 40 if args.quick else 200
    torch.set_num_threads(args.threads)
    print(_common.machine_line())

    from emoshare_sb.inference.interfaces import _tiny_experiment, export_model

    with tempfile.TemporaryDirectory() as tmp:
        encoder_folder, width = make_encoder(
            os.path.join(tmp, "encoder"), args.size
        )
        experiment = _tiny_experiment(
            os.path.join(tmp, "experiment"),
            encoder_folder,
            ("Calm", "Sad"),
            encoder_dim=width,
        )
        export = export_model(experiment, os.path.join(tmp, "export"))
        clips = os.path.join(tmp, "clips")
        audio_seconds = make_clips(clips, args.clips)
        files = sorted(os.path.join(clips, name) for name in os.listdir(clips))

        timings, outputs = {}, {}
        for name in ("plain", "emoshare-predict") * args.rounds:
            start = time.perf_counter()
            if name == "plain":
                result = plain_script(encoder_folder, export, files)
            else:
                result = our_command(
                    export,
                    clips,
                    os.path.join(tmp, "out.csv"),
                    args.workers,
                    args.batch_size,
                )
            seconds = time.perf_counter() - start
            timings[name] = min(seconds, timings.get(name, float("inf")))
            outputs[name] = result

    difference = max(
        abs(a - b)
        for path in files
        for a, b in zip(
            outputs["plain"][path],
            outputs["emoshare-predict"][path],
            strict=True,
        )
    )
    print(
        f"{args.clips} clips, {audio_seconds / 60:.1f} min of audio; HuBERT "
        f"{args.size} shape (random weights); {args.threads} torch threads; "
        f"emoshare-predict --num_workers {args.workers} --batch_size "
        f"{args.batch_size}; fastest of {args.rounds} alternating passes"
    )
    rows = []
    for name in ("plain", "emoshare-predict"):
        rate = args.clips / timings[name]
        rows.append(
            [
                name,
                f"{timings[name]:.1f}",
                f"{rate:.2f}",
                f"{timings[name] / audio_seconds:.4f}",
                f"{timings['plain'] / timings[name]:.2f}x",
            ]
        )
    _common.print_table(["path", "seconds", "files/s", "RTF", "vs plain"], rows)
    print(f"largest prediction difference: {difference:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
