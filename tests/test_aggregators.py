"""Aggregators: padding never changes a clip's embedding; shapes; sizes; gradients."""

import pytest
import torch
from speechbrain.dataio.dataio import length_to_mask
from speechbrain.processing.features import make_padding_mask

from emoshare_sb.nnet.aggregators import (
    CNNLSTM,
    TCGRU,
    ECAPAAggregator,
    MaskedAttentiveStatisticsPooling,
    exact_relative_lengths,
)
from emoshare_sb.nnet.pooling import (
    MaskedAttentivePooling,
    MaskedMeanPooling,
    frame_mask,
)

C = 12

AGGREGATORS = {
    "mean": lambda: MaskedMeanPooling(),
    "attentive_linear": lambda: MaskedAttentivePooling(C),
    "attentive_mlp": lambda: MaskedAttentivePooling(C, hidden_size=8),
    "asp": lambda: MaskedAttentiveStatisticsPooling(C, hidden_size=8),
    "asp_no_context": lambda: MaskedAttentiveStatisticsPooling(
        C, hidden_size=8, global_context=False
    ),
    "ecapa": lambda: ECAPAAggregator(
        C,
        lin_neurons=10,
        channels=(16, 16, 16, 16, 48),
        attention_channels=8,
        se_channels=8,
    ),
    "cnn_lstm": lambda: CNNLSTM(C, conv_channels=(14, 10), hidden_size=9),
    "cnn_lstm_attention": lambda: CNNLSTM(
        C, conv_channels=(14, 10), hidden_size=9, attention=True
    ),
    "tcgru_last": lambda: TCGRU(
        C, conv_channels=10, gru_size=9, embedding_size=7
    ),
    "tcgru_mean": lambda: TCGRU(
        C, conv_channels=10, gru_size=9, embedding_size=7, pooling="mean"
    ),
}
OUTPUT_SIZES = {
    "mean": C,
    "attentive_linear": C,
    "attentive_mlp": C,
    "asp": 2 * C,
    "asp_no_context": 2 * C,
    "ecapa": 10,
    "cnn_lstm": 9,
    "cnn_lstm_attention": 9,
    "tcgru_last": 7,
    "tcgru_mean": 7,
}
# Odd and even lengths, a single frame, and a clip that fills the batch.
CLIP_FRAMES = [17, 10, 1, 6, 13]


def _make(name):
    torch.manual_seed(0)
    model = AGGREGATORS[name]()
    # Make BatchNorm running statistics non-trivial so eval mode really tests them.
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _clips():
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(n, C, generator=generator) for n in CLIP_FRAMES]


