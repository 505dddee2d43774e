"""Atmaja & Sasou's protocols (issue 12.3): the first-w-s evaluation
(``eval_crop``) and the window study of Table IV, checkpoints ranked by
Avg = (Spearman + CCC) / 2, and the fine-tuning of their released code
(SpecAugment, encoder lr 1e-5, ReduceLROnPlateau)."""

import csv
import importlib.util
import json
import re
import shlex

import pytest
import speechbrain as sb
import torch
import yaml

from emoshare_sb.cli import window_study
from emoshare_sb.data.audio import read_audio
from emoshare_sb.lobes.ssl import SSLEncoder
from emoshare_sb.training.hparams import load_hparams
from emoshare_sb.training.schedulers import PlateauScheduler
from emoshare_sb.utils.errors import HparamsError
from tests.conftest import REPO, recipe_row_id, recipe_rows

RECIPE = "recipes/ComParE23/train.py"
FROZEN = "hparams/hubert_attn.yaml"
FINETUNE = "hparams/hubert_attn_finetune.yaml"

spec = importlib.util.spec_from_file_location("compare23_train", REPO / RECIPE)
recipe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe)


def row_overrides(hparams_file, **more):
    """The row's flags of ``hparams_file`` as overrides, plus ``more``."""
    flags = recipe_rows()[recipe_row_id(hparams_file)]["test_debug_flags"]
    _, _, overrides = sb.parse_arguments([hparams_file, *shlex.split(flags)])
    overrides = yaml.safe_load(overrides)
    overrides.update(more)
    return overrides


@pytest.fixture(scope="module")
def cropped(recipe_samples, tmp_path_factory, monkeypatch_module):
    """hubert_attn.yaml's datasets with --eval_crop 1.5 (no training)."""
    del recipe_samples
    monkeypatch_module.chdir(REPO)  # the row's paths are relative to the root
    output = tmp_path_factory.mktemp("cropped")
    hparams = load_hparams(
        FROZEN, row_overrides(FROZEN, eval_crop=1.5, output_folder=str(output))
    )
    return hparams, recipe.dataio_prep(hparams)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_eval_crop_scores_the_first_seconds_zero_padded(cropped):
    hparams, datasets = cropped
    crop = int(1.5 * hparams["sample_rate"])
    shorter = longer = 0
    for split in ("devel", "test"):
        for item in datasets[split]:
            whole = read_audio(
                datasets[split].data[item["id"]]["wav"], hparams["sample_rate"]
            )
            signal = item["sig"]
            assert signal.shape == (crop,)
            kept = min(crop, whole.shape[0])
            assert torch.equal(signal[:kept], whole[:kept])
            assert not signal[kept:].any()
            shorter += whole.shape[0] < crop
            longer += whole.shape[0] > crop
    assert shorter and longer  # both cases are exercised
    # Training clips are still random crops (not padded).
    train = next(iter(datasets["train"]))
    assert train["sig"].shape[0] <= int(
        hparams["train_window"] * hparams["sample_rate"]
    )


def test_options_that_cannot_be_combined_are_named(cropped):
    hparams, _ = cropped
    recipe.check_options(hparams)
    with pytest.raises(HparamsError, match="exclude each other"):
        recipe.check_options({**hparams, "eval_window": 2.0})
    with pytest.raises(HparamsError, match="checkpoint_metric must be one of"):
        recipe.check_options({**hparams, "checkpoint_metric": "pearson"})
    with pytest.raises(HparamsError, match="eval_crop must be >= 0"):
        recipe.check_options({**hparams, "eval_crop": -1.0})


def test_avg_metric_is_the_mean_of_spearman_and_ccc():
    scores = {"spearman": {"mean": 0.5}, "ccc": {"mean": 0.3}}
    assert recipe.CHECKPOINT_METRICS["spearman_ccc"](scores) == 0.4
    assert recipe.CHECKPOINT_METRICS["spearman"](scores) == 0.5


def test_finetune_yaml_matches_the_released_code(recipe_samples, monkeypatch):
    del recipe_samples
    monkeypatch.chdir(REPO)
    overrides = row_overrides(FINETUNE)
    for key in ("encoder_freeze_steps", "number_of_epochs", "batch_size"):
        del overrides[key]  # the row's, for a tiny run
    hparams = load_hparams(FINETUNE, overrides)
    assert hparams["encoder_lr"] == 1e-5 and hparams["lr"] == 1e-3
    assert hparams["number_of_epochs"] == 30 and hparams["batch_size"] == 8
    assert hparams["encoder_freeze_steps"] == 0
    encoder = hparams["encoder"]
    assert not encoder.freeze and not encoder.freeze_feature_extractor
    assert all(p.requires_grad for p in encoder.model.parameters())
    config = encoder.model.config
    assert config.apply_spec_augment
    assert (config.mask_time_prob, config.mask_time_length) == (0.05, 10)
    assert (config.mask_feature_prob, config.mask_feature_length) == (0.05, 10)
    assert hparams["eval_crop"] == 5.5 and hparams["eval_window"] == 0
    assert hparams["checkpoint_metric"] == "spearman_ccc"
    for name in ("lr_annealing_model", "lr_annealing_encoder"):
        scheduler = hparams[name]
        assert isinstance(scheduler, PlateauScheduler)
        assert (scheduler.factor, scheduler.patience) == (0.5, 5)


