"""Every row of ``tests/recipes/*.csv`` runs, trains, and passes SpeechBrain's checks.

SpeechBrain lists each recipe YAML in ``tests/recipes/<Dataset>.csv`` and
its ``recipe_tests.run_recipe_tests`` runs every row's script with the
row's ``test_debug_flags``, then checks the row's ``test_debug_checks``
(``file_exists=[...]`` and ``performance_check=[...]``) on the output
folder. Here each row runs once per session (``recipe_row_run`` in
``conftest.py``, the command ``run_recipe_tests`` composes, on the samples
of :mod:`emoshare_sb.synthetic.recipe_samples`), and:

* ``test_row_runs_and_trains`` checks that it trained: each part of the
  downstream ``model`` (aggregator, head, layer mix) moved from its seeded
  initial weights, and the encoder too when (and only when) the YAML
  fine-tunes it; for the openSMILE rows (no network), that the model kept
  on valid is fitted, with finite coefficients, and its search logged;
* ``test_row_passes_speechbrain_checks`` reads the rows with SpeechBrain's
  own ``prepare_test`` and applies its ``check_files`` and
  ``check_performance`` (from ``../shared/speechbrain-checks``; skipped
  when they are not there, failed under CI).

These runs are also the debug runs of the recipes' own tests (e.g.
``tests/test_compare23_recipe.py``), so no YAML is run twice for that.
"""

import importlib.util
import shlex

import joblib
import numpy as np
import pytest
import speechbrain as sb
import torch

from emoshare_sb.training.hparams import load_hparams
from tests.conftest import (
    RECIPE_CSV_FOLDER,
    REPO,
    recipe_rows,
    speechbrain_checks,
)

ROWS = recipe_rows()


def row_hparams(row, output_folder):
    """The row's YAML loaded with its flags, as its run starts (seeded weights)."""
    hparams_file, _, overrides = sb.parse_arguments(
        [
            row["Hparam_file"],
            *shlex.split(row["test_debug_flags"]),
            f"--output_folder={output_folder}",
        ]
    )
    return load_hparams(hparams_file, overrides)


def changed(before, after, keys):
    """Whether any of ``keys`` differs between two state dicts."""
    return any(not torch.equal(before[key], after[key]) for key in keys)


def test_every_yaml_has_a_row():
    listed = {row["Hparam_file"] for row in ROWS.values()}
    on_disk = {
        str(path.relative_to(REPO))
        for path in (REPO / "hparams").glob("*.yaml")
    }
    assert listed == on_disk


@pytest.mark.parametrize("recipe_id", sorted(ROWS))
def test_row_runs_and_trains(recipe_id, recipe_row_run, tmp_path, monkeypatch):
    output = recipe_row_run(recipe_id)
    monkeypatch.chdir(REPO)  # the flags' paths are relative to the root
    hparams = row_hparams(ROWS[recipe_id], tmp_path)
    if "model" not in hparams:  # an openSMILE row: linear models
        check_linear_models(output)
        return
    initial = {
        key: value.clone()
        for key, value in hparams["model"].state_dict().items()
    }
    model_keys = set(initial)
    encoder_initial = {
        key: value.clone()
        for key, value in hparams["encoder"].state_dict().items()
    }
    fine_tuned = "encoder_opt_class" in hparams
    averaged_folders = sorted(output.rglob("save/averaged"))
    assert averaged_folders, f"no save/averaged in {output}"
    for folder in averaged_folders:  # one per IEMOCAP fold
        trained = torch.load(folder / "model.ckpt")
        assert set(trained) == model_keys
        for index, part in enumerate(hparams["model"]):
            keys = [k for k in initial if k.split(".")[0] == str(index)]
            assert changed(initial, trained, keys), (
                f"{type(part).__name__} did not change"
            )
        assert (folder / "encoder.ckpt").is_file() == fine_tuned
        if fine_tuned:
            encoder = torch.load(folder / "encoder.ckpt")
            assert changed(encoder_initial, encoder, encoder_initial)


def check_linear_models(output):
    """The openSMILE recipes' ``save/model.joblib`` (each IEMOCAP fold's):
    fitted scikit-learn pipelines with finite coefficients, and the
    complexity search in ``train_log.txt``."""
    saved = sorted(output.rglob("save/model.joblib"))
    assert saved, f"no save/model.joblib in {output}"
    for path in saved:
        models = joblib.load(path)
        if not isinstance(models, dict):
            models = {"model": models}
        pipelines = [
            model
            for value in models.values()  # MSP: one regressor per attribute
            for model in (value if isinstance(value, list) else [value])
        ]
        assert pipelines
        for pipeline in pipelines:
            estimator = pipeline[-1]  # after the standardisation
            fitted = getattr(estimator, "estimators_", [estimator])
            for part in fitted:  # MultiOutputRegressor: one per emotion
                coefficients = np.asarray(part.coef_, dtype=float)
                assert coefficients.size and np.isfinite(coefficients).all()
        log = (path.parent.parent / "train_log.txt").read_text()
        assert "step: 1" in log and "valid score" in log


def load_recipe_tests():
    """SpeechBrain's ``recipe_tests`` module, from its consistency checks."""
    path = speechbrain_checks() / "recipe_tests.py"
    spec = importlib.util.spec_from_file_location("sb_recipe_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("recipe_id", sorted(ROWS))
def test_row_passes_speechbrain_checks(recipe_id, recipe_row_run):
    recipe_tests = load_recipe_tests()
    scripts, hparams, flags, checks, _, _ = recipe_tests.prepare_test(
        str(RECIPE_CSV_FOLDER)
    )
    # SpeechBrain reads the row as we run it.
    row = ROWS[recipe_id]
    assert (scripts[recipe_id], hparams[recipe_id], flags[recipe_id]) == (
        row["Script_file"],
        row["Hparam_file"],
        row["test_debug_flags"],
    )
    assert "file_exists=[" in checks[recipe_id]
    assert "performance_check=[" in checks[recipe_id]
    output = recipe_row_run(recipe_id)
    assert recipe_tests.check_files(checks[recipe_id], str(output), recipe_id)
    assert recipe_tests.check_performance(
        checks[recipe_id], str(output), recipe_id
    )
