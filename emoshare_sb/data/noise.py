"""Additive noise at a set signal-to-noise ratio, reproducible per clip.

Mitra et al. (2025, Sec. 2 and Table 4) evaluate on the MSP-Podcast test set
with noise added at 15 dB and 5 dB SNR. This module provides the mixing and
three noise sources, each a callable ``source(clip_id, num_samples) ->
[num_samples]`` tensor whose output depends only on the clip id and the
source's seed, so that a noisy test set is the same in every run, every
process and every batch composition:

* :class:`ColouredNoise`: generated noise with a ``1 / f ** exponent`` power
  spectrum (``exponent=1``: pink noise, the default of the recipe, needs no
  file; ``0``: white; ``2``: brown);
* :class:`NoiseFolder`: excerpts of the audio files in a folder (e.g. MUSAN's
  ``noise/`` or the DEMAND recordings), looped when shorter than the clip;
* :class:`BabbleNoise`: babble made from the corpus itself, the sum of a few
  other clips (e.g. the training manifest, so no test speaker is heard).

Why not SpeechBrain's ``speechbrain.augment.time_domain.AddNoise``: it is a
training augmentation. It draws the SNR, the noise file (a shuffled data
loader) and the start offset from the global random state per batch, so the
noise a clip gets depends on its batch and on the run; and it scales the clean
signal down. An evaluation set needs the same noise for a clip every time, and
:func:`mix_at_snr` leaves the clean signal untouched and scales the noise.
The SNR definition is the same as ``AddNoise``'s: the ratio of the RMS
amplitudes over the clip's valid samples.

Authors
 * emoshare_sb contributors 2026
"""

import csv
import functools
import glob
import hashlib
import os

import numpy as np
import torch

from emoshare_sb.data.audio import SAMPLE_RATE, read_audio

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")


