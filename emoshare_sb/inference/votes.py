"""The inference class of the MSP-Podcast recipe: graders' vote distribution and A/V/D.

Authors
 * emoshare_sb contributors 2026
"""

import torch
from ruamel.yaml.comments import CommentedSeq

from emoshare_sb.data.msp_podcast import MSP_CLASS_NAMES
from emoshare_sb.inference.regressor import EmotionShareRegressor
from emoshare_sb.metrics.classification import best_classes


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
