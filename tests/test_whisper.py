"""The Whisper encoder lobe: HF-identical log-mels, padding, layers, freezing, long clips."""

import json
import shutil

import numpy as np
import pytest
import torch
import transformers

from emoshare_sb.lobes.fusion import LayerMixEncoder, WeightedLayerSum
from emoshare_sb.lobes.whisper import WhisperEncoder
from emoshare_sb.synthetic.encoders import make_tiny_ssl_model


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    return make_tiny_ssl_model(
        str(tmp_path_factory.mktemp("tiny_whisper")), "whisper"
    )


@pytest.fixture(scope="module")
def encoder(tiny_whisper, tmp_path_factory):
    return WhisperEncoder(
        tiny_whisper, save_path=str(tmp_path_factory.mktemp("cache"))
    )


def _clips():
    generator = torch.Generator().manual_seed(0)
    # Different loudness: the log-mel clamp is relative to each clip's maximum.
    return [
        0.5 * torch.randn(16000, generator=generator),
        0.01 * torch.randn(9000, generator=generator),
        0.1 * torch.randn(3200, generator=generator),
    ]


def _batch(clips, total, padding_value=0.0):
    batch = torch.full((len(clips), total), padding_value)
    for i, clip in enumerate(clips):
        batch[i, : clip.shape[0]] = clip
    return batch, torch.tensor([clip.shape[0] / total for clip in clips])


def test_log_mels_match_the_hf_feature_extractor_clip_by_clip(
    encoder, tiny_whisper
):
    extractor = transformers.WhisperFeatureExtractor.from_pretrained(
        tiny_whisper
    )
    clips = _clips()
    reference = extractor(
        [clip.numpy() for clip in clips],
        sampling_rate=16000,
        return_tensors="np",
    ).input_features
    wavs, _ = _batch(clips, encoder._n_samples)
    mels = encoder.log_mel_spectrogram(wavs)
    assert mels.shape == reference.shape == (3, 80, 3000)
    np.testing.assert_allclose(mels.numpy(), reference, atol=1e-4)


@pytest.mark.parametrize("padding_value", [0.0, 0.7])
def test_a_clip_encodes_the_same_alone_and_padded_in_a_batch(
    encoder, padding_value
):
    clips = _clips()
    with torch.no_grad():
        alone = [encoder(clip.unsqueeze(0))[0] for clip in clips]
        wavs, lens = _batch(clips, 20000, padding_value)
        feats = encoder(wavs, lens)
    assert feats.shape == (
        3,
        63,
        32,
    )  # ceil(20000 / 320) frames cover the longest clip
    exact = encoder.feature_lengths(lens, 20000, 63) * 63
    for i, (clip, reference) in enumerate(zip(clips, alone, strict=True)):
        frames = -(-clip.shape[0] // 320)  # one frame per started 320 samples
        assert (
            reference.shape == (frames, 32) and round(exact[i].item()) == frames
        )
        torch.testing.assert_close(
            feats[i, :frames], reference, atol=1e-5, rtol=1e-4
        )
        assert feats[i, frames:].abs().sum() == 0


def test_layer_selection(tiny_whisper, tmp_path):
    wavs = torch.randn(2, 8000)
    everything = WhisperEncoder(tiny_whisper, str(tmp_path), layer="all")(wavs)
    first = WhisperEncoder(tiny_whisper, str(tmp_path), layer=1)(wavs)
    last = WhisperEncoder(tiny_whisper, str(tmp_path))(wavs)
    assert everything.shape == (3, 2, 25, 32)
    torch.testing.assert_close(everything[1], first)
    # Whisper's last hidden state already includes the encoder's final layer norm.
    torch.testing.assert_close(everything[-1], last)
    with pytest.raises(ValueError, match="out of range"):
        WhisperEncoder(tiny_whisper, str(tmp_path), layer=3)
    with pytest.raises(ValueError, match="layer must be"):
        WhisperEncoder(tiny_whisper, str(tmp_path), layer="last")


def test_frozen_encoder_stays_in_eval_and_has_no_gradients(encoder):
    encoder.train()
    assert not encoder.model.training
    assert not any(p.requires_grad for p in encoder.parameters())
    assert not encoder(torch.randn(1, 4000)).requires_grad


def test_fine_tuned_encoder_trains_and_layerdrop_is_off(tiny_whisper, tmp_path):
    source = tmp_path / "layerdrop"
    shutil.copytree(tiny_whisper, source)
    config = json.loads((source / "config.json").read_text())
    config["encoder_layerdrop"] = 0.9
    (source / "config.json").write_text(json.dumps(config))
    encoder = WhisperEncoder(
        str(source), str(tmp_path), freeze=False, layer="all"
    ).train()
    assert (
        encoder.model.training and encoder.model.config.encoder_layerdrop == 0.0
    )
    wavs = torch.randn(1, 8000)
    out = encoder(wavs)
    assert {encoder(wavs).shape[0] for _ in range(3)} == {3}
    out.sum().backward()
    assert encoder.model.encoder.layers[0].fc1.weight.grad is not None


def test_clips_longer_than_30_s_are_encoded_in_30_s_windows(encoder):
    generator = torch.Generator().manual_seed(1)
    long = 0.3 * torch.randn(16000 * 31, generator=generator)
    with torch.no_grad():
        feats = encoder(long.unsqueeze(0))
        first_window = encoder(long[: 16000 * 30].unsqueeze(0))
        second_window = encoder(long[16000 * 30 :].unsqueeze(0))
    assert feats.shape == (1, 1550, 32)
    torch.testing.assert_close(feats[:, :1500], first_window)
    torch.testing.assert_close(feats[:, 1500:], second_window)


def test_whisper_layers_can_be_mixed(tiny_whisper, tmp_path):
    every_layer = WhisperEncoder(tiny_whisper, str(tmp_path), layer="all")
    encoder = LayerMixEncoder(
        every_layer, WeightedLayerSum(every_layer.num_layers)
    ).train()
    with torch.no_grad():
        feats = encoder(torch.randn(2, 8000), torch.tensor([1.0, 0.5]))
    assert feats.shape == (2, 25, 32) and feats.requires_grad
    assert feats[1, 13:].abs().sum() == 0
