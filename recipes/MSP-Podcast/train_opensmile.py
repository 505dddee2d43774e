#!/usr/bin/env python3
"""Recipe for MSP-Podcast with the classic baseline: openSMILE functionals, a
linear SVM (or logistic regression) for the 8 classes and a linear SVR per
attribute for arousal/valence/dominance.

Each clip becomes one vector of openSMILE functionals (eGeMAPSv02 or
ComParE_2016, chosen in the YAML), extracted once and cached per audio file
(:mod:`emoshare_sb.lobes.opensmile`) and standardised with the training set's
statistics. The classifier is fitted on the training clips whose consensus
is one of the 8 classes, its complexity chosen by the valid macro-F1 (the
challenge's score); each attribute's SVR on the clips with A/V/D labels, its
complexity chosen by that attribute's valid CCC.

Every split the release has is scored with the SSL recipe's own functions
(``recipes/MSP-Podcast/train.py``): the same metrics, the same prediction
files (class distribution, 1-best class, A/V/D on the 1..7 scale) and the
same ``results.json`` keys, so ``emoshare-report`` reads the run. A linear
SVM's class "probabilities" are a softmax of its decision values (they rank
the classes; they are not calibrated). The SSL recipe's noisy copies of
Test1 are not scored here (they would need features of every noisy copy).

To run:
    python recipes/MSP-Podcast/train_opensmile.py hparams/msp_opensmile_svm.yaml \
        --data_folder /path/to/MSP-Podcast

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

# The SSL recipe beside this script: one place for the scores and the files.
from train import (
    HEADLINE_SCORES,
    available_splits,
    format_results_table,
    score_split,
    write_predictions,
)

from emoshare_sb.data.msp_podcast import MSP_CLASS_CODES, MSP_CLASS_NAMES
from emoshare_sb.metrics.classification import averaged_scores, best_classes
from emoshare_sb.metrics.regression import ccc_per_column
from emoshare_sb.training.cli_help import print_help_if_asked
from emoshare_sb.training.hparams import exit_on_user_error, load_hparams
from emoshare_sb.training.linear_models import class_scores, select_on_devel
from emoshare_sb.training.run_guards import RunStart
from emoshare_sb.utils.errors import HparamsError
from emoshare_sb.utils.io import atomic_write, write_results_json

logger = get_logger(__name__)

NUM_CLASSES = len(MSP_CLASS_NAMES)
# A --debug run: the first clips of each split, the first complexities.
DEBUG_CLIPS = 24
DEBUG_COMPLEXITIES = 2


def read_split(path, hparams, debug=False):
    """One manifest: ids, audio paths, consensus class index (-1: none),
    A/V/D in [0, 1] (NaN when unlabelled), speakers and genders."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if debug:
        rows = rows[:DEBUG_CLIPS]
    dimensions = hparams["dimensions"]
    return {
        "ids": [row["ID"] for row in rows],
        "wavs": [row["wav"] for row in rows],
        "class_targets": np.array(
            [
                MSP_CLASS_CODES.index(row["emo_class"])
                if row["emo_class"]
                else -1
                for row in rows
            ],
            dtype=int,
        ),
        "dimension_targets": np.array(
            [[float(row[d]) for d in dimensions] for row in rows]
        ).reshape(len(rows), len(dimensions)),
        "speakers": [row["spk_id"] for row in rows],
        "genders": [row["gender"] for row in rows],
    }


def macro_f1_score(targets, features, model):
    """Valid macro-F1 of a classifier (the challenge's score)."""
    scores = class_scores(model, features, NUM_CLASSES)
    return averaged_scores(targets, best_classes(scores), NUM_CLASSES)["f1"]


def ccc_score(targets, features, model):
    """Valid CCC of one attribute's regressor."""
    predictions = np.clip(model.predict(features), 0.0, 1.0)
    return float(ccc_per_column(targets[:, None], predictions[:, None])[0])


