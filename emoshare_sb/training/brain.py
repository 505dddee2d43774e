"""The parts of a SpeechBrain ``Brain`` that every emotion recipe here shares.

A recipe subclasses :class:`EmotionBrain` and writes its own
``compute_forward``, ``compute_objectives`` and ``on_stage_end``; this class
adds, through the standard Brain hooks:

* **two optimizers when fine-tuning** (:meth:`init_optimizers`): ``opt_class``
  trains the downstream ``model`` (aggregator + head, and anything else the
  YAML puts in it, e.g. a learned layer mix), and ``encoder_opt_class`` trains
  the encoder's remaining trainable parameters at its own learning rate. Both
  are registered with the checkpointer;
* **a frozen start for the encoder** (:meth:`freeze_optimizers`,
  :meth:`encode`): with ``encoder_freeze_steps: K`` the encoder is neither
  updated nor back-propagated through for the first K optimizer steps;
* **per-optimizer learning-rate schedules** (:meth:`update_learning_rates`):
  ``lr_schedulers`` maps an optimizer name (``model_optimizer``,
  ``encoder_optimizer``) to a SpeechBrain scheduler called with a metric;
* **evaluation with the best or the averaged checkpoint**
  (:meth:`load_evaluation_model`): every module recoverable (the ``model``,
  and the ``encoder`` when it is fine-tuned) is loaded from the best
  checkpoint, or averaged over the N best as Morais et al. do
  (``speechbrain.utils.checkpoints.average_checkpoints``), and the average is
  saved;
* **checkpoints that can be trusted** (:meth:`save_epoch_checkpoint`): a
  NaN or infinite validation metric stops the run with a message naming the
  epoch, before anything is saved, so no rerun resumes a NaN checkpoint;
* **labelled progress** (:meth:`on_stage_start`): every progress bar names
  its pass (``train, epoch 2``, ``devel, epoch 2``, ``test, averaged``), and
  a captured log gets one line per 10 % (:mod:`emoshare_sb.training.progress`);
* **multi-process training on CPU** (:meth:`_wrap_distributed`): SpeechBrain
  converts BatchNorm to SyncBatchNorm under DDP, which only runs on CUDA; here
  the conversion is done on CUDA only, so ``torchrun`` with the gloo backend
  works for recipes with BatchNorm (ECAPA-TDNN, TC-GRU).

The fine-tuning pieces are constructor arguments, which the recipe passes
from its YAML (``encoder_opt_class``, ``encoder_freeze_steps``,
``lr_schedulers``), so that every key a YAML holds is read by its script.
Hyperparameters read from the YAML through ``hparams``: ``model``
(required), and optionally ``num_averaged_checkpoints`` (default 5) and
``save_folder``.

Authors
 * emoshare_sb contributors 2026
"""

import math
import os

import speechbrain as sb
import torch
from speechbrain.nnet.schedulers import update_learning_rate
from speechbrain.utils.checkpoints import average_checkpoints
from speechbrain.utils.distributed import if_main_process
from speechbrain.utils.logger import get_logger

from emoshare_sb.lobes import feature_lengths
from emoshare_sb.training import progress
from emoshare_sb.training.checkpoints import (
    UNREADABLE_ERRORS,
    NonFiniteCheckpointError,
    UnreadableCheckpointError,
)
from emoshare_sb.training.feature_cache.extraction import encode_padded_bounded
from emoshare_sb.utils.io import atomic_write, write_json

logger = get_logger(__name__)

BEST = "best"
AVERAGED = "averaged"


