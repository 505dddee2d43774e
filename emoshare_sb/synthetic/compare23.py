"""A generated corpus in the ComParE 2023 Emotion Share layout.

Nothing here downloads anything. The corpus is written in the real corpus'
on-disk layout (see ``shared/FORMATS.md``) and its labels are a smooth
function of audible properties of each clip (pitch, noisiness, loudness
modulation), so a model that learns anything shows it.

Authors
 * emoshare_sb contributors 2026
"""

import csv
import os

import numpy as np
import soundfile

from emoshare_sb.data.audio import SAMPLE_RATE
from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS

# One prototype point per emotion in the 2-D latent space (pitch, noisiness).
_PROTOTYPES = np.array(
    [
        [0.9, 0.9],  # Anger: high, harsh
        [0.1, 0.3],  # Boredom: low, clean
        [0.2, 0.1],  # Calmness
        [0.5, 0.2],  # Concentration
        [0.7, 0.6],  # Determination
        [0.9, 0.4],  # Excitement
        [0.6, 0.3],  # Interest
        [0.3, 0.6],  # Sadness
        [0.1, 0.8],  # Tiredness: low, breathy
    ]
)


def synthesize_clip(latent, duration, rng, sample_rate=SAMPLE_RATE):
    """Renders a clip whose pitch and noisiness follow ``latent``.

    Arguments
    ---------
    latent : numpy.ndarray
        Two numbers in [0, 1]: pitch height and noisiness.
    duration : float
        Seconds.
    rng : numpy.random.Generator
        Source of randomness (phase, noise, small jitter).
    sample_rate : int
        Hz.

    Returns
    -------
    numpy.ndarray
        Float32 samples in [-1, 1].

    Example
    -------
    >>> clip = synthesize_clip(
    ...     np.array([0.5, 0.5]), 1.0, np.random.default_rng(0)
    ... )
    >>> clip.shape, bool(np.abs(clip).max() <= 1.0)
    ((16000,), True)
    """
    n = int(duration * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = 100.0 + 300.0 * latent[0] * rng.uniform(0.95, 1.05)
    vibrato = 1.0 + 0.03 * np.sin(2 * np.pi * rng.uniform(3, 6) * t)
    phase = 2 * np.pi * np.cumsum(f0 * vibrato) / sample_rate
    harmonics = sum(
        np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 6)
    )
    noise = rng.standard_normal(n)
    mix = (1 - latent[1]) * harmonics / 2.0 + latent[1] * noise / 2.0
    syllable_rate = 2.0 + 4.0 * latent[0]
    envelope = 0.55 + 0.45 * np.sin(
        2 * np.pi * syllable_rate * t + rng.uniform(0, 6.28)
    )
    clip = mix * envelope
    return (0.9 * clip / (np.abs(clip).max() + 1e-8)).astype(np.float32)


def emotion_shares(latent, prototypes=_PROTOTYPES, width=0.08):
    """Max-normalised emotion shares of a latent point, as ComParE ships them.

    Arguments
    ---------
    latent : numpy.ndarray
        Two numbers in [0, 1].
    prototypes : numpy.ndarray
        ``[emotions, 2]`` prototype points.
    width : float
        Spread of each emotion around its prototype.

    Returns
    -------
    numpy.ndarray
        ``[emotions]`` shares in [0, 1] whose maximum is exactly 1.

    Example
    -------
    >>> shares = emotion_shares(np.array([0.9, 0.9]))
    >>> float(shares.max()), int(shares.argmax())
    (1.0, 0)
    """
    scores = np.exp(-((latent - prototypes) ** 2).sum(axis=1) / width)
    return scores / scores.max()


def make_compare23_corpus(
    folder,
    n_train=200,
    n_devel=60,
    n_test=60,
    min_duration=1.2,
    max_duration=4.0,
    seed=0,
    test_labels=False,
):
    """Writes a corpus in the ComParE 2023 Emotion Share layout.

    ``wav/NNNNN.wav`` (16 kHz mono 16-bit) and ``lab/{train,devel,test}.csv``
    with the real header; test labels are ``?`` (and, with ``test_labels``,
    the true ones go to ``lab/test.unmasked.csv``).

    Arguments
    ---------
    folder : str
        The corpus root to create.
    n_train, n_devel, n_test : int
        Clips per split.
    min_duration, max_duration : float
        Clip durations are uniform in this range (seconds).
    seed : int
        Random seed; the same seed gives the same corpus.
    test_labels : bool
        Also write ``lab/test.unmasked.csv``.

    Returns
    -------
    str
        ``folder``.

    Example
    -------
    >>> root = make_compare23_corpus(str(getfixture("tmpdir")), 3, 2, 2)
    >>> sorted(os.listdir(os.path.join(root, "lab")))
    ['devel.csv', 'test.csv', 'train.csv']
    >>> len(os.listdir(os.path.join(root, "wav")))
    7
    """
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(folder, "wav"), exist_ok=True)
    os.makedirs(os.path.join(folder, "lab"), exist_ok=True)
    header = ["filename"] + COMPARE23_EMOTIONS
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
            latent = rng.uniform(0, 1, size=2)
            duration = rng.uniform(min_duration, max_duration)
            clip = synthesize_clip(latent, duration, rng)
            soundfile.write(
                os.path.join(folder, "wav", name),
                clip,
                SAMPLE_RATE,
                subtype="PCM_16",
            )
            shares = [
                f"{v:.4f}".rstrip("0").rstrip(".")
                for v in emotion_shares(latent)
            ]
            true_rows.append([name] + shares)
            rows.append(
                [name] + (["?"] * len(shares) if split == "test" else shares)
            )
        _write_rows(os.path.join(folder, "lab", f"{split}.csv"), header, rows)
        if split == "test" and test_labels:
            _write_rows(
                os.path.join(folder, "lab", "test.unmasked.csv"),
                header,
                true_rows,
            )
    return folder


def _write_rows(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


if __name__ == "__main__":
    from emoshare_sb.synthetic.cli import generator_main

    generator_main("compare23")