def _batch(clips, total, padding):
    generator = torch.Generator().manual_seed(2)
    batch = torch.zeros(len(clips), total, C)
    if padding == "random":
        batch = 100 * torch.randn(len(clips), total, C, generator=generator)
    for i, clip in enumerate(clips):
        batch[i, : clip.shape[0]] = clip
    lengths = torch.tensor([clip.shape[0] / total for clip in clips])
    return batch, lengths


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
@pytest.mark.parametrize("padding", ["zeros", "random"])
def test_padding_does_not_change_output(name, padding):
    model = _make(name)
    clips = _clips()
    with torch.no_grad():
        alone = torch.cat(
            [model(clip.unsqueeze(0), torch.ones(1)) for clip in clips]
        )
        alone_no_lengths = torch.cat(
            [model(clip.unsqueeze(0)) for clip in clips]
        )
        batched, lengths = _batch(clips, max(CLIP_FRAMES), padding)
        in_batch = model(batched, lengths)
        # Extra padding frames appended to the whole batch.
        padded, padded_lengths = _batch(clips, max(CLIP_FRAMES) + 9, padding)
        extra = model(padded, padded_lengths)
    torch.testing.assert_close(alone_no_lengths, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(in_batch, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(extra, alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_shapes_and_output_size(name):
    model = _make(name)
    batched, lengths = _batch(_clips(), 20, "zeros")
    out = model(batched, lengths)
    assert out.shape == (len(CLIP_FRAMES), OUTPUT_SIZES[name])
    if hasattr(model, "output_size"):
        assert model.output_size == OUTPUT_SIZES[name]
    assert torch.isfinite(out).all()


# Parameters a softmax over time cancels: SpeechBrain's attentive statistics
# pooling adds a per-channel bias to every frame's score (state dicts of
# pretrained ECAPA models hold it, so it stays). Their gradient is zero up to
# float rounding; every other parameter must get a real one.
SOFTMAX_INVARIANT = {"asp.conv.conv.bias"}


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_gradients_flow_and_skip_padding(name):
    model = _make(name)
    batched, lengths = _batch(_clips(), 20, "random")
    # Eval mode: padded frames get exactly zero gradient.
    x = batched.clone().requires_grad_(True)
    model(x, lengths).pow(2).sum().backward()
    for i, n in enumerate(CLIP_FRAMES):
        assert x.grad[i, :n].abs().sum() > 0
        assert x.grad[i, n:].abs().sum() == 0
    # Train mode: every parameter that can change the output gets a gradient
    # well above float noise (1e-4 of the largest one).
    if not list(model.parameters()):
        return
    model.train().zero_grad()
    model(batched, lengths).pow(2).sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(
        g is not None and torch.isfinite(g).all() for g in grads.values()
    )
    largest = max(float(g.abs().max()) for g in grads.values())
    for param_name, grad in grads.items():
        size = float(grad.abs().max())
        if param_name.endswith(tuple(SOFTMAX_INVARIANT)):
            assert size < 1e-4 * largest, param_name
        else:
            assert size > 1e-4 * largest, param_name


@pytest.mark.parametrize("hidden_size", [None, 8])
def test_attention_scores_have_no_softmax_invariant_bias(hidden_size):
    """A bias on every frame's score cancels in the softmax: there is none."""
    pool = MaskedAttentivePooling(C, hidden_size=hidden_size)
    last = pool.score if hidden_size is None else pool.score[-1]
    assert last.bias is None


@pytest.mark.parametrize("hidden_size", [None, 8])
def test_attentive_pooling_loads_state_dicts_with_the_old_bias(hidden_size):
    pool = MaskedAttentivePooling(C, hidden_size=hidden_size).eval()
    old = dict(pool.state_dict())
    key = "score.bias" if hidden_size is None else "score.2.bias"
    old[key] = torch.tensor([0.7])
    fresh = MaskedAttentivePooling(C, hidden_size=hidden_size).eval()
    fresh.load_state_dict(old)  # strict: the old bias is dropped, not an error
    x, lengths = _batch(_clips(), 20, "random")
    torch.testing.assert_close(fresh(x, lengths), pool(x, lengths))


def test_unrounded_relative_lengths_are_handled():
    """Lengths n/T whose float product n/T*T exceeds n still select n frames."""
    time, frames = next(
        (t, n)
        for t in range(2, 200)
        for n in range(1, t)
        if float(torch.tensor(n / t) * t) > n
    )
    assert float(torch.tensor(frames / time) * time) > frames
    model = _make("asp")
    clip = torch.randn(1, frames, C)
    padded = torch.cat([clip, 50 * torch.ones(1, time - frames, C)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(
            model(padded, torch.tensor([frames / time])),
            model(clip),
            atol=1e-5,
            rtol=0,
        )


def test_exact_relative_lengths_read_back_as_n_by_every_mask():
    """Unrounded (stock SpeechBrain), thresholded and rounded masks all keep n."""
    for time in range(2, 600):
        n = torch.arange(1, time + 1)
        mask = torch.arange(time)[None, :] < n[:, None]
        rel = exact_relative_lengths(mask)
        unrounded = length_to_mask(rel * time, max_len=time).sum(dim=1)
        padding = make_padding_mask(torch.zeros(time, time), rel).sum(dim=1)
        rounded = torch.round(rel * time)  # upstream ecapa-tdnn-mask-rounding
        for counted in (unrounded, padding, rounded):
            assert torch.equal(counted.long(), n), time
        assert torch.equal(frame_mask(torch.zeros(time, time, 1), rel), mask)


def test_tcgru_matches_paper_size():
    count = sum(p.numel() for p in TCGRU(input_size=1024).parameters())
    assert count == 1_641_984
    assert abs(count - 1.6e6) / 1.6e6 < 0.03


def test_paper_size_models():
    def count(model):
        return sum(p.numel() for p in model.parameters())

    assert count(CNNLSTM(1024)) == 7_013_696
    assert (
        count(CNNLSTM(1024, attention=True)) - count(CNNLSTM(1024))
        == 2 * 512 * 512 + 512
    )
    assert count(ECAPAAggregator(1024)) == 8_610_688


def test_cnn_lstm_halves_length_and_attention_query_uses_both_layers():
    model = CNNLSTM(C, conv_channels=(8,), hidden_size=6, attention=True)
    assert model.query.in_features == 2 * 6
    seen = {}
    model.lstm.register_forward_hook(
        lambda module, args, output: seen.update(
            steps=args[0].batch_sizes.numel()
        )
    )
    model(torch.randn(2, 11, C), torch.tensor([1.0, 0.5]))
    assert seen["steps"] == 6  # ceil(11 / 2)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        TCGRU(C, pooling="max")
    with pytest.raises(ValueError):
        CNNLSTM(C, kernel_size=4)
