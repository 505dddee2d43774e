"""The MSP-Podcast recipe (Mitra et al.): debug runs on several release layouts,
outputs, the loss on clips without votes, the noisy test sets, a short run that
learns, and its whole-split metrics against scikit-learn/scipy/hand values."""

import csv
import importlib.util
import json
import re

import numpy as np
import pytest
import scipy.stats
import speechbrain as sb
import torch
from sklearn.metrics import f1_score, recall_score, top_k_accuracy_score

from emoshare_sb.data.msp_podcast import MSP_CLASS_CODES, MSP_CLASS_NAMES
from emoshare_sb.nnet.losses import concordance_correlation
from emoshare_sb.synthetic.encoders import make_tiny_ssl_model
from emoshare_sb.synthetic.msp_podcast import make_msp_podcast_corpus
from emoshare_sb.training.hparams import load_hparams
from tests.conftest import REPO, run_recipe, tensorboard_scalars

RECIPE = "recipes/MSP-Podcast/train.py"
HPARAMS = "hparams/msp_wavlm_tcgru.yaml"
DIMENSIONS = ["EmoAct", "EmoVal", "EmoDom"]
PREDICTION_HEADER = ["FileName", "EmoClass"] + MSP_CLASS_NAMES + DIMENSIONS

spec = importlib.util.spec_from_file_location("msp_train", REPO / RECIPE)
recipe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe)


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def tiny_wavlm(tmp_path_factory):
    """A tiny random WavLM (hidden size 32, 2 layers) saved as a local HF folder."""
    return make_tiny_ssl_model(
        str(tmp_path_factory.mktemp("tiny_wavlm")), "wavlm"
    )


