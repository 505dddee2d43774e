"""Real synthesised speech, offline: espeak-ng through its PyPI wheel.

``espeakng-loader`` ships the espeak-ng shared library and its voice data in
a wheel, so speech can be synthesised with no download at run time and no
system package. This module binds the few calls of the espeak-ng C API that
synthesis needs (``espeak_Initialize``, ``espeak_SetParameter``,
``espeak_Synth``) with :mod:`ctypes` and returns the waveform as an array.

Unlike the tones of :mod:`emoshare_sb.synthetic.compare23`, the result is
speech: a voice activity detector finds it, and its prosody (rate, pitch,
pitch range, pauses) is set per utterance.

Authors
 * emoshare_sb contributors 2026
"""

import ctypes
import os
import threading

import numpy as np

# espeak-ng's constants (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 0x02
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_PARAMETERS = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

# espeak-ng keeps global state: one process-wide engine, one caller at a time.
_LOCK = threading.Lock()
_ENGINE = {}


class SpeechSynthesisError(RuntimeError):
    """espeak-ng is missing or refused a request."""


def _engine():
    """Loads and initialises espeak-ng once per process; returns (lib, rate)."""
    if _ENGINE:
        return _ENGINE["lib"], _ENGINE["sample_rate"]
    try:
        import espeakng_loader
    except ImportError as error:
        raise SpeechSynthesisError(
            "speech synthesis needs espeak-ng: pip install espeakng-loader"
        ) from error
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
    ]
    lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
    ]
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    # espeak_Initialize takes the folder that holds espeak-ng-data.
    data_parent = os.path.dirname(espeakng_loader.get_data_path())
    sample_rate = lib.espeak_Initialize(
        _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent.encode(), 0
    )
    if sample_rate <= 0:
        raise SpeechSynthesisError(
            f"espeak-ng failed to initialise with data in {data_parent}"
        )
    _ENGINE.update(lib=lib, sample_rate=sample_rate)
    return lib, sample_rate


def speak(
    text, voice="en", rate=175, pitch=50, pitch_range=50, word_gap=0, volume=100
):
    """Synthesises ``text`` with espeak-ng and returns the waveform.

    Arguments
    ---------
    text : str
        What to say. Commas and full stops give pauses.
    voice : str
        An espeak-ng voice name (``en``, ``en-us``, ``de``, ...).
    rate : int
        Speaking rate in words per minute (80 to 450).
    pitch : int
        Base pitch, 0 to 100.
    pitch_range : int
        Pitch range (intonation), 0 (monotone) to 100.
    word_gap : int
        Extra pause between words, in units of 10 ms.
    volume : int
        Amplitude, 0 to 200.

    Returns
    -------
    waveform : numpy.ndarray
        ``[samples]`` float32 in [-1, 1].
    sample_rate : int
        espeak-ng's output rate (22050 Hz).

    Example
    -------
    >>> wav, rate = speak("Hello there.", rate=160, pitch=60)
    >>> rate, wav.dtype, 0.3 < len(wav) / rate < 3.0
    (22050, dtype('float32'), True)
    """
    settings = {
        "rate": rate,
        "pitch": pitch,
        "range": pitch_range,
        "wordgap": word_gap,
        "volume": volume,
    }
    chunks = []

    def collect(samples, num_samples, _events):
        """espeak-ng's synthesis callback: keeps a copy of each chunk of samples."""
        if num_samples > 0:
            chunks.append(np.ctypeslib.as_array(samples, (num_samples,)).copy())
        return 0

    callback = _SYNTH_CALLBACK(collect)
    encoded = text.encode("utf-8") + b"\0"
    with _LOCK:
        lib, sample_rate = _engine()
        lib.espeak_SetSynthCallback(callback)
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise SpeechSynthesisError(f"espeak-ng has no voice '{voice}'")
        for name, value in settings.items():
            lib.espeak_SetParameter(_PARAMETERS[name], int(value), 0)
        status = lib.espeak_Synth(
            encoded, len(encoded), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8,
            None, None,
        )  # fmt: skip
        if status != 0:
            raise SpeechSynthesisError(
                f"espeak-ng could not synthesise {text!r} (status {status})"
            )
    waveform = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return waveform.astype(np.float32) / 32768.0, sample_rate
