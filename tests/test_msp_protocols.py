"""The MSP-Podcast protocols (issue 12.1): the paper's (Mitra et al.: a vote
pdf over the 9 categories, 6 scored classes, CCC on every output) and the
challenges' 8-class one, as YAML class lists."""

import csv
import importlib.util
import json

import numpy as np
import pytest
import speechbrain as sb
import torch

from emoshare_sb.data.msp_podcast import (
    MSP_CLASS_CODES,
    MSP_CLASS_NAMES,
    PDF_CATEGORIES,
    check_class_sets,
    class_pdf,
)
from emoshare_sb.nnet.distribution_losses import pdf_ccc_loss
from emoshare_sb.synthetic.encoders import make_tiny_ssl_model
from emoshare_sb.synthetic.msp_podcast import make_msp_podcast_corpus
from emoshare_sb.training.hparams import load_hparams
from tests.conftest import REPO, recipe_row_id

RECIPE = "recipes/MSP-Podcast/train.py"
PAPER = "hparams/msp_wavlm_tcgru_paper.yaml"
CHALLENGE = "hparams/msp_wavlm_tcgru.yaml"
SIX = ["Neutral", "Happy", "Angry", "Sad", "Contempt", "Surprise"]

spec = importlib.util.spec_from_file_location("msp_train", REPO / RECIPE)
recipe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe)


def hand_ccc(x, y):
    """Lin's CCC of two vectors, population moments, in float64."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    covariance = ((x - x.mean()) * (y - y.mean())).mean()
    return 2 * covariance / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def test_class_pdf_over_8_6_and_9_categories():
    # 2 of 8 raters Happy, 4 Neutral, 1 Fear, 1 Other.
    shares = [0.0, 0.0, 0.25, 0.0, 0.125, 0.0, 0.0, 0.5]
    eight = class_pdf(shares, MSP_CLASS_NAMES)
    assert np.allclose(eight, np.array(shares) / 0.875, atol=1e-12)
    six = class_pdf(shares, SIX)  # Fear and Other dropped
    assert np.allclose(six, [4 / 6, 2 / 6, 0, 0, 0, 0], atol=1e-12)
    nine = class_pdf(shares, PDF_CATEGORIES)
    assert np.allclose(nine, shares + [0.125], atol=1e-12)
    assert class_pdf([0, 0, 0, 0, 1.0, 0, 0, 0], SIX) is None


def test_class_sets_are_checked():
    assert check_class_sets(PDF_CATEGORIES, SIX) is None
    assert "distinct" in check_class_sets(SIX + ["Sad"], SIX)
    assert "'Fear' is not one of" in check_class_sets(SIX, ["Fear"])
    assert "no consensus class" in check_class_sets(PDF_CATEGORIES, ["Other"])


@pytest.fixture(scope="module")
def tiny_wavlm(tmp_path_factory):
    """A tiny random WavLM saved as a local HF folder."""
    return make_tiny_ssl_model(
        str(tmp_path_factory.mktemp("tiny_wavlm")), "wavlm"
    )


def test_the_yamls_hold_the_protocols(tiny_wavlm):
    overrides = {"data_folder": "x", "ssl_source": tiny_wavlm, "ssl_layer": 1}
    paper = load_hparams(str(REPO / PAPER), overrides)
    challenge = load_hparams(str(REPO / CHALLENGE), overrides)
    assert paper["classes"] == PDF_CATEGORIES
    assert paper["scored_classes"] == SIX
    assert paper["categorical_loss"] == "ccc"
    assert paper["class_head"].w.out_features == 9
    # 9/12 and 3/12: the weighted sum is 1 - the mean CCC of all 12 outputs.
    assert paper["categorical_weight"] == pytest.approx(9 / 12)
    assert paper["dimensional_weight"] == pytest.approx(3 / 12)
    assert challenge["classes"] == challenge["scored_classes"]
    assert challenge["classes"] == MSP_CLASS_NAMES
    assert challenge["class_head"].w.out_features == 8
    assert challenge["categorical_loss"] == "kl"


def test_pdf_ccc_loss_equals_a_hand_computation():
    generator = torch.Generator().manual_seed(0)
    log_probs = torch.log_softmax(torch.randn(5, 9, generator=generator), 1)
    target = torch.softmax(torch.randn(5, 9, generator=generator), 1)
    probabilities = log_probs.exp().numpy()
    expected = 1 - np.mean(
        [hand_ccc(probabilities[:, k], target[:, k]) for k in range(9)]
    )
    assert float(pdf_ccc_loss(log_probs, target)) == pytest.approx(
        expected, abs=1e-5
    )


@pytest.fixture(scope="module")
def paper_built(tiny_wavlm, tmp_path_factory):
    """The paper YAML's datasets and Brain on a small v1.12 corpus."""
    root = tmp_path_factory.mktemp("paper")
    encoder = tiny_wavlm
    corpus = make_msp_podcast_corpus(
        str(root / "corpus"), "v1.12", n_per_split=6, seed=4
    )
    hparams = load_hparams(
        str(REPO / PAPER),
        {
            "data_folder": corpus,
            "ssl_source": encoder,
            "ssl_layer": 1,
            "tcgru_size": 8,
            "output_folder": str(root / "results"),
            "noisy_snrs": [],
        },
    )
    hparams["prepare_data"]()
    recipe.check_options(hparams)
    datasets = recipe.dataio_prep(hparams)
    brain = recipe.MSPEmotionBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts={"device": "cpu"},
        checkpointer=hparams["checkpointer"],
    )
    return hparams, datasets, brain