def run_msp(corpus, source, output, *overrides):
    """Runs the recipe on a tiny encoder, one thread per process.

    The test machine's few cores are shared: several OpenMP threads per
    process slow tiny models down by waiting on each other.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        return run_recipe(
            RECIPE,
            HPARAMS,
            "--data_folder",
            corpus,
            "--ssl_source",
            source,
            "--ssl_layer",
            1,
            "--output_folder",
            output,
            "--device",
            "cpu",
            "--num_workers",
            0,
            *overrides,
        )


# --debug runs on two layouts ------------------------------------------------

EXPECTED_SPLITS = {
    "v1.12": [
        "valid",
        "test1",
        "test2",
        "test3",
        "test1_snr15db",
        "test1_snr5db",
    ],
    "v1.6": [
        "valid",
        "test1",
        "test2",
        "test1_snr15db",
        "test1_snr5db",
    ],  # no Test3
}


@pytest.fixture(scope="module", params=sorted(EXPECTED_SPLITS))
def debug_run(request, tiny_wavlm, tmp_path_factory):
    layout = request.param
    root = tmp_path_factory.mktemp(f"debug_{layout}")
    corpus = make_msp_podcast_corpus(
        str(root / "corpus"), layout, n_per_split=8, seed=1
    )
    output = root / "results"
    run_msp(
        corpus,
        tiny_wavlm,
        output,
        "--debug",
        "--batch_size",
        3,
        "--use_tensorboard",
        True,
    )
    return layout, output


def test_tensorboard_holds_every_epochs_train_and_valid_metrics(debug_run):
    _, output = debug_run
    scalars = tensorboard_scalars(output / "tensorboard")
    for tag in (
        "loss/train",
        "loss/valid",
        "macro_f1/valid",
        "ccc_valence/valid",
    ):
        assert [step for step, _ in scalars[tag]] == [1, 2], tag


def test_debug_run_writes_prediction_files(debug_run):
    layout, output = debug_run
    for variant in ("", "best"):
        written = sorted(
            p.stem for p in (output / "predictions" / variant).glob("*.csv")
        )
        assert written == sorted(EXPECTED_SPLITS[layout])
    for split in EXPECTED_SPLITS[layout]:
        rows = read_csv(output / "predictions" / f"{split}.csv")
        assert list(rows[0]) == PREDICTION_HEADER
        manifest = {
            r["ID"]
            for r in read_csv(output / "save" / f"{split.split('_')[0]}.csv")
        }
        # --debug scores two batches of 3 clips; each scored clip is written once.
        assert len({r["FileName"] for r in rows}) == len(rows) == 6
        for row in rows:
            assert row["FileName"] in manifest
            probabilities = np.array([float(row[c]) for c in MSP_CLASS_NAMES])
            assert (probabilities >= 0).all() and abs(
                probabilities.sum() - 1
            ) < 1e-4
            assert (
                row["EmoClass"]
                == MSP_CLASS_CODES[int(np.argmax(probabilities))]
            )
            assert all(1.0 <= float(row[d]) <= 7.0 for d in DIMENSIONS)
    if layout == "v1.12":
        test3 = read_csv(output / "predictions" / "test3.csv")
        assert all("test3" in r["FileName"] for r in test3)


def test_results_json_holds_every_metric(debug_run):
    layout, output = debug_run
    results = json.loads((output / "results.json").read_text())
    assert results["checkpoint_metric"] == "macro_f1_ccc"
    assert 1 <= len(results["averaged_from"]) <= 5
    labelled = [s for s in EXPECTED_SPLITS[layout] if s != "test3"]
    for scores in (results, results["best_checkpoint"]):
        for split in labelled:
            categorical = scores[split]["categorical"]
            for key in (
                "macro_f1",
                "micro_f1",
                "uar",
                "accuracy",
                "macro_precision",
            ):
                assert 0.0 <= categorical[key] <= 1.0, (split, key)
            assert set(categorical["top_k_accuracy"]) == {"1", "2", "3"}
            assert categorical["top_k_accuracy"]["1"] == categorical["accuracy"]
            assert set(categorical["pauar"]) == {"k1", "k2", "k3"}
            assert all(
                set(v) == {"50", "75"} for v in categorical["pauar"].values()
            )
            assert set(categorical["per_gender"]) <= {
                "Female",
                "Male",
                "Unknown",
            }
            assert "macro_f1" in next(iter(categorical["per_gender"].values()))
            dimensional = scores[split]["dimensional"]
            assert set(dimensional["ccc"]) == {
                "arousal",
                "valence",
                "dominance",
                "mean",
            }
            # Clips with consensus O or X count for CCC only.
            assert set(categorical["per_gender"]) <= set(
                dimensional["per_gender"]
            )
        if layout == "v1.12":
            assert scores["test3"] is None  # unlabelled: predictions only
        else:
            assert "test3" not in scores
    assert "test1_snr5db" in results and "test1_snr15db" in results
    assert "ColouredNoise(exponent=1.0" in results["noise_source"]
    assert results["snr_reference"] == "speech"


# clips without class votes ---------------------------------------------------


@pytest.fixture(scope="module")
def dimensional_only_run(tiny_wavlm, tmp_path_factory):
    root = tmp_path_factory.mktemp("dimensional_only")
    corpus = make_msp_podcast_corpus(
        str(root / "corpus"), "v2.0", n_per_split=8, seed=2
    )
    output = root / "results"
    process = run_msp(
        corpus,
        tiny_wavlm,
        output,
        "--debug",
        "--batch_size",
        4,
        "--no_vote_policy",
        "dimensional_only",
        "--noisy_snrs",
        "[]",
    )
    return output, process


def test_dimensional_only_keeps_and_trains_on_clips_without_votes(
    dimensional_only_run,
):
    output, process = dimensional_only_run
    train = read_csv(output / "save" / "train.csv")
    assert (
        len(train) == 8
        and sum(r["has_distribution"] == "0" for r in train) == 1
    )
    log = (output / "log.txt").read_text()
    assert "1 of 8 training clips have no class vote" in log
    losses = re.findall(
        r"train loss: ([^ ]+)", (output / "train_log.txt").read_text()
    )
    assert losses and all(np.isfinite(float(v)) for v in losses)
    results = json.loads((output / "results.json").read_text())
    assert results["no_vote_policy"] == "dimensional_only"
    assert "test1_snr5db" not in results  # --noisy_snrs []


# in-process checks: targets, losses, noisy sets, YAML -------------------------


@pytest.fixture(scope="module")
def built(tiny_wavlm, tmp_path_factory):
    """The recipe's set-up on a v1.12 corpus: hparams, datasets and the Brain."""
    root = tmp_path_factory.mktemp("in_process")
    corpus = make_msp_podcast_corpus(
        str(root / "corpus"), "v1.12", n_per_split=6, seed=4
    )
    overrides = {
        "data_folder": corpus,
        "ssl_source": tiny_wavlm,
        "ssl_layer": 1,
        "output_folder": str(root / "results"),
        "no_vote_policy": "dimensional_only",
    }
    hparams = load_hparams(str(REPO / HPARAMS), overrides)
    hparams["prepare_data"]()
    datasets = recipe.dataio_prep(hparams)
    brain = recipe.MSPEmotionBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts={"device": "cpu"},
        checkpointer=hparams["checkpointer"],
    )
    return hparams, datasets, brain


