#!/usr/bin/env python3
"""Recipe for IEMOCAP, 4 classes (neutral, happy + excited, angry, sad), with
leave-one-session-out 5-fold cross-validation, scored by weighted accuracy
(WA) and unweighted accuracy (UA, the mean per-class recall).

Each fold holds out one session (its two speakers) as the test set and splits
the other eight speakers' utterances 80/20 at random into train and valid, as
SUPERB does (see :mod:`emoshare_sb.data.iemocap`). SpeechBrain's own IEMOCAP
recipe splits utterances at random across all speakers (its issue #1415);
this is the protocol the literature reports.

An SSL encoder (or several, fused) turns the waveform into frames, an
aggregator (ECAPA-TDNN for Morais et al.) pools the valid frames and a linear
softmax classifier predicts the class, trained with the NLL loss. The YAML's
``inputs`` say what the encoder reads: ``[speech]`` (the waveform),
``[text]`` (the utterance's transcript, for a text model such as BERT) or
``[speech, text]`` (one stream each, pooled separately and concatenated:
late fusion, Morais et al.'s experiment 11). The N best
checkpoints by a validation score (``checkpoint_metric``: WA, as the paper
selects, or UA) are averaged, encoder included when it is fine-tuned, and
the best checkpoint alone is evaluated too.

Morais et al.'s two-stage protocol is two runs: stage 1 fine-tunes an
upstream with mean pooling and a linear classifier and averages its 5 best
checkpoints per fold (``hparams/iemocap_exp3_w2v2_mean.yaml``, ...); stage 2
(``hparams/iemocap_exp5_w2v2_ecapa.yaml``, ...) trains the ECAPA-TDNN
downstream on those averaged upstreams, frozen or fine-tuned further: its
YAML's ``stage1_upstreams`` maps each upstream (an object of the YAML) to
stage 1's ``fold_<k>/save/averaged/encoder.ckpt``, loaded before the fold
trains (:func:`load_stage1_upstreams`).

All folds run in one invocation, one after the other, each in
``<output_folder>/fold_<k>/`` with fresh modules; ``--test_sessions [3]``
runs one. ``<output_folder>/results.json`` gives WA and UA per fold and their
mean and standard deviation over the folds, for the averaged and the best
checkpoint, and the log shows them as a table.

To run:
    python recipes/IEMOCAP/train.py hparams/iemocap_hubert_wav2vec2_early_ecapa.yaml \
        --data_folder /path/to/IEMOCAP_full_release

Authors
 * emoshare_sb contributors 2026
"""

import csv
import gc
import json
import math
import os
import sys

import numpy as np
import ruamel.yaml
import speechbrain as sb
import torch
from hyperpyyaml import resolve_references
from sklearn.metrics import confusion_matrix
from speechbrain.core import DEFAULT_LOG_CONFIG
from speechbrain.utils.distributed import if_main_process, run_on_main
from speechbrain.utils.logger import get_logger, setup_logging

from emoshare_sb.data.audio import random_crop, read_audio
from emoshare_sb.data.errors import exit_on_data_error
from emoshare_sb.data.iemocap import IEMOCAP_SESSIONS, SPLITS
from emoshare_sb.metrics.classification import (
    accuracy,
    best_classes,
    unweighted_average_recall,
)
from emoshare_sb.metrics.regression import PredictionCollector
from emoshare_sb.training.brain import AVERAGED, BEST, EmotionBrain
from emoshare_sb.training.cli_help import print_help_if_asked
from emoshare_sb.training.distributed import start_process_group
from emoshare_sb.training.hparams import (
    check_encoder_width,
    exit_on_user_error,
    load_hparams,
    resolve_encoder_widths,
)
from emoshare_sb.training.run_checks import check_train_batches
from emoshare_sb.training.run_guards import RunStart
from emoshare_sb.utils.errors import HparamsError
from emoshare_sb.utils.io import write_csv, write_json, write_results_json

