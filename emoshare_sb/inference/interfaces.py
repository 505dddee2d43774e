"""Inference with trained emotion models, in SpeechBrain's ``Pretrained`` style.

:class:`EmotionShareRegressor` loads a model trained by the ComParE 2023
recipe (or any recipe with an ``encoder -> pooling -> head`` model) and
predicts one value per output (emotion share) for files or padded batches::

    model = EmotionShareRegressor.from_hparams(source="results/my_run")
    model.predict_file("clip.wav")  # {"Anger": 0.12, ..., "Tiredness": 0.40}

``source`` is either

* an **exported folder** written by :func:`export_model`: the inference
  ``hyperparams.yaml``, the averaged weights (``model.ckpt``, and
  ``encoder.ckpt`` when the encoder was fine-tuned) and the SSL encoder saved
  with ``save_pretrained`` in ``encoder/``. It is self-contained: it loads
  with ``HF_HUB_OFFLINE=1`` and can be moved or copied anywhere; or
* a **trained experiment folder** (the recipe's ``--output_folder``): the
  inference hyperparameters are built on the fly from its
  ``hyperparams.yaml`` and weights are read from ``save/averaged/``; the
  encoder is loaded from the experiment's ``ssl_source`` (a local folder, or a
  hub id already in the experiment's download cache). Nothing is written
  unless ``savedir`` is given, in which case the generated
  ``hyperparams.yaml`` is kept there.

Long recordings are scored in sliding windows (:mod:`emoshare_sb.inference.windows`):
a clip no longer than ``window`` seconds is scored whole, and a longer one
is cut into windows every ``hop`` seconds (the last one aligned to the end)
whose predictions are averaged; the per-window predictions are available too
(:meth:`~EmotionShareRegressor.score_file`). ``window``/``hop`` default to
the experiment's ``eval_window``/``eval_hop`` when it evaluated in windows,
else to 8 s / 4 s (every ComParE clip whole, bounded memory on long
recordings); override them with ``overrides={"window": ..., "hop": ...}``
(0 scores whole clips). :meth:`~EmotionShareRegressor.predict_batch` is the
recipe's evaluation step: a batch padded as the recipe pads it gives the
recipe's predictions exactly.

:class:`VoteDistributionRecognizer` serves the MSP-Podcast recipe's model
the same way: the distribution of the graders' votes over the eight classes
and arousal/valence/dominance on the corpus' 1..7 scale::

    model = VoteDistributionRecognizer.from_hparams(source="results/msp_run")
    model.predict_file("clip.wav")
    # {"probabilities": {"Angry": 0.05, ..., "Neutral": 0.41}, "class": "Neutral",
    #  "arousal": 3.9, "valence": 4.2, "dominance": 4.0}

It shares everything but the model's outputs with
:class:`EmotionShareRegressor` (windows, loading, export): a model with other
outputs overrides :attr:`~EmotionShareRegressor.output_names`,
:meth:`~EmotionShareRegressor.forward`, ``HPARAMS_NEEDED``/``MODULES_NEEDED``
and :attr:`~EmotionShareRegressor.EXPERIMENT_KEYS`, and is added to
:data:`INFERENCE_INTERFACES` so that :func:`interface_class` finds it from an
experiment's ``modules`` (an experiment may also name its class in an
``inference_interface`` key). :func:`load_model` and :func:`export_model` pick
the class by themselves.

Authors
 * emoshare_sb contributors 2026
"""

import contextlib
import dataclasses
import importlib
import io
import os
import shutil
import tempfile

import ruamel.yaml
import torch
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.tag import Tag
from speechbrain.inference.interfaces import Pretrained, pretrained_from_hparams
from speechbrain.utils.logger import get_logger

from emoshare_sb.data.audio import read_audio
from emoshare_sb.data.msp_podcast import MSP_CLASS_NAMES
from emoshare_sb.inference.windows import (
    average_by_owner,
    split_into_windows,
    window_starts,
)
from emoshare_sb.lobes import feature_lengths
from emoshare_sb.metrics.classification import best_classes
from emoshare_sb.utils.io import atomic_write, make_temp_folder, write_json

logger = get_logger(__name__)

HPARAMS_FILE = "hyperparams.yaml"
AVERAGED_FOLDER = os.path.join("save", "averaged")
ENCODER_FOLDER = "encoder"

# Windows long enough to hold a whole ComParE clip (1.2 s to 8 s), so that
# clips like the training data are scored whole, as the recipe scores them.
DEFAULT_WINDOW = 8.0
DEFAULT_HOP = 4.0


@dataclasses.dataclass
class WindowPredictions:
    """Predictions of the sliding windows of a batch of clips.

    Attributes
    ----------
    predictions : torch.Tensor
        ``[W, D]`` one row per window.
    owners : torch.Tensor
        ``[W]`` index of the clip each window comes from.
    starts, ends : torch.Tensor
        ``[W]`` window bounds in seconds.
    """

    predictions: torch.Tensor
    owners: torch.Tensor
    starts: torch.Tensor
    ends: torch.Tensor


@dataclasses.dataclass
class FilePrediction:
    """The predictions for one audio file.

    Attributes
    ----------
    path : str
        The file.
    duration : float
        Seconds (after resampling to the model's rate).
    summary : dict
        ``{output name: value}`` for the whole clip (the mean over windows).
    windows : list of dict
        One ``{"start": s, "end": s, "values": {name: value}}`` per window;
        a single window covers a clip no longer than the window length.
    """

    path: str
    duration: float
    summary: dict
    windows: list


