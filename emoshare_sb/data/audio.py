"""Reading and shaping audio for SSL encoders.

Built on SpeechBrain 1.1's soundfile-based audio I/O
(``speechbrain.dataio.audio_io``; never ``torchaudio.load``, which needs
torchcodec) and its ``speechbrain.dataio.preprocess.AudioNormalizer`` (the
channel average to mono and the resampling). What they lack, and this module
adds:

* an error that names the file, says what it is (missing, a directory, a
  symbolic link loop, not audio) and what to do: ``audio_io`` raises a
  ``RuntimeError`` that a recipe cannot tell from a bug. :class:`AudioReadError`
  is a :class:`~emoshare_sb.data.errors.DataPrepError`, which the recipes
  print as one line, even when a DataLoader worker raised it;
* the check for NaN and Inf samples, which would otherwise reach the model
  and turn every weight into NaN;
* the zero-padding of clips shorter than the encoders' receptive field.

Authors
 * emoshare_sb contributors 2026
"""

import functools

import torch
from speechbrain.dataio import audio_io
from speechbrain.dataio.preprocess import AudioNormalizer

from emoshare_sb.data.errors import DataPrepError
from emoshare_sb.data.files import path_problem

SAMPLE_RATE = 16000

# The convolutional front-end of wav2vec2/HuBERT/WavLM has a 400-sample
# (25 ms) receptive field: shorter inputs produce no frame at all.
MIN_SAMPLES = 400

# libsndfile subtypes that code integers: their samples are always finite,
# so data preparation reads only their header. Other subtypes (FLOAT, DOUBLE,
# and the lossy codecs, decoded to floats) are read in full once.
INTEGER_SUBTYPE_PREFIXES = (
    "PCM_",
    "ULAW",
    "ALAW",
    "IMA_ADPCM",
    "MS_ADPCM",
    "VOX_ADPCM",
    "NMS_ADPCM",
    "GSM610",
    "G721",
    "G723",
    "DWVW",
    "DPCM",
    "ALAC",
)
RERUN_HINT = (
    "if a manifest lists it, it changed after data preparation: rerun the "
    "recipe, whose data preparation checks every clip; delete "
    "prepare_options.json in the save folder if it says the manifests are "
    "up to date"
)


class AudioReadError(DataPrepError):
    """An audio file that cannot be read, or holds NaN or Inf, with the file named."""


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
    info = _header(path)
    return info.frames / info.sample_rate, info.sample_rate, info.channels


def check_audio(path):
    """The duration of a readable audio file whose samples are all finite.

    The header is always read; the samples only where the file's subtype can
    hold NaN or Inf (floating-point and lossy formats, not the integer PCM
    of the corpora's WAV and FLAC files), so that checking a corpus costs
    about one header read per clip.

    Arguments
    ---------
    path : str
        The audio file.

    Returns
    -------
    float
        Duration in seconds.

    Raises
    ------
    AudioReadError
        When the file is unreadable, empty, or holds a NaN or Inf sample.

    Example
    -------
    >>> import numpy as np, soundfile
    >>> path = str(getfixture("tmpdir") / "nan.wav")
    >>> samples = np.zeros(16000, dtype="float32")
    >>> samples[8000] = np.nan
    >>> soundfile.write(path, samples, 16000, subtype="FLOAT")
    >>> check_audio(path)
    Traceback (most recent call last):
    ...
    emoshare_sb.data.audio.AudioReadError: ...nan.wav: holds 1 non-finite sample (NaN or Inf), the first at 0.500 s
    """
    info = _header(path)
    if not info.subtype.startswith(INTEGER_SUBTYPE_PREFIXES):
        data, rate = _load(path)
        _check_finite(data, rate, path)
    return info.frames / info.sample_rate


@functools.lru_cache(maxsize=4)
def _normalizer(sample_rate):
    return AudioNormalizer(sample_rate=sample_rate, mix="avg-to-mono")


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
        When the file is missing, corrupt or empty, or holds NaN or Inf.

    Example
    -------
    >>> import numpy as np, soundfile
    >>> path = str(getfixture("tmpdir") / "stereo.wav")
    >>> soundfile.write(path, np.zeros((44100, 2), dtype="float32"), 44100)
    >>> read_audio(path).shape
    torch.Size([16000])
    """
    data, file_rate = _load(path)
    if data.shape[0] == 0:
        raise AudioReadError("the audio file holds no samples", path)
    _check_finite(data, file_rate, path, RERUN_HINT)
    signal = _normalizer(sample_rate)(data, file_rate)
    if signal.shape[0] < min_samples:
        signal = torch.nn.functional.pad(
            signal, (0, min_samples - signal.shape[0])
        )
    return signal


def _header(path):
    """The file's ``audio_io.AudioInfo``, or an AudioReadError saying why not."""
    try:
        info = audio_io.info(path)
    except RuntimeError as error:
        raise AudioReadError(
            _unreadable("cannot read audio header", path, error), path
        ) from error
    if info.frames == 0 or info.sample_rate <= 0:
        raise AudioReadError("the audio file holds no samples", path)
    return info


def _load(path):
    """``[frames, channels]`` float32 samples and the rate, or an AudioReadError."""
    try:
        return audio_io.load(
            path, channels_first=False, dtype=torch.float32, always_2d=True
        )
    except RuntimeError as error:
        raise AudioReadError(
            _unreadable("cannot read audio", path, error), path
        ) from error


def _unreadable(what, path, error):
    problem = path_problem(path)
    if problem is not None:
        return f"{what}: the path {problem}; {RERUN_HINT}"
    # audio_io wraps soundfile's error, which says what is wrong with the
    # data after repeating the path.
    detail = str(error.__cause__ or error).replace(
        f"Error opening {str(path)!r}: ", ""
    )
    return f"{what} ({detail})"


def _check_finite(data, sample_rate, path, hint=None):
    finite = torch.isfinite(data).all(dim=1)
    if bool(finite.all()):
        return
    bad = (~finite).nonzero()
    count = bad.shape[0]
    message = (
        f"holds {count} non-finite sample{'s' if count > 1 else ''} (NaN or "
        f"Inf), the first at {int(bad[0]) / sample_rate:.3f} s"
    )
    raise AudioReadError(f"{message}; {hint}" if hint else message, path)


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


def first_window(signal, num_samples):
    """The first ``num_samples`` samples, zero-padded at the end when shorter.

    Atmaja & Sasou's evaluation (the released code's validation and test
    loaders, Table IV): each clip is truncated to the window, or padded with
    zeros to it, and only that is scored.

    Arguments
    ---------
    signal : torch.Tensor
        Shape ``[samples]``.
    num_samples : int
        Window length (> 0).

    Returns
    -------
    torch.Tensor
        Shape ``[num_samples]``.

    Example
    -------
    >>> first_window(torch.arange(1.0, 6.0), 3).tolist()
    [1.0, 2.0, 3.0]
    >>> first_window(torch.ones(2), 4).tolist()
    [1.0, 1.0, 0.0, 0.0]
    """
    if signal.shape[0] >= num_samples:
        return signal[:num_samples]
    return torch.nn.functional.pad(signal, (0, num_samples - signal.shape[0]))