logger = get_logger(__name__)

CHECKPOINT_METRICS = ("wa", "ua")
# What the encoder reads: the waveform, the transcript, or both (late fusion).
INPUTS = (["speech"], ["text"], ["speech", "text"])
EVAL_SPLITS = ("valid", "test")
RESULTS_FILE = "results.json"


class IEMOCAPEmotionBrain(EmotionBrain):
    """Trains encoder(s) + aggregator + softmax classifier on the 4 classes.

    Optimizers, the encoder's frozen start, checkpoint averaging and CPU DDP
    come from :class:`emoshare_sb.training.brain.EmotionBrain`.
    """

    def compute_forward(self, batch, stage):
        """Encodes the YAML's ``inputs`` (speech, its transcript, or both),
        pools the valid frames or tokens, returns log-probabilities."""
        batch = batch.to(self.device)
        inputs = self.hparams.inputs
        if inputs == ["text"]:
            # The transcript's tokens; autograd only while the text model trains.
            with torch.set_grad_enabled(self.encoder_is_updated()):
                features, feature_lens = self.modules.encoder(batch.text)
            embeddings = self.modules.pooling(features, feature_lens)
            return self.modules.head(embeddings)
        wavs, wav_lens = batch.sig
        if inputs == ["speech", "text"]:
            # A (features, lengths) stream per input, pooled one by one (late fusion).
            with torch.set_grad_enabled(self.encoder_is_updated()):
                streams = self.modules.encoder(wavs, wav_lens, batch.text)
            return self.modules.head(self.modules.pooling(streams))
        # At evaluation at most max_eval_batch_seconds of padded audio go
        # through the encoder at once (a long clip does not pad the batch).
        features, feature_lens = self.encode(
            wavs,
            wav_lens,
            max_seconds=None
            if stage == sb.Stage.TRAIN
            else self.hparams.max_eval_batch_seconds,
            sample_rate=self.hparams.sample_rate,
        )
        embeddings = self.modules.pooling(features, feature_lens)
        return self.modules.head(embeddings)

    def compute_objectives(self, log_probabilities, batch, stage):
        """NLL of the target classes; on valid/test also keeps the class
        probabilities for whole-split scoring."""
        targets = batch.class_index.data[:, 0]
        log_probabilities = log_probabilities.float()
        if stage != sb.Stage.TRAIN:
            self.collector.append(
                batch.id, log_probabilities.exp(), targets.unsqueeze(1).float()
            )
        return self.hparams.compute_cost(log_probabilities, targets)

    def on_stage_start(self, stage, epoch=None):
        """Starts a fresh whole-split collector for valid/test."""
        super().on_stage_start(stage, epoch)
        if stage != sb.Stage.TRAIN:
            self.collector = PredictionCollector()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Scores the whole split; on valid, anneals, logs and checkpoints."""
        if stage == sb.Stage.TRAIN:
            self.train_stats = {"loss": stage_loss}
            return
        ids, probabilities, targets = self.collector.gather()
        scores = score_split(
            targets[:, 0].astype(int), probabilities, len(self.hparams.classes)
        )
        if stage == sb.Stage.VALID:
            # New-bob on the validation error rate, as SpeechBrain's IEMOCAP recipe.
            learning_rates = self.update_learning_rates(1.0 - scores["wa"])
            self.log_epoch_stats(
                stats_meta={"epoch": epoch, **learning_rates},
                train_stats=self.train_stats,
                valid_stats={
                    "loss": stage_loss,
                    "wa": scores["wa"],
                    "ua": scores["ua"],
                },
            )
            metric = self.hparams.checkpoint_metric
            # A NaN score stops the run here, naming the epoch.
            self.save_epoch_checkpoint(
                epoch,
                meta={metric: scores[metric]},
                max_keys=[metric],
                num_to_keep=self.hparams.num_averaged_checkpoints,
            )
        else:
            self.test_outputs = {
                "ids": ids,
                "probabilities": probabilities,
                "targets": targets[:, 0].astype(int),
                "scores": scores,
            }


def score_split(targets, probabilities, num_classes):
    """WA, UA and the confusion matrix of a whole split.

    Arguments
    ---------
    targets : numpy.ndarray
        ``[N]`` class indices.
    probabilities : numpy.ndarray
        ``[N, C]`` class probabilities.
    num_classes : int
        ``C``.

    Returns
    -------
    dict
        ``wa`` (accuracy), ``ua`` (mean recall over the classes present),
        ``num_utterances`` and ``confusion`` (rows: targets, columns:
        predictions, in class order).
    """
    predictions = (
        best_classes(probabilities) if len(targets) else np.zeros(0, dtype=int)
    )
    return {
        "wa": accuracy(targets, predictions) if len(targets) else math.nan,
        "ua": unweighted_average_recall(targets, predictions),
        "num_utterances": int(len(targets)),
        "confusion": confusion_matrix(
            targets, predictions, labels=np.arange(num_classes)
        ).tolist(),
    }


def dataio_prep(hparams):
    """Builds the train/valid/test datasets of the fold from its manifests.

    Training utterances are randomly cropped to ``train_window`` seconds when
    it is > 0; valid and test utterances are scored whole, sorted by duration
    to limit padding. With ``text`` among the ``inputs`` the batches hold the
    manifests' ``text`` column (data preparation with ``transcripts: True``);
    without ``speech`` no audio is read.
    """
    classes = list(hparams["classes"])

    @sb.utils.data_pipeline.takes("emo")
    @sb.utils.data_pipeline.provides("class_index")
    def label_pipeline(emo):
        """The utterance's class index."""
        return torch.LongTensor([classes.index(emo)])

    # By default the fold's manifests, as data preparation writes them.
    manifests = {
        "train": hparams["train_annotation"],
        "valid": hparams["valid_annotation"],
        "test": hparams["test_annotation"],
    }
    inputs = hparams["inputs"]
    datasets = {}
    for split in SPLITS:
        dynamic_items, output_keys = [label_pipeline], ["id", "class_index"]
        if "speech" in inputs:
            dynamic_items.append(
                audio_pipeline(hparams, train=split == "train")
            )
            output_keys.append("sig")
        if "text" in inputs:
            output_keys.append("text")
        dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(
            csv_path=manifests[split],
            dynamic_items=dynamic_items,
            output_keys=output_keys,
        )
        if "text" in inputs:
            check_text_column(dataset, manifests[split])
        if split != "train":
            dataset = dataset.filtered_sorted(sort_key="duration")
        datasets[split] = dataset
    return datasets