def items(dataset):
    return {item["id"]: item for item in dataset}


def test_targets_are_renormalised_vote_pdfs_without_nans(built):
    hparams, datasets, _ = built
    manifest = {
        r["ID"]: r for r in read_csv(f"{hparams['save_folder']}/train.csv")
    }
    for clip, item in items(datasets["train"]).items():
        row = manifest[clip]
        assert not torch.isnan(item["class_pdf"]).any()
        if row["has_distribution"] == "1":
            votes = np.array([float(row[c]) for c in MSP_CLASS_NAMES])
            assert np.allclose(
                item["class_pdf"].numpy(), votes / votes.sum(), atol=1e-6
            )
            assert item["has_pdf"].item() == 1.0
        else:
            assert (
                item["class_pdf"].sum() == 0 and item["has_pdf"].item() == 0.0
            )
        expected = (
            MSP_CLASS_CODES.index(row["emo_class"]) if row["emo_class"] else -1
        )
        assert item["class_index"].item() == expected
        assert torch.isfinite(item["dimension_targets"]).all()
    assert all(
        torch.isnan(item["dimension_targets"]).all()
        for item in items(datasets["test3"]).values()
    )


def batch_of(dataset, ids):
    by_id = items(dataset)
    return sb.dataio.batch.PaddedBatch([by_id[i] for i in ids])


def test_categorical_loss_leaves_out_clips_without_votes(built):
    hparams, datasets, brain = built
    train = items(datasets["train"])
    no_votes = [i for i, item in train.items() if item["has_pdf"].item() == 0]
    with_votes = [i for i, item in train.items() if item["has_pdf"].item() == 1]
    assert no_votes and len(with_votes) >= 3
    batch = batch_of(datasets["train"], no_votes + with_votes)
    log_probs, dimensions = brain.compute_forward(batch, sb.Stage.TRAIN)
    # KL(p || q) by hand over the clips with votes only.
    n = len(no_votes)
    p, log_q = batch.class_pdf.data[n:], log_probs[n:]
    terms = torch.where(p > 0, p * (torch.log(p.clamp(min=1e-30)) - log_q), 0.0)
    expected = terms.sum() / len(with_votes)
    assert torch.allclose(
        brain.categorical_cost(log_probs, batch), expected, atol=1e-6
    )
    # The dimensional loss uses every clip, those without votes included.
    targets = batch.dimension_targets.data
    assert torch.isfinite(targets).all()
    assert torch.allclose(
        brain.dimensional_cost(dimensions, targets),
        1 - concordance_correlation(dimensions, targets).mean(),
    )


