#!/usr/bin/env python3
"""Recipe for MSP-Podcast: predict the distribution of the graders' categorical
votes and the arousal/valence/dominance of a clip (Mitra et al., 2025).

A frozen SSL encoder (WavLM-Large, a salient intermediate layer) turns the
waveform into frame features; a TC-GRU summarises the valid frames of each clip
into an embedding; two heads predict the vote distribution over the YAML's
``classes`` (trained with KL divergence to the renormalised vote pdf, CCC per
class as the paper does, or cross-entropy to the consensus class) and
arousal/valence/dominance (CCC loss). The class sets are YAML lists:
``classes``, the categories of the predicted pdf (the eight classes of the
challenges, or those and ``Other``: the 9 categories of Mitra et al.), and
``scored_classes``, the classes the categorical metrics score (the pdf's
probabilities of those, renormalised; clips whose consensus is another
class are left out of them, as O and X are). The N best
checkpoints by a validation score (YAML ``checkpoint_metric``) are averaged
for the final evaluation, and the best checkpoint alone is evaluated too.

Every split the release has is scored over the whole split: categorical
macro-F1 (the challenge's score), micro-F1, UAR, accuracy and 2/3-best
accuracy; paUAR-50/75 per speaker with 1-, 2- and 3-best hypotheses; the
same per gender; CCC per attribute. Test1 is also scored with noise added at
the SNRs of ``noisy_snrs``. Test3 (unlabelled) gets predictions only.

To run:
    python recipes/MSP-Podcast/train.py hparams/msp_wavlm_tcgru.yaml \
        --data_folder /path/to/MSP-Podcast

Authors
 * emoshare_sb contributors 2026
"""

import json
import math
import os
import sys

import numpy as np
import speechbrain as sb
import torch
from speechbrain.utils.distributed import if_main_process, run_on_main
from speechbrain.utils.logger import get_logger

from emoshare_sb.data.audio import random_crop, read_audio
from emoshare_sb.data.errors import exit_on_data_error
from emoshare_sb.data.manifest import OPTIONS_FILE
from emoshare_sb.data.msp_podcast import (
    MSP_CLASS_CODES,
    MSP_CLASS_NAMES,
    check_class_sets,
    class_pdf,
)
from emoshare_sb.metrics.classification import (
    best_classes,
    classification_report,
)
from emoshare_sb.metrics.regression import PredictionCollector, ccc_per_column
from emoshare_sb.nnet.distribution_losses import (
    kl_divergence_loss,
    pdf_ccc_loss,
    soft_cross_entropy,
)
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
from emoshare_sb.utils.io import write_csv, write_results_json

logger = get_logger(__name__)

# categorical_loss -> (loss of log-probabilities and targets, target kind,
# the fewest clips it is defined on).
CATEGORICAL_LOSSES = {
    "kl": (kl_divergence_loss, "distribution", 1),
    "soft_ce": (soft_cross_entropy, "distribution", 1),
    "ccc": (pdf_ccc_loss, "distribution", 2),
    "consensus_ce": (torch.nn.functional.nll_loss, "consensus", 1),
}
CHECKPOINT_METRICS = ("macro_f1_ccc", "macro_f1", "mean_ccc")
# The MSP-Podcast names of the dimensions, for the prediction files.
DIMENSION_COLUMNS = ["EmoAct", "EmoVal", "EmoDom"]


