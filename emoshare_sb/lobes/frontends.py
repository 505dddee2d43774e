"""Hand-crafted front-ends (log mel filterbanks, MFCCs) as drop-in SSL replacements.

:class:`FbankFrontEnd` and :class:`MFCCFrontEnd` are SpeechBrain's
:class:`speechbrain.lobes.features.Fbank` and
:class:`~speechbrain.lobes.features.MFCC` followed by SpeechBrain's
per-utterance :class:`~speechbrain.processing.features.InputNormalization`
(``norm_type="sentence"``). They take what
:class:`emoshare_sb.lobes.ssl.SSLEncoder` takes, ``(wavs [B, samples],
wav_lens [B])``, return ``[B, T, n_feats]`` and have an ``output_size``
attribute, so a recipe switches between SSL features and acoustic features by
changing the encoder alone.

What SpeechBrain's modules lack, and is added here, is that a clip gives the
same features whatever it is batched with:

* samples past a clip's end are zeroed, so the centred STFT frames at its end
  see the zeros an unpadded clip is padded with;
* the number of valid frames is computed exactly from the number of samples
  (``1 + samples // hop``), and padded frames are returned as zeros;
* deltas see the last valid frame repeated (SpeechBrain's ``replicate``
  border) rather than the padding (SpeechBrain's ``Deltas`` has no lengths);
* the normalisation gets relative lengths that select exactly the valid
  frames: ``InputNormalization`` builds its mask with
  ``make_padding_mask``, whose ``lengths * T - 1e-6`` admits one padded frame
  for 5,691 of the 179,101 ``(n, T)`` pairs with ``T < 600`` (float32
  ``n / T * T`` exceeds ``n`` by more than 1e-6). The fix is the upstream
  patch ``upstream/make-padding-mask-rounding``; until it is merged,
  :func:`emoshare_sb.nnet.pooling.exact_relative_lengths` is passed.

Authors
 * emoshare_sb contributors 2026
"""

import functools

import torch
from speechbrain.lobes.features import MFCC, Fbank
from speechbrain.processing.features import Deltas, InputNormalization

from emoshare_sb.lobes import relative_frame_lengths, valid_samples
from emoshare_sb.nnet.pooling import exact_relative_lengths


def _repeat_last_valid(x, num_frames):
    """Fills the padded frames of ``x`` ``[B, T, F]`` with each clip's last valid frame."""
    time = torch.arange(x.shape[1], device=x.device)
    index = torch.minimum(time[None, :], (num_frames - 1)[:, None])
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


class _SpectralFrontEnd(torch.nn.Module):
    """Static features -> optional deltas -> per-utterance normalisation.

    Subclasses name the SpeechBrain feature class (``features_class``); every
    keyword argument other than those below is that class's (its own
    defaults apply), except ``deltas`` and ``context``, which are done here.
    """

    features_class = None

    def __init__(
        self, deltas=False, normalize=True, std_norm=True, eps=1e-5, **options
    ):
        super().__init__()
        self.features = self.features_class(
            deltas=False, context=False, **options
        )
        stft = self.features.compute_STFT
        # The number of static features, whatever the options: one frame's.
        static_size = self.features(torch.zeros(1, stft.n_fft)).shape[-1]
        self.deltas = deltas
        if deltas:
            self.compute_deltas = Deltas(input_size=static_size)
        self.normalize = normalize
        if normalize:
            self.normalizer = InputNormalization(
                norm_type="sentence", std_norm=std_norm, epsilon=eps
            )
        self.output_size = static_size * (3 if deltas else 1)
        self.hop_samples = stft.hop_length
        self.center = stft.center
        self.win_samples = stft.win_length

    def num_frames(self, num_samples, max_frames):
        """Valid frames of clips of ``num_samples`` samples ``[B]`` (exact STFT count).

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
        if self.center:
            frames = 1 + num_samples // self.hop_samples
        else:
            frames = 1 + (num_samples - self.win_samples) // self.hop_samples
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

    def forward(self, wavs, wav_lens=None):
        """Computes normalised features of a padded batch.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]`` waveforms.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths (SpeechBrain convention).

        Returns
        -------
        torch.Tensor
            ``[B, T, output_size]``, zero on padded frames.
        """
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0], device=wavs.device)
        total = wavs.shape[1]
        num_samples = valid_samples(wav_lens, total)
        sample_mask = (
            torch.arange(total, device=wavs.device)[None, :]
            < num_samples[:, None]
        )
        feats = self.features(wavs.masked_fill(~sample_mask, 0.0))

        num_frames = self.num_frames(num_samples, feats.shape[1])
        mask = (
            torch.arange(feats.shape[1], device=feats.device)[None, :]
            < num_frames[:, None]
        )
        if self.deltas:
            feats = _repeat_last_valid(feats, num_frames)
            delta1 = self.compute_deltas(feats)
            delta2 = self.compute_deltas(_repeat_last_valid(delta1, num_frames))
            feats = torch.cat([feats, delta1, delta2], dim=2)
        if self.normalize:
            feats = self.normalizer(feats, exact_relative_lengths(mask))
        return feats.masked_fill(~mask.unsqueeze(-1), 0.0)


class FbankFrontEnd(_SpectralFrontEnd):
    """Log mel filterbank features with per-utterance normalisation.

    SpeechBrain's ``Fbank`` defaults are the acoustic features of Mohapatra
    et al. (2023): 40 mel filters from 0 to 8 kHz, 25 ms windows (10 ms hop).

    Arguments
    ---------
    deltas : bool
        Append first and second time derivatives.
    normalize : bool
        Per-utterance mean (and variance) normalisation over valid frames.
    std_norm : bool
        Also normalise the variance.
    eps : float
        Lower bound of the standard deviation.
    **options
        Arguments of :class:`speechbrain.lobes.features.Fbank` (``n_mels``,
        ``win_length`` and ``hop_length`` in ms, ``n_fft``, ``f_min``,
        ``f_max``, ``sample_rate``, ...).

    Example
    -------
    >>> frontend = FbankFrontEnd()
    >>> wavs, lens = torch.randn(2, 16000), torch.tensor([1.0, 0.5])
    >>> feats = frontend(wavs, lens)
    >>> feats.shape, frontend.output_size
    (torch.Size([2, 101, 40]), 40)
    >>> float(feats[1, 51:].abs().sum())
    0.0
    """

    features_class = Fbank


class MFCCFrontEnd(_SpectralFrontEnd):
    """MFCC features with per-utterance normalisation.

    SpeechBrain's ``MFCC`` adds deltas and an 11-frame context window by
    default (660 features); here deltas are optional (and padding-aware) and
    the context window is left to the aggregator.

    Arguments
    ---------
    deltas : bool
        Append first and second time derivatives.
    normalize : bool
        Per-utterance mean (and variance) normalisation over valid frames.
    std_norm : bool
        Also normalise the variance.
    eps : float
        Lower bound of the standard deviation.
    **options
        Arguments of :class:`speechbrain.lobes.features.MFCC` (``n_mfcc``,
        ``n_mels``, ``win_length`` and ``hop_length`` in ms, ``n_fft``,
        ``f_min``, ``f_max``, ``sample_rate``, ...).

    Example
    -------
    >>> frontend = MFCCFrontEnd(deltas=True)
    >>> frontend(torch.randn(2, 8000), torch.tensor([1.0, 0.7])).shape
    torch.Size([2, 51, 60])
    >>> frontend.output_size
    60
    """

    features_class = MFCC