def class_head_gradient(brain, hparams, batch):
    brain.modules.zero_grad()
    predictions = brain.compute_forward(batch, sb.Stage.TRAIN)
    loss = brain.compute_objectives(predictions, batch, sb.Stage.TRAIN)
    assert torch.isfinite(loss)
    loss.backward()
    gradient = hparams["class_head"].w.weight.grad
    return (
        torch.zeros_like(hparams["class_head"].w.weight)
        if gradient is None
        else gradient.clone()
    )


def test_clips_without_votes_train_the_dimensional_head_only(built):
    hparams, datasets, brain = built
    train = items(datasets["train"])
    no_votes = [i for i, item in train.items() if item["has_pdf"].item() == 0]
    with_votes = [i for i, item in train.items() if item["has_pdf"].item() == 1]
    # The class head's gradient is the same with or without the no-vote clip.
    mixed = class_head_gradient(
        brain, hparams, batch_of(datasets["train"], no_votes + with_votes)
    )
    voted = (
        brain.hparams.categorical_weight
        * torch.autograd.grad(
            brain.categorical_cost(
                brain.compute_forward(
                    batch_of(datasets["train"], with_votes), sb.Stage.TRAIN
                )[0],
                batch_of(datasets["train"], with_votes),
            ),
            hparams["class_head"].w.weight,
        )[0]
    )
    assert mixed.abs().sum() > 0
    assert torch.allclose(mixed, voted, atol=1e-6)
    # A batch where no clip has votes: no categorical loss, no class-head
    # gradient, but the dimensional head learns.
    unvoted = [
        {
            **train[i],
            "has_pdf": torch.zeros(1),
            "class_pdf": torch.zeros(len(MSP_CLASS_NAMES)),
        }
        for i in with_votes
    ]
    batch = sb.dataio.batch.PaddedBatch(unvoted)
    assert (
        brain.categorical_cost(
            brain.compute_forward(batch, sb.Stage.TRAIN)[0], batch
        )
        == 0
    )
    assert not class_head_gradient(brain, hparams, batch).any()
    assert hparams["dimension_linear"].w.weight.grad.abs().sum() > 0


def test_consensus_loss_uses_clips_with_a_consensus_class(built):
    hparams, datasets, brain = built
    assert hparams["categorical_loss"] == "kl"
    batch = batch_of(datasets["train"], sorted(items(datasets["train"])))
    log_probs, _ = brain.compute_forward(batch, sb.Stage.TRAIN)
    targets = batch.class_index.data[:, 0]
    assert (targets < 0).any() and (
        targets >= 0
    ).any()  # ties (X) and Other (O)
    brain.hparams.categorical_loss = "consensus_ce"
    try:
        loss = brain.categorical_cost(log_probs, batch)
    finally:
        brain.hparams.categorical_loss = hparams["categorical_loss"]
    kept = targets >= 0
    expected = -log_probs[kept].gather(1, targets[kept].unsqueeze(1)).mean()
    assert torch.allclose(loss, expected, atol=1e-6)


def test_noisy_test_sets_are_mixed_at_their_snr_reproducibly(built):
    hparams, datasets, _ = built
    assert hparams["snr_reference"] == "speech"  # the default
    mixer = hparams["noise_mixer"]
    clean = items(datasets["test1"])
    for snr_db in (15, 5):
        noisy = items(datasets[f"test1_snr{snr_db}db"])
        again = items(datasets[f"test1_snr{snr_db}db"])
        assert set(noisy) == set(clean)
        for clip, item in noisy.items():
            signal = clean[clip]["sig"].double()
            # Over the VAD's speech regions, or the whole clip without any
            # (the synthetic clips are tones).
            speech = mixer.reference(clip, clean[clip]["sig"])
            if speech is None:
                speech = torch.ones_like(signal, dtype=torch.bool)
            added = item["sig"].double() - signal
            measured = 10 * torch.log10(
                signal[speech].pow(2).mean() / added[speech].pow(2).mean()
            )
            assert abs(float(measured) - snr_db) < 0.1
            assert torch.equal(item["sig"], again[clip]["sig"])


