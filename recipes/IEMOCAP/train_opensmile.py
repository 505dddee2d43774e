#!/usr/bin/env python3
"""Recipe for IEMOCAP, 4 classes, leave-one-session-out, with the classic
baseline: openSMILE functionals and a linear SVM (or logistic regression).

Each utterance becomes one vector of openSMILE functionals (eGeMAPSv02 or
ComParE_2016, chosen in the YAML), extracted once and cached per audio file
(:mod:`emoshare_sb.lobes.opensmile`), so the five folds extract every
utterance once. In each fold, the features are standardised with the fold's
training statistics, one classifier per complexity of the grid is fitted on
train and the one with the best valid ``checkpoint_metric`` (WA or UA) is
kept; the held-out session is its test set. The folds, splits and files are
those of the SSL recipe (``recipes/IEMOCAP/train.py``, whose functions write
and summarise them): ``fold_<k>/results.json`` and predictions, then
``results.json`` with WA and UA per fold, their mean, std and pooled values.
A fitted linear model has no checkpoints: the one model fills both the
``averaged`` and the ``best`` entries (and ``predictions/best/``).

To run:
    python recipes/IEMOCAP/train_opensmile.py hparams/iemocap_opensmile_svm.yaml \
        --data_folder /path/to/IEMOCAP_full_release

Authors
 * emoshare_sb contributors 2026
"""

import csv
import os
import sys
import types

import joblib
import speechbrain as sb
from speechbrain.utils.logger import get_logger

# The SSL recipe beside this script: one place for the folds' files and summary.
from train import (
    AVERAGED,
    BEST,
    EVAL_SPLITS,
    RESULTS_FILE,
    check_options,
    format_folds_table,
    log_to,
    read_fold_plan,
    score_split,
    summarise_folds,
    write_predictions,
)

from emoshare_sb.data.iemocap import SPLITS
from emoshare_sb.training.cli_help import print_help_if_asked
from emoshare_sb.training.hparams import exit_on_user_error, load_hparams
from emoshare_sb.training.linear_models import class_scores, select_on_devel
from emoshare_sb.training.run_guards import RunStart
from emoshare_sb.utils.io import atomic_write, write_results_json

logger = get_logger(__name__)

# A --debug run: the first utterances of each split, the first complexities.
DEBUG_UTTERANCES = 24
DEBUG_COMPLEXITIES = 2


def read_split(hparams, split, debug=False):
    """One manifest of the fold (``<split>_annotation``): ``{id: row}``, in
    file order."""
    path = {
        "train": hparams["train_annotation"],
        "valid": hparams["valid_annotation"],
        "test": hparams["test_annotation"],
    }[split]
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if debug:
        rows = rows[:DEBUG_UTTERANCES]
    return {row["ID"]: row for row in rows}


def write_fold_results(path, results):
    """Writes ``results`` as the SSL recipe does: a NaN score as null, listed
    under "errors"; a NaN WA or UA fails the run."""
    errors = write_results_json(path, results, ("wa", "ua"))
    if errors:
        raise SystemExit(f"error: {path}: {'; '.join(errors)}")


