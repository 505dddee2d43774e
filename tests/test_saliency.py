"""Layer saliency (Mitra et al. eq. 1-3): the maths, and the command line end to end."""

import json
import os

import pytest
import torch

from emoshare_sb.analysis.saliency import (
    SaliencyAccumulator,
    layer_saliency,
    main,
)


def _reference_saliency(features, targets):
    """Direct, loop-based transcription of eq. 1-3 (population correlations)."""
    n, layers, dims = features.shape
    out = torch.zeros(layers, targets.shape[1], dtype=torch.float64)

    def corr(a, b):
        a, b = a - a.mean(), b - b.mean()
        return float(
            (a * b).mean() / (a.pow(2).mean().sqrt() * b.pow(2).mean().sqrt())
        )

    x, y = features.double(), targets.double()
    for k in range(layers):
        for target in range(y.shape[1]):
            w = [abs(corr(x[:, k, j], y[:, target])) for j in range(dims)]
            scores = []
            for i in range(dims):
                gamma = sum(
                    w[j] * abs(corr(x[:, k, i], x[:, k, j]))
                    for j in range(dims)
                    if j != i
                ) / (dims - 1)
                scores.append(w[i] + gamma)
            out[k, target] = sum(scores) / dims
    return out


def test_matches_a_direct_transcription_of_the_equations():
    generator = torch.Generator().manual_seed(0)
    feats = torch.randn(40, 3, 5, generator=generator) + 3.0
    targets = torch.rand(40, 2, generator=generator)
    feats[:, 1, 0] += targets[:, 0]
    result = layer_saliency(feats, targets)
    expected = _reference_saliency(feats, targets)
    torch.testing.assert_close(
        result["per_target"], expected, atol=1e-9, rtol=1e-9
    )
    torch.testing.assert_close(
        result["saliency"], expected.mean(1), atol=1e-9, rtol=1e-9
    )


@pytest.mark.parametrize("informative", [0, 3, 6])
def test_informative_layer_ranks_first(informative):
    generator = torch.Generator().manual_seed(informative)
    n, layers, dims = 300, 7, 16
    targets = torch.rand(n, 3, generator=generator)
    feats = torch.randn(n, layers, dims, generator=generator)
    # Every layer sees the targets weakly; the informative one strongly.
    feats[:, :, :4] += 0.2 * targets[:, None, :1]
    feats[:, informative, :6] += 1.5 * (targets[:, :2].sum(1, keepdim=True))
    result = layer_saliency(feats, targets)
    assert int(result["ranking"][0]) == informative
    assert sorted(result["ranking"].tolist()) == list(range(layers))
    assert result["saliency"][informative] == result["saliency"].max()


def test_streaming_equals_one_shot_and_constant_dimensions_are_safe():
    generator = torch.Generator().manual_seed(1)
    feats = torch.randn(64, 4, 6, generator=generator)
    feats[:, :, 2] = 5.0  # a constant dimension: correlation taken as 0
    targets = torch.randn(64, 2, generator=generator)
    accumulator = SaliencyAccumulator()
    for start in range(0, 64, 10):
        accumulator.update(
            feats[start : start + 10], targets[start : start + 10]
        )
    streamed = accumulator.compute()
    whole = layer_saliency(feats, targets)
    assert streamed["num_clips"] == 64
    torch.testing.assert_close(streamed["saliency"], whole["saliency"])
    assert torch.isfinite(whole["per_target"]).all()
    with pytest.raises(ValueError):
        layer_saliency(torch.randn(1, 2, 3), torch.randn(1, 1))
    with pytest.raises(ValueError):
        layer_saliency(torch.randn(5, 3), torch.randn(5, 1))


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    from emoshare_sb.data.compare23 import prepare_compare23
    from emoshare_sb.synthetic.compare23 import make_compare23_corpus
    from emoshare_sb.synthetic.encoders import make_tiny_ssl_model

    root = tmp_path_factory.mktemp("saliency")
    corpus = make_compare23_corpus(
        str(root / "corpus"), n_train=7, n_devel=1, n_test=1, max_duration=2.0
    )
    prepare_compare23(corpus, str(root / "manifests"))
    model = make_tiny_ssl_model(str(root / "tiny_hubert"), num_layers=3)
    return root, os.path.join(root, "manifests"), model


def test_cli_end_to_end(tiny_setup, monkeypatch, capsys):
    root, manifests, model = tiny_setup
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    output = str(root / "out")
    status = main(
        [
            os.path.join(manifests, "train.csv"),
            "--ssl_source",
            model,
            "--targets",
            "Anger,Calmness,Sadness",
            "--max_clips",
            "6",
            "--batch_size",
            "4",
            "--output_folder",
            output,
            "--device",
            "cpu",
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    summary = json.load(open(os.path.join(output, "saliency.json")))
    assert summary["num_clips"] == 6
    assert summary["targets"] == ["Anger", "Calmness", "Sadness"]
    assert len(summary["saliency"]) == 4  # CNN output + 3 transformer layers
    assert sorted(summary["ranking"]) == [0, 1, 2, 3]
    assert summary["best_layer"] == summary["ranking"][0]
    assert set(summary["per_target"]) == {"Anger", "Calmness", "Sadness"}
    assert f"Use layer {summary['best_layer']}" in printed
    with open(os.path.join(output, "saliency.png"), "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not [f for f in os.listdir(output) if f.endswith(".tmp")]


def test_cli_default_targets_and_errors(tiny_setup, monkeypatch, capsys):
    root, manifests, model = tiny_setup
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    output = str(root / "out_all")
    main(
        [
            os.path.join(manifests, "train.csv"),
            "--ssl_source",
            model,
            "--output_folder",
            output,
            "--device",
            "cpu",
        ]
    )
    summary = json.load(open(os.path.join(output, "saliency.json")))
    assert len(summary["targets"]) == 9 and summary["num_clips"] == 7

    with pytest.raises(SystemExit) as bad_column:
        main(
            [
                os.path.join(manifests, "train.csv"),
                "--ssl_source",
                model,
                "--targets",
                "Anger,Joy",
                "--output_folder",
                output,
            ]
        )
    assert bad_column.value.code == 2
    assert "Joy" in capsys.readouterr().err

    # The test split of the challenge layout is unlabelled ('?' -> nan).
    with pytest.raises(SystemExit) as unlabelled:
        main(
            [
                os.path.join(manifests, "test.csv"),
                "--ssl_source",
                model,
                "--output_folder",
                output,
            ]
        )
    assert unlabelled.value.code == 2
    assert "no row has finite values" in capsys.readouterr().err
