"""``emoshare-predict`` on folders, CSV lists, bad files, stereo 44.1 kHz and 20-minute audio."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from emoshare_sb.cli.predict import main
from emoshare_sb.inference.interfaces import (
    _tiny_experiment,
    export_model,
    load_model,
)
from emoshare_sb.inference.windows import window_starts

EMOTIONS = ["Calm", "Sad", "Angry"]
LONG_SECONDS = 20 * 60


def micro_hubert(folder):
    """A HuBERT far smaller than the shared test one (4-channel front-end,
    16 wide, one layer), so that 20 minutes of audio are scored in seconds."""
    import torch
    import transformers

    config = transformers.HubertConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(4,) * 7,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        layerdrop=0.0,
    )
    torch.manual_seed(0)
    transformers.HubertModel(config).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """An exported (untrained) model on the micro encoder."""
    root = tmp_path_factory.mktemp("cli_model")
    experiment = _tiny_experiment(
        str(root / "experiment"),
        micro_hubert(str(root / "ssl")),
        EMOTIONS,
        encoder_dim=16,
    )
    return export_model(experiment, str(root / "export"))


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 20)
    stereo = 0.1 * rng.standard_normal((3 * 44100, 2)).astype("float32")
    soundfile.write(folder / "stereo_44k.wav", stereo, 44100)
    t = np.arange(LONG_SECONDS * 16000, dtype=np.float32) / 16000
    soundfile.write(
        folder / "long.wav",
        0.2 * np.sin(2 * np.pi * 180 * t),
        16000,
        subtype="PCM_16",
    )
    (folder / "sub").mkdir()
    soundfile.write(
        folder / "sub" / "short.flac", 0.1 * rng.standard_normal(20000), 16000
    )
    (folder / "notes.txt").write_text("not audio")
    return folder


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_folder_with_corrupt_stereo_and_20_minute_files(
    model_folder, audio_folder, tmp_path, capsys
):
    output = tmp_path / "predictions.csv"
    # Windows without overlap keep the 20 minutes to one pass of the encoder.
    status = main(
        [
            "--model",
            model_folder,
            str(audio_folder),
            "--output",
            str(output),
            "--window",
            "120",
            "--hop",
            "120",
            "--no_progress",
        ]
    )
    assert status == 1  # one file failed, the others were scored
    assert "corrupt.wav" in capsys.readouterr().err

    rows = read_rows(output)
    assert list(rows[0]) == [
        "file",
        "segment",
        "start",
        "end",
        *EMOTIONS,
        "error",
    ]
    by_file = {}
    for row in rows:
        by_file.setdefault(row["file"].rsplit("/", 1)[-1], []).append(row)
    assert set(by_file) == {
        "corrupt.wav",
        "long.wav",
        "stereo_44k.wav",
        "short.flac",
    }

    (failed,) = by_file["corrupt.wav"]
    assert "cannot read audio" in failed["error"] and failed["Calm"] == ""

    (stereo,) = by_file[
        "stereo_44k.wav"
    ]  # 3 s: one window, the summary row only
    assert (
        stereo["segment"],
        stereo["start"],
        stereo["end"],
        stereo["error"],
    ) == ("clip", "0.000", "3.000", "")
    assert all(0.0 <= float(stereo[e]) <= 1.0 for e in EMOTIONS)

    summary, *windows = by_file["long.wav"]
    assert (
        summary["segment"] == "clip" and float(summary["end"]) == LONG_SECONDS
    )
    assert [int(w["segment"]) for w in windows] == list(range(10))
    assert [float(w["start"]) for w in windows] == [
        120.0 * i for i in range(10)
    ]
    assert all(float(w["end"]) - float(w["start"]) == 120.0 for w in windows)
    for emotion in EMOTIONS:
        mean = np.mean([float(w[emotion]) for w in windows])
        assert float(summary[emotion]) == pytest.approx(mean, abs=2e-6)


def test_csv_list_json_output_and_success_status(
    model_folder, audio_folder, tmp_path
):
    listing = audio_folder / "list.csv"
    listing.write_text("speaker,path\na,stereo_44k.wav\nb,sub/short.flac\n")
    output = tmp_path / "out.json"
    status = main(
        ["-m", model_folder, str(listing), "-o", str(output), "--no_progress"]
    )
    assert status == 0
    document = json.loads(output.read_text())
    assert document["outputs"] == EMOTIONS and document["failed"] == 0
    assert (document["window"], document["hop"]) == (8.0, 4.0)
    files = {f["file"].rsplit("/", 1)[-1]: f for f in document["files"]}
    assert set(files) == {"stereo_44k.wav", "short.flac"}
    assert files["short.flac"]["duration"] == pytest.approx(1.25)
    assert (
        len(files["short.flac"]["windows"]) == 1
        and files["short.flac"]["error"] is None
    )

    # The command line and the Python API agree (to the printed decimals).
    model = load_model(model_folder)
    expected = model.predict_file(str(audio_folder / "stereo_44k.wav"))
    assert files["stereo_44k.wav"]["summary"] == pytest.approx(
        expected, abs=1e-7
    )


def test_window_rows_with_the_default_half_hop(
    model_folder, audio_folder, tmp_path
):
    output = tmp_path / "out.csv"
    stereo = str(audio_folder / "stereo_44k.wav")
    assert (
        main(
            [
                "-m",
                model_folder,
                stereo,
                "-o",
                str(output),
                "--window",
                "1",
                "--no_progress",
            ]
        )
        == 0
    )
    summary, *windows = read_rows(output)
    starts = window_starts(3 * 16000, 16000, 8000)
    assert (
        [float(w["start"]) for w in windows]
        == [s / 16000 for s in starts]
        == [0, 0.5, 1, 1.5, 2]
    )
    assert summary["segment"] == "clip" and summary["end"] == "3.000"


def test_missing_file_is_reported_not_fatal(
    model_folder, audio_folder, tmp_path
):
    output = tmp_path / "out.csv"
    status = main(
        [
            "-m",
            model_folder,
            str(tmp_path / "absent.wav"),
            str(audio_folder / "sub" / "short.flac"),
            "-o",
            str(output),
            "--no_progress",
        ]
    )
    assert status == 1
    rows = read_rows(output)
    assert rows[0]["file"].endswith("absent.wav") and rows[0]["error"].endswith(
        "no such file"
    )
    assert rows[1]["file"].endswith("short.flac") and rows[1]["error"] == ""


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["-m", "{model}"], None),  # no inputs: argparse
        (["-m", "{tmp}/nowhere", "{audio}"], "/nowhere' does not exist"),
        (["-m", "{tmp}", "{audio}"], "holds no hyperparams.yaml"),
        (["-m", "{model}", "{audio}", "--window", "inf"], "--window must be"),
        (["-m", "{model}", "{audio}", "--window", "nan"], "--window must be"),
        (["-m", "{model}", "{audio}", "--window", "-1"], "--window must be"),
        (["-m", "{model}", "{audio}", "--hop", "nan"], "--hop must be"),
        (["-m", "{model}", "{audio}", "-o", "{tmp}"], "is a folder"),
        (["-m", "{model}", "{audio}", "-o", "{tmp}/a/b.csv"], "does not exist"),
        (["-m", "{model}", "{audio}", "--device", "gpu7"], "is not a device"),
        (["-m", "{model}", "{tmp}"], "no audio files"),
        (
            ["-m", "{model}", "{audio}", "--window", "4", "--hop", "5"],
            "--hop must be in",
        ),
        (["-m", "{model}", "{audio}", "--format", "xml"], None),
    ],
)
def test_usage_errors_exit_with_status_2(
    model_folder, audio_folder, tmp_path, capsys, arguments, message
):
    empty = tmp_path / "empty"
    empty.mkdir()
    values = {
        "model": model_folder,
        "audio": str(audio_folder / "sub"),
        "tmp": str(empty),
    }
    assert main([a.format(**values) for a in arguments]) == 2
    if message:
        assert message in capsys.readouterr().err


def test_module_runs_as_a_script():
    process = subprocess.run(
        [sys.executable, "-m", "emoshare_sb.cli.predict", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0 and "--window" in process.stdout


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="this machine has a GPU"
)
def test_cuda_without_a_gpu_is_one_line_and_status_2(
    model_folder, audio_folder, capsys
):
    for device in ("cuda", "cuda:0"):
        status = main(
            ["-m", model_folder, str(audio_folder / "sub"), "--device", device]
        )
        err = capsys.readouterr().err
        assert status == 2
        assert (
            err == "emoshare-predict: error: no CUDA device; use --device cpu\n"
        )


def test_output_folder_is_refused_before_any_file_is_scored(
    model_folder, audio_folder, tmp_path, monkeypatch, capsys
):
    import emoshare_sb.cli.predict as predict

    def no_scoring(*args, **kwargs):
        raise AssertionError("scored before the output was checked")

    monkeypatch.setattr(predict, "score_files", no_scoring)
    monkeypatch.setattr(predict, "_load", no_scoring)
    assert (
        main(["-m", model_folder, str(audio_folder), "-o", str(tmp_path)]) == 2
    )
    assert "is a folder" in capsys.readouterr().err


def test_one_clip_one_row_whatever_the_path(
    model_folder, audio_folder, tmp_path, monkeypatch
):
    """16.4: a file named by a folder, by a list with ``../`` and by a link."""
    import os

    work = tmp_path / "x"
    work.mkdir()
    monkeypatch.chdir(work)
    os.symlink(audio_folder / "sub", tmp_path / "linked")
    listing = tmp_path / "list.csv"
    relative = os.path.relpath(audio_folder / "sub" / "short.flac", tmp_path)
    listing.write_text(f"path\n{relative}\n./linked/short.flac\n")
    output = tmp_path / "out.csv"
    arguments = [str(audio_folder / "sub"), str(listing), "../linked"]
    assert main(["-m", model_folder, *arguments, "-o", str(output)]) == 0
    rows = read_rows(output)
    assert [r["file"] for r in rows] == [
        str(audio_folder / "sub" / "short.flac")
    ]


def test_a_nan_prediction_is_an_error_row_not_a_success(
    model_folder, audio_folder, tmp_path, capsys
):
    """11.5: a model whose head gives NaN fails its files (exit status 1)."""
    import shutil

    import torch

    broken = tmp_path / "nan_model"
    shutil.copytree(model_folder, broken)
    state = torch.load(broken / "model.ckpt", weights_only=True)
    state = {k: torch.full_like(v, float("nan")) for k, v in state.items()}
    torch.save(state, broken / "model.ckpt")
    output = tmp_path / "out.csv"
    short = str(audio_folder / "sub" / "short.flac")
    assert main(["-m", str(broken), short, "-o", str(output)]) == 1
    (row,) = read_rows(output)
    assert "non-finite value (NaN or Inf)" in row["error"]
    assert row["Calm"] == ""
    assert "1 of 1 files failed" in capsys.readouterr().err


def test_batched_decoding_in_workers_gives_the_files_own_predictions(
    model_folder, audio_folder, tmp_path
):
    """14.4: files decoded by worker processes and batched by length get the
    predictions they get one at a time, to float rounding (1e-5)."""
    rng = np.random.default_rng(3)
    folder = tmp_path / "clips"
    folder.mkdir()
    for index, seconds in enumerate([2.0, 7.5, 3.2, 5.0, 2.4, 6.1, 4.4]):
        samples = 0.1 * rng.standard_normal(int(seconds * 16000))
        soundfile.write(folder / f"{index}.wav", samples, 16000)
    output = tmp_path / "out.csv"
    status = main(
        ["-m", model_folder, str(folder), "-o", str(output)]
        + ["--num_workers", "2", "--batch_size", "3", "--no_progress"]
    )
    assert status == 0
    rows = {r["file"]: r for r in read_rows(output) if r["segment"] == "clip"}
    model = load_model(model_folder)
    assert len(rows) == 7
    for path, row in rows.items():
        alone = model.predict_file(path)
        for emotion in EMOTIONS:
            assert float(row[emotion]) == pytest.approx(
                alone[emotion], abs=1e-5
            )


@pytest.fixture(scope="module")
def speech_and_silence(tmp_path_factory):
    """4 s of silence, an espeak-ng sentence, 4 s of silence; and 5 s of silence."""
    import torch
    import torchaudio

    from emoshare_sb.synthetic.speech import speak

    wav, rate = speak("Hello, this is a short test of the speech detector.")
    speech = torchaudio.functional.resample(torch.from_numpy(wav), rate, 16000)
    silence = torch.zeros(4 * 16000)
    folder = tmp_path_factory.mktemp("vad")
    path = folder / "talk.wav"
    signal = torch.cat([silence, speech, silence]).numpy()
    soundfile.write(path, signal, 16000, subtype="FLOAT")
    soundfile.write(folder / "quiet.wav", np.zeros(5 * 16000), 16000)
    return path, folder / "quiet.wav", len(signal) / 16000


def test_vad_scores_speech_only_on_the_original_timeline(
    model_folder, speech_and_silence, tmp_path
):
    """14.3: windows cover the whole recording; those without speech are
    marked silent and not scored; the clip is the mean of the scored ones,
    each scored on its speech samples only."""
    from emoshare_sb.data.vad import speech_mask

    talk, quiet, seconds = speech_and_silence
    output = tmp_path / "vad.csv"
    arguments = ["-m", model_folder, str(talk), str(quiet), "-o", str(output)]
    window = ["--window", "2", "--hop", "2", "--no_progress"]
    assert main(arguments + window + ["--vad"]) == 0
    rows = read_rows(output)
    assert list(rows[0])[:6] == ["file", "segment", "start", "end"] + [
        "speech",
        "silent",
    ]
    by_file = {}
    for row in rows:
        by_file.setdefault(row["file"].rsplit("/", 1)[-1], []).append(row)
    summary, *windows = by_file["talk.wav"]
    # The original timeline: 2 s windows from 0, the last aligned to the end.
    assert float(windows[0]["start"]) == 0.0
    assert float(windows[-1]["end"]) == pytest.approx(seconds, abs=1e-3)
    silent = [w for w in windows if w["silent"] == "1"]
    scored = [w for w in windows if w["silent"] == "0"]
    assert silent and scored
    # The leading and trailing seconds of silence are silent windows.
    assert windows[0]["silent"] == "1" and windows[-1]["silent"] == "1"
    assert all(w["Calm"] == "" and float(w["speech"]) < 0.25 for w in silent)
    for emotion in EMOTIONS:
        mean = np.mean([float(w[emotion]) for w in scored])
        assert float(summary[emotion]) == pytest.approx(mean, abs=2e-6)
    assert summary["silent"] == "0"
    assert 0 < float(summary["speech"]) < seconds - 7.5
    # A scored window is the model on the speech samples inside it.
    model = load_model(model_folder, overrides={"window": 2.0, "hop": 2.0})
    signal = model.load_audio(str(talk))
    mask = speech_mask(signal, 16000)
    first = scored[0]
    start, end = (int(round(float(first[k]) * 16000)) for k in ("start", "end"))
    piece = signal[start:end][mask[start:end]]
    alone = model.predict_batch(piece)[0]
    assert float(first["Calm"]) == pytest.approx(float(alone[0]), abs=2e-6)
    # Without --vad every window is scored, silence included.
    plain = tmp_path / "plain.csv"
    assert main(arguments[:-1] + [str(plain)] + window) == 0
    assert all(r["Calm"] != "" for r in read_rows(plain))
    # A silent file: one silent summary row, no values, not a failure.
    (quiet_row,) = by_file["quiet.wav"][:1]
    assert quiet_row["silent"] == "1" and quiet_row["Calm"] == ""
    assert quiet_row["error"] == "" and float(quiet_row["speech"]) == 0.0
