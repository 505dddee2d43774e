"""``make_padding_mask`` (and so ``InputNormalization``) keeps exactly n of n / T frames.

Its mask is ``arange(T) < lengths * T - 1e-6``; for 5,691 of the 179,101
``(n, T)`` pairs with ``T < 600`` the float32 product ``(n / T) * T``
exceeds ``n`` by more than 1e-6 and one padded frame is counted. Fails on
SpeechBrain 1.1.2, passes with patch.diff.
"""

import torch
from speechbrain.processing.features import (
    InputNormalization,
    make_padding_mask,
)


def counted_frames(n, length):
    """Frames ``make_padding_mask`` keeps for relative lengths ``n / length``."""
    mask = make_padding_mask(torch.zeros(len(n), length), n.float() / length)
    return mask.sum(dim=1)


def test_relative_lengths_select_exactly_n_frames():
    for length in range(2, 600):
        n = torch.arange(1, length)
        assert torch.equal(counted_frames(n, length), n), length
    # Lengths that are not whole frames (relative to a waveform) still count
    # the started frame, as before: 0.5 of 101 frames is 51.
    assert (
        int(make_padding_mask(torch.zeros(1, 101), torch.tensor([0.5])).sum())
        == 51
    )


def test_sentence_normalisation_ignores_padded_frames():
    n, length = 36, 70  # float32 (36 / 70) * 70 > 36 + 1e-6: the first pair
    clip = torch.randn(1, n, 4, generator=torch.Generator().manual_seed(0))
    padded = torch.cat([clip, 1e3 * torch.ones(1, length - n, 4)], dim=1)
    norm = InputNormalization(norm_type="sentence")
    alone = norm(clip, torch.ones(1))
    batched = norm(padded, torch.tensor([n / length]))
    torch.testing.assert_close(batched[:, :n], alone, atol=1e-5, rtol=0)