def audio_pipeline(hparams, train):
    """The pipeline reading ``sig``: a random ``train_window`` crop of a
    training clip (when > 0), or a whole evaluation clip."""
    sample_rate = hparams["sample_rate"]
    window = int(hparams["train_window"] * sample_rate) if train else 0

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def read_clip(wav):
        """Reads a clip, cropped at random to the window when there is one."""
        return random_crop(read_audio(wav, sample_rate), window)

    return read_clip


def check_text_column(dataset, manifest):
    """Fails with the fix when a manifest has no transcripts (``text`` column)."""
    first = next(iter(dataset.data.values()), {})
    if "text" not in first:
        raise HparamsError(
            f"{manifest} has no 'text' column, which the inputs 'text' read: "
            "prepare the data with transcripts: True (the text YAMLs do), or "
            "point the annotation keys at manifests written so"
        )


def check_inputs(hparams):
    """Fails early on ``inputs`` the recipe does not know."""
    if hparams["inputs"] not in INPUTS:
        raise HparamsError(
            f"--inputs must be one of {[list(i) for i in INPUTS]}, "
            f"got {hparams['inputs']}"
        )


def check_options(hparams):
    """Fails early on option values the recipe does not know (shared with
    ``train_opensmile.py``)."""
    if hparams["checkpoint_metric"] not in CHECKPOINT_METRICS:
        raise HparamsError(
            f"--checkpoint_metric must be one of {list(CHECKPOINT_METRICS)}, "
            f"got '{hparams['checkpoint_metric']}'"
        )