def load_state_dict_strict(module, path):
    """Pretrainer hook: loads a state dict and fails on any missing or extra key.

    SpeechBrain's default transfer is non-strict and only logs mismatches,
    which would leave part of a model with random weights if the inference
    hyperparameters did not match the checkpoint.

    Arguments
    ---------
    module : torch.nn.Module
        Receives the parameters.
    path : str
        A ``torch.save``-d state dict.

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "w.ckpt")
    >>> torch.save(torch.nn.Linear(2, 3).state_dict(), path)
    >>> load_state_dict_strict(torch.nn.Linear(2, 3), path)
    >>> try:
    ...     load_state_dict_strict(torch.nn.Linear(2, 4), path)
    ... except RuntimeError:
    ...     print("size mismatch")
    size mismatch
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    module.load_state_dict(state, strict=True)


def is_experiment_folder(path):
    """Tells whether ``path`` is a trained experiment folder (not an export).

    Arguments
    ---------
    path : str
        A folder.

    Returns
    -------
    bool
        True when it holds ``hyperparams.yaml`` and ``save/averaged/model.ckpt``.
    """
    return os.path.isfile(os.path.join(path, HPARAMS_FILE)) and os.path.isfile(
        os.path.join(path, AVERAGED_FOLDER, "model.ckpt")
    )


class EmotionShareRegressor(Pretrained):
    """Predicts one value per output (e.g. per-emotion shares) from speech.

    The model is the recipe's: SSL ``encoder`` -> masked ``pooling`` over
    the valid frames -> ``head``. Outputs are named by the YAML's
    ``emotions`` list.

    Arguments
    ---------
    See :class:`speechbrain.inference.interfaces.Pretrained`. Load with
    :meth:`from_hparams`; ``run_opts={"device": "cpu"}`` picks the device.

    Example
    -------
    >>> from emoshare_sb.nnet.heads import MLPHead
    >>> from emoshare_sb.nnet.pooling import MaskedMeanPooling
    >>> from emoshare_sb.synthetic import make_tiny_ssl_model
    >>> from emoshare_sb.lobes.ssl import SSLEncoder
    >>> tmp = getfixture("tmpdir")
    >>> encoder = SSLEncoder(make_tiny_ssl_model(str(tmp / "tiny")), str(tmp))
    >>> modules = {
    ...     "encoder": encoder,
    ...     "pooling": MaskedMeanPooling(),
    ...     "head": MLPHead(32, 2, hidden_size=8),
    ... }
    >>> hparams = {
    ...     "emotions": ["Calm", "Sad"],
    ...     "sample_rate": 16000,
    ...     "window": 1.0,
    ...     "hop": 0.5,
    ... }
    >>> model = EmotionShareRegressor(
    ...     modules, hparams, run_opts={"device": "cpu"}
    ... )
    >>> wavs, lens = torch.randn(2, 40000), torch.tensor([1.0, 0.3])
    >>> model.predict_batch(wavs, lens).shape
    torch.Size([2, 2])
    >>> windows = model.predict_windows(wavs, lens)
    >>> windows.predictions.shape, windows.owners.tolist()
    (torch.Size([5, 2]), [0, 0, 0, 0, 1])
    >>> windows.starts.tolist(), windows.ends.tolist()
    ([0.0, 0.5, 1.0, 1.5, 0.0], [1.0, 1.5, 2.0, 2.5, 0.75])
    """

    HPARAMS_NEEDED = ["emotions", "sample_rate", "window", "hop"]
    MODULES_NEEDED = ["encoder", "pooling", "head"]

    # Keys of the experiment's hyperparams.yaml that the inference YAML keeps.
    # ``model`` is the averaged recoverable, ``modules`` what forward() uses.
    EXPERIMENT_KEYS = (
        "emotions",
        "sample_rate",
        "encoder",
        "pooling",
        "head",
        "model",
        "modules",
    )
    # The experiment's checkpoint recoverable holding the averaged weights.
    AVERAGED_RECOVERABLE = "model"

    # The experiment's split whose scores export_info.json records.
    VALIDATION_SPLIT = "devel"
    # Default sliding windows (seconds) when the experiment did not evaluate
    # in windows: long enough to score every clip of the corpus whole.
    DEFAULT_WINDOW = DEFAULT_WINDOW
    DEFAULT_HOP = DEFAULT_HOP

    # Windows of this many clips (or windows of a long clip) go through the
    # encoder together.
    window_batch_size = 8

    @property
    def output_names(self):
        """The names of the outputs, in the order of the prediction columns."""
        return list(self.hparams.emotions)

    @property
    def prediction_columns(self):
        """The keys of a named prediction (:meth:`to_dict`), in output order.

        The numeric :attr:`output_names` here; subclasses may add labels
        (e.g. the 1-best class). Output files use these as columns.
        """
        return self.output_names

    def encode(self, wavs, wav_lens=None):
        """Runs the encoder: frame features and their exact relative lengths.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]`` at the model's sample rate, zero-padded.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths (SpeechBrain convention).

        Returns
        -------
        features : torch.Tensor
            ``[B, T, C]`` frame features.
        lengths : torch.Tensor
            ``[B]`` relative lengths of the valid frames, exact as in the
            recipes (:func:`emoshare_sb.lobes.feature_lengths`), so that a clip
            gets the same prediction alone or padded in a batch.
        """
        features = self.mods.encoder(wavs, wav_lens)
        lengths = feature_lengths(
            self.mods.encoder, wav_lens, wavs.shape[-1], features.shape[-2]
        )
        return features, lengths

    def forward(self, wavs, wav_lens=None):
        """Runs the model on a padded batch, whole clips, as the recipe does.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]`` at the model's sample rate, zero-padded.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths (SpeechBrain convention).

        Returns
        -------
        torch.Tensor
            ``[B, D]`` predictions.
        """
        if getattr(self, "onnx", None) is not None:  # inference/onnx.py
            return self.onnx(wavs, wav_lens)
        features, lengths = self.encode(wavs, wav_lens)
        embeddings = self.mods.pooling(features, lengths)
        return self.mods.head(embeddings)

    def predict_batch(self, wavs, wav_lens=None):
        """Predicts a padded batch; clips longer than ``window`` in windows.

        This is the recipe's evaluation step: the same batch gives the same
        predictions (whole clips when none is longer than ``window``, else
        ``split_into_windows`` and the mean per clip, as with ``eval_window``).
        All windows go through the model at once; to bound memory on long
        recordings use :meth:`predict_windows` or :meth:`score_file`.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]`` (or ``[samples]``) at ``hparams.sample_rate``.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths; None means no padding.

        Returns
        -------
        torch.Tensor
            ``[B, D]`` predictions (on the model's device).
        """
        wavs, wav_lens = self._as_batch(wavs, wav_lens)
        window = self._seconds_to_samples(self.hparams.window)
        longest = int(torch.round(wav_lens * wavs.shape[1]).max())
        with torch.inference_mode():
            if window is None or longest <= window:
                return self(wavs, wav_lens)
            # The recipe's windowed evaluation (eval_window), step for step.
            hop = self._seconds_to_samples(self.hparams.hop) or window
            windows, window_lens, owners = split_into_windows(
                wavs, wav_lens, window, hop
            )
            return average_by_owner(
                self(windows, window_lens), owners, wavs.shape[0]
            )

    def predict_windows(self, wavs, wav_lens=None):
        """Predicts every sliding window of every clip of a padded batch.

        Windows are cut lazily and scored ``window_batch_size`` at a time, so
        memory stays bounded however long the recordings are.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]`` (or ``[samples]``) at ``hparams.sample_rate``.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths; None means no padding.

        Returns
        -------
        WindowPredictions
            Window predictions, owners and bounds in seconds; with
            ``window: null`` each clip is one window.
        """
        wavs, wav_lens = self._as_batch(wavs, wav_lens)
        sample_rate = self.hparams.sample_rate
        lengths = torch.round(wav_lens * wavs.shape[1]).long().tolist()
        window = self._seconds_to_samples(self.hparams.window)
        hop = self._seconds_to_samples(self.hparams.hop) or window
        pieces = []  # (clip index, start, end) in samples
        for index, length in enumerate(lengths):
            if window is None:
                pieces.append((index, 0, length))
                continue
            for start in window_starts(length, window, hop):
                pieces.append((index, start, min(start + window, length)))
        predictions = []
        with torch.inference_mode():
            for first in range(0, len(pieces), self.window_batch_size):
                chunk = pieces[first : first + self.window_batch_size]
                width = max(end - start for _, start, end in chunk)
                batch = wavs.new_zeros(len(chunk), width)
                for row, (index, start, end) in enumerate(chunk):
                    batch[row, : end - start] = wavs[index, start:end]
                lens = torch.tensor(
                    [(end - start) / width for _, start, end in chunk],
                    device=wavs.device,
                )
                predictions.append(self(batch, lens))
        owners, starts, ends = (
            torch.tensor(column) for column in zip(*pieces, strict=True)
        )
        return WindowPredictions(
            predictions=torch.cat(predictions),
            owners=owners.to(wavs.device),
            starts=starts.double()
            / sample_rate,  # float64: exact seconds in outputs
            ends=ends.double() / sample_rate,
        )

    def load_audio(self, path, savedir=None):
        """Reads a file as the recipe does: mono, resampled, float32 ``[samples]``.

        Arguments
        ---------
        path : str
            Any format libsndfile reads (wav, flac, ogg, ...), any rate or
            number of channels.
        savedir : None
            Unused (kept for the ``Pretrained`` signature).

        Returns
        -------
        torch.Tensor
            ``[samples]`` at ``hparams.sample_rate``.

        Raises
        ------
        emoshare_sb.data.audio.AudioReadError
            When the file is missing, corrupt or empty.
        """
        del savedir  # files are local
        return read_audio(str(path), self.hparams.sample_rate)

    def score_file(self, path):
        """Predicts a file, with the per-window predictions.

        Arguments
        ---------
        path : str
            The audio file.

        Returns
        -------
        FilePrediction
            The clip summary (mean over windows) and each window's values.
        """
        signal = self.load_audio(path)
        windows = self.predict_windows(signal)
        summary = average_by_owner(
            windows.predictions, windows.owners, num_clips=1
        )[0]
        return FilePrediction(
            path=str(path),
            duration=signal.shape[0] / self.hparams.sample_rate,
            summary=self.to_dict(summary),
            windows=[
                {
                    "start": float(start),
                    "end": float(end),
                    "values": self.to_dict(row),
                }
                for start, end, row in zip(
                    windows.starts,
                    windows.ends,
                    windows.predictions,
                    strict=True,
                )
            ],
        )

    def predict_file(self, path):
        """Predicts a file: ``{output name: value}``.

        Arguments
        ---------
        path : str
            The audio file.

        Returns
        -------
        dict
            One float per output (emotion), for the whole clip.
        """
        return self.score_file(path).summary

    def to_dict(self, row):
        """Names the values of one prediction row.

        Arguments
        ---------
        row : torch.Tensor
            ``[D]``.

        Returns
        -------
        dict
            ``{output name: float}``.
        """
        return dict(zip(self.output_names, row.tolist(), strict=True))

    def _as_batch(self, wavs, wav_lens):
        if wavs.dim() == 1:
            wavs = wavs.unsqueeze(0)
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0])
        return wavs.float().to(self.device), wav_lens.float().to(self.device)

    def _seconds_to_samples(self, seconds):
        if seconds is None or seconds <= 0:
            return None
        return int(round(seconds * self.hparams.sample_rate))

    # Loading and exporting ------------------------------------------------

    @classmethod
    def from_hparams(
        cls,
        source,
        hparams_file=HPARAMS_FILE,
        overrides=None,
        savedir=None,
        **kwargs,
    ):
        """Loads an exported folder or a trained experiment folder.

        Arguments
        ---------
        source : str
            A local folder: an export (:func:`export_model`) or a recipe's
            ``--output_folder``.
        hparams_file : str
            The inference YAML's name.
        overrides : dict, optional
            YAML overrides, e.g. ``{"window": 20.0, "hop": 10.0}``.
        savedir : str, optional
            For an experiment folder: where to keep the generated inference
            YAML (default: a temporary folder, removed after loading). For an
            export: where SpeechBrain links the loaded files.
        **kwargs
            Passed to :func:`speechbrain.inference.interfaces.pretrained_from_hparams`
            and the constructor (e.g. ``run_opts={"device": "cpu"}``).

        Returns
        -------
        EmotionShareRegressor
            The loaded model, in eval mode.
        """
        source = os.fspath(source)
        if not os.path.isdir(source):
            raise ValueError(
                f"'{source}' is not a folder: give an exported model folder or a "
                "trained experiment folder (the recipe's --output_folder)"
            )
        overrides = dict(overrides or {})
        if not is_experiment_folder(source):
            overrides.setdefault("model_folder", os.path.abspath(source))
            return pretrained_from_hparams(
                cls,
                source,
                hparams_file,
                overrides=overrides,
                savedir=savedir,
                **kwargs,
            )
        text = cls.inference_hparams(source)
        overrides.setdefault(
            "model_folder",
            os.path.abspath(os.path.join(source, AVERAGED_FOLDER)),
        )
        with contextlib.ExitStack() as stack:
            folder = savedir or stack.enter_context(
                tempfile.TemporaryDirectory()
            )
            with atomic_write(os.path.join(folder, hparams_file)) as handle:
                handle.write(text)
            return pretrained_from_hparams(
                cls,
                folder,
                hparams_file,
                overrides=overrides,
                savedir=savedir,
                **kwargs,
            )

    @classmethod
    def inference_hparams(
        cls, experiment_folder, window=None, hop=None, exported=False
    ):
        """Builds the inference YAML of a trained experiment.

        The model's definitions (``EXPERIMENT_KEYS``, and whatever their
        references pull in) are copied from the experiment's
        ``hyperparams.yaml``; the encoder is frozen; a ``pretrainer`` loads
        every averaged module checkpoint of ``save/averaged/`` (``model.ckpt``,
        and ``encoder.ckpt`` when the encoder was fine-tuned) from
        ``<model_folder>`` with a strict hook. ``model_folder`` is a
        placeholder that :meth:`from_hparams` fills.

        Arguments
        ---------
        experiment_folder : str
            A recipe's ``--output_folder``.
        window, hop : float, optional
            Sliding windows, in seconds; 0 scores whole clips. By default the
            experiment's ``eval_window``/``eval_hop`` when it evaluated in
            windows, else ``DEFAULT_WINDOW``/``DEFAULT_HOP``.
        exported : bool
            If True the encoder is read from ``<model_folder>/encoder``
            (an export); otherwise from the experiment's own source.

        Returns
        -------
        str
            The YAML text.
        """
        path = os.path.join(experiment_folder, HPARAMS_FILE)
        tree = _read_yaml_tree(path)
        missing = [key for key in cls.EXPERIMENT_KEYS if key not in tree]
        if missing:
            served_by = _interface_of_experiment(tree)
            hint = (
                f"; this experiment's model is served by {served_by.__name__} "
                "(load_model picks it)"
                if served_by is not cls
                else "; is this a trained experiment?"
            )
            raise ValueError(f"{path}: keys {missing} are missing{hint}")
        window, hop = _default_windows(
            tree, window, hop, cls.DEFAULT_WINDOW, cls.DEFAULT_HOP
        )

        hparams = CommentedMap()
        hparams["interface"] = f"{cls.__module__}.{cls.__qualname__}"
        hparams["model_folder"] = TaggedScalar("", tag="!PLACEHOLDER")
        hparams["window"] = window
        hparams["hop"] = hop
        hparams.update(cls.inference_constants(tree))
        for key in cls.EXPERIMENT_KEYS:
            hparams[key] = tree[key]
        encoder = hparams["encoder"]
        encoder["freeze"] = True
        if exported:
            encoder["source"] = _ref(f"<model_folder>/{ENCODER_FOLDER}")
            encoder["save_path"] = _ref(f"<model_folder>/{ENCODER_FOLDER}")

        names = averaged_checkpoints(experiment_folder)
        missing = [name for name in names if name not in hparams]
        if missing:
            raise ValueError(
                f"{experiment_folder}: averaged checkpoints {missing} belong to no key of "
                f"{cls.__name__}.EXPERIMENT_KEYS {list(cls.EXPERIMENT_KEYS)}"
            )
        loaded = {name: hparams[name] for name in names}
        strict = TaggedScalar(
            "",
            tag="!name:emoshare_sb.inference.interfaces.load_state_dict_strict",
        )
        pretrainer = CommentedMap()
        pretrainer["loadables"] = CommentedMap(loaded)
        pretrainer["paths"] = CommentedMap(
            {name: _ref(f"<model_folder>/{name}.ckpt") for name in loaded}
        )
        pretrainer["custom_hooks"] = CommentedMap(dict.fromkeys(loaded, strict))
        pretrainer.yaml_set_ctag(
            Tag(suffix="!new:speechbrain.utils.parameter_transfer.Pretrainer")
        )
        hparams["pretrainer"] = pretrainer

        stream = io.StringIO()
        _yaml().dump(hparams, stream)
        header = (
            f"# Inference hyperparameters for {hparams['interface']},\n"
            f"# made from {os.path.abspath(path)}.\n"
            f"# Load with {cls.__name__}.from_hparams(source=<this folder>), which\n"
            "# sets model_folder; window/hop are sliding windows in seconds (null: whole clips).\n"
        )
        return header + stream.getvalue()

    @classmethod
    def inference_constants(cls, tree):
        """Plain inference hyperparameters the experiment's YAML does not hold.

        Arguments
        ---------
        tree : ruamel.yaml.comments.CommentedMap
            The experiment's ``hyperparams.yaml``.

        Returns
        -------
        dict
            Keys written to the inference YAML next to ``window`` and
            ``hop``; none for :class:`EmotionShareRegressor`, whose output
            names are the experiment's ``emotions``.
        """
        del tree  # everything this model needs is in EXPERIMENT_KEYS
        return {}

    @classmethod
    def export(
        cls,
        experiment_folder,
        export_folder,
        window=None,
        hop=None,
        encoder_source=None,
        overwrite=False,
    ):
        """Writes a self-contained model folder from a trained experiment.

        See :func:`export_model`.
        """
        if not is_experiment_folder(experiment_folder):
            raise ValueError(
                f"'{experiment_folder}' is not a trained experiment folder "
                f"(no {HPARAMS_FILE} or {AVERAGED_FOLDER}/model.ckpt)"
            )
        export_folder = os.path.abspath(export_folder)
        if (
            os.path.isdir(export_folder)
            and os.listdir(export_folder)
            and not overwrite
        ):
            raise FileExistsError(
                f"'{export_folder}' exists and is not empty (overwrite=True replaces it)"
            )
        text = cls.inference_hparams(
            experiment_folder, window, hop, exported=True
        )
        encoder = _experiment_encoder(experiment_folder, encoder_source)

        # Everything is written to a staging folder renamed into place at the
        # end, so an export is complete or absent.
        parent = os.path.dirname(export_folder)
        os.makedirs(parent, exist_ok=True)
        staging = make_temp_folder(parent, ".export-")
        try:
            with open(os.path.join(staging, HPARAMS_FILE), "w") as handle:
                handle.write(text)
            averaged = os.path.join(experiment_folder, AVERAGED_FOLDER)
            for name in averaged_checkpoints(experiment_folder):
                shutil.copyfile(
                    os.path.join(averaged, f"{name}.ckpt"),
                    os.path.join(staging, f"{name}.ckpt"),
                )
            encoder.model.save_pretrained(os.path.join(staging, ENCODER_FOLDER))
            encoder.feature_extractor.save_pretrained(
                os.path.join(staging, ENCODER_FOLDER)
            )
            write_json(
                os.path.join(staging, "export_info.json"),
                _export_info(experiment_folder, cls.VALIDATION_SPLIT),
            )
            _replace_folder(staging, export_folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        logger.info(f"Exported {experiment_folder} to {export_folder}")
        return export_folder


class VoteDistributionRecognizer(EmotionShareRegressor):
    """Predicts the distribution of listeners' emotion votes and arousal/valence/dominance.

    The model is the MSP-Podcast recipe's (``recipes/MSP-Podcast``): SSL
    ``encoder`` -> TC-GRU ``aggregator`` over the valid frames ->
    ``class_head`` (its log-softmax, exponentiated: the share of graders
    voting for each class) and ``dimension_head`` (sigmoid: arousal, valence
    and dominance in [0, 1], reported on the corpus' scale,
    ``dimension_range``, 1..7 for MSP-Podcast). Predictions are
    ``[probabilities (C) | dimensions (D)]``, the columns of the recipe's
    prediction files; the 1-best class is the most probable one, ties going
    to the later class as in the recipe's metrics.

    Windows, loading and export are :class:`EmotionShareRegressor`'s;
    clips up to 12 s (every MSP-Podcast turn, 2.75 to 11 s) are scored whole
    by default, as the recipe scores them.

    Arguments
    ---------
    See :class:`speechbrain.inference.interfaces.Pretrained`. Load with
    :meth:`from_hparams` (or :func:`load_model`); ``run_opts={"device": "cpu"}``
    picks the device.

    Example
    -------
    >>> from speechbrain.nnet.activations import Softmax
    >>> from emoshare_sb.lobes.ssl import SSLEncoder
    >>> from emoshare_sb.nnet.aggregators import TCGRU
    >>> from emoshare_sb.synthetic import make_tiny_ssl_model
    >>> tmp = getfixture("tmpdir")
    >>> encoder = SSLEncoder(make_tiny_ssl_model(str(tmp / "tiny")), str(tmp))
    >>> modules = {
    ...     "encoder": encoder,
    ...     "aggregator": TCGRU(
    ...         32, conv_channels=8, gru_size=8, embedding_size=8
    ...     ),
    ...     "class_head": torch.nn.Linear(8, 3),
    ...     "dimension_head": torch.nn.Sequential(
    ...         torch.nn.Linear(8, 2), torch.nn.Sigmoid()
    ...     ),
    ... }
    >>> hparams = {
    ...     "classes": ["Angry", "Sad", "Neutral"],
    ...     "dimensions": ["arousal", "valence"],
    ...     "dimension_range": [1.0, 7.0],
    ...     "log_softmax": Softmax(apply_log=True),
    ...     "sample_rate": 16000,
    ...     "window": 12.0,
    ...     "hop": 6.0,
    ... }
    >>> model = VoteDistributionRecognizer(
    ...     modules, hparams, run_opts={"device": "cpu"}
    ... )
    >>> model.predict_batch(
    ...     torch.randn(2, 16000)
    ... ).shape  # 3 probabilities, 2 dimensions
    torch.Size([2, 5])
    >>> probabilities, dimensions, labels = model.classify_batch(
    ...     torch.randn(2, 16000)
    ... )
    >>> torch.allclose(probabilities.sum(dim=1), torch.ones(2))
    True
    >>> (
    ...     bool(((dimensions >= 1) & (dimensions <= 7)).all()),
    ...     labels[0] in hparams["classes"],
    ... )
    (True, True)
    >>> model.prediction_columns
    ['class', 'Angry', 'Sad', 'Neutral', 'arousal', 'valence']
    """

    HPARAMS_NEEDED = [
        "classes",
        "dimensions",
        "dimension_range",
        "log_softmax",
        "sample_rate",
        "window",
        "hop",
    ]
    MODULES_NEEDED = ["encoder", "aggregator", "class_head", "dimension_head"]
    EXPERIMENT_KEYS = (
        "sample_rate",
        "dimensions",
        "encoder",
        "aggregator",
        "class_head",
        "dimension_head",
        "log_softmax",
        "model",
        "modules",
    )
    VALIDATION_SPLIT = "valid"
    # MSP-Podcast turns last 2.75 to 11 s: a 12 s window scores each whole.
    DEFAULT_WINDOW = 12.0
    DEFAULT_HOP = 6.0

    @property
    def output_names(self):
        """The class names, then the dimension names (the prediction columns)."""
        return list(self.hparams.classes) + list(self.hparams.dimensions)

    @property
    def prediction_columns(self):
        """``class`` (the 1-best class name), then :attr:`output_names`."""
        return ["class"] + self.output_names

    def forward(self, wavs, wav_lens=None):
        """Runs the model on a padded batch, whole clips, as the recipe does.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]`` at the model's sample rate, zero-padded.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths (SpeechBrain convention).

        Returns
        -------
        torch.Tensor
            ``[B, C + D]``: class probabilities (summing to 1), then the
            dimensions on the ``dimension_range`` scale.
        """
        if getattr(self, "onnx", None) is not None:  # inference/onnx.py
            return self.onnx(wavs, wav_lens)
        features, lengths = self.encode(wavs, wav_lens)
        embeddings = self.mods.aggregator(features, lengths)
        # exp(log-softmax) and low + (high - low) * x in float32 are the
        # recipe's own operations, so printed predictions match it digit for digit.
        probabilities = self.hparams.log_softmax(
            self.mods.class_head(embeddings)
        ).exp()
        low, high = self.hparams.dimension_range
        dimensions = low + (high - low) * self.mods.dimension_head(embeddings)
        return torch.cat([probabilities, dimensions], dim=1)

    def classify_batch(self, wavs, wav_lens=None):
        """Class probabilities, dimensions and 1-best class names of a padded batch.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]`` (or ``[samples]``) at ``hparams.sample_rate``.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths; None means no padding.

        Returns
        -------
        probabilities : torch.Tensor
            ``[B, C]``, in the order of ``hparams.classes``.
        dimensions : torch.Tensor
            ``[B, D]`` on the ``dimension_range`` scale.
        labels : list of str
            The most probable class of each clip.
        """
        predictions = self.predict_batch(wavs, wav_lens)
        num_classes = len(self.hparams.classes)
        probabilities, dimensions = (
            predictions[:, :num_classes],
            predictions[:, num_classes:],
        )
        best = best_classes(probabilities.cpu().numpy())
        return (
            probabilities,
            dimensions,
            [self.hparams.classes[i] for i in best],
        )

    def to_dict(self, row):
        """Names the values of one prediction row and adds its 1-best class.

        Arguments
        ---------
        row : torch.Tensor
            ``[C + D]``.

        Returns
        -------
        dict
            ``{"class": name, <class>: probability, ..., <dimension>: value}``.
        """
        values = super().to_dict(row)
        num_classes = len(self.hparams.classes)
        best = int(best_classes(row[None, :num_classes].cpu().numpy())[0])
        return {"class": self.hparams.classes[best], **values}

    def group_outputs(self, values):
        """Nests named values as ``predict_file`` returns them.

        Arguments
        ---------
        values : dict
            From :meth:`to_dict` (e.g. a :class:`FilePrediction` summary).

        Returns
        -------
        dict
            ``{"probabilities": {class: p}, "class": name, <dimension>: value, ...}``.
        """
        grouped = {
            "probabilities": {
                name: values[name] for name in self.hparams.classes
            },
            "class": values["class"],
        }
        grouped.update({name: values[name] for name in self.hparams.dimensions})
        return grouped

    def predict_file(self, path):
        """Predicts a file: class probabilities, the 1-best class and the dimensions.

        Arguments
        ---------
        path : str
            The audio file (any format, rate or channel count libsndfile reads).

        Returns
        -------
        dict
            ``{"probabilities": {class: p}, "class": name, "arousal": a,
            "valence": v, "dominance": d}`` for the whole clip (the mean over
            windows for a recording longer than ``window``); dimensions on
            the ``dimension_range`` scale (1..7).
        """
        return self.group_outputs(self.score_file(path).summary)

    @classmethod
    def inference_constants(cls, tree):
        """The class names and the dimensions' scale, which the recipe hard-codes.

        Arguments
        ---------
        tree : ruamel.yaml.comments.CommentedMap
            The experiment's ``hyperparams.yaml``.

        Returns
        -------
        dict
            ``classes`` (the class head's output order) and ``dimension_range``
            (``[low, high]``: the sigmoid outputs map to ``low + (high - low) x``).
        """
        # The recipe's class order and 1..7 mapping (FORMATS.md), unless an
        # experiment's YAML says otherwise.
        classes = tree.get("classes") or MSP_CLASS_NAMES
        return {
            "classes": CommentedSeq(str(name) for name in classes),
            "dimension_range": CommentedSeq(
                tree.get("dimension_range") or [1.0, 7.0]
            ),
        }


# Inference classes tried in turn on an experiment folder: the first whose
# MODULES_NEEDED the experiment's ``modules`` all define serves it.
INFERENCE_INTERFACES = (VoteDistributionRecognizer, EmotionShareRegressor)


def export_model(
    experiment_folder,
    export_folder,
    window=None,
    hop=None,
    encoder_source=None,
    overwrite=False,
):
    """Writes a self-contained, offline-loadable model folder from an experiment.

    The folder holds ``hyperparams.yaml`` (the inference YAML: encoder reading
    ``encoder/``, pooling, head, output names, sample rate, window and hop,
    ``modules`` and a ``pretrainer``), ``model.ckpt`` (the averaged pooling +
    head), ``encoder.ckpt`` when the experiment fine-tuned the encoder,
    ``encoder/`` (the SSL model's ``save_pretrained`` weights, config and
    feature-extractor config) and ``export_info.json`` (where it came from,
    which checkpoints were averaged, the devel scores). It is written to a
    staging folder and renamed into place, so it is complete or absent.

    The experiment's inference class (:func:`interface_class`: the
    MSP-Podcast recipe's model is exported by :class:`VoteDistributionRecognizer`,
    the ComParE recipes' by :class:`EmotionShareRegressor`) does the export.

    Arguments
    ---------
    experiment_folder : str
        A trained recipe's ``--output_folder``.
    export_folder : str
        The folder to create.
    window, hop : float, optional
        Default sliding windows of the exported model, in seconds; 0 scores
        whole clips. By default the experiment's ``eval_window``/``eval_hop``
        when it evaluated in windows, else ``DEFAULT_WINDOW``/``DEFAULT_HOP``
        (8 s / 4 s: whole ComParE clips, bounded memory on long recordings).
    encoder_source : str, optional
        Read the SSL encoder from here instead of the experiment's
        ``ssl_source`` (e.g. a local copy of a hub model).
    overwrite : bool
        Replace an existing, non-empty ``export_folder``.

    Returns
    -------
    str
        The absolute path of ``export_folder``.

    Example
    -------
    >>> from emoshare_sb.synthetic import make_tiny_ssl_model
    >>> tmp = getfixture("tmpdir")
    >>> experiment = _tiny_experiment(
    ...     str(tmp / "exp"), make_tiny_ssl_model(str(tmp / "ssl"))
    ... )
    >>> folder = export_model(experiment, str(tmp / "export"))
    >>> sorted(os.listdir(folder))
    ['encoder', 'export_info.json', 'hyperparams.yaml', 'model.ckpt']
    >>> model = EmotionShareRegressor.from_hparams(
    ...     folder, run_opts={"device": "cpu"}
    ... )
    >>> model.predict_batch(torch.randn(3, 16000)).shape
    torch.Size([3, 2])
    """
    cls = interface_class(experiment_folder)
    return cls.export(
        experiment_folder, export_folder, window, hop, encoder_source, overwrite
    )


def averaged_checkpoints(experiment_folder):
    """Names of the averaged module checkpoints of an experiment.

    Arguments
    ---------
    experiment_folder : str
        A recipe's ``--output_folder``.

    Returns
    -------
    list of str
        Recoverable names with a ``save/averaged/<name>.ckpt`` (``model``,
        and ``encoder`` for a fine-tuned encoder), sorted.
    """
    folder = os.path.join(experiment_folder, AVERAGED_FOLDER)
    return sorted(
        name[: -len(".ckpt")]
        for name in os.listdir(folder)
        if name.endswith(".ckpt")
    )


def _default_windows(
    tree, window, hop, default_window=DEFAULT_WINDOW, default_hop=DEFAULT_HOP
):
    """Window and hop in seconds (None, None: whole clips) for an experiment."""
    if window is None:
        if (
            tree.get("eval_window") or 0
        ) > 0:  # the recipe evaluated in windows
            window = tree["eval_window"]
            hop = tree.get("eval_hop") if hop is None else hop
        else:
            window = default_window
            hop = default_hop if hop is None else hop
    if window <= 0:
        return None, None
    hop = window / 2 if hop is None else hop
    if not 0 < hop <= window:
        raise ValueError(
            f"hop must be in (0, window], got window={window}, hop={hop}"
        )
    return float(window), float(hop)


def interface_class(source):
    """The inference class of an exported or experiment folder.

    An export names it in its YAML's ``interface`` key. An experiment may
    name it in an ``inference_interface`` key; otherwise its ``modules``
    decide: the first class of :data:`INFERENCE_INTERFACES` whose
    ``MODULES_NEEDED`` it defines (``class_head`` and ``dimension_head``:
    :class:`VoteDistributionRecognizer`), else :class:`EmotionShareRegressor`.

    Arguments
    ---------
    source : str
        An exported or trained experiment folder.

    Returns
    -------
    type
        A :class:`EmotionShareRegressor` subclass (or itself).
    """
    path = os.path.join(source, HPARAMS_FILE)
    if not os.path.isfile(path):
        raise ValueError(
            f"'{source}' holds no {HPARAMS_FILE}: not a model or experiment folder"
        )
    tree = _read_yaml_tree(path)
    if is_experiment_folder(source):
        return _interface_of_experiment(tree, path)
    return _import_interface(
        tree.get("interface") or EmotionShareRegressor, path
    )


def _interface_of_experiment(tree, path=HPARAMS_FILE):
    """The inference class of an experiment's YAML tree (see :func:`interface_class`)."""
    if tree.get("inference_interface"):
        return _import_interface(tree["inference_interface"], path)
    modules = set(tree.get("modules") or {})
    return next(
        (
            cls
            for cls in INFERENCE_INTERFACES
            if set(cls.MODULES_NEEDED) <= modules
        ),
        EmotionShareRegressor,
    )


def _import_interface(dotted, path):
    """Imports ``package.module.Class`` and checks that it is an inference class."""
    if isinstance(dotted, type):
        return dotted
    module, _, name = str(dotted).rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, EmotionShareRegressor)):
        raise ValueError(
            f"{path}: '{dotted}' is not an EmotionShareRegressor class"
        )
    return cls


