"""Morais et al.'s two-stage protocol on IEMOCAP (issue 12.4): stage 1
fine-tunes an upstream with mean pooling + linear and averages it, stage 2
trains the ECAPA-TDNN downstream on that averaged upstream; one YAML per
speech experiment of the paper's Table 1.

The YAMLs' rows (``tests/recipes/IEMOCAP.csv``) run every experiment on the
synthetic IEMOCAP layout (``tests/test_recipe_rows.py``); here stage 2 runs
once more on a real stage-1 run's output.
"""

import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO, recipe_row_id, recipe_rows, run_recipe

RECIPE = "recipes/IEMOCAP/train.py"
STAGE1 = "hparams/iemocap_exp3_w2v2_mean.yaml"
STAGE2 = "hparams/iemocap_exp5_w2v2_ecapa.yaml"
EXPERIMENTS = {
    1: "iemocap_exp1_w2v2_mean.yaml",
    2: "iemocap_exp2_hubert_mean.yaml",
    3: "iemocap_exp3_w2v2_mean.yaml",
    4: "iemocap_exp4_hubert_mean.yaml",
    5: "iemocap_exp5_w2v2_ecapa.yaml",
    6: "iemocap_exp6_hubert_ecapa.yaml",
    7: "iemocap_exp7_hubert_w2v2_early_ecapa.yaml",
    8: "iemocap_exp8_hubert_w2v2_late_ecapa.yaml",
    9: "iemocap_exp9_fbank_ecapa.yaml",
}


def row_flags(hparams_file, drop=()):
    """The row's flags of ``hparams_file``, without the flags named in ``drop``."""
    import shlex

    flags = shlex.split(
        recipe_rows()[recipe_row_id(hparams_file)]["test_debug_flags"]
    )
    return [f for f in flags if f.split("=")[0] not in drop]


@pytest.mark.parametrize("number, name", sorted(EXPERIMENTS.items()))
def test_every_speech_experiment_has_a_yaml_and_a_row(number, name):
    text = (REPO / "hparams" / name).read_text()
    assert f"experiment {number}" in text.splitlines()[1]
    assert recipe_row_id(f"hparams/{name}")


def test_stage2_starts_from_stage1s_averaged_upstream(recipe_row_run, tmp_path):
    stage1 = recipe_row_run(recipe_row_id(STAGE1))
    averaged = torch.load(
        stage1 / "fold_1" / "save" / "averaged" / "encoder.ckpt"
    )
    output = tmp_path / "stage2"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        run_recipe(
            RECIPE,
            STAGE2,
            *row_flags(STAGE2, drop=("--stage1_folder", "--number_of_epochs")),
            f"--stage1_folder={stage1}",
            "--number_of_epochs=1",
            f"--output_folder={output}",
            "--device=cpu",
        )
    log = (output / "fold_1" / "log.txt").read_text()
    assert f"starts from {stage1}/fold_1/save/averaged/encoder.ckpt" in log
    # The upstream stays frozen in stage 2 (the default): the averaged
    # stage-2 upstream is stage 1's, tensor for tensor.
    stage2 = torch.load(
        output / "fold_1" / "save" / "averaged" / "encoder.ckpt"
    )
    assert set(stage2) == set(averaged)
    for key, value in averaged.items():
        assert torch.equal(stage2[key], value), key


def test_a_missing_stage1_checkpoint_is_one_line(recipe_samples, tmp_path):
    del recipe_samples
    process = subprocess.run(
        [
            sys.executable,
            str(REPO / RECIPE),
            str(REPO / STAGE2),
            *row_flags(STAGE2, drop=("--stage1_folder",)),
            f"--stage1_folder={tmp_path / 'nowhere'}",
            f"--output_folder={tmp_path / 'out'}",
            "--device=cpu",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # exit_on_user_error's status for bad input (not a crash's traceback).
    assert process.returncode in (1, 2)
    assert "stage1_upstreams:" in process.stderr
    assert "run stage 1 for fold 1 first" in process.stderr
    assert "Traceback" not in process.stderr
