#!/usr/bin/env python3
"""Recipe for ComParE 2023 Emotion Share: regress the share of listeners who
hear each of nine emotions in a clip, scored by mean per-emotion Spearman.

An SSL encoder (frozen by default) turns the waveform into frame features, an
aggregator pools them over the valid frames and a head predicts one share per
emotion. The N best checkpoints by the devel score ``checkpoint_metric``
(mean Spearman, or Atmaja & Sasou's Avg = (Spearman + CCC) / 2) are averaged
for the final evaluation (as Morais et al. do), and devel/test predictions
are written in the challenge's submission format.

With ``checkpoint_selection: per_emotion`` each emotion's prediction comes
from its own N best checkpoints by that emotion's devel Spearman (Mohapatra
et al. select one epoch per emotion-specific network; with
:class:`emoshare_sb.nnet.heads.IndependentNetworks` one run trains those
networks, see :func:`evaluate_per_emotion`).

Evaluation scores each clip whole, the mean over sliding windows
(``eval_window``/``eval_hop``), or, as Atmaja & Sasou's code does, only its
first ``eval_crop`` seconds, zero-padded to that length (their Table IV; see
:mod:`emoshare_sb.cli.window_study`).

To run:
    python recipes/ComParE23/train.py hparams/hubert_attn.yaml \
        --data_folder /path/to/ComParE2023_EmotionShare

Authors
 * emoshare_sb contributors 2026
"""

import math
import os
import shutil
import sys

import numpy as np
import speechbrain as sb
import torch
from speechbrain.utils.distributed import if_main_process, run_on_main
from speechbrain.utils.logger import get_logger

from emoshare_sb.data.audio import first_window, random_crop, read_audio
from emoshare_sb.data.errors import exit_on_data_error
from emoshare_sb.inference.windows import average_by_owner, split_into_windows
from emoshare_sb.metrics.regression import (
    PredictionCollector,
    format_scores_table,
    regression_scores,
)
from emoshare_sb.training.batching import dataloader_options
from emoshare_sb.training.brain import AVERAGED, BEST, EmotionBrain
from emoshare_sb.training.cli_help import print_help_if_asked
from emoshare_sb.training.distributed import start_process_group
from emoshare_sb.training.feature_cache import FeatureCache, to_encoder_layout
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

CHECKPOINT_SELECTIONS = ("overall", "per_emotion")
PER_EMOTION = "per_emotion"

# checkpoint_metric -> the devel score that ranks checkpoints.
CHECKPOINT_METRICS = {
    "spearman": lambda scores: scores["spearman"]["mean"],
    # Atmaja & Sasou, eq. 3: Avg = (SCC + CCC) / 2.
    "spearman_ccc": lambda scores: (
        scores["spearman"]["mean"] + scores["ccc"]["mean"]
    )
    / 2.0,
}


