"""The window study of Atmaja & Sasou (shared/papers/001, Table IV), as published.

::

    python -m emoshare_sb.cli.window_study hparams/hubert_attn.yaml \\
        --windows 1,1.5,2,2.5,3,3.5,4,4.5,5,5.5,6 \\
        --output_folder results/window_study -- --data_folder $DATA

runs ``recipes/ComParE23/train.py`` once per window ``w`` with the paper's
protocol: training clips cropped to ``w`` seconds (``--train_window w``),
devel and test scored on their first ``w`` seconds only, zero-padded
(``--eval_crop w``, as the released code's evaluation loaders do), and
checkpoints ranked by Avg = (Spearman + CCC) / 2 (``--checkpoint_metric
spearman_ccc``). Everything after ``--`` goes to every run unchanged.
It then writes ``window_study.csv`` and ``window_study.md`` in the output
folder: per window the devel Spearman, CCC and Avg of the best checkpoint
(what the paper reports: its code keeps the best epoch) and of the average of
the N best, next to the paper's Table IV.

Our README's sliding-window loop (``--eval_window w --eval_hop w``) scores
every window of a clip and averages them: an improvement for short windows,
not the paper's protocol, so its numbers are not Table IV's.

A run whose ``results.json`` already exists is not run again (delete its
folder to redo it).

Authors
 * emoshare_sb contributors 2026
"""

import argparse
import json
import os
import subprocess
import sys

from emoshare_sb.analysis.published import published_results
from emoshare_sb.utils.io import atomic_write, write_csv

# The recipe beside the package (a checkout), else relative to the folder
# the study runs from.
RECIPE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    "recipes",
    "ComParE23",
    "train.py",
)
if not os.path.isfile(RECIPE):
    RECIPE = os.path.join("recipes", "ComParE23", "train.py")
COLUMNS = [
    "window",
    "best_spearman",
    "best_ccc",
    "best_avg",
    "averaged_spearman",
    "averaged_ccc",
    "averaged_avg",
    "paper_spearman",
    "paper_ccc",
    "paper_avg",
]


def window_command(hparams_file, window, output_folder, overrides=()):
    """The recipe command of one window of the study.

    Arguments
    ---------
    hparams_file : str
        A ComParE 2023 YAML (e.g. ``hparams/hubert_attn.yaml``).
    window : float
        Seconds.
    output_folder : str
        The run's output folder.
    overrides : sequence of str
        More arguments for the recipe.

    Returns
    -------
    list of str
        The command line.

    Example
    -------
    >>> window_command("h.yaml", 2.5, "out")[
    ...     2:
    ... ]  # doctest: +NORMALIZE_WHITESPACE
    ['h.yaml', '--train_window', '2.5', '--eval_crop', '2.5',
     '--eval_window', '0', '--checkpoint_metric', 'spearman_ccc',
     '--output_folder', 'out']
    """
    return [
        sys.executable,
        RECIPE,
        hparams_file,
        "--train_window",
        f"{window:g}",
        "--eval_crop",
        f"{window:g}",
        "--eval_window",
        "0",
        "--checkpoint_metric",
        "spearman_ccc",
        "--output_folder",
        output_folder,
        *overrides,
    ]


def run_folder(output_folder, window):
    """The output folder of one window's run, e.g. ``<output>/window_2.5``."""
    return os.path.join(output_folder, f"window_{window:g}")


def devel_scores(scores):
    """``(Spearman, CCC, Avg)`` of a devel score dict of ``results.json``."""
    spearman = scores["spearman"]["mean"]
    ccc = scores["ccc"]["mean"]
    return spearman, ccc, (spearman + ccc) / 2.0


def study_rows(output_folder, windows):
    """One row per window: our devel scores (best and averaged) and the paper's.

    Arguments
    ---------
    output_folder : str
        The study's folder (one ``window_<w>`` run each).
    windows : list of float
        The windows run.

    Returns
    -------
    list of dict
        The :data:`COLUMNS` per window (paper columns empty where Table IV
        has no such window).
    """
    paper = {
        row["window"]: row
        for row in published_results()["compare23"]["atmaja_window_study"][
            "windows"
        ]
    }
    rows = []
    for window in windows:
        path = os.path.join(run_folder(output_folder, window), "results.json")
        with open(path, encoding="utf-8") as handle:
            results = json.load(handle)
        best = devel_scores(results["best_checkpoint"]["devel"])
        averaged = devel_scores(results["devel"])
        published = paper.get(window)
        row = {"window": f"{window:g}"}
        for prefix, values in (("best", best), ("averaged", averaged)):
            for name, value in zip(
                ("spearman", "ccc", "avg"), values, strict=True
            ):
                row[f"{prefix}_{name}"] = f"{value:.4f}"
        for name in ("spearman", "ccc", "avg"):
            row[f"paper_{name}"] = f"{published[name]:.4f}" if published else ""
        rows.append(row)
    return rows


def markdown_table(rows):
    """The study as a Markdown table (best checkpoint, averaged, paper).

    Example
    -------
    >>> row = dict.fromkeys(COLUMNS, ".5")
    >>> print(markdown_table([row]).splitlines()[0])
    | window (s) | SCC | CCC | Avg | SCC, 5-best avg. | CCC, 5-best avg. | Avg, 5-best avg. | paper SCC | paper CCC | paper Avg |
    """
    header = (
        "| window (s) | SCC | CCC | Avg | SCC, 5-best avg. | CCC, 5-best avg."
        " | Avg, 5-best avg. | paper SCC | paper CCC | paper Avg |"
    )
    lines = [header, "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(row[c] or "–" for c in COLUMNS) + " |")
    return "\n".join(lines)


def parse_windows(text):
    """``"1,1.5,2"`` -> ``[1.0, 1.5, 2.0]``; a bad list exits with status 2."""
    try:
        windows = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        windows = []
    if not windows or any(w <= 0 for w in windows):
        raise argparse.ArgumentTypeError(
            f"--windows must be positive seconds separated by commas, got {text!r}"
        )
    return windows


def main(argv=None):
    """Runs the study (command line: see the module docstring)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    overrides = []
    if "--" in argv:
        split = argv.index("--")
        argv, overrides = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(
        description="Atmaja & Sasou's window study (Table IV) as published: "
        "train on w-s crops, score the first w s of each clip."
    )
    parser.add_argument("hparams_file", help="a ComParE 2023 YAML")
    parser.add_argument(
        "--windows",
        type=parse_windows,
        default=parse_windows("1,1.5,2,2.5,3,3.5,4,4.5,5,5.5,6"),
        help="seconds, comma-separated (default: Table IV's)",
    )
    parser.add_argument("--output_folder", default="results/window_study")
    args = parser.parse_args(argv)
    for window in args.windows:
        folder = run_folder(args.output_folder, window)
        if os.path.isfile(os.path.join(folder, "results.json")):
            continue
        command = window_command(args.hparams_file, window, folder, overrides)
        if subprocess.run(command).returncode != 0:
            print(
                f"window_study: the run of window {window:g} s failed: "
                f"{' '.join(command)}",
                file=sys.stderr,
            )
            return 1
    rows = study_rows(args.output_folder, args.windows)
    write_csv(
        os.path.join(args.output_folder, "window_study.csv"), rows, COLUMNS
    )
    table = markdown_table(rows)
    with atomic_write(
        os.path.join(args.output_folder, "window_study.md")
    ) as handle:
        handle.write(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