def mix_at_snr(clean, noise, snr_db, lengths=None):
    """Adds ``noise`` scaled so that the mixture has the given SNR.

    The SNR is measured over the valid samples of each clip:
    ``10 log10(P_clean / P_scaled_noise)``, where ``P`` is the mean square over
    the valid samples. The clean signal is not changed and the noise is zeroed
    on padded samples. The mixture is not clipped to [-1, 1] (clipping would
    change the SNR); SSL encoders normalise their input anyway.

    Arguments
    ---------
    clean : torch.Tensor
        ``[samples]`` or ``[B, samples]``.
    noise : torch.Tensor
        Same shape as ``clean``.
    snr_db : float
        The signal-to-noise ratio in dB.
    lengths : torch.Tensor, optional
        ``[B]`` relative lengths (SpeechBrain convention) of a padded batch;
        None means every sample is valid.

    Returns
    -------
    torch.Tensor
        The mixture, shaped like ``clean``. A silent clip, or silent noise,
        is returned unchanged (its SNR is undefined).

    Example
    -------
    >>> clean, noise = torch.randn(2, 16000), torch.randn(2, 16000)
    >>> noisy = mix_at_snr(
    ...     clean, noise, snr_db=5.0, lengths=torch.tensor([1.0, 0.5])
    ... )
    >>> noisy.shape
    torch.Size([2, 16000])
    >>> round(float(snr(clean[1, :8000], noisy[1, :8000] - clean[1, :8000])), 3)
    5.0
    >>> bool((noisy[1, 8000:] == clean[1, 8000:]).all())
    True
    """
    if clean.shape != noise.shape:
        raise ValueError(
            f"clean and noise must have the same shape, got {list(clean.shape)} "
            f"and {list(noise.shape)}"
        )
    batched = clean.dim() == 2
    clean_2d = clean if batched else clean.unsqueeze(0)
    noise_2d = noise if batched else noise.unsqueeze(0)
    num_samples = clean_2d.shape[1]
    if lengths is None:
        valid = torch.ones_like(clean_2d, dtype=torch.bool)
    else:
        counts = torch.round(lengths.to(clean.device) * num_samples).long()
        valid = (
            torch.arange(num_samples, device=clean.device)[None, :]
            < counts[:, None]
        )
    weights = valid.to(clean_2d.dtype)
    count = weights.sum(dim=1, keepdim=True).clamp(min=1)
    clean_power = (clean_2d.double() ** 2 * weights).sum(
        dim=1, keepdim=True
    ) / count
    noise_power = (noise_2d.double() ** 2 * weights).sum(
        dim=1, keepdim=True
    ) / count
    scale = torch.sqrt(clean_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    scale = torch.where((clean_power > 0) & (noise_power > 0), scale, 0.0)
    mixture = clean_2d + (scale.to(clean_2d.dtype) * noise_2d) * weights
    return mixture if batched else mixture.squeeze(0)


def snr(signal, noise):
    """The signal-to-noise ratio ``10 log10(P_signal / P_noise)`` in dB.

    Arguments
    ---------
    signal, noise : torch.Tensor
        ``[samples]``.

    Returns
    -------
    torch.Tensor
        Scalar, in dB.

    Example
    -------
    >>> snr(torch.ones(10), 0.1 * torch.ones(10))
    tensor(20.)
    """
    return 10.0 * torch.log10(signal.pow(2).mean() / noise.pow(2).mean())


def clip_seed(clip_id, seed=0):
    """A 64-bit seed derived from a clip id, stable across runs and processes.

    Python's ``hash`` of a string changes with every interpreter start; a
    SHA-256 digest does not.

    Arguments
    ---------
    clip_id : str
        The clip's id (e.g. its file name).
    seed : int
        The noise source's seed, mixed in so that sources can differ.

    Returns
    -------
    int

    Example
    -------
    >>> clip_seed("MSP-PODCAST_0001_0008.wav") == clip_seed(
    ...     "MSP-PODCAST_0001_0008.wav"
    ... )
    True
    >>> clip_seed("a", seed=0) == clip_seed("a", seed=1)
    False
    """
    digest = hashlib.sha256(f"{seed}:{clip_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


class ColouredNoise:
    """Generated noise with a ``1 / f ** exponent`` power spectrum, per clip.

    White Gaussian noise from a generator seeded by the clip id is shaped in
    the frequency domain (the method of SpeechBrain's ``pink_noise_like``,
    with a per-clip generator instead of the global random state).

    Arguments
    ---------
    exponent : float
        Spectral slope: 0 white, 1 pink (default), 2 brown.
    seed : int
        Seed mixed with the clip id.

    Example
    -------
    >>> pink = ColouredNoise(exponent=1.0, seed=3)
    >>> noise = pink("MSP-PODCAST_0001_0008.wav", 16000)
    >>> (
    ...     noise.shape,
    ...     torch.equal(noise, pink("MSP-PODCAST_0001_0008.wav", 16000)),
    ... )
    (torch.Size([16000]), True)
    >>> torch.equal(noise, pink("MSP-PODCAST_0001_0009.wav", 16000))
    False
    """

    def __init__(self, exponent=1.0, seed=0):
        self.exponent = exponent
        self.seed = seed

    def __call__(self, clip_id, num_samples):
        """Returns ``[num_samples]`` noise of unit RMS for ``clip_id``.

        Arguments
        ---------
        clip_id : str
            The clip the noise is for; the same id always gets the same noise.
        num_samples : int
            Length of the noise.

        Returns
        -------
        torch.Tensor
            ``[num_samples]``, float32.
        """
        rng = np.random.default_rng(clip_seed(clip_id, self.seed))
        spectrum = np.fft.rfft(rng.standard_normal(num_samples))
        frequencies = np.arange(len(spectrum), dtype=float)
        frequencies[0] = 1.0  # keep the DC bin finite; it is removed below
        spectrum = spectrum / frequencies ** (self.exponent / 2.0)
        spectrum[0] = 0.0
        noise = np.fft.irfft(spectrum, n=num_samples)
        return _unit_rms(torch.from_numpy(noise).float())

    def __repr__(self):
        return f"ColouredNoise(exponent={self.exponent}, seed={self.seed})"


class NoiseFolder:
    """Excerpts of the audio files found (recursively) in a folder.

    For each clip, the clip id and the seed choose a file and a start offset;
    the file is looped when it is shorter than the clip. Files are read with
    :func:`emoshare_sb.data.audio.read_audio` (mono, resampled to
    ``sample_rate``) and the last few are kept in memory.

    Arguments
    ---------
    folder : str
        A folder holding ``.wav``, ``.flac`` or ``.ogg`` files, at any depth.
    seed : int
        Seed mixed with the clip id.
    sample_rate : int
        The sample rate of the clips.

    Example
    -------
    >>> import soundfile
    >>> folder = getfixture("tmpdir").mkdir("noises")
    >>> soundfile.write(
    ...     str(folder / "hum.wav"), np.sin(np.arange(4000) / 5.0), 16000
    ... )
    >>> source = NoiseFolder(str(folder))
    >>> source("clip_1", 10000).shape  # looped: the file has 4000 samples
    torch.Size([10000])
    >>> torch.equal(source("clip_1", 10000), source("clip_1", 10000))
    True
    """

    def __init__(self, folder, seed=0, sample_rate=SAMPLE_RATE):
        self.folder = folder
        self.seed = seed
        self.sample_rate = sample_rate
        self.files = sorted(
            path
            for path in glob.glob(
                os.path.join(folder, "**", "*"), recursive=True
            )
            if path.lower().endswith(AUDIO_EXTENSIONS) and os.path.isfile(path)
        )
        if not self.files:
            raise FileNotFoundError(
                f"no audio file ({', '.join(AUDIO_EXTENSIONS)}) in noise folder '{folder}'"
            )

    def __call__(self, clip_id, num_samples):
        """Returns ``[num_samples]`` noise of unit RMS for ``clip_id``.

        Arguments
        ---------
        clip_id : str
            The clip the noise is for; the same id always gets the same noise.
        num_samples : int
            Length of the noise.

        Returns
        -------
        torch.Tensor
            ``[num_samples]``, float32.
        """
        rng = np.random.default_rng(clip_seed(clip_id, self.seed))
        noise = _read_noise_file(
            self.files[int(rng.integers(len(self.files)))], self.sample_rate
        )
        start = int(rng.integers(noise.shape[0]))
        return _unit_rms(_looped_excerpt(noise, start, num_samples))

    def __repr__(self):
        return f"NoiseFolder('{self.folder}', {len(self.files)} files, seed={self.seed})"


class BabbleNoise:
    """Babble: the sum of ``num_talkers`` clips of a corpus, each at unit RMS.

    The clips are chosen per clip id among the ``wav`` column of a SpeechBrain
    manifest (the training manifest keeps test speakers out of the babble); a
    clip never babbles over itself. The manifest is read at the first call,
    so it may be written after this object is built (by data preparation).

    Arguments
    ---------
    manifest : str
        A CSV file with ``ID`` and ``wav`` columns.
    num_talkers : int
        How many clips are summed.
    seed : int
        Seed mixed with the clip id.
    sample_rate : int
        The sample rate of the clips.

    Example
    -------
    >>> import soundfile
    >>> folder = getfixture("tmpdir").mkdir("babble")
    >>> rows = ["ID,wav"]
    >>> for i in range(3):
    ...     path = str(folder / f"{i}.wav")
    ...     soundfile.write(
    ...         path, np.random.default_rng(i).standard_normal(3000), 16000
    ...     )
    ...     rows.append(f"{i}.wav,{path}")
    >>> _ = (folder / "train.csv").write("\\n".join(rows) + "\\n")
    >>> babble = BabbleNoise(str(folder / "train.csv"), num_talkers=2)
    >>> babble("test_clip", 5000).shape
    torch.Size([5000])
    """

    def __init__(
        self, manifest, num_talkers=4, seed=0, sample_rate=SAMPLE_RATE
    ):
        self.manifest = manifest
        self.num_talkers = num_talkers
        self.seed = seed
        self.sample_rate = sample_rate
        self._clips = None

    def _load_manifest(self):
        with open(self.manifest, newline="") as handle:
            clips = [(row["ID"], row["wav"]) for row in csv.DictReader(handle)]
        if len(clips) < 2:
            raise ValueError(
                f"babble needs at least 2 clips in '{self.manifest}'"
            )
        return clips

    def __call__(self, clip_id, num_samples):
        """Returns ``[num_samples]`` babble of unit RMS for ``clip_id``.

        Arguments
        ---------
        clip_id : str
            The clip the babble is for (never one of its talkers).
        num_samples : int
            Length of the babble.

        Returns
        -------
        torch.Tensor
            ``[num_samples]``, float32.
        """
        if self._clips is None:
            self._clips = self._load_manifest()
        rng = np.random.default_rng(clip_seed(clip_id, self.seed))
        # One candidate more than needed, so the clip itself can be left out.
        candidates = rng.choice(
            len(self._clips),
            size=min(self.num_talkers + 1, len(self._clips)),
            replace=False,
        )
        chosen = [i for i in candidates if self._clips[i][0] != clip_id][
            : self.num_talkers
        ]
        babble = torch.zeros(num_samples)
        for index in chosen:
            talker = read_audio(self._clips[int(index)][1], self.sample_rate)
            start = int(rng.integers(talker.shape[0]))
            babble += _unit_rms(_looped_excerpt(talker, start, num_samples))
        return _unit_rms(babble)

    def __repr__(self):
        return f"BabbleNoise('{self.manifest}', num_talkers={self.num_talkers}, seed={self.seed})"


def make_noise_source(folder=None, seed=0, sample_rate=SAMPLE_RATE):
    """The recipe's noise source: a :class:`NoiseFolder`, else pink noise.

    Arguments
    ---------
    folder : str, optional
        A folder of noise recordings; None generates pink noise (offline).
    seed : int
        Seed mixed with each clip id.
    sample_rate : int
        The sample rate of the clips.

    Returns
    -------
    callable
        ``source(clip_id, num_samples) -> [num_samples]`` tensor.

    Example
    -------
    >>> make_noise_source(seed=7)
    ColouredNoise(exponent=1.0, seed=7)
    """
    if folder:
        return NoiseFolder(folder, seed=seed, sample_rate=sample_rate)
    return ColouredNoise(exponent=1.0, seed=seed)


# Module-level (not a bound method) so that sources pickle for data-loader workers.
@functools.lru_cache(maxsize=8)
def _read_noise_file(path, sample_rate):
    return read_audio(path, sample_rate)


def _looped_excerpt(signal, start, num_samples):
    """``num_samples`` samples of ``signal`` from ``start``, wrapping around."""
    indices = (start + torch.arange(num_samples)) % signal.shape[0]
    return signal[indices]


def _unit_rms(signal):
    rms = signal.pow(2).mean().sqrt()
    return signal / rms if rms > 0 else signal
