"""Reliability: a run killed mid-epoch resumes, two processes train on CPU, bad
overrides are named, and nothing is left half-written when a save fails."""

import errno
import json
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from emoshare_sb.synthetic.compare23 import make_compare23_corpus
from emoshare_sb.synthetic.encoders import make_tiny_ssl_model
from emoshare_sb.synthetic.iemocap import make_iemocap_corpus
from emoshare_sb.synthetic.msp_podcast import make_msp_podcast_corpus
from emoshare_sb.training.checkpoints import (
    PENDING_METAFNAME,
    AtomicCheckpointer,
)
from emoshare_sb.utils.io import write_csv
from tests.conftest import REPO, run_recipe

RECIPE = REPO / "recipes/ComParE23/train.py"
HPARAMS = REPO / "hparams/hubert_attn.yaml"


def recipe_command(corpus, source, output, *extra):
    return [
        sys.executable,
        str(RECIPE),
        str(HPARAMS),
        "--data_folder",
        str(corpus),
        "--ssl_source",
        str(source),
        "--output_folder",
        str(output),
        *map(str, extra),
    ]


def intra_epoch_checkpoint_of_epoch(save_folder, epoch):
    """An intra-epoch checkpoint saved while training `epoch`, if any."""
    for path in save_folder.glob("CKPT+*"):
        try:  # the run may delete an older checkpoint while we read it
            intra_epoch = (
                "end-of-epoch: false" in (path / "CKPT.yaml").read_text()
            )
            if intra_epoch and (
                path / "counter.ckpt"
            ).read_text().strip() == str(epoch):
                return path
        except FileNotFoundError:
            continue
    return None


def kill_mid_epoch_then_resume(command, run_folder, save_folder, results_json):
    """Kills ``command`` (SIGKILL) at an intra-epoch checkpoint of epoch 2 of 3,
    runs it again and checks that it resumed there and finished.

    ``command`` must train 3 epochs with frequent intra-epoch checkpoints.
    """
    first = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    killed_at = None
    while time.time() < deadline and first.poll() is None:
        killed_at = intra_epoch_checkpoint_of_epoch(save_folder, 2)
        if killed_at is not None:
            first.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    first.wait()
    assert killed_at is not None, (
        "the run ended before an intra-epoch checkpoint of epoch 2"
    )
    assert not results_json.exists()

    second = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert second.returncode == 0, second.stderr[-3000:]
    log = second.stdout + second.stderr
    assert "Loading a checkpoint from" in log
    assert "Going into epoch 1" not in log and "Going into epoch 3" in log
    epochs = re.findall(
        r"epoch: (\d+)", (run_folder / "train_log.txt").read_text()
    )
    assert epochs == ["1", "2", "3"]
    assert results_json.exists()
    for path in save_folder.glob("CKPT+*"):
        assert (path / "CKPT.yaml").exists() and not (
            path / PENDING_METAFNAME
        ).exists()
    return json.loads(results_json.read_text())


KILL_OPTIONS = (
    "--number_of_epochs",
    3,
    "--batch_size",
    2,
    "--ckpt_interval_minutes",
    0,
    "--ckpt_interval_steps",
    4,
)


def test_a_compare23_run_killed_mid_epoch_resumes_and_finishes(
    tiny_hubert, tmp_path
):
    corpus = make_compare23_corpus(str(tmp_path / "corpus"), 40, 6, 4, seed=5)
    output = tmp_path / "run"
    command = recipe_command(corpus, tiny_hubert, output, *KILL_OPTIONS)
    results = kill_mid_epoch_then_resume(
        command, output, output / "save", output / "results.json"
    )
    assert (
        results["devel"]["spearman"]["mean"]
        == results["devel"]["spearman"]["mean"]
    )  # not NaN


def test_an_msp_run_killed_mid_epoch_resumes_and_finishes(tmp_path):
    corpus = make_msp_podcast_corpus(
        str(tmp_path / "corpus"), "v1.12", n_per_split=40, seed=4
    )
    wavlm = make_tiny_ssl_model(str(tmp_path / "wavlm"), "wavlm")
    output = tmp_path / "msp"
    command = [
        sys.executable,
        str(REPO / "recipes/MSP-Podcast/train.py"),
        str(REPO / "hparams/msp_wavlm_tcgru.yaml"),
        "--data_folder",
        corpus,
        "--ssl_source",
        wavlm,
        "--ssl_layer",
        "1",
        "--tcgru_size",
        "16",
        "--num_workers",
        "0",
        "--noisy_snrs",
        "[]",
        "--output_folder",
        str(output),
        *map(str, KILL_OPTIONS),
    ]
    results = kill_mid_epoch_then_resume(
        command, output, output / "save", output / "results.json"
    )
    assert "valid" in results or "valid" in json.dumps(results)


def test_two_processes_on_cpu_train_and_score_the_whole_split(
    small_compare23, tiny_hubert, tmp_path
):
    run_recipe(
        RECIPE,
        HPARAMS,
        "--data_folder",
        small_compare23,
        "--ssl_source",
        tiny_hubert,
        "--output_folder",
        tmp_path / "ddp",
        "--number_of_epochs",
        2,
        "--batch_size",
        2,
        processes=2,
    )
    results = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert set(results["devel"]["spearman"]) >= {"Anger", "mean"}
    with open(tmp_path / "ddp" / "predictions" / "devel.csv") as handle:
        assert (
            len(handle.readlines()) == 1 + 6
        )  # every devel clip once, from both processes
    # Data prep ran once: a single options file and one manifest per split.
    assert sorted(
        p.name for p in (tmp_path / "ddp" / "save").glob("*.csv")
    ) == ["devel.csv", "test.csv", "train.csv"]


