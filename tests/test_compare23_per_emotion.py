"""Mohapatra et al.'s protocol (issue 12.2): nine single-output networks,
each emotion from its own best epochs, as one multi-output model; and the
released code's sequence layer norms."""

import csv
import importlib.util
import json

import numpy as np
import pytest
import scipy.stats
import torch
import yaml

from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS
from emoshare_sb.nnet.aggregators import CNNLSTM
from emoshare_sb.nnet.heads import IndependentNetworks, PooledHead
from emoshare_sb.nnet.losses import summed_mse_loss
from emoshare_sb.nnet.pooling import MaskedMeanPooling
from tests.conftest import RECIPE_SAMPLES, REPO, recipe_row_id

RECIPE = "recipes/ComParE23/train.py"
PAPER = "hparams/hubert_cnnlstm_attn_paper.yaml"

spec = importlib.util.spec_from_file_location("compare23_train", REPO / RECIPE)
recipe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe)


def small_network():
    torch.manual_seed(0)
    return PooledHead(
        MaskedMeanPooling(),
        torch.nn.Sequential(
            torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1)
        ),
    )


def test_independent_networks_train_as_separate_networks():
    """One run on the summed loss moves each copy as its own network's run."""
    generator = torch.Generator().manual_seed(1)
    batches = [
        (
            torch.randn(5, 7, 4, generator=generator),
            torch.rand(5, generator=generator).clamp(min=0.3),
            torch.rand(5, 3, generator=generator),
        )
        for _ in range(4)
    ]
    joint = IndependentNetworks(small_network(), 3)
    optimizer = torch.optim.Adam(joint.parameters(), lr=0.01)
    for features, lengths, targets in batches:
        optimizer.zero_grad()
        summed_mse_loss(joint(features, lengths), targets).backward()
        optimizer.step()
    for k in range(3):
        alone = small_network()  # the same seeded start
        optimizer = torch.optim.Adam(alone.parameters(), lr=0.01)
        for features, lengths, targets in batches:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(
                alone(features, lengths), targets[:, k : k + 1]
            ).backward()
            optimizer.step()
        for mine, theirs in zip(
            joint.networks[k].parameters(), alone.parameters(), strict=True
        ):
            assert torch.allclose(mine, theirs, atol=1e-6)


def released_code_attention(model, x, lengths_in_frames):
    """The released code's forward (emotion_0.py, with attention) from the
    pooled sequence on, written as there, on ``model``'s weights.

    The convolutions and the pooling are ours (padding masked; the code's
    convolutions see the padding): that difference is kept on purpose.
    """
    steps = x.shape[1]
    valid = (torch.arange(steps)[None, :] < lengths_in_frames[:, None])[
        :, None, :
    ]
    h = x.transpose(1, 2)
    for conv in model.convs:
        h = model.activation(conv(h.masked_fill(~valid, 0.0)))
    h = torch.nn.functional.max_pool1d(
        h.masked_fill(~valid, float("-inf")), 2, 2, ceil_mode=True
    )
    a = (lengths_in_frames + 1) // 2
    pooled = torch.arange(h.shape[-1])[None, :] < a[:, None]
    h = h.masked_fill(~pooled[:, None, :], 0.0).transpose(1, 2)
    h = torch.nn.functional.pad(
        h, (0, 0, 0, model.sequence_norm_frames - h.shape[1])
    )
    h = model.sequence_norm(h)  # ln1 over (sequence_length, channels)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        h, a, batch_first=True, enforce_sorted=False
    )
    out, (h_n, _) = model.lstm(packed)
    q = model.query(h_n.permute(1, 0, 2).flatten(1)).unsqueeze(1)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
    qk = q @ out.permute(0, 2, 1) / out.shape[2] ** 0.5
    weights = torch.zeros(qk.shape[0], 1, h.shape[1])  # L steps
    for i in range(qk.shape[0]):
        weights[i, :, : int(a[i])] = torch.softmax(qk[i, :, : int(a[i])], 1)
    weights = model.weight_norm(weights)[:, :, : out.shape[1]]  # ln3
    return (weights @ out)[:, 0, :]


def test_sequence_norms_compute_the_released_codes_attention():
    torch.manual_seed(3)
    model = CNNLSTM(
        12, (10, 8), hidden_size=6, attention=True, sequence_norm_frames=8
    ).eval()
    with torch.no_grad():  # non-trivial affine parameters of the norms
        for norm in (model.sequence_norm, model.weight_norm):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.1, 0.1)
    frames = torch.tensor([16, 10, 6])
    x = torch.randn(3, 16, 12)
    x = x * (torch.arange(16)[None, :, None] < frames[:, None, None])
    ours = model(x, frames / 16)
    expected = released_code_attention(model, x, frames)
    assert torch.allclose(ours, expected, atol=1e-5)
    with pytest.raises(ValueError, match="more than sequence_norm_frames=8"):
        model(torch.randn(1, 20, 12), torch.ones(1))


def test_unknown_selection_is_named():
    with pytest.raises(recipe.HparamsError, match="checkpoint_selection must"):
        recipe.check_options(
            {
                "checkpoint_metric": "spearman",
                "checkpoint_selection": "per_epoch",
                "eval_crop": 0.0,
                "eval_window": 0.0,
            }
        )


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_paper_row_takes_each_emotion_from_its_own_best_epochs(
    recipe_row_run,
):
    output = recipe_row_run(recipe_row_id(PAPER))
    results = json.loads((output / "results.json").read_text())
    assert results["checkpoint_selection"] == "per_emotion"
    metas = {
        path.parent.name: yaml.safe_load(path.read_text())
        for path in (output / "save").glob("CKPT+*/CKPT.yaml")
    }
    for emotion in COMPARE23_EMOTIONS:
        key = f"spearman_{emotion}"
        used = results["averaged_from"][emotion]
        best_two = sorted(metas, key=lambda c: metas[c][key], reverse=True)
        assert {u["checkpoint"] for u in used} <= set(metas)
        assert sorted(u[key] for u in used) == sorted(
            metas[c][key] for c in best_two[: len(used)]
        )
        # The emotion's averaged weights: the mean of its checkpoints'.
        kept = torch.load(
            output
            / "save"
            / "averaged"
            / "per_emotion"
            / emotion
            / "model.ckpt"
        )
        states = [
            torch.load(output / "save" / u["checkpoint"] / "model.ckpt")
            for u in used
        ]
        for name, value in kept.items():
            mean = sum(s[name].double() for s in states) / len(states)
            assert torch.allclose(value.double(), mean, atol=1e-6)
    # The devel scores are those of the assembled predictions.
    labels = {
        r["filename"]: r
        for r in read_rows(RECIPE_SAMPLES / "ComParE23/corpus/lab/devel.csv")
    }
    predictions = read_rows(output / "predictions" / "devel.csv")
    for emotion in COMPARE23_EMOTIONS:
        predicted = np.array([float(r[emotion]) for r in predictions])
        true = np.array(
            [float(labels[r["filename"]][emotion]) for r in predictions]
        )
        rho = results["devel"]["spearman"][emotion]
        if np.ptp(predicted) == 0:  # a constant prediction: no rank order
            continue
        assert scipy.stats.spearmanr(true, predicted)[0] == pytest.approx(
            rho, abs=1e-4
        )
