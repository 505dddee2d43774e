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
labels were available). The MSP-Podcast plots — 1-best/2-best confusion
matrices (:func:`plot_confusion_matrices`) and the distribution of
per-speaker UAR (:func:`plot_uar_distribution`), Mitra et al. Figs. 4-5 —
take arrays, for the MSP recipe to call. Figures are drawn with
matplotlib's Agg canvas (no display needed) and every file is written
atomically.
"""

import argparse
import csv
import json
import math
import os
import sys

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS
from emoshare_sb.io import atomic_write

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
    ("wav2vec2-XLSR layer 18, segment ensemble (Porjazovski et al., Aalto)", None, 0.614),
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
    >>> scores = {m: {"Anger": 0.5, "mean": 0.5} for m in ("spearman", "ccc", "pearson")}
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
        scores = results.get(split)
        return None if not scores else scores["spearman"]["mean"]

    lines = ["| system | devel mean Spearman | test mean Spearman |", "|---|---|---|"]
    lines.append(f"| **this run** | **{fmt(mean_of('devel'))}** | **{fmt(mean_of('test'))}** |")
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
    with open(os.path.join(output_folder, "save", f"{split}.csv"), newline="") as handle:
        truth = {row["ID"]: [float(row[n]) for n in names] for row in csv.DictReader(handle)}
    ids, y_true, y_pred = [], [], []
    with open(os.path.join(output_folder, "predictions", f"{split}.csv"), newline="") as handle:
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
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
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
        ax.scatter(y_true[:, index], y_pred[:, index], s=8, alpha=0.5, linewidths=0)
        ax.plot([low, high], [low, high], color="grey", linewidth=0.8, linestyle="--")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        label = name if correlations is None else f"{name} (ρ = {fmt(correlations.get(name))})"
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


def plot_bars(values, names, path, baseline=None, title=None, ylabel="Spearman ρ"):
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
    >>> plot_bars({"a": 0.5, "b": 0.6}, ["a", "b"], path, baseline={"a": 0.4, "b": 0.5})
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
        ax.bar(x + offset, [_nan_if_none(baseline.get(n)) for n in names], width, label="baseline")
    elif baseline is not None:
        ax.axhline(baseline, color="grey", linestyle="--", linewidth=1, label="baseline (mean)")
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

    from emoshare_sb.classification_metrics import k_best_predictions

    probabilities = np.asarray(probabilities, dtype=float)
    hypotheses = k_best_predictions(targets, probabilities, k)
    return confusion_matrix(targets, hypotheses, labels=np.arange(probabilities.shape[1]))


def plot_confusion_matrices(matrices, class_names, path, titles=("1-best", "2-best")):
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
    >>> plot_confusion_matrices([cm, cm + np.eye(2, dtype=int)], ["A", "S"], path)
    >>> os.path.getsize(path) > 0
    True
    """
    matrices = [np.asarray(m, dtype=float) for m in matrices]
    figure = Figure(figsize=(4.2 * len(matrices), 3.8))
    axes = np.atleast_1d(figure.subplots(1, len(matrices)))
    for ax, matrix, title in zip(axes, matrices, titles, strict=True):
        totals = matrix.sum(axis=1, keepdims=True)
        shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
        image = ax.imshow(shares, vmin=0.0, vmax=1.0, cmap="Blues")
        for (row, column), share in np.ndenumerate(shares):
            ax.text(
                column, row, f"{share:.2f}", ha="center", va="center", fontsize=7,
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
        :func:`emoshare_sb.classification_metrics.uar_per_speaker`), or
        ``{label: values}`` to overlay several (1-best, 2-best, ...).
    path : str
        The PNG file to write.
    bins : int
        Histogram bins over [0, 1].
    title : str, optional
        Figure title.
    threshold : float, optional
        A vertical line, e.g. the paUAR threshold.

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "uar.png")
    >>> rng = np.random.default_rng(0)
    >>> plot_uar_distribution({"1-best": rng.random(30), "2-best": rng.random(30)}, path, threshold=0.5)
    >>> os.path.getsize(path) > 0
    True
    """
    series = uars if isinstance(uars, dict) else {"UAR": uars}
    figure = Figure(figsize=(5.0, 3.5))
    ax = figure.subplots()
    edges = np.linspace(0.0, 1.0, bins + 1)
    for label, values in series.items():
        values = np.asarray(list(values.values()) if isinstance(values, dict) else values, dtype=float)
        ax.hist(values, bins=edges, alpha=0.6, label=f"{label} (n = {len(values)})")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("per-speaker UAR")
    ax.set_ylabel("speakers")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    figure.tight_layout()
    save_figure(figure, path)


def write_report(output_folder, report_folder=None):
    """Writes ``report.md`` and the plots of a trained experiment.

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
    names = _target_names(output_folder, results)
    is_compare23 = names == COMPARE23_EMOTIONS

    written = []
    lines = [f"# Results of `{os.path.abspath(output_folder)}`", ""]
    if results.get("ssl_source"):
        lines.append(f"SSL encoder: `{results['ssl_source']}`.")
    averaged = results.get("averaged_from") or []
    if averaged:
        lines.append(f"Evaluated model: the average of {len(averaged)} best checkpoints by devel Spearman.")
    lines.append("")
    for split in ("devel", "test"):
        scores = results.get(split)
        if not scores:
            lines += [f"## {split}", "", "No labels: not scored.", ""]
            continue
        baseline = None
        if is_compare23 and split == "devel":
            baseline = {**COMPARE23_BASELINE_DEVEL, "mean": COMPARE23_BASELINE_MEAN["devel"]}
        ids, y_true, y_pred = read_split(output_folder, split, names)
        lines += [f"## {split} ({len(ids)} clips)", "", scores_table(scores, names, baseline), ""]
        scatter = os.path.join(report_folder, f"scatter_{split}.png")
        plot_scatter(y_true, y_pred, names, scatter, f"{split}: true vs predicted", scores["spearman"])
        bars = os.path.join(report_folder, f"bars_{split}.png")
        bar_baseline = baseline if baseline else (COMPARE23_BASELINE_MEAN[split] if is_compare23 else None)
        plot_bars(scores["spearman"], names, bars, bar_baseline, f"{split}: Spearman per emotion")
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
    with open(os.path.join(output_folder, "save", "devel.csv"), newline="") as handle:
        header = next(csv.reader(handle))
    names = header[3:]
    scored = next((results[s]["spearman"] for s in ("devel", "test") if results.get(s)), None)
    if scored is not None and set(scored) - {"mean"} != set(names):
        raise ValueError(
            f"{output_folder}: results.json scores {sorted(set(scored) - {'mean'})} "
            f"but the manifests hold {names}"
        )
    return names


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
        "--report_folder", default=None, help="where to write (default: OUTPUT_FOLDER/report)"
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    needed = ["results.json", os.path.join("save", "devel.csv")]
    missing = [n for n in needed if not os.path.isfile(os.path.join(args.output_folder, n))]
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