def test_spec_augment_masks_only_while_training(tiny_hubert, tmp_path):
    masks = {
        "mask_time_prob": 0.5,
        "mask_time_length": 2,
        "mask_feature_prob": 0.0,
        "mask_feature_length": 2,
    }
    encoder = SSLEncoder(
        tiny_hubert, str(tmp_path), freeze=False, spec_augment=masks
    )
    plain = SSLEncoder(tiny_hubert, str(tmp_path), freeze=False)
    plain.model.load_state_dict(encoder.model.state_dict())
    wavs = torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    lens = torch.ones(2)
    for module in (encoder, plain):
        module.model.config.hidden_dropout = 0.0
        for layer in module.modules():
            if isinstance(layer, torch.nn.Dropout):
                layer.p = 0.0
    encoder.train(), plain.train()
    torch.manual_seed(1)
    assert not torch.allclose(encoder(wavs, lens), plain(wavs, lens))
    assert encoder.model.masked_spec_embed.requires_grad
    assert not plain.model.masked_spec_embed.requires_grad
    encoder.eval(), plain.eval()
    assert torch.allclose(encoder(wavs, lens), plain(wavs, lens), atol=1e-6)
    with pytest.raises(HparamsError, match="unknown key 'mask_prob'"):
        SSLEncoder(tiny_hubert, str(tmp_path), spec_augment={"mask_prob": 1})


def test_plateau_scheduler_is_reduce_lr_on_plateau(tmp_path):
    losses = [3.0, 2.0, 2.5, 2.5, 2.1, 2.2, 1.0, 1.5, 1.5, 1.5]
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    torch_scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=0.5, patience=2
    )
    ours = PlateauScheduler(1.0, factor=0.5, patience=2)
    for loss in losses:
        torch_scheduler.step(loss)
        assert ours(loss)[1] == pytest.approx(optimizer.param_groups[0]["lr"])
    ours.save(tmp_path / "scheduler.ckpt")
    again = PlateauScheduler(1.0, factor=0.5, patience=2)
    again.load(tmp_path / "scheduler.ckpt")
    assert vars(again) == vars(ours)


def test_finetune_row_ranks_checkpoints_by_avg(recipe_row_run):
    output = recipe_row_run(recipe_row_id(FINETUNE))
    results = json.loads((output / "results.json").read_text())
    assert results["checkpoint_metric"] == "spearman_ccc"
    assert results["eval_crop"] == 5.5
    metas = [
        yaml.safe_load(path.read_text())
        for path in (output / "save").glob("CKPT+*/CKPT.yaml")
    ]
    assert metas and all("spearman_ccc" in meta for meta in metas)
    # Each epoch's logged Avg is the mean of its logged Spearman and CCC.
    for line in (output / "train_log.txt").read_text().splitlines():
        valid = dict(re.findall(r"valid (\w+): ([-\d.e+]+)", line))
        # The log writes 3 significant digits.
        assert float(valid["spearman_ccc"]) == pytest.approx(
            (float(valid["spearman"]) + float(valid["ccc"])) / 2, abs=1e-2
        )


def test_window_study_runs_the_papers_protocol(recipe_samples, tmp_path):
    del recipe_samples
    flags = shlex.split(
        recipe_rows()[recipe_row_id(FROZEN)]["test_debug_flags"]
    )
    output = tmp_path / "study"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO)
        patch.setenv("OMP_NUM_THREADS", "1")
        patch.setenv("PYTHONPATH", str(REPO))
        status = window_study.main(
            [
                FROZEN,
                "--windows",
                "1",
                "--output_folder",
                str(output),
                "--",
                *flags,
                "--device=cpu",
            ]
        )
    assert status == 0
    run = output / "window_1"
    hyperparams = (run / "hyperparams.yaml").read_text()
    assert re.search(r"^train_window: 1(\.0)?(\s|$)", hyperparams, re.M)
    assert re.search(r"^eval_crop: 1(\.0)?(\s|$)", hyperparams, re.M)
    assert "checkpoint_metric: spearman_ccc" in hyperparams
    results = json.loads((run / "results.json").read_text())
    with open(output / "window_study.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    devel = results["best_checkpoint"]["devel"]
    assert float(row["best_spearman"]) == pytest.approx(
        devel["spearman"]["mean"], abs=1e-4
    )
    assert float(row["best_avg"]) == pytest.approx(
        (devel["spearman"]["mean"] + devel["ccc"]["mean"]) / 2, abs=1e-4
    )
    assert (row["paper_spearman"], row["paper_ccc"], row["paper_avg"]) == (
        "0.3818",
        "0.3662",
        "0.3740",
    )
    assert "| 1 |" in (output / "window_study.md").read_text()
