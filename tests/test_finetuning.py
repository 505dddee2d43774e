"""Fine-tuning vs frozen training, the encoder's frozen start, sliding windows.

The recipe's Brain is built in-process from the real YAML files so that the
encoder's weights can be compared before and after training.
"""

import importlib.util

import pytest
import speechbrain as sb
import torch

from emoshare_sb.inference.windows import split_into_windows
from emoshare_sb.training.hparams import load_hparams
from tests.conftest import REPO

spec = importlib.util.spec_from_file_location(
    "compare23_train", REPO / "recipes/ComParE23/train.py"
)
recipe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe)


def build_brain(hparams_file, corpus, source, output, **overrides):
    """The recipe's set-up: hparams, data prep, datasets and the Brain."""
    overrides = {
        "data_folder": corpus,
        "ssl_source": source,
        "output_folder": str(output),
        "pretrained_path": str(output / "pretrained"),
        "number_of_epochs": 1,
        "batch_size": 4,
        **overrides,
    }
    hparams = load_hparams(str(REPO / "hparams" / hparams_file), overrides)
    hparams["prepare_data"]()
    datasets = recipe.dataio_prep(hparams)
    brain = recipe.EmotionShareBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts={"device": "cpu"},
        checkpointer=hparams["checkpointer"],
        encoder_opt_class=hparams.get("encoder_opt_class"),
        encoder_freeze_steps=hparams.get("encoder_freeze_steps", 0),
        lr_schedulers=hparams.get("lr_schedulers"),
        train_logger=hparams["train_logger"],
    )
    return brain, datasets, hparams


def encoder_state(brain):
    return {k: v.clone() for k, v in brain.modules.encoder.state_dict().items()}


def fit(brain, datasets, hparams):
    loader = {"batch_size": hparams["batch_size"], "shuffle": True}
    brain.fit(
        hparams["epoch_counter"],
        datasets["train"],
        datasets["devel"],
        train_loader_kwargs=loader,
        valid_loader_kwargs={"batch_size": 4},
    )


def changed_keys(before, after):
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_frozen_training_leaves_the_encoder_unchanged(
    small_compare23, tiny_hubert, tmp_path
):
    brain, datasets, hparams = build_brain(
        "hubert_attn.yaml", small_compare23, tiny_hubert, tmp_path
    )
    before = encoder_state(brain)
    head_before = hparams["head"].layers[0].weight.clone()
    fit(brain, datasets, hparams)
    assert changed_keys(before, encoder_state(brain)) == set()
    assert not torch.equal(head_before, hparams["head"].layers[0].weight)
    assert set(brain.optimizers_dict) == {"model_optimizer"}


def test_fine_tuning_changes_the_transformer_and_the_cnn(
    small_compare23, tiny_hubert, tmp_path
):
    """hubert_attn_finetune.yaml trains the whole encoder, CNN included, as
    Atmaja & Sasou's released code does (the fusion YAMLs keep it frozen)."""
    brain, datasets, hparams = build_brain(
        "hubert_attn_finetune.yaml",
        small_compare23,
        tiny_hubert,
        tmp_path,
        encoder_freeze_steps=0,
        encoder_lr=0.01,
    )
    before = encoder_state(brain)
    fit(brain, datasets, hparams)
    changed = changed_keys(before, encoder_state(brain))
    assert any(".encoder.layers." in k for k in changed)
    assert any("feature_extractor" in k for k in changed)
    assert set(brain.optimizers_dict) == {
        "model_optimizer",
        "encoder_optimizer",
    }
    # Both learning rates have their own schedulers, logged.
    log = (tmp_path / "train_log.txt").read_text()
    assert "lr_model" in log and "lr_encoder" in log


def test_encoder_stays_frozen_during_its_freeze_steps(
    small_compare23, tiny_hubert, tmp_path
):
    brain, datasets, hparams = build_brain(
        "hubert_attn_finetune.yaml",
        small_compare23,
        tiny_hubert,
        tmp_path,
        encoder_freeze_steps=1000,
        encoder_lr=0.01,
    )
    before = encoder_state(brain)
    fit(brain, datasets, hparams)
    assert changed_keys(before, encoder_state(brain)) == set()


def test_fine_tuned_encoder_is_averaged_and_saved(
    small_compare23, tiny_hubert, tmp_path
):
    brain, datasets, hparams = build_brain(
        "hubert_attn_finetune.yaml",
        small_compare23,
        tiny_hubert,
        tmp_path,
        encoder_freeze_steps=0,
        number_of_epochs=2,
    )
    fit(brain, datasets, hparams)
    used = brain.load_evaluation_model(
        "averaged", max_key=hparams["checkpoint_metric"]
    )
    assert len(used) == 2
    saved = sorted(p.name for p in (tmp_path / "save" / "averaged").iterdir())
    assert saved == ["averaged_from.json", "encoder.ckpt", "model.ckpt"]
    checkpoints = [
        tmp_path / "save" / entry["checkpoint"] / "encoder.ckpt"
        for entry in used
    ]
    states = [torch.load(path) for path in checkpoints]
    averaged = torch.load(tmp_path / "save" / "averaged" / "encoder.ckpt")
    key = next(
        k
        for k in averaged
        if ".encoder.layers.0." in k and k.endswith("weight")
    )
    assert torch.allclose(averaged[key], (states[0][key] + states[1][key]) / 2)
    assert torch.allclose(
        brain.modules.encoder.state_dict()[key], averaged[key]
    )


@pytest.mark.parametrize("window", [10.0, 0.5])
def test_sliding_window_evaluation(
    small_compare23, tiny_hubert, tmp_path, window
):
    brain, datasets, hparams = build_brain(
        "hubert_attn.yaml", small_compare23, tiny_hubert, tmp_path
    )
    brain.modules.eval()
    loader = sb.dataio.dataloader.make_dataloader(
        datasets["devel"], batch_size=3
    )
    batch = next(iter(loader))
    with torch.no_grad():
        whole = brain.compute_forward(batch, sb.Stage.TEST)
        hparams["eval_window"], hparams["eval_hop"] = window, window / 2
        brain.hparams.eval_window, brain.hparams.eval_hop = window, window / 2
        windowed = brain.compute_forward(batch, sb.Stage.TEST)
    assert windowed.shape == whole.shape == (3, 9)
    if window >= 4.0:  # every clip is shorter than the window: scored whole
        assert torch.allclose(windowed, whole, atol=1e-6)
    else:
        wavs, lens = batch.sig
        _, _, owners = split_into_windows(wavs, lens, 8000, 4000)
        assert len(owners) > 3 and not torch.allclose(windowed, whole)