def load_model(source, device="cpu", overrides=None, savedir=None):
    """Loads an exported or experiment folder with its own inference class.

    Arguments
    ---------
    source : str
        An exported model folder or a trained experiment folder.
    device : str
        ``"cpu"``, ``"cuda:0"``, ...
    overrides : dict, optional
        YAML overrides (e.g. ``{"window": 20.0, "hop": 10.0}``).
    savedir : str, optional
        See :meth:`EmotionShareRegressor.from_hparams`.

    Returns
    -------
    EmotionShareRegressor
        The model, in eval mode on ``device``.
    """
    cls = interface_class(source)
    return cls.from_hparams(
        source,
        overrides=overrides,
        savedir=savedir,
        run_opts={"device": device},
    )


def _yaml():
    yaml = ruamel.yaml.YAML()  # round trip: keeps the HyperPyYAML tags
    yaml.width = 100
    return yaml


def _read_yaml_tree(path):
    with open(path, encoding="utf-8") as handle:
        tree = _yaml().load(handle)
    _strip_comments(tree)
    return tree


def _strip_comments(node, seen=None):
    """Drops comments, which would otherwise land next to the wrong keys."""
    seen = set() if seen is None else seen
    if id(node) in seen or not isinstance(node, CommentedMap | CommentedSeq):
        return
    seen.add(id(node))
    node.ca.items.clear()
    node.ca.comment = None
    for child in node.values() if isinstance(node, CommentedMap) else node:
        _strip_comments(child, seen)


