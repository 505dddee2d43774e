"""Hand-crafted front-ends (log mel filterbanks, MFCCs) as drop-in SSL replacements.

Both wrap SpeechBrain's :class:`speechbrain.lobes.features.Fbank` and
:class:`~speechbrain.lobes.features.MFCC` and add per-utterance mean and
variance normalisation computed over each clip's valid frames only. They take
what :class:`emoshare_sb.lobes.ssl.SSLEncoder` takes, ``(wavs [B, samples],
wav_lens [B])``, return ``[B, T, n_feats]`` and have an ``output_size``
attribute, so a recipe switches between SSL features and acoustic features by
changing the encoder alone.

A clip gives the same features whatever it is batched with: samples past its
end are zeroed (so the centred STFT frames at its end see the zeros an
unpadded clip is padded with), the number of valid frames is computed exactly
from the number of samples (``1 + samples // hop``), deltas see the last valid
frame repeated (SpeechBrain's ``replicate`` border) rather than the padding,
and the statistics skip the padded frames. Padded frames are returned as
zeros.

Authors
 * emoshare_sb contributors 2026
"""

import torch
from speechbrain.lobes.features import MFCC, Fbank
from speechbrain.processing.features import Deltas


def _repeat_last_valid(x, num_frames):
    """Fills the padded frames of ``x`` ``[B, T, F]`` with each clip's last valid frame."""
    time = torch.arange(x.shape[1], device=x.device)
    index = torch.minimum(time[None, :], (num_frames - 1)[:, None])
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


class _SpectralFrontEnd(torch.nn.Module):
    """Shared logic: static features -> optional deltas -> masked normalisation."""

    def __init__(self, features, static_size, deltas, normalize, std_norm, eps):
        super().__init__()
        self.features = features
        self.deltas = deltas
        if deltas:
            self.compute_deltas = Deltas(input_size=static_size)
        self.normalize = normalize
        self.std_norm = std_norm
        self.eps = eps
        self.output_size = static_size * (3 if deltas else 1)
        stft = features.compute_STFT
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
        """Exact relative frame lengths of a padded batch.

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
        samples = (
            torch.round(wav_lens * num_samples)
            .long()
            .clamp(min=1, max=num_samples)
        )
        return self.num_frames(samples, num_frames).float() / num_frames

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
        num_samples = (
            torch.round(wav_lens * total).long().clamp(min=1, max=total)
        )
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
            feats = masked_mean_variance_normalize(
                feats, mask, self.std_norm, self.eps
            )
        return feats.masked_fill(~mask.unsqueeze(-1), 0.0)


def masked_mean_variance_normalize(x, mask, std_norm=True, eps=1e-5):
    """Per-utterance, per-feature normalisation over the valid frames.

    Arguments
    ---------
    x : torch.Tensor
        ``[B, T, F]`` features.
    mask : torch.Tensor
        ``[B, T]`` bool, True on valid frames.
    std_norm : bool
        Also divide by the standard deviation (else only remove the mean).
    eps : float
        Lower bound of the standard deviation.

    Returns
    -------
    torch.Tensor
        ``[B, T, F]``; padded frames are not meaningful.

    Example
    -------
    >>> x = torch.tensor([[[1.0], [3.0], [100.0]]])
    >>> mask = torch.tensor([[True, True, False]])
    >>> masked_mean_variance_normalize(x, mask)[0, :2, 0]
    tensor([-1.,  1.])
    """
    weights = mask.unsqueeze(-1).to(x.dtype)
    count = weights.sum(dim=1, keepdim=True)
    mean = (x * weights).sum(dim=1, keepdim=True) / count
    x = x - mean
    if std_norm:
        std = torch.sqrt(((x * weights) ** 2).sum(dim=1, keepdim=True) / count)
        x = x / std.clamp(min=eps)
    return x


class FbankFrontEnd(_SpectralFrontEnd):
    """Log mel filterbank features with per-utterance normalisation.

    The defaults are the acoustic features of Mohapatra et al. (2023): 40 mel
    filters from 0 to 8 kHz, 25 ms windows (10 ms hop).

    Arguments
    ---------
    n_mels : int
        Mel filters.
    win_length : float
        Window length in ms.
    hop_length : float
        Hop length in ms.
    n_fft : int
        FFT size.
    f_min : float
        Lowest filter frequency (Hz).
    f_max : float, optional
        Highest filter frequency (Hz); None is half the sample rate.
    sample_rate : int
        Sample rate of the input (Hz).
    deltas : bool
        Append first and second time derivatives.
    normalize : bool
        Per-utterance mean (and variance) normalisation over valid frames.
    std_norm : bool
        Also normalise the variance.
    eps : float
        Lower bound of the standard deviation.

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

    def __init__(
        self,
        n_mels=40,
        win_length=25,
        hop_length=10,
        n_fft=400,
        f_min=0,
        f_max=None,
        sample_rate=16000,
        deltas=False,
        normalize=True,
        std_norm=True,
        eps=1e-5,
    ):
        features = Fbank(
            deltas=False,
            context=False,
            sample_rate=sample_rate,
            f_min=f_min,
            f_max=f_max,
            n_fft=n_fft,
            n_mels=n_mels,
            win_length=win_length,
            hop_length=hop_length,
        )
        super().__init__(features, n_mels, deltas, normalize, std_norm, eps)


class MFCCFrontEnd(_SpectralFrontEnd):
    """MFCC features with per-utterance normalisation.

    SpeechBrain's ``MFCC`` adds deltas and an 11-frame context window by
    default (660 features); here deltas are optional and the context window
    is left to the aggregator.

    Arguments
    ---------
    n_mfcc : int
        Cepstral coefficients.
    n_mels : int
        Mel filters the coefficients are computed from.
    win_length : float
        Window length in ms.
    hop_length : float
        Hop length in ms.
    n_fft : int
        FFT size.
    f_min : float
        Lowest filter frequency (Hz).
    f_max : float, optional
        Highest filter frequency (Hz); None is half the sample rate.
    sample_rate : int
        Sample rate of the input (Hz).
    deltas : bool
        Append first and second time derivatives.
    normalize : bool
        Per-utterance mean (and variance) normalisation over valid frames.
    std_norm : bool
        Also normalise the variance.
    eps : float
        Lower bound of the standard deviation.

    Example
    -------
    >>> frontend = MFCCFrontEnd(deltas=True)
    >>> frontend(torch.randn(2, 8000), torch.tensor([1.0, 0.7])).shape
    torch.Size([2, 51, 60])
    >>> frontend.output_size
    60
    """

    def __init__(
        self,
        n_mfcc=20,
        n_mels=23,
        win_length=25,
        hop_length=10,
        n_fft=400,
        f_min=0,
        f_max=None,
        sample_rate=16000,
        deltas=False,
        normalize=True,
        std_norm=True,
        eps=1e-5,
    ):
        features = MFCC(
            deltas=False,
            context=False,
            sample_rate=sample_rate,
            f_min=f_min,
            f_max=f_max,
            n_fft=n_fft,
            n_mels=n_mels,
            n_mfcc=n_mfcc,
            win_length=win_length,
            hop_length=hop_length,
        )
        super().__init__(features, n_mfcc, deltas, normalize, std_norm, eps)
