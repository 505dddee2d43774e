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
:func:`mix_at_snr` leaves the clean signal untouched and scales the noise
(with ``torchaudio.functional.add_noise``).

Two SNR definitions (``snr_reference``):

* ``"speech"`` (active-speech SNR, the default of the noisy test sets): the
  power of the clean signal and of the added noise are both measured over
  the samples that Silero VAD (:mod:`emoshare_sb.data.vad`) marks as speech,
  so pauses do not lower the clean power. A clip that is half silence, mixed
  at 5 dB of whole-clip SNR, has about 8 dB over its speech; mixed at 5 dB of
  active-speech SNR, it has 5 dB over its speech. When the VAD finds no
  speech in a clip, its whole clip is the reference (logged).
* ``"clip"``: both powers over every valid sample of the clip, the
  definition of ``AddNoise`` and of ``torchaudio.functional.add_noise``.

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
import torchaudio
from speechbrain.utils.logger import get_logger

from emoshare_sb.data.audio import SAMPLE_RATE, read_audio
from emoshare_sb.data.errors import DataPrepError
from emoshare_sb.data.vad import SpeechRegionCache

logger = get_logger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
SNR_REFERENCES = ("speech", "clip")


def mix_at_snr(clean, noise, snr_db, lengths=None, reference=None):
    """Adds ``noise`` scaled so that the mixture has the given SNR.

    The SNR is ``10 log10(P_clean / P_scaled_noise)``, where ``P`` is the
    mean square over the reference samples of each clip: its valid samples
    by default, or those of ``reference`` (e.g. its speech). The clean signal
    is not changed and the noise is zeroed on padded samples. The mixture is
    not clipped to [-1, 1] (clipping would change the SNR); SSL encoders
    normalise their input anyway.

    ``torchaudio.functional.add_noise`` does the scaling; what it lacks is
    kept here: it adds its noise to the padding too, takes only a valid
    prefix (``lengths``) as reference, and returns NaN for silent noise. A
    non-contiguous ``reference`` is passed to it as a shift of the requested
    SNR, the difference between the unscaled pair's SNR over the valid
    samples and over the reference samples.

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
    reference : torch.Tensor, optional
        Bool mask shaped like ``clean``: the samples over which both powers
        are measured (padding is left out); None, or a clip whose mask holds
        no valid sample, uses the valid samples.

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
    >>> speech = torch.arange(16000) < 4000
    >>> noisy = mix_at_snr(clean[0], noise[0], 5.0, reference=speech)
    >>> round(float(snr(clean[0, :4000], (noisy - clean[0])[:4000])), 3)
    5.0
    """
    if clean.shape != noise.shape:
        raise ValueError(
            f"clean and noise must have the same shape, got {list(clean.shape)} "
            f"and {list(noise.shape)}"
        )
    if reference is not None and reference.shape != clean.shape:
        raise ValueError(
            f"reference must have the shape of clean {list(clean.shape)}, got "
            f"{list(reference.shape)}"
        )
    batched = clean.dim() == 2
    clean_2d = clean if batched else clean.unsqueeze(0)
    noise_2d = noise if batched else noise.unsqueeze(0)
    num_clips, num_samples = clean_2d.shape
    if lengths is None:
        counts = torch.full((num_clips,), num_samples, device=clean.device)
    else:
        counts = torch.round(lengths.to(clean.device) * num_samples).long()
    valid = (
        torch.arange(num_samples, device=clean.device)[None, :]
        < counts[:, None]
    )
    noise_2d = noise_2d * valid
    clean_power = _power(clean_2d, valid)
    noise_power = _power(noise_2d, valid)
    snr_db = torch.full(
        (num_clips,), float(snr_db), dtype=clean_2d.dtype, device=clean.device
    )
    if reference is not None:
        speech = (reference if batched else reference.unsqueeze(0)) & valid
        has_speech = speech.any(dim=1)
        speech = torch.where(has_speech[:, None], speech, valid)
        speech_clean, speech_noise = (
            _power(clean_2d, speech),
            _power(noise_2d, speech),
        )
        shift = 10.0 * torch.log10(
            clean_power * speech_noise / (noise_power * speech_clean)
        )
        mixable = (speech_clean > 0) & (speech_noise > 0)
        snr_db = snr_db + torch.where(mixable, shift, 0.0).to(snr_db.dtype)
        clean_power, noise_power = speech_clean, speech_noise
    mixture = torchaudio.functional.add_noise(
        clean_2d, noise_2d, snr_db, counts
    )
    mixable = (clean_power > 0) & (noise_power > 0)
    mixture = torch.where(mixable[:, None], mixture, clean_2d)
    return mixture if batched else mixture.squeeze(0)


