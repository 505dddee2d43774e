"""Categorical metrics against hand-computed values and scikit-learn."""

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score, recall_score

from emoshare_sb.data.msp_podcast import MSP_CLASS_NAMES
from emoshare_sb.metrics.classification import (
    accuracy,
    averaged_scores,
    best_classes,
    classification_report,
    k_best_predictions,
    percentage_speakers_above_uar,
    top_k_accuracy,
    uar_per_speaker,
    unweighted_average_recall,
)

# Three classes, six clips; the 1-best classes are 0 0 1 1 2 0.
PROBABILITIES = np.array(
    [
        [0.7, 0.2, 0.1],  # target 0, ranks 0 1 2
        [0.5, 0.4, 0.1],  # target 1, ranks 0 1 2
        [0.1, 0.8, 0.1],  # target 1, ranks 1 (0 and 2 tie: 2 first) 2 0
        [0.3, 0.6, 0.1],  # target 0, ranks 1 0 2
        [0.1, 0.3, 0.6],  # target 2, ranks 2 1 0
        [0.6, 0.1, 0.3],  # target 2, ranks 0 2 1
    ]
)
TARGETS = np.array([0, 1, 1, 0, 2, 2])
PREDICTIONS = np.array([0, 0, 1, 1, 2, 0])


def test_best_classes():
    assert best_classes(PROBABILITIES).tolist() == PREDICTIONS.tolist()


def test_macro_and_micro_f1_by_hand():
    # Class 0: P 1/3 (1 of 3 predicted), R 1/2 -> F1 0.4.
    # Class 1: P 1/2, R 1/2 -> 0.5.  Class 2: P 1, R 1/2 -> 2/3.
    macro = averaged_scores(TARGETS, PREDICTIONS, 3)
    assert macro["f1"] == pytest.approx((0.4 + 0.5 + 2 / 3) / 3)
    assert macro["precision"] == pytest.approx((1 / 3 + 1 / 2 + 1) / 3)
    micro = averaged_scores(TARGETS, PREDICTIONS, 3, average="micro")
    assert micro["f1"] == pytest.approx(3 / 6)
    assert accuracy(TARGETS, PREDICTIONS) == pytest.approx(0.5)


def test_macro_f1_counts_every_class_like_the_challenge():
    # Eight classes, only two present and predicted perfectly: 2 of 8 F1s are 1.
    targets = [0, 7, 0, 7]
    assert averaged_scores(targets, targets, 8)["f1"] == pytest.approx(2 / 8)
    rng = np.random.default_rng(0)
    targets, predictions = rng.integers(0, 8, 200), rng.integers(0, 6, 200)
    assert averaged_scores(targets, predictions, 8)["f1"] == pytest.approx(
        f1_score(
            targets,
            predictions,
            labels=range(8),
            average="macro",
            zero_division=0,
        )
    )


def test_uar_averages_only_present_classes():
    # Recalls: class 0 1/2, class 1 1/2, class 2 1/2.
    assert unweighted_average_recall(TARGETS, PREDICTIONS) == pytest.approx(0.5)
    # Class 2 is predicted but never a target: it does not count as recall 0.
    assert unweighted_average_recall([0, 0, 1], [0, 2, 1]) == pytest.approx(
        0.75
    )
    rng = np.random.default_rng(1)
    targets, predictions = rng.integers(0, 8, 200), rng.integers(0, 8, 200)
    assert unweighted_average_recall(targets, predictions) == pytest.approx(
        recall_score(targets, predictions, average="macro")
    )
    assert np.isnan(unweighted_average_recall([], []))


def test_top_k_accuracy_by_hand():
    # Ranks of the target: 1, 2, 1, 2, 1, 2 (clip 3 ranks 1 0 2 with target 0).
    assert top_k_accuracy(TARGETS, PROBABILITIES, 1) == pytest.approx(3 / 6)
    assert top_k_accuracy(TARGETS, PROBABILITIES, 2) == pytest.approx(6 / 6)
    assert top_k_accuracy(TARGETS, PROBABILITIES, 3) == 1.0


