"""Layer mix and late fusion inside the recipes' encoder -> pooling -> head structure."""

import pytest
import torch

from emoshare_sb.lobes import feature_lengths
from emoshare_sb.lobes.fusion import (
    ChannelSplitPooling,
    EarlyFusion,
    LayerMixEncoder,
    WeightedLayerSum,
)
from emoshare_sb.lobes.ssl import SSLEncoder
from emoshare_sb.nnet.aggregators import ECAPAAggregator
from emoshare_sb.nnet.pooling import MaskedMeanPooling
from emoshare_sb.synthetic.encoders import make_tiny_ssl_model

CLIP_SAMPLES = [16000, 9000, 3520]


def _batch(total=16000):
    generator = torch.Generator().manual_seed(0)
    clips = [0.3 * torch.randn(n, generator=generator) for n in CLIP_SAMPLES]
    batch = torch.zeros(len(clips), total)
    for i, clip in enumerate(clips):
        batch[i, : clip.shape[0]] = clip
    return clips, batch, torch.tensor([n / total for n in CLIP_SAMPLES])


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("fusion_ssl")
    return {
        "hubert": make_tiny_ssl_model(str(root / "hubert"), "hubert"),
        "wav2vec2": make_tiny_ssl_model(
            str(root / "w2v2"), "wav2vec2", hidden_size=16, seed=1
        ),
        "cache": str(root / "cache"),
    }


def _layer_mix_encoder(sources):
    ssl = SSLEncoder(sources["hubert"], sources["cache"], layer="all")
    mix = WeightedLayerSum(ssl.num_layers, layer_norm="utterance")
    with torch.no_grad():
        mix.weights.copy_(torch.tensor([0.5, -1.0, 2.0]))
    return LayerMixEncoder(ssl, mix)


def test_layer_mix_learns_although_the_frozen_encoder_runs_without_autograd(
    sources,
):
    encoder = _layer_mix_encoder(sources).train()
    _, wavs, lens = _batch()
    with torch.no_grad():  # what EmotionBrain.encode does for a frozen encoder
        feats = encoder(wavs, lens)
    assert feats.shape == (3, 49, 32) and encoder.output_size == 32
    feats.pow(2).sum().backward()
    assert encoder.layer_mix.weights.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in encoder.encoder.parameters())

    encoder.eval()
    with torch.no_grad():
        assert not encoder(wavs, lens).requires_grad


def test_layer_mix_encoder_is_padding_invariant(sources):
    encoder = _layer_mix_encoder(sources).eval()
    clips, wavs, lens = _batch(20000)
    with torch.no_grad():
        alone = [encoder(clip.unsqueeze(0)) for clip in clips]
        feats = encoder(wavs, lens)
    for i, reference in enumerate(alone):
        frames = reference.shape[1]
        torch.testing.assert_close(
            feats[i, :frames], reference[0], atol=1e-4, rtol=1e-4
        )
        assert feats[i, frames:].abs().sum() == 0


def test_layer_mix_encoder_checks_its_parts(sources):
    last_only = SSLEncoder(sources["hubert"], sources["cache"])
    with pytest.raises(ValueError, match="layer='all'"):
        LayerMixEncoder(last_only, WeightedLayerSum(3))
    every_layer = SSLEncoder(sources["hubert"], sources["cache"], layer="all")
    with pytest.raises(ValueError, match="num_layers"):
        LayerMixEncoder(every_layer, WeightedLayerSum(25))


def test_late_fusion_with_one_ecapa_per_encoder_is_padding_invariant(sources):
    encoders = [
        SSLEncoder(sources["hubert"], sources["cache"]),
        SSLEncoder(sources["wav2vec2"], sources["cache"]),
    ]
    torch.manual_seed(0)
    small = {
        "lin_neurons": 8,
        "channels": [16, 16, 16, 16, 48],
        "attention_channels": 8,
    }
    pooling = ChannelSplitPooling(
        [ECAPAAggregator(32, **small), ECAPAAggregator(16, **small)], [32, 16]
    ).eval()
    fusion = EarlyFusion(encoders).eval()
    assert pooling.output_size == 16
    clips, wavs, lens = _batch(20000)
    with torch.no_grad():
        alone = [pooling(fusion(clip.unsqueeze(0)), None) for clip in clips]
        fused = fusion(wavs, lens)
        frame_lens = feature_lengths(
            fusion, lens, wavs.shape[1], fused.shape[1]
        )
        embeddings = pooling(fused, frame_lens)
    for i, reference in enumerate(alone):
        torch.testing.assert_close(
            embeddings[i], reference[0], atol=1e-4, rtol=1e-4
        )


def test_channel_split_pooling_checks_channels():
    pooling = ChannelSplitPooling(
        [MaskedMeanPooling(), MaskedMeanPooling()], [4, 2]
    )
    assert pooling(torch.randn(2, 5, 6)).shape == (2, 6)
    with pytest.raises(ValueError, match="add up to 6"):
        pooling(torch.randn(2, 5, 7))
