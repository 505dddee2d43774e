"""Every recipe, and a YAML with BatchNorm, trains with two processes on CPU.

SpeechBrain converts BatchNorm to SyncBatchNorm under DDP, which fails on
CPU; ``EmotionBrain`` keeps plain BatchNorm there. Metrics must still be
computed once over the whole split, from both processes' clips.
"""

import csv
import json
import os
import subprocess
import sys

import pytest

from emoshare_sb.synthetic.encoders import make_tiny_ssl_model
from emoshare_sb.synthetic.iemocap import make_iemocap_corpus
from emoshare_sb.synthetic.msp_podcast import make_msp_podcast_corpus
from tests.conftest import _free_port, run_recipe


def rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_ecapa_yaml_with_batchnorm_trains_on_two_cpu_processes(
    small_compare23, tiny_hubert, tmp_path
):
    output = tmp_path / "ecapa"
    run_recipe(
        "recipes/ComParE23/train.py",
        "hparams/hubert_ecapa.yaml",
        "--data_folder",
        small_compare23,
        "--ssl_source",
        tiny_hubert,
        "--ecapa_channels",
        "[16, 16, 16, 16, 48]",
        "--ecapa_embedding_size",
        8,
        "--encoder_freeze_steps",
        0,
        "--output_folder",
        output,
        "--number_of_epochs",
        1,
        "--batch_size",
        2,
        processes=2,
    )
    assert len(rows(output / "predictions" / "devel.csv")) == 6
    assert (
        output / "save" / "averaged" / "encoder.ckpt"
    ).exists()  # fine-tuned, averaged


def test_msp_recipe_on_two_cpu_processes(tmp_path):
    corpus = make_msp_podcast_corpus(
        str(tmp_path / "corpus"), "v1.12", n_per_split=8, seed=2
    )
    wavlm = make_tiny_ssl_model(str(tmp_path / "wavlm"), "wavlm")
    output = tmp_path / "msp"
    run_recipe(
        "recipes/MSP-Podcast/train.py",
        "hparams/msp_wavlm_tcgru.yaml",
        "--data_folder",
        corpus,
        "--ssl_source",
        wavlm,
        "--ssl_layer",
        1,
        "--tcgru_size",
        16,
        "--num_workers",
        0,
        "--output_folder",
        output,
        "--number_of_epochs",
        1,
        "--batch_size",
        4,
        processes=2,
    )
    valid = rows(output / "predictions" / "valid.csv")
    manifest = rows(output / "save" / "valid.csv")
    assert sorted(r["FileName"] for r in valid) == sorted(
        r["ID"] for r in manifest
    )
    results = json.loads((output / "results.json").read_text())
    assert "macro_f1" in json.dumps(results)


def test_iemocap_fold_on_two_cpu_processes(tmp_path):
    corpus = make_iemocap_corpus(
        str(tmp_path / "corpus"), utterances_per_dialog=4, seed=1
    )
    hubert = make_tiny_ssl_model(str(tmp_path / "hubert"), "hubert")
    wav2vec2 = make_tiny_ssl_model(
        str(tmp_path / "wav2vec2"), "wav2vec2", hidden_size=16
    )
    output = tmp_path / "iemocap"
    run_recipe(
        "recipes/IEMOCAP/train.py",
        "hparams/iemocap_hubert_wav2vec2_early_ecapa.yaml",
        "--data_folder",
        corpus,
        "--output_folder",
        output,
        "--hubert_source",
        hubert,
        "--wav2vec2_source",
        wav2vec2,
        "--ecapa_channels",
        "[16, 16, 16, 16, 48]",
        "--ecapa_embedding_size",
        8,
        "--pretrained_path",
        os.path.join(output, "pretrained"),
        "--num_workers",
        0,
        "--test_sessions",
        "[2]",
        "--number_of_epochs",
        1,
        processes=2,
    )
    test = rows(output / "fold_2" / "predictions" / "test.csv")
    manifest = rows(output / "fold_2" / "save" / "test.csv")
    assert sorted(r["ID"] for r in test) == sorted(r["ID"] for r in manifest)
    assert "2" in json.dumps(json.loads((output / "results.json").read_text()))


def test_msp_whisper_yaml_runs(tmp_path):
    corpus = make_msp_podcast_corpus(
        str(tmp_path / "corpus"), "v2.0", n_per_split=6, seed=3
    )
    whisper = make_tiny_ssl_model(str(tmp_path / "whisper"), "whisper")
    output = tmp_path / "whisper"
    run_recipe(
        "recipes/MSP-Podcast/train.py",
        "hparams/msp_whisper_tcgru.yaml",
        "--data_folder",
        corpus,
        "--ssl_source",
        whisper,
        "--tcgru_size",
        16,
        "--num_workers",
        0,
        "--output_folder",
        output,
        "--debug",
        "--batch_size",
        3,
    )
    assert rows(output / "predictions" / "valid.csv")


# Registered before the group is joined, so it runs after the group's own exit
# hook (atexit runs hooks last-in, first-out): what a process leaves behind.
EXIT_PROBE = """
import atexit, sys
import torch
from emoshare_sb.training.distributed import start_process_group
atexit.register(
    lambda: print("group at exit:", torch.distributed.is_initialized(), flush=True)
)
print("joined:", start_process_group({"distributed_backend": "gloo"}), flush=True)
torch.distributed.all_reduce(torch.ones(3))
if sys.argv[1] == "error":
    raise SystemExit("error: a one-line failure")
"""


@pytest.mark.parametrize("ending", ["success", "error"])
def test_the_process_group_is_destroyed_before_python_exits(ending):
    # A Gloo group alive at interpreter shutdown can abort the process
    # (SIGABRT), at random, after the results are written.
    environment = dict(
        os.environ,
        RANK="0",
        LOCAL_RANK="0",
        WORLD_SIZE="1",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(_free_port()),
    )
    process = subprocess.run(
        [sys.executable, "-c", EXIT_PROBE, ending],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert "joined: True" in process.stdout, process.stderr
    assert "group at exit: False" in process.stdout, process.stderr
    assert process.returncode == (0 if ending == "success" else 1)
