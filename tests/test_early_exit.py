"""Stopping the encoder at the layer that is read gives bit-identical features.

The reference is what the SSL lobe computed before it stopped early: the
whole HuggingFace forward pass with every hidden state recorded and the
attention mask always given.
"""

import pytest
import torch
import transformers

from emoshare_sb.lobes.early_exit import first_layers
from emoshare_sb.lobes.padding import padding_invariant
from emoshare_sb.lobes.ssl import SSLEncoder, masked_normalize
from emoshare_sb.lobes.whisper import WhisperEncoder
from emoshare_sb.synthetic import make_tiny_ssl_model

NUM_LAYERS = 4


def _save(model, folder):
    model.save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(
        return_attention_mask=True
    ).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module", params=["hubert", "wavlm", "base-hubert"])
def source(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    if request.param != "base-hubert":
        return make_tiny_ssl_model(
            str(folder), request.param, num_layers=NUM_LAYERS
        )
    # Base layout: group-norm front-end, post-norm transformer.
    config = transformers.HubertConfig(
        hidden_size=32,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    )
    torch.manual_seed(0)
    return _save(transformers.HubertModel(config), folder)


def _padded_batch():
    generator = torch.Generator().manual_seed(0)
    wavs = torch.randn(3, 16000, generator=generator)
    lens = torch.tensor([1.0, 0.55, 0.8])
    for row, length in enumerate(lens):
        wavs[row, int(length * 16000) :] = 0.0
    return wavs, lens


def _reference(encoder, wavs, lens, layer):
    """The lobe's computation before early exit: all layers, mask always.

    With the attention kernel the lobe chooses for this machine (SDPA or
    eager, :func:`~emoshare_sb.utils.cpu.choose_attention`): the two round
    differently, and HuggingFace's default is SDPA.
    """
    if hasattr(encoder, "use_attention_for"):
        encoder.use_attention_for(wavs.device)
    num_samples = torch.round(lens * wavs.shape[1]).long()
    mask = torch.arange(wavs.shape[1])[None, :] < num_samples[:, None]
    wavs = masked_normalize(wavs, mask) if encoder.normalize_wav else wavs
    with padding_invariant(encoder.model):
        out = encoder.model(
            wavs, attention_mask=mask.long(), output_hidden_states=True
        )
    if layer == "all":
        return torch.stack(list(out.hidden_states), dim=0)
    if isinstance(layer, list):
        return torch.stack([out.hidden_states[i] for i in layer], dim=0)
    return out.hidden_states[layer]


@pytest.mark.parametrize("layer", [0, 2, NUM_LAYERS - 1, -2, [1, 3], "all"])
def test_frozen_encoder_stopping_early_is_bit_identical(
    source, tmp_path, layer
):
    encoder = SSLEncoder(source, str(tmp_path), layer=layer)
    wavs, lens = _padded_batch()
    with torch.no_grad():
        expected = _reference(encoder, wavs, lens, layer)
        got = encoder(wavs, lens)
    assert torch.equal(got, expected)
    # The full list of layers is back after the forward pass.
    assert len(encoder.model.encoder.layers) == NUM_LAYERS


def test_fine_tuned_encoder_stopping_early_is_bit_identical_with_gradients(
    source, tmp_path
):
    encoder = SSLEncoder(source, str(tmp_path), freeze=False, layer=2).train()
    wavs, lens = _padded_batch()
    torch.manual_seed(1)  # dropout draws: the first layers draw the same
    expected = _reference(encoder, wavs, lens, 2)
    expected.square().sum().backward()
    expected_grads = {
        name: p.grad.clone()
        for name, p in encoder.named_parameters()
        if p.grad is not None
    }
    encoder.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    got = encoder(wavs, lens)
    got.square().sum().backward()
    assert torch.equal(got, expected)
    grads = {
        name: p.grad
        for name, p in encoder.named_parameters()
        if p.grad is not None
    }
    assert grads.keys() == expected_grads.keys()
    assert all(torch.equal(grads[n], expected_grads[n]) for n in grads)


def test_layers_above_the_selected_one_are_not_run(source, tmp_path):
    encoder = SSLEncoder(source, str(tmp_path), layer=1)
    calls = []
    hooks = [
        layer.register_forward_hook(lambda *_, i=i: calls.append(i))
        for i, layer in enumerate(encoder.model.encoder.layers)
    ]
    encoder(*_padded_batch())
    for hook in hooks:
        hook.remove()
    assert calls == [0]
    assert encoder.layers_run() == 1


def test_an_unpadded_batch_is_encoded_without_a_mask_with_the_same_values(
    source, tmp_path
):
    encoder = SSLEncoder(source, str(tmp_path))
    seen = []
    hook = encoder.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs.get("attention_mask")),
        with_kwargs=True,
    )
    wavs = torch.randn(2, 12000)
    with torch.no_grad():
        got = encoder(wavs, torch.ones(2))
        hook.remove()
        expected = _reference(encoder, wavs, torch.ones(2), NUM_LAYERS)
    assert seen == [None]
    norm = encoder.model.encoder.layer_norm  # the default output is after it
    if encoder.model.config.do_stable_layer_norm:
        expected = norm(expected)
    assert torch.equal(got, expected)


def test_a_bad_layer_list_is_refused(tmp_path):
    source = make_tiny_ssl_model(str(tmp_path / "tiny"))
    with pytest.raises(ValueError, match="out of range"):
        SSLEncoder(source, str(tmp_path), layer=[0, 9])
    with pytest.raises(ValueError, match="list of ints"):
        SSLEncoder(source, str(tmp_path), layer="last")


@pytest.fixture(scope="module")
def whisper_source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whisper")
    return make_tiny_ssl_model(str(folder), "whisper", num_layers=NUM_LAYERS)


@pytest.mark.parametrize("layer", [0, 2, NUM_LAYERS, [1, 3]])
def test_whisper_stopping_early_is_bit_identical(
    whisper_source, tmp_path, layer
):
    encoder = WhisperEncoder(whisper_source, str(tmp_path), layer="all")
    wavs, lens = _padded_batch()
    everything = encoder(wavs, lens)
    expected = (
        everything[layer]
        if isinstance(layer, int)
        else torch.stack([everything[i] for i in layer])
    )
    early = WhisperEncoder(whisper_source, str(tmp_path), layer=layer)
    calls = []
    hooks = [
        module.register_forward_hook(lambda *_, i=i: calls.append(i))
        for i, module in enumerate(early.model.encoder.layers)
    ]
    got = early(wavs, lens)
    for hook in hooks:
        hook.remove()
    assert torch.equal(got, expected)
    highest = layer if isinstance(layer, int) else max(layer)
    assert max(calls, default=-1) == highest - 1


def test_first_layers_restores_the_encoder_after_an_error(tmp_path):
    source = make_tiny_ssl_model(str(tmp_path / "tiny"), num_layers=3)
    encoder = SSLEncoder(source, str(tmp_path)).model.encoder
    norm = encoder.layer_norm
    with (
        pytest.raises(RuntimeError),
        first_layers(encoder, 1, drop_final_norm=True),
    ):
        assert len(encoder.layers) == 1
        raise RuntimeError("boom")
    assert len(encoder.layers) == 3 and encoder.layer_norm is norm
