"""Front-ends and fusion: shapes, padding invariance, layer weights, early/late fusion."""

import pytest
import torch
from speechbrain.processing.features import (
    InputNormalization,
    make_padding_mask,
)

from emoshare_sb.lobes.frontends import FbankFrontEnd, MFCCFrontEnd
from emoshare_sb.lobes.fusion import (
    ChannelSplitPooling,
    EarlyFusion,
    WeightedLayerSum,
)
from emoshare_sb.nnet.pooling import MaskedMeanPooling

FRONTENDS = {
    "fbank": (lambda: FbankFrontEnd(), 40),
    "fbank_deltas": (lambda: FbankFrontEnd(n_mels=24, deltas=True), 72),
    "mfcc": (lambda: MFCCFrontEnd(), 20),
    "mfcc_deltas": (lambda: MFCCFrontEnd(n_mfcc=13, deltas=True), 39),
    "fbank_mean_only": (lambda: FbankFrontEnd(std_norm=False), 40),
}
CLIP_SAMPLES = [16000, 9123, 4000, 480]


def _wavs():
    generator = torch.Generator().manual_seed(0)
    return [0.3 * torch.randn(n, generator=generator) for n in CLIP_SAMPLES]


def _batch(clips, total, padding):
    generator = torch.Generator().manual_seed(1)
    batch = torch.zeros(len(clips), total)
    if padding == "random":
        batch = torch.randn(len(clips), total, generator=generator)
    for i, clip in enumerate(clips):
        batch[i, : clip.shape[0]] = clip
    return batch, torch.tensor([clip.shape[0] / total for clip in clips])


@pytest.mark.parametrize("name", sorted(FRONTENDS))
def test_shapes_and_padded_frames(name):
    make, size = FRONTENDS[name]
    frontend = make()
    assert frontend.output_size == size
    wavs, lens = _batch(_wavs(), 16000, "zeros")
    feats = frontend(wavs, lens)
    assert feats.shape == (len(CLIP_SAMPLES), 101, size)
    for i, n in enumerate(CLIP_SAMPLES):
        frames = 1 + n // 160
        assert feats[i, frames:].abs().sum() == 0
        assert feats[i, :frames].abs().sum() > 0


@pytest.mark.parametrize("name", sorted(FRONTENDS))
@pytest.mark.parametrize("padding", ["zeros", "random"])
def test_padding_does_not_change_features(name, padding):
    frontend = FRONTENDS[name][0]()
    clips = _wavs()
    alone = [frontend(clip.unsqueeze(0), torch.ones(1))[0] for clip in clips]
    for total in (16000, 20011):
        wavs, lens = _batch(clips, total, padding)
        feats = frontend(wavs, lens)
        for i, reference in enumerate(alone):
            assert reference.shape[0] == 1 + CLIP_SAMPLES[i] // 160
            torch.testing.assert_close(
                feats[i, : reference.shape[0]], reference, atol=2e-5, rtol=0
            )


def test_normalisation_statistics_use_valid_frames_only():
    frontend = FbankFrontEnd()
    wavs, lens = _batch(_wavs(), 16000, "random")
    feats = frontend(wavs, lens)
    for i, n in enumerate(CLIP_SAMPLES):
        valid = feats[i, : 1 + n // 160]
        torch.testing.assert_close(
            valid.mean(0), torch.zeros(40), atol=1e-4, rtol=0
        )
        torch.testing.assert_close(
            valid.std(0, unbiased=False), torch.ones(40), atol=1e-3, rtol=0
        )


def _unrounded_pair():
    """A clip of n frames in a batch of T whose n / T SpeechBrain's mask overcounts."""
    return next(
        (n, t)
        for t in range(2, 200)
        for n in range(1, t)
        if make_padding_mask(torch.zeros(1, t), torch.tensor([n / t])).sum() > n
    )


def test_normalisation_excludes_the_frame_speechbrain_mask_admits():
    """n / T that make_padding_mask reads as n + 1 frames still normalises n."""
    frames, total = _unrounded_pair()
    frontend = FbankFrontEnd(std_norm=False)
    samples = (frames - 1) * 160  # 1 + samples // 160 == frames
    clip = 0.3 * torch.randn(
        samples, generator=torch.Generator().manual_seed(3)
    )
    wavs = torch.zeros(1, (total - 1) * 160)
    wavs[0, :samples] = clip
    feats = frontend(wavs, torch.tensor([samples / wavs.shape[1]]))
    assert feats.shape[1] == total
    alone = frontend(clip.unsqueeze(0))
    torch.testing.assert_close(feats[0, :frames], alone[0], atol=2e-5, rtol=0)
    # The defect worked around: SpeechBrain's own lengths count one more frame.
    x = torch.zeros(1, total, 1)
    x[0, :frames] = 1.0
    x[0, frames:] = 1e3
    stock = InputNormalization(norm_type="sentence", std_norm=False)
    assert stock(x, torch.tensor([frames / total]))[0, 0, 0] < -1.0


@pytest.mark.parametrize("layer_norm", [None, "frame", "utterance"])
def test_weighted_layer_sum_padding_and_weights(layer_norm):
    torch.manual_seed(0)
    combine = WeightedLayerSum(num_layers=4, layer_norm=layer_norm)
    with torch.no_grad():
        combine.weights.copy_(torch.randn(4))
    weights = combine.layer_weights()
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0))
    assert (weights > 0).all()

    frames = [9, 4, 1]
    clips = [3 * torch.randn(4, n, 6) + 2 for n in frames]
    alone = [combine(clip.unsqueeze(1), torch.ones(1))[0] for clip in clips]
    total = 13
    hidden = 100 * torch.randn(4, len(frames), total, 6)
    for i, clip in enumerate(clips):
        hidden[:, i, : frames[i]] = clip
    out = combine(hidden, torch.tensor([n / total for n in frames]))
    assert out.shape == (len(frames), total, 6)
    for i, n in enumerate(frames):
        torch.testing.assert_close(out[i, :n], alone[i], atol=1e-5, rtol=1e-5)
        assert out[i, n:].abs().sum() == 0

    out.sum().backward()
    assert (
        combine.weights.grad is not None
        and combine.weights.grad.abs().sum() > 0
    )


