"""``AttentionPooling`` takes relative lengths and gives padded frames no weight.

SpeechBrain 1.1.2's ``AttentionPooling.forward(x)`` has no lengths: in a
padded batch the padded frames get attention weight and change the pooled
vector. Fails on SpeechBrain 1.1.2, passes with patch.diff.
"""

import torch
from speechbrain.nnet.pooling import AttentionPooling


def test_padded_frames_get_no_attention_weight():
    torch.manual_seed(0)
    pool = AttentionPooling(input_dim=6)
    generator = torch.Generator().manual_seed(1)
    frames = [10, 7, 1, 4]
    clips = [torch.randn(n, 6, generator=generator) for n in frames]
    batch = 100 * torch.randn(len(clips), 10, 6, generator=generator)
    for i, clip in enumerate(clips):
        batch[i, : clip.shape[0]] = clip
    lengths = torch.tensor([n / 10 for n in frames])
    with torch.no_grad():
        alone = torch.cat([pool(clip.unsqueeze(0)) for clip in clips])
        batched = pool(batch, lengths=lengths)
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