class EmotionShareBrain(EmotionBrain):
    """Trains encoder + aggregator + head to regress per-clip emotion shares.

    Optimizers, the encoder's frozen start, checkpoint averaging and CPU DDP
    come from :class:`emoshare_sb.training.brain.EmotionBrain`.
    """

    valid_split = "devel"

    def compute_forward(self, batch, stage):
        """Predicts shares; at evaluation, optionally per sliding window, averaged per clip."""
        batch = batch.to(self.device)
        if (
            self.hparams.use_feature_cache
        ):  # frozen encoder's features, read from disk
            features, feature_lens = batch.feats
            embeddings = self.modules.pooling(
                to_encoder_layout(features), feature_lens
            )
            return self.modules.head(embeddings)
        wavs, wav_lens = batch.sig
        window = int(self.hparams.eval_window * self.hparams.sample_rate)
        if stage != sb.Stage.TRAIN and window > 0:
            hop = int(self.hparams.eval_hop * self.hparams.sample_rate)
            windows, window_lens, owners = split_into_windows(
                wavs, wav_lens, window, hop
            )
            window_predictions = self.predict(windows, window_lens, stage)
            return average_by_owner(window_predictions, owners, wavs.shape[0])
        return self.predict(wavs, wav_lens, stage)

    def predict(self, wavs, wav_lens, stage):
        """Encodes the padded waveforms, pools the valid frames, predicts shares.

        At evaluation at most ``max_eval_batch_seconds`` of padded audio go
        through the encoder at once.
        """
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

    def compute_objectives(self, predictions, batch, stage):
        """Computes the loss; on devel/test also keeps predictions for scoring."""
        targets = batch.targets.data
        if stage != sb.Stage.TRAIN:
            self.collector.append(batch.id, predictions, targets)
        if torch.isnan(targets).any():  # unlabelled split (ComParE test)
            return predictions.new_zeros(())
        # In float32 even under mixed precision: CCC divides small variances.
        return self.hparams.compute_cost(predictions.float(), targets)

    def on_stage_start(self, stage, epoch=None):
        """Starts a fresh whole-split prediction collector for devel/test."""
        super().on_stage_start(stage, epoch)
        if stage != sb.Stage.TRAIN:
            self.collector = PredictionCollector()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Scores the whole split, logs, anneals, and checkpoints on devel Spearman."""
        if stage == sb.Stage.TRAIN:
            self.train_stats = {"loss": stage_loss}
            return
        ids, predictions, targets = self.collector.gather()
        scores = None
        stats = {"loss": stage_loss}
        metric = self.hparams.checkpoint_metric
        if not np.isnan(targets).any():
            scores = regression_scores(
                targets, predictions, self.hparams.emotions
            )
            stats.update(
                {m: scores[m]["mean"] for m in ("spearman", "ccc", "pearson")}
            )
            stats[metric] = CHECKPOINT_METRICS[metric](scores)
        if stage == sb.Stage.VALID:
            learning_rates = self.update_learning_rates(stage_loss)
            self.log_epoch_stats(
                stats_meta={"epoch": epoch, **learning_rates},
                train_stats=self.train_stats,
                valid_stats=stats,
            )
            meta = {metric: stats[metric]}
            if self.hparams.checkpoint_selection == PER_EMOTION:
                meta.update(emotion_meta(scores, self.hparams.emotions))
            # The N best by each key are kept (their union); a NaN metric
            # stops the run here, naming the epoch.
            self.save_epoch_checkpoint(
                epoch,
                meta=meta,
                max_keys=list(meta),
                num_to_keep=self.hparams.num_averaged_checkpoints,
            )
        else:
            self.test_outputs = {
                "ids": ids,
                "predictions": predictions,
                "targets": targets,
                "scores": scores,
            }


def emotion_key(emotion):
    """The checkpoint meta key of one emotion's devel Spearman."""
    return f"spearman_{emotion}"


def emotion_meta(scores, emotions):
    """Each emotion's devel Spearman, keyed by :func:`emotion_key`.

    An undefined value (a constant prediction, or no scores) ranks as -1,
    the worst, so that checkpoints still sort.
    """
    meta = {}
    for emotion in emotions:
        value = scores["spearman"][emotion] if scores else math.nan
        meta[emotion_key(emotion)] = (
            float(value) if math.isfinite(value) else -1.0
        )
    return meta


