"""The ComParE 2023 recipe end to end: debug run, outputs, averaging, learning."""

import csv
import json
import os

import pytest
import torch

from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS
from emoshare_sb.synthetic.compare23 import make_compare23_corpus
from tests.conftest import (
    RECIPE_SAMPLES,
    recipe_row_id,
    run_recipe,
    tensorboard_scalars,
)

RECIPE = "recipes/ComParE23/train.py"
HPARAMS = "hparams/hubert_attn.yaml"
SAMPLE_CORPUS = RECIPE_SAMPLES / "ComParE23" / "corpus"


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def debug_run(recipe_row_run):
    """The run of hubert_attn.yaml's row in tests/recipes/ComParE23.csv
    (two epochs on the samples, test labels withheld)."""
    return recipe_row_run(recipe_row_id(HPARAMS))


def test_debug_run_writes_submission_files(debug_run):
    for split in ("devel", "test"):
        labels = read_csv(SAMPLE_CORPUS / "lab" / f"{split}.csv")
        rows = read_csv(debug_run / "predictions" / f"{split}.csv")
        assert list(rows[0]) == ["filename"] + COMPARE23_EMOTIONS
        # Every clip of the split is written once.
        assert len({r["filename"] for r in rows}) == len(rows) == len(labels)
        assert {r["filename"] for r in labels} == {r["filename"] for r in rows}
        assert all(
            0.0 <= float(r[e]) <= 1.0 for r in rows for e in COMPARE23_EMOTIONS
        )


def test_tensorboard_holds_every_epochs_train_and_valid_metrics(debug_run):
    scalars = tensorboard_scalars(debug_run / "tensorboard")
    # --debug trains 2 epochs: one point per epoch, at the epoch's step.
    for tag in ("loss/train", "loss/valid", "spearman/valid", "ccc/valid"):
        assert [step for step, _ in scalars[tag]] == [1, 2], tag
    train_log = (debug_run / "train_log.txt").read_text().splitlines()
    logged = float(train_log[-1].split("valid spearman: ")[1].split(",")[0])
    assert scalars["spearman/valid"][-1][1] == pytest.approx(logged, abs=1e-3)


def test_results_json_has_devel_scores_and_no_test_scores_without_labels(
    debug_run,
):
    results = json.loads((debug_run / "results.json").read_text())
    assert set(results["devel"]) == {"spearman", "ccc", "pearson"}
    assert set(results["devel"]["spearman"]) == set(COMPARE23_EMOTIONS) | {
        "mean"
    }
    assert results["test"] is None
    assert 1 <= len(results["averaged_from"]) <= 5
    # The best checkpoint alone is evaluated and reported next to the average.
    best = results["best_checkpoint"]
    assert len(best["checkpoints"]) == 1 and best["test"] is None
    assert set(best["devel"]["spearman"]) == set(COMPARE23_EMOTIONS) | {"mean"}
    assert (debug_run / "predictions" / "best" / "devel.csv").is_file()


def test_averaged_model_is_the_mean_of_the_best_checkpoints(debug_run):
    # The average itself is checked on the longer run below; here the
    # averaged model file must exist and load.
    state = torch.load(debug_run / "save" / "averaged" / "model.ckpt")
    assert any(key.endswith("weight") for key in state)


@pytest.fixture(scope="module")
def learning_run(tiny_hubert, tmp_path_factory):
    root = tmp_path_factory.mktemp("learning")
    corpus = make_compare23_corpus(
        str(root / "corpus"), 120, 40, 20, seed=7, test_labels=True
    )
    output = root / "results"
    run_recipe(
        RECIPE,
        HPARAMS,
        "--data_folder",
        corpus,
        "--ssl_source",
        tiny_hubert,
        "--output_folder",
        output,
        "--number_of_epochs",
        8,
        "--num_averaged_checkpoints",
        3,
        "--train_window",
        2.0,
    )
    return output


