"""Data preparation for any corpus given as a table of audio paths and targets.

The table is a CSV file with one row per clip: a column of audio paths
(absolute, or relative to ``audio_root``, by default the table's folder), one
column per regression target and, optionally, a split column and a speaker
column::

    path, speaker, valence, arousal
    spk01 / a.wav, spk01, 0.61, 0.20
    spk02 / b.flac, spk02, 0.15, 0.74

:func:`prepare_from_table` validates every row and writes
``train.csv``/``devel.csv``/``test.csv`` in exactly the ComParE 2023 manifest
format (``ID,duration,wav,<targets>``, ``nan`` where a clip has no label), so
the ComParE recipe trains on them unchanged (``hparams/table_regression_example.yaml``).
Splits come from the split column (``train``/``devel``/``test``; ``dev``,
``development``, ``valid``, ``validation``, ``training``, ``eval`` are
accepted) or, without one, from a seeded random split of the speakers (each
clip its own speaker without a speaker column), so that no speaker is in two
splits. Like the ComParE preparation, every problem stops with an error
naming the file, line and column, no manifest is half-written, and the work
is skipped when the manifests exist and were made with the same options
and table.

For label *distributions* (per-rater votes, as the MSP-Podcast recipe
learns), :func:`votes_to_distributions` turns a long table of votes
(file, rater, label) into one row per file with the share of votes for each
class; merged with the audio table, its class columns are the targets.

Authors
 * emoshare_sb contributors 2026
"""

import csv
import math
import os

import numpy as np
import pandas as pd
from speechbrain.utils.logger import get_logger

from emoshare_sb.data.audio import AudioReadError, audio_info
from emoshare_sb.data.errors import DataPrepError
from emoshare_sb.data.manifest import prepared_with, save_options
from emoshare_sb.utils.io import write_csv

logger = get_logger(__name__)

SPLITS = ("train", "devel", "test")
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "devel": "devel",
    "dev": "devel",
    "development": "devel",
    "valid": "devel",
    "validation": "devel",
    "test": "test",
    "eval": "test",
    "evaluation": "test",
}
MANIFEST_COLUMNS = ("ID", "duration", "wav")
# Cells that mean "no label" (a row is labelled in every target or in none).
MISSING_VALUES = ("", "nan", "NaN", "NA", "?")