def evaluate_per_emotion(brain, datasets, split_loader_kwargs, hparams):
    """Evaluates each emotion with its own best and averaged checkpoints.

    For emotion ``k``, the best checkpoint by its devel Spearman, and the
    average of its N best, predict every split; column ``k`` of those
    predictions is the system's prediction of emotion ``k``. This is
    Mohapatra et al.'s protocol of one network per emotion, each with its
    own devel-selected epoch: with
    :class:`emoshare_sb.nnet.heads.IndependentNetworks` trained on
    :func:`emoshare_sb.nnet.losses.summed_mse_loss` the copies are the nine
    networks (no shared weight, the same seeded start, each its own
    gradient), so selecting per column selects per network. With a shared
    model it is per-emotion early stopping of one network.

    Each emotion's averaged weights are kept in
    ``<save_folder>/averaged/per_emotion/<emotion>/``; ``averaged/`` itself
    holds the average of the N best by ``checkpoint_metric`` (one model,
    for export).

    Arguments
    ---------
    brain : EmotionShareBrain
        The trained Brain.
    datasets : dict
        ``{split: dataset}`` to evaluate.
    split_loader_kwargs : dict
        ``{split: loader options}``.
    hparams : dict
        The loaded hyperparameters.

    Returns
    -------
    dict
        As :meth:`EmotionBrain.evaluate_best_and_averaged`: per variant,
        ``{split: {"ids", "predictions", "scores"}, "checkpoints":
        {emotion: [...]}}``.
    """
    emotions = hparams["emotions"]
    averaged_folder = os.path.join(hparams["save_folder"], AVERAGED)
    results = {}
    for variant in (BEST, AVERAGED):
        brain.evaluation_variant = variant
        assembled, checkpoints = {}, {}
        for index, emotion in enumerate(emotions):
            for split, dataset in datasets.items():
                brain.evaluate(
                    dataset,
                    max_key=emotion_key(emotion),
                    test_loader_kwargs=split_loader_kwargs[split],
                )
                outputs = brain.test_outputs
                if split not in assembled:
                    assembled[split] = {
                        "ids": outputs["ids"],
                        "predictions": np.array(outputs["predictions"]),
                        "targets": outputs["targets"],
                    }
                if assembled[split]["ids"] != outputs["ids"]:
                    raise RuntimeError(f"{split}: the clips changed order")
                assembled[split]["predictions"][:, index] = outputs[
                    "predictions"
                ][:, index]
            checkpoints[emotion] = brain.evaluated_checkpoints
            if variant == AVERAGED and if_main_process():
                keep = os.path.join(averaged_folder, PER_EMOTION, emotion)
                os.makedirs(keep, exist_ok=True)
                for name in os.listdir(averaged_folder):
                    path = os.path.join(averaged_folder, name)
                    if os.path.isfile(path):
                        shutil.copy2(path, os.path.join(keep, name))
        results[variant] = {
            split: {
                "ids": outputs["ids"],
                "predictions": outputs["predictions"],
                "scores": None
                if np.isnan(outputs["targets"]).any()
                else regression_scores(
                    outputs["targets"], outputs["predictions"], emotions
                ),
            }
            for split, outputs in assembled.items()
        }
        results[variant]["checkpoints"] = checkpoints
    # averaged/: the one model ranked by checkpoint_metric.
    brain.load_evaluation_model(AVERAGED, max_key=hparams["checkpoint_metric"])
    brain.loaded_evaluation = None
    return results


def annotations(hparams):
    """The manifest of each split: ``train_annotation``, ``valid_annotation``
    (devel) and ``test_annotation``, by default those data prep writes."""
    return {
        "train": hparams["train_annotation"],
        "devel": hparams["valid_annotation"],
        "test": hparams["test_annotation"],
    }


def dataio_prep(hparams, feature_cache=None):
    """Builds train/devel/test datasets from the annotation manifests.

    Training clips are randomly cropped to ``train_window`` seconds; devel and
    test clips are scored whole, sorted by duration to limit padding, or
    with ``eval_crop`` > 0 cut to their first ``eval_crop`` seconds,
    zero-padded to that length (:func:`emoshare_sb.data.audio.first_window`).
    With a
    feature cache, batches hold the frozen encoder's cached features
    (``feats``) instead of waveforms (``sig``), cropped to the same window.
    """
    sample_rate = hparams["sample_rate"]
    window = int(hparams["train_window"] * sample_rate)
    crop = int(hparams["eval_crop"] * sample_rate)

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def train_audio_pipeline(wav):
        """Reads a training clip and crops it at random to the window."""
        return random_crop(read_audio(wav, sample_rate), window)

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def eval_audio_pipeline(wav):
        """Reads an evaluation clip: whole, or its first ``eval_crop`` seconds."""
        signal = read_audio(wav, sample_rate)
        return first_window(signal, crop) if crop > 0 else signal

    @sb.utils.data_pipeline.takes(*hparams["emotions"])
    @sb.utils.data_pipeline.provides("targets")
    def target_pipeline(*shares):
        """The clip's emotion shares as a tensor (NaN for '?' labels)."""
        return torch.tensor([float(share) for share in shares])

    if feature_cache is None:
        inputs = {"train": train_audio_pipeline, "eval": eval_audio_pipeline}
        input_key = "sig"
    else:
        inputs = {
            "train": feature_cache.dynamic_item(
                train_window=hparams["train_window"]
            ),
            "eval": feature_cache.dynamic_item(),
        }
        input_key = "feats"

    datasets = {}
    for split, manifest in annotations(hparams).items():
        dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(
            csv_path=manifest,
            dynamic_items=[
                inputs["train" if split == "train" else "eval"],
                target_pipeline,
            ],
            output_keys=["id", input_key, "targets"],
        )
        if split != "train":
            dataset = dataset.filtered_sorted(sort_key="duration")
        datasets[split] = dataset
    return datasets


