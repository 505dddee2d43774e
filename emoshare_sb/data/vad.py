"""Voice activity detection with Silero VAD, whose model ships in its wheel.

One detector for the project: the active-speech SNR of the noisy test sets
and the speech-only scoring of long recordings both ask it where the speech
is. ``silero-vad`` from PyPI carries its model file, so nothing is downloaded
at run time.

Authors
 * emoshare_sb contributors 2026
"""

import threading
import warnings

import torch

VAD_SAMPLE_RATE = 16000

_LOCK = threading.Lock()
_MODEL = {}


class VADUnavailableError(RuntimeError):
    """The ``silero-vad`` package is not installed."""


def _silero():
    """Loads Silero VAD once per process; returns (model, get_speech_timestamps)."""
    if not _MODEL:
        try:
            from silero_vad import get_speech_timestamps, load_silero_vad
        except ImportError as error:
            raise VADUnavailableError(
                "voice activity detection needs silero-vad: "
                "pip install silero-vad"
            ) from error
        with warnings.catch_warnings():
            # Its TorchScript file is loaded with torch.jit.load.
            warnings.simplefilter("ignore", FutureWarning)
            _MODEL.update(model=load_silero_vad(), find=get_speech_timestamps)
    return _MODEL["model"], _MODEL["find"]


def speech_regions(
    signal,
    sample_rate=VAD_SAMPLE_RATE,
    threshold=0.5,
    min_speech_seconds=0.25,
    min_silence_seconds=0.1,
    pad_seconds=0.03,
):
    """Finds the regions of ``signal`` that hold speech.

    Arguments
    ---------
    signal : torch.Tensor
        ``[samples]`` mono waveform at ``sample_rate`` (8 or 16 kHz).
    sample_rate : int
        The signal's rate.
    threshold : float
        Speech probability above which a 32 ms frame is speech.
    min_speech_seconds : float
        Shorter speech bursts are dropped.
    min_silence_seconds : float
        Shorter pauses do not split a region.
    pad_seconds : float
        Margin added on each side of a region.

    Returns
    -------
    list of tuple
        ``(start, end)`` sample indices (end exclusive), in order and
        disjoint; empty when there is no speech.

    Example
    -------
    >>> speech_regions(torch.zeros(16000))
    []
    """
    model, find = _silero()
    signal = torch.as_tensor(signal, dtype=torch.float32).flatten()
    with _LOCK, torch.inference_mode():
        model.reset_states()
        stamps = find(
            signal,
            model,
            sampling_rate=sample_rate,
            threshold=threshold,
            min_speech_duration_ms=int(min_speech_seconds * 1000),
            min_silence_duration_ms=int(min_silence_seconds * 1000),
            speech_pad_ms=int(pad_seconds * 1000),
        )
    return [(int(s["start"]), int(s["end"])) for s in stamps]


def speech_mask(signal, sample_rate=VAD_SAMPLE_RATE, **options):
    """A boolean mask of the samples that :func:`speech_regions` marks speech.

    Arguments
    ---------
    signal : torch.Tensor
        ``[samples]`` mono waveform.
    sample_rate : int
        The signal's rate.
    **options
        Passed to :func:`speech_regions`.

    Returns
    -------
    torch.Tensor
        ``[samples]`` bool.

    Example
    -------
    >>> speech_mask(torch.zeros(8000)).any().item()
    False
    """
    signal = torch.as_tensor(signal).flatten()
    mask = torch.zeros(signal.shape[0], dtype=torch.bool)
    for start, end in speech_regions(signal, sample_rate, **options):
        mask[start:end] = True
    return mask
