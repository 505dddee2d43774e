"""Noise at a set SNR: the measured SNR, per-clip reproducibility, the sources."""

import numpy as np
import pytest
import scipy.signal
import soundfile
import torch

from emoshare_sb.data.noise import (
    BabbleNoise,
    ColouredNoise,
    NoiseFolder,
    NoiseMixer,
    make_noise_source,
    mix_at_snr,
)

SAMPLE_RATE = 16000


def measured_snr(clean, noisy):
    """10 log10 of clean power over added-noise power, in float64."""
    clean, added = clean.double(), (noisy - clean).double()
    return float(10 * torch.log10(clean.pow(2).mean() / added.pow(2).mean()))


def speech_like(seconds=1.5, seed=0):
    """A clip with silences and a loud part, so its power is not uniform."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = (np.sin(2 * np.pi * 1.5 * t) > 0) * (0.2 + t)
    signal = envelope * np.sin(
        2 * np.pi * 180 * t
    ) + 0.01 * rng.standard_normal(len(t))
    return torch.from_numpy(signal).float()


@pytest.fixture
def noise_folder(tmp_path):
    """Two noise files: a short one (looped) and a long one in a sub-folder."""
    rng = np.random.default_rng(0)
    soundfile.write(
        tmp_path / "short.wav", rng.standard_normal(3000) * 0.1, SAMPLE_RATE
    )
    (tmp_path / "sub").mkdir()
    soundfile.write(
        tmp_path / "sub" / "long.flac",
        rng.uniform(-0.5, 0.5, 64000),
        SAMPLE_RATE,
    )
    (tmp_path / "notes.txt").write_text("not audio")
    return tmp_path


@pytest.mark.parametrize("snr_db", [15.0, 5.0, 0.0, -5.0])
@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_measured_snr_equals_the_requested_snr(snr_db, exponent):
    clean = speech_like()
    noise = ColouredNoise(exponent)("clip", clean.shape[0])
    noisy = mix_at_snr(clean, noise, snr_db)
    assert abs(measured_snr(clean, noisy) - snr_db) < 0.1
    # The clean signal is kept as it is: only the noise is scaled.
    assert noisy.shape == clean.shape


def test_snr_is_measured_over_the_valid_samples_of_a_padded_batch():
    short, long = speech_like(0.8, seed=1), speech_like(1.5, seed=2)
    batch = torch.zeros(2, long.shape[0])
    batch[0, : short.shape[0]] = short
    batch[1] = long
    lengths = torch.tensor([short.shape[0] / long.shape[0], 1.0])
    source = ColouredNoise(seed=4)
    noise = torch.stack(
        [source("a", long.shape[0]), source("b", long.shape[0])]
    )
    noisy = mix_at_snr(batch, noise, 5.0, lengths)
    assert abs(measured_snr(short, noisy[0, : short.shape[0]]) - 5.0) < 0.1
    assert abs(measured_snr(long, noisy[1]) - 5.0) < 0.1
    # Padding stays silent, and each clip is mixed as it would be alone.
    assert torch.equal(
        noisy[0, short.shape[0] :], torch.zeros(long.shape[0] - short.shape[0])
    )
    alone = mix_at_snr(short, noise[0, : short.shape[0]], 5.0)
    assert torch.allclose(alone, noisy[0, : short.shape[0]], atol=1e-6)


def test_silent_clip_or_noise_is_returned_unchanged():
    silent = torch.zeros(1000)
    assert torch.equal(mix_at_snr(silent, torch.randn(1000), 5.0), silent)
    clean = torch.randn(1000)
    assert torch.equal(mix_at_snr(clean, torch.zeros(1000), 5.0), clean)
    with pytest.raises(ValueError, match="same shape"):
        mix_at_snr(clean, torch.randn(999), 5.0)


def test_generated_noise_is_reproducible_per_clip_id():
    first = ColouredNoise(seed=11)
    # A new object with the same seed stands for another run or process.
    again = ColouredNoise(seed=11)
    a = first("MSP-PODCAST_0001_0008.wav", 20000)
    assert torch.equal(a, again("MSP-PODCAST_0001_0008.wav", 20000))
    assert not torch.allclose(a, first("MSP-PODCAST_0001_0009.wav", 20000))
    assert not torch.allclose(
        a, ColouredNoise(seed=12)("MSP-PODCAST_0001_0008.wav", 20000)
    )
    # Unit RMS, zero mean: the SNR scaling does the rest.
    assert abs(float(a.pow(2).mean().sqrt()) - 1.0) < 1e-4
    assert abs(float(a.mean())) < 1e-3


def test_pink_noise_has_a_one_over_f_spectrum():
    noise = ColouredNoise(exponent=1.0)("clip", 8 * SAMPLE_RATE).numpy()
    frequencies, power = scipy.signal.welch(noise, fs=SAMPLE_RATE, nperseg=4096)
    band = (frequencies > 20) & (frequencies < 6000)
    slope = np.polyfit(np.log10(frequencies[band]), np.log10(power[band]), 1)[0]
    assert -1.2 < slope < -0.8


def is_excerpt(noise, file):
    """Whether ``noise`` is a (looped) stretch of ``file`` scaled to unit RMS."""
    n = len(noise)
    repeats = -(-(len(file) + n) // len(file))
    extended = np.tile(file, repeats)[: len(file) + n]
    correlation = scipy.signal.correlate(
        extended, noise, mode="valid", method="fft"
    )
    start = int(np.argmax(correlation[: len(file)]))
    excerpt = extended[start : start + n]
    return np.allclose(noise, excerpt / np.sqrt(np.mean(excerpt**2)), atol=1e-4)


def test_folder_source_loops_short_files_and_crops_long_ones(noise_folder):
    source = NoiseFolder(str(noise_folder), seed=1)
    assert sorted(p.rsplit("/", 1)[-1] for p in source.files) == [
        "long.flac",
        "short.wav",
    ]
    files = {
        "short": soundfile.read(noise_folder / "short.wav", dtype="float32")[0],
        "long": soundfile.read(
            noise_folder / "sub" / "long.flac", dtype="float32"
        )[0],
    }
    used = set()
    for index in range(20):
        clip_id = f"clip_{index}"
        noise = source(clip_id, 10000).numpy()
        assert noise.shape == (10000,)
        # Reproducible: the same clip gets the same noise, in another object too.
        assert np.array_equal(
            noise,
            NoiseFolder(str(noise_folder), seed=1)(clip_id, 10000).numpy(),
        )
        matches = [
            name for name, file in files.items() if is_excerpt(noise, file)
        ]
        assert len(matches) == 1, clip_id
        used.update(matches)
        if matches == ["short"]:  # 3000 samples looped over 10000
            assert np.allclose(noise[:7000], noise[3000:])
    assert used == {"short", "long"}


def test_folder_source_mixes_at_the_requested_snr(noise_folder):
    clean = speech_like()
    noise = NoiseFolder(str(noise_folder))(
        "MSP-PODCAST_0001_0001.wav", clean.shape[0]
    )
    assert abs(measured_snr(clean, mix_at_snr(clean, noise, 15.0)) - 15.0) < 0.1


def test_folder_without_audio_is_an_error(tmp_path):
    (tmp_path / "readme.txt").write_text("no audio here")
    with pytest.raises(FileNotFoundError, match="no audio file"):
        NoiseFolder(str(tmp_path))


def test_babble_is_reproducible_and_never_uses_the_clip_itself(tmp_path):
    # Talker i is a tone of 200 (i + 1) Hz, so the babble's spectrum names its talkers.
    rows = ["ID,duration,wav"]
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    for index in range(4):
        path = tmp_path / f"talker{index}.wav"
        soundfile.write(
            path, 0.3 * np.sin(2 * np.pi * 200 * (index + 1) * t), SAMPLE_RATE
        )
        rows.append(f"talker{index}.wav,1.0,{path}")
    manifest = tmp_path / "train.csv"
    manifest.write_text("\n".join(rows) + "\n")
    babble = BabbleNoise(str(manifest), num_talkers=3, seed=5)
    noise = babble("talker0.wav", 24000)
    assert noise.shape == (24000,)
    assert float(noise.pow(2).mean()) == pytest.approx(1.0, abs=1e-4)
    assert torch.equal(
        noise,
        BabbleNoise(str(manifest), num_talkers=3, seed=5)("talker0.wav", 24000),
    )
    spectrum = np.abs(np.fft.rfft(noise.numpy()))
    frequencies = np.fft.rfftfreq(24000, 1 / SAMPLE_RATE)
    level = {
        f: spectrum[np.argmin(np.abs(frequencies - f))]
        for f in (200, 400, 600, 800)
    }
    assert level[200] < 0.01 * min(level[400], level[600], level[800])
    clean = speech_like(1.5)
    assert (
        abs(
            measured_snr(clean, mix_at_snr(clean, noise[: clean.shape[0]], 5.0))
            - 5.0
        )
        < 0.1
    )


def test_make_noise_source_defaults_to_pink_noise_offline(noise_folder):
    assert isinstance(make_noise_source(), ColouredNoise)
    assert make_noise_source().exponent == 1.0
    assert isinstance(make_noise_source(str(noise_folder), seed=3), NoiseFolder)


# Active-speech SNR (Mitra et al. Sec. 5 noisy test sets) -----------------------


@pytest.fixture(scope="module")
def speech_with_pauses():
    """Synthesised speech at 16 kHz with as much silence around it."""
    import torchaudio

    from emoshare_sb.synthetic.speech import speak

    wav, rate = speak("Hello, this is a short test of the speech detector.")
    speech = torchaudio.functional.resample(torch.from_numpy(wav), rate, 16000)
    pause = torch.zeros(speech.shape[0] // 2)
    return torch.cat([pause, speech, pause])


def snr_over(clean, noisy, mask):
    return measured_snr(clean[mask], noisy[mask])


@pytest.mark.parametrize("snr_db", [15.0, 5.0])
def test_speech_snr_holds_over_the_detected_speech(
    speech_with_pauses, snr_db, tmp_path
):
    from emoshare_sb.data.vad import speech_mask

    clean = speech_with_pauses
    speech = speech_mask(clean)
    assert 0.3 < speech.float().mean() < 0.7  # the pauses are not speech
    source = ColouredNoise(seed=5)
    on_speech = NoiseMixer(source, "speech", str(tmp_path / "vad"))
    noisy = on_speech("clip", clean, snr_db)
    assert abs(snr_over(clean, noisy, speech) - snr_db) < 0.1
    # The whole-clip definition: snr_db over the clip, more over the speech
    # (the pauses hold half the samples and no clean power).
    on_clip = NoiseMixer(source, "clip")
    noisy = on_clip("clip", clean, snr_db)
    assert abs(measured_snr(clean, noisy) - snr_db) < 0.1
    assert snr_over(clean, noisy, speech) > snr_db + 2.0
    assert on_clip.reference("clip", clean) is None


def test_speech_regions_are_found_once_and_reused(
    speech_with_pauses, tmp_path, monkeypatch
):
    from emoshare_sb.data import vad

    calls = []
    real = vad.speech_regions

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(vad, "speech_regions", counting)
    folder = str(tmp_path / "vad")
    first = NoiseMixer(ColouredNoise(seed=1), "speech", folder)
    at_15 = first("clip", speech_with_pauses, 15.0)
    first("clip", speech_with_pauses, 5.0)
    assert len(calls) == 1  # both SNRs of one clip: one VAD pass
    # A later run (a new mixer on the same folder) reads the regions back.
    again = NoiseMixer(ColouredNoise(seed=1), "speech", folder)
    assert torch.equal(again("clip", speech_with_pauses, 15.0), at_15)
    assert len(calls) == 1


def test_a_clip_without_speech_falls_back_to_the_whole_clip(tmp_path, caplog):
    tone = speech_like()  # a 180 Hz buzz: no speech for the VAD
    mixer = NoiseMixer(ColouredNoise(seed=2), "speech", str(tmp_path / "vad"))
    noisy = mixer("buzz", tone, 5.0)
    assert abs(measured_snr(tone, noisy) - 5.0) < 0.1
    assert mixer.whole_clip_fallbacks == 1
    assert "No speech found by the VAD in clip 'buzz'" in caplog.text


def test_reference_mask_in_a_padded_batch():
    clean = torch.stack([speech_like(1.0, seed=1), speech_like(1.0, seed=2)])
    noise = torch.randn(2, clean.shape[1])
    reference = torch.zeros_like(clean, dtype=torch.bool)
    reference[0, 2000:6000] = True  # clip 0: a region; clip 1: none (whole)
    lengths = torch.tensor([1.0, 0.75])
    noisy = mix_at_snr(clean, noise, 5.0, lengths, reference=reference)
    assert abs(snr_over(clean[0], noisy[0], reference[0]) - 5.0) < 0.1
    assert abs(measured_snr(clean[1, :12000], noisy[1, :12000]) - 5.0) < 0.1
    assert torch.equal(noisy[1, 12000:], clean[1, 12000:])


def test_an_unknown_snr_reference_is_named():
    from emoshare_sb.data.errors import DataPrepError

    with pytest.raises(DataPrepError, match="snr_reference must be one of"):
        NoiseMixer(ColouredNoise(), "segment")
