"""HuggingFace SSL encoders (HuBERT, wav2vec2, WavLM, XLS-R) as SpeechBrain lobes.

Built on :class:`speechbrain.integrations.huggingface.wav2vec2.Wav2Vec2`, which
loads any of these families from a hub id or a local folder, and fixes what
matters for emotion work:

* LayerDrop is disabled, so the number of hidden states never varies;
* a frozen encoder stays in eval mode even when the Brain calls ``train()``;
* waveform normalisation, and the GroupNorm front-end of Base models, use
  only the valid samples of each padded clip, so a clip encodes the same
  alone or in any batch;
* one hidden layer, several, the last one, or all of them can be returned,
  and the encoder stops at the highest layer read
  (:mod:`emoshare_sb.lobes.early_exit`): with ``layer=20`` of a 24-layer
  model the last four layers are not run, with bit-identical features;
* an unpadded batch (one clip, or clips of equal length) is encoded without
  an attention mask (the same values, less work);
* the attention kernel is chosen per machine
  (:func:`emoshare_sb.utils.cpu.choose_attention`, logged).

Authors
 * emoshare_sb contributors 2026
"""

import contextlib
import os

import torch
from speechbrain.integrations.huggingface.wav2vec2 import Wav2Vec2
from speechbrain.utils.logger import get_logger

from emoshare_sb.lobes import relative_frame_lengths
from emoshare_sb.lobes.early_exit import (
    first_layers,
    hidden_state_request,
    highest_layer,
    normalise_layers,
)
from emoshare_sb.lobes.padding import padding_invariant
from emoshare_sb.utils.cpu import choose_attention
from emoshare_sb.utils.errors import HparamsError

logger = get_logger(__name__)


SPEC_AUGMENT_KEYS = (
    "mask_time_prob",
    "mask_time_length",
    "mask_feature_prob",
    "mask_feature_length",
)


