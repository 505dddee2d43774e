"""The encoder of an OpenAI Whisper model as a SpeechBrain lobe.

Built on :class:`speechbrain.integrations.huggingface.whisper.Whisper` with
``encoder_only=True`` (hub id or local folder, decoder dropped, mel filters of
the checkpoint's feature extractor), with the interface of
:class:`emoshare_sb.lobes.ssl.SSLEncoder` — ``forward(wavs, wav_lens)``,
``layer``, ``freeze``, ``output_size``, ``num_layers`` — so a recipe swaps an
SSL encoder for Whisper's by changing the encoder alone. What it changes:

* **Log-mel normalisation per clip.** Whisper clamps every log-mel value to
  8 (log10 units) below the maximum *of the clip* (as OpenAI's code and
  HF's ``WhisperFeatureExtractor`` do); SpeechBrain's lobe takes the maximum
  over the whole batch, so a clip's features depend on what it is batched
  with. Here the maximum is taken per clip, which reproduces
  ``WhisperFeatureExtractor`` exactly.
* **Padding.** Whisper's encoder has no attention mask: it was trained on
  30-second windows, shorter audio zero-padded, and HF's encoder refuses any
  other input length. Each clip is therefore zero-padded to 30 s *by itself*
  (samples past its relative length are zeroed first), so its features do not
  depend on the batch; only the frames that cover the batch's longest clip are
  returned (50 frames per second: a 160-sample mel hop and the stride-2
  convolution), and frames past each clip's own length are zeroed. Clips
  longer than 30 s are encoded in consecutive 30 s windows whose frames are
  concatenated.
* **Frozen means eval.** SpeechBrain keeps a frozen Whisper in train mode
  (its dropout, if the config sets any, stays active); here a frozen encoder
  stays in eval mode, and LayerDrop is disabled so every forward pass yields
  every hidden state.
* **Only the layers that are read.** With ``layer=k`` the encoder runs its
  first ``k`` layers and skips the final layer norm
  (:mod:`emoshare_sb.lobes.early_exit`); the features are bit-identical to
  hidden state ``k`` of the full pass.

**Cost.** Every clip costs a full 30 s forward pass, whatever its length:
1500 frames per clip and per layer (attention over 1500 x 1500 pairs). For
the ComParE clips (mean 2.9 s) that is about 10 times the frames an SSL
encoder processes for the same audio. For Whisper-medium's encoder (24
layers, 1024 wide, about 0.3 B parameters) one clip is about 1.1 TFLOP
(2 x 0.3 B x 1500 for the weights plus about 0.2 TFLOP of attention), against
about 0.1 TFLOP for HuBERT-Large on a 3 s clip (estimates from the model
sizes, not measurements). A recipe pays it for every clip of every epoch
and every evaluation; random training crops do not make it cheaper.

Authors
 * emoshare_sb contributors 2026
"""

import functools
import math

import torch
from speechbrain.integrations.huggingface.whisper import Whisper

from emoshare_sb.lobes import relative_frame_lengths
from emoshare_sb.lobes.early_exit import (
    first_layers,
    hidden_state_request,
    highest_layer,
    normalise_layers,
)
from emoshare_sb.lobes.ssl import (
    check_layer,
    check_ssl_source,
    explain_load_errors,
)

# log10 dynamic range kept below each clip's maximum (OpenAI's whisper/audio.py).
_LOG_MEL_RANGE = 8.0


