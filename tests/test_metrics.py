"""Whole-split metrics against scipy and the official ComParE reference file."""

import pathlib

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS
from emoshare_sb.metrics.regression import (
    ccc_per_column,
    pearson_per_column,
    regression_scores,
    spearman_per_column,
)

REFERENCE = (
    pathlib.Path(__file__).resolve().parents[2]
    / "shared/reference/compare23_devel_baseline_predictions.csv"
)
# Per-emotion values stated in shared/FORMATS.md.
REFERENCE_PER_EMOTION = [
    0.428,
    0.545,
    0.560,
    0.524,
    0.531,
    0.454,
    0.431,
    0.477,
    0.551,
]


@pytest.fixture(scope="module")
def reference():
    if not REFERENCE.exists():
        pytest.skip(f"{REFERENCE} is not beside this checkout")
    table = pd.read_csv(REFERENCE)
    y_true = table[[f"{e}_true" for e in COMPARE23_EMOTIONS]].to_numpy()
    y_pred = table[[f"{e}_pred" for e in COMPARE23_EMOTIONS]].to_numpy()
    return y_true, y_pred


def test_official_score_on_reference_file(reference):
    y_true, y_pred = reference
    scores = regression_scores(y_true, y_pred, COMPARE23_EMOTIONS)
    assert scores["spearman"]["mean"] == pytest.approx(0.5001, abs=1e-4)
    per_emotion = [scores["spearman"][e] for e in COMPARE23_EMOTIONS]
    np.testing.assert_allclose(per_emotion, REFERENCE_PER_EMOTION, atol=5e-4)


def test_score_is_not_a_common_wrong_variant(reference):
    y_true, y_pred = reference
    flattened = scipy.stats.spearmanr(y_true.ravel(), y_pred.ravel())[0]
    per_clip = np.nanmean(
        [
            scipy.stats.spearmanr(t, p)[0]
            for t, p in zip(y_true, y_pred, strict=True)
        ]
    )
    score = spearman_per_column(y_true, y_pred).mean()
    assert flattened == pytest.approx(0.564, abs=1e-3)
    assert per_clip == pytest.approx(0.545, abs=1e-3)
    assert abs(score - flattened) > 0.05 and abs(score - per_clip) > 0.03


def test_metrics_match_scipy_on_random_data():
    rng = np.random.default_rng(1)
    y_true = rng.random((50, 3))
    y_pred = y_true + rng.normal(0, 0.3, size=(50, 3))
    for d in range(3):
        assert spearman_per_column(y_true, y_pred)[d] == pytest.approx(
            scipy.stats.spearmanr(y_true[:, d], y_pred[:, d])[0]
        )
        assert pearson_per_column(y_true, y_pred)[d] == pytest.approx(
            scipy.stats.pearsonr(y_true[:, d], y_pred[:, d])[0]
        )
        x, y = y_true[:, d], y_pred[:, d]
        expected = (
            2
            * np.cov(x, y, bias=True)[0, 1]
            / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
        )
        assert ccc_per_column(y_true, y_pred)[d] == pytest.approx(expected)


def test_constant_column_gives_nan_not_a_crash():
    scores = regression_scores(
        [[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]],
        [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]],
        ["a", "b"],
    )
    assert scores["spearman"]["a"] == pytest.approx(1.0)
    assert np.isnan(scores["spearman"]["b"])
    assert scores["spearman"]["mean"] == pytest.approx(1.0)
