"""What ``emoshare-report`` reads from an experiment folder, checked.

``results.json`` (:func:`read_results`: a file that is not valid JSON, or
whose scores are not the numbers a recipe writes, is a :class:`ResultsError`
naming the file and the field), and the true and predicted values of a split
from ``save/<split>.csv`` and ``predictions/<split>.csv``
(:func:`read_split`, :func:`read_msp_split`).

Authors
 * emoshare_sb contributors 2026
"""

import csv
import json
import numbers
import os
import re

import numpy as np

from emoshare_sb.data.msp_podcast import MSP_CLASS_CODES, MSP_CLASS_NAMES

# A split the MSP-Podcast recipe scores: valid, testN, or a noisy testN set.
MSP_SPLIT_NAME = re.compile(r"^(valid|test\d+)(_snr[-+.\d]+db)?$")
# Splits of the other recipes' results.json.
REGRESSION_SPLITS = ("devel", "test")


class ResultsError(ValueError):
    """A ``results.json`` that is not what a recipe writes (the message names it)."""


def is_msp_results(results):
    """Whether a ``results.json`` was written by the MSP-Podcast recipe.

    Arguments
    ---------
    results : dict
        The loaded ``results.json``.

    Returns
    -------
    bool
        True when a split holds ``categorical`` and ``dimensional`` scores.

    Example
    -------
    >>> is_msp_results({"valid": {"categorical": {}, "dimensional": {}}})
    True
    >>> is_msp_results({"devel": {"spearman": {}, "ccc": {}, "pearson": {}}})
    False
    """
    return any(
        isinstance(scores, dict)
        and {"categorical", "dimensional"} <= set(scores)
        for scores in results.values()
    )


def msp_splits(results):
    """The MSP-Podcast splits of a ``results.json``, in its order.

    Arguments
    ---------
    results : dict
        The loaded ``results.json`` (or its ``best_checkpoint`` part).

    Returns
    -------
    scored : list of str
        Splits with scores (valid, test1, test2, noisy test1 sets, ...).
    unlabelled : list of str
        Splits with predictions only (Test3).

    Example
    -------
    >>> msp_splits(
    ...     {"ssl_layer": None, "valid": {"categorical": {}}, "test3": None}
    ... )
    (['valid'], ['test3'])
    """
    names = [name for name in results if MSP_SPLIT_NAME.match(name)]
    return (
        [name for name in names if results[name]],
        [name for name in names if not results[name]],
    )


def read_results(output_folder):
    """Reads and checks an experiment's ``results.json``.

    Arguments
    ---------
    output_folder : str
        The experiment folder.

    Returns
    -------
    dict
        The results.

    Raises
    ------
    ResultsError
        When the file is not valid JSON, or a scored split is not the
        mapping of numbers a recipe writes; the message names the file and
        the field.

    Example
    -------
    >>> folder = getfixture("tmpdir")
    >>> _ = (folder / "results.json").write_text('{"devel": [1}', "utf-8")
    >>> try:
    ...     read_results(str(folder))
    ... except ResultsError as err:
    ...     print(err)
    /.../results.json: not valid JSON (Expecting ',' delimiter at line 1, column 13)
    """
    path = os.path.join(output_folder, "results.json")
    try:
        with open(path, encoding="utf-8") as handle:
            results = json.load(handle)
    except json.JSONDecodeError as err:
        raise ResultsError(
            f"{path}: not valid JSON ({err.msg} at line {err.lineno}, "
            f"column {err.colno})"
        ) from None
    except UnicodeDecodeError as err:
        raise ResultsError(f"{path}: not UTF-8 text ({err.reason})") from None
    check_results(results, path)
    return results


