"""Morais et al.'s two-stage protocol on IEMOCAP (issue 12.4): stage 1
fine-tunes an upstream with mean pooling + linear and averages it, stage 2
trains the ECAPA-TDNN downstream on that averaged upstream; one YAML per
experiment of the paper's Table 1, speech (1-9) and text (10-11, BERT on
the transcripts, its stage 1 iemocap_bert_mean.yaml).

The YAMLs' rows (``tests/recipes/IEMOCAP.csv``) run every experiment on the
synthetic IEMOCAP layout (``tests/test_recipe_rows.py``); here stage 2 runs
once more on a real stage-1 run's output.
"""

import os
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
    10: "iemocap_exp10_bert_ecapa.yaml",
    11: "iemocap_exp11_fbank_bert_late_ecapa.yaml",
}
# Stage 1, stage 2, the stage-2 flag naming stage 1's folder, and the prefix
# of the upstream's tensors in stage 2's encoder checkpoint.
TWO_STAGE_RUNS = {
    "speech": (STAGE1, STAGE2, "--stage1_folder", ""),
    "text": (
        "hparams/iemocap_bert_mean.yaml",
        "hparams/iemocap_exp10_bert_ecapa.yaml",
        "--stage1_folder",
        "",
    ),
    "speech_and_text": (
        "hparams/iemocap_bert_mean.yaml",
        "hparams/iemocap_exp11_fbank_bert_late_ecapa.yaml",
        "--text_stage1_folder",
        "text_encoder.",
    ),
}


def row_flags(hparams_file, drop=()):
    """The row's flags of ``hparams_file``, without the flags named in ``drop``."""
    import shlex

    flags = shlex.split(
        recipe_rows()[recipe_row_id(hparams_file)]["test_debug_flags"]
    )
    return [f for f in flags if f.split("=")[0] not in drop]


@pytest.mark.parametrize("number, name", sorted(EXPERIMENTS.items()))
def test_every_experiment_has_a_yaml_and_a_row(number, name):
    text = (REPO / "hparams" / name).read_text()
    assert f"experiment {number}" in text.splitlines()[1]
    assert recipe_row_id(f"hparams/{name}")


@pytest.mark.parametrize("inputs", sorted(TWO_STAGE_RUNS))
def test_stage2_starts_from_stage1s_averaged_upstream(
    inputs, recipe_row_run, tmp_path
):
    stage1_yaml, stage2_yaml, stage1_flag, prefix = TWO_STAGE_RUNS[inputs]
    stage1 = recipe_row_run(recipe_row_id(stage1_yaml))
    averaged = torch.load(
        stage1 / "fold_1" / "save" / "averaged" / "encoder.ckpt"
    )
    output = tmp_path / "stage2"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        run_recipe(
            RECIPE,
            stage2_yaml,
            *row_flags(stage2_yaml, drop=(stage1_flag, "--number_of_epochs")),
            f"{stage1_flag}={stage1}",
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
    upstream = {
        key[len(prefix) :]: value
        for key, value in stage2.items()
        if key.startswith(prefix)
    }
    assert set(upstream) == set(averaged)
    for key, value in averaged.items():
        assert torch.equal(upstream[key], value), key


def test_stage1_fine_tunes_bert(recipe_row_run, recipe_samples):
    """Stage 1 of experiments 10-11 trains BERT: its averaged weights moved
    away from the pretrained ones (the tiny model of the samples)."""
    from emoshare_sb.lobes.text import TranscriptEncoder

    stage1 = recipe_row_run(recipe_row_id("hparams/iemocap_bert_mean.yaml"))
    averaged = torch.load(
        stage1 / "fold_1" / "save" / "averaged" / "encoder.ckpt"
    )
    source = os.path.join(recipe_samples, "encoders", "bert")
    pretrained = TranscriptEncoder(source, save_path=source).state_dict()
    assert set(averaged) == set(pretrained)
    moved = [
        key
        for key, value in pretrained.items()
        if value.is_floating_point()
        and not torch.allclose(averaged[key], value, atol=1e-7)
    ]
    # Every trained layer moves; a few tensors (e.g. unused position rows)
    # may keep their values.
    assert any("encoder.layer.1." in key for key in moved), moved
    assert len(moved) > len(pretrained) // 2, moved


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
