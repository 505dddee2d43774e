"""``emoshare-report``: results table and plots of a trained experiment.

::

    emoshare-report results/ComParE23/hubert_attn/1986

writes, in ``<output_folder>/report/`` (or ``--report_folder``):

* ``report.md``: per split, a Markdown table of Spearman, CCC and Pearson per
  emotion and their mean, read from ``results.json``; for the ComParE 2023
  emotions, next to the official baseline's per-emotion devel Spearman and a
  table of the published systems (``shared/FORMATS.md``);
* ``scatter_<split>.png``: true vs predicted share per emotion, one panel
  each (as Mohapatra et al., Fig. 2);
* ``bars_<split>.png``: per-emotion Spearman, against the baseline where
  one is published.

A split is reported when ``results.json`` has its scores (test only when its
labels were available).

For an MSP-Podcast run (recognised from its ``results.json``: splits scored
with ``categorical`` and ``dimensional`` metrics) it writes instead:

* ``report.md``: Markdown tables, one row per scored split (valid, test1,
  test2, the noisy test1 sets), of the categorical metrics (macro-F1, the
  challenge score, micro-F1, macro precision, UAR, accuracy, 2/3-best
  accuracy), the CCC of arousal/valence/dominance, paUAR-50/75 with 1-, 2-
  and 3-best hypotheses, the same per gender, the averaged model against the
  best checkpoint alone, and this run next to the published anchors
  (``shared/FORMATS.md``; Mitra et al.), all read from ``results.json``;
* ``confusion_<split>.png``: 1-best and 2-best confusion matrices
  (:func:`k_best_confusion_matrix`, :func:`plot_confusion_matrices`;
  Mitra et al. Fig. 5);
* ``speaker_uar_<split>.png``: the distribution of per-speaker UAR with
  1-, 2- and 3-best hypotheses (:func:`plot_uar_distribution`; Mitra et al.
  Fig. 4 and Sec. 4), from ``predictions/<split>.csv`` and the manifest's
  consensus class and speaker.

Figures are drawn with matplotlib's Agg canvas (no display needed) and every
file is written atomically.

Authors
 * emoshare_sb contributors 2026
"""

import argparse
import csv
import json
import math
import os
import re
import sys

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS
from emoshare_sb.data.msp_podcast import MSP_CLASS_CODES, MSP_CLASS_NAMES
from emoshare_sb.metrics.classification import uar_per_speaker
from emoshare_sb.utils.io import atomic_write

METRICS = (("spearman", "Spearman"), ("ccc", "CCC"), ("pearson", "Pearson"))

# Official ComParE 2023 baseline (wav2vec2 + SVR), per-emotion devel Spearman
# (shared/FORMATS.md; recomputed from the organisers' devel predictions).
COMPARE23_BASELINE_DEVEL = dict(
    zip(
        COMPARE23_EMOTIONS,
        (0.428, 0.545, 0.560, 0.524, 0.531, 0.454, 0.431, 0.477, 0.551),
        strict=True,
    )
)
# Published mean Spearman of ComParE 2023 Emotion Share systems: (system, devel, test).
COMPARE23_PUBLISHED = (
    ("Official baseline (wav2vec2 + SVR)", 0.500, 0.514),
    ("HuBERT-Large + MLP, CCC loss (Atmaja & Sasou)", 0.553, 0.579),
    ("HuBERT-Large + CNN-LSTM-attention (Mohapatra et al.)", 0.523, None),
    (
        "wav2vec2-XLSR layer 18, segment ensemble (Porjazovski et al., Aalto)",
        None,
        0.614,
    ),
)
COMPARE23_BASELINE_MEAN = {"devel": 0.500, "test": 0.514}