def load_stage1_upstreams(hparams):
    """Loads stage 1's averaged upstream weights of this fold (two-stage YAMLs).

    ``stage1_upstreams`` maps the name of each upstream object of the YAML
    (e.g. ``encoder``, ``hubert_encoder``) to the averaged ``encoder.ckpt``
    that stage 1 wrote for the fold; the weights are loaded strictly (every
    tensor, no other).

    Arguments
    ---------
    hparams : dict
        The fold's loaded hyperparameters.

    Raises
    ------
    HparamsError
        When a checkpoint is missing (stage 1 not run for the fold) or does
        not fit its upstream.
    """
    for name, path in hparams["stage1_upstreams"].items():
        if not os.path.isfile(path):
            raise HparamsError(
                f"stage1_upstreams: {path} does not exist: run stage 1 for "
                f"fold {hparams['test_session']} first (its YAML with the "
                "same --test_sessions), or point the stage-1 folder at its "
                "output_folder"
            )
        state = torch.load(path, map_location="cpu")
        try:
            hparams[name].load_state_dict(state)
        except RuntimeError as error:
            raise HparamsError(
                f"stage1_upstreams: {path} does not fit '{name}' (another "
                f"upstream?): {str(error).splitlines()[0]}"
            ) from error
        logger.info(f"Stage 2: '{name}' starts from {path}")


def read_fold_plan(hparams_file, overrides):
    """The folds to run and the output folder, read without building any object.

    References and overrides are resolved, but nothing is instantiated (no
    encoder is loaded), so the plan costs nothing.

    Returns
    -------
    dict
        ``test_sessions`` (checked, as ints) and ``output_folder``.
    """
    if "test_session" in overrides:
        raise HparamsError(
            "--test_session is set by the recipe for each fold; choose the folds "
            "with --test_sessions, e.g. --test_sessions [3]"
        )
    try:
        with open(hparams_file, encoding="utf-8") as handle:
            resolved = resolve_references(handle, overrides)
    except (
        ValueError
    ) as error:  # a !PLACEHOLDER left, or overrides of the wrong shape
        raise HparamsError(" ".join(str(arg) for arg in error.args)) from error
    plain = ruamel.yaml.YAML(typ="rt").load(resolved)
    test_sessions = plain["test_sessions"]
    if (
        not isinstance(test_sessions, list)
        or not test_sessions
        or any(
            s not in IEMOCAP_SESSIONS or isinstance(s, bool)
            for s in test_sessions
        )
        or len(set(test_sessions)) != len(test_sessions)
    ):
        raise HparamsError(
            f"--test_sessions must be a list of distinct sessions among "
            f"{list(IEMOCAP_SESSIONS)}, e.g. [1, 2, 3, 4, 5] or [3]; got {test_sessions}"
        )
    return {
        "test_sessions": [int(s) for s in test_sessions],
        "output_folder": str(plain["output_folder"]),
    }


