"""``StatisticsPooling`` in eval mode returns the exact mean, the same on every call.

SpeechBrain 1.1.2 adds random noise (1e-5 to 9e-5) to the mean in eval
mode too, so an embedding of the same input changes from call to call.
Fails on SpeechBrain 1.1.2, passes with patch.diff.
"""

import torch
from speechbrain.nnet.pooling import StatisticsPooling


def test_eval_mode_statistics_are_exact_and_repeatable():
    x = torch.randn(3, 20, 5, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([1.0, 0.5, 0.25])
    pool = StatisticsPooling(return_std=False).eval()
    first, second = pool(x, lengths), pool(x, lengths)
    assert torch.equal(first, second)
    exact = torch.stack(
        [x[i, : int(20 * lengths[i])].mean(0) for i in range(3)]
    )
    torch.testing.assert_close(first.squeeze(1), exact, atol=1e-7, rtol=0)
    # Training mode keeps SpeechBrain's regularising noise.
    pool.train()
    assert not torch.equal(pool(x, lengths), pool(x, lengths))
