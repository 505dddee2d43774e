"""Categorical emotion metrics over a whole split, overall, per speaker and per gender.

Like :mod:`emoshare_sb.metrics.regression`, these are computed once over every clip of a
split, never averaged per batch. Targets are class indices (``0 .. C-1``);
predictions are class indices or ``[N, C]`` class probabilities (any scores
whose order ranks the classes).

* Macro-F1, the primary score of the MSP-Podcast challenges (Odyssey 2024,
  Interspeech 2025), is sklearn's macro-averaged F1 (:func:`averaged_scores`) with
  ``labels`` set to **all** ``C`` classes and ``zero_division=0``: a class
  absent from the targets still counts in the average, with F1 0 (predicted
  or not), so a subset missing some classes (one gender, a small test set)
  scores lower than the same predictions would over the classes it has.
  Micro-F1 and macro precision use the same labels.
* UAR (unweighted average recall) is the mean recall over the classes
  **present in the targets**: the recall of an absent class is undefined, and
  counting it as 0 would punish a speaker for the emotions they never showed.
* Accuracy (sometimes called weighted accuracy) is the share of clips whose
  1-best class is the target.
* k-best accuracy counts a clip as correct when its target is among the ``k``
  most probable classes (``sklearn.metrics.top_k_accuracy_score``; ties of
  probability are broken as sklearn does, toward the higher class index, and
  the 1-best class used everywhere here follows the same rule).
* paUAR-X (Mitra et al., 2025) is the percentage of speakers whose UAR is
  strictly above X percent; with k-best, a clip counts as recalled when its
  target is among its ``k`` most probable classes.

:func:`classification_report` gathers all of them, with the same metrics per
gender, in a JSON-able dict.

Authors
 * emoshare_sb contributors 2026
"""

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    recall_score,
    top_k_accuracy_score,
)

# Speaker ids that name no one: their clips are left out of per-speaker metrics.
UNKNOWN_SPEAKERS = ("Unknown", "")


def ranked_classes(probabilities):
    """The classes of each clip from most to least probable.

    Ties are broken toward the higher class index, as
    ``sklearn.metrics.top_k_accuracy_score`` breaks them, so that the 1-best
    class here and sklearn's top-1 accuracy agree.

    Arguments
    ---------
    probabilities : array-like
        ``[N, C]`` class probabilities or scores.

    Returns
    -------
    numpy.ndarray
        ``[N, C]`` class indices.

    Example
    -------
    >>> ranked_classes([[0.1, 0.6, 0.3], [0.5, 0.0, 0.5]]).tolist()
    [[1, 2, 0], [2, 0, 1]]
    """
    probabilities = np.asarray(probabilities, dtype=float)
    return np.argsort(probabilities, axis=1, kind="mergesort")[:, ::-1]


def best_classes(probabilities):
    """The 1-best class of each clip (ties as in :func:`ranked_classes`).

    Arguments
    ---------
    probabilities : array-like
        ``[N, C]`` class probabilities or scores.

    Returns
    -------
    numpy.ndarray
        ``[N]`` class indices.

    Example
    -------
    >>> best_classes([[0.1, 0.6, 0.3], [0.7, 0.2, 0.1]]).tolist()
    [1, 0]
    """
    return ranked_classes(probabilities)[:, 0]


def k_best_predictions(targets, probabilities, k):
    """Per-clip hypotheses that are right when the target is among the k best.

    The hypothesis of a clip is its target when the target is among its ``k``
    most probable classes, and its 1-best class otherwise. Recall of these
    hypotheses is the k-best recall that paUAR-X with k-best uses.

    Arguments
    ---------
    targets : array-like
        ``[N]`` class indices.
    probabilities : array-like
        ``[N, C]`` class probabilities or scores.
    k : int
        How many of the most probable classes count.

    Returns
    -------
    numpy.ndarray
        ``[N]`` class indices.

    Example
    -------
    >>> probabilities = [[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]
    >>> k_best_predictions([1, 2], probabilities, k=2).tolist()
    [1, 0]
    """
    targets = np.asarray(targets)
    ranked = ranked_classes(probabilities)
    hit = (ranked[:, :k] == targets[:, None]).any(axis=1)
    return np.where(hit, targets, ranked[:, 0])