def _ref(text):
    return TaggedScalar(text, tag="!ref")


def _experiment_encoder(experiment_folder, encoder_source=None):
    """Instantiates the experiment's encoder from its YAML definition."""
    from hyperpyyaml import load_hyperpyyaml

    tree = _read_yaml_tree(os.path.join(experiment_folder, HPARAMS_FILE))
    node = tree["encoder"]
    node["freeze"] = True
    if encoder_source is not None:
        node["source"] = os.fspath(encoder_source)
    stream = io.StringIO()
    _yaml().dump(CommentedMap(encoder=node), stream)
    return load_hyperpyyaml(stream.getvalue())["encoder"]


def _export_info(experiment_folder, validation_split="devel"):
    info = {"experiment_folder": os.path.abspath(experiment_folder)}
    results = os.path.join(experiment_folder, "results.json")
    if os.path.isfile(results):
        import json

        with open(results) as handle:
            summary = json.load(handle)
        info.update(
            {
                "ssl_source": summary.get("ssl_source"),
                "averaged_from": summary.get("averaged_from"),
                validation_split: summary.get(validation_split),
            }
        )
    return info


def _replace_folder(staging, destination):
    """Moves ``staging`` to ``destination``, replacing it if it exists."""
    if not os.path.exists(destination) or not os.listdir(destination):
        os.replace(staging, destination)
        return
    old = tempfile.mkdtemp(
        prefix=".old-export-", dir=os.path.dirname(destination)
    )
    os.replace(destination, os.path.join(old, "old"))
    os.replace(staging, destination)
    shutil.rmtree(old, ignore_errors=True)


