"""MSP-Podcast model: export, offline loading that reproduces the recipe's
predictions, ``emoshare-predict`` on a folder, and ``emoshare-report``'s
tables (equal to results.json), confusion matrices and per-speaker UAR plots."""

import csv
import json
import shutil

import numpy as np
import pytest
import soundfile
import torch
from speechbrain.dataio.batch import PaddedBatch

from emoshare_sb.cli.predict import main as predict_main
from emoshare_sb.cli.report import (
    main as report_main,
    read_msp_split,
)
from emoshare_sb.data.audio import read_audio
from emoshare_sb.data.msp_podcast import MSP_CLASS_CODES, MSP_CLASS_NAMES
from emoshare_sb.inference.interfaces import (
    EmotionShareRegressor,
    VoteDistributionRecognizer,
    export_model,
    interface_class,
    load_model,
)
from emoshare_sb.metrics.classification import (
    best_classes,
    percentage_speakers_above_uar,
)
from emoshare_sb.synthetic.encoders import make_tiny_ssl_model
from emoshare_sb.synthetic.msp_podcast import make_msp_podcast_corpus
from tests.test_inference import assert_printed_close
from tests.test_msp_recipe import run_msp

BATCH_SIZE = 3
DIMENSIONS = ["arousal", "valence", "dominance"]
DIMENSION_COLUMNS = ["EmoAct", "EmoVal", "EmoDom"]
# Scored by the run below: the labelled splits and test1 at 5 dB SNR; test3 unlabelled.
SCORED_SPLITS = ["valid", "test1", "test2", "test1_snr5db"]
PNG = b"\x89PNG\r\n\x1a\n"


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """A finished MSP-Podcast run: tiny WavLM, 8 clips per split, 2 epochs."""
    root = tmp_path_factory.mktemp("msp_inference")
    ssl = make_tiny_ssl_model(str(root / "tiny_wavlm"), "wavlm")
    corpus = make_msp_podcast_corpus(
        str(root / "corpus"), "v1.12", n_per_split=8, seed=11
    )
    output = root / "experiment"
    run_msp(
        corpus,
        ssl,
        output,
        "--number_of_epochs",
        2,
        "--batch_size",
        BATCH_SIZE,
        "--num_averaged_checkpoints",
        2,
        "--tcgru_size",
        16,
        "--noisy_snrs",
        "[5]",
    )
    return output


@pytest.fixture(scope="module")
def exported(experiment, tmp_path_factory):
    """An export, moved after writing: it must not depend on where it was made."""
    folder = export_model(
        experiment, tmp_path_factory.mktemp("msp_export") / "model"
    )
    moved = tmp_path_factory.mktemp("msp_moved") / "model"
    shutil.move(folder, moved)
    return moved


@pytest.fixture(scope="module")
def model(exported):
    return load_model(str(exported))


def recipe_batches(experiment, split):
    """The recipe's evaluation batches: sorted by duration, BATCH_SIZE clips, zero-padded."""
    rows = read_csv(experiment / "save" / f"{split}.csv")
    rows = sorted(rows, key=lambda r: float(r["duration"]))
    for first in range(0, len(rows), BATCH_SIZE):
        chunk = rows[first : first + BATCH_SIZE]
        wavs, lens = PaddedBatch(
            [{"sig": read_audio(r["wav"])} for r in chunk]
        ).sig
        yield [r["ID"] for r in chunk], wavs, lens


def predict_as_printed(model, experiment, split):
    """Predictions of a split written as the recipe writes predictions/<split>.csv."""
    printed = {}
    for ids, wavs, lens in recipe_batches(experiment, split):
        probabilities, dimensions, labels = model.classify_batch(wavs, lens)
        for clip, p, d, label in zip(
            ids, probabilities, dimensions, labels, strict=True
        ):
            printed[clip] = (
                [MSP_CLASS_CODES[MSP_CLASS_NAMES.index(label)]]
                + [f"{v:.6f}" for v in p.tolist()]
                + [f"{v:.4f}" for v in d.tolist()]
            )
    return printed