def fmt(value, digits=3):
    """Formats a score for the tables; missing or NaN values as ``n/a``.

    Example
    -------
    >>> fmt(0.55349), fmt(None), fmt(float("nan"))
    ('0.553', 'n/a', 'n/a')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def scores_table(scores, names, baseline=None):
    """A Markdown table: one row per name and the mean, one column per metric.

    Arguments
    ---------
    scores : dict
        ``{"spearman": {name: v, ..., "mean": v}, "ccc": ..., "pearson": ...}``
        (a split of ``results.json``).
    names : list of str
        Row order.
    baseline : dict, optional
        ``{name: v, "mean": v}`` shown as a last column (baseline Spearman).

    Returns
    -------
    str
        The table.

    Example
    -------
    >>> scores = {
    ...     m: {"Anger": 0.5, "mean": 0.5}
    ...     for m in ("spearman", "ccc", "pearson")
    ... }
    >>> print(scores_table(scores, ["Anger"], {"Anger": 0.428, "mean": 0.5}))
    | emotion | Spearman | CCC | Pearson | baseline Spearman |
    |---|---|---|---|---|
    | Anger | 0.500 | 0.500 | 0.500 | 0.428 |
    | **mean** | **0.500** | **0.500** | **0.500** | **0.500** |
    """
    header = ["emotion"] + [label for _, label in METRICS]
    if baseline is not None:
        header.append("baseline Spearman")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in list(names) + ["mean"]:
        cells = [fmt(scores[metric].get(name)) for metric, _ in METRICS]
        if baseline is not None:
            cells.append(fmt(baseline.get(name)))
        if name == "mean":
            cells = [f"**{c}**" for c in cells]
            name = "**mean**"
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def published_table(results):
    """The published ComParE 2023 systems and this run, mean Spearman.

    Arguments
    ---------
    results : dict
        ``results.json``.

    Returns
    -------
    str
        A Markdown table.
    """

    def mean_of(split):
        """The split's mean Spearman, or None when it has no scores."""
        scores = results.get(split)
        return None if not scores else scores["spearman"]["mean"]

    lines = [
        "| system | devel mean Spearman | test mean Spearman |",
        "|---|---|---|",
    ]
    lines.append(
        f"| **this run** | **{fmt(mean_of('devel'))}** | **{fmt(mean_of('test'))}** |"
    )
    for system, devel, test in COMPARE23_PUBLISHED:
        lines.append(f"| {system} | {fmt(devel)} | {fmt(test)} |")
    return "\n".join(lines)