def averaged_scores(targets, predictions, num_classes, average="macro"):
    """Precision and F1 averaged over all classes (macro-F1: the MSP-Podcast score).

    ``sklearn.metrics.precision_recall_fscore_support`` with ``labels`` set to
    every class in ``0 .. C-1`` and ``zero_division=0``: a class absent from
    the targets, or never predicted, counts with F1 (and precision) 0 (see
    the module docstring). The recall it would also give is not UAR, which
    averages the classes present only (:func:`unweighted_average_recall`).

    Arguments
    ---------
    targets, predictions : array-like
        ``[N]`` class indices.
    num_classes : int
        The number of classes ``C``.
    average : str
        ``"macro"`` (the mean over classes) or ``"micro"`` (over clips; micro-F1
        equals accuracy for single labels).

    Returns
    -------
    dict
        ``{"precision": float, "f1": float}``, each in [0, 1].

    Example
    -------
    >>> averaged_scores([0, 0, 1, 1], [0, 1, 1, 1], num_classes=2)
    {'precision': 0.833..., 'f1': 0.733...}
    >>> averaged_scores([0, 0], [0, 1], num_classes=3)["f1"]  # 2/3, 0 and 0
    0.222...
    >>> averaged_scores([0, 0, 1, 1], [0, 1, 1, 1], 2, average="micro")["f1"]
    0.75
    """
    precision, _, f1, _ = precision_recall_fscore_support(
        targets,
        predictions,
        labels=np.arange(num_classes),
        average=average,
        zero_division=0,
    )
    return {"precision": float(precision), "f1": float(f1)}


def unweighted_average_recall(targets, predictions):
    """UAR: the mean recall over the classes present in the targets.

    Arguments
    ---------
    targets, predictions : array-like
        ``[N]`` class indices.

    Returns
    -------
    float
        In [0, 1]; NaN when there is no target.

    Example
    -------
    >>> unweighted_average_recall(
    ...     [0, 0, 0, 1], [0, 0, 1, 2]
    ... )  # recalls 2/3 and 0
    0.333...
    """
    targets = np.asarray(targets)
    if targets.size == 0:
        return float("nan")
    return float(
        recall_score(
            targets,
            predictions,
            labels=np.unique(targets),
            average="macro",
            zero_division=0,
        )
    )


def accuracy(targets, predictions):
    """The share of clips predicted right (weighted accuracy).

    Arguments
    ---------
    targets, predictions : array-like
        ``[N]`` class indices.

    Returns
    -------
    float
        In [0, 1].

    Example
    -------
    >>> accuracy([0, 0, 1, 1], [0, 1, 1, 1])
    0.75
    """
    return float(accuracy_score(targets, predictions))


def top_k_accuracy(targets, probabilities, k):
    """The share of clips whose target is among their k most probable classes.

    Arguments
    ---------
    targets : array-like
        ``[N]`` class indices.
    probabilities : array-like
        ``[N, C]`` class probabilities or scores.
    k : int
        How many of the most probable classes count (``k = 1`` is accuracy).

    Returns
    -------
    float
        In [0, 1].

    Example
    -------
    >>> probabilities = [[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.1, 0.2, 0.7]]
    >>> (
    ...     top_k_accuracy([1, 2, 2], probabilities, k=1),
    ...     top_k_accuracy([1, 2, 2], probabilities, k=2),
    ... )
    (0.333..., 0.666...)
    """
    probabilities = np.asarray(probabilities, dtype=float)
    num_classes = probabilities.shape[1]
    if k >= num_classes:
        return 1.0  # sklearn would warn that the score is trivially perfect
    if num_classes == 2:
        # sklearn reads two-class scores as binary and wants them 1-D.
        return accuracy(targets, best_classes(probabilities))
    return float(
        top_k_accuracy_score(
            targets, probabilities, k=k, labels=np.arange(num_classes)
        )
    )


def k_best_confusion_matrix(targets, probabilities, k=1):
    """Confusion matrix of k-best hypotheses (rows: true class, columns: hypothesis).

    A clip counts on the diagonal when its true class is among its ``k`` most
    probable classes, and under its 1-best class otherwise (Mitra et al.'s
    2-best confusion matrices).

    Arguments
    ---------
    targets : array-like
        ``[N]`` class indices.
    probabilities : array-like
        ``[N, C]`` class probabilities.
    k : int
        How many of the most probable classes count.

    Returns
    -------
    numpy.ndarray
        ``[C, C]`` counts.

    Example
    -------
    >>> probabilities = [[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]
    >>> k_best_confusion_matrix([1, 1, 2], probabilities, k=2).tolist()
    [[0, 0, 0], [0, 2, 0], [0, 0, 1]]
    """
    probabilities = np.asarray(probabilities, dtype=float)
    hypotheses = k_best_predictions(targets, probabilities, k)
    return confusion_matrix(
        targets, hypotheses, labels=np.arange(probabilities.shape[1])
    )


