"""Metrics computed over a whole split, never averaged per batch.

Spearman's rho and CCC are not decomposable over batches, so SpeechBrain's
``MetricStats`` (which averages per-batch values) gives wrong numbers for
them. Here predictions are collected for the whole split first
(:class:`PredictionCollector`, gathered across processes under DDP) and
scored once.

The ComParE 2023 Emotion Share score is the mean over emotions of Spearman's
rho between true and predicted values of each emotion across all clips
(``scipy.stats.spearmanr`` per column). Rho over the flattened matrix and the
mean per-clip rho are common mistakes and not the score.

Every column is scored by one vectorised scipy call: ``scipy.stats.pearsonr``
with ``axis=0`` (on the columns' ranks, ``scipy.stats.rankdata(axis=0)``, for
Spearman's rho, which is Pearson's r of average ranks). ``spearmanr`` itself
cannot do it: given two matrices it returns the correlation matrix of all
their columns. What scipy lacks and is added here is a NaN, without a warning,
for a constant column (whose correlation is undefined) and for fewer than two
rows.

Authors
 * emoshare_sb contributors 2026
"""

import warnings

import numpy as np
import scipy.stats
import torch

from emoshare_sb.analysis.tables import fmt, markdown_table
from emoshare_sb.nnet.losses import concordance_correlation


def spearman_per_column(y_true, y_pred):
    """Spearman's rho of each column across rows (the ComParE per-emotion score).

    Arguments
    ---------
    y_true, y_pred : array-like
        ``[N, D]``.

    Returns
    -------
    numpy.ndarray
        ``[D]``; NaN for a constant column.

    Example
    -------
    >>> spearman_per_column([[1, 3], [2, 2], [3, 1]], [[1, 1], [2, 2], [4, 3]])
    array([ 1., -1.])
    """
    y_true, y_pred = _as_2d(y_true), _as_2d(y_pred)
    return pearson_per_column(
        scipy.stats.rankdata(y_true, axis=0),
        scipy.stats.rankdata(y_pred, axis=0),
    )


def pearson_per_column(y_true, y_pred):
    """Pearson's r of each column across rows.

    Arguments
    ---------
    y_true, y_pred : array-like
        ``[N, D]``.

    Returns
    -------
    numpy.ndarray
        ``[D]``; NaN for a constant column.

    Example
    -------
    >>> pearson_per_column([[1.0], [2.0], [3.0]], [[2.0], [4.0], [6.0]])
    array([1.])
    """
    y_true, y_pred = _as_2d(y_true), _as_2d(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"true and predicted values differ in shape: "
            f"{list(y_true.shape)} and {list(y_pred.shape)}"
        )
    if y_true.shape[0] < 2:
        return np.full(y_true.shape[1], np.nan)
    constant = _constant_columns(y_true) | _constant_columns(y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.stats.ConstantInputWarning)
        r = scipy.stats.pearsonr(y_true, y_pred, axis=0).statistic
    return np.where(constant, np.nan, r)


def ccc_per_column(y_true, y_pred):
    """Lin's concordance correlation coefficient of each column across rows.

    Population moments, as in the challenges' scoring scripts: the CCC of
    the training loss (:func:`emoshare_sb.nnet.losses.concordance_correlation`),
    in float64 and without its ``eps``, so that a column whose true and
    predicted values are the same constant is NaN, not 0.

    Arguments
    ---------
    y_true, y_pred : array-like
        ``[N, D]``.

    Returns
    -------
    numpy.ndarray
        ``[D]``.

    Example
    -------
    >>> ccc_per_column([[1.0], [2.0], [3.0]], [[2.0], [3.0], [4.0]]).round(4)
    array([0.5714])
    >>> ccc_per_column([[1.0], [1.0]], [[1.0], [1.0]])
    array([nan])
    """
    y_true, y_pred = _as_2d(y_true), _as_2d(y_pred)
    return concordance_correlation(
        torch.from_numpy(y_pred), torch.from_numpy(y_true), eps=0.0
    ).numpy()


def regression_scores(y_true, y_pred, names):
    """Per-column and mean Spearman, CCC and Pearson of a whole split.

    Arguments
    ---------
    y_true, y_pred : array-like
        ``[N, D]``.
    names : list of str
        The ``D`` column names (emotions or attributes).

    Returns
    -------
    dict
        ``{"spearman": {name: value, ..., "mean": value}, "ccc": ..., "pearson": ...}``.

    Example
    -------
    >>> scores = regression_scores(
    ...     [[0.0, 1], [1, 0], [2, 1]], [[0.0, 1], [1, 0], [2, 2]], ["a", "b"]
    ... )
    >>> {name: round(rho, 6) for name, rho in scores["spearman"].items()}
    {'a': 1.0, 'b': 0.866025, 'mean': 0.933013}
    """
    functions = {
        "spearman": spearman_per_column,
        "ccc": ccc_per_column,
        "pearson": pearson_per_column,
    }
    scores = {}
    for metric, function in functions.items():
        values = function(y_true, y_pred)
        scores[metric] = {
            name: float(v) for name, v in zip(names, values, strict=True)
        }
        scores[metric]["mean"] = (
            float(np.nanmean(values)) if len(values) else float("nan")
        )
    return scores