def _tiny_experiment(
    folder, ssl_source, emotions=("Calm", "Sad"), encoder_dim=32
):
    """Writes an untrained experiment folder (random head), for doctests and tests."""
    import textwrap

    os.makedirs(os.path.join(folder, AVERAGED_FOLDER), exist_ok=True)
    text = textwrap.dedent(
        f"""\
        emotions: {list(emotions)}
        sample_rate: 16000
        encoder: !new:emoshare_sb.lobes.ssl.SSLEncoder
            source: {ssl_source}
            save_path: {folder}/pretrained
        pooling: !new:emoshare_sb.nnet.pooling.MaskedAttentivePooling
            input_size: {encoder_dim}
        head: !new:emoshare_sb.nnet.heads.MLPHead
            input_size: {encoder_dim}
            output_size: {len(emotions)}
            hidden_size: 8
        model: !new:torch.nn.ModuleList
            - [!ref <pooling>, !ref <head>]
        modules:
            encoder: !ref <encoder>
            pooling: !ref <pooling>
            head: !ref <head>
        """
    )
    with open(os.path.join(folder, HPARAMS_FILE), "w") as handle:
        handle.write(text)
    from hyperpyyaml import load_hyperpyyaml

    model = load_hyperpyyaml(text)["model"]
    torch.save(
        model.state_dict(), os.path.join(folder, AVERAGED_FOLDER, "model.ckpt")
    )
    return folder