def uar_per_speaker(targets, probabilities, speakers, k=1):
    """The (k-best) UAR of each speaker's clips.

    Arguments
    ---------
    targets : array-like
        ``[N]`` class indices.
    probabilities : array-like
        ``[N, C]`` class probabilities or scores.
    speakers : array-like
        ``[N]`` speaker ids; clips of ``Unknown`` (or empty) speakers are left
        out, since they may belong to many people.
    k : int
        A clip counts as recalled when its target is among its ``k`` most
        probable classes.

    Returns
    -------
    dict
        ``{speaker: UAR}``, sorted by speaker id.

    Example
    -------
    >>> probabilities = [
    ...     [0.6, 0.3, 0.1],
    ...     [0.2, 0.7, 0.1],
    ...     [0.6, 0.3, 0.1],
    ...     [0.5, 0.4, 0.1],
    ... ]
    >>> uar_per_speaker([0, 0, 1, 1], probabilities, ["a", "a", "b", "Unknown"])
    {'a': 0.5, 'b': 0.0}
    >>> uar_per_speaker(
    ...     [0, 0, 1, 1], probabilities, ["a", "a", "b", "Unknown"], k=2
    ... )
    {'a': 1.0, 'b': 1.0}
    """
    targets = np.asarray(targets)
    speakers = np.asarray(speakers).astype(str)
    hypotheses = k_best_predictions(targets, probabilities, k)
    return {
        str(speaker): unweighted_average_recall(
            targets[speakers == speaker], hypotheses[speakers == speaker]
        )
        for speaker in np.unique(speakers)
        if speaker not in UNKNOWN_SPEAKERS
    }


def percentage_speakers_above_uar(
    targets, probabilities, speakers, threshold, k=1
):
    """paUAR-X: the percentage of speakers whose (k-best) UAR is above X percent.

    Arguments
    ---------
    targets : array-like
        ``[N]`` class indices.
    probabilities : array-like
        ``[N, C]`` class probabilities or scores.
    speakers : array-like
        ``[N]`` speaker ids (``Unknown`` ones left out, see
        :func:`uar_per_speaker`).
    threshold : float
        X, in percent (50 for paUAR-50); a speaker counts when their UAR is
        strictly above ``X / 100``.
    k : int
        A clip counts as recalled when its target is among its ``k`` most
        probable classes.

    Returns
    -------
    float
        In [0, 100]; NaN when no speaker is known.

    Example
    -------
    >>> probabilities = [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]]
    >>> percentage_speakers_above_uar(
    ...     [0, 0, 1], probabilities, ["a", "a", "b"], 25
    ... )
    50.0
    """
    uars = np.array(
        list(uar_per_speaker(targets, probabilities, speakers, k).values())
    )
    if uars.size == 0:
        return float("nan")
    return float(100.0 * np.mean(uars > threshold / 100.0))


def overall_metrics(targets, probabilities, class_names, ks=(1, 2, 3)):
    """Whole-split metrics of one group of clips (no per-speaker or per-gender part).

    Arguments
    ---------
    targets : array-like
        ``[N]`` class indices.
    probabilities : array-like
        ``[N, C]`` class probabilities or scores.
    class_names : list of str
        The ``C`` class names.
    ks : sequence of int
        The k of the k-best accuracies.

    Returns
    -------
    dict
        ``num_clips``, ``macro_f1``, ``micro_f1``, ``macro_precision``,
        ``uar``, ``accuracy``, ``top_k_accuracy`` (``{"1": ..., "2": ...}``) and
        ``per_class`` (``{name: {"precision", "recall", "f1", "support"}}``).

    Example
    -------
    >>> metrics = overall_metrics(
    ...     [0, 1], [[0.9, 0.1], [0.6, 0.4]], ["A", "B"], ks=(1,)
    ... )
    >>> (
    ...     metrics["accuracy"],
    ...     metrics["macro_f1"],
    ...     metrics["per_class"]["B"]["recall"],
    ... )
    (0.5, 0.333..., 0.0)
    """
    targets = np.asarray(targets)
    probabilities = np.asarray(probabilities, dtype=float)
    num_classes = len(class_names)
    if probabilities.ndim != 2 or probabilities.shape != (
        len(targets),
        num_classes,
    ):
        raise ValueError(
            f"probabilities must be [{len(targets)}, {num_classes}], "
            f"got {list(probabilities.shape)}"
        )
    if len(targets) == 0:
        return {"num_clips": 0}
    predictions = best_classes(probabilities)
    macro = averaged_scores(targets, predictions, num_classes, "macro")
    precision, recall, f1, support = precision_recall_fscore_support(
        targets, predictions, labels=np.arange(num_classes), zero_division=0
    )
    return {
        "num_clips": int(len(targets)),
        "macro_f1": macro["f1"],
        "micro_f1": averaged_scores(targets, predictions, num_classes, "micro")[
            "f1"
        ],
        "macro_precision": macro["precision"],
        "uar": unweighted_average_recall(targets, predictions),
        "accuracy": accuracy(targets, predictions),
        "top_k_accuracy": {
            str(k): top_k_accuracy(targets, probabilities, k) for k in ks
        },
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
    }