class WhisperEncoder(Whisper):
    """The encoder of a HuggingFace Whisper model, with layer selection.

    Arguments
    ---------
    source : str
        A HuggingFace hub id (e.g. ``openai/whisper-medium``) or a local folder
        holding ``config.json``, the weights and ``preprocessor_config.json``
        (a ``WhisperFeatureExtractor``).
    save_path : str
        Where hub downloads are cached.
    freeze : bool
        If True the encoder is not trained and stays in eval mode.
    layer : int, list of int, "all" or None
        ``None`` returns the last hidden state ``[B, T, C]`` (after the
        encoder's final layer norm); an int ``k`` returns hidden state ``k``
        (0 is the convolutional front-end plus positional embeddings, ``L``
        the last layer, which in Whisper includes the final layer norm;
        negative counts from the end); a list of ints returns those stacked
        as ``[len, B, T, C]``; ``"all"`` returns every hidden state stacked
        as ``[L + 1, B, T, C]``. Layers above the highest one read are not
        run.
    sampling_rate : int
        Sample rate of the input (Whisper expects 16 kHz).

    Example
    -------
    >>> from emoshare_sb.synthetic import make_tiny_ssl_model
    >>> source = make_tiny_ssl_model(str(getfixture("tmpdir") / "w"), "whisper")
    >>> encoder = WhisperEncoder(source, save_path=str(getfixture("tmpdir")))
    >>> wavs, lens = torch.randn(2, 16000), torch.tensor([1.0, 0.5])
    >>> feats = encoder(wavs, lens)
    >>> feats.shape, encoder.output_size, encoder.num_layers
    (torch.Size([2, 50, 32]), 32, 3)
    >>> float(feats[1, 25:].abs().sum())
    0.0
    >>> encoder.feature_lengths(
    ...     lens, 16000, 50
    ... ) * 50  # 8000 samples -> 25 frames
    tensor([50., 25.])
    >>> WhisperEncoder(source, str(getfixture("tmpdir")), layer="all")(
    ...     wavs, lens
    ... ).shape
    torch.Size([3, 2, 50, 32])
    >>> encoder.train().model.training
    False
    """

    def __init__(
        self,
        source,
        save_path="pretrained_models",
        freeze=True,
        layer=None,
        sampling_rate=16000,
    ):
        check_ssl_source(source)
        with explain_load_errors(source):
            super().__init__(
                source,
                save_path,
                sampling_rate=sampling_rate,
                encoder_only=True,
                freeze=freeze,
                output_all_hiddens=layer is not None,
            )
        config = self.model.config
        num_hidden = config.encoder_layers + 1
        check_layer(layer, num_hidden, source)
        self.layer = layer
        self.num_layers = num_hidden
        self.source = source
        self.output_size = config.d_model
        # Waveform samples per encoder frame: the mel hop times the conv strides.
        encoder = self.model.encoder
        self.samples_per_frame = (
            self._hop_length * encoder.conv1.stride[0] * encoder.conv2.stride[0]
        )

    def override_config(self, config):
        """Disables LayerDrop, so every forward pass yields every hidden state.

        Arguments
        ---------
        config : transformers.WhisperConfig
            The loaded config.

        Returns
        -------
        transformers.WhisperConfig
            The same config, modified.
        """
        config.encoder_layerdrop = 0.0
        config.decoder_layerdrop = 0.0
        return config

    def freeze_model(self, model):
        """Freezes every parameter and puts the model in eval mode.

        SpeechBrain's Whisper lobe leaves a frozen model in train mode, so
        dropout would change the features of a frozen encoder.

        Arguments
        ---------
        model : transformers.WhisperModel
            The loaded model.
        """
        model.eval()
        for param in model.parameters():
            param.requires_grad = False

    def train(self, mode=True):
        """Sets training mode, keeping a frozen model in eval mode.

        Arguments
        ---------
        mode : bool
            Training mode for the trainable parts.

        Returns
        -------
        WhisperEncoder
            self.
        """
        super().train(mode)
        if self.freeze:
            self.model.eval()
        return self

    def log_mel_spectrogram(self, audio, padding=0):
        """Whisper's log-mel features, normalised per clip.

        Arguments
        ---------
        audio : torch.Tensor
            ``[N, samples]`` 16 kHz waveforms.
        padding : int
            Zeros appended to every waveform first.

        Returns
        -------
        torch.Tensor
            ``[N, n_mels, samples // hop]``.
        """
        if padding > 0:
            audio = torch.nn.functional.pad(audio, (0, padding))
        window = torch.hann_window(self._n_fft, device=audio.device)
        stft = torch.stft(
            audio,
            self._n_fft,
            self._hop_length,
            window=window,
            return_complex=True,
        )
        magnitudes = stft[..., :-1].abs() ** 2
        log_spec = torch.clamp(
            self._mel_filters @ magnitudes, min=1e-10
        ).log10()
        # The clamp is relative to each clip's own maximum (not the batch's).
        clip_max = log_spec.amax(dim=(-2, -1), keepdim=True)
        log_spec = torch.maximum(log_spec, clip_max - _LOG_MEL_RANGE)
        return (log_spec + 4.0) / 4.0

    def forward(self, wavs, wav_lens=None):
        """Encodes a padded batch.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]`` waveforms.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths (SpeechBrain convention).

        Returns
        -------
        torch.Tensor
            ``[B, T, C]``, or ``[L + 1, B, T, C]`` with ``layer="all"``, where
            ``T = ceil(samples / 320)``; frames past a clip's length
            (:meth:`feature_lengths`) are zero.
        """
        if self.freeze:
            with torch.no_grad():
                return self.extract_features(wavs, wav_lens)
        return self.extract_features(wavs, wav_lens)

    def extract_features(self, wavs, wav_lens=None):
        """Encodes a padded batch (see :meth:`forward`).

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]`` waveforms.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths.

        Returns
        -------
        torch.Tensor
            ``[B, T, C]`` or ``[L + 1, B, T, C]``.
        """
        batch, total = wavs.shape
        if wav_lens is None:
            wav_lens = torch.ones(batch, device=wavs.device)
        num_samples = (
            torch.round(wav_lens * total).long().clamp(min=1, max=total)
        )
        sample_mask = (
            torch.arange(total, device=wavs.device)[None, :]
            < num_samples[:, None]
        )
        # Past its end a clip sees exactly the zeros Whisper pads with.
        wavs = wavs.masked_fill(~sample_mask, 0.0)

        num_windows = max(1, math.ceil(total / self._n_samples))
        wavs = torch.nn.functional.pad(
            wavs, (0, num_windows * self._n_samples - total)
        )
        mel = self.log_mel_spectrogram(
            wavs.reshape(batch * num_windows, self._n_samples)
        )
        feats = self.encode_mel(mel)

        # [..., B * windows, frames, C] -> [..., B, windows * frames, C]
        feats = feats.reshape(*feats.shape[:-3], batch, -1, feats.shape[-1])
        frames = min(math.ceil(total / self.samples_per_frame), feats.shape[-2])
        feats = feats[..., :frames, :]
        valid_frames = self.num_frames(num_samples, frames)
        valid = (
            torch.arange(frames, device=feats.device)[None, :]
            < valid_frames[:, None]
        )
        return feats.masked_fill(~valid.unsqueeze(-1), 0.0)

    def layers_run(self):
        """How many encoder layers a forward pass runs (the highest one read).

        Returns
        -------
        int
        """
        return highest_layer(self.layer, self.num_layers)

    def encode_mel(self, mel):
        """Runs the encoder up to the highest layer read; returns the selection.

        Hidden state ``k < L`` is the output of layer ``k - 1``: the encoder
        runs ``k`` layers without its final layer norm and returns it as
        ``last_hidden_state`` (no hidden states recorded). Hidden state ``L``
        is the last hidden state (after the norm).

        Arguments
        ---------
        mel : torch.Tensor
            ``[N, n_mels, 3000]`` log-mel windows.

        Returns
        -------
        torch.Tensor
            ``[N, frames, C]`` or ``[len, N, frames, C]``.
        """
        encoder = self.model.encoder
        layer = normalise_layers(self.layer, self.num_layers)
        last = self.num_layers - 1
        run = self.layers_run()
        if layer is None or layer == last:
            return encoder(mel).last_hidden_state
        if isinstance(layer, int):
            with first_layers(encoder, run, drop_final_norm=True):
                return encoder(mel).last_hidden_state
        run = max(run, 1)  # hidden state 0 is recorded as layer 0's input
        with first_layers(encoder, run, drop_final_norm=run < last):
            out = encoder(mel, output_hidden_states=hidden_state_request(layer))
        if layer == "all":
            return torch.stack(list(out.hidden_states), dim=0)
        return torch.stack([out.hidden_states[i] for i in layer], dim=0)

    def num_frames(self, num_samples, max_frames):
        """Valid frames of clips of ``num_samples`` samples: one per started 320.

        Arguments
        ---------
        num_samples : torch.Tensor
            ``[B]`` integer numbers of valid samples.
        max_frames : int
            Frames of the padded batch.

        Returns
        -------
        torch.Tensor
            ``[B]`` integer numbers of valid frames, in ``[1, max_frames]``.
        """
        frames = torch.div(
            num_samples + self.samples_per_frame - 1,
            self.samples_per_frame,
            rounding_mode="floor",
        )
        return frames.clamp(min=1, max=max_frames)

    def feature_lengths(self, wav_lens, num_samples, num_frames):
        """Exact relative frame lengths of a padded batch (see :meth:`num_frames`).

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
            functools.partial(self.num_frames, max_frames=num_frames),
        )