def recipe_predictions(experiment, split):
    columns = ["EmoClass"] + MSP_CLASS_NAMES + DIMENSION_COLUMNS
    rows = read_csv(experiment / "predictions" / f"{split}.csv")
    return {r["FileName"]: [r[c] for c in columns] for r in rows}


# export and loading ------------------------------------------------------------


def test_export_picks_the_msp_class_and_is_self_contained(experiment, exported):
    assert interface_class(str(experiment)) is VoteDistributionRecognizer
    assert interface_class(str(exported)) is VoteDistributionRecognizer
    assert sorted(p.name for p in exported.iterdir()) == [
        "encoder",
        "export_info.json",
        "hyperparams.yaml",
        "model.ckpt",
    ]
    text = (exported / "hyperparams.yaml").read_text()
    assert (
        "tiny_wavlm" not in text
    )  # the encoder is read from encoder/, not the source
    for key in (
        "interface: emoshare_sb.inference.interfaces.VoteDistributionRecognizer",
        "window: 12.0",
        "hop: 6.0",
        "classes:",
        "dimension_range:",
        "log_softmax:",
        "<model_folder>/model.ckpt",
    ):
        assert key in text
    info = json.loads((exported / "export_info.json").read_text())
    assert (
        info["valid"]
        == json.loads((experiment / "results.json").read_text())["valid"]
    )


def assert_msp_close(predicted, expected):
    """Within the tolerance of ``assert_printed_close``; the 1-best class is
    the recipe's unless its two most probable classes are within it."""
    assert_printed_close(predicted, expected)
    for clip, values in expected.items():
        probabilities = sorted(float(v) for v in values[1:9])
        if probabilities[-1] - probabilities[-2] > 2e-5:
            assert predicted[clip][0] == values[0], clip


@pytest.mark.parametrize("split", ["valid", "test1", "test3"])
def test_exported_model_reproduces_the_recipe_predictions(
    model, experiment, split
):
    # HF_HUB_OFFLINE=1 (conftest): the export loads without any hub access.
    assert isinstance(model, VoteDistributionRecognizer)
    assert model.output_names == MSP_CLASS_NAMES + DIMENSIONS
    assert_msp_close(
        predict_as_printed(model, experiment, split),
        recipe_predictions(experiment, split),
    )


def test_experiment_folder_loads_directly(experiment):
    direct = load_model(str(experiment))
    assert isinstance(direct, VoteDistributionRecognizer)
    assert_msp_close(
        predict_as_printed(direct, experiment, "valid"),
        recipe_predictions(experiment, "valid"),
    )
    with pytest.raises(
        ValueError, match="served by VoteDistributionRecognizer"
    ):
        EmotionShareRegressor.from_hparams(experiment)


def test_predict_file_gives_probabilities_class_and_dimensions(
    model, experiment
):
    """A clip scored alone gets its in-batch prediction (to float rounding)."""
    expected = recipe_predictions(experiment, "valid")
    for row in read_csv(experiment / "save" / "valid.csv"):
        predicted = model.predict_file(row["wav"])
        assert list(predicted) == ["probabilities", "class", *DIMENSIONS]
        probabilities = predicted["probabilities"]
        assert list(probabilities) == MSP_CLASS_NAMES
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert predicted["class"] == max(probabilities, key=probabilities.get)
        printed = expected[row["ID"]]
        values = list(probabilities.values()) + [
            predicted[d] for d in DIMENSIONS
        ]
        assert values == pytest.approx(
            [float(v) for v in printed[1:]], abs=1e-4
        )


# emoshare-predict ----------------------------------------------------------------


@pytest.fixture(scope="module")
def audio_folder(experiment, tmp_path_factory):
    """Three validation clips, a stereo 44.1 kHz file and a 20 s recording."""
    folder = tmp_path_factory.mktemp("msp_audio")
    for row in read_csv(experiment / "save" / "valid.csv")[:3]:
        shutil.copy(row["wav"], folder)
    rng = np.random.default_rng(0)
    soundfile.write(
        folder / "stereo.wav", 0.1 * rng.standard_normal((2 * 44100, 2)), 44100
    )
    soundfile.write(
        folder / "long.wav", 0.1 * rng.standard_normal(20 * 16000), 16000
    )
    return folder


