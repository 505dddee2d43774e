"""ONNX export and ONNX Runtime inference equal the PyTorch path."""

import os
import shutil

import numpy as np
import onnx
import pytest
import soundfile
import torch
import transformers

from emoshare_sb.cli import (
    export as export_cli,
    predict as predict_cli,
)
from emoshare_sb.inference.interfaces import (
    EmotionShareRegressor,
    VoteDistributionRecognizer,
    _tiny_experiment,
    export_model,
    load_model,
)
from emoshare_sb.inference.onnx import (
    export_onnx,
    load_onnx_model,
    quantize_onnx,
)
from emoshare_sb.lobes.ssl import SSLEncoder
from emoshare_sb.nnet.aggregators import TCGRU
from emoshare_sb.nnet.heads import MLPHead
from emoshare_sb.nnet.pooling import MaskedMeanPooling
from emoshare_sb.synthetic import make_tiny_ssl_model

SECONDS = (2.7, 1.1, 1.9, 0.6)  # none equal to the traced example's lengths


def _batch(seconds=SECONDS):
    generator = torch.Generator().manual_seed(3)
    wavs = torch.zeros(len(seconds), int(max(seconds) * 16000))
    for row, length in enumerate(seconds):
        samples = int(length * 16000)
        wavs[row, :samples] = torch.randn(samples, generator=generator)
    return wavs, torch.tensor([s / max(seconds) for s in seconds])


def _assert_close_to_range(got, expected, tolerance=1e-4):
    spread = float(expected.max() - expected.min()) or 1.0
    assert float((got - expected).abs().max()) <= tolerance * spread


@pytest.fixture(scope="module")
def exported(tiny_hubert, tmp_path_factory):
    """An export of a (random) ComParE-style experiment, with its ONNX files."""
    experiment = _tiny_experiment(
        str(tmp_path_factory.mktemp("experiment")), tiny_hubert
    )
    folder = export_model(experiment, tmp_path_factory.mktemp("x") / "model")
    assert (
        export_cli.main([experiment, str(folder), "--overwrite", "--onnx"]) == 0
    )
    quantize_onnx(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def torch_model(exported):
    return load_model(exported)


@pytest.fixture(scope="module")
def onnx_model(exported):
    return load_onnx_model(exported)


def test_onnx_equals_pytorch_on_a_batch_of_different_lengths(
    torch_model, onnx_model
):
    wavs, lens = _batch()
    _assert_close_to_range(
        onnx_model.predict_batch(wavs, lens),
        torch_model.predict_batch(wavs, lens),
    )


def test_a_clip_alone_equals_the_clip_in_a_padded_batch(onnx_model):
    wavs, lens = _batch()
    batched = onnx_model.predict_batch(wavs, lens)
    for row, length in enumerate(SECONDS):
        alone = onnx_model.predict_batch(
            wavs[row : row + 1, : int(length * 16000)]
        )
        _assert_close_to_range(alone[0], batched[row], 1e-5)


def test_the_onnx_model_runs_without_the_torch_weights(
    exported, onnx_model, tmp_path
):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("model.onnx", "onnx.json"):
        shutil.copy(os.path.join(exported, name), bare / name)
    assert sorted(os.listdir(bare)) == ["model.onnx", "onnx.json"]
    wavs, lens = _batch()
    got = load_onnx_model(str(bare)).predict_batch(wavs, lens)
    assert torch.equal(got, onnx_model.predict_batch(wavs, lens))


def test_int8_model_runs_close_to_float(exported, onnx_model):
    wavs, lens = _batch()
    int8 = load_onnx_model(exported, quantized=True)
    expected = onnx_model.predict_batch(wavs, lens)
    got = int8.predict_batch(wavs, lens)
    assert got.shape == expected.shape and torch.isfinite(got).all()
    assert (
        float((got - expected).abs().max()) < 0.1
    )  # sigmoid outputs in [0, 1]
    size = os.path.getsize
    assert size(os.path.join(exported, "model.int8.onnx")) < size(
        os.path.join(exported, "model.onnx")
    )


def test_predict_command_line_with_onnxruntime(exported, torch_model, tmp_path):
    wav = tmp_path / "clip.wav"
    signal = np.random.default_rng(0).standard_normal(30000).astype("float32")
    soundfile.write(wav, 0.1 * signal, 16000)
    outputs = {}
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / f"{backend}.csv"
        code = predict_cli.main(
            [str(wav), "-m", exported, "-o", str(out), "--backend", backend,
             "--no_progress", "--window", "0"]
        )  # fmt: skip
        assert code == 0
        outputs[backend] = out.read_text().splitlines()
    header = outputs["torch"][0].split(",")
    rows = {b: lines[1].split(",") for b, lines in outputs.items()}
    for name in torch_model.output_names:
        column = header.index(name)
        assert (
            abs(
                float(rows["torch"][column])
                - float(rows["onnxruntime"][column])
            )
            <= 1e-4
        )
    code = predict_cli.main(
        [
            str(wav),
            "-m",
            exported,
            "--backend",
            "onnxruntime",
            "--device",
            "cuda:0",
        ]
    )
    assert code == 2


def _layers_in_graph(path):
    graph = onnx.load(path).graph
    return sum(node.op_type == "Softmax" for node in graph.node)


def test_the_graph_stops_at_the_layer_read(tmp_path):
    source = make_tiny_ssl_model(str(tmp_path / "tiny"), num_layers=4)
    counts = {}
    for layer in (None, 1):
        modules = {
            "encoder": SSLEncoder(source, str(tmp_path), layer=layer),
            "pooling": MaskedMeanPooling(),
            "head": MLPHead(32, 2, hidden_size=8),
        }
        model = EmotionShareRegressor(
            modules,
            {"emotions": ["a", "b"], "sample_rate": 16000, "window": None,
             "hop": None},
            run_opts={"device": "cpu"},
        )  # fmt: skip
        counts[layer] = _layers_in_graph(
            export_onnx(model, str(tmp_path / f"onnx-{layer}"))
        )
    assert counts == {None: 4, 1: 1}


def test_vote_recognizer_and_group_norm_encoder_export(tmp_path):
    config = transformers.HubertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    )  # fmt: skip
    torch.manual_seed(0)
    folder = tmp_path / "base"
    transformers.HubertModel(config).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(
        return_attention_mask=True
    ).save_pretrained(folder)
    torch.manual_seed(0)
    modules = {
        "encoder": SSLEncoder(str(folder), str(tmp_path)),
        "aggregator": TCGRU(32, conv_channels=8, gru_size=8, embedding_size=8),
        "class_head": MLPHead(8, 3, hidden_size=8),
        "dimension_head": MLPHead(
            8, 3, hidden_size=8, output_activation="sigmoid"
        ),
    }
    hparams = {
        "classes": ["A", "B", "C"],
        "dimensions": ["arousal", "valence", "dominance"],
        "dimension_range": [1.0, 7.0],
        "log_softmax": torch.nn.LogSoftmax(dim=-1),
        "sample_rate": 16000,
        "window": None,
        "hop": None,
    }
    model = VoteDistributionRecognizer(
        modules, hparams, run_opts={"device": "cpu"}
    )
    export_onnx(model, str(tmp_path / "onnx"))
    onnx_model = load_onnx_model(str(tmp_path / "onnx"))
    wavs, lens = _batch()
    _assert_close_to_range(
        onnx_model.predict_batch(wavs, lens), model.predict_batch(wavs, lens)
    )
    assert onnx_model.output_names == model.output_names
