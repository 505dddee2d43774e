"""``emoshare-report``: results table and plots of a trained experiment.

::

    emoshare-report results/ComParE23/hubert_attn/1986

writes, in ``<output_folder>/report/`` (or ``--report_folder``):

* ``report.md``: per split, a Markdown table of Spearman, CCC and Pearson per
  emotion and their mean, read from ``results.json``; for the ComParE 2023
  emotions, next to the official baseline's per-emotion devel Spearman and a
  table of the published systems (``published.json``);
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

The tables are :mod:`emoshare_sb.analysis.tables` (and
:func:`emoshare_sb.metrics.regression.format_scores_table`), the figures
:mod:`emoshare_sb.analysis.plots`, the published numbers
``emoshare_sb/analysis/published.json``, and what is read from the
experiment folder, checked, :mod:`emoshare_sb.analysis.results`; this module
puts them together. A ``results.json`` that is not valid JSON or not what a
recipe writes is a one-line error naming the file and the field (exit status
1), not a traceback.

Authors
 * emoshare_sb contributors 2026
"""

import argparse
import csv
import os
import sys

from emoshare_sb.analysis.plots import (
    plot_bars,
    plot_confusion_matrices,
    plot_scatter,
    plot_uar_distribution,
)
from emoshare_sb.analysis.published import (
    compare23_baseline_devel,
    compare23_system,
)
from emoshare_sb.analysis.results import (
    ResultsError,
    is_msp_results,
    msp_splits,
    read_msp_split,
    read_results,
    read_split,
)
from emoshare_sb.analysis.tables import (
    PAUAR_HYPOTHESES,
    msp_anchor_table,
    msp_averaging_table,
    msp_categorical_table,
    msp_dimensional_table,
    msp_gender_table,
    msp_speaker_table,
    published_table,
)
from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS
from emoshare_sb.data.msp_podcast import MSP_CLASS_CODES, MSP_CLASS_NAMES
from emoshare_sb.metrics.classification import (
    k_best_confusion_matrix,
    uar_per_speaker,
)
from emoshare_sb.metrics.regression import format_scores_table
from emoshare_sb.utils.io import atomic_write


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
        results = read_results(output_folder)
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
    results = read_results(output_folder)
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
            baseline = compare23_baseline_devel()
        ids, y_true, y_pred = read_split(output_folder, split, names)
        lines += [
            f"## {split} ({len(ids)} clips)",
            "",
            format_scores_table(
                scores, names, baseline=baseline, markdown=True
            ),
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
            else (compare23_system("baseline")[split] if is_compare23 else None)
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
            "(shared/FORMATS.md); published numbers: emoshare_sb/analysis/published.json. Scores are Spearman's ρ per emotion over the whole "
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
    if is_msp_results(read_results(output_folder)):
        return []  # the tables need results.json only; plots say what they lack
    devel = os.path.join("save", "devel.csv")
    return [] if os.path.isfile(os.path.join(output_folder, devel)) else [devel]


def main(argv=None):
    """Command line ``emoshare-report``.

    Arguments
    ---------
    argv : list of str, optional
        Arguments; None reads ``sys.argv``.

    Returns
    -------
    int
        0 on success, 2 for usage errors (no such experiment, no results),
        1 for a malformed ``results.json``.
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
    try:
        missing = _missing_files(args.output_folder)
        if missing:
            print(
                f"emoshare-report: error: '{args.output_folder}' is not a finished experiment "
                f"(missing {', '.join(missing)})",
                file=sys.stderr,
            )
            return 2
        written = write_report(args.output_folder, args.report_folder)
    except ResultsError as err:
        print(f"emoshare-report: error: {err}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
