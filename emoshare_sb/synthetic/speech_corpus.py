"""A corpus of real synthesised speech in the ComParE 2023 layout.

The demo corpus of :mod:`emoshare_sb.synthetic.compare23` is made of tones;
this one is speech, synthesised offline by espeak-ng
(:func:`emoshare_sb.synthetic.speech.speak`). Each clip draws a point in a
4-D prosody space, the way acted emotion moves it: speaking rate, pitch,
pitch range (intonation) and pauses between words. The point sets how the
clip is spoken, and its 9 emotion shares are a smooth function of the same
point (one prototype per emotion, max-normalised as ComParE ships them).
What is said (one of many sentences) and who says it (voices and variants)
are drawn independently of the labels, so a system scores well only if it
hears prosody, as a system must on real emotional speech.

Command line: ``python -m emoshare_sb.synthetic --speech DIR``.

Authors
 * emoshare_sb contributors 2026
"""

import os

import numpy as np
import soundfile
from scipy.signal import resample_poly

from emoshare_sb.data.audio import SAMPLE_RATE
from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS
from emoshare_sb.synthetic.compare23 import _write_rows, emotion_shares
from emoshare_sb.synthetic.speech import speak

# Prosody space: rate, pitch, pitch range, pauses (each in [0, 1]).
PROSODY = ("rate", "pitch", "pitch_range", "pauses")
# One prototype per emotion, in the order of COMPARE23_EMOTIONS.
SPEECH_PROTOTYPES = np.array(
    [
        [0.85, 0.75, 0.80, 0.05],  # Anger: fast, high, wide, no pauses
        [0.15, 0.25, 0.10, 0.70],  # Boredom: slow, low, flat, pauses
        [0.30, 0.35, 0.30, 0.40],  # Calmness
        [0.50, 0.45, 0.20, 0.20],  # Concentration: even, flat
        [0.65, 0.55, 0.55, 0.10],  # Determination
        [0.90, 0.95, 0.95, 0.15],  # Excitement: fast, high, very wide
        [0.60, 0.70, 0.70, 0.30],  # Interest
        [0.20, 0.15, 0.25, 0.85],  # Sadness: slow, low, long pauses
        [0.05, 0.10, 0.05, 0.95],  # Tiredness: slowest, lowest, flattest
    ]
)
SENTENCES = (
    "The meeting starts at nine, and nobody knows why.",
    "I left the keys on the kitchen table this morning.",
    "We will take the train to the coast tomorrow.",
    "Have you seen the letter that came yesterday?",
    "The results are in, and they are not what we expected.",
    "She painted the fence blue before the summer ended.",
    "Please close the window, it is getting cold in here.",
    "My brother plays the piano every evening after dinner.",
    "The new library opens next week on the main square.",
    "They moved the concert to Saturday because of the rain.",
    "I think the bus is late again today.",
    "Nobody told me the shop was closed on Mondays.",
    "The children built a castle out of sand and shells.",
    "We need to finish the report before the end of the month.",
    "He found an old photograph inside the book.",
    "The garden looks different after all that rain.",
    "Can you call me back when you get home?",
    "The price of coffee went up again this year.",
    "Our neighbours adopted a small grey cat.",
    "The road to the village is closed for repairs.",
    "I have never seen so many stars in the sky.",
    "Turn left at the bridge and follow the river.",
    "The film was longer than anyone had expected.",
    "We talked about the weather for almost an hour.",
)
VOICES = (
    "en",
    "en-us",
    "en-gb-x-rp",
    "en-029",
    "en+f2",
    "en+f3",
    "en+m3",
    "en+m7",
    "en+klatt",
)


def prosody_settings(point):
    """espeak-ng settings of a point of the prosody space.

    Arguments
    ---------
    point : numpy.ndarray
        ``[4]`` rate, pitch, pitch range, pauses, each in [0, 1].

    Returns
    -------
    dict
        Keyword arguments of :func:`emoshare_sb.synthetic.speech.speak`.

    Example
    -------
    >>> prosody_settings(np.array([0.0, 1.0, 0.5, 1.0]))
    {'rate': 110, 'pitch': 85, 'pitch_range': 50, 'word_gap': 30}
    """
    rate, pitch, pitch_range, pauses = np.clip(point, 0.0, 1.0)
    return {
        "rate": int(round(110 + 190 * rate)),  # 110 to 300 words per minute
        "pitch": int(round(15 + 70 * pitch)),
        "pitch_range": int(round(5 + 90 * pitch_range)),
        "word_gap": int(round(30 * pauses)),  # up to 300 ms between words
    }


