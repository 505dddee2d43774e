"""Audio reading: down-mixing, resampling, padding and clear errors."""

import os

import numpy as np
import pytest
import soundfile
import torch

from emoshare_sb.data.audio import (
    MIN_SAMPLES,
    AudioReadError,
    audio_info,
    check_audio,
    random_crop,
    read_audio,
)


def test_stereo_44k_is_downmixed_and_resampled(tmp_path):
    t = np.arange(44100) / 44100
    left = np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "stereo.wav"
    soundfile.write(
        path,
        np.stack([left, -left * 0 + left], axis=1).astype("float32"),
        44100,
    )
    signal = read_audio(str(path))
    assert signal.shape == (16000,)
    # A 440 Hz tone survives resampling at the right frequency.
    spectrum = torch.fft.rfft(signal).abs()
    assert abs(int(spectrum.argmax()) - 440) <= 1


def test_channels_are_averaged(tmp_path):
    path = tmp_path / "lr.wav"
    soundfile.write(
        path,
        np.stack([np.full(1600, 0.5), np.zeros(1600)], axis=1).astype(
            "float32"
        ),
        16000,
    )
    assert torch.allclose(
        read_audio(str(path)), torch.full((1600,), 0.25), atol=1e-4
    )


def test_48k_flac_is_read(tmp_path):
    path = tmp_path / "clip.flac"
    soundfile.write(path, np.zeros(48000, dtype="float32"), 48000)
    assert read_audio(str(path)).shape == (16000,)


def test_a_clip_shorter_than_the_receptive_field_is_padded(tmp_path):
    path = tmp_path / "short.wav"
    soundfile.write(path, np.ones(800, dtype="float32") * 0.1, 16000)  # 0.05 s
    signal = read_audio(str(path), min_samples=1600)
    assert signal.shape == (1600,) and signal[-1] == 0 and signal[0] != 0
    assert read_audio(str(path)).shape[0] >= MIN_SAMPLES


@pytest.mark.parametrize("content", [b"", b"RIFF....garbage"])
def test_unreadable_audio_names_the_file(tmp_path, content):
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    with pytest.raises(AudioReadError, match="broken.wav"):
        read_audio(str(path))
    with pytest.raises(AudioReadError, match="broken.wav"):
        audio_info(str(path))


def test_zero_length_audio_is_rejected(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros(0, dtype="float32"), 16000)
    with pytest.raises(AudioReadError, match="no samples"):
        read_audio(str(path))
    with pytest.raises(AudioReadError, match="no samples"):
        audio_info(str(path))


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(AudioReadError, match="nowhere.wav"):
        read_audio(str(tmp_path / "nowhere.wav"))


def test_random_crop_is_a_contiguous_window():
    signal = torch.arange(100.0)
    crop = random_crop(signal, 30, generator=torch.Generator().manual_seed(0))
    assert crop.shape == (30,)
    assert torch.equal(crop, torch.arange(crop[0], crop[0] + 30))
    assert torch.equal(random_crop(signal, 0), signal)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_named_with_their_time(tmp_path, value):
    path = tmp_path / "bad.wav"
    samples = np.zeros((32000, 2), dtype="float32")
    samples[24000, 1] = value
    soundfile.write(path, samples, 16000, subtype="FLOAT")
    with pytest.raises(AudioReadError) as error:
        read_audio(str(path))
    message = str(error.value)
    assert message.startswith(f"{path}: holds 1 non-finite sample")
    assert "the first at 1.500 s" in message and "rerun the recipe" in message
    with pytest.raises(AudioReadError, match="the first at 1.500 s"):
        check_audio(str(path))


def test_check_audio_returns_the_duration_of_good_files(tmp_path):
    for subtype in ("PCM_16", "FLOAT"):
        path = tmp_path / f"{subtype}.wav"
        soundfile.write(
            path, np.zeros(24000, dtype="float32"), 16000, subtype=subtype
        )
        assert check_audio(str(path)) == pytest.approx(1.5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.mkdir(), "the path is a directory, not a file"),
        (lambda p: os.symlink(p.name, p), "the path is a symbolic link loop"),
        (lambda p: None, "the path does not exist"),
    ],
)
def test_a_path_that_is_no_audio_file_says_what_it_is(tmp_path, make, message):
    path = tmp_path / "clip.wav"
    make(path)
    with pytest.raises(AudioReadError) as error:
        read_audio(str(path))
    assert str(error.value).startswith(f"{path}: cannot read audio: {message}")
    with pytest.raises(AudioReadError, match=message):
        audio_info(str(path))


def test_reading_matches_speechbrain_audio_io_and_normalizer(tmp_path):
    """read_audio is SpeechBrain's load + AudioNormalizer, plus the pad."""
    from speechbrain.dataio import audio_io
    from speechbrain.dataio.preprocess import AudioNormalizer

    path = tmp_path / "stereo.wav"
    rng = np.random.default_rng(0)
    soundfile.write(path, 0.1 * rng.standard_normal((22050, 2)), 22050)
    audio, rate = audio_io.load(str(path), channels_first=False)
    expected = AudioNormalizer(16000)(audio, rate)
    assert torch.equal(read_audio(str(path)), expected)