def test_short_run_learns(learning_run):
    results = json.loads((learning_run / "results.json").read_text())
    assert results["devel"]["spearman"]["mean"] > 0.3
    assert results["test"]["spearman"]["mean"] > 0.3
    assert results["best_checkpoint"]["devel"]["spearman"]["mean"] > 0.3


def test_averaged_weights_equal_the_mean_of_the_three_best(learning_run):
    results = json.loads((learning_run / "results.json").read_text())
    chosen = [entry["checkpoint"] for entry in results["averaged_from"]]
    assert len(chosen) == 3
    all_scores = []
    for name in os.listdir(learning_run / "save"):
        if name.startswith("CKPT+"):
            meta = (learning_run / "save" / name / "CKPT.yaml").read_text()
            all_scores.append(
                (float(meta.split("spearman:")[1].split()[0]), name)
            )
    best = [name for _, name in sorted(all_scores, reverse=True)[:3]]
    assert sorted(best) == sorted(chosen)
    states = [
        torch.load(learning_run / "save" / name / "model.ckpt")
        for name in chosen
    ]
    averaged = torch.load(learning_run / "save" / "averaged" / "model.ckpt")
    for key, value in averaged.items():
        expected = sum(state[key] for state in states) / 3
        assert torch.allclose(value, expected, atol=1e-6), key


def test_training_from_the_feature_cache_matches_training_without_it(
    small_compare23, tiny_hubert, tmp_path
):
    """Same seed, same batches, whole clips: only float16 rounding differs."""
    predictions = {}
    for use_cache in (True, False):
        output = tmp_path / f"cache_{use_cache}"
        run_recipe(
            RECIPE,
            HPARAMS,
            "--data_folder",
            small_compare23,
            "--ssl_source",
            tiny_hubert,
            "--output_folder",
            output,
            "--number_of_epochs",
            3,
            "--batch_size",
            4,
            "--train_window",
            0,
            "--use_feature_cache",
            use_cache,
            "--feature_cache_folder",
            tmp_path / "cache",
        )
        predictions[use_cache] = {
            row["filename"]: [float(row[e]) for e in COMPARE23_EMOTIONS]
            for row in read_csv(output / "predictions" / "devel.csv")
        }
    assert predictions[True].keys() == predictions[False].keys()
    difference = max(
        abs(a - b)
        for clip in predictions[True]
        for a, b in zip(
            predictions[True][clip], predictions[False][clip], strict=True
        )
    )
    assert difference < 1e-3  # measured 2.6e-5 after 3 epochs
    assert (
        len(list((tmp_path / "cache").iterdir())) == 1
    )  # one encoder, one cache


def test_length_bucketed_batches_train_and_evaluate_every_clip(
    small_compare23, tiny_hubert, tmp_path
):
    output = tmp_path / "bucketed"
    run_recipe(
        RECIPE,
        HPARAMS,
        "--data_folder",
        small_compare23,
        "--ssl_source",
        tiny_hubert,
        "--output_folder",
        output,
        "--number_of_epochs",
        1,
        "--dynamic_batching",
        True,
        "--max_batch_seconds",
        8.0,
    )
    for split in ("devel", "test"):
        assert len(read_csv(output / "predictions" / f"{split}.csv")) == 6


@pytest.mark.parametrize(
    "hparams, overrides, message",
    [
        (
            "hparams/hubert_attn_finetune.yaml",
            [],
            "use_feature_cache needs a frozen encoder",
        ),
        (HPARAMS, ["--eval_window", 1.0], "cannot score sliding windows"),
    ],
)
def test_feature_cache_misuse_is_named(
    small_compare23, tiny_hubert, tmp_path, hparams, overrides, message
):
    import subprocess
    import sys

    from tests.conftest import REPO

    command = [
        sys.executable,
        str(REPO / RECIPE),
        str(REPO / hparams),
        "--data_folder",
        small_compare23,
        "--ssl_source",
        tiny_hubert,
        "--output_folder",
        str(tmp_path / "x"),
        "--use_feature_cache",
        "True",
        "--debug",
        *map(str, overrides),
    ]
    process = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert process.returncode == 2  # a user error
    assert message in process.stderr.strip().splitlines()[-1]
