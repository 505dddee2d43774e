"""Figures of ``emoshare-report``: scatter, bars, confusion matrices, per-speaker UAR.

Figures are drawn with matplotlib's Agg canvas (no display needed) and
written atomically (:func:`save_figure`).

Authors
 * emoshare_sb contributors 2026
"""

import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from emoshare_sb.analysis.tables import fmt
from emoshare_sb.utils.io import atomic_write


def save_figure(figure, path):
    """Writes a figure as PNG, atomically.

    Arguments
    ---------
    figure : matplotlib.figure.Figure
        The figure.
    path : str
        The ``.png`` file.
    """
    FigureCanvasAgg(figure)
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110, bbox_inches="tight")


def plot_scatter(y_true, y_pred, names, path, title=None, correlations=None):
    """True vs predicted value per output, one panel each, with the identity line.

    Arguments
    ---------
    y_true, y_pred : array-like
        ``[N, D]``.
    names : list of str
        The ``D`` panel titles.
    path : str
        The PNG file to write.
    title : str, optional
        Figure title.
    correlations : dict, optional
        ``{name: rho}`` shown in each panel's title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (written to ``path``).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> path = str(getfixture("tmpdir") / "scatter.png")
    >>> _ = plot_scatter(
    ...     rng.random((20, 2)), rng.random((20, 2)), ["a", "b"], path
    ... )
    >>> open(path, "rb").read(4)
    b'\\x89PNG'
    """
    y_true, y_pred = (
        np.asarray(y_true, dtype=float),
        np.asarray(y_pred, dtype=float),
    )
    columns = math.ceil(math.sqrt(len(names)))
    rows = math.ceil(len(names) / columns)
    figure = Figure(figsize=(3.2 * columns, 3.0 * rows))
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    low = float(np.nanmin([np.nanmin(y_true), np.nanmin(y_pred), 0.0]))
    high = float(np.nanmax([np.nanmax(y_true), np.nanmax(y_pred), 1.0]))
    margin = 0.03 * (high - low)  # points on the edges stay visible
    low, high = low - margin, high + margin
    for index, name in enumerate(names):
        ax = axes[index]
        ax.scatter(
            y_true[:, index], y_pred[:, index], s=8, alpha=0.5, linewidths=0
        )
        ax.plot(
            [low, high],
            [low, high],
            color="grey",
            linewidth=0.8,
            linestyle="--",
        )
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        label = (
            name
            if correlations is None
            else f"{name} (ρ = {fmt(correlations.get(name))})"
        )
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("true", fontsize=8)
        ax.set_ylabel("predicted", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path)
    return figure


def plot_bars(
    values, names, path, baseline=None, title=None, ylabel="Spearman ρ"
):
    """Per-output bars of a score, next to a baseline's where given.

    Arguments
    ---------
    values : dict
        ``{name: score}``.
    names : list of str
        Bar order.
    path : str
        The PNG file to write.
    baseline : dict or float, optional
        Per-name baseline scores (bars), or one value (a horizontal line).
    title : str, optional
        Figure title.
    ylabel : str
        Y axis label.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (written to ``path``).

    Example
    -------
    >>> import os
    >>> path = str(getfixture("tmpdir") / "bars.png")
    >>> _ = plot_bars(
    ...     {"a": 0.5, "b": 0.6},
    ...     ["a", "b"],
    ...     path,
    ...     baseline={"a": 0.4, "b": 0.5},
    ... )
    >>> os.path.getsize(path) > 0
    True
    """
    x = np.arange(len(names))
    figure = Figure(figsize=(max(4.0, 0.8 * len(names) + 1.5), 3.5))
    ax = figure.subplots()
    per_name = isinstance(baseline, dict)
    width = 0.4 if per_name else 0.6
    offset = width / 2 if per_name else 0.0
    ours = [_nan_if_none(values.get(n)) for n in names]
    ax.bar(x - offset, ours, width, label="this run")
    if per_name:
        ax.bar(
            x + offset,
            [_nan_if_none(baseline.get(n)) for n in names],
            width,
            label="baseline",
        )
    elif baseline is not None:
        ax.axhline(
            baseline,
            color="grey",
            linestyle="--",
            linewidth=1,
            label="baseline (mean)",
        )
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.axhline(0.0, color="black", linewidth=0.5)
    if baseline is not None:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    figure.tight_layout()
    save_figure(figure, path)
    return figure