def test_paper_targets_are_9_category_pdfs(paper_built):
    hparams, datasets, _ = paper_built
    with open(f"{hparams['save_folder']}/train.csv", newline="") as handle:
        manifest = {r["ID"]: r for r in csv.DictReader(handle)}
    seen_other = False
    for item in datasets["train"]:
        row = manifest[item["id"]]
        assert row["has_distribution"] == "1"  # no_vote_policy: skip
        shares = [float(row[c]) for c in MSP_CLASS_NAMES]
        expected = shares + [1 - sum(shares)]
        assert np.allclose(item["class_pdf"].numpy(), expected, atol=1e-5)
        seen_other |= expected[-1] > 0
        code = row["emo_class"]
        expected_index = (
            PDF_CATEGORIES.index(MSP_CLASS_NAMES[MSP_CLASS_CODES.index(code)])
            if code
            else -1
        )
        assert item["class_index"].item() == expected_index
    assert seen_other  # the synthetic raters sometimes choose Other


def test_paper_categorical_cost_is_ccc_over_the_9_probabilities(paper_built):
    hparams, datasets, brain = paper_built
    batch = sb.dataio.batch.PaddedBatch(list(datasets["train"]))
    log_probs, _ = brain.compute_forward(batch, sb.Stage.TRAIN)
    probabilities = log_probs.detach().exp().numpy()
    target = batch.class_pdf.data.numpy()
    expected = 1 - np.mean(
        [hand_ccc(probabilities[:, k], target[:, k]) for k in range(9)]
    )
    cost = brain.categorical_cost(log_probs, batch)
    assert float(cost) == pytest.approx(expected, abs=1e-5)
    # Fewer than two clips: CCC is undefined, the batch contributes zero.
    single = sb.dataio.batch.PaddedBatch(list(datasets["train"])[:1])
    assert float(brain.categorical_cost(log_probs[:1], single)) == 0.0


def test_scored_outputs_renormalise_the_scored_classes():
    probabilities = np.array([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]])
    outputs = {
        "probabilities": probabilities,
        "class_targets": np.array([3, 1]),
    }
    view = recipe.scored_outputs(
        outputs, ["Angry", "Sad", "Fear", "Neutral"], ["Neutral", "Angry"]
    )
    assert np.allclose(view["probabilities"], [[0.8, 0.2], [0.5, 0.5]])
    assert view["class_targets"].tolist() == [0, -1]


def test_paper_row_scores_the_six_classes(recipe_row_run):
    output = recipe_row_run(recipe_row_id(PAPER))
    results = json.loads((output / "results.json").read_text())
    assert results["classes"] == SIX
    assert results["pdf_classes"] == PDF_CATEGORIES
    assert set(results["valid"]["categorical"]["per_class"]) <= set(SIX)
    with open(output / "predictions" / "test1.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "FileName",
        "EmoClass",
        *SIX,
        "EmoAct",
        "EmoVal",
        "EmoDom",
    ]
    for row in rows:
        assert sum(float(row[c]) for c in SIX) == pytest.approx(1, abs=1e-5)
        assert row["EmoClass"] in {"N", "H", "A", "S", "C", "U"}


def test_whisper_takes_the_paper_protocol_by_overrides(tmp_path):
    """The README's command for Mitra et al.'s Whisper TC-GRU (Table 6)."""
    whisper = make_tiny_ssl_model(str(tmp_path / "whisper"), "whisper")
    overrides = {
        "data_folder": "x",
        "ssl_source": whisper,
        "ssl_layer": 1,
        "classes": PDF_CATEGORIES,
        "scored_classes": SIX,
        "categorical_loss": "ccc",
        "categorical_weight": 0.75,
        "dimensional_weight": 0.25,
        "checkpoint_metric": "mean_ccc",
    }
    hparams = load_hparams(
        str(REPO / "hparams/msp_whisper_tcgru.yaml"), overrides
    )
    recipe.check_options(hparams)
    assert hparams["class_head"].w.out_features == 9
    wavlm = make_tiny_ssl_model(str(tmp_path / "wavlm"), "wavlm")
    paper = load_hparams(
        str(REPO / PAPER),
        {"data_folder": "x", "ssl_source": wavlm, "ssl_layer": 1},
    )
    for key in overrides:
        if key not in ("data_folder", "ssl_source", "ssl_layer"):
            assert hparams[key] == paper[key], key