def test_command_line_on_a_folder(exported, audio_folder, tmp_path):
    output = tmp_path / "predictions.csv"
    assert (
        predict_main(
            [
                "--model",
                str(exported),
                str(audio_folder),
                "-o",
                str(output),
                "--no_progress",
            ]
        )
        == 0
    )
    rows = read_csv(output)
    assert list(rows[0]) == [
        "file",
        "segment",
        "start",
        "end",
        "class",
        *MSP_CLASS_NAMES,
        *DIMENSIONS,
        "error",
    ]
    clips = [r for r in rows if r["segment"] == "clip"]
    assert len(clips) == 5
    for row in rows:
        probabilities = np.array([float(row[c]) for c in MSP_CLASS_NAMES])
        assert (probabilities >= 0).all() and abs(
            probabilities.sum() - 1
        ) < 1e-5
        assert row["class"] == MSP_CLASS_NAMES[int(np.argmax(probabilities))]
        assert all(1.0 <= float(row[d]) <= 7.0 for d in DIMENSIONS)
    # 20 s in 12 s windows every 6 s (the last aligned to the end); the clip is their mean.
    windows = [
        r
        for r in rows
        if r["file"].endswith("long.wav") and r["segment"] != "clip"
    ]
    assert [(w["start"], w["end"]) for w in windows] == [
        ("0.000", "12.000"),
        ("6.000", "18.000"),
        ("8.000", "20.000"),
    ]
    summary = next(r for r in clips if r["file"].endswith("long.wav"))
    for column in MSP_CLASS_NAMES + DIMENSIONS:
        mean = np.mean([float(w[column]) for w in windows])
        assert float(summary[column]) == pytest.approx(mean, abs=2e-6)


def test_command_line_json_output(exported, audio_folder, tmp_path):
    output = tmp_path / "predictions.json"
    clip = next(audio_folder.glob("MSP-PODCAST_*.wav"))
    assert (
        predict_main(
            [
                "--model",
                str(exported),
                str(clip),
                "-o",
                str(output),
                "--no_progress",
            ]
        )
        == 0
    )
    document = json.loads(output.read_text())
    assert document["outputs"] == ["class", *MSP_CLASS_NAMES, *DIMENSIONS]
    model = load_model(str(exported))
    written = model.group_outputs(document["files"][0]["summary"])
    predicted = model.predict_file(str(clip))
    assert written["class"] == predicted["class"]
    assert written["probabilities"] == pytest.approx(predicted["probabilities"])
    assert [written[d] for d in DIMENSIONS] == pytest.approx(
        [predicted[d] for d in DIMENSIONS]
    )


# emoshare-report -----------------------------------------------------------------


@pytest.fixture(scope="module")
def report(experiment, tmp_path_factory):
    folder = tmp_path_factory.mktemp("msp_report")
    assert report_main([str(experiment), "--report_folder", str(folder)]) == 0
    return folder


def markdown_tables(markdown):
    """{section heading: rows (lists of cells) of its table, header first}."""
    tables, section = {}, None
    for line in markdown.splitlines():
        if line.startswith("## "):
            section = line[3:]
        elif (
            line.startswith("| ") and section is not None
        ):  # not the |---| line
            tables.setdefault(section, []).append(
                [c.strip() for c in line.strip("|").split("|")]
            )
    return tables


def test_report_files_exist(report):
    expected = {"report.md"} | {
        f"{kind}_{split}.png"
        for kind in ("confusion", "speaker_uar")
        for split in SCORED_SPLITS
    }
    assert {p.name for p in report.iterdir()} == expected
    for name in expected - {"report.md"}:
        assert (report / name).read_bytes()[:8] == PNG
    markdown = (report / "report.md").read_text()
    assert "Unlabelled, predictions only: test3" in markdown
    assert (
        "![1-best and 2-best confusion matrices](confusion_valid.png)"
        in markdown
    )