class SSLEncoder(Wav2Vec2):
    """A self-supervised speech encoder with layer selection.

    Arguments
    ---------
    source : str
        A HuggingFace hub id (e.g. ``facebook/hubert-large-ll60k``) or a local
        folder holding ``config.json``, the weights and
        ``preprocessor_config.json``.
    save_path : str
        Where hub downloads are cached.
    freeze : bool
        If True the encoder is not trained and stays in eval mode.
    freeze_feature_extractor : bool
        When fine-tuning, keep the convolutional feature extractor frozen.
    layer : int, list of int, "all" or None
        ``None`` returns the last hidden state ``[B, T, C]``; an int ``k``
        returns hidden state ``k`` (0 is the projected CNN output, ``L`` the
        last transformer layer; negative counts from the end); a list of
        ints returns those hidden states stacked as ``[len, B, T, C]``;
        ``"all"`` returns every hidden state stacked as ``[L + 1, B, T, C]``.
        With transformers 5, hidden state ``L`` of pre-norm (large) models is
        taken before the encoder's final layer norm, which the default
        applies. Layers above the highest one selected are not run.
    output_norm : bool
        Apply a (non-affine) layer norm to the returned features.
    attention : str
        ``"auto"`` (:func:`~emoshare_sb.utils.cpu.choose_attention`: the
        fastest exact kernel for the device), ``"sdpa"`` or ``"eager"``.
    spec_augment : dict, optional
        The model's own SpecAugment while training (HuggingFace's time and
        feature masking of the CNN output), as Atmaja & Sasou's released code
        fine-tunes: the config keys ``mask_time_prob``, ``mask_time_length``,
        ``mask_feature_prob`` and ``mask_feature_length``. None (the
        default): no masking.

    Example
    -------
    >>> from emoshare_sb.synthetic import make_tiny_ssl_model
    >>> source = make_tiny_ssl_model(str(getfixture("tmpdir") / "tiny"))
    >>> encoder = SSLEncoder(source, save_path=str(getfixture("tmpdir")))
    >>> wavs, lens = torch.randn(2, 16000), torch.tensor([1.0, 0.5])
    >>> encoder(wavs, lens).shape
    torch.Size([2, 49, 32])
    >>> SSLEncoder(source, str(getfixture("tmpdir")), layer="all")(
    ...     wavs, lens
    ... ).shape
    torch.Size([3, 2, 49, 32])
    >>> encoder.train().model.training
    False
    >>> encoder.feature_lengths(
    ...     lens, 16000, 49
    ... ) * 49  # 8000 samples -> 24 frames
    tensor([49., 24.])
    """

    def __init__(
        self,
        source,
        save_path="pretrained_models",
        freeze=True,
        freeze_feature_extractor=True,
        layer=None,
        output_norm=False,
        attention="auto",
        spec_augment=None,
    ):
        check_ssl_source(source)
        with explain_load_errors(source):
            super().__init__(
                source=source,
                save_path=save_path,
                output_norm=output_norm,
                freeze=freeze,
                freeze_feature_extractor=freeze_feature_extractor,
                output_all_hiddens=layer is not None,
                apply_spec_augment=bool(spec_augment),
            )
        num_hidden = self.model.config.num_hidden_layers + 1
        check_layer(layer, num_hidden, source)
        choose_attention(requested=attention)  # validates the option
        for key, value in (spec_augment or {}).items():
            if key not in SPEC_AUGMENT_KEYS:
                raise HparamsError(
                    f"spec_augment: unknown key '{key}' (expected "
                    f"{', '.join(SPEC_AUGMENT_KEYS)})"
                )
            setattr(self.model.config, key, value)
        # Without spec augment the mask embedding is never used: trainable,
        # it would leave DDP waiting for its gradient.
        if (
            getattr(self.model, "masked_spec_embed", None) is not None
            and not spec_augment
        ):
            self.model.masked_spec_embed.requires_grad_(False)
        self.layer = layer
        self.num_layers = num_hidden
        self.source = source
        self.output_size = self.model.config.hidden_size
        self.attention = attention
        self._attention_device = None

    def layers_run(self):
        """How many transformer layers a forward pass runs (the highest one read).

        Returns
        -------
        int
            ``L`` for the last layer or all of them, ``k`` for hidden state
            ``k`` (at least 1: HuggingFace records hidden state 0 as the
            first layer's input).
        """
        return max(highest_layer(self.layer, self.num_layers), 1)

    def use_attention_for(self, device):
        """Sets the attention kernel for ``device`` (once per device type).

        Arguments
        ---------
        device : torch.device
            Where the forward pass runs.
        """
        if self._attention_device == device.type:
            return
        self._attention_device = device.type
        choice = choose_attention(device, self.attention)
        if self.model.config._attn_implementation == choice:
            return
        try:
            self.model.set_attn_implementation(choice)
        except (ValueError, AttributeError):  # e.g. WavLM: its own attention
            pass

    def override_config(self, config):
        """Disables LayerDrop, so every forward pass yields every hidden state.

        Arguments
        ---------
        config : transformers.PretrainedConfig
            The loaded config.

        Returns
        -------
        transformers.PretrainedConfig
            The same config, modified.
        """
        config.layerdrop = 0.0
        return config

    def train(self, mode=True):
        """Sets training mode, keeping frozen parts in eval mode.

        Arguments
        ---------
        mode : bool
            Training mode for the trainable parts.

        Returns
        -------
        SSLEncoder
            self.
        """
        super().train(mode)
        if self.freeze:
            self.model.eval()
        elif self.freeze_feature_extractor:
            self.model.feature_extractor.eval()
        return self

    def feature_lengths(self, wav_lens, num_samples, num_frames):
        """Exact relative frame lengths after the convolutional front-end.

        Arguments
        ---------
        wav_lens : torch.Tensor
            ``[B]`` relative waveform lengths.
        num_samples : int
            Samples of the padded waveform batch.
        num_frames : int
            Frames of the padded feature batch.

        Returns
        -------
        torch.Tensor
            ``[B]`` valid frames divided by ``num_frames``.
        """
        return relative_frame_lengths(
            wav_lens,
            num_samples,
            num_frames,
            self.model._get_feat_extract_output_lengths,
        )

    def extract_features(self, wav, wav_lens=None):
        """Encodes a padded batch.

        Arguments
        ---------
        wav : torch.Tensor
            ``[B, samples]``, zero-padded.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths (SpeechBrain convention).

        Returns
        -------
        torch.Tensor
            ``[B, T, C]``, or ``[L + 1, B, T, C]`` with ``layer="all"``.
        """
        self.use_attention_for(wav.device)
        if wav_lens is None:
            wav_lens = torch.ones(wav.shape[0], device=wav.device)
        num_samples = torch.round(wav_lens * wav.shape[1]).long()
        mask = (
            torch.arange(wav.shape[1], device=wav.device)[None, :]
            < num_samples[:, None]
        )
        if self.normalize_wav:
            wav = masked_normalize(wav, mask)
        # Without padding the mask changes nothing: skip the mask work.
        padded = torch.onnx.is_in_onnx_export() or bool(
            (num_samples < wav.shape[1]).any()
        )  # an exported graph serves padded batches
        layer = normalise_layers(self.layer, self.num_layers)
        with (
            padding_invariant(self.model),
            first_layers(self.model.encoder, self.layers_run()),
        ):
            out = self.model(
                wav,
                attention_mask=mask.long() if padded else None,
                output_hidden_states=hidden_state_request(layer),
            )
        if layer is None:
            feats = out.last_hidden_state
        elif layer == "all":
            feats = torch.stack(list(out.hidden_states), dim=0)
        elif isinstance(layer, int):
            feats = out.hidden_states[layer]
        else:
            feats = torch.stack([out.hidden_states[i] for i in layer], dim=0)
        if self.output_norm:
            feats = torch.nn.functional.layer_norm(feats, feats.shape[-1:])
        return feats