def fit_models(hparams, data, features, complexities):
    """The classifier and one regressor per attribute, each chosen on valid."""
    train, valid = data["train"], data["valid"]
    with_class = {
        split: data[split]["class_targets"] >= 0 for split in ("train", "valid")
    }
    if not with_class["train"].any() or not with_class["valid"].any():
        raise HparamsError(
            "the classifier needs train and valid clips with a consensus class "
            f"among {MSP_CLASS_CODES}; the manifests in {hparams['save_folder']} have none"
        )
    train_classes = np.unique(train["class_targets"][with_class["train"]])
    if len(train_classes) < 2:
        raise HparamsError(
            "the classifier needs train clips of at least 2 consensus classes; "
            f"{hparams['train_annotation']} has only "
            f"{[MSP_CLASS_CODES[c] for c in train_classes]}"
        )
    classifier, class_search = select_on_devel(
        hparams["classifier"],
        hparams["complexity_name"],
        complexities,
        (
            features["train"][with_class["train"]],
            train["class_targets"][with_class["train"]],
        ),
        (
            features["valid"][with_class["valid"]],
            valid["class_targets"][with_class["valid"]],
        ),
        score=macro_f1_score,
        name=f"classes, {hparams['classifier'].func.__name__}",
        train_logger=hparams["train_logger"],
    )
    regressors, searches = [], {"classes": class_search}
    for column, name in enumerate(hparams["dimensions"]):
        labelled = {
            split: np.isfinite(data[split]["dimension_targets"][:, column])
            for split in ("train", "valid")
        }
        regressor, searches[name] = select_on_devel(
            hparams["regressor"],
            hparams["complexity_name"],
            complexities,
            (
                features["train"][labelled["train"]],
                train["dimension_targets"][labelled["train"], column],
            ),
            (
                features["valid"][labelled["valid"]],
                valid["dimension_targets"][labelled["valid"], column],
            ),
            score=ccc_score,
            name=f"{name}, {hparams['regressor'].func.__name__}",
            train_logger=hparams["train_logger"],
        )
        regressors.append(regressor)
    return classifier, regressors, searches


def predict_split(classifier, regressors, split_data, split_features):
    """The split's outputs in the layout the SSL recipe scores and writes."""
    dimensions = np.stack(
        [
            np.clip(regressor.predict(split_features), 0.0, 1.0)
            for regressor in regressors
        ],
        axis=1,
    )
    return {
        **{k: v for k, v in split_data.items() if k != "wavs"},
        "probabilities": class_scores(classifier, split_features, NUM_CLASSES),
        "dimensions": dimensions,
    }


def main(argv):
    """Extracts (or reads) the features, selects the models on valid, writes the outputs."""
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
            "valid": hparams["valid_annotation"],
            "test1": hparams["test1_annotation"],
            "test2": hparams["test2_annotation"],
            "test3": hparams["test3_annotation"],
        }
        splits = available_splits(manifests, hparams["save_folder"])
        missing = [s for s in ("train", "valid") if s not in splits]
        if missing:
            raise HparamsError(
                f"data preparation wrote no manifest for {missing} in {hparams['save_folder']}"
            )
        data = {
            split: read_split(path, hparams, debug)
            for split, path in splits.items()
        }
        front_end = hparams["front_end"]
        features = {split: front_end(data[split]["wavs"]) for split in splits}
        complexities = hparams["complexities"]
        if debug:
            complexities = complexities[:DEBUG_COMPLEXITIES]
        classifier, regressors, searches = fit_models(
            hparams, data, features, complexities
        )
    with atomic_write(
        os.path.join(hparams["save_folder"], "model.joblib"), "wb"
    ) as handle:
        joblib.dump({"classes": classifier, "dimensions": regressors}, handle)

    summary = {
        "feature_set": hparams["feature_set"],
        "num_features": front_end.num_features,
        "classifier": hparams["classifier"].func.__name__,
        "regressor": hparams["regressor"].func.__name__,
        "model_selection": {
            "metric": "valid macro-F1 (classes), valid CCC (each attribute)",
            **searches,
        },
        "classes": MSP_CLASS_NAMES,
    }
    scores = {}
    folder = os.path.join(hparams["output_folder"], "predictions")
    for split in [s for s in splits if s != "train"]:  # as train.py
        outputs = predict_split(
            classifier, regressors, data[split], features[split]
        )
        # The eight classes, scored as the challenge does.
        write_predictions(
            os.path.join(folder, f"{split}.csv"), outputs, MSP_CLASS_NAMES
        )
        scores[split] = score_split(
            outputs, MSP_CLASS_NAMES, hparams["dimensions"]
        )
    summary.update(scores)
    logger.info(
        "\n"
        + format_results_table(
            scores,
            hparams["dimensions"],
            f"{summary['classifier']} + {summary['regressor']} on {summary['feature_set']}",
        )
    )
    results_file = os.path.join(hparams["output_folder"], "results.json")
    # As the SSL recipe: a NaN score is written as null and listed under
    # "errors"; a NaN headline score fails the run.
    errors = write_results_json(results_file, summary, HEADLINE_SCORES)
    if errors:
        raise SystemExit(f"error: {results_file}: {'; '.join(errors)}")


if __name__ == "__main__":
    print_help_if_asked(sys.argv[1:])  # SpeechBrain's options + the YAML's
    main(sys.argv[1:])
