"""Voice activity detection with Silero VAD, whose model ships in its wheel.

One detector for the project: the active-speech SNR of the noisy test sets
and the speech-only scoring of long recordings both ask it where the speech
is. ``silero-vad`` from PyPI carries its model file, so nothing is downloaded
at run time.

Authors
 * emoshare_sb contributors 2026
"""

import hashlib
import json
import os
import threading
import warnings

import torch
import torchaudio

from emoshare_sb.utils.io import write_json

VAD_SAMPLE_RATE = 16000
SILERO_RATES = (8000, 16000)

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
        ``[samples]`` mono waveform at ``sample_rate``.
    sample_rate : int
        The signal's rate; other rates than Silero's 8 and 16 kHz are
        resampled to 16 kHz for the detector, and the regions mapped back.
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
    if sample_rate not in SILERO_RATES:
        resampled = torchaudio.functional.resample(
            signal, sample_rate, VAD_SAMPLE_RATE
        )
        regions = speech_regions(
            resampled,
            VAD_SAMPLE_RATE,
            threshold,
            min_speech_seconds,
            min_silence_seconds,
            pad_seconds,
        )
        ratio = sample_rate / VAD_SAMPLE_RATE
        return [
            (int(start * ratio), min(int(round(end * ratio)), len(signal)))
            for start, end in regions
        ]
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


class SpeechRegionCache:
    """:func:`speech_regions`, computed once per clip and kept on disk.

    The key is a SHA-256 of the clip's samples, its rate and the detector
    settings, so a changed clip or setting is detected again, and the same
    clip always gets the regions first found for it (in any process, run or
    batch). Entries are written atomically, one small JSON file each.

    Arguments
    ---------
    folder : str, optional
        Where the entries live; None keeps them in memory only.
    **options
        Passed to :func:`speech_regions`.

    Example
    -------
    >>> cache = SpeechRegionCache(str(getfixture("tmpdir") / "vad"))
    >>> cache(torch.zeros(16000), 16000)
    []
    >>> len(os.listdir(cache.folder))
    1
    """

    def __init__(self, folder=None, **options):
        self.folder = folder
        self.options = options
        self._memory = {}

    def __call__(self, signal, sample_rate=VAD_SAMPLE_RATE):
        """The speech regions of ``signal``.

        Arguments
        ---------
        signal : torch.Tensor
            ``[samples]`` mono waveform.
        sample_rate : int
            Its rate.

        Returns
        -------
        list of tuple
            ``(start, end)`` sample indices, as :func:`speech_regions`.
        """
        signal = torch.as_tensor(signal, dtype=torch.float32).flatten()
        key = self._key(signal, sample_rate)
        if key in self._memory:
            return self._memory[key]
        path = None
        if self.folder is not None:
            path = os.path.join(self.folder, f"{key}.json")
            regions = _read_entry(path)
            if regions is not None:
                self._memory[key] = regions
                return regions
        regions = speech_regions(signal, sample_rate, **self.options)
        if path is not None:
            os.makedirs(self.folder, exist_ok=True)
            write_json(path, {"regions": [list(r) for r in regions]})
        self._memory[key] = regions
        return regions

    def _key(self, signal, sample_rate):
        digest = hashlib.sha256()
        settings = json.dumps(
            {"sample_rate": sample_rate, **self.options}, sort_keys=True
        )
        digest.update(settings.encode())
        digest.update(signal.contiguous().numpy().tobytes())
        return digest.hexdigest()


def _read_entry(path):
    """The regions stored at ``path``; None when absent or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            return [tuple(region) for region in json.load(handle)["regions"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