def test_report_tables_equal_results_json(report, experiment):
    results = json.loads((experiment / "results.json").read_text())
    tables = markdown_tables((report / "report.md").read_text())

    def f3(value):
        return "n/a" if value is None else f"{value:.3f}"

    def percent(value):
        return "n/a" if value is None else f"{value:.1f} %"

    categorical = tables["Categorical"]
    assert [row[0] for row in categorical[1:]] == SCORED_SPLITS
    for row in categorical[1:]:
        scores = results[row[0]]["categorical"]
        assert row[1:] == [str(scores["num_clips"])] + [
            f3(scores[k])
            for k in (
                "macro_f1",
                "micro_f1",
                "macro_precision",
                "uar",
                "accuracy",
            )
        ] + [
            f3(scores["top_k_accuracy"]["2"]),
            f3(scores["top_k_accuracy"]["3"]),
        ]

    dimensional = tables["Dimensional (CCC)"]
    assert dimensional[0] == ["split", "clips", *DIMENSIONS, "mean CCC"]
    for row in dimensional[1:]:
        ccc = results[row[0]]["dimensional"]["ccc"]
        assert row[2:] == [f3(ccc[name]) for name in [*DIMENSIONS, "mean"]]

    speakers = next(
        rows
        for name, rows in tables.items()
        if name.startswith("Across speakers")
    )
    for row in speakers[1:]:
        scores = results[row[0]]["categorical"]
        assert row[1:] == [str(scores["num_speakers"])] + [
            percent(scores["pauar"][f"k{k}"][x])
            for k in (1, 2, 3)
            for x in ("50", "75")
        ]

    for row in tables["Per gender"][1:]:
        split, gender = row[:2]
        scores = results[split]["categorical"]["per_gender"][gender]
        assert row[3] == f3(scores["macro_f1"]) and row[4] == f3(scores["uar"])

    for row in tables["Averaged model and best checkpoint"][1:]:
        best = results["best_checkpoint"][row[0]]
        assert row[2] == f3(best["categorical"]["macro_f1"])
        assert row[4] == f3(best["dimensional"]["ccc"]["mean"])

    anchors = {row[0]: row[1:] for row in tables["Published anchors"][1:]}
    assert anchors["Valence CCC, Test1"] == [
        "0.638 (Wagner et al.); 0.676 (Wav2Small teacher)",
        f3(results["test1"]["dimensional"]["ccc"]["valence"]),
    ]
    assert anchors["Categorical macro-F1, Test3 (challenge score)"][
        0
    ].startswith("baseline 0.311")
    assert anchors["the same, Test1 + noise at 5 dB SNR"] == [
        "0.62 / 0.64 / 0.53",
        " / ".join(
            f3(results["test1_snr5db"]["dimensional"]["ccc"][d])
            for d in DIMENSIONS
        ),
    ]
    assert (
        anchors["the same, Test1 + noise at 15 dB SNR"][1] == "n/a"
    )  # not run


def test_plotted_speakers_and_confusions_agree_with_results_json(experiment):
    """The plots are drawn from the printed predictions and the manifests: they
    show the clips and speakers that results.json scored."""
    results = json.loads((experiment / "results.json").read_text())
    for split in SCORED_SPLITS:
        data = read_msp_split(str(experiment), split)
        scores = results[split]["categorical"]
        assert len(data["ids"]) == scores["num_clips"]
        for k in (1, 2, 3):
            for x in ("50", "75"):
                assert percentage_speakers_above_uar(
                    data["targets"],
                    data["probabilities"],
                    data["speakers"],
                    float(x),
                    k,
                ) == pytest.approx(scores["pauar"][f"k{k}"][x])
        hypotheses = best_classes(data["probabilities"])
        assert np.mean(hypotheses == data["targets"]) == pytest.approx(
            scores["accuracy"]
        )


def test_report_of_results_alone_has_tables_and_says_why_no_plots(
    experiment, tmp_path
):
    folder = tmp_path / "results_only"
    folder.mkdir()
    shutil.copy(experiment / "results.json", folder)
    assert report_main([str(folder)]) == 0
    markdown = (folder / "report" / "report.md").read_text()
    assert "## Categorical" in markdown and "No plots:" in markdown


def test_averaged_probabilities_of_windows_still_sum_to_one(model):
    torch.manual_seed(0)
    probabilities, dimensions, _ = model.classify_batch(
        torch.randn(2, 15 * 16000)
    )
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(2), atol=1e-6)
    assert ((dimensions >= 1) & (dimensions <= 7)).all()