def prepare_from_table(
    table,
    save_folder,
    audio_column="path",
    target_columns=None,
    split_column=None,
    speaker_column=None,
    split_ratios=(0.8, 0.1, 0.1),
    seed=0,
    audio_root=None,
    value_range=None,
    skip_prep=False,
):
    """Validates a table of clips and targets and writes the split manifests.

    Arguments
    ---------
    table : str
        The CSV table (header on line 1).
    save_folder : str
        Where ``train.csv``, ``devel.csv`` and ``test.csv`` are written.
    audio_column : str
        The column of audio paths; its values, as written, become the clip IDs
        (and the ``filename`` column of the recipe's predictions).
    target_columns : list of str
        The regression targets, in the order the model predicts them (the
        recipe's ``emotions``).
    split_column : str, optional
        The column naming each clip's split. Without it, the split is random.
    speaker_column : str, optional
        For the random split: clips of one speaker go to one split.
    split_ratios : sequence of float
        Train, devel and test shares of the clips for the random split.
    seed : int
        Seed of the random split.
    audio_root : str, optional
        Where relative audio paths start (default: the table's folder).
    value_range : sequence of float, optional
        ``(low, high)``: targets outside are errors (``[0, 1]`` for a sigmoid
        head such as the ComParE recipe's).
    skip_prep : bool
        If True, do nothing.

    Returns
    -------
    list of str
        The target columns.

    Raises
    ------
    DataPrepError
        For any bad input, naming the file, line and column.

    Example
    -------
    >>> import soundfile
    >>> tmp = getfixture("tmpdir")
    >>> lines = ["path,speaker,valence"]
    >>> for i in range(6):
    ...     soundfile.write(str(tmp / f"{i}.wav"), np.zeros(8000), 16000)
    ...     lines.append(f"{i}.wav,s{i % 3},0.{i}")
    >>> _ = (tmp / "table.csv").write("\\n".join(lines) + "\\n")
    >>> prepare_from_table(
    ...     str(tmp / "table.csv"),
    ...     str(tmp / "save"),
    ...     target_columns=["valence"],
    ...     speaker_column="speaker",
    ... )
    ['valence']
    >>> print(open(tmp / "save" / "devel.csv").read().splitlines()[0])
    ID,duration,wav,valence
    """
    targets = _check_target_columns(target_columns)
    if skip_prep:
        return targets
    ratios = _check_ratios(split_ratios)
    table = os.path.abspath(table)
    if not os.path.isfile(table):
        raise DataPrepError("the table does not exist", table)
    audio_root = (
        os.path.abspath(audio_root) if audio_root else os.path.dirname(table)
    )

    manifests = [f"{split}.csv" for split in SPLITS]
    options = {
        "table": [table, os.path.getsize(table), os.path.getmtime(table)],
        "audio_column": audio_column,
        "target_columns": targets,
        "split_column": split_column,
        "speaker_column": speaker_column,
        "split_ratios": None if split_column else ratios,
        "seed": None if split_column else seed,
        "audio_root": audio_root,
        "value_range": None
        if value_range is None
        else [float(v) for v in value_range],
    }
    if prepared_with(save_folder, options, manifests):
        logger.info(
            f"Manifests in {save_folder} are up to date; skipping preparation."
        )
        return targets

    rows = _read_table(
        table,
        audio_column,
        targets,
        split_column,
        speaker_column,
        audio_root,
        value_range,
    )
    if split_column:
        splits = {
            split: [r for r in rows if r["_split"] == split] for split in SPLITS
        }
        for split, members in splits.items():
            if not members:
                raise DataPrepError(
                    f"no row is in split '{split}' (every split needs clips)",
                    table,
                    field=split_column,
                )
    else:
        unlabelled = next((r for r in rows if not r["_labelled"]), None)
        if unlabelled is not None:
            raise DataPrepError(
                "the row has no targets; with a random split every row needs them "
                "(give a split column that puts unlabelled clips in test)",
                table,
                unlabelled["_line"],
                targets[0],
            )
        splits = speaker_disjoint_split(rows, ratios, seed, table)
    _check_labels(splits, table, targets[0])

    os.makedirs(save_folder, exist_ok=True)
    fieldnames = list(MANIFEST_COLUMNS) + targets
    for split, members in splits.items():
        members = [
            {k: v for k, v in r.items() if not k.startswith("_")}
            for r in members
        ]
        write_csv(
            os.path.join(save_folder, f"{split}.csv"), members, fieldnames
        )
        logger.info(f"Wrote {len(members)} rows to {save_folder}/{split}.csv")
    save_options(save_folder, options)
    return targets


def speaker_disjoint_split(rows, ratios, seed=0, table=None):
    """Splits rows at random by speaker, so no speaker is in two splits.

    Speakers are shuffled with ``seed`` and taken in order until each split
    holds about its share of the clips; every split gets at least one speaker.

    Arguments
    ---------
    rows : list of dict
        Rows with a ``_speaker`` key (None: the row is its own speaker).
    ratios : sequence of float
        Train, devel and test shares of the clips.
    seed : int
        Random seed.
    table : str, optional
        Named in errors.

    Returns
    -------
    dict
        ``{"train": rows, "devel": rows, "test": rows}``.

    Example
    -------
    >>> rows = [{"ID": str(i), "_speaker": f"s{i // 2}"} for i in range(20)]
    >>> splits = speaker_disjoint_split(rows, (0.8, 0.1, 0.1))
    >>> [len(splits[s]) for s in ("train", "devel", "test")]
    [16, 2, 2]
    >>> {r["_speaker"] for r in splits["devel"]} & {
    ...     r["_speaker"] for r in splits["train"]
    ... }
    set()
    """
    groups = {}
    for index, row in enumerate(rows):
        speaker = row.get("_speaker")
        groups.setdefault(
            ("row", index) if speaker is None else ("speaker", speaker), []
        ).append(row)
    if len(groups) < len(SPLITS):
        raise DataPrepError(
            f"a random split needs at least {len(SPLITS)} speakers (or clips), found {len(groups)}",
            table,
        )
    keys = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    sizes = np.array([len(groups[keys[i]]) for i in order])
    cumulative = np.cumsum(sizes)
    # First group index of devel and of test: where the running total of
    # clips reaches each cumulative share, keeping every split non-empty.
    bounds, total = [], cumulative[-1]
    for share in np.cumsum(ratios)[:-1]:
        bounds.append(
            int(np.searchsorted(cumulative, share * total - 1e-9)) + 1
        )
    first_devel = min(max(bounds[0], 1), len(keys) - 2)
    first_test = min(max(bounds[1], first_devel + 1), len(keys) - 1)
    parts = {
        "train": order[:first_devel],
        "devel": order[first_devel:first_test],
        "test": order[first_test:],
    }
    return {
        split: [row for i in sorted(indices) for row in groups[keys[i]]]
        for split, indices in parts.items()
    }


