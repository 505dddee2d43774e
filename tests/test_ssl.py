"""The SSL lobe: layer selection, frozen eval mode, LayerDrop off, padding."""

import json
import os
import shutil

import pytest
import torch

from emoshare_sb.lobes.ssl import SSLEncoder


@pytest.fixture(scope="module")
def encoder(tiny_hubert, tmp_path_factory):
    return SSLEncoder(
        tiny_hubert, save_path=str(tmp_path_factory.mktemp("cache"))
    )


def test_frozen_encoder_stays_in_eval_and_has_no_gradients(encoder):
    encoder.train()
    assert not encoder.model.training
    assert not any(p.requires_grad for p in encoder.parameters())


def test_layerdrop_is_disabled_even_if_the_config_enables_it(
    tiny_hubert, tmp_path
):
    source = tmp_path / "layerdrop"
    shutil.copytree(tiny_hubert, source)
    config = json.loads((source / "config.json").read_text())
    config["layerdrop"] = 0.9
    (source / "config.json").write_text(json.dumps(config))
    encoder = SSLEncoder(
        str(source), str(tmp_path), freeze=False, layer="all"
    ).train()
    assert encoder.model.config.layerdrop == 0.0
    wavs = torch.randn(1, 8000)
    counts = {encoder(wavs).shape[0] for _ in range(5)}
    assert counts == {3}


def test_layer_selection(tiny_hubert, tmp_path):
    wavs = torch.randn(2, 8000)
    everything = SSLEncoder(tiny_hubert, str(tmp_path), layer="all")(wavs)
    first = SSLEncoder(tiny_hubert, str(tmp_path), layer=1)(wavs)
    last_encoder = SSLEncoder(tiny_hubert, str(tmp_path))
    last = last_encoder(wavs)
    assert torch.allclose(everything[1], first)
    # transformers 5 records the last layer's output before the final layer
    # norm of pre-norm (large) models; the default output is after it.
    final_norm = last_encoder.model.encoder.layer_norm
    assert torch.allclose(final_norm(everything[-1]), last, atol=1e-5)
    with pytest.raises(ValueError, match="out of range"):
        SSLEncoder(tiny_hubert, str(tmp_path), layer=3)


def test_a_clip_encodes_the_same_alone_and_padded_in_a_batch(encoder):
    torch.manual_seed(0)
    short, long = torch.randn(9600), torch.randn(16000)
    batch = torch.zeros(2, 16000)
    batch[0, :9600], batch[1] = short, long
    batched = encoder(batch, torch.tensor([0.6, 1.0]))
    alone = encoder(short.unsqueeze(0))
    frames = alone.shape[1]
    assert torch.allclose(batched[0, :frames], alone[0], atol=1e-4)


def test_fine_tuned_encoder_trains_all_but_the_cnn(tiny_hubert, tmp_path):
    encoder = SSLEncoder(tiny_hubert, str(tmp_path), freeze=False).train()
    assert (
        encoder.model.training and not encoder.model.feature_extractor.training
    )
    trainable = {
        n.split(".")[1]
        for n, p in encoder.named_parameters()
        if p.requires_grad
    }
    assert "feature_extractor" not in trainable and "encoder" in trainable


@pytest.mark.parametrize(
    "removed, named",
    [
        ("model.safetensors", "the weights"),
        ("preprocessor_config.json", "preprocessor_config.json"),
        ("config.json", "config.json"),
    ],
)
def test_an_incomplete_model_folder_fails_clearly(
    tiny_hubert, tmp_path, removed, named
):
    source = tmp_path / "incomplete"
    shutil.copytree(tiny_hubert, source)
    os.remove(source / removed)
    with pytest.raises(FileNotFoundError, match=f"lacks {named}"):
        SSLEncoder(str(source), str(tmp_path))


def test_a_missing_folder_and_an_unreachable_hub_id_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SSLEncoder(str(tmp_path / "nowhere"), str(tmp_path))
    with pytest.raises(OSError, match="HF_HUB_OFFLINE"):
        SSLEncoder("emoshare-test/no-such-model", str(tmp_path))
