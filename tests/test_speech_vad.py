"""espeak-ng synthesis and Silero VAD: real speech is found, silence is not."""

import numpy as np
import torch
import torchaudio

from emoshare_sb.data.vad import speech_mask, speech_regions
from emoshare_sb.synthetic.speech import speak


def _speech_between_silences(seconds=1.0):
    wav, rate = speak("Hello, this is a short test of the speech detector.")
    speech = torchaudio.functional.resample(torch.from_numpy(wav), rate, 16000)
    silence = torch.zeros(int(seconds * 16000))
    return torch.cat([silence, speech, silence]), len(silence), len(speech)


def test_speak_follows_its_prosody_settings():
    slow, rate = speak("One two three four five.", rate=100)
    fast, _ = speak("One two three four five.", rate=300)
    assert rate == 22050
    assert len(slow) > 1.8 * len(fast)  # words per minute set the duration
    assert np.abs(slow).max() <= 1.0


def test_vad_finds_the_speech_and_not_the_silence():
    signal, lead, length = _speech_between_silences()
    regions = speech_regions(signal)
    assert regions, "no speech found in synthesised speech"
    mask = speech_mask(signal)
    # Nothing in the leading or trailing second, but for the detector's
    # onset margin and its hangover of about 0.1 s after speech ends.
    margin = int(0.2 * 16000)
    assert not mask[: lead - margin].any()
    assert not mask[lead + length + margin :].any()
    # Most of the utterance is marked speech.
    assert mask[lead : lead + length].float().mean() > 0.7
    assert speech_regions(torch.zeros(32000)) == []