# Column titles of the Markdown tables.
METRIC_LABELS = {"spearman": "Spearman", "ccc": "CCC", "pearson": "Pearson"}


def format_scores_table(
    scores, names, title=None, baseline=None, markdown=False
):
    """A table of scores: one row per name plus the mean, one column per metric.

    The one formatter of :func:`regression_scores` results: fixed-width
    text for logs, or Markdown for reports (``emoshare-report``).

    Arguments
    ---------
    scores : dict
        As returned by :func:`regression_scores` (a split of
        ``results.json``).
    names : list of str
        Row order.
    title : str, optional
        A line printed above the table.
    baseline : dict, optional
        ``{name: value, "mean": value}`` shown as a last column (baseline
        Spearman).
    markdown : bool
        A Markdown table (the mean row in bold, missing values ``n/a``)
        instead of fixed-width text.

    Returns
    -------
    str
        The table.

    Example
    -------
    >>> scores = regression_scores(
    ...     [[0.0], [1], [2]], [[0.0], [2], [1]], ["Anger"]
    ... )
    >>> print(format_scores_table(scores, ["Anger"]))
    emotion         spearman       ccc   pearson
    Anger              0.500     0.500     0.500
    mean               0.500     0.500     0.500
    >>> print(
    ...     format_scores_table(
    ...         scores, ["Anger"], baseline={"Anger": 0.428}, markdown=True
    ...     )
    ... )
    | emotion | Spearman | CCC | Pearson | baseline Spearman |
    |---|---|---|---|---|
    | Anger | 0.500 | 0.500 | 0.500 | 0.428 |
    | **mean** | **0.500** | **0.500** | **0.500** | **n/a** |
    """
    metrics = list(scores)
    rows = []
    for name in list(names) + ["mean"]:
        values = [scores[metric].get(name) for metric in metrics]
        if baseline is not None:
            values.append(baseline.get(name))
        rows.append((name, values))
    lines = [] if title is None else [title]
    if markdown:
        header = ["emotion"] + [METRIC_LABELS.get(m, m) for m in metrics]
        if baseline is not None:
            header.append("baseline Spearman")
        cells = [[name] + [fmt(v) for v in values] for name, values in rows]
        cells[-1] = [f"**{cell}**" for cell in cells[-1]]
        lines.append(markdown_table(header, cells))
        return "\n".join(lines)
    header = metrics + (["baseline"] if baseline is not None else [])
    lines.append(f"{'emotion':<14}" + "".join(f"{m:>10}" for m in header))
    for name, values in rows:
        lines.append(
            f"{name:<14}" + "".join(f"{_nan_if_none(v):>10.3f}" for v in values)
        )
    return "\n".join(lines)


class PredictionCollector:
    """Collects ids, predictions and targets of a whole split, batch by batch.

    Under DDP each process holds part of the split: :meth:`gather` collects
    every process's rows so that metrics are computed over the whole split
    (duplicated rows from padded distributed samplers are dropped by id).

    Example
    -------
    >>> collector = PredictionCollector()
    >>> collector.append(
    ...     ["b", "a"],
    ...     torch.tensor([[0.5], [0.25]]),
    ...     torch.tensor([[1.0], [0.0]]),
    ... )
    >>> ids, preds, targets = collector.gather()
    >>> ids, preds.tolist(), targets.tolist()
    (['a', 'b'], [[0.25], [0.5]], [[0.0], [1.0]])
    """

    def __init__(self):
        self.ids, self.predictions, self.targets = [], [], []

    def append(self, ids, predictions, targets=None):
        """Adds one batch.

        Arguments
        ---------
        ids : list of str
            Clip ids.
        predictions : torch.Tensor
            ``[B, D]``.
        targets : torch.Tensor, optional
            ``[B, D]``; NaN where a clip has no label.
        """
        self.ids.extend(ids)
        self.predictions.append(predictions.detach().float().cpu().numpy())
        if targets is None:
            targets = torch.full_like(predictions, float("nan"))
        self.targets.append(targets.detach().float().cpu().numpy())

    def gather(self):
        """Returns ``(ids, predictions, targets)`` of the whole split, sorted by id.

        Returns
        -------
        tuple
            ``list`` of ids, ``[N, D]`` predictions, ``[N, D]`` targets
            (numpy arrays).
        """
        rows = list(
            zip(
                self.ids,
                _concat(self.predictions),
                _concat(self.targets),
                strict=True,
            )
        )
        if (
            torch.distributed.is_available()
            and torch.distributed.is_initialized()
        ):
            everyone = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(everyone, rows)
            rows = [row for part in everyone for row in part]
        unique = {row[0]: row for row in rows}
        ids = sorted(unique)
        predictions = (
            np.stack([unique[i][1] for i in ids]) if ids else np.zeros((0, 0))
        )
        targets = (
            np.stack([unique[i][2] for i in ids]) if ids else np.zeros((0, 0))
        )
        return ids, predictions, targets


def _concat(arrays):
    return [row for array in arrays for row in array]


def _as_2d(values):
    array = np.asarray(values, dtype=np.float64)
    return array[:, None] if array.ndim == 1 else array


def _constant_columns(array):
    return np.all(array == array[:1], axis=0)


def _nan_if_none(value):
    return float("nan") if value is None else value
