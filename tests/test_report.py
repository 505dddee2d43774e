"""``emoshare-report``: table numbers equal results.json; plots are written; MSP plots."""

import json
import re

import numpy as np
import pytest

from emoshare_sb.analysis.plots import (
    plot_confusion_matrices,
    plot_uar_distribution,
)
from emoshare_sb.analysis.published import compare23_baseline_devel
from emoshare_sb.cli.report import main
from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS
from emoshare_sb.metrics.classification import (
    k_best_confusion_matrix,
    uar_per_speaker,
)
from emoshare_sb.metrics.regression import format_scores_table
from tests.test_inference import train_tiny_compare23

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, small_compare23, tiny_hubert):
    return train_tiny_compare23(tmp_path_factory, small_compare23, tiny_hubert)


@pytest.fixture(scope="module")
def report(experiment, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    assert main([str(experiment), "--report_folder", str(folder)]) == 0
    return folder


def table_rows(markdown, section):
    """Rows of the first table after the '## <section>' heading: {first cell: cells}."""
    lines = markdown.split(f"## {section}", 1)[1].splitlines()
    rows = {}
    for line in lines[1:]:
        if line.startswith("## "):
            break
        if (
            line.startswith("| ")
            and not line.startswith("| emotion")
            and "---" not in line
        ):
            cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_report_files_exist(report):
    # The small corpus has no test labels: only devel is scored and plotted.
    names = sorted(p.name for p in report.iterdir())
    assert names == ["bars_devel.png", "report.md", "scatter_devel.png"]
    for name in ("bars_devel.png", "scatter_devel.png"):
        assert (report / name).read_bytes()[:8] == PNG
    markdown = (report / "report.md").read_text()
    assert "![true vs predicted](scatter_devel.png)" in markdown
    assert "## test" in markdown and "No labels" in markdown


def test_table_numbers_equal_results_json(report, experiment):
    results = json.loads((experiment / "results.json").read_text())
    rows = table_rows((report / "report.md").read_text(), "devel")
    assert list(rows) == COMPARE23_EMOTIONS + ["mean"]
    for emotion, cells in rows.items():
        expected = [
            f"{results['devel'][m][emotion]:.3f}"
            for m in ("spearman", "ccc", "pearson")
        ]
        assert cells[:3] == expected, emotion
        baseline = compare23_baseline_devel()[emotion]
        assert cells[3] == f"{baseline:.3f}"


def test_published_baselines_are_listed(report, experiment):
    results = json.loads((experiment / "results.json").read_text())
    rows = table_rows((report / "report.md").read_text(), "Published")
    assert rows["this run"] == [
        f"{results['devel']['spearman']['mean']:.3f}",
        "n/a",
    ]
    published = {system.split(" (")[0]: cells for system, cells in rows.items()}
    assert published["Official baseline"] == ["0.500", "0.514"]
    assert published["HuBERT-Large + MLP, CCC loss"] == ["0.553", "0.579"]
    assert published["HuBERT-Large + CNN-LSTM-attention"] == ["0.523", "n/a"]
    assert published["wav2vec2-XLSR layer 18, segment ensemble"] == [
        "n/a",
        "0.614",
    ]


def test_default_report_folder_and_usage_errors(experiment, tmp_path, capsys):
    assert main([str(experiment)]) == 0
    assert (experiment / "report" / "report.md").is_file()
    assert main([str(tmp_path)]) == 2
    assert "not a finished experiment" in capsys.readouterr().err
    assert main([]) == 2


def test_table_without_baseline_for_other_corpora():
    scores = {
        m: {"valence": 0.25, "mean": 0.25}
        for m in ("spearman", "ccc", "pearson")
    }
    table = format_scores_table(scores, ["valence"], markdown=True)
    assert "baseline" not in table
    assert re.search(r"\| valence \| 0\.250 \| 0\.250 \| 0\.250 \|", table)


def test_msp_plots_from_synthetic_arrays(tmp_path):
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 8, size=200)
    probabilities = rng.dirichlet(np.ones(8), size=200)
    probabilities[np.arange(100), targets[:100]] += 1.0  # half the clips right
    speakers = rng.integers(0, 25, size=200).astype(str)

    one_best = k_best_confusion_matrix(targets, probabilities, k=1)
    two_best = k_best_confusion_matrix(targets, probabilities, k=2)
    assert one_best.sum() == two_best.sum() == 200
    assert np.trace(two_best) >= np.trace(one_best) >= 100
    assert (one_best.sum(axis=1) == np.bincount(targets, minlength=8)).all()

    confusions = tmp_path / "confusion.png"
    plot_confusion_matrices(
        [one_best, two_best], list("ASHUFDCN"), str(confusions)
    )
    uars = {
        "1-best": uar_per_speaker(targets, probabilities, speakers, k=1),
        "2-best": uar_per_speaker(targets, probabilities, speakers, k=2),
    }
    distribution = tmp_path / "uar.png"
    plot_uar_distribution(
        uars, str(distribution), threshold=0.5, title="per-speaker UAR"
    )
    single = tmp_path / "uar_single.png"
    plot_uar_distribution(np.array(list(uars["1-best"].values())), str(single))
    for path in (confusions, distribution, single):
        assert path.read_bytes()[:8] == PNG


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"devel": {"spearman": ', "not valid JSON (Expecting value"),
        ("[1, 2]", "expected a JSON object of splits, got list"),
        ('{"devel": [0.5]}', "devel is not an object of scores"),
        ('{"devel": {"spearman": {}}}', "devel.ccc is missing"),
        (
            '{"devel": {"spearman": {"mean": "0.5"}, "ccc": {}, "pearson": {}}}',
            "devel.spearman.mean is '0.5', not a number",
        ),
        (
            '{"valid": {"categorical": {"macro_f1": [0.3, "x"]}, '
            '"dimensional": {"ccc": {}}}}',
            "valid.categorical.macro_f1[1] is 'x', not a number",
        ),
        (b"\xff\xfe{", "not UTF-8 text"),
    ],
)
def test_malformed_results_json_is_a_one_line_error(
    tmp_path, capsys, content, message
):
    (tmp_path / "save").mkdir()
    (tmp_path / "save" / "devel.csv").write_text("ID,duration,wav,Anger\n")
    results = tmp_path / "results.json"
    if isinstance(content, bytes):
        results.write_bytes(content)
    else:
        results.write_text(content)
    assert main([str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"emoshare-report: error: {results}: ")
    assert message in lines[0]
    assert not (tmp_path / "report").exists()


def test_speaker_uar_histogram_counts_speakers_in_whole_numbers(tmp_path):
    """Few speakers: the count axis still has integer ticks only."""
    figure = plot_uar_distribution(
        {"1-best": [0.2, 0.55, 0.6], "2-best": [0.6, 0.8, 0.9]},
        str(tmp_path / "uar.png"),
        threshold=(0.5, 0.75),
    )
    ticks = figure.axes[0].get_yticks()
    assert len(ticks) >= 2
    assert all(float(t).is_integer() for t in ticks), ticks
    assert figure.axes[0].get_ylabel() == "speakers"
