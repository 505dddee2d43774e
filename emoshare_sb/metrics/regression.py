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

Authors
 * emoshare_sb contributors 2026
"""

import numpy as np
import scipy.stats
import torch


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
    return np.array(
        [
            _nan_if_constant(scipy.stats.spearmanr, y_true[:, d], y_pred[:, d])
            for d in range(y_true.shape[1])
        ]
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
    return np.array(
        [
            _nan_if_constant(scipy.stats.pearsonr, y_true[:, d], y_pred[:, d])
            for d in range(y_true.shape[1])
        ]
    )


def ccc_per_column(y_true, y_pred):
    """Lin's concordance correlation coefficient of each column across rows.

    Population moments, as in the challenges' scoring scripts.

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
    """
    y_true, y_pred = _as_2d(y_true), _as_2d(y_pred)
    mean_t, mean_p = y_true.mean(axis=0), y_pred.mean(axis=0)
    var_t, var_p = y_true.var(axis=0), y_pred.var(axis=0)
    cov = ((y_true - mean_t) * (y_pred - mean_p)).mean(axis=0)
    denominator = var_t + var_p + (mean_t - mean_p) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * cov / denominator, np.nan)


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
    >>> scores["spearman"]
    {'a': 1.0, 'b': 0.866..., 'mean': 0.933...}
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


def format_scores_table(scores, names, title=None):
    """A fixed-width table: one row per name plus the mean, one column per metric.

    Arguments
    ---------
    scores : dict
        As returned by :func:`regression_scores`.
    names : list of str
        Row order.
    title : str, optional
        A line printed above the table.

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
    """
    metrics = list(scores)
    lines = [] if title is None else [title]
    lines.append(f"{'emotion':<14}" + "".join(f"{m:>10}" for m in metrics))
    for name in list(names) + ["mean"]:
        lines.append(
            f"{name:<14}"
            + "".join(f"{scores[m][name]:>10.3f}" for m in metrics)
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


def _nan_if_constant(function, x, y):
    if np.all(x == x[0]) or np.all(y == y[0]):
        return np.nan
    return float(function(x, y)[0])