def votes_to_distributions(
    votes,
    file_column="file",
    rater_column="rater",
    label_column="label",
    classes=None,
):
    """Turns per-rater votes into per-file vote distributions.

    Each rater's vote for a file counts once; a file's distribution is the
    share of its raters who voted for each class (summing to 1).

    Arguments
    ---------
    votes : str or pandas.DataFrame
        A long table, one row per (file, rater, label) vote; a CSV path or a
        DataFrame.
    file_column, rater_column, label_column : str
        Its columns.
    classes : list of str, optional
        The classes, in output column order; a vote for another label is an
        error. Default: the sorted labels found.

    Returns
    -------
    pandas.DataFrame
        One row per file (in order of first appearance): ``file_column``,
        one column per class and ``num_raters``.

    Raises
    ------
    DataPrepError
        For a missing column, an empty cell, a rater voting twice for a file
        or a label outside ``classes``, naming the line.

    Example
    -------
    >>> votes = pd.DataFrame(
    ...     {
    ...         "file": ["a", "a", "a", "b"],
    ...         "rater": [1, 2, 3, 1],
    ...         "label": ["happy", "sad", "happy", "sad"],
    ...     }
    ... )
    >>> votes_to_distributions(votes)
      file     happy       sad  num_raters
    0    a  0.666667  0.333333           3
    1    b  0.000000  1.000000           1
    """
    source = votes if isinstance(votes, str) else None
    if source is not None:
        if not os.path.isfile(source):
            raise DataPrepError("the vote table does not exist", source)
        votes = pd.read_csv(source, dtype=str, keep_default_na=False)
    votes = votes.astype(str).apply(lambda column: column.str.strip())
    columns = (file_column, rater_column, label_column)
    for column in columns:
        if column not in votes.columns:
            raise DataPrepError(
                f"column '{column}' is not in the header ({list(votes.columns)})",
                source,
                1,
            )
    lines = votes.index + 2  # the header is line 1
    for column in columns:
        empty = votes[column] == ""
        if empty.any():
            raise DataPrepError(
                "empty value", source, int(lines[empty.argmax()]), column
            )
    repeated = votes.duplicated([file_column, rater_column])
    if repeated.any():
        line = int(lines[repeated.argmax()])
        raise DataPrepError(
            f"rater '{votes[rater_column].iloc[repeated.argmax()]}' voted twice for "
            f"'{votes[file_column].iloc[repeated.argmax()]}'",
            source,
            line,
            rater_column,
        )
    classes = (
        sorted(votes[label_column].unique())
        if classes is None
        else list(classes)
    )
    unknown = ~votes[label_column].isin(classes)
    if unknown.any():
        raise DataPrepError(
            f"label '{votes[label_column].iloc[unknown.argmax()]}' is not one of {classes}",
            source,
            int(lines[unknown.argmax()]),
            label_column,
        )
    counts = pd.crosstab(votes[file_column], votes[label_column]).reindex(
        columns=classes, fill_value=0
    )
    counts = counts.reindex(votes[file_column].drop_duplicates())
    raters = counts.sum(axis=1)
    shares = counts.div(raters, axis=0)
    shares["num_raters"] = raters
    shares.columns.name = None
    return shares.rename_axis(file_column).reset_index()


def _check_target_columns(target_columns):
    if isinstance(target_columns, str) or not target_columns:
        raise DataPrepError(
            f"target_columns must be a non-empty list of column names, got {target_columns!r}"
        )
    targets = [str(name) for name in target_columns]
    reserved = [name for name in targets if name in MANIFEST_COLUMNS]
    if reserved or len(set(targets)) != len(targets):
        raise DataPrepError(
            f"target columns must be distinct and not {list(MANIFEST_COLUMNS)}, got {targets}"
        )
    return targets


def _check_ratios(split_ratios):
    ratios = [float(r) for r in split_ratios]
    if (
        len(ratios) != len(SPLITS)
        or min(ratios) <= 0
        or not math.isclose(sum(ratios), 1.0)
    ):
        raise DataPrepError(
            f"split_ratios must be three positive shares (train, devel, test) summing "
            f"to 1, got {list(split_ratios)}"
        )
    return ratios


