"""The openSMILE baselines: features, cache, and each corpus' recipe end to end."""

import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import opensmile
import pytest
import soundfile

from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS
from emoshare_sb.data.msp_podcast import MSP_CLASS_NAMES
from emoshare_sb.lobes import opensmile as smile_module
from emoshare_sb.lobes.opensmile import OpenSmileError, OpenSmileFunctionals
from emoshare_sb.synthetic.compare23 import make_compare23_corpus
from emoshare_sb.synthetic.iemocap import make_iemocap_corpus
from emoshare_sb.synthetic.msp_podcast import make_msp_podcast_corpus
from tests.conftest import REPO, run_recipe


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def opensmile_cache(tmp_path_factory):
    """One feature cache for every run of this module (each clip extracted once)."""
    return tmp_path_factory.mktemp("opensmile_cache")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three short clips of different pitch."""
    folder = tmp_path_factory.mktemp("clips")
    paths = []
    for index, frequency in enumerate((150.0, 220.0, 330.0)):
        t = np.arange(16000) / 16000
        wave = 0.3 * np.sin(2 * np.pi * frequency * t * (1 + 0.1 * t))
        path = str(folder / f"{index}.wav")
        soundfile.write(path, wave, 16000, subtype="PCM_16")
        paths.append(path)
    return paths


# features and cache -------------------------------------------------------


def test_features_equal_opensmiles_own_process_file(clips, tmp_path):
    front_end = OpenSmileFunctionals(
        "eGeMAPSv02", cache_folder=str(tmp_path), progress=False
    )
    reference = opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel.Functionals,
    ).process_file(clips[1])
    assert front_end.feature_names == list(reference.columns)
    extracted = front_end([clips[1]])[0]
    # Stored as float32: equal to openSMILE's float64 to float32 precision.
    np.testing.assert_allclose(
        extracted, reference.to_numpy()[0], rtol=1e-6, atol=1e-6
    )
    # Read back from the cache: the same numbers.
    np.testing.assert_array_equal(front_end([clips[1]])[0], extracted)


def test_rerun_reads_the_cache_and_a_changed_file_is_extracted_again(
    clips, tmp_path, monkeypatch
):
    front_end = OpenSmileFunctionals(
        "eGeMAPSv02", cache_folder=str(tmp_path), progress=False
    )
    first = front_end(clips)
    assert front_end.pending(clips) == []
    extracted = []
    real_extract = smile_module.extract_file
    monkeypatch.setattr(
        smile_module,
        "extract_file",
        lambda smile, path: extracted.append(path) or real_extract(smile, path),
    )
    again = OpenSmileFunctionals(
        "eGeMAPSv02", cache_folder=str(tmp_path), progress=False
    )
    np.testing.assert_array_equal(again(clips), first)
    assert extracted == []
    # A new recording under the same name has a new signature.
    wave, rate = soundfile.read(clips[0])
    soundfile.write(clips[0], wave[::-1].copy(), rate, subtype="PCM_16")
    os.utime(clips[0], ns=(1, 1))
    assert again.pending(clips) == [clips[0]]
    again(clips)
    assert extracted == [clips[0]]


def test_parallel_extraction_equals_serial(clips, tmp_path):
    serial = OpenSmileFunctionals("eGeMAPSv02", num_workers=1, progress=False)
    parallel = OpenSmileFunctionals(
        "eGeMAPSv02",
        cache_folder=str(tmp_path),
        num_workers=2,
        progress=False,
    )
    np.testing.assert_array_equal(parallel(clips), serial(clips))
    assert parallel.pending(clips) == []  # the workers stored every clip


def test_unreadable_file_and_foreign_cache_are_named(clips, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    front_end = OpenSmileFunctionals("eGeMAPSv02", progress=False)
    with pytest.raises(OpenSmileError, match="bad.wav: openSMILE could not"):
        front_end([str(bad)])
    cache = str(tmp_path / "cache")
    OpenSmileFunctionals("eGeMAPSv02", cache_folder=cache)
    folder = next(p for p in os.listdir(cache))
    config = os.path.join(cache, folder, smile_module.CONFIG_FILE)
    with open(config) as handle:
        settings = json.load(handle)
    settings["feature_names"] = settings["feature_names"][:3]
    with open(config, "w") as handle:
        json.dump(settings, handle)
    with pytest.raises(OpenSmileError, match="holds other features"):
        OpenSmileFunctionals("eGeMAPSv02", cache_folder=cache)


# recipes ------------------------------------------------------------------


def run_opensmile(recipe, hparams, corpus, output, cache, *overrides):
    return run_recipe(
        recipe,
        hparams,
        "--data_folder",
        corpus,
        "--output_folder",
        output,
        "--feature_set",
        "eGeMAPSv02",
        "--feature_cache_folder",
        cache,
        "--num_workers",
        1,
        *overrides,
    )


def cache_files(cache):
    return {
        os.path.join(root, name): os.stat(os.path.join(root, name)).st_mtime_ns
        for root, _, names in os.walk(cache)
        for name in names
        if name.endswith(".npy")
    }


@pytest.mark.parametrize(
    "hparams", ["hparams/opensmile_svr.yaml", "hparams/opensmile_ridge.yaml"]
)
def test_compare23_debug_run(
    hparams, small_compare23, opensmile_cache, tmp_path
):
    run_opensmile(
        "recipes/ComParE23/train_opensmile.py",
        hparams,
        small_compare23,
        tmp_path,
        opensmile_cache,
        "--debug",
    )
    for split in ("devel", "test"):
        rows = read_csv(tmp_path / "predictions" / f"{split}.csv")
        assert list(rows[0]) == ["filename"] + COMPARE23_EMOTIONS
        assert len(rows) == 6
        assert all(
            0.0 <= float(r[e]) <= 1.0 for r in rows for e in COMPARE23_EMOTIONS
        )
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["devel"]) == {"spearman", "ccc", "pearson"}
    assert results["test"] is None  # the test labels are withheld
    assert len(results["model_selection"]["scores"]) == 2  # --debug: 2 values


@pytest.fixture(scope="module")
def compare23_run(opensmile_cache, tmp_path_factory):
    """The whole SVR baseline on a demo corpus (tones), test labels known."""
    root = tmp_path_factory.mktemp("opensmile_compare23")
    corpus = make_compare23_corpus(
        str(root / "corpus"), 48, 24, 8, seed=11, test_labels=True
    )
    output = root / "results"
    run_opensmile(
        "recipes/ComParE23/train_opensmile.py",
        "hparams/opensmile_svr.yaml",
        corpus,
        output,
        opensmile_cache,
    )
    return corpus, output


def test_compare23_baseline_beats_the_mean_predictor(compare23_run):
    _, output = compare23_run
    results = json.loads((output / "results.json").read_text())
    # A mean (constant) predictor has no rank correlation: rho 0 at best.
    assert results["devel"]["spearman"]["mean"] > 0.3
    assert results["test"]["spearman"]["mean"] > 0.3
    chosen = results["model_selection"]
    assert chosen["best"] == max(chosen["scores"], key=lambda s: s[1])[0]
    assert results["num_features"] == 88


def test_compare23_rerun_reuses_the_cache_and_report_reads_it(
    compare23_run, opensmile_cache, tmp_path
):
    corpus, output = compare23_run
    before = cache_files(opensmile_cache)
    run_opensmile(
        "recipes/ComParE23/train_opensmile.py",
        "hparams/opensmile_svr.yaml",
        corpus,
        tmp_path,
        opensmile_cache,
    )
    assert cache_files(opensmile_cache) == before  # nothing extracted again
    first = json.loads((output / "results.json").read_text())
    again = json.loads((tmp_path / "results.json").read_text())
    for metric in ("spearman", "ccc", "pearson"):
        assert again["devel"][metric] == pytest.approx(
            first["devel"][metric], abs=1e-9
        )
    report = subprocess.run(
        [sys.executable, "-m", "emoshare_sb.cli.report", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr[-2000:]
    text = (output / "report" / "report.md").read_text()
    assert f"{first['devel']['spearman']['mean']:.3f}" in text


def test_msp_podcast_debug_run_and_report(opensmile_cache, tmp_path):
    corpus = make_msp_podcast_corpus(
        str(tmp_path / "corpus"), "v1.12", n_per_split=12, seed=2
    )
    output = tmp_path / "results"
    run_opensmile(
        "recipes/MSP-Podcast/train_opensmile.py",
        "hparams/msp_opensmile_svm.yaml",
        corpus,
        output,
        opensmile_cache,
        "--debug",
    )
    results = json.loads((output / "results.json").read_text())
    for split in ("valid", "test1", "test2"):
        assert {"categorical", "dimensional"} <= set(results[split])
        assert "macro_f1" in results[split]["categorical"]
        rows = read_csv(output / "predictions" / f"{split}.csv")
        assert list(rows[0])[:2] == ["FileName", "EmoClass"]
        assert set(MSP_CLASS_NAMES) <= set(rows[0])
        assert all(1.0 <= float(r["EmoVal"]) <= 7.0 for r in rows)
    assert results["test3"] is None  # unlabelled: predictions only
    assert (output / "predictions" / "test3.csv").is_file()
    report = subprocess.run(
        [sys.executable, "-m", "emoshare_sb.cli.report", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr[-2000:]


def test_msp_podcast_logistic_regression_gives_probabilities(
    opensmile_cache, tmp_path
):
    corpus = make_msp_podcast_corpus(
        str(tmp_path / "corpus"), "v1.8-partitions", n_per_split=12, seed=4
    )
    output = tmp_path / "results"
    run_opensmile(
        "recipes/MSP-Podcast/train_opensmile.py",
        "hparams/msp_opensmile_logistic.yaml",
        corpus,
        output,
        opensmile_cache,
        "--debug",
    )
    rows = read_csv(output / "predictions" / "valid.csv")
    sums = [sum(float(r[c]) for c in MSP_CLASS_NAMES) for r in rows]
    np.testing.assert_allclose(sums, 1.0, atol=1e-5)


def test_iemocap_debug_run(opensmile_cache, tmp_path):
    corpus = make_iemocap_corpus(
        str(tmp_path / "corpus"), utterances_per_dialog=4, seed=2
    )
    output = tmp_path / "results"
    run_opensmile(
        "recipes/IEMOCAP/train_opensmile.py",
        "hparams/iemocap_opensmile_svm.yaml",
        corpus,
        output,
        opensmile_cache,
        "--debug",
        "--test_sessions",
        "[2, 4]",
    )
    summary = json.loads((output / "results.json").read_text())
    assert summary["folds"] == [2, 4]
    for fold in ("2", "4"):
        scores = summary["averaged"]["per_fold"][fold]
        assert 0.0 <= scores["wa"] <= 1.0 and 0.0 <= scores["ua"] <= 1.0
        rows = read_csv(output / f"fold_{fold}" / "predictions" / "test.csv")
        assert {r["spk_id"][:5] for r in rows} == {f"Ses0{fold}"}
    pooled = summary["averaged"]["pooled"]["num_utterances"]
    per_fold = summary["averaged"]["per_fold"]
    assert (
        pooled
        == per_fold["2"]["num_utterances"] + per_fold["4"]["num_utterances"]
    )


def test_every_yaml_key_is_used():
    """A top-level key feeds another key (``!ref``) or its recipe."""

    pairs = {
        "hparams/opensmile_svr.yaml": "recipes/ComParE23/train_opensmile.py",
        "hparams/opensmile_ridge.yaml": "recipes/ComParE23/train_opensmile.py",
        "hparams/msp_opensmile_svm.yaml": "recipes/MSP-Podcast/train_opensmile.py",
        "hparams/msp_opensmile_logistic.yaml": "recipes/MSP-Podcast/train_opensmile.py",
        "hparams/iemocap_opensmile_svm.yaml": "recipes/IEMOCAP/train_opensmile.py",
    }
    for yaml_path, recipe in pairs.items():
        yaml_text = (REPO / yaml_path).read_text()
        code = (REPO / recipe).read_text()
        if "IEMOCAP" in recipe:  # read_fold_plan and check_options read these
            code += (REPO / "recipes/IEMOCAP/train.py").read_text()
        keys = re.findall(r"^([A-Za-z_]\w*):", yaml_text, flags=re.MULTILINE)
        unused = [
            key
            for key in keys
            if not key.startswith("__")
            and f"<{key}>" not in yaml_text
            and f'hparams["{key}"]' not in code
            and f'plain["{key}"]' not in code
        ]
        assert unused == [], yaml_path