def run_fold(hparams_file, run_opts, overrides, test_session, start):
    """Trains and evaluates one fold in ``<output_folder>/fold_<test_session>``.

    The YAML is loaded anew for the fold with ``test_session`` overridden, so
    everything starts as the YAML says: the seed is set again, the encoders
    are loaded from their pretrained weights, and the aggregator, head,
    optimizers, schedulers, epoch counter and checkpointer are new. A fold
    therefore gives the same result whether it runs alone or after others,
    and an interrupted fold resumes from its own checkpoints.

    The fold folder is locked (parallel jobs may run other folds into the
    same output folder) and checked as :class:`RunStart` checks a run; a
    fold whose set-up fails removes the folders this start created (the
    output folder too, before the first fold has started).
    """
    fold_overrides = {**overrides, "test_session": test_session}
    fold_start = start.for_folder()
    # Bad overrides, corpus rows, model folders: one line.
    with (
        exit_on_user_error(),
        fold_start.remove_if_failed(also=start.folders_to_remove()),
    ):
        fold_start.claim(
            fold_overrides,
            folder_key="fold_folder",
            script=__file__,
            # Parallel jobs run single folds (--test_sessions [k]) into one folder.
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
        check_inputs(hparams)
        check_encoder_width(hparams["encoder"], hparams["encoder_dim"])
        if "stage1_upstreams" in hparams:  # stage 2 of the two-stage protocol
            load_stage1_upstreams(hparams)
        # Writes the fold's train/valid/test manifests (once, on the main process).
        run_on_main(hparams["prepare_data"])
        datasets = dataio_prep(hparams)
        check_train_batches(
            len(datasets["train"]), hparams["train_dataloader_options"]
        )
    start.keep()

    brain = IEMOCAPEmotionBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=dict(run_opts),
        checkpointer=hparams["checkpointer"],
        # Fine-tuning: the encoders' optimizer, their frozen start and the
        # learning-rate schedules.
        encoder_opt_class=hparams.get("encoder_opt_class"),
        encoder_freeze_steps=hparams.get("encoder_freeze_steps", 0),
        lr_schedulers=hparams.get("lr_schedulers"),
        train_logger=hparams["train_logger"],
        tensorboard_logger=(
            hparams["tensorboard_logger"]
            if hparams["use_tensorboard"]
            else None
        ),
    )
    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=hparams["train_dataloader_options"],
        valid_loader_kwargs=hparams["eval_dataloader_options"],
    )

    # The best checkpoint alone, then the average of the N best (the system).
    outputs = brain.evaluate_best_and_averaged(
        {split: datasets[split] for split in EVAL_SPLITS},
        loader_kwargs=hparams["eval_dataloader_options"],
        max_key=hparams["checkpoint_metric"],
    )
    if if_main_process():
        error = write_fold_outputs(hparams, datasets, outputs)
        if error:
            raise SystemExit(f"error: {error}")


def write_predictions(path, classes, dataset, outputs):
    """Writes one prediction CSV: ID, speaker, target, predicted class, class probabilities."""
    rows = []
    for utterance, target, probabilities in zip(
        outputs["ids"],
        outputs["targets"],
        outputs["probabilities"],
        strict=True,
    ):
        row = {
            "ID": utterance,
            "spk_id": dataset.data[utterance]["spk_id"],
            "emo": classes[target],
            "prediction": classes[int(best_classes(probabilities[None])[0])],
        }
        row.update(
            {c: f"{p:.6f}" for c, p in zip(classes, probabilities, strict=True)}
        )
        rows.append(row)
    write_csv(path, rows, ["ID", "spk_id", "emo", "prediction"] + classes)


def write_fold_outputs(hparams, datasets, outputs):
    """Writes the fold's predictions (averaged model; best checkpoint under
    best/) and its results.json, and logs its scores; returns an error line
    for a NaN WA or UA."""
    classes = list(hparams["classes"])
    folder = hparams["fold_folder"]
    test_speakers = sorted(
        {row["spk_id"] for row in datasets["test"].data.values()}
    )
    results = {
        "test_session": hparams["test_session"],
        "test_speakers": test_speakers,
        "classes": classes,
        "checkpoint_metric": hparams["checkpoint_metric"],
        "num_utterances": {split: len(datasets[split]) for split in SPLITS},
    }
    for variant, subfolder in ((AVERAGED, ""), (BEST, BEST)):
        results[variant] = {"checkpoints": outputs[variant]["checkpoints"]}
        for split in EVAL_SPLITS:
            write_predictions(
                os.path.join(folder, "predictions", subfolder, f"{split}.csv"),
                classes,
                datasets[split],
                outputs[variant][split],
            )
            scores = outputs[variant][split]["scores"]
            results[variant][split] = scores
            logger.info(
                f"Fold {hparams['test_session']} ({' '.join(test_speakers)}), {split}, "
                f"{variant} model: WA {100 * scores['wa']:.2f} %, UA {100 * scores['ua']:.2f} % "
                f"({scores['num_utterances']} utterances)"
            )
    results_file = os.path.join(folder, RESULTS_FILE)
    # A NaN WA/UA is written as null, listed under "errors", and fails the run.
    errors = write_results_json(results_file, results, ("wa", "ua"))
    return f"{results_file}: {'; '.join(errors)}" if errors else None