def check_results(results, path):
    """Checks that the scores of ``results.json`` are what a recipe writes.

    Arguments
    ---------
    results : object
        The loaded JSON.
    path : str
        The file, for the message.

    Raises
    ------
    ResultsError
        Naming the first field that is wrong.

    Example
    -------
    >>> scores = {"spearman": {"mean": "high"}, "ccc": {}, "pearson": {}}
    >>> check_results({"devel": scores}, "r.json")
    Traceback (most recent call last):
    ...
    emoshare_sb.analysis.results.ResultsError: r.json: devel.spearman.mean is 'high', not a number
    """
    if not isinstance(results, dict):
        raise ResultsError(
            f"{path}: expected a JSON object of splits, got "
            f"{type(results).__name__}"
        )
    if is_msp_results(results):
        scored = [name for name in results if MSP_SPLIT_NAME.match(name)]
        required = ("categorical", "dimensional")
    else:
        scored = [name for name in REGRESSION_SPLITS if name in results]
        required = ("spearman", "ccc", "pearson")
    best = results.get("best_checkpoint") or {}
    if not isinstance(best, dict):
        raise ResultsError(f"{path}: best_checkpoint is not an object")
    fields = [(name, results[name]) for name in scored]
    fields += [(f"best_checkpoint.{n}", best[n]) for n in scored if n in best]
    for name, scores in fields:
        if scores is None:
            continue  # an unlabelled split
        if not isinstance(scores, dict):
            raise ResultsError(f"{path}: {name} is not an object of scores")
        for key in required:
            if not isinstance(scores.get(key), dict):
                raise ResultsError(f"{path}: {name}.{key} is missing")
        _check_numbers(scores, f"{path}: {name}")


def _check_numbers(value, where):
    """Every leaf of a split's scores is a number or null."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_numbers(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_numbers(item, f"{where}[{index}]")
    elif value is not None and (
        isinstance(value, bool) or not isinstance(value, numbers.Number)
    ):
        raise ResultsError(f"{where} is {value!r}, not a number")


def read_split(output_folder, split, names):
    """True and predicted values of a split, aligned by clip.

    Arguments
    ---------
    output_folder : str
        The experiment folder.
    split : str
        ``devel`` or ``test``.
    names : list of str
        The target columns.

    Returns
    -------
    tuple
        ``(ids, y_true [N, D], y_pred [N, D])``; ``y_true`` is NaN where the
        manifest has no label.
    """
    with open(
        os.path.join(output_folder, "save", f"{split}.csv"), newline=""
    ) as handle:
        truth = {
            row["ID"]: [float(row[n]) for n in names]
            for row in csv.DictReader(handle)
        }
    ids, y_true, y_pred = [], [], []
    with open(
        os.path.join(output_folder, "predictions", f"{split}.csv"), newline=""
    ) as handle:
        for row in csv.DictReader(handle):
            ids.append(row["filename"])
            y_true.append(truth[row["filename"]])
            y_pred.append([float(row[n]) for n in names])
    return ids, np.array(y_true), np.array(y_pred)


def read_msp_split(output_folder, split, class_names=MSP_CLASS_NAMES):
    """The clips of a split with a consensus class: probabilities, classes, speakers.

    Arguments
    ---------
    output_folder : str
        The experiment folder (``predictions/<split>.csv`` and
        ``save/<manifest>.csv``; a noisy set such as ``test1_snr5db`` reads
        the ``test1`` manifest).
    split : str
        A scored split.
    class_names : list of str
        The probability columns, in the classes' order.

    Returns
    -------
    dict
        ``ids``, ``probabilities`` ``[N, C]``, ``targets`` ``[N]`` (class
        indices) and ``speakers`` ``[N]``, for the clips whose consensus is
        one of the classes (as the recipe's categorical metrics).
    """
    manifest = os.path.join(
        output_folder, "save", f"{split.split('_snr')[0]}.csv"
    )
    with open(manifest, newline="") as handle:
        truth = {row["ID"]: row for row in csv.DictReader(handle)}
    ids, probabilities, targets, speakers = [], [], [], []
    path = os.path.join(output_folder, "predictions", f"{split}.csv")
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            clip = truth[row["FileName"]]
            code = clip["emo_class"]
            # O, X, none, or a class outside class_names: not scored.
            name = (
                MSP_CLASS_NAMES[MSP_CLASS_CODES.index(code)]
                if code in MSP_CLASS_CODES
                else None
            )
            if name not in class_names:
                continue
            ids.append(row["FileName"])
            probabilities.append([float(row[c]) for c in class_names])
            targets.append(list(class_names).index(name))
            speakers.append(clip["spk_id"])
    return {
        "ids": ids,
        "probabilities": np.array(probabilities, dtype=float).reshape(
            -1, len(class_names)
        ),
        "targets": np.array(targets, dtype=int),
        "speakers": np.array(speakers, dtype=str),
    }
