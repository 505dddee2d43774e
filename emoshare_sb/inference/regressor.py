"""The inference class of the ComParE recipes, in SpeechBrain's ``Pretrained`` style.

:class:`EmotionShareRegressor` loads a model trained by the ComParE 2023
recipe (or any recipe with an ``encoder -> pooling -> head`` model) and
predicts one value per output (emotion share) for files or padded batches;
:class:`~emoshare_sb.inference.votes.VoteDistributionRecognizer` subclasses
it for the MSP-Podcast recipe. See :mod:`emoshare_sb.inference.interfaces`
for the folders they load, and :mod:`emoshare_sb.inference.safety` for what
a folder's YAML may hold.

Authors
 * emoshare_sb contributors 2026
"""

import torch
from speechbrain.inference.interfaces import Pretrained

from emoshare_sb.data.audio import read_audio
from emoshare_sb.inference.exporting import (
    inference_yaml,
    load_folder,
    write_export,
)
from emoshare_sb.inference.folders import (
    DEFAULT_HOP,
    DEFAULT_WINDOW,
    HPARAMS_FILE,
)
from emoshare_sb.inference.scoring import (  # noqa: F401 (public names)
    MIN_SPEECH_SECONDS,
    FilePrediction,
    WindowPredictions,
    cut_pieces,
    predict_pieces,
    score_signals,
)
from emoshare_sb.inference.windows import average_by_owner, split_into_windows
from emoshare_sb.lobes import feature_lengths


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
        lengths = torch.round(wav_lens * wavs.shape[1]).long().tolist()
        signals = [
            wav[:length] for wav, length in zip(wavs, lengths, strict=False)
        ]
        pieces = self._cut(signals)
        predictions = predict_pieces(self, pieces, self.window_batch_size)
        rate = self.hparams.sample_rate
        return WindowPredictions(
            predictions=torch.stack(predictions),
            owners=torch.tensor([p.owner for p in pieces], device=wavs.device),
            # float64: exact seconds in outputs
            starts=torch.tensor([p.start for p in pieces]).double() / rate,
            ends=torch.tensor([p.end for p in pieces]).double() / rate,
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

    def score_signals(self, signals, paths=None, vad=False):
        """Predicts decoded clips together, with their per-window predictions.

        The windows of all clips go through the model ``window_batch_size``
        at a time (give clips of similar lengths together to pad little); a
        clip gets the prediction it gets alone, to float rounding.

        Arguments
        ---------
        signals : list of torch.Tensor
            ``[samples]`` clips at ``hparams.sample_rate``.
        paths : list of str, optional
            Their files (for :attr:`FilePrediction.path`).
        vad : bool
            Score only speech (:mod:`emoshare_sb.data.vad`): windows keep the
            clip's timeline; a window with less than
            :data:`~emoshare_sb.inference.scoring.MIN_SPEECH_SECONDS` of
            speech is ``silent`` and not scored; the summary is the mean over
            the scored windows (None when there is no speech).

        Returns
        -------
        list of FilePrediction
            One per clip.
        """
        return score_signals(self, signals, paths, vad)

    def score_file(self, path, vad=False):
        """Predicts a file, with the per-window predictions.

        Arguments
        ---------
        path : str
            The audio file.
        vad : bool
            Score only its speech (see :meth:`score_signals`).

        Returns
        -------
        FilePrediction
            The clip summary (mean over windows) and each window's values.
        """
        return self.score_signals([self.load_audio(path)], [path], vad)[0]

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

    def _cut(self, signals, masks=None):
        window = self._seconds_to_samples(self.hparams.window)
        hop = self._seconds_to_samples(self.hparams.hop) or window
        min_speech = int(MIN_SPEECH_SECONDS * self.hparams.sample_rate)
        return cut_pieces(signals, window, hop, masks, min_speech)

    @classmethod
    def from_hparams(
        cls,
        source,
        hparams_file=HPARAMS_FILE,
        overrides=None,
        savedir=None,
        trust_code=False,
        **kwargs,
    ):
        """Loads an exported folder or a trained experiment folder.

        The folder's YAML is checked against the allow-list of
        :mod:`emoshare_sb.inference.safety` before anything in it is
        evaluated: a folder naming other code is refused, unless
        ``trust_code`` is True.

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
        trust_code : bool
            Evaluate the YAML whatever it names (only for folders you wrote).
        **kwargs
            Passed to :func:`speechbrain.inference.interfaces.pretrained_from_hparams`
            and the constructor (e.g. ``run_opts={"device": "cpu"}``).

        Returns
        -------
        EmotionShareRegressor
            The loaded model, in eval mode.

        Raises
        ------
        emoshare_sb.inference.safety.UnsafeHparamsError
            The YAML names a tag or target outside the allow-list.
        """
        return load_folder(
            cls, source, hparams_file, overrides, savedir, trust_code, **kwargs
        )

    @classmethod
    def inference_hparams(
        cls,
        experiment_folder,
        window=None,
        hop=None,
        exported=False,
        trust_code=False,
    ):
        """Builds the inference YAML of a trained experiment.

        The model's definitions (``EXPERIMENT_KEYS``, and whatever their
        references pull in) are copied from the experiment's
        ``hyperparams.yaml`` once they pass the allow-list check (see
        :mod:`emoshare_sb.inference.safety`); the encoder is frozen; a
        ``pretrainer`` loads every averaged module checkpoint of
        ``save/averaged/`` (``model.ckpt``, and ``encoder.ckpt`` when the
        encoder was fine-tuned) from ``<model_folder>`` with a strict hook.
        ``model_folder`` is a placeholder that :meth:`from_hparams` fills.

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
        trust_code : bool
            Copy model definitions outside the allow-list.

        Returns
        -------
        str
            The YAML text.

        Raises
        ------
        emoshare_sb.inference.safety.UnsafeHparamsError
            A copied key names a tag or target outside the allow-list.
        """
        return inference_yaml(
            cls, experiment_folder, window, hop, exported, trust_code
        )

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
        trust_code=False,
    ):
        """Writes a self-contained model folder from a trained experiment.

        See :func:`~emoshare_sb.inference.interfaces.export_model`.
        """
        return write_export(
            cls,
            experiment_folder,
            export_folder,
            window,
            hop,
            encoder_source,
            overwrite,
            trust_code,
        )
