"""A finished run is not overwritten by a run with other hyperparameters, and
two runs never write into one folder at once: the openSMILE baselines (no
checkpoints, a results.json) and IEMOCAP's cross-validation folder (its
hyperparams.yaml above the folds) are guarded as the SSL recipes are."""

import os

import pytest

from emoshare_sb.training.run_guards import FolderLock
from tests.conftest import run_row_with

OPENSMILE_YAMLS = (
    "hparams/opensmile_ridge.yaml",
    "hparams/msp_opensmile_logistic.yaml",
    "hparams/iemocap_opensmile_svm.yaml",
)
IEMOCAP_YAML = "hparams/iemocap_exp9_fbank_ecapa.yaml"


def folder_bytes(folder):
    """Every file's bytes under ``folder``, by relative path."""
    return {
        os.path.relpath(os.path.join(root, name), folder): open(
            os.path.join(root, name), "rb"
        ).read()
        for root, _, names in os.walk(folder)
        for name in names
        if name != "run.lock"
    }


@pytest.mark.parametrize("hparams_file", OPENSMILE_YAMLS)
def test_an_opensmile_run_keeps_its_hyperparameters(
    hparams_file, recipe_samples, tmp_path
):
    del recipe_samples
    folder = tmp_path / "run"
    first = run_row_with(hparams_file, folder)
    assert first.returncode == 0, first.stderr[-3000:]
    before = folder_bytes(folder)

    changed = run_row_with(hparams_file, folder, "--seed=7")
    assert changed.returncode == 2, changed.stderr[-3000:]
    assert "Traceback" not in changed.stderr
    line = changed.stderr.strip().splitlines()[-1]
    assert "holds a run started with other hyperparameters" in line
    assert "seed: 1986 -> 7" in line
    # Nothing of the finished run was rewritten: results, predictions,
    # model and hyperparams.yaml.
    assert folder_bytes(folder) == before


def test_an_opensmile_run_into_a_folder_in_use_stops(recipe_samples, tmp_path):
    del recipe_samples
    folder = tmp_path / "run"
    folder.mkdir()
    lock = FolderLock(str(folder))
    lock.acquire()
    try:
        process = run_row_with(OPENSMILE_YAMLS[0], folder)
    finally:
        lock.release()
    assert process.returncode == 2, process.stderr[-3000:]
    line = process.stderr.strip().splitlines()[-1]
    assert "in use by another run" in line
    assert f"(process {os.getpid()})" in line
    assert not (folder / "results.json").exists()


def test_iemocaps_cross_validation_folder_keeps_its_hyperparameters(
    recipe_samples, tmp_path
):
    del recipe_samples
    folder = tmp_path / "cv"
    first = run_row_with(IEMOCAP_YAML, folder, "--number_of_epochs=1")
    assert first.returncode == 0, first.stderr[-3000:]
    before = (folder / "hyperparams.yaml").read_bytes()

    changed = run_row_with(
        IEMOCAP_YAML, folder, "--number_of_epochs=1", "--lr=0.5"
    )
    assert changed.returncode == 2, changed.stderr[-3000:]
    line = changed.stderr.strip().splitlines()[-1]
    assert f"{folder} holds a run started with other" in line
    assert "lr: 0.0001 -> 0.5" in line
    # The summary folder's record of the run is not replaced by the refused one.
    assert (folder / "hyperparams.yaml").read_bytes() == before
