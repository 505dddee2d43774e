"""The realistic offline check: synthesised speech whose prosody follows its
labels, on which the openSMILE baseline and fbank_ecapa.yaml must learn."""

import csv
import json
import os

import numpy as np
import pytest
import soundfile
import torch

from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS, prepare_compare23
from emoshare_sb.data.vad import speech_regions
from emoshare_sb.synthetic.speech import speak
from emoshare_sb.synthetic.speech_corpus import make_speech_corpus
from tests.conftest import run_recipe

# A mean (constant) predictor has no rank correlation with the labels: its
# Spearman is undefined, 0 at best. "Clearly above" it:
LEARNED_RHO = 0.25


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def speech_corpus(tmp_path_factory):
    """72/30/4 clips of synthesised speech in the ComParE 2023 layout."""
    root = tmp_path_factory.mktemp("speech_corpus") / "corpus"
    return make_speech_corpus(str(root), 72, 30, 4, seed=3)


def test_corpus_is_speech_in_the_compare23_layout(speech_corpus, tmp_path):
    emotions = prepare_compare23(speech_corpus, str(tmp_path))
    assert emotions == COMPARE23_EMOTIONS
    rows = read_csv(tmp_path / "train.csv")
    assert len(rows) == 72
    assert all(max(float(r[e]) for e in emotions) == 1.0 for r in rows)
    wave, rate = soundfile.read(rows[0]["wav"], dtype="float32")
    assert rate == 16000
    regions = speech_regions(torch.from_numpy(wave), rate)
    assert regions and sum(e - s for s, e in regions) > 0.5  # seconds of speech


def test_sentences_and_voices_vary_and_prosody_sets_the_labels(speech_corpus):
    prosody = read_csv(os.path.join(speech_corpus, "lab", "prosody.csv"))
    assert len({r["sentence"] for r in prosody}) > 10
    assert len({r["voice"] for r in prosody}) > 5
    labels = {
        r["filename"]: r
        for r in read_csv(os.path.join(speech_corpus, "lab", "train.csv"))
    }
    train = [r for r in prosody if r["split"] == "train"]
    rate = np.array([float(r["rate"]) for r in train])
    tiredness = np.array(
        [float(labels[r["filename"]]["Tiredness"]) for r in train]
    )
    # Tired speech is slow: the share falls with the speaking rate (rate is
    # one of the four prosody dimensions that set the shares: -0.27 on these
    # 72 clips, whose labels no longer depend on the synthesis).
    assert np.corrcoef(rate, tiredness)[0, 1] < -0.2
    # ... and slow speech lasts longer for the same words.
    durations = np.array(
        [
            soundfile.info(
                os.path.join(speech_corpus, "wav", r["filename"])
            ).duration
            for r in train
        ]
    )
    words = np.array([len(r["sentence"].split()) for r in train])
    assert np.corrcoef(rate, durations / words)[0, 1] < -0.3


def test_opensmile_baseline_learns(speech_corpus, tmp_path):
    run_recipe(
        "recipes/ComParE23/train_opensmile.py",
        "hparams/opensmile_svr.yaml",
        "--data_folder",
        speech_corpus,
        "--output_folder",
        tmp_path,
        "--feature_set",
        "eGeMAPSv02",
        "--feature_cache_folder",
        tmp_path / "cache",
        "--num_workers",
        2,
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["devel"]["spearman"]["mean"] > LEARNED_RHO
    assert len(read_csv(tmp_path / "predictions" / "test.csv")) == 4


def test_fbank_ecapa_learns(speech_corpus, tmp_path, monkeypatch):
    # A narrow ECAPA-TDNN, so that a few epochs train in a minute on a CPU.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    run_recipe(
        "recipes/ComParE23/train.py",
        "hparams/fbank_ecapa.yaml",
        "--data_folder",
        speech_corpus,
        "--output_folder",
        tmp_path,
        "--ecapa_channels",
        "[32, 32, 32, 32, 96]",
        "--ecapa_embedding_size",
        16,
        "--number_of_epochs",
        8,
        "--train_window",
        3.0,
        "--num_averaged_checkpoints",
        2,
        "--device",
        "cpu",
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["devel"]["spearman"]["mean"] > LEARNED_RHO


def test_labels_do_not_depend_on_what_espeak_said_before(tmp_path):
    # espeak-ng's output length varies by a few samples with the previous
    # synthesis in the process; the labels and prosody must not.
    first = make_speech_corpus(str(tmp_path / "a"), 6, 2, 2, seed=4)
    speak("Hello, this is a short test of the speech detector.", rate=300)
    second = make_speech_corpus(str(tmp_path / "b"), 6, 2, 2, seed=4)
    for name in ("prosody.csv", "train.csv", "devel.csv", "test.csv"):
        assert read_csv(os.path.join(first, "lab", name)) == read_csv(
            os.path.join(second, "lab", name)
        ), name