def _read_table(
    table,
    audio_column,
    targets,
    split_column,
    speaker_column,
    audio_root,
    value_range,
):
    """Reads and validates the table; returns manifest rows with ``_`` extras."""
    with open(table, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise DataPrepError("the table is empty", table, 1)
        if len(set(header)) != len(header):
            raise DataPrepError(
                f"repeated column names in the header {header}", table, 1
            )
        for column in [audio_column, *targets, split_column, speaker_column]:
            if column is not None and column not in header:
                raise DataPrepError(
                    f"column '{column}' is not in the header (columns: {header})",
                    table,
                    1,
                )
        position = {name: index for index, name in enumerate(header)}
        rows, seen = [], {}
        for line, fields in enumerate(reader, start=2):
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise DataPrepError(
                    f"expected {len(header)} fields, found {len(fields)}",
                    table,
                    line,
                )
            values = {
                name: fields[index].strip() for name, index in position.items()
            }
            rows.append(
                _table_row(
                    values,
                    line,
                    table,
                    audio_column,
                    targets,
                    split_column,
                    speaker_column,
                    audio_root,
                    value_range,
                    seen,
                )
            )
    if not rows:
        raise DataPrepError("the table has no rows", table)
    return rows


def _table_row(
    values,
    line,
    table,
    audio_column,
    targets,
    split_column,
    speaker_column,
    audio_root,
    value_range,
    seen,
):
    clip = values[audio_column]
    if not clip:
        raise DataPrepError("empty audio path", table, line, audio_column)
    wav = os.path.normpath(os.path.join(audio_root, clip))
    if wav in seen or clip in seen:
        raise DataPrepError(
            f"duplicate audio file '{clip}' (first seen on line {seen.get(wav, seen.get(clip))})",
            table,
            line,
            audio_column,
        )
    seen[wav] = seen[clip] = line
    if not os.path.isfile(wav):
        raise DataPrepError(
            f"audio file '{wav}' does not exist", table, line, audio_column
        )
    try:
        duration = audio_info(wav)[0]
    except AudioReadError as err:
        raise DataPrepError(
            f"{err.reason} ('{wav}')", table, line, audio_column
        ) from err
    row = {"ID": clip, "duration": f"{duration:.4f}", "wav": wav, "_line": line}

    cells = [values[name] for name in targets]
    missing = [cell in MISSING_VALUES for cell in cells]
    row["_labelled"] = not all(missing)
    for name, cell, absent in zip(targets, cells, missing, strict=True):
        if all(missing):
            row[name] = "nan"
        elif absent:
            raise DataPrepError(
                "missing value (a row is labelled in every target column or in none)",
                table,
                line,
                name,
            )
        else:
            row[name] = _parse_target(cell, table, line, name, value_range)

    row["_split"] = None
    if split_column:
        split = SPLIT_NAMES.get(values[split_column].lower())
        if split is None:
            raise DataPrepError(
                f"unknown split '{values[split_column]}' (use one of {sorted(SPLIT_NAMES)})",
                table,
                line,
                split_column,
            )
        row["_split"] = split
    row["_speaker"] = None
    if speaker_column:
        if not values[speaker_column]:
            raise DataPrepError("empty speaker", table, line, speaker_column)
        row["_speaker"] = values[speaker_column]
    return row


def _parse_target(cell, table, line, field, value_range):
    try:
        number = float(cell)
    except ValueError:
        raise DataPrepError(
            f"value '{cell}' is not a number", table, line, field
        ) from None
    if not math.isfinite(number):
        raise DataPrepError(f"value '{cell}' is not finite", table, line, field)
    if (
        value_range is not None
        and not value_range[0] <= number <= value_range[1]
    ):
        raise DataPrepError(
            f"value {cell} is outside [{value_range[0]}, {value_range[1]}]",
            table,
            line,
            field,
        )
    return cell


def _check_labels(splits, table, field):
    """Train and devel need every label; test needs all or none."""
    for split, members in splits.items():
        unlabelled = [r for r in members if not r["_labelled"]]
        if not unlabelled:
            continue
        if split != "test":
            raise DataPrepError(
                f"the row is in split '{split}' but has no targets (only test may be unlabelled)",
                table,
                unlabelled[0]["_line"],
                field,
            )
        if len(unlabelled) != len(members):
            raise DataPrepError(
                f"{len(unlabelled)} of {len(members)} test rows have no targets; the test "
                "split must be labelled in every row or in none",
                table,
                unlabelled[0]["_line"],
                field,
            )