def plot_confusion_matrices(
    matrices, class_names, path, titles=("1-best", "2-best")
):
    """Row-normalised confusion matrices side by side (Mitra et al., Fig. 4).

    Arguments
    ---------
    matrices : list of array-like
        ``[C, C]`` counts (rows: true class), e.g. 1-best and 2-best.
    class_names : list of str
        The ``C`` class names.
    path : str
        The PNG file to write.
    titles : sequence of str
        One title per matrix.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (written to ``path``).

    Example
    -------
    >>> import os
    >>> path = str(getfixture("tmpdir") / "cm.png")
    >>> cm = np.array([[5, 1], [2, 4]])
    >>> _ = plot_confusion_matrices(
    ...     [cm, cm + np.eye(2, dtype=int)], ["A", "S"], path
    ... )
    >>> os.path.getsize(path) > 0
    True
    """
    matrices = [np.asarray(m, dtype=float) for m in matrices]
    figure = Figure(figsize=(4.2 * len(matrices), 3.8))
    axes = np.atleast_1d(figure.subplots(1, len(matrices)))
    for ax, matrix, title in zip(axes, matrices, titles, strict=True):
        totals = matrix.sum(axis=1, keepdims=True)
        shares = np.divide(
            matrix, totals, out=np.zeros_like(matrix), where=totals > 0
        )
        image = ax.imshow(shares, vmin=0.0, vmax=1.0, cmap="Blues")
        for (row, column), share in np.ndenumerate(shares):
            ax.text(
                column,
                row,
                f"{share:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if share > 0.5 else "black",
            )
        ticks = np.arange(len(class_names))
        ax.set_xticks(ticks, class_names, fontsize=8)
        ax.set_yticks(ticks, class_names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
    figure.colorbar(image, ax=list(axes), shrink=0.8)
    save_figure(figure, path)
    return figure


def plot_uar_distribution(uars, path, bins=10, title=None, threshold=None):
    """Histogram of per-speaker UAR, one series per system (Mitra et al., Fig. 5).

    Arguments
    ---------
    uars : array-like or dict
        Per-speaker UAR values in [0, 1] (e.g. the values of
        :func:`emoshare_sb.metrics.classification.uar_per_speaker`), or
        ``{label: values}`` to overlay several (1-best, 2-best, ...).
    path : str
        The PNG file to write.
    bins : int
        Histogram bins over [0, 1].
    title : str, optional
        Figure title.
    threshold : float or sequence of float, optional
        Vertical lines, e.g. the paUAR thresholds (0.5, 0.75).

    Returns
    -------
    matplotlib.figure.Figure
        The figure (written to ``path``).

    Example
    -------
    >>> import os
    >>> path = str(getfixture("tmpdir") / "uar.png")
    >>> rng = np.random.default_rng(0)
    >>> _ = plot_uar_distribution(
    ...     {"1-best": rng.random(30), "2-best": rng.random(30)},
    ...     path,
    ...     threshold=0.5,
    ... )
    >>> os.path.getsize(path) > 0
    True
    """
    series = uars if isinstance(uars, dict) else {"UAR": uars}
    figure = Figure(figsize=(5.0, 3.5))
    ax = figure.subplots()
    edges = np.linspace(0.0, 1.0, bins + 1)
    arrays = [
        np.asarray(
            list(values.values()) if isinstance(values, dict) else values,
            dtype=float,
        )
        for values in series.values()
    ]
    # Side-by-side bars per bin: overlaid series would hide one another.
    ax.hist(
        arrays,
        bins=edges,
        label=[
            f"{label} (n = {len(values)})"
            for label, values in zip(series, arrays, strict=True)
        ],
    )
    thresholds = [] if threshold is None else np.atleast_1d(threshold)
    for value in thresholds:
        ax.axvline(value, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("per-speaker UAR")
    ax.set_ylabel("speakers")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    figure.tight_layout()
    save_figure(figure, path)
    return figure


def _nan_if_none(value):
    return float("nan") if value is None else value