def build_feature_cache(hparams, device):
    """Extracts the frozen encoder's features of every split once (or reuses them).

    Every process takes part: under torchrun each encodes its share.
    """
    if any(p.requires_grad for p in hparams["encoder"].parameters()):
        raise HparamsError(
            "use_feature_cache needs a frozen encoder (--freeze_ssl True): a "
            "fine-tuned encoder's features change every step"
        )
    if hparams["eval_window"] > 0 or hparams["eval_crop"] > 0:
        raise HparamsError(
            "use_feature_cache stores whole-clip features: it cannot score "
            "sliding windows or first-seconds crops (set --eval_window 0 and "
            "--eval_crop 0, or --use_feature_cache False)"
        )
    cache = FeatureCache(
        hparams["feature_cache_folder"],
        hparams["encoder"],
        sample_rate=hparams["sample_rate"],
    )
    cache.build(list(annotations(hparams).values()), device=device)
    return cache


def check_options(hparams):
    """Fails early on option values the recipe does not know or cannot combine."""
    if hparams["checkpoint_metric"] not in CHECKPOINT_METRICS:
        raise HparamsError(
            f"checkpoint_metric must be one of {list(CHECKPOINT_METRICS)}, "
            f"got '{hparams['checkpoint_metric']}'"
        )
    if hparams["checkpoint_selection"] not in CHECKPOINT_SELECTIONS:
        raise HparamsError(
            f"checkpoint_selection must be one of {list(CHECKPOINT_SELECTIONS)}"
            f", got '{hparams['checkpoint_selection']}'"
        )
    if hparams["eval_crop"] < 0:
        raise HparamsError(
            f"eval_crop must be >= 0 seconds, got {hparams['eval_crop']}"
        )
    if hparams["eval_crop"] > 0 and hparams["eval_window"] > 0:
        raise HparamsError(
            "eval_crop (the first seconds of each clip) and eval_window "
            "(sliding windows) exclude each other: set one of them to 0"
        )


def loader_options(hparams, datasets, brain):
    """Dataloader options per split: fixed-size batches, or length-bucketed ones.

    With ``dynamic_batching``, each batch holds clips of similar length up to
    ``max_batch_seconds`` of (cropped) audio, so little of it is padding.
    """
    if not hparams["dynamic_batching"]:
        return {
            split: hparams["train_dataloader_options"]
            if split == "train"
            else hparams["eval_dataloader_options"]
            for split in datasets
        }
    options = {}
    for split, dataset in datasets.items():
        train = split == "train"
        options[split] = dataloader_options(
            dataset,
            train=train,
            train_window=hparams["train_window"] if train else None,
            max_batch_length=hparams["max_batch_seconds"],
            num_workers=hparams["num_workers"],
            seed=hparams["seed"],
        )
    # The Brain then reshuffles the buckets every epoch, resumed runs included.
    brain.train_sampler = options["train"]["batch_sampler"]
    return options


def write_predictions(path, emotions, outputs):
    """Writes one prediction CSV in the challenge's submission format."""
    rows = [
        {
            "filename": clip,
            **{e: f"{v:.6f}" for e, v in zip(emotions, row, strict=True)},
        }
        for clip, row in zip(
            outputs["ids"], outputs["predictions"], strict=True
        )
    ]
    write_csv(path, rows, ["filename"] + emotions)