def read_split(output_folder, split, names):
    """True and predicted values of a split, aligned by clip.

    Arguments
    ---------
    output_folder : str
        The experiment folder.
    split : str
        ``devel`` or ``test``.
    names : list of str
        The target columns.

    Returns
    -------
    tuple
        ``(ids, y_true [N, D], y_pred [N, D])``; ``y_true`` is NaN where the
        manifest has no label.
    """
    with open(
        os.path.join(output_folder, "save", f"{split}.csv"), newline=""
    ) as handle:
        truth = {
            row["ID"]: [float(row[n]) for n in names]
            for row in csv.DictReader(handle)
        }
    ids, y_true, y_pred = [], [], []
    with open(
        os.path.join(output_folder, "predictions", f"{split}.csv"), newline=""
    ) as handle:
        for row in csv.DictReader(handle):
            ids.append(row["filename"])
            y_true.append(truth[row["filename"]])
            y_pred.append([float(row[n]) for n in names])
    return ids, np.array(y_true), np.array(y_pred)


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

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> path = str(getfixture("tmpdir") / "scatter.png")
    >>> plot_scatter(rng.random((20, 2)), rng.random((20, 2)), ["a", "b"], path)
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

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "bars.png")
    >>> plot_bars(
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


def k_best_confusion_matrix(targets, probabilities, k=1):
    """Confusion matrix of k-best hypotheses (rows: true class, columns: hypothesis).

    A clip counts on the diagonal when its true class is among its ``k`` most
    probable classes, and under its 1-best class otherwise (Mitra et al.'s
    2-best confusion matrices).

    Arguments
    ---------
    targets : array-like
        ``[N]`` class indices.
    probabilities : array-like
        ``[N, C]`` class probabilities.
    k : int
        How many of the most probable classes count.

    Returns
    -------
    numpy.ndarray
        ``[C, C]`` counts.

    Example
    -------
    >>> probabilities = [[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]
    >>> k_best_confusion_matrix([1, 1, 2], probabilities, k=2).tolist()
    [[0, 0, 0], [0, 2, 0], [0, 0, 1]]
    """
    from sklearn.metrics import confusion_matrix

    from emoshare_sb.metrics.classification import k_best_predictions

    probabilities = np.asarray(probabilities, dtype=float)
    hypotheses = k_best_predictions(targets, probabilities, k)
    return confusion_matrix(
        targets, hypotheses, labels=np.arange(probabilities.shape[1])
    )


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

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "cm.png")
    >>> cm = np.array([[5, 1], [2, 4]])
    >>> plot_confusion_matrices(
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

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "uar.png")
    >>> rng = np.random.default_rng(0)
    >>> plot_uar_distribution(
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
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    figure.tight_layout()
    save_figure(figure, path)


# MSP-Podcast ----------------------------------------------------------------

# A split the MSP-Podcast recipe scores: valid, testN, or a noisy testN set.
MSP_SPLIT_NAME = re.compile(r"^(valid|test\d+)(_snr[-+.\d]+db)?$")
PAUAR_HYPOTHESES = ("1", "2", "3")
PAUAR_THRESHOLDS = ("50", "75")
MSP_CHALLENGE_TEST3_MACRO_F1 = (
    "baseline 0.311; best Odyssey 2024 0.357; Interspeech 2025 about 0.41"
)
MSP_TEST1_VALENCE_CCC = "0.638 (Wagner et al.); 0.676 (Wav2Small teacher)"
# Mitra et al., WavLM TC-GRU, CCC arousal/valence/dominance (their Table 1).
MITRA_WAVLM_CCC = {
    "test1": "0.77 / 0.70 / 0.70 (Eval1.6); 0.66 / 0.63 / 0.58 (Eval1.11)",
    "test1_snr15db": "0.73 / 0.71 / 0.66",
    "test1_snr5db": "0.62 / 0.64 / 0.53",
}


def is_msp_results(results):
    """Whether a ``results.json`` was written by the MSP-Podcast recipe.

    Arguments
    ---------
    results : dict
        The loaded ``results.json``.

    Returns
    -------
    bool
        True when a split holds ``categorical`` and ``dimensional`` scores.

    Example
    -------
    >>> is_msp_results({"valid": {"categorical": {}, "dimensional": {}}})
    True
    >>> is_msp_results({"devel": {"spearman": {}, "ccc": {}, "pearson": {}}})
    False
    """
    return any(
        isinstance(scores, dict)
        and {"categorical", "dimensional"} <= set(scores)
        for scores in results.values()
    )


def msp_splits(results):
    """The MSP-Podcast splits of a ``results.json``, in its order.

    Arguments
    ---------
    results : dict
        The loaded ``results.json`` (or its ``best_checkpoint`` part).

    Returns
    -------
    scored : list of str
        Splits with scores (valid, test1, test2, noisy test1 sets, ...).
    unlabelled : list of str
        Splits with predictions only (Test3).

    Example
    -------
    >>> msp_splits(
    ...     {"ssl_layer": None, "valid": {"categorical": {}}, "test3": None}
    ... )
    (['valid'], ['test3'])
    """
    names = [name for name in results if MSP_SPLIT_NAME.match(name)]
    return (
        [name for name in names if results[name]],
        [name for name in names if not results[name]],
    )


def markdown_table(header, rows):
    """A Markdown table.

    Arguments
    ---------
    header : list of str
        Column titles.
    rows : list of list of str
        Cells.

    Returns
    -------
    str
        The table.

    Example
    -------
    >>> print(markdown_table(["split", "macro-F1"], [["valid", "0.312"]]))
    | split | macro-F1 |
    |---|---|
    | valid | 0.312 |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _percent(value):
    return "n/a" if value is None else f"{fmt(value, 1)} %"


def msp_categorical_table(results, splits):
    """Categorical metrics per split: the challenge's macro-F1 first.

    Arguments
    ---------
    results : dict
        ``results.json`` (or its ``best_checkpoint`` part).
    splits : list of str
        Rows, e.g. the scored splits of :func:`msp_splits`.

    Returns
    -------
    str
        A Markdown table; ``clips`` counts the clips with a consensus class.
    """
    header = [
        "split",
        "clips",
        "macro-F1",
        "micro-F1",
        "macro precision",
        "UAR",
        "accuracy",
        "2-best accuracy",
        "3-best accuracy",
    ]
    rows = []
    for split in splits:
        scores = results[split]["categorical"]
        top_k = scores.get("top_k_accuracy", {})
        rows.append(
            [split, str(scores.get("num_clips", 0))]
            + [
                fmt(scores.get(key))
                for key in (
                    "macro_f1",
                    "micro_f1",
                    "macro_precision",
                    "uar",
                    "accuracy",
                )
            ]
            + [fmt(top_k.get("2")), fmt(top_k.get("3"))]
        )
    return markdown_table(header, rows)


def msp_dimensional_table(results, splits):
    """CCC of each attribute and their mean, per split.

    Arguments
    ---------
    results : dict
        ``results.json`` (or its ``best_checkpoint`` part).
    splits : list of str
        Rows.

    Returns
    -------
    str
        A Markdown table.
    """
    names = (
        [n for n in results[splits[0]]["dimensional"]["ccc"] if n != "mean"]
        if splits
        else []
    )
    rows = []
    for split in splits:
        dimensional = results[split]["dimensional"]
        rows.append(
            [
                split,
                str(
                    dimensional.get(
                        "num_clips", results[split].get("num_clips")
                    )
                ),
            ]
            + [fmt(dimensional["ccc"].get(name)) for name in [*names, "mean"]]
        )
    return markdown_table(["split", "clips", *names, "mean CCC"], rows)


def msp_speaker_table(results, splits):
    """paUAR-50/75 (percent of known speakers) with 1-, 2- and 3-best hypotheses.

    Arguments
    ---------
    results : dict
        ``results.json`` (or its ``best_checkpoint`` part).
    splits : list of str
        Rows.

    Returns
    -------
    str
        A Markdown table.
    """
    header = ["split", "speakers"] + [
        f"paUAR-{x} {k}-best"
        for k in PAUAR_HYPOTHESES
        for x in PAUAR_THRESHOLDS
    ]
    rows = []
    for split in splits:
        categorical = results[split]["categorical"]
        pauar = categorical.get("pauar", {})
        rows.append(
            [split, str(categorical.get("num_speakers", 0))]
            + [
                _percent(pauar.get(f"k{k}", {}).get(x))
                for k in PAUAR_HYPOTHESES
                for x in PAUAR_THRESHOLDS
            ]
        )
    return markdown_table(header, rows)


def msp_gender_table(results, splits):
    """Categorical metrics, paUAR and mean CCC per gender (Mitra et al., App. A.5).

    Arguments
    ---------
    results : dict
        ``results.json`` (or its ``best_checkpoint`` part).
    splits : list of str
        Splits; one row per gender of each.

    Returns
    -------
    str
        A Markdown table.
    """
    header = [
        "split",
        "gender",
        "clips",
        "macro-F1",
        "UAR",
        "accuracy",
        "paUAR-50 1-best",
        "paUAR-75 1-best",
        "mean CCC",
    ]
    rows = []
    for split in splits:
        categorical = results[split]["categorical"].get("per_gender", {})
        dimensional = results[split]["dimensional"].get("per_gender", {})
        for gender in sorted(set(categorical) | set(dimensional)):
            scores = categorical.get(gender, {})
            pauar = scores.get("pauar", {}).get("k1", {})
            rows.append(
                [split, gender, str(scores.get("num_clips", 0))]
                + [
                    fmt(scores.get(key))
                    for key in ("macro_f1", "uar", "accuracy")
                ]
                + [_percent(pauar.get(x)) for x in PAUAR_THRESHOLDS]
                + [fmt(dimensional.get(gender, {}).get("ccc", {}).get("mean"))]
            )
    return markdown_table(header, rows)


def msp_averaging_table(results, splits):
    """The averaged model (the system) against the best checkpoint alone.

    Arguments
    ---------
    results : dict
        ``results.json``.
    splits : list of str
        Rows.

    Returns
    -------
    str
        A Markdown table (``n/a`` where the best checkpoint was not scored).
    """
    best = results.get("best_checkpoint") or {}
    rows = []
    for split in splits:
        alone = best.get(split) or {}
        rows.append(
            [
                split,
                fmt(results[split]["categorical"].get("macro_f1")),
                fmt(alone.get("categorical", {}).get("macro_f1")),
                fmt(results[split]["dimensional"]["ccc"].get("mean")),
                fmt(alone.get("dimensional", {}).get("ccc", {}).get("mean")),
            ]
        )
    header = [
        "split",
        "macro-F1 averaged",
        "macro-F1 best checkpoint",
        "mean CCC averaged",
        "mean CCC best checkpoint",
    ]
    return markdown_table(header, rows)


def msp_anchor_table(results):
    """This run next to the published MSP-Podcast numbers.

    The challenge anchors are those of ``shared/FORMATS.md``; Mitra et al.'s
    WavLM TC-GRU CCCs are their Table 1 (Eval1.6/Eval1.11 are the Test1 sets
    of those releases) and their across-speaker numbers come from Sec. 4 and
    the conclusion, which disagree for 2/3-best paUAR-75 (both are shown).

    Arguments
    ---------
    results : dict
        ``results.json``.

    Returns
    -------
    str
        A Markdown table: anchor, published, this run.
    """

    def ccc(split, names=("arousal", "valence", "dominance")):
        """The split's CCC per attribute as 'a / v / d', or 'n/a'."""
        scores = results.get(split)
        if not scores:
            return "n/a"
        return " / ".join(
            fmt(scores["dimensional"]["ccc"].get(name)) for name in names
        )

    def pauar(k, x):
        """Test1's paUAR-x with k-best hypotheses, in percent, or 'n/a'."""
        scores = results.get("test1")
        if not scores:
            return "n/a"
        return _percent(
            scores["categorical"].get("pauar", {}).get(f"k{k}", {}).get(x)
        )

    if results.get("test3"):
        test3 = fmt(results["test3"]["categorical"].get("macro_f1"))
    elif "test3" in results:
        test3 = "n/a: Test3 is unlabelled, `predictions/test3.csv` is the submission"
    else:
        test3 = "n/a: no Test3 in this release"
    rows = [
        [
            "Categorical macro-F1, Test3 (challenge score)",
            MSP_CHALLENGE_TEST3_MACRO_F1,
            test3,
        ],
        [
            "Valence CCC, Test1",
            MSP_TEST1_VALENCE_CCC,
            ccc("test1", ("valence",)),
        ],
        [
            "CCC arousal / valence / dominance, Test1 (Mitra et al., WavLM TC-GRU)",
            MITRA_WAVLM_CCC["test1"],
            ccc("test1"),
        ],
        [
            "the same, Test1 + noise at 15 dB SNR",
            MITRA_WAVLM_CCC["test1_snr15db"],
            ccc("test1_snr15db"),
        ],
        [
            "the same, Test1 + noise at 5 dB SNR",
            MITRA_WAVLM_CCC["test1_snr5db"],
            ccc("test1_snr5db"),
        ],
        [
            "paUAR-50, 1-best, Test1 (Mitra et al.)",
            "about 60 %",
            pauar(1, "50"),
        ],
        [
            "paUAR-75, 1-best, Test1 (Mitra et al.)",
            "below 10 % (5 % on Eval1.11)",
            pauar(1, "75"),
        ],
        [
            "paUAR-75, 2-best / 3-best, Test1 (Mitra et al.)",
            "> 28 % / 46 % (Sec. 4); > 60 % / > 85 % (conclusion)",
            f"{pauar(2, '75')} / {pauar(3, '75')}",
        ],
    ]
    return markdown_table(["anchor", "published", "this run"], rows)


def read_msp_split(output_folder, split, class_names=MSP_CLASS_NAMES):
    """The clips of a split with a consensus class: probabilities, classes, speakers.

    Arguments
    ---------
    output_folder : str
        The experiment folder (``predictions/<split>.csv`` and
        ``save/<manifest>.csv``; a noisy set such as ``test1_snr5db`` reads
        the ``test1`` manifest).
    split : str
        A scored split.
    class_names : list of str
        The probability columns, in the classes' order.

    Returns
    -------
    dict
        ``ids``, ``probabilities`` ``[N, C]``, ``targets`` ``[N]`` (class
        indices) and ``speakers`` ``[N]``, for the clips whose consensus is
        one of the classes (as the recipe's categorical metrics).
    """
    manifest = os.path.join(
        output_folder, "save", f"{split.split('_snr')[0]}.csv"
    )
    with open(manifest, newline="") as handle:
        truth = {row["ID"]: row for row in csv.DictReader(handle)}
    ids, probabilities, targets, speakers = [], [], [], []
    path = os.path.join(output_folder, "predictions", f"{split}.csv")
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            clip = truth[row["FileName"]]
            if (
                clip["emo_class"] not in MSP_CLASS_CODES
            ):  # O, X or none: no class
                continue
            ids.append(row["FileName"])
            probabilities.append([float(row[name]) for name in class_names])
            targets.append(MSP_CLASS_CODES.index(clip["emo_class"]))
            speakers.append(clip["spk_id"])
    return {
        "ids": ids,
        "probabilities": np.array(probabilities, dtype=float).reshape(
            -1, len(class_names)
        ),
        "targets": np.array(targets, dtype=int),
        "speakers": np.array(speakers, dtype=str),
    }


def plot_msp_split(
    output_folder, split, report_folder, class_names=MSP_CLASS_NAMES
):
    """Writes the confusion matrices and the per-speaker UAR plot of a split.

    Arguments
    ---------
    output_folder : str
        The experiment folder.
    split : str
        A scored split.
    report_folder : str
        Where the PNGs go.
    class_names : list of str
        The classes, in the prediction columns' order.

    Returns
    -------
    confusion, speaker_uar : str
        The two PNG files.
    data : dict
        From :func:`read_msp_split`, with ``uars``: ``{"1-best": {speaker: UAR}, ...}``.
    """
    data = read_msp_split(output_folder, split, class_names)
    targets, probabilities = data["targets"], data["probabilities"]
    confusion = os.path.join(report_folder, f"confusion_{split}.png")
    matrices = [
        k_best_confusion_matrix(targets, probabilities, k) for k in (1, 2)
    ]
    codes = (
        MSP_CLASS_CODES if list(class_names) == MSP_CLASS_NAMES else class_names
    )
    plot_confusion_matrices(
        matrices,
        codes,
        confusion,
        titles=(f"{split}: 1-best", f"{split}: 2-best"),
    )
    data["uars"] = {
        f"{k}-best": uar_per_speaker(
            targets, probabilities, data["speakers"], k=int(k)
        )
        for k in PAUAR_HYPOTHESES
    }
    speaker_uar = os.path.join(report_folder, f"speaker_uar_{split}.png")
    plot_uar_distribution(
        data["uars"],
        speaker_uar,
        title=f"{split}: UAR per speaker",
        threshold=(0.5, 0.75),
    )
    return confusion, speaker_uar, data


def write_msp_report(output_folder, report_folder=None, results=None):
    """Writes ``report.md`` and the plots of an MSP-Podcast experiment.

    Arguments
    ---------
    output_folder : str
        The MSP-Podcast recipe's ``--output_folder``.
    report_folder : str, optional
        Where to write (default ``<output_folder>/report``).
    results : dict, optional
        Its ``results.json``, if already loaded.

    Returns
    -------
    list of str
        The files written.
    """
    report_folder = report_folder or os.path.join(output_folder, "report")
    if results is None:
        with open(os.path.join(output_folder, "results.json")) as handle:
            results = json.load(handle)
    class_names = results.get("classes") or MSP_CLASS_NAMES
    scored, unlabelled = msp_splits(results)

    lines = [
        f"# Results of `{os.path.abspath(output_folder)}` (MSP-Podcast)",
        "",
    ]
    if results.get("ssl_source"):
        layer = results.get("ssl_layer")
        lines.append(
            f"SSL encoder: `{results['ssl_source']}`"
            + (
                f", hidden state {layer}."
                if layer is not None
                else ", last hidden state."
            )
        )
    if results.get("categorical_loss"):
        lines.append(f"Categorical loss: `{results['categorical_loss']}`.")
    averaged = results.get("averaged_from") or []
    if averaged:
        lines.append(
            f"Evaluated model: the average of {len(averaged)} best checkpoints by "
            f"`{results.get('checkpoint_metric', 'the validation score')}`."
        )
    lines += [
        "Every score is computed once over the whole split. Categorical metrics "
        "count the clips whose consensus is one of the 8 classes "
        f"({', '.join(f'{c} {n}' for c, n in zip(MSP_CLASS_CODES, MSP_CLASS_NAMES, strict=True))}); "
        "macro-F1 averages all 8 classes, UAR the classes present.",
        "",
    ]
    if unlabelled:
        lines += [
            f"Unlabelled, predictions only: {', '.join(unlabelled)} "
            f"(`predictions/<split>.csv`).",
            "",
        ]
    lines += [
        "## Categorical",
        "",
        msp_categorical_table(results, scored),
        "",
        "## Dimensional (CCC)",
        "",
        msp_dimensional_table(results, scored),
        "",
        "## Across speakers (paUAR-X: % of known speakers whose UAR is above X %)",
        "",
        msp_speaker_table(results, scored),
        "",
        "## Per gender",
        "",
        msp_gender_table(results, scored),
        "",
        "## Averaged model and best checkpoint",
        "",
        msp_averaging_table(results, scored),
        "",
        "## Published anchors",
        "",
        msp_anchor_table(results),
        "",
        "Published numbers: shared/FORMATS.md (challenges) and Mitra et al., "
        "shared/papers/003 (Table 1, Sec. 4, conclusion); they train on other "
        "releases and Mitra et al. score 6 emotions, so they are anchors, not "
        "like-for-like baselines.",
        "",
        "## Confusion matrices and per-speaker UAR",
        "",
        "Rows are the consensus class, columns the hypothesis; each row is "
        "normalised. With 2-best a clip counts as right when its class is one "
        "of its two most probable (Mitra et al., Fig. 5). The histograms count "
        "known speakers by UAR with 1-, 2- and 3-best hypotheses; the dashed "
        "lines are the paUAR-50 and paUAR-75 thresholds (Mitra et al., Sec. 4).",
        "",
    ]
    written = []
    for split in scored:
        try:
            confusion, speaker_uar, data = plot_msp_split(
                output_folder, split, report_folder, class_names
            )
        except (
            OSError,
            KeyError,
        ) as err:  # a folder without predictions or manifests
            lines += [f"### {split}", "", f"No plots: {err}.", ""]
            continue
        lines += [
            f"### {split} ({len(data['ids'])} clips with a class, "
            f"{len(data['uars']['1-best'])} known speakers)",
            "",
            f"![1-best and 2-best confusion matrices]({os.path.basename(confusion)})",
            "",
            f"![per-speaker UAR]({os.path.basename(speaker_uar)})",
            "",
        ]
        written += [confusion, speaker_uar]
    markdown = os.path.join(report_folder, "report.md")
    with atomic_write(markdown) as handle:
        handle.write("\n".join(lines))
    return [markdown] + written


def write_report(output_folder, report_folder=None):
    """Writes ``report.md`` and the plots of a trained experiment.

    The recipe is recognised from ``results.json``: an MSP-Podcast run is
    reported by :func:`write_msp_report`, any other by its per-output
    Spearman/CCC/Pearson tables and scatter plots.

    Arguments
    ---------
    output_folder : str
        The recipe's ``--output_folder`` (``results.json``, ``save/<split>.csv``,
        ``predictions/<split>.csv``).
    report_folder : str, optional
        Where to write (default ``<output_folder>/report``).

    Returns
    -------
    list of str
        The files written.
    """
    report_folder = report_folder or os.path.join(output_folder, "report")
    with open(os.path.join(output_folder, "results.json")) as handle:
        results = json.load(handle)
    if is_msp_results(results):
        return write_msp_report(output_folder, report_folder, results)
    names = _target_names(output_folder, results)
    is_compare23 = names == COMPARE23_EMOTIONS

    written = []
    lines = [f"# Results of `{os.path.abspath(output_folder)}`", ""]
    if results.get("ssl_source"):
        lines.append(f"SSL encoder: `{results['ssl_source']}`.")
    averaged = results.get("averaged_from") or []
    if averaged:
        lines.append(
            f"Evaluated model: the average of {len(averaged)} best checkpoints by devel Spearman."
        )
    lines.append("")
    for split in ("devel", "test"):
        scores = results.get(split)
        if not scores:
            lines += [f"## {split}", "", "No labels: not scored.", ""]
            continue
        baseline = None
        if is_compare23 and split == "devel":
            baseline = {
                **COMPARE23_BASELINE_DEVEL,
                "mean": COMPARE23_BASELINE_MEAN["devel"],
            }
        ids, y_true, y_pred = read_split(output_folder, split, names)
        lines += [
            f"## {split} ({len(ids)} clips)",
            "",
            scores_table(scores, names, baseline),
            "",
        ]
        scatter = os.path.join(report_folder, f"scatter_{split}.png")
        plot_scatter(
            y_true,
            y_pred,
            names,
            scatter,
            f"{split}: true vs predicted",
            scores["spearman"],
        )
        bars = os.path.join(report_folder, f"bars_{split}.png")
        bar_baseline = (
            baseline
            if baseline
            else (COMPARE23_BASELINE_MEAN[split] if is_compare23 else None)
        )
        plot_bars(
            scores["spearman"],
            names,
            bars,
            bar_baseline,
            f"{split}: Spearman per emotion",
        )
        lines += [f"![true vs predicted]({os.path.basename(scatter)})", ""]
        lines += [f"![Spearman per emotion]({os.path.basename(bars)})", ""]
        written += [scatter, bars]
    if is_compare23:
        lines += [
            "## Published ComParE 2023 Emotion Share results",
            "",
            published_table(results),
            "",
            "Baseline per-emotion values: the official wav2vec2 + SVR devel predictions "
            "(shared/FORMATS.md). Scores are Spearman's ρ per emotion over the whole "
            "split, averaged over emotions.",
            "",
        ]
    markdown = os.path.join(report_folder, "report.md")
    with atomic_write(markdown) as handle:
        handle.write("\n".join(lines))
    return [markdown] + written


def _target_names(output_folder, results):
    """The target columns, from the devel manifest (after ID, duration, wav)."""
    with open(
        os.path.join(output_folder, "save", "devel.csv"), newline=""
    ) as handle:
        header = next(csv.reader(handle))
    names = header[3:]
    scored = next(
        (results[s]["spearman"] for s in ("devel", "test") if results.get(s)),
        None,
    )
    if scored is not None and set(scored) - {"mean"} != set(names):
        raise ValueError(
            f"{output_folder}: results.json scores {sorted(set(scored) - {'mean'})} "
            f"but the manifests hold {names}"
        )
    return names


def _missing_files(output_folder):
    """Files a report of ``output_folder`` needs that are not there."""
    results = os.path.join(output_folder, "results.json")
    if not os.path.isfile(results):
        return ["results.json"]
    with open(results) as handle:
        if is_msp_results(json.load(handle)):
            return []  # the tables need results.json only; plots say what they lack
    devel = os.path.join("save", "devel.csv")
    return [] if os.path.isfile(os.path.join(output_folder, devel)) else [devel]


def _nan_if_none(value):
    return float("nan") if value is None else value


def main(argv=None):
    """Command line ``emoshare-report``.

    Arguments
    ---------
    argv : list of str, optional
        Arguments; None reads ``sys.argv``.

    Returns
    -------
    int
        0 on success, 2 for usage errors (no such experiment, no results).
    """
    parser = argparse.ArgumentParser(
        prog="emoshare-report",
        description="Markdown results table and plots of a trained emoshare_sb experiment.",
    )
    parser.add_argument("output_folder", help="the recipe's --output_folder")
    parser.add_argument(
        "--report_folder",
        default=None,
        help="where to write (default: OUTPUT_FOLDER/report)",
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    missing = _missing_files(args.output_folder)
    if missing:
        print(
            f"emoshare-report: error: '{args.output_folder}' is not a finished experiment "
            f"(missing {', '.join(missing)})",
            file=sys.stderr,
        )
        return 2
    for path in write_report(args.output_folder, args.report_folder):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