def _power(signal, mask):
    """Mean square of each row of ``signal`` over ``mask``, in float64."""
    count = mask.sum(dim=1).clamp(min=1)
    return (signal.double() ** 2 * mask).sum(dim=1) / count


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


class NoiseMixer:
    """A noisy copy of each evaluation clip, at an SNR over its speech or
    over the whole clip.

    The noise comes from ``source`` (the same for a clip in every run). With
    ``snr_reference="speech"`` the SNR is measured over the clip's speech
    regions, found by Silero VAD on the clean clip once and cached on disk
    (``cache_folder``, keyed by the clip's samples and the VAD settings), so
    that every SNR and every later run reuse them and get the same regions;
    a clip where the VAD finds no speech is mixed at its whole-clip SNR and
    logged. With ``"clip"`` the SNR is measured over the whole clip.

    Arguments
    ---------
    source : callable
        ``source(clip_id, num_samples) -> [num_samples]`` noise.
    snr_reference : str
        ``"speech"`` or ``"clip"``.
    cache_folder : str, optional
        Where the speech regions are kept; None keeps nothing.
    sample_rate : int
        The clips' sample rate.

    Example
    -------
    >>> mixer = NoiseMixer(ColouredNoise(seed=1), snr_reference="clip")
    >>> clean = torch.randn(16000)
    >>> noisy = mixer("clip_1", clean, 5.0)
    >>> round(float(snr(clean, noisy - clean)), 3)
    5.0
    """

    def __init__(
        self,
        source,
        snr_reference="speech",
        cache_folder=None,
        sample_rate=SAMPLE_RATE,
    ):
        if snr_reference not in SNR_REFERENCES:
            raise DataPrepError(
                f"snr_reference must be one of {list(SNR_REFERENCES)}, got "
                f"{snr_reference!r}"
            )
        self.source = source
        self.snr_reference = snr_reference
        self.sample_rate = sample_rate
        self.speech_regions = (
            SpeechRegionCache(cache_folder)
            if snr_reference == "speech"
            else None
        )
        self.whole_clip_fallbacks = 0

    def reference(self, clip_id, clean):
        """The samples the SNR of ``clean`` is measured over.

        Arguments
        ---------
        clip_id : str
            The clip, for the log.
        clean : torch.Tensor
            ``[samples]``, the clean clip.

        Returns
        -------
        torch.Tensor or None
            ``[samples]`` bool speech mask; None for the whole clip.
        """
        if self.speech_regions is None:
            return None
        regions = self.speech_regions(clean, self.sample_rate)
        if not regions:
            self.whole_clip_fallbacks += 1
            logger.warning(
                f"No speech found by the VAD in clip '{clip_id}': its noise is "
                "scaled to the whole-clip SNR "
                f"({self.whole_clip_fallbacks} such clip(s) in this process)"
            )
            return None
        mask = torch.zeros(clean.shape[0], dtype=torch.bool)
        for start, end in regions:
            mask[start:end] = True
        return mask

    def __call__(self, clip_id, clean, snr_db):
        """Returns ``clean`` with its noise added at ``snr_db``.

        Arguments
        ---------
        clip_id : str
            The clip; it chooses the noise.
        clean : torch.Tensor
            ``[samples]``.
        snr_db : float
            The SNR in dB.

        Returns
        -------
        torch.Tensor
            ``[samples]``.
        """
        noise = self.source(clip_id, clean.shape[0])
        return mix_at_snr(
            clean, noise, snr_db, reference=self.reference(clip_id, clean)
        )

    def __repr__(self):
        return (
            f"NoiseMixer({self.source!r}, snr_reference='{self.snr_reference}')"
        )


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