class ClipCollector(PredictionCollector):
    """A :class:`PredictionCollector` that also keeps each clip's speaker and gender.

    Predictions are ``[probabilities (C) | dimensions (D)]`` and targets
    ``[class index (1) | dimensions (D)]`` per clip; :meth:`gather` returns the
    whole split (every process's clips under DDP), sorted by id.

    Arguments
    ---------
    num_classes : int
        ``C``, the number of predicted class probabilities.
    """

    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes
        self.metadata = {}

    def append(self, ids, predictions, targets, speakers, genders):
        """Adds one batch.

        Arguments
        ---------
        ids : list of str
            Clip ids.
        predictions : torch.Tensor
            ``[B, C + D]`` class probabilities, then dimensions.
        targets : torch.Tensor
            ``[B, 1 + D]`` consensus class index (-1 for none), then dimensions
            (NaN when unlabelled).
        speakers, genders : list of str
            Each clip's speaker id and gender.
        """
        super().append(ids, predictions, targets)
        self.metadata.update(
            zip(ids, zip(speakers, genders, strict=True), strict=True)
        )

    def gather(self):
        """Returns the whole split, sorted by id.

        Returns
        -------
        dict
            ``ids``, ``probabilities`` ``[N, C]``, ``dimensions`` ``[N, D]``,
            ``class_targets`` ``[N]``, ``dimension_targets`` ``[N, D]``,
            ``speakers`` and ``genders`` (lists).
        """
        ids, predictions, targets = super().gather()
        metadata = self.metadata
        if (
            torch.distributed.is_available()
            and torch.distributed.is_initialized()
        ):
            everyone = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(everyone, metadata)
            metadata = {k: v for part in everyone for k, v in part.items()}
        num_classes = self.num_classes
        if not ids:
            predictions = np.zeros((0, num_classes + len(DIMENSION_COLUMNS)))
            targets = np.zeros((0, 1 + len(DIMENSION_COLUMNS)))
        return {
            "ids": ids,
            "probabilities": predictions[:, :num_classes],
            "dimensions": predictions[:, num_classes:],
            "class_targets": targets[:, 0].astype(int),
            "dimension_targets": targets[:, 1:],
            "speakers": [metadata[i][0] for i in ids],
            "genders": [metadata[i][1] for i in ids],
        }