def speaker_metrics(
    targets, probabilities, speakers, ks=(1, 2, 3), thresholds=(50, 75)
):
    """paUAR-X for each k and X, with the number of known speakers.

    Arguments
    ---------
    targets : array-like
        ``[N]`` class indices.
    probabilities : array-like
        ``[N, C]`` class probabilities or scores.
    speakers : array-like
        ``[N]`` speaker ids (``Unknown`` ones left out).
    ks : sequence of int
        The k of the k-best recalls.
    thresholds : sequence of float
        The X of paUAR-X, in percent.

    Returns
    -------
    dict
        ``{"num_speakers": n, "pauar": {"k1": {"50": ..., "75": ...}, ...}}``.

    Example
    -------
    >>> probabilities = [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]]
    >>> speaker_metrics(
    ...     [0, 0, 1],
    ...     probabilities,
    ...     ["a", "a", "b"],
    ...     ks=(1, 2),
    ...     thresholds=(50,),
    ... )
    {'num_speakers': 2, 'pauar': {'k1': {'50': 0.0}, 'k2': {'50': 100.0}}}
    """
    num_speakers = len(uar_per_speaker(targets, probabilities, speakers))
    return {
        "num_speakers": num_speakers,
        "pauar": {
            f"k{k}": {
                f"{x:g}": percentage_speakers_above_uar(
                    targets, probabilities, speakers, x, k
                )
                for x in thresholds
            }
            for k in ks
        },
    }


def classification_report(
    probabilities,
    targets,
    class_names,
    speakers=None,
    genders=None,
    ks=(1, 2, 3),
    thresholds=(50, 75),
):
    """Every categorical metric of a split, overall, per speaker and per gender.

    Clips whose target is negative (no consensus class: MSP-Podcast ``O``,
    ``X`` or unlabelled) are left out of every metric.

    Arguments
    ---------
    probabilities : array-like
        ``[N, C]`` class probabilities or scores.
    targets : array-like
        ``[N]`` class indices, negative for clips without a class.
    class_names : list of str
        The ``C`` class names.
    speakers : array-like, optional
        ``[N]`` speaker ids; adds paUAR-X (``Unknown`` speakers left out).
    genders : array-like, optional
        ``[N]`` genders; adds the same report (overall and per speaker) for
        each gender value present, ``Unknown`` included.
    ks : sequence of int
        The k of the k-best accuracies and paUARs.
    thresholds : sequence of float
        The X of paUAR-X, in percent.

    Returns
    -------
    dict
        The keys of :func:`overall_metrics`; with ``speakers``, those of
        :func:`speaker_metrics`; with ``genders``, ``per_gender`` mapping each
        gender to its own report. Values are plain Python numbers, ready for
        ``json.dump``.

    Example
    -------
    >>> probabilities = [
    ...     [0.7, 0.2, 0.1],
    ...     [0.2, 0.5, 0.3],
    ...     [0.4, 0.5, 0.1],
    ...     [0.3, 0.3, 0.4],
    ... ]
    >>> report = classification_report(
    ...     probabilities,
    ...     [0, 1, 0, -1],
    ...     ["Angry", "Sad", "Happy"],
    ...     speakers=["s1", "s1", "s2", "s2"],
    ...     genders=["Female", "Female", "Male", "Male"],
    ... )
    >>> report["num_clips"], report["accuracy"], report["top_k_accuracy"]["2"]
    (3, 0.666..., 1.0)
    >>> report["pauar"]["k1"], report["per_gender"]["Male"]["uar"]
    ({'50': 50.0, '75': 50.0}, 0.0)
    """
    probabilities = np.asarray(probabilities, dtype=float)
    targets = np.asarray(targets)
    keep = targets >= 0
    report = overall_metrics(
        targets[keep], probabilities[keep], class_names, ks
    )
    if speakers is not None:
        speakers = np.asarray(speakers).astype(str)[keep]
        report.update(
            speaker_metrics(
                targets[keep], probabilities[keep], speakers, ks, thresholds
            )
        )
    if genders is not None:
        genders = np.asarray(genders).astype(str)
        report["per_gender"] = {}
        for gender in np.unique(genders[keep]):
            in_gender = keep & (genders == gender)
            report["per_gender"][str(gender)] = classification_report(
                probabilities[in_gender],
                targets[in_gender],
                class_names,
                speakers=None
                if speakers is None
                else speakers[genders[keep] == gender],
                ks=ks,
                thresholds=thresholds,
            )
    return report