def summarise_folds(output_folder):
    """WA and UA per fold, their mean and std, and over all folds' test utterances.

    Every fold with a ``fold_<k>/results.json`` in ``output_folder`` counts:
    the folds of this run, and folds run earlier or by parallel jobs
    (``--test_sessions [k]``) into the same folder.

    Arguments
    ---------
    output_folder : str
        The cross-validation's output folder.

    Returns
    -------
    dict
        ``folds`` (the held-out sessions), ``classes``, ``checkpoint_metric``,
        and per variant (``averaged``, ``best``): ``per_fold`` (test WA, UA,
        speakers, utterances), ``mean`` and ``std`` (sample standard
        deviation over folds, ddof = 1; None for one fold) of WA and UA, and
        ``pooled`` (WA and UA over the test utterances of all folds together).
    """
    folds = {}
    for session in IEMOCAP_SESSIONS:
        path = os.path.join(output_folder, f"fold_{session}", RESULTS_FILE)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                folds[session] = json.load(handle)
    first = next(iter(folds.values()))
    classes = first["classes"]
    summary = {
        "protocol": "IEMOCAP leave-one-session-out; train/valid: random 80/20 "
        "utterance split of the other sessions (SUPERB)",
        "folds": sorted(folds),
        "classes": classes,
        "checkpoint_metric": first["checkpoint_metric"],
    }
    for variant, subfolder in ((AVERAGED, ""), (BEST, BEST)):
        per_fold = {
            str(session): {
                "wa": fold[variant]["test"]["wa"],
                "ua": fold[variant]["test"]["ua"],
                "num_utterances": fold[variant]["test"]["num_utterances"],
                "test_speakers": fold["test_speakers"],
            }
            for session, fold in folds.items()
        }
        targets, predictions = [], []
        for session in folds:
            path = os.path.join(
                output_folder,
                f"fold_{session}",
                "predictions",
                subfolder,
                "test.csv",
            )
            with open(path, newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    targets.append(classes.index(row["emo"]))
                    predictions.append(classes.index(row["prediction"]))
        summary[variant] = {
            "per_fold": per_fold,
            "mean": {
                m: float(np.mean([f[m] for f in per_fold.values()]))
                for m in ("wa", "ua")
            },
            "std": {
                m: float(np.std([f[m] for f in per_fold.values()], ddof=1))
                if len(per_fold) > 1
                else None
                for m in ("wa", "ua")
            },
            "pooled": {
                "wa": accuracy(targets, predictions),
                "ua": unweighted_average_recall(targets, predictions),
                "num_utterances": len(targets),
            },
        }
    return summary


def format_folds_table(summary):
    """A fixed-width table of test WA and UA (%) per fold, mean, std and pooled."""
    title = (
        f"IEMOCAP, {len(summary['classes'])} classes ({' '.join(summary['classes'])}), "
        f"leave-one-session-out, {len(summary['folds'])} fold(s): test WA / UA (%), "
        f"checkpoints ranked by valid {summary['checkpoint_metric'].upper()}"
    )
    columns = ["best WA", "best UA", "avg WA", "avg UA"]
    lines = [
        title,
        f"{'fold':<8}{'test speakers':<16}{'utts':>6}"
        + "".join(f"{c:>9}" for c in columns),
    ]

    def values(get):
        """WA and UA of the best, then the averaged model, as ``get`` picks them."""
        return [
            get(summary[v])[m] for v in (BEST, AVERAGED) for m in ("wa", "ua")
        ]

    def cells(numbers):
        """Fixed-width percentages, '-' for a missing value."""
        return "".join(
            f"{'-':>9}" if v is None else f"{100 * v:>9.2f}" for v in numbers
        )

    for session in summary["folds"]:
        fold = summary[AVERAGED]["per_fold"][str(session)]
        lines.append(
            f"{session:<8}{' '.join(fold['test_speakers']):<16}{fold['num_utterances']:>6}"
            + cells(values(lambda s, k=str(session): s["per_fold"][k]))
        )
    lines.append(f"{'mean':<30}" + cells(values(lambda s: s["mean"])))
    lines.append(f"{'std':<30}" + cells(values(lambda s: s["std"])))
    pooled = summary[AVERAGED]["pooled"]["num_utterances"]
    lines.append(
        f"{'pooled':<24}{pooled:>6}" + cells(values(lambda s: s["pooled"]))
    )
    return "\n".join(lines)


def log_to(folder):
    """Sends the log file to ``<folder>/log.txt`` again (after a fold's own log)."""
    if if_main_process():
        log_file = os.path.join(folder, "log.txt")
        setup_logging(
            DEFAULT_LOG_CONFIG,
            {"handlers": {"file_handler": {"filename": log_file}}},
        )


def _json_safe(value):
    """Replaces NaN/inf (invalid JSON) by None, recursively."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def main(argv):
    """Runs every fold of ``test_sessions``, then writes and logs the summary."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    with exit_on_user_error():
        # Device, overrides, values and data folder: checked before anything
        # is loaded or written.
        start = RunStart(hparams_file, overrides, run_opts)
    # No-op unless under torchrun; the group is destroyed at exit.
    start_process_group(run_opts)
    with exit_on_user_error(), start.remove_if_failed():
        # As a dict, with *_dim: auto -> each encoder's width (for every fold
        # and hyperparams.yaml).
        overrides = resolve_encoder_widths(hparams_file, start.overrides)
        plan = read_fold_plan(hparams_file, overrides)
        test_sessions = plan["test_sessions"]
        output_folder = plan["output_folder"]
        # No symbolic links, and the hyperparameters of the folds already
        # started unchanged (parallel jobs run other test_sessions), before
        # hyperparams.yaml is rewritten; each fold folder is locked later.
        start.claim(
            overrides, script=__file__, lock=False, ignore=["test_sessions"]
        )
        sb.create_experiment_directory(
            experiment_directory=output_folder,
            hyperparams_to_save=hparams_file,
            overrides=overrides,
        )
    logger.info(
        f"Leave-one-session-out folds to run (held-out session): {test_sessions}"
    )
    for test_session in test_sessions:
        # Audio deleted or changed since data preparation: one line.
        with exit_on_data_error():
            run_fold(hparams_file, run_opts, overrides, test_session, start)
        # The fold's modules, optimizers and data loaders go before the next fold's.
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        log_to(output_folder)
        if if_main_process():
            summary = summarise_folds(output_folder)
            write_json(
                os.path.join(output_folder, RESULTS_FILE), _json_safe(summary)
            )
            averaged = summary[AVERAGED]["per_fold"][str(test_session)]
            logger.info(
                f"Fold {test_session} done: test WA {100 * averaged['wa']:.2f} %, "
                f"UA {100 * averaged['ua']:.2f} % (averaged model)"
            )
    if if_main_process():
        logger.info("\n" + format_folds_table(summary))


if __name__ == "__main__":
    print_help_if_asked(sys.argv[1:])  # SpeechBrain's options + the YAML's
    main(sys.argv[1:])