def test_clip_collector_keeps_metadata_aligned_across_batches_and_processes(
    tmp_path,
):
    collector = recipe.ClipCollector(8)
    probabilities = torch.softmax(torch.randn(3, 8), dim=1)
    dimensions = torch.rand(3, 3)
    targets = torch.tensor(
        [[2.0, 0.1, 0.2, 0.3], [-1.0, 0.4, 0.5, 0.6], [7.0, 0.7, 0.8, 0.9]]
    )
    rows = torch.cat([probabilities, dimensions], dim=1)
    collector.append(
        ["c", "a"], rows[:2], targets[:2], ["s2", "s1"], ["Male", "Female"]
    )
    collector.append(["b"], rows[2:], targets[2:], ["Unknown"], ["Unknown"])
    # One gloo process: the all-gather path of DDP, in a world of one.
    torch.distributed.init_process_group(
        "gloo",
        init_method=f"file://{tmp_path / 'rendezvous'}",
        rank=0,
        world_size=1,
    )
    try:
        outputs = collector.gather()
    finally:
        torch.distributed.destroy_process_group()
    assert outputs["ids"] == ["a", "b", "c"]
    assert outputs["speakers"] == ["s1", "Unknown", "s2"]
    assert outputs["genders"] == ["Female", "Unknown", "Male"]
    assert outputs["class_targets"].tolist() == [-1, 7, 2]
    assert np.allclose(
        outputs["probabilities"], probabilities[[1, 2, 0]].numpy()
    )
    assert np.allclose(outputs["dimensions"], dimensions[[1, 2, 0]].numpy())
    assert np.allclose(
        outputs["dimension_targets"], targets[[1, 2, 0], 1:].numpy()
    )


def test_unknown_option_values_are_named(built):
    hparams, _, _ = built
    for key, value in (
        ("categorical_loss", "focal"),
        ("checkpoint_metric", "loss"),
    ):
        with pytest.raises(recipe.HparamsError, match=f"{key} must be one of"):
            recipe.check_options({**hparams, key: value})
    with pytest.raises(
        recipe.HparamsError,
        match="outputs 32-dim features but encoder_dim is 1024: set "
        r"--encoder_dim auto \(or 32\)",
    ):
        recipe.check_encoder_width(hparams["encoder"], 1024)


# a short run that learns, and its metrics recomputed ---------------------------


@pytest.fixture(scope="module")
def learning_run(tiny_wavlm, tmp_path_factory):
    root = tmp_path_factory.mktemp("learning")
    corpus = make_msp_podcast_corpus(
        str(root / "corpus"), "v1.8-partitions", n_per_split=96, seed=5
    )
    output = root / "results"
    run_msp(
        corpus,
        tiny_wavlm,
        output,
        "--batch_size",
        16,
        "--number_of_epochs",
        8,
        "--lr",
        0.002,
        "--tcgru_size",
        64,
        "--num_averaged_checkpoints",
        3,
        "--noisy_snrs",
        "[]",
    )
    return output


def majority_macro_f1(targets):
    """Macro-F1 of always predicting the most frequent class (the trivial baseline)."""
    majority = np.bincount(targets).argmax()
    return f1_score(
        targets,
        np.full_like(targets, majority),
        labels=range(8),
        average="macro",
        zero_division=0,
    )


def test_short_run_learns(learning_run):
    results = json.loads((learning_run / "results.json").read_text())
    valid = read_csv(learning_run / "save" / "valid.csv")
    targets = np.array(
        [MSP_CLASS_CODES.index(r["emo_class"]) for r in valid if r["emo_class"]]
    )
    categorical = results["valid"]["categorical"]
    assert categorical["macro_f1"] > max(0.1, 3 * majority_macro_f1(targets))
    assert categorical["uar"] > 0.2  # chance: 1/8
    assert results["valid"]["dimensional"]["ccc"]["valence"] > 0.4
    assert results["test1"]["dimensional"]["ccc"]["valence"] > 0.4