@contextlib.contextmanager
def explain_load_errors(source):
    """Rewrites a failed hub download of ``source`` into a message saying what to do.

    Arguments
    ---------
    source : str
        A hub id or a local folder (errors for a local folder pass through).

    Example
    -------
    >>> with explain_load_errors("owner/model"):
    ...     raise OSError("connection refused")
    Traceback (most recent call last):
    ...
    OSError: Could not load ssl_source 'owner/model' from the HuggingFace hub (connection refused). ...
    """
    try:
        yield
    except OSError as error:
        if os.path.isdir(source):
            raise
        raise OSError(
            f"Could not load ssl_source '{source}' from the HuggingFace hub "
            f"({error}). Without network access (HF_HUB_OFFLINE=1), download it "
            "once where you can, or pass a local folder written with save_pretrained."
        ) from error


def check_layer(layer, num_hidden, source):
    """Checks a ``layer`` option against the encoder's number of hidden states.

    Arguments
    ---------
    layer : int, list of int, "all" or None
        The requested hidden state(s).
    num_hidden : int
        Hidden states the encoder yields (layers + 1).
    source : str
        The encoder, for the message.

    Raises
    ------
    HparamsError
        For an index out of range or a value of the wrong kind.

    Example
    -------
    >>> check_layer(24, 25, "microsoft/wavlm-large")
    >>> check_layer(25, 25, "microsoft/wavlm-large")
    Traceback (most recent call last):
    ...
    emoshare_sb.utils.errors.HparamsError: layer=25 is out of range: 'microsoft/wavlm-large' has 25 hidden states (0..24)
    """
    if isinstance(layer, list | tuple) and layer:
        indices = list(layer)
    elif layer is None or layer == "all" or isinstance(layer, int):
        indices = [layer] if isinstance(layer, int) else []
    else:
        indices = [None]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
        raise HparamsError(
            f"layer must be an int, a list of ints, 'all' or None, got {layer!r}"
        )
    for index in indices:
        if not -num_hidden <= index < num_hidden:
            raise HparamsError(
                f"layer={index} is out of range: '{source}' has {num_hidden} "
                f"hidden states (0..{num_hidden - 1})"
            )


# What a model folder must hold, each with a test on a file name.
MODEL_FOLDER_FILES = {
    "config.json": lambda name: name == "config.json",
    "the weights": lambda name: name.endswith(
        (".safetensors", ".bin", ".ckpt")
    ),
    "preprocessor_config.json": lambda name: name == "preprocessor_config.json",
}


def check_ssl_source(source):
    """Fails with a clear message when a local ``ssl_source`` folder is incomplete.

    A hub id (``owner/name`` that is not a local path) is left to the hub
    loader.

    Arguments
    ---------
    source : str
        A hub id or a local folder.

    Raises
    ------
    FileNotFoundError
        When a local folder does not exist or lacks the config, the weights
        or the preprocessor config.

    Example
    -------
    >>> check_ssl_source(
    ...     "facebook/hubert-large-ll60k"
    ... )  # a hub id: not checked here
    >>> check_ssl_source(str(getfixture("tmpdir")))
    Traceback (most recent call last):
    ...
    FileNotFoundError: ssl_source '...' lacks config.json, the weights, preprocessor_config.json: ...
    """
    source = str(source)
    looks_local = source.startswith(("/", ".", "~")) or source.count("/") > 1
    if not os.path.isdir(source):
        if looks_local:
            raise FileNotFoundError(
                f"ssl_source folder '{source}' does not exist"
            )
        return
    files = os.listdir(source)
    missing = [
        what
        for what, matches in MODEL_FOLDER_FILES.items()
        if not any(matches(name) for name in files)
    ]
    if missing:
        raise FileNotFoundError(
            f"ssl_source '{source}' lacks {', '.join(missing)}: a model folder holds "
            "config.json, model.safetensors (or pytorch_model.bin) and "
            "preprocessor_config.json, as model.save_pretrained(folder) and "
            "feature_extractor.save_pretrained(folder) write them"
        )


def masked_normalize(wav, mask, eps=1e-7):
    """Zero-mean unit-variance normalisation over each clip's valid samples.

    Padded samples stay zero, so a clip gets the same input whatever it is
    batched with (the HF feature extractor's ``do_normalize``, done right for
    padded batches).

    Arguments
    ---------
    wav : torch.Tensor
        ``[B, samples]``.
    mask : torch.Tensor
        ``[B, samples]`` bool, True on valid samples.
    eps : float
        Added to the variance.

    Returns
    -------
    torch.Tensor
        ``[B, samples]``.

    Example
    -------
    >>> wav = torch.tensor([[1.0, 3.0, 0.0], [1.0, 3.0, 5.0]])
    >>> mask = torch.tensor([[True, True, False], [True, True, True]])
    >>> masked_normalize(wav, mask)[0]
    tensor([-1.,  1.,  0.])
    """
    weights = mask.to(wav.dtype)
    count = weights.sum(dim=1, keepdim=True).clamp(min=1)
    mean = (wav * weights).sum(dim=1, keepdim=True) / count
    var = (((wav - mean) * weights) ** 2).sum(dim=1, keepdim=True) / count
    return torch.where(mask, (wav - mean) / torch.sqrt(var + eps), 0.0)