class MSPEmotionBrain(EmotionBrain):
    """Trains TC-GRU + class and dimension heads on frozen SSL features.

    Optimizers, checkpoint averaging and CPU DDP come from
    :class:`emoshare_sb.training.brain.EmotionBrain`.
    """

    def compute_forward(self, batch, stage):
        """Encodes the padded waveforms; returns class log-probabilities and A/V/D."""
        batch = batch.to(self.device)
        wavs, wav_lens = batch.sig
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
        embeddings = self.modules.aggregator(features, feature_lens)
        log_probs = self.hparams.log_softmax(
            self.modules.class_head(embeddings)
        )
        dimensions = self.modules.dimension_head(embeddings)
        return log_probs, dimensions

    def compute_objectives(self, predictions, batch, stage):
        """Weighted sum of the categorical and dimensional losses over usable clips.

        On valid/test splits the predictions are also kept for whole-split scoring.
        """
        # In float32 even under mixed precision: CCC divides small variances.
        log_probs, dimensions = (p.float() for p in predictions)
        class_index = batch.class_index.data[:, 0]
        dimension_targets = batch.dimension_targets.data
        if stage != sb.Stage.TRAIN:
            self.collector.append(
                batch.id,
                torch.cat([log_probs.exp(), dimensions], dim=1),
                torch.cat(
                    [class_index.unsqueeze(1).float(), dimension_targets], dim=1
                ),
                batch.spk_id,
                batch.gender,
            )
        categorical = self.categorical_cost(log_probs, batch)
        dimensional = self.dimensional_cost(dimensions, dimension_targets)
        return (
            self.hparams.categorical_weight * categorical
            + self.hparams.dimensional_weight * dimensional
        )

    def categorical_cost(self, log_probs, batch):
        """The categorical loss over the clips that have its target.

        Distribution targets exist for clips with a vote among ``classes``
        (``has_pdf``); consensus targets for clips whose consensus is one of
        ``classes``. A batch with too few (none; fewer than two for the CCC
        loss) contributes zero (kept in the graph, so that every parameter
        gets a gradient, as DDP requires).
        """
        loss, target_kind, fewest = CATEGORICAL_LOSSES[
            self.hparams.categorical_loss
        ]
        if target_kind == "distribution":
            usable = batch.has_pdf.data[:, 0] > 0
            targets = batch.class_pdf.data
        else:
            targets = batch.class_index.data[:, 0]
            usable = targets >= 0
        if usable.sum() < fewest:
            return log_probs.sum() * 0.0
        return loss(log_probs[usable], targets[usable])

    def dimensional_cost(self, dimensions, targets):
        """CCC loss over the clips with A/V/D labels (none in Test3).

        CCC needs at least two clips; a batch with fewer contributes zero.
        """
        labelled = torch.isfinite(targets).all(dim=1)
        if labelled.sum() < 2:
            return dimensions.sum() * 0.0
        return self.hparams.compute_dimensional_cost(
            dimensions[labelled], targets[labelled]
        )

    def on_stage_start(self, stage, epoch=None):
        """Starts a fresh whole-split collector for valid/test."""
        super().on_stage_start(stage, epoch)
        if stage != sb.Stage.TRAIN:
            self.collector = ClipCollector(len(self.hparams.classes))

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Scores the whole split; on valid, logs, checkpoints and checks early stopping."""
        if stage == sb.Stage.TRAIN:
            self.train_stats = {"loss": stage_loss}
            return
        outputs = scored_outputs(
            self.collector.gather(),
            self.hparams.classes,
            self.hparams.scored_classes,
        )
        scores = score_split(
            outputs, self.hparams.scored_classes, self.hparams.dimensions
        )
        if stage == sb.Stage.VALID:
            metric = self.hparams.checkpoint_metric
            selection = selection_score(scores, metric)
            learning_rates = self.update_learning_rates(stage_loss)
            self.log_epoch_stats(
                stats_meta={"epoch": epoch, **learning_rates},
                train_stats=self.train_stats,
                valid_stats={
                    "loss": stage_loss,
                    **summary_stats(scores),
                    metric: selection,
                },
            )
            # Before saving, so that the checkpointed counter knows this epoch.
            self.hparams.epoch_counter.update_metric(selection)
            # A NaN selection score stops the run here, naming the epoch.
            self.save_epoch_checkpoint(
                epoch,
                meta={metric: selection},
                max_keys=[metric],
                num_to_keep=self.hparams.num_averaged_checkpoints,
            )
        else:
            self.test_outputs = {**outputs, "scores": scores}


def scored_outputs(outputs, classes, scored_classes):
    """A split's outputs restricted to the scored classes.

    Arguments
    ---------
    outputs : dict
        As returned by :meth:`ClipCollector.gather`: probabilities over
        ``classes`` and consensus indices into ``classes``.
    classes : list of str
        The predicted pdf's categories.
    scored_classes : list of str
        Those the metrics score.

    Returns
    -------
    dict
        ``outputs`` with ``probabilities`` ``[N, len(scored_classes)]`` (the
        scored classes' probabilities, renormalised to sum to 1) and
        ``class_targets`` indexing ``scored_classes`` (-1 when the consensus
        is none of them).

    Example
    -------
    >>> outputs = {
    ...     "probabilities": np.array([[0.2, 0.3, 0.5]]),
    ...     "class_targets": np.array([2]),
    ... }
    >>> view = scored_outputs(outputs, ["Sad", "Happy", "Other"], ["Happy"])
    >>> view["probabilities"].tolist(), view["class_targets"].tolist()
    ([[1.0]], [-1])
    """
    columns = [classes.index(name) for name in scored_classes]
    probabilities = outputs["probabilities"][:, columns]
    total = probabilities.sum(axis=1, keepdims=True)
    mapping = np.full(len(classes) + 1, -1)  # index -1 stays -1
    mapping[columns] = np.arange(len(columns))
    return {
        **outputs,
        "probabilities": probabilities / np.where(total > 0, total, 1.0),
        "class_targets": mapping[outputs["class_targets"]],
    }


def score_split(outputs, class_names, dimension_names):
    """Every metric of a split, or None when it is unlabelled (Test3).

    Arguments
    ---------
    outputs : dict
        As returned by :func:`scored_outputs`.
    class_names : list of str
        The scored classes, in the order of the probabilities.
    dimension_names : list of str
        Names of the dimensional outputs.

    Returns
    -------
    dict or None
        ``num_clips``, ``categorical`` (see
        :func:`emoshare_sb.metrics.classification.classification_report`;
        clips with consensus O or X are left out) and ``dimensional`` (CCC per
        attribute and their mean, overall and per gender).
    """
    dimension_targets = outputs["dimension_targets"]
    labelled = np.isfinite(dimension_targets).all(axis=1)
    if not labelled.any():
        return None
    genders = np.asarray(outputs["genders"])
    categorical = classification_report(
        outputs["probabilities"][labelled],
        outputs["class_targets"][labelled],
        class_names,
        speakers=np.asarray(outputs["speakers"])[labelled],
        genders=genders[labelled],
    )
    dimensional = ccc_scores(
        dimension_targets[labelled],
        outputs["dimensions"][labelled],
        dimension_names,
    )
    dimensional["per_gender"] = {
        str(gender): ccc_scores(
            dimension_targets[labelled & (genders == gender)],
            outputs["dimensions"][labelled & (genders == gender)],
            dimension_names,
        )
        for gender in np.unique(genders[labelled])
    }
    return {
        "num_clips": int(labelled.sum()),
        "categorical": categorical,
        "dimensional": dimensional,
    }


def ccc_scores(targets, predictions, names):
    """CCC of each attribute over the clips, and their mean (NaN below 2 clips)."""
    if len(targets) < 2:
        values = np.full(len(names), np.nan)
    else:
        values = ccc_per_column(targets, predictions)
    scores = {"ccc": {n: float(v) for n, v in zip(names, values, strict=True)}}
    scores["ccc"]["mean"] = (
        float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    )
    scores["num_clips"] = int(len(targets))
    return scores


def selection_score(scores, metric):
    """The validation score named by ``metric`` (higher is better).

    ``macro_f1_ccc`` is the mean of macro-F1 and the mean CCC: the model is
    multi-task and both heads are the system's output, so the checkpoint is
    chosen on both (each in [0, 1] for any useful model, so neither swamps
    the other). With no labelled clip (e.g. a ``--debug`` batch) it counts
    as -1, the worst value; a NaN from labelled clips is returned as NaN, so
    that :meth:`~emoshare_sb.training.brain.EmotionBrain.save_epoch_checkpoint`
    stops the run rather than keeping a broken model.
    """
    macro_f1 = (
        scores["categorical"].get("macro_f1", float("nan"))
        if scores
        else math.nan
    )
    mean_ccc = scores["dimensional"]["ccc"]["mean"] if scores else math.nan
    value = {
        "macro_f1": macro_f1,
        "mean_ccc": mean_ccc,
        "macro_f1_ccc": (macro_f1 + mean_ccc) / 2.0,
    }[metric]
    if scores is None:
        logger.warning(f"Validation {metric} is undefined; ranked as -1.")
        return -1.0
    return float(value)


def summary_stats(scores):
    """The headline numbers of a split, for the training log."""
    if scores is None:
        return {}
    categorical = scores["categorical"]
    stats = {
        key: categorical[key]
        for key in ("macro_f1", "micro_f1", "uar", "accuracy")
        if key in categorical
    }
    for name, value in scores["dimensional"]["ccc"].items():
        stats[f"ccc_{name}"] = value
    return stats


def dataio_prep(hparams):
    """Builds the datasets of every split data prep wrote, and the noisy test sets.

    Training clips are cropped to ``train_window`` seconds when it is > 0;
    evaluation clips are scored whole, sorted by duration to limit padding.
    Vote shares become a pdf over ``classes`` here
    (:func:`emoshare_sb.data.msp_podcast.class_pdf`: ``Other`` gets the
    share the eight columns leave, votes outside ``classes`` are dropped,
    the rest renormalised); clips without a vote among them get an all-zero
    pdf and ``has_pdf`` 0, never NaN, so that no NaN reaches a loss. The
    consensus class index points into ``classes`` (-1: none of them).

    Arguments
    ---------
    hparams : dict
        The loaded hyperparameters.

    Returns
    -------
    dict
        ``{split name: DynamicItemDataset}``: ``train``, ``valid``, the test
        splits present, and ``<noisy_split>_snr<X>db`` for each noisy SNR.
    """
    sample_rate = hparams["sample_rate"]
    window = int(hparams["train_window"] * sample_rate)
    noise_mixer = hparams["noise_mixer"]
    classes = hparams["classes"]
    num_votes = len(MSP_CLASS_NAMES)  # the manifests' eight share columns

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def train_audio_pipeline(wav):
        """Reads a training clip and crops it at random to the window."""
        return random_crop(read_audio(wav, sample_rate), window)

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def eval_audio_pipeline(wav):
        """Reads a whole evaluation clip."""
        return read_audio(wav, sample_rate)

    def noisy_audio_pipeline(snr_db):
        """The audio pipeline of the noisy set at ``snr_db``."""

        @sb.utils.data_pipeline.takes("id", "wav")
        @sb.utils.data_pipeline.provides("sig")
        def pipeline(clip_id, wav):
            """The clip with its noise at ``snr_db`` (``snr_reference``)."""
            return noise_mixer(clip_id, read_audio(wav, sample_rate), snr_db)

        return pipeline

    @sb.utils.data_pipeline.takes(
        *MSP_CLASS_NAMES,
        "has_distribution",
        "emo_class",
        *hparams["dimensions"],
    )
    @sb.utils.data_pipeline.provides(
        "class_pdf", "has_pdf", "class_index", "dimension_targets"
    )
    def target_pipeline(*fields):
        """Vote pdf, whether it exists, consensus class index and A/V/D."""
        pdf = None
        if int(fields[num_votes]) == 1:
            pdf = class_pdf([float(v) for v in fields[:num_votes]], classes)
        code = fields[num_votes + 1]
        name = MSP_CLASS_NAMES[MSP_CLASS_CODES.index(code)] if code else None
        yield (
            torch.zeros(len(classes))
            if pdf is None
            else torch.tensor(pdf, dtype=torch.float32)
        )
        yield torch.tensor([float(pdf is not None)])
        yield torch.tensor([classes.index(name) if name in classes else -1])
        yield torch.tensor([float(v) for v in fields[num_votes + 2 :]])

    output_keys = [
        "id",
        "sig",
        "class_pdf",
        "has_pdf",
        "class_index",
        "dimension_targets",
        "spk_id",
        "gender",
    ]

    def load(split, audio_pipeline):
        """The dataset of one manifest; evaluation sets sorted by duration."""
        dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(
            csv_path=manifests[split],
            dynamic_items=[audio_pipeline, target_pipeline],
            output_keys=output_keys,
        )
        return (
            dataset
            if split == "train"
            else dataset.filtered_sorted(sort_key="duration")
        )

    manifests = available_splits(annotations(hparams), hparams["save_folder"])
    missing = [s for s in ("train", "valid") if s not in manifests]
    if missing:
        raise HparamsError(
            f"no manifest for {missing}: data preparation wrote none in "
            f"{hparams['save_folder']} (or check --train_annotation and "
            "--valid_annotation)"
        )
    datasets = {
        split: load(
            split,
            train_audio_pipeline if split == "train" else eval_audio_pipeline,
        )
        for split in manifests
    }
    noisy_split = hparams["noisy_split"]
    if noisy_split in datasets:
        logger.info(
            f"Noisy {noisy_split} sets at {hparams['noisy_snrs']} dB SNR "
            f"(snr_reference: {hparams['snr_reference']}): "
            f"{hparams['noise_source']}"
        )
        for snr_db in hparams["noisy_snrs"]:
            datasets[noisy_name(noisy_split, snr_db)] = load(
                noisy_split, noisy_audio_pipeline(snr_db)
            )
    elif hparams["noisy_snrs"]:
        logger.warning(
            f"No {noisy_split} split: the noisy test sets are skipped."
        )

    without_votes = sum(
        not int(row["has_distribution"])
        for row in datasets["train"].data.values()
    )
    if without_votes:
        logger.info(
            f"{without_votes} of {len(datasets['train'])} training clips have no class "
            "vote: they train the dimensional head only (no_vote_policy="
            f"'{hparams['no_vote_policy']}')."
        )
    return datasets


def annotations(hparams):
    """The manifest of each split (``<split>_annotation``), in release order."""
    return {
        "train": hparams["train_annotation"],
        "valid": hparams["valid_annotation"],
        "test1": hparams["test1_annotation"],
        "test2": hparams["test2_annotation"],
        "test3": hparams["test3_annotation"],
    }


def available_splits(manifests, save_folder):
    """The splits whose manifest exists, in release order.

    A manifest in ``save_folder`` counts only if the last data preparation
    wrote it (its options file lists the splits), so that one left by an
    earlier preparation of another release is not mistaken for a split;
    manifests elsewhere (``--skip_prep True`` with annotation files) count
    when they exist.

    Arguments
    ---------
    manifests : dict
        ``{split: manifest path}``.
    save_folder : str
        Where data preparation writes.

    Returns
    -------
    dict
        ``{split: manifest path}`` of the splits to use.
    """
    options_path = os.path.join(save_folder, OPTIONS_FILE)
    written = None
    if os.path.isfile(options_path):
        with open(options_path) as handle:
            written = json.load(handle)["splits"]
    prepared = os.path.abspath(save_folder)
    return {
        split: path
        for split, path in manifests.items()
        if os.path.isfile(path)
        and (
            written is None
            or split in written
            or os.path.dirname(os.path.abspath(path)) != prepared
        )
    }


def noisy_name(split, snr_db):
    """The name of a noisy evaluation set, e.g. ``test1_snr15db``."""
    return f"{split}_snr{snr_db:g}db"


def check_options(hparams):
    """Fails early on option values the recipe does not know."""
    if hparams["categorical_loss"] not in CATEGORICAL_LOSSES:
        raise HparamsError(
            f"categorical_loss must be one of {list(CATEGORICAL_LOSSES)}, "
            f"got '{hparams['categorical_loss']}'"
        )
    if hparams["checkpoint_metric"] not in CHECKPOINT_METRICS:
        raise HparamsError(
            f"checkpoint_metric must be one of {list(CHECKPOINT_METRICS)}, "
            f"got '{hparams['checkpoint_metric']}'"
        )
    problem = check_class_sets(hparams["classes"], hparams["scored_classes"])
    if problem:
        raise HparamsError(problem)
    if hparams["class_head"].w.out_features != len(hparams["classes"]):
        raise HparamsError(
            f"class_head has {hparams['class_head'].w.out_features} outputs "
            f"for {len(hparams['classes'])} classes"
        )
    if len(hparams["dimensions"]) != len(DIMENSION_COLUMNS):
        raise HparamsError(
            f"--dimensions must name {len(DIMENSION_COLUMNS)} attributes"
        )


def write_predictions(path, outputs, class_names):
    """Writes one prediction file: FileName, the 1-best class, the scored
    classes' probabilities and A/V/D on MSP-Podcast's 1..7 scale."""
    header = ["FileName", "EmoClass"] + class_names + DIMENSION_COLUMNS
    codes = [MSP_CLASS_CODES[MSP_CLASS_NAMES.index(c)] for c in class_names]
    rows = []
    for clip, probabilities, dimensions in zip(
        outputs["ids"],
        outputs["probabilities"],
        outputs["dimensions"],
        strict=True,
    ):
        # The 1-best class as the metrics rank classes (ties to the higher index).
        best = int(best_classes(probabilities[None])[0])
        row = {"FileName": clip, "EmoClass": codes[best]}
        row.update(
            {
                c: f"{p:.6f}"
                for c, p in zip(class_names, probabilities, strict=True)
            }
        )
        # The model predicts (x - 1) / 6 in [0, 1]; the corpus scale is 1..7.
        row.update(
            {
                c: f"{1.0 + 6.0 * v:.4f}"
                for c, v in zip(DIMENSION_COLUMNS, dimensions, strict=True)
            }
        )
        rows.append(row)
    write_csv(path, rows, header)


def format_results_table(scores_per_split, dimension_names, title):
    """A fixed-width table of the headline metrics, one row per split."""
    columns = ["macro_f1", "micro_f1", "uar", "acc", "top2", "top3"]
    columns += [f"ccc_{n[:3]}" for n in dimension_names] + [
        "paUAR50",
        "paUAR75",
    ]
    lines = [title, f"{'split':<16}" + "".join(f"{c:>9}" for c in columns)]
    for split, scores in scores_per_split.items():
        if scores is None:
            lines.append(f"{split:<16}" + "  (unlabelled: predictions only)")
            continue
        categorical = scores["categorical"]
        top_k = categorical.get("top_k_accuracy", {})
        pauar = categorical.get("pauar", {}).get("k1", {})
        values = [
            categorical.get("macro_f1"),
            categorical.get("micro_f1"),
            categorical.get("uar"),
            categorical.get("accuracy"),
            top_k.get("2"),
            top_k.get("3"),
            *(scores["dimensional"]["ccc"][n] for n in dimension_names),
            pauar.get("50"),
            pauar.get("75"),
        ]
        lines.append(
            f"{split:<16}"
            + "".join(
                f"{'-':>9}" if v is None else f"{v:>9.3f}" for v in values
            )
        )
    return "\n".join(lines)


# The scores a split is judged by: NaN there fails the run (a per-gender score
# of a group with one clip is undefined, and written as null).
HEADLINE_SCORES = (
    "categorical.macro_f1",
    "categorical.uar",
    "categorical.accuracy",
    "dimensional.ccc.mean",
)


def write_outputs(hparams, results):
    """Writes predictions (averaged model; best checkpoint under best/),
    results.json and the results tables in the log; returns an error line
    for NaN scores."""
    folder = os.path.join(hparams["output_folder"], "predictions")
    summary = {
        "ssl_source": hparams["ssl_source"],
        "ssl_layer": hparams["ssl_layer"],
        "categorical_loss": hparams["categorical_loss"],
        "no_vote_policy": hparams["no_vote_policy"],
        "checkpoint_metric": hparams["checkpoint_metric"],
        "noise_source": repr(hparams["noise_source"]),
        "snr_reference": hparams["snr_reference"],
        "classes": hparams["scored_classes"],
        "pdf_classes": hparams["classes"],
    }
    for variant, subfolder in ((AVERAGED, ""), (BEST, BEST)):
        checkpoints = results[variant].pop("checkpoints")
        scores = {}
        for split, outputs in results[variant].items():
            write_predictions(
                os.path.join(folder, subfolder, f"{split}.csv"),
                outputs,
                hparams["scored_classes"],
            )
            scores[split] = outputs["scores"]
        logger.info(
            "\n"
            + format_results_table(
                scores, hparams["dimensions"], f"{variant} model"
            )
        )
        if variant == AVERAGED:  # the system's result
            summary["averaged_from"] = checkpoints
            summary.update(scores)
        else:
            summary["best_checkpoint"] = {"checkpoints": checkpoints, **scores}
    results_file = os.path.join(hparams["output_folder"], "results.json")
    # A NaN score is written as null, listed under "errors", and fails the run.
    errors = write_results_json(results_file, summary, HEADLINE_SCORES)
    if errors:
        return f"{results_file}: {'; '.join(errors)}"
    return None


if __name__ == "__main__":
    print_help_if_asked(sys.argv[1:])  # SpeechBrain's options + the YAML's
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    with exit_on_user_error():
        # Device, overrides, values and data folder: checked before anything
        # is loaded or written.
        start = RunStart(hparams_file, overrides, run_opts)
    # No-op unless under torchrun; the group is destroyed at exit.
    start_process_group(run_opts)
    # One line for bad overrides, corpus rows, model folders; a failed start
    # removes the output folder it created.
    with exit_on_user_error(), start.remove_if_failed():
        # encoder_dim: auto -> the encoder's width (recorded in hyperparams.yaml).
        overrides = resolve_encoder_widths(hparams_file, start.overrides)
        # Lock, no symbolic links, and the hyperparameters of a resumed run
        # unchanged: before hyperparams.yaml is written.
        start.claim(overrides, script=__file__)
        hparams = load_hparams(hparams_file, overrides)
        sb.create_experiment_directory(
            experiment_directory=hparams["output_folder"],
            hyperparams_to_save=hparams_file,
            overrides=overrides,
        )
        start.log_changes()  # with --accept_changed_hparams True, into log.txt
        check_options(hparams)
        check_encoder_width(hparams["encoder"], hparams["encoder_dim"])
        # Writes one manifest per split of the release (once, on the main process).
        run_on_main(hparams["prepare_data"])
        datasets = dataio_prep(hparams)
        check_train_batches(
            len(datasets["train"]), hparams["train_dataloader_options"]
        )

    brain = MSPEmotionBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
        # For YAMLs that fine-tune: the encoder's optimizer, its frozen start
        # and the learning-rate schedules (none in the MSP-Podcast YAMLs).
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
    # Audio deleted or changed since data preparation, a NaN valid score:
    # one line, not a traceback.
    with exit_on_data_error():
        brain.fit(
            brain.hparams.epoch_counter,
            datasets["train"],
            datasets["valid"],
            train_loader_kwargs=hparams["train_dataloader_options"],
            valid_loader_kwargs=hparams["eval_dataloader_options"],
        )

        # The best checkpoint alone, then the average of the N best (the system).
        results = brain.evaluate_best_and_averaged(
            {
                split: dataset
                for split, dataset in datasets.items()
                if split != "train"
            },
            loader_kwargs=hparams["eval_dataloader_options"],
            max_key=hparams["checkpoint_metric"],
        )
    if if_main_process():
        error = write_outputs(hparams, results)
        if error:
            raise SystemExit(f"error: {error}")
