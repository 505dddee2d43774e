"""Markdown tables of ``emoshare-report``: published systems and MSP-Podcast runs.

Every table reads a recipe's ``results.json`` (or its ``best_checkpoint``
part) and, for the published numbers, ``published.json``
(:mod:`emoshare_sb.analysis.published`). The per-emotion score table of a
regression run is :func:`emoshare_sb.metrics.regression.format_scores_table`.

Authors
 * emoshare_sb contributors 2026
"""

import math

from emoshare_sb.analysis.published import published_results

# paUAR columns: k-best hypotheses and thresholds X (percent).
PAUAR_HYPOTHESES = ("1", "2", "3")
PAUAR_THRESHOLDS = ("50", "75")


def fmt(value, digits=3):
    """Formats a score for the tables; missing or NaN values as ``n/a``.

    Arguments
    ---------
    value : float or None
        The score.
    digits : int
        Digits after the decimal point.

    Returns
    -------
    str
        The formatted score.

    Example
    -------
    >>> fmt(0.55349), fmt(None), fmt(float("nan"))
    ('0.553', 'n/a', 'n/a')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


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


def published_table(results):
    """The published ComParE 2023 systems and this run, mean Spearman.

    Arguments
    ---------
    results : dict
        ``results.json``.

    Returns
    -------
    str
        A Markdown table (the systems of ``published.json``).

    Example
    -------
    >>> table = published_table({"devel": {"spearman": {"mean": 0.5612}}})
    >>> print(table.splitlines()[2])
    | **this run** | **0.561** | **n/a** |
    >>> print(table.splitlines()[3])
    | Official baseline (wav2vec2 + SVR) | 0.500 | 0.514 |
    """

    rows = [
        [
            "**this run**",
            f"**{fmt(_mean_spearman(results, 'devel'))}**",
            f"**{fmt(_mean_spearman(results, 'test'))}**",
        ]
    ]
    for system in published_results()["compare23"]["systems"]:
        rows.append(
            [system["system"], fmt(system["devel"]), fmt(system["test"])]
        )
    return markdown_table(
        ["system", "devel mean Spearman", "test mean Spearman"], rows
    )


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
    """This run next to the published MSP-Podcast numbers (``published.json``).

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

    if results.get("test3"):
        test3 = fmt(results["test3"]["categorical"].get("macro_f1"))
    elif "test3" in results:
        test3 = "n/a: Test3 is unlabelled, `predictions/test3.csv` is the submission"
    else:
        test3 = "n/a: no Test3 in this release"
    this_run = {
        "test3_macro_f1": test3,
        "test1_valence_ccc": _ccc(results, "test1", ("valence",)),
        "mitra_ccc_test1": _ccc(results, "test1"),
        "mitra_ccc_test1_snr15db": _ccc(results, "test1_snr15db"),
        "mitra_ccc_test1_snr5db": _ccc(results, "test1_snr5db"),
        "mitra_pauar50_k1": _pauar(results, 1, "50"),
        "mitra_pauar75_k1": _pauar(results, 1, "75"),
        "mitra_pauar75_k2_k3": (
            f"{_pauar(results, 2, '75')} / {_pauar(results, 3, '75')}"
        ),
    }
    rows = [
        [anchor["anchor"], anchor["published"], this_run[anchor["id"]]]
        for anchor in published_results()["msp_podcast"]["anchors"]
    ]
    return markdown_table(["anchor", "published", "this run"], rows)


def _mean_spearman(results, split):
    """The mean Spearman of a split of ``results.json``; None if not scored."""
    scores = results.get(split)
    return None if not scores else scores["spearman"]["mean"]


def _ccc(results, split, names=("arousal", "valence", "dominance")):
    """``a / v / d`` CCC of an MSP-Podcast split, ``n/a`` if not scored."""
    scores = results.get(split)
    if not scores:
        return "n/a"
    return " / ".join(
        fmt(scores["dimensional"]["ccc"].get(name)) for name in names
    )


def _pauar(results, k, x):
    """paUAR-X with k-best hypotheses on Test1, ``n/a`` if not scored."""
    scores = results.get("test1")
    if not scores:
        return "n/a"
    return _percent(
        scores["categorical"].get("pauar", {}).get(f"k{k}", {}).get(x)
    )
