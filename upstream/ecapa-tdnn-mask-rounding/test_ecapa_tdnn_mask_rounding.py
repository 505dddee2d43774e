"""ECAPA-TDNN's pooling and squeeze-excitation keep exactly the valid frames.

Both build their mask as ``arange(L) < lengths * L``; for relative lengths
``n / L`` the float32 product can exceed ``n`` and count frame ``n``, a
padded one, as valid. Fails on SpeechBrain 1.1.2, passes with patch.diff.
"""

import torch
from speechbrain.lobes.models.ECAPA_TDNN import (
    AttentiveStatisticsPooling,
    SEBlock,
)

CHANNELS = 6


def unrounded_pairs(max_len=600):
    """The (n, L) whose float32 (n / L) * L exceeds n (6,715 for L < 600)."""
    return [
        (n, length)
        for length in range(2, max_len)
        for n in range(1, length)
        if float(torch.tensor(n / length) * length) > n
    ]


def clip_and_padded(n, length):
    """A clip of n frames, and the same clip padded with loud frames to L."""
    clip = torch.randn(
        1, CHANNELS, n, generator=torch.Generator().manual_seed(0)
    )
    padding = 100.0 * torch.ones(1, CHANNELS, length - n)
    return clip, torch.cat([clip, padding], dim=2)


def test_attentive_statistics_pooling_ignores_padded_frames():
    torch.manual_seed(0)
    pool = AttentiveStatisticsPooling(CHANNELS, attention_channels=4).eval()
    for n, length in unrounded_pairs(60)[:20]:
        clip, padded = clip_and_padded(n, length)
        with torch.no_grad():
            alone = pool(clip)
            batched = pool(padded, lengths=torch.tensor([n / length]))
        torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)


def test_squeeze_excitation_ignores_padded_frames():
    torch.manual_seed(0)
    block = SEBlock(CHANNELS, 3, CHANNELS).eval()
    for n, length in unrounded_pairs(60)[:20]:
        clip, padded = clip_and_padded(n, length)
        with torch.no_grad():
            alone = block(clip)
            batched = block(padded, lengths=torch.tensor([n / length]))
        torch.testing.assert_close(batched[..., :n], alone, atol=1e-5, rtol=0)
