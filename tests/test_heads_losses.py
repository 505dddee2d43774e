"""CCC and MSE losses, and the MLP head of Atmaja & Sasou."""

import numpy as np
import pytest
import torch

from emoshare_sb.metrics.regression import ccc_per_column
from emoshare_sb.nnet.heads import MLPHead
from emoshare_sb.nnet.losses import ccc_loss, concordance_correlation, mse_loss


def test_ccc_matches_the_metric_implementation():
    rng = np.random.default_rng(0)
    y, p = rng.random((20, 4)), rng.random((20, 4))
    torch_ccc = concordance_correlation(
        torch.tensor(p), torch.tensor(y)
    ).numpy()
    np.testing.assert_allclose(torch_ccc, ccc_per_column(y, p), atol=1e-6)
    assert float(ccc_loss(torch.tensor(p), torch.tensor(y))) == pytest.approx(
        1 - ccc_per_column(y, p).mean(), abs=1e-6
    )


def test_ccc_loss_penalises_bias_and_scale_unlike_pearson():
    y = torch.linspace(0, 1, 10).unsqueeze(1)
    assert float(ccc_loss(y, y)) == pytest.approx(0.0, abs=1e-6)
    assert float(ccc_loss(y + 0.5, y)) > 0.3
    assert float(ccc_loss(y * 0.1, y)) > 0.5


def test_ccc_loss_trains_a_linear_model():
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    y = x @ torch.randn(5, 3)
    model = torch.nn.Linear(5, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        optimizer.zero_grad()
        loss = ccc_loss(model(x), y)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.02


def test_mse_loss():
    assert float(mse_loss(torch.zeros(2, 2), torch.full((2, 2), 2.0))) == 4.0


def test_mlp_head_matches_the_paper_table():
    head = MLPHead(input_size=1024, output_size=9)
    linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (1024, 256),
        (256, 9),
    ]
    assert any(isinstance(m, torch.nn.GELU) for m in head.modules())
    out = head(torch.randn(3, 1024) * 100)
    assert out.shape == (3, 9) and bool(((out >= 0) & (out <= 1)).all())
    with pytest.raises(ValueError, match="output_activation"):
        MLPHead(4, 2, output_activation="tanh")