def speak_clip(point, sentence, voice, rng, noise_db=-45.0):
    """Speaks ``sentence`` with the prosody of ``point``, at 16 kHz.

    Arguments
    ---------
    point : numpy.ndarray
        ``[4]`` prosody (see :func:`prosody_settings`).
    sentence : str
        What is said.
    voice : str
        espeak-ng voice (and variant).
    rng : numpy.random.Generator
        For the leading/trailing silence, the level and the noise.
    noise_db : float
        Level of the background noise relative to full scale.

    Returns
    -------
    numpy.ndarray
        ``[samples]`` float32 at 16 kHz.

    Example
    -------
    >>> wav = speak_clip(
    ...     np.full(4, 0.5), SENTENCES[0], "en", np.random.default_rng(0)
    ... )
    >>> wav.dtype, 1.0 < len(wav) / 16000 < 6.0
    (dtype('float32'), True)
    """
    wav, rate = speak(sentence, voice=voice, **prosody_settings(point))
    wav = resample_poly(wav, SAMPLE_RATE, rate).astype(np.float32)
    level = 10 ** (rng.uniform(-6.0, 0.0) / 20)
    wav = wav / max(np.abs(wav).max(), 1e-6) * 0.7 * level
    pad = [int(rng.uniform(0.05, 0.3) * SAMPLE_RATE) for _ in range(2)]
    wav = np.pad(wav, pad)
    noise = rng.standard_normal(len(wav)).astype(np.float32)
    return wav + noise * np.float32(10 ** (noise_db / 20))


def make_speech_corpus(
    folder,
    n_train=200,
    n_devel=60,
    n_test=60,
    seed=0,
    test_labels=True,
    width=0.12,
):
    """Writes a corpus of synthesised speech in the ComParE 2023 layout.

    ``wav/NNNNN.wav`` (16 kHz mono 16-bit) and ``lab/{train,devel,test}.csv``
    with the real header, test labels ``?`` (and, with ``test_labels``, the
    true ones in ``lab/test.unmasked.csv``), plus ``lab/prosody.csv``: each
    clip's prosody point, sentence and voice, for analysis.

    Arguments
    ---------
    folder : str
        The corpus root to create.
    n_train, n_devel, n_test : int
        Clips per split.
    seed : int
        Random seed; the same seed gives the same corpus.
    test_labels : bool
        Also write ``lab/test.unmasked.csv``.
    width : float
        Spread of each emotion around its prototype (see
        :func:`emoshare_sb.synthetic.compare23.emotion_shares`).

    Returns
    -------
    str
        ``folder``.

    Example
    -------
    >>> root = make_speech_corpus(str(getfixture("tmpdir")), 2, 1, 1)
    >>> sorted(os.listdir(os.path.join(root, "lab")))
    ['devel.csv', 'prosody.csv', 'test.csv', 'test.unmasked.csv', 'train.csv']
    """
    rng = np.random.default_rng(seed)
    for subfolder in ("wav", "lab"):
        os.makedirs(os.path.join(folder, subfolder), exist_ok=True)
    header = ["filename"] + COMPARE23_EMOTIONS
    prosody_rows = []
    index = 1
    for split, count in (
        ("train", n_train),
        ("devel", n_devel),
        ("test", n_test),
    ):
        rows, true_rows = [], []
        for _ in range(count):
            name = f"{index:05d}.wav"
            index += 1
            point = rng.uniform(0.0, 1.0, size=len(PROSODY))
            sentence = SENTENCES[rng.integers(len(SENTENCES))]
            voice = VOICES[rng.integers(len(VOICES))]
            # The clip's silence, level and noise come from its own stream:
            # espeak-ng's output length varies by a few samples with what it
            # synthesised before in the process, and must not shift the
            # draws of the labels that follow.
            clip_rng = np.random.default_rng([seed, index])
            soundfile.write(
                os.path.join(folder, "wav", name),
                speak_clip(point, sentence, voice, clip_rng),
                SAMPLE_RATE,
                subtype="PCM_16",
            )
            shares = [
                f"{v:.4f}".rstrip("0").rstrip(".")
                for v in emotion_shares(point, SPEECH_PROTOTYPES, width)
            ]
            true_rows.append([name] + shares)
            rows.append(
                [name] + (["?"] * len(shares) if split == "test" else shares)
            )
            prosody_rows.append(
                [name, split, *(f"{v:.4f}" for v in point), voice, sentence]
            )
        lab = os.path.join(folder, "lab")
        _write_rows(os.path.join(lab, f"{split}.csv"), header, rows)
        if split == "test" and test_labels:
            _write_rows(
                os.path.join(lab, "test.unmasked.csv"), header, true_rows
            )
    _write_rows(
        os.path.join(folder, "lab", "prosody.csv"),
        ["filename", "split", *PROSODY, "voice", "sentence"],
        prosody_rows,
    )
    return folder


if __name__ == "__main__":
    from emoshare_sb.synthetic.cli import generator_main

    generator_main("speech")