class EmotionBrain(sb.Brain):
    """Shared Brain behaviour for the emotion recipes (see the module docstring).

    Arguments
    ---------
    *args, **kwargs
        Those of :class:`speechbrain.Brain` (``modules``, ``opt_class``,
        ``hparams``, ``run_opts``, ``checkpointer``).
    encoder_opt_class : callable, optional
        Builds the optimizer of the encoder's trainable parameters (those
        the downstream ``model`` does not hold); required when the encoder
        is fine-tuned.
    encoder_freeze_steps : int
        Optimizer steps during which the encoder is neither updated nor
        back-propagated through.
    lr_schedulers : dict, optional
        ``{optimizer name: scheduler}`` (``model_optimizer``,
        ``encoder_optimizer``), each called with a metric by
        :meth:`update_learning_rates`.
    train_logger : speechbrain.utils.train_logger.TrainLogger, optional
        Receives every epoch's metrics (:meth:`log_epoch_stats`).
    tensorboard_logger : callable, optional
        Opens a TensorBoard logger (a ``!name:`` partial in the YAML) at the
        start of training; every epoch's metrics also go to it. ``None``
        (the YAMLs' ``use_tensorboard: False``) logs to ``train_logger`` only.
    """

    #: The name of the validation split, in progress bars and messages.
    valid_split = "valid"

    def __init__(
        self,
        *args,
        encoder_opt_class=None,
        encoder_freeze_steps=0,
        lr_schedulers=None,
        train_logger=None,
        tensorboard_logger=None,
        **kwargs,
    ):
        self.train_logger = train_logger
        self.tensorboard_logger = tensorboard_logger
        self.tensorboard = None
        self.encoder_opt_class = encoder_opt_class
        self.encoder_freeze_steps = encoder_freeze_steps or 0
        self.lr_schedulers = lr_schedulers or {}
        self.evaluation_split = "test"
        progress.install()
        super().__init__(*args, **kwargs)

    def on_stage_start(self, stage, epoch=None):
        """Names the stage's progress bar (recipes call this from theirs).

        Arguments
        ---------
        stage : speechbrain.Stage
            The stage starting.
        epoch : int, optional
            The epoch (training and validation).
        """
        if stage == sb.Stage.TRAIN:
            label = f"train, epoch {epoch}"
        elif stage == sb.Stage.VALID:
            label = f"{self.valid_split}, epoch {epoch}"
        else:
            label = (
                f"{self.evaluation_split}, "
                f"{getattr(self, 'evaluation_variant', AVERAGED)}"
            )
        progress.set_label(label)

    def save_epoch_checkpoint(self, epoch, meta, max_keys, num_to_keep):
        """Saves the end-of-epoch checkpoint, refusing a non-finite metric.

        Arguments
        ---------
        epoch : int
            The epoch, for the message.
        meta : dict
            The checkpoint's metrics (e.g. ``{"spearman": 0.41}``).
        max_keys : list of str
            Keys whose highest values are kept.
        num_to_keep : int
            Checkpoints kept.

        Raises
        ------
        NonFiniteCheckpointError
            When a metric is NaN or infinite: nothing is saved, and the
            message names the epoch and the likely causes.
        """
        bad = [
            key
            for key, value in meta.items()
            if isinstance(value, int | float) and not math.isfinite(value)
        ]
        if bad:
            raise NonFiniteCheckpointError(
                f"epoch {epoch}: the {self.valid_split} {', '.join(bad)} is "
                f"{meta[bad[0]]}, so the run stops without saving a "
                f"checkpoint: a {self.valid_split} clip with NaN/Inf samples, "
                "a split whose targets or predictions do not vary, or a "
                "diverged model (see the epoch's losses in train_log.txt)"
            )
        self.checkpointer.save_and_keep_only(
            meta=meta, max_keys=max_keys, num_to_keep=num_to_keep
        )

    def encoder_parameters(self):
        """Trainable encoder parameters that the downstream ``model`` does not hold.

        Returns
        -------
        list of torch.nn.Parameter
            Empty for a frozen encoder.
        """
        model_ids = {id(p) for p in self.hparams.model.parameters()}
        return [
            p
            for p in self.modules.encoder.parameters()
            if p.requires_grad and id(p) not in model_ids
        ]

    def init_optimizers(self):
        """Creates the downstream optimizer and, when fine-tuning, the encoder's."""
        self.optimizers_dict = {}
        if self.opt_class is not None:
            self.optimizer = self.opt_class(self.hparams.model.parameters())
            self.optimizers_dict["model_optimizer"] = self.optimizer
        encoder_parameters = self.encoder_parameters()
        if encoder_parameters:
            if self.encoder_opt_class is None:
                raise ValueError(
                    "The encoder has trainable parameters outside `model` but "
                    "no `encoder_opt_class` was given (the YAML has none): add "
                    "one (fine-tuning) or freeze the encoder (--freeze_ssl True)."
                )
            self.encoder_optimizer = self.encoder_opt_class(encoder_parameters)
            self.optimizers_dict["encoder_optimizer"] = self.encoder_optimizer
        if self.checkpointer is not None:
            for name, optimizer in self.optimizers_dict.items():
                self.checkpointer.add_recoverable(name, optimizer)

    def encoder_is_updated(self):
        """Whether this training step back-propagates into the encoder."""
        return (
            "encoder_optimizer" in (self.optimizers_dict or {})
            and self.modules.encoder.training
            and self.optimizer_step >= self.encoder_freeze_steps
        )

    def freeze_optimizers(self, optimizers):
        """Leaves the encoder's optimizer out during its frozen start."""
        if "encoder_optimizer" in optimizers and not self.encoder_is_updated():
            return {
                k: v for k, v in optimizers.items() if k != "encoder_optimizer"
            }
        return optimizers

    def encode(self, wavs, wav_lens, max_seconds=None, sample_rate=16000):
        """Runs the encoder, without autograd unless the encoder is being trained.

        With ``max_seconds`` (evaluation: the YAML's
        ``max_eval_batch_seconds``) a padded batch larger than that goes
        through the encoder in pieces of at most ``max_seconds`` of padded
        audio (:func:`~emoshare_sb.training.feature_cache.encode_padded_bounded`),
        so memory is bounded whatever the clip lengths; smaller batches are
        encoded exactly as without it.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]`` padded waveforms.
        wav_lens : torch.Tensor
            ``[B]`` relative lengths.
        max_seconds : float, optional
            Bound on padded audio per encoder pass (not while training the
            encoder); None or 0: no bound.
        sample_rate : int
            Of ``wavs``.

        Returns
        -------
        features : torch.Tensor
            The encoder's features (time on the second-to-last axis).
        feature_lens : torch.Tensor
            ``[B]`` exact relative lengths of the feature frames.
        """
        if self.encoder_is_updated():
            features = self.modules.encoder(wavs, wav_lens)
        elif max_seconds:
            with torch.no_grad():
                return encode_padded_bounded(
                    self.modules.encoder,
                    wavs,
                    wav_lens,
                    max_seconds,
                    sample_rate,
                )
        else:
            with torch.no_grad():
                features = self.modules.encoder(wavs, wav_lens)
        lengths = feature_lengths(
            self.modules.encoder, wav_lens, wavs.shape[-1], features.shape[-2]
        )
        return features, lengths

    def update_learning_rates(self, metric):
        """Steps the schedulers in ``lr_schedulers`` with ``metric``.

        Arguments
        ---------
        metric : float
            The value the schedulers anneal on (e.g. the validation loss).

        Returns
        -------
        dict
            ``{"lr_<optimizer>": new learning rate}`` for logging.
        """
        learning_rates = {}
        for name, scheduler in self.lr_schedulers.items():
            if name not in self.optimizers_dict:
                continue
            _, new_lr = scheduler(metric)
            update_learning_rate(self.optimizers_dict[name], new_lr)
            learning_rates[f"lr_{name.replace('_optimizer', '')}"] = new_lr
        return learning_rates

    def module_recoverables(self):
        """Names of the checkpointed recoverables that are modules (model, encoder)."""
        return [
            name
            for name, obj in self.checkpointer.recoverables.items()
            if isinstance(obj, torch.nn.Module)
        ]

    def load_evaluation_model(
        self, variant=AVERAGED, max_key=None, min_key=None
    ):
        """Loads the best checkpoint, or the average of the N best, for evaluation.

        Arguments
        ---------
        variant : str
            ``"best"`` or ``"averaged"``.
        max_key, min_key : str
            The checkpoint meta key that ranks checkpoints.

        Returns
        -------
        list of dict
            The checkpoints used, with their ranking metric.
        """
        num_checkpoints = (
            1
            if variant == BEST
            else getattr(self.hparams, "num_averaged_checkpoints", 5)
        )
        checkpoints = self.checkpointer.find_checkpoints(
            max_key=max_key,
            min_key=min_key,
            max_num_checkpoints=num_checkpoints,
        )
        if not checkpoints:
            raise RuntimeError(
                f"No checkpoint with a '{max_key or min_key}' score in "
                f"{self.checkpointer.checkpoints_dir}: train first (or check --output_folder)."
            )
        key = max_key or min_key
        used = [
            {"checkpoint": os.path.basename(c.path), key: c.meta.get(key)}
            for c in checkpoints
        ]
        averaged = {}
        for name in self.module_recoverables():
            try:
                state = average_checkpoints(checkpoints, recoverable_name=name)
            except UNREADABLE_ERRORS as error:
                names = ", ".join(str(c.path) for c in checkpoints)
                raise UnreadableCheckpointError(
                    f"cannot read the {name} parameters of the checkpoints "
                    f"to evaluate ({names}): {type(error).__name__}: {error}; "
                    "a truncated checkpoint: delete it (rm -r FOLDER) and "
                    "rerun, which evaluates the remaining ones"
                ) from error
            self.checkpointer.recoverables[name].load_state_dict(state)
            averaged[name] = state
        if variant == AVERAGED and if_main_process():
            folder = os.path.join(self.hparams.save_folder, AVERAGED)
            for name, state in averaged.items():
                with atomic_write(
                    os.path.join(folder, f"{name}.ckpt"), "wb"
                ) as handle:
                    torch.save(state, handle)
            write_json(os.path.join(folder, "averaged_from.json"), used)
        return used

    def evaluate_best_and_averaged(
        self,
        datasets,
        loader_kwargs=None,
        max_key=None,
        min_key=None,
        split_loader_kwargs=None,
    ):
        """Evaluates the best checkpoint alone, then the average of the N best.

        The average (evaluated last, so the model holds it afterwards) is the
        system's result; the best checkpoint shows what averaging bought.

        Arguments
        ---------
        datasets : dict
            ``{split: dataset}`` to evaluate.
        loader_kwargs : dict, optional
            Dataloader options for evaluation.
        max_key, min_key : str
            The checkpoint meta key that ranks checkpoints.
        split_loader_kwargs : dict, optional
            ``{split: options}`` replacing ``loader_kwargs`` for those splits
            (a length-bucketed batch sampler belongs to one split).

        Returns
        -------
        dict
            ``{"best": {split: outputs, ..., "checkpoints": [...]}, "averaged": {...}}``
            where ``outputs`` is what the recipe's ``on_stage_end`` stored in
            ``self.test_outputs``.
        """
        results = {}
        for variant in (BEST, AVERAGED):
            self.evaluation_variant = variant
            results[variant] = {}
            for split, dataset in datasets.items():
                self.evaluation_split = split
                options = (split_loader_kwargs or {}).get(
                    split, loader_kwargs or {}
                )
                self.evaluate(
                    dataset,
                    max_key=max_key,
                    min_key=min_key,
                    test_loader_kwargs=options,
                )
                results[variant][split] = self.test_outputs
            results[variant]["checkpoints"] = self.evaluated_checkpoints
        return results

    def on_fit_start(self):
        """Forgets which evaluation weights are loaded: training changes them.

        With a ``tensorboard_logger``, also opens the TensorBoard logger.
        """
        self.loaded_evaluation = None
        if self.tensorboard_logger is not None:
            self.tensorboard = self.tensorboard_logger()
        super().on_fit_start()

    def log_epoch_stats(self, stats_meta, train_stats, valid_stats):
        """Logs an epoch's metrics to the train log and, if on, to TensorBoard.

        Arguments
        ---------
        stats_meta : dict
            ``epoch`` and the learning rates.
        train_stats, valid_stats : dict
            The epoch's training and validation metrics.
        """
        if self.train_logger is not None:
            self.train_logger.log_stats(
                stats_meta=stats_meta,
                train_stats=train_stats,
                valid_stats=valid_stats,
            )
        if self.tensorboard is not None:
            self.tensorboard.log_stats(
                stats_meta=stats_meta,
                train_stats=train_stats,
                valid_stats=valid_stats,
            )

    def on_evaluate_start(self, max_key=None, min_key=None):
        """Loads the weights named by ``self.evaluation_variant`` (default: averaged).

        Evaluating several splits with the same weights loads (and, for the
        average, saves) them once: averaging a fine-tuned Large encoder reads
        several GB.
        """
        request = (
            getattr(self, "evaluation_variant", AVERAGED),
            max_key,
            min_key,
        )
        if getattr(self, "loaded_evaluation", None) != request:
            self.evaluated_checkpoints = self.load_evaluation_model(*request)
            self.loaded_evaluation = request

    def _wrap_distributed(self):
        """Wraps trainable modules in DDP; SyncBatchNorm only on CUDA devices.

        SpeechBrain converts every BatchNorm to SyncBatchNorm under DDP, which
        fails on CPU; on CPU each process keeps its own batch statistics.
        """
        if not self.distributed_launch or str(self.device).startswith("cuda"):
            return super()._wrap_distributed()
        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = torch.nn.parallel.DistributedDataParallel(
                    module,
                    device_ids=None,
                    find_unused_parameters=self.find_unused_parameters,
                )