def test_metrics_equal_sklearn_scipy_and_hand_values(learning_run):
    results = json.loads((learning_run / "results.json").read_text())
    for split in ("valid", "test1", "test2"):
        predictions = {
            r["FileName"]: r
            for r in read_csv(learning_run / "predictions" / f"{split}.csv")
        }
        manifest = read_csv(learning_run / "save" / f"{split}.csv")
        assert set(predictions) == {
            r["ID"] for r in manifest
        }  # the whole split
        probabilities = np.array(
            [
                [float(predictions[r["ID"]][c]) for c in MSP_CLASS_NAMES]
                for r in manifest
            ]
        )
        labelled = np.array([bool(r["emo_class"]) for r in manifest])
        targets = np.array(
            [
                MSP_CLASS_CODES.index(r["emo_class"])
                for r in manifest
                if r["emo_class"]
            ]
        )
        probs = probabilities[labelled]
        hypotheses = probs.argmax(axis=1)
        scores = results[split]["categorical"]
        assert scores["num_clips"] == labelled.sum()
        assert scores["macro_f1"] == pytest.approx(
            f1_score(
                targets,
                hypotheses,
                labels=range(8),
                average="macro",
                zero_division=0,
            ),
            abs=1e-6,
        )
        assert scores["micro_f1"] == pytest.approx(
            f1_score(
                targets,
                hypotheses,
                labels=range(8),
                average="micro",
                zero_division=0,
            ),
            abs=1e-6,
        )
        assert scores["uar"] == pytest.approx(
            recall_score(
                targets, hypotheses, labels=np.unique(targets), average="macro"
            ),
            abs=1e-6,
        )
        assert scores["accuracy"] == pytest.approx(
            np.mean(targets == hypotheses), abs=1e-6
        )
        for k in (2, 3):
            assert scores["top_k_accuracy"][str(k)] == pytest.approx(
                top_k_accuracy_score(targets, probs, k=k, labels=range(8)),
                abs=1e-6,
            )

        # paUAR-X by hand: the share of known speakers whose (k-best) UAR > X %.
        speakers = np.array([r["spk_id"] for r in manifest])[labelled]
        top = np.argsort(-probs, axis=1)
        for k in (1, 2):
            hit = (top[:, :k] == targets[:, None]).any(axis=1)
            uars = []
            for speaker in sorted(set(speakers) - {"Unknown"}):
                mine = speakers == speaker
                recalls = [
                    hit[mine & (targets == c)].mean()
                    for c in np.unique(targets[mine])
                ]
                uars.append(np.mean(recalls))
            for x in (50, 75):
                assert scores["pauar"][f"k{k}"][str(x)] == pytest.approx(
                    100 * np.mean(np.array(uars) > x / 100), abs=1e-6
                )

        # Per gender: sklearn's macro-F1 on that gender's clips.
        genders = np.array([r["gender"] for r in manifest])[labelled]
        for gender, gender_scores in scores["per_gender"].items():
            mine = genders == gender
            assert gender_scores["macro_f1"] == pytest.approx(
                f1_score(
                    targets[mine],
                    hypotheses[mine],
                    labels=range(8),
                    average="macro",
                    zero_division=0,
                ),
                abs=1e-6,
            )

        # CCC on the 1..7 scale: Lin's formula with scipy's Pearson r.
        for column, name in zip(
            DIMENSIONS, ("arousal", "valence", "dominance"), strict=True
        ):
            truth = np.array([1 + 6 * float(r[name]) for r in manifest])
            predicted = np.array(
                [float(predictions[r["ID"]][column]) for r in manifest]
            )
            r = scipy.stats.pearsonr(truth, predicted)[0]
            ccc = (
                2
                * r
                * truth.std()
                * predicted.std()
                / (
                    truth.var()
                    + predicted.var()
                    + (truth.mean() - predicted.mean()) ** 2
                )
            )
            assert results[split]["dimensional"]["ccc"][name] == pytest.approx(
                ccc, abs=1e-3
            )