@pytest.mark.parametrize(
    "override, message",
    [
        (
            ["--batch_size", "abc"],
            "--batch_size expects an integer (the YAML has 8), got 'abc'",
        ),
        (["--batchsize", "4"], "; did you mean --batch_size?"),
        (["--freeze_ssl", "maybe"], "--freeze_ssl expects True or False"),
        (
            ["--encoder_dim", "1024"],
            "outputs 32-dim features but encoder_dim is 1024: set "
            "--encoder_dim auto (or 32)",
        ),
        (
            ["--encoder_dim", "abc"],
            "--encoder_dim expects a positive integer or auto, got 'abc'",
        ),
        (
            ["--ssl_source", "/nonexistent/model"],
            "ssl_source folder '/nonexistent/model' does not exist",
        ),
    ],
)
def test_bad_overrides_are_named(
    small_compare23, tiny_hubert, tmp_path, override, message
):
    command = recipe_command(
        small_compare23, tiny_hubert, tmp_path / "bad", "--debug"
    )
    if (
        override[0] in command
    ):  # replace the default value rather than repeat the key
        index = command.index(override[0])
        command = command[:index] + command[index + 2 :]
    process = subprocess.run(
        command + override,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 2  # a user error
    last_line = process.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and message in last_line, (
        process.stderr[-2000:]
    )


def test_a_save_interrupted_by_a_full_disk_leaves_no_checkpoint(
    tmp_path, monkeypatch
):
    model = torch.nn.Linear(3, 3)
    checkpointer = AtomicCheckpointer(
        tmp_path, {"model": model, "other": torch.nn.Linear(2, 2)}
    )
    checkpointer.save_checkpoint(meta={"score": 1.0})

    calls = {"n": 0}
    real_save = torch.save

    def save_then_fail(obj, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second parameter file hits a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_then_fail)
    with pytest.raises(OSError, match="No space left"):
        checkpointer.save_checkpoint(meta={"score": 2.0})
    monkeypatch.setattr(torch, "save", real_save)
    # Only the first, complete checkpoint counts; the half-written folder is ignored...
    assert [c.meta["score"] for c in checkpointer.list_checkpoints()] == [1.0]
    assert checkpointer.recover_if_possible().meta["score"] == 1.0
    # ...and removed by the next save.
    checkpointer.save_checkpoint(meta={"score": 3.0})
    folders = list(tmp_path.glob("CKPT+*"))
    assert len(folders) == 2 and all(
        (f / "CKPT.yaml").exists() for f in folders
    )


def test_a_prediction_file_interrupted_mid_write_keeps_the_previous_one(
    tmp_path,
):
    path = tmp_path / "predictions.csv"
    write_csv(
        path, [{"filename": "a.wav", "Anger": "0.1"}], ["filename", "Anger"]
    )

    def rows():
        yield {"filename": "b.wav", "Anger": "0.2"}
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        write_csv(path, rows(), ["filename", "Anger"])
    assert path.read_text().splitlines() == ["filename,Anger", "a.wav,0.1"]
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.csv"]


def test_recipe_debug_run_passes_through_run_recipe(
    small_compare23, tiny_hubert, tmp_path
):
    # The 0.05 s clip and a stereo 44.1 kHz clip are accepted by the whole recipe.
    import shutil

    import numpy as np
    import soundfile

    corpus = tmp_path / "corpus"
    shutil.copytree(small_compare23, corpus)
    soundfile.write(
        corpus / "wav" / "00001.wav", np.full(800, 0.1, dtype="float32"), 16000
    )
    soundfile.write(
        corpus / "wav" / "00002.wav",
        np.random.default_rng(0)
        .uniform(-0.5, 0.5, (44100, 2))
        .astype("float32"),
        44100,
    )
    run_recipe(
        RECIPE,
        HPARAMS,
        "--data_folder",
        corpus,
        "--ssl_source",
        tiny_hubert,
        "--output_folder",
        tmp_path / "out",
        "--debug",
        "--batch_size",
        2,
    )
    assert (tmp_path / "out" / "results.json").exists()


def test_an_iemocap_fold_killed_mid_epoch_resumes_and_finishes(tmp_path):
    corpus = make_iemocap_corpus(
        str(tmp_path / "corpus"), utterances_per_dialog=8, seed=2
    )
    hubert = make_tiny_ssl_model(str(tmp_path / "hubert"), "hubert")
    wav2vec2 = make_tiny_ssl_model(
        str(tmp_path / "wav2vec2"), "wav2vec2", hidden_size=16
    )
    output = tmp_path / "iemocap"
    command = [
        sys.executable,
        str(REPO / "recipes/IEMOCAP/train.py"),
        str(REPO / "hparams/iemocap_hubert_wav2vec2_early_ecapa.yaml"),
        "--data_folder",
        corpus,
        "--output_folder",
        str(output),
        "--hubert_source",
        hubert,
        "--wav2vec2_source",
        wav2vec2,
        "--ecapa_channels",
        "[16, 16, 16, 16, 48]",
        "--ecapa_embedding_size",
        "8",
        "--pretrained_path",
        str(output / "pretrained"),
        "--num_workers",
        "0",
        "--test_sessions",
        "[1]",
        *map(str, KILL_OPTIONS),
    ]
    fold = output / "fold_1"
    kill_mid_epoch_then_resume(
        command, fold, fold / "save", fold / "results.json"
    )
    assert (output / "results.json").exists()