def run_fold(hparams_file, overrides, test_session, start, debug=False):
    """Fits and evaluates one fold in ``<output_folder>/fold_<test_session>``.

    The fold folder is locked and checked as the SSL recipe's folds are
    (:class:`RunStart`); a fold whose set-up fails removes the folders this
    start created.
    """
    fold_overrides = {**overrides, "test_session": test_session}
    fold_start = start.for_folder()
    # Bad overrides, corpus rows, audio: one line.
    with (
        exit_on_user_error(),
        fold_start.remove_if_failed(also=start.folders_to_remove()),
    ):
        fold_start.claim(
            fold_overrides,
            folder_key="fold_folder",
            script=__file__,
            ignore=["test_sessions"],
        )
        hparams = load_hparams(hparams_file, fold_overrides)
        sb.create_experiment_directory(
            experiment_directory=hparams["fold_folder"],
            hyperparams_to_save=hparams_file,
            overrides=fold_overrides,
        )
        fold_start.log_changes()  # with --accept_changed_hparams True
        check_options(hparams)
        hparams["prepare_data"]()
        classes = list(hparams["classes"])
        rows = {split: read_split(hparams, split, debug) for split in SPLITS}
        front_end = hparams["front_end"]
        features = {
            split: front_end([row["wav"] for row in rows[split].values()])
            for split in SPLITS
        }
    start.keep()
    targets = {
        split: [classes.index(row["emo"]) for row in rows[split].values()]
        for split in SPLITS
    }
    metric = hparams["checkpoint_metric"]
    complexities = hparams["complexities"]
    if debug:
        complexities = complexities[:DEBUG_COMPLEXITIES]

    def valid_score(valid_targets, valid_features, model):
        """The fold's valid WA or UA (``checkpoint_metric``)."""
        probabilities = class_scores(model, valid_features, len(classes))
        return score_split(valid_targets, probabilities, len(classes))[metric]

    model, search = select_on_devel(
        hparams["classifier"],
        hparams["complexity_name"],
        complexities,
        (features["train"], targets["train"]),
        (features["valid"], targets["valid"]),
        score=valid_score,
        name=f"fold {test_session}, {hparams['classifier'].func.__name__}",
        train_logger=hparams["train_logger"],
    )
    folder = hparams["fold_folder"]
    with atomic_write(
        os.path.join(hparams["save_folder"], "model.joblib"), "wb"
    ) as handle:
        joblib.dump(model, handle)

    test_speakers = sorted({row["spk_id"] for row in rows["test"].values()})
    results = {
        "test_session": test_session,
        "test_speakers": test_speakers,
        "classes": classes,
        "checkpoint_metric": metric,
        "num_utterances": {split: len(rows[split]) for split in SPLITS},
        "feature_set": hparams["feature_set"],
        "num_features": front_end.num_features,
        "model": hparams["classifier"].func.__name__,
        "model_selection": {"metric": f"valid {metric}", **search},
    }
    scored = {}
    for split in EVAL_SPLITS:
        probabilities = class_scores(model, features[split], len(classes))
        outputs = {
            "ids": list(rows[split]),
            "targets": targets[split],
            "probabilities": probabilities,
            "scores": score_split(targets[split], probabilities, len(classes)),
        }
        dataset = types.SimpleNamespace(data=rows[split])  # what it reads
        for subfolder in ("", BEST):
            write_predictions(
                os.path.join(folder, "predictions", subfolder, f"{split}.csv"),
                classes,
                dataset,
                outputs,
            )
        scored[split] = outputs["scores"]
        logger.info(
            f"Fold {test_session} ({' '.join(test_speakers)}), {split}: "
            f"WA {100 * scored[split]['wa']:.2f} %, UA {100 * scored[split]['ua']:.2f} % "
            f"({scored[split]['num_utterances']} utterances)"
        )
    for variant in (AVERAGED, BEST):  # one model, no checkpoints
        results[variant] = {"checkpoints": [], **scored}
    write_fold_results(os.path.join(folder, RESULTS_FILE), results)


def main(argv):
    """Runs every fold of ``test_sessions``, then writes and logs the summary."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    debug = run_opts.get("debug", False)
    with exit_on_user_error():
        # Overrides, values and data folder: checked before anything is written.
        start = RunStart(hparams_file, overrides, run_opts)
    with exit_on_user_error(), start.remove_if_failed():
        overrides = start.overrides
        plan = read_fold_plan(hparams_file, overrides)
        test_sessions = plan["test_sessions"]
        output_folder = plan["output_folder"]
        # No symbolic links, and the started folds' hyperparameters
        # unchanged, before hyperparams.yaml is rewritten.
        start.claim(
            overrides, script=__file__, lock=False, ignore=["test_sessions"]
        )
        sb.create_experiment_directory(
            experiment_directory=output_folder,
            hyperparams_to_save=hparams_file,
            overrides=overrides,
        )
    for test_session in test_sessions:
        run_fold(hparams_file, overrides, test_session, start, debug)
        log_to(output_folder)
    summary = summarise_folds(output_folder)
    write_fold_results(os.path.join(output_folder, RESULTS_FILE), summary)
    logger.info("\n" + format_folds_table(summary))


if __name__ == "__main__":
    print_help_if_asked(sys.argv[1:])  # SpeechBrain's options + the YAML's
    main(sys.argv[1:])
