"""Reading and shaping audio for SSL encoders.

Audio is read with soundfile (never ``torchaudio.load``, which needs
torchcodec), down-mixed to mono and resampled to the encoder's rate.

Authors
 * emoshare_sb contributors 2026
"""

import functools

import soundfile
import torch
import torchaudio

from emoshare_sb.data.errors import DataPrepError

SAMPLE_RATE = 16000

# The convolutional front-end of wav2vec2/HuBERT/WavLM has a 400-sample
# (25 ms) receptive field: shorter inputs produce no frame at all.
MIN_SAMPLES = 400


class AudioReadError(DataPrepError):
    """An audio file that cannot be read, with the file named."""


def audio_info(path):
    """Returns ``(duration_seconds, sample_rate, channels)`` from the file header.

    Arguments
    ---------
    path : str
        The audio file.

    Returns
    -------
    tuple
        Duration in seconds, sample rate in Hz and number of channels.

    Raises
    ------
    AudioReadError
        When the file is missing or not a readable audio file.
    """
    try:
        info = soundfile.info(path)
    except Exception as err:  # soundfile raises several types
        raise AudioReadError(f"cannot read audio header ({err})", path) from err
    if info.frames == 0 or info.samplerate <= 0:
        raise AudioReadError("the audio file holds no samples", path)
    return info.frames / info.samplerate, info.samplerate, info.channels


@functools.lru_cache(maxsize=16)
def _resampler(orig_freq, new_freq):
    return torchaudio.transforms.Resample(orig_freq, new_freq)


def read_audio(path, sample_rate=SAMPLE_RATE, min_samples=MIN_SAMPLES):
    """Reads an audio file as a mono float tensor at ``sample_rate``.

    Multichannel audio is averaged over channels; other sample rates are
    resampled; clips shorter than ``min_samples`` are zero-padded at the end so
    that the encoder yields at least one frame.

    Arguments
    ---------
    path : str
        The audio file (any format libsndfile reads: wav, flac, ogg, ...).
    sample_rate : int
        The sample rate to return.
    min_samples : int
        Shorter signals are zero-padded to this length.

    Returns
    -------
    torch.Tensor
        Shape ``[samples]``, float32.

    Raises
    ------
    AudioReadError
        When the file is missing, corrupt or empty.

    Example
    -------
    >>> import numpy as np
    >>> path = str(getfixture("tmpdir") / "stereo.wav")
    >>> soundfile.write(path, np.zeros((44100, 2), dtype="float32"), 44100)
    >>> read_audio(path).shape
    torch.Size([16000])
    """
    try:
        data, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as err:
        raise AudioReadError(f"cannot read audio ({err})", path) from err
    if data.shape[0] == 0:
        raise AudioReadError("the audio file holds no samples", path)
    signal = torch.from_numpy(data).mean(dim=1)
    if file_rate != sample_rate:
        signal = _resampler(file_rate, sample_rate)(
            signal.unsqueeze(0)
        ).squeeze(0)
    if signal.shape[0] < min_samples:
        signal = torch.nn.functional.pad(
            signal, (0, min_samples - signal.shape[0])
        )
    return signal


def random_crop(signal, num_samples, generator=None):
    """Returns a random window of ``num_samples`` samples, or the whole signal.

    Signals no longer than the window are returned unchanged (they are padded
    and masked at batching time, not here).

    Arguments
    ---------
    signal : torch.Tensor
        Shape ``[samples]``.
    num_samples : int
        Window length; 0 or less returns the whole signal.
    generator : torch.Generator, optional
        Source of randomness.

    Returns
    -------
    torch.Tensor
        Shape ``[min(samples, num_samples)]``.

    Example
    -------
    >>> random_crop(torch.arange(10.0), 4).shape
    torch.Size([4])
    >>> random_crop(torch.arange(3.0), 4).shape
    torch.Size([3])
    """
    if num_samples <= 0 or signal.shape[0] <= num_samples:
        return signal
    start = torch.randint(
        0, signal.shape[0] - num_samples + 1, (1,), generator=generator
    ).item()
    return signal[start : start + num_samples]