def test_weighted_layer_sum_starts_uniform_and_checks_layers():
    combine = WeightedLayerSum(num_layers=5, layer_norm=True)
    assert combine.layer_norm == "frame"
    torch.testing.assert_close(combine.layer_weights(), torch.full((5,), 0.2))
    hidden = torch.randn(5, 2, 3, 4)
    expected = torch.nn.functional.layer_norm(hidden, (4,)).mean(0)
    torch.testing.assert_close(combine(hidden), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="hidden states"):
        combine(torch.randn(3, 2, 3, 4))
    with pytest.raises(ValueError):
        WeightedLayerSum(3, layer_norm="batch")


@pytest.fixture(scope="module")
def tiny_encoders(tmp_path_factory):
    pytest.importorskip("transformers")
    from emoshare_sb.lobes.ssl import SSLEncoder
    from emoshare_sb.synthetic.encoders import make_tiny_ssl_model

    root = tmp_path_factory.mktemp("tiny_ssl")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        hubert = make_tiny_ssl_model(
            str(root / "hubert"), family="hubert", hidden_size=32
        )
        w2v2 = make_tiny_ssl_model(
            str(root / "w2v2"),
            family="wav2vec2",
            hidden_size=16,
            num_heads=2,
            seed=1,
        )
        return [
            SSLEncoder(hubert, save_path=str(root)).eval(),
            SSLEncoder(w2v2, save_path=str(root)).eval(),
        ]


def test_early_fusion_of_two_tiny_encoders(tiny_encoders):
    fusion = EarlyFusion(tiny_encoders)
    assert fusion.output_size == 48
    wavs, lens = _batch(_wavs()[:3], 16000, "zeros")
    with torch.no_grad():
        feats = fusion(wavs, lens)
        first = tiny_encoders[0](wavs, lens)
    assert feats.shape == (3, 49, 48)
    torch.testing.assert_close(feats[..., :32], first[:, :49])
    pooled = MaskedMeanPooling()(feats, lens)
    assert pooled.shape == (3, 48) and torch.isfinite(pooled).all()


def test_early_fusion_truncates_to_shortest():
    class Fixed(torch.nn.Module):
        def __init__(self, frames, size):
            super().__init__()
            self.frames, self.output_size = frames, size

        def forward(self, wavs, wav_lens=None):
            return torch.ones(wavs.shape[0], self.frames, self.output_size)

    fusion = EarlyFusion([Fixed(50, 3), Fixed(49, 2)])
    assert fusion(torch.zeros(2, 100)).shape == (2, 49, 5)
    with pytest.raises(ValueError):
        EarlyFusion([Fixed(5, 1)])


def test_late_fusion_of_two_tiny_encoders(tiny_encoders):
    """Early fusion + channel-split pooling = each encoder pooled on its own."""
    fusion = EarlyFusion(tiny_encoders)
    pooling = ChannelSplitPooling(
        [MaskedMeanPooling(), MaskedMeanPooling()], [32, 16]
    )
    wavs, lens = _batch(_wavs()[:2], 16000, "zeros")
    with torch.no_grad():
        emb = pooling(fusion(wavs, lens), lens)
        branches = [
            MaskedMeanPooling()(enc(wavs, lens), lens) for enc in tiny_encoders
        ]
    assert emb.shape == (2, 48) and pooling.output_size == 48
    torch.testing.assert_close(emb, torch.cat(branches, dim=-1))
    with pytest.raises(ValueError):
        ChannelSplitPooling([MaskedMeanPooling()], [32])