def write_outputs(hparams, results):
    """Writes predictions (averaged model; best checkpoint under best/), results.json
    and the results tables in the log; returns an error line for NaN scores."""
    emotions = hparams["emotions"]
    folder = os.path.join(hparams["output_folder"], "predictions")
    # Every encoder source (fusion YAMLs have one per encoder, Fbank none).
    summary = {
        key: value for key, value in hparams.items() if key.endswith("_source")
    }
    summary.update(
        {
            key: hparams[key]
            for key in (
                "checkpoint_metric",
                "checkpoint_selection",
                "eval_crop",
                "eval_window",
            )
        }
    )
    # The best checkpoint first, so the log ends with the system's tables.
    for variant, subfolder in ((BEST, BEST), (AVERAGED, "")):
        scores = {"checkpoints": results[variant].pop("checkpoints")}
        for split, outputs in results[variant].items():
            write_predictions(
                os.path.join(folder, subfolder, f"{split}.csv"),
                emotions,
                outputs,
            )
            scores[split] = outputs["scores"]
            if outputs["scores"] is not None:
                title = (
                    f"{split}, {variant} model ({len(outputs['ids'])} clips)"
                )
                logger.info(
                    "\n"
                    + format_scores_table(outputs["scores"], emotions, title)
                )
        if variant == AVERAGED:  # the system's result
            summary["averaged_from"] = scores.pop("checkpoints")
            summary.update(scores)
        else:
            summary["best_checkpoint"] = scores
    results_file = os.path.join(hparams["output_folder"], "results.json")
    # A NaN score is written as null, listed under "errors", and fails the run.
    errors = write_results_json(
        results_file, summary, ("spearman.mean", "ccc.mean", "pearson.mean")
    )
    if errors:
        return f"{results_file}: {'; '.join(errors)}"
    if summary["devel"] is not None:
        logger.info(
            f"devel mean Spearman: {summary['devel']['spearman']['mean']:.3f} (average of "
            f"{len(summary['averaged_from'])} best checkpoints), "
            f"{summary['best_checkpoint']['devel']['spearman']['mean']:.3f} (best checkpoint)"
        )


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
        # Writes the train/devel/test manifests (once, on the main process).
        run_on_main(hparams["prepare_data"])

        brain = EmotionShareBrain(
            modules=hparams["modules"],
            opt_class=hparams["opt_class"],
            hparams=hparams,
            run_opts=run_opts,
            checkpointer=hparams["checkpointer"],
            # Fine-tuning YAMLs only: the encoder's optimizer, its frozen
            # start and the learning-rate schedules.
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
        feature_cache = None
        if hparams["use_feature_cache"]:
            feature_cache = build_feature_cache(hparams, brain.device)
        datasets = dataio_prep(hparams, feature_cache)
        loaders = loader_options(hparams, datasets, brain)
        check_train_batches(len(datasets["train"]), loaders["train"])

    # Audio deleted or changed since data preparation, a NaN devel score:
    # one line, not a traceback.
    with exit_on_data_error():
        brain.fit(
            brain.hparams.epoch_counter,
            datasets["train"],
            datasets["devel"],
            train_loader_kwargs=loaders["train"],
            valid_loader_kwargs=loaders["devel"],
        )

        # The best checkpoint alone, then the average of the N best (the
        # system): of all emotions at once, or of each emotion.
        evaluated = {split: datasets[split] for split in ("devel", "test")}
        if hparams["checkpoint_selection"] == PER_EMOTION:
            results = evaluate_per_emotion(brain, evaluated, loaders, hparams)
        else:
            results = brain.evaluate_best_and_averaged(
                evaluated,
                split_loader_kwargs=loaders,
                max_key=hparams["checkpoint_metric"],
            )
    if if_main_process():
        error = write_outputs(hparams, results)
        if error:
            raise SystemExit(f"error: {error}")
