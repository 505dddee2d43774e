#!/usr/bin/env python3
"""Recipe for ComParE 2023 Emotion Share with the challenge's classic baseline:
openSMILE functionals and a linear SVR (or ridge regression).

Each clip becomes one vector of openSMILE functionals (eGeMAPSv02 or
ComParE_2016, chosen in the YAML), extracted once and cached per audio file
(:mod:`emoshare_sb.lobes.opensmile`). The features are standardised with the
training set's statistics, one model per complexity of the grid is fitted on
train, and the one with the best devel mean per-emotion Spearman is kept, as
the organisers' baselines choose it. Its devel and test predictions are
written in the challenge's submission format, its scores in
``results.json`` (the SSL recipe's keys: ``devel`` and ``test`` with
``spearman``, ``ccc`` and ``pearson``), so ``emoshare-report`` reads the run.

To run:
    python recipes/ComParE23/train_opensmile.py hparams/opensmile_svr.yaml \
        --data_folder /path/to/ComParE2023_EmotionShare

Authors
 * emoshare_sb contributors 2026
"""

import csv
import os
import sys

import joblib
import numpy as np
import speechbrain as sb
from speechbrain.utils.logger import get_logger

# The SSL recipe beside this script: one writer of the submission format.
from train import write_predictions

from emoshare_sb.metrics.regression import (
    format_scores_table,
    regression_scores,
    spearman_per_column,
)
from emoshare_sb.training.cli_help import print_help_if_asked
from emoshare_sb.training.hparams import exit_on_user_error, load_hparams
from emoshare_sb.training.linear_models import select_on_devel
from emoshare_sb.training.run_guards import RunStart
from emoshare_sb.utils.io import atomic_write, write_results_json

logger = get_logger(__name__)

# A --debug run: the first clips of each split, the first complexities.
DEBUG_CLIPS = 24
DEBUG_COMPLEXITIES = 2


def read_split(path, hparams, debug=False):
    """Clip ids, audio paths and shares ``[N, 9]`` (NaN when unlabelled) of a
    split's manifest."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if debug:
        rows = rows[:DEBUG_CLIPS]
    emotions = hparams["emotions"]
    targets = np.array(
        [[float(row[e]) for e in emotions] for row in rows]
    ).reshape(len(rows), len(emotions))
    return [row["ID"] for row in rows], [row["wav"] for row in rows], targets


def mean_spearman(targets, features, model):
    """The official score of ``model`` on a split: mean per-emotion Spearman."""
    return float(
        np.nanmean(spearman_per_column(targets, predict(model, features)))
    )


def predict(model, features):
    """Shares in [0, 1], as the submission format holds them."""
    return np.clip(model.predict(features), 0.0, 1.0)


def main(argv):
    """Extracts (or reads) the features, selects the model on devel, writes the outputs."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    debug = run_opts.get("debug", False)
    with exit_on_user_error():
        # Overrides, values and data folder: checked before anything is written.
        start = RunStart(hparams_file, overrides, run_opts)
    # Bad overrides, corpus rows, audio: one line; a failed start removes
    # the output folder it created.
    with exit_on_user_error(), start.remove_if_failed():
        # Lock, no symbolic links, and a finished run's hyperparameters
        # unchanged: before hyperparams.yaml is written.
        start.claim(start.overrides, script=__file__)
        hparams = load_hparams(hparams_file, start.overrides)
        sb.create_experiment_directory(
            experiment_directory=hparams["output_folder"],
            hyperparams_to_save=hparams_file,
            overrides=start.overrides,
        )
        start.log_changes()  # with --accept_changed_hparams True
        hparams["prepare_data"]()
        manifests = {  # by default those data prep wrote
            "train": hparams["train_annotation"],
            "devel": hparams["valid_annotation"],
            "test": hparams["test_annotation"],
        }
        splits = {
            split: read_split(path, hparams, debug)
            for split, path in manifests.items()
        }
        front_end = hparams["front_end"]
        features = {
            split: front_end(paths) for split, (_, paths, _) in splits.items()
        }
    emotions = hparams["emotions"]
    complexities = hparams["complexities"]
    if debug:
        complexities = complexities[:DEBUG_COMPLEXITIES]
    model, search = select_on_devel(
        hparams["regressor"],
        hparams["complexity_name"],
        complexities,
        (features["train"], splits["train"][2]),
        (features["devel"], splits["devel"][2]),
        score=mean_spearman,
        multi_output=True,
        name=f"{hparams['feature_set']} + {hparams['regressor'].func.__name__}",
        train_logger=hparams["train_logger"],
    )
    with atomic_write(
        os.path.join(hparams["save_folder"], "model.joblib"), "wb"
    ) as handle:
        joblib.dump(model, handle)

    summary = {
        "feature_set": hparams["feature_set"],
        "num_features": front_end.num_features,
        "model": hparams["regressor"].func.__name__,
        "model_selection": {"metric": "devel mean Spearman", **search},
    }
    folder = os.path.join(hparams["output_folder"], "predictions")
    for split in ("devel", "test"):
        ids, _, targets = splits[split]
        predictions = predict(model, features[split])
        write_predictions(
            os.path.join(folder, f"{split}.csv"),
            emotions,
            {"ids": ids, "predictions": predictions},
        )
        scores = None
        if not np.isnan(targets).any():
            scores = regression_scores(targets, predictions, emotions)
            title = f"{split}, {summary['model']} on {summary['feature_set']} ({len(ids)} clips)"
            logger.info("\n" + format_scores_table(scores, emotions, title))
        summary[split] = scores
    results_file = os.path.join(hparams["output_folder"], "results.json")
    # As the SSL recipe: a NaN score is written as null and listed under
    # "errors"; a NaN headline score fails the run.
    errors = write_results_json(
        results_file, summary, ("spearman.mean", "ccc.mean", "pearson.mean")
    )
    if errors:
        raise SystemExit(f"error: {results_file}: {'; '.join(errors)}")
    logger.info(
        f"devel mean Spearman: {summary['devel']['spearman']['mean']:.3f} "
        f"({search['complexity_name']}={search['best']:g})"
    )


if __name__ == "__main__":
    print_help_if_asked(sys.argv[1:])  # SpeechBrain's options + the YAML's
    main(sys.argv[1:])