def test_top_k_accuracy_two_classes():
    probabilities = [[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]]
    assert top_k_accuracy([0, 1, 1], probabilities, 1) == pytest.approx(2 / 3)


def test_k_best_predictions():
    assert (
        k_best_predictions(TARGETS, PROBABILITIES, 1).tolist()
        == PREDICTIONS.tolist()
    )
    assert (
        k_best_predictions(TARGETS, PROBABILITIES, 2).tolist()
        == TARGETS.tolist()
    )


def test_pauar_on_a_tiny_hand_example():
    speakers = ["s1", "s1", "s2", "s2", "s3", "s3"]
    # 1-best: s1 targets 0,1 predicted 0,0 -> recalls 1, 0 -> UAR 0.5.
    #         s2 targets 1,0 predicted 1,1 -> UAR 0.5.
    #         s3 targets 2,2 predicted 2,0 -> UAR 0.5.
    assert uar_per_speaker(TARGETS, PROBABILITIES, speakers) == {
        "s1": 0.5,
        "s2": 0.5,
        "s3": 0.5,
    }
    # UAR must be strictly above X: nobody is above 50 %.
    assert (
        percentage_speakers_above_uar(TARGETS, PROBABILITIES, speakers, 50)
        == 0.0
    )
    assert (
        percentage_speakers_above_uar(TARGETS, PROBABILITIES, speakers, 40)
        == 100.0
    )
    # 2-best: every target is among the two most probable classes.
    assert (
        percentage_speakers_above_uar(TARGETS, PROBABILITIES, speakers, 75, k=2)
        == 100.0
    )
    # Unknown speakers are nobody: their clips are left out.
    unknown = ["s1", "s1", "Unknown", "Unknown", "Unknown", "Unknown"]
    assert uar_per_speaker(TARGETS, PROBABILITIES, unknown) == {"s1": 0.5}
    two_of_three = ["s1", "s1", "s2", "s2", "s3", "s4"]  # s3 right, s4 wrong
    assert percentage_speakers_above_uar(
        TARGETS, PROBABILITIES, two_of_three, 50
    ) == pytest.approx(100 / 4)


def test_report_per_gender_equals_report_on_each_subset():
    rng = np.random.default_rng(2)
    n = 120
    probabilities = rng.dirichlet(np.ones(8), size=n)
    targets = rng.integers(-1, 8, n)  # -1: no consensus class
    speakers = rng.choice(["1", "2", "3", "4", "Unknown"], n)
    genders = np.where(np.isin(speakers, ["1", "2"]), "Female", "Male")
    report = classification_report(
        probabilities,
        targets,
        MSP_CLASS_NAMES,
        speakers=speakers,
        genders=genders,
    )
    keep = targets >= 0
    assert report["num_clips"] == int(keep.sum())
    assert report["macro_f1"] == pytest.approx(
        averaged_scores(targets[keep], best_classes(probabilities[keep]), 8)[
            "f1"
        ]
    )
    assert report["top_k_accuracy"]["3"] == pytest.approx(
        top_k_accuracy(targets[keep], probabilities[keep], 3)
    )
    assert report["num_speakers"] == 4
    for gender in ("Female", "Male"):
        subset = keep & (genders == gender)
        alone = classification_report(
            probabilities[subset],
            targets[subset],
            MSP_CLASS_NAMES,
            speakers=speakers[subset],
        )
        assert report["per_gender"][gender] == alone
    assert report["per_gender"]["Female"]["num_speakers"] == 2
    assert set(report["per_class"]) == set(MSP_CLASS_NAMES)
    assert sorted(report["pauar"]) == ["k1", "k2", "k3"]
    assert sorted(report["pauar"]["k1"]) == ["50", "75"]
    json.dumps(report)  # JSON-able


def test_report_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="probabilities must be"):
        classification_report(PROBABILITIES, TARGETS, MSP_CLASS_NAMES)
