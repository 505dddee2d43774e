"""Data preparation for the ComParE 2023 Emotion Share corpus (Hume-Prosody).

The corpus ships as ``wav/*.wav`` and ``lab/{train,devel,test}.csv``; the label
files have the header ``filename,<Emotion 1>,...,<Emotion 9>`` and test labels
are the literal string ``?``. This step validates every row and writes one
SpeechBrain manifest per split with the columns ``ID, duration, wav`` followed
by the emotion columns (``nan`` where the split has no labels).

Emotion names are taken from the header, so the same code serves any corpus in
this layout, whatever its emotions.

Authors
 * emoshare_sb contributors 2026
"""

import csv
import math
import os

from speechbrain.utils.logger import get_logger

from emoshare_sb.data.audio import audio_info
from emoshare_sb.data.errors import DataPrepError
from emoshare_sb.data.manifest import find_folder, prepared_with, save_options
from emoshare_sb.utils.io import write_csv

logger = get_logger(__name__)

COMPARE23_EMOTIONS = [
    "Anger",
    "Boredom",
    "Calmness",
    "Concentration",
    "Determination",
    "Excitement",
    "Interest",
    "Sadness",
    "Tiredness",
]
AUDIO_FOLDER_CANDIDATES = ("wav", "raw/wav", "data/wav")
MISSING_LABEL = "?"


def prepare_compare23(
    data_folder,
    save_folder,
    splits=("train", "devel", "test"),
    audio_folder=None,
    label_folder="lab",
    emotions=None,
    unlabelled_splits=("test",),
    skip_prep=False,
):
    """Validates the ComParE 2023 Emotion Share corpus and writes manifests.

    Arguments
    ---------
    data_folder : str
        The corpus root (holding ``wav/`` and ``lab/``).
    save_folder : str
        Where ``<split>.csv`` manifests are written.
    splits : sequence of str
        Splits to prepare; each reads ``<label_folder>/<split>.csv``. For the
        test split, ``test.unmasked.csv`` is used instead when it exists.
    audio_folder : str, optional
        The audio folder, absolute or relative to ``data_folder``. By default
        the first of ``wav``, ``raw/wav``, ``data/wav`` that exists.
    label_folder : str
        The label folder, absolute or relative to ``data_folder``.
    emotions : list of str, optional
        The expected emotion columns, in order. By default the header of the
        first split defines them and every other split must agree.
    unlabelled_splits : sequence of str
        Splits whose labels may be ``?`` (all rows or none).
    skip_prep : bool
        If True, do nothing and return ``emotions``.

    Returns
    -------
    list of str
        The emotion names, in column order.

    Raises
    ------
    DataPrepError
        For any bad input, naming the file, line and field.

    Example
    -------
    >>> from emoshare_sb.synthetic import make_compare23_corpus
    >>> root = str(getfixture("tmpdir"))
    >>> _ = make_compare23_corpus(
    ...     root + "/corpus", n_train=4, n_devel=2, n_test=2
    ... )
    >>> prepare_compare23(root + "/corpus", root + "/manifests")[:3]
    ['Anger', 'Boredom', 'Calmness']
    >>> sorted(os.listdir(root + "/manifests"))
    ['devel.csv', 'prepare_options.json', 'test.csv', 'train.csv']
    """
    if skip_prep:
        return list(emotions) if emotions is not None else None
    data_folder = os.path.abspath(data_folder)
    audio_path = find_folder(
        data_folder, audio_folder, AUDIO_FOLDER_CANDIDATES, "audio"
    )
    label_path = os.path.join(data_folder, label_folder)
    label_files = {split: _label_file(label_path, split) for split in splits}

    manifests = [f"{split}.csv" for split in splits]
    options = {
        "data_folder": data_folder,
        "audio_folder": audio_path,
        "label_files": {
            split: [path, os.path.getsize(path), os.path.getmtime(path)]
            for split, path in label_files.items()
        },
        "emotions": None if emotions is None else list(emotions),
        "unlabelled_splits": list(unlabelled_splits),
    }
    if prepared_with(save_folder, options, manifests):
        logger.info(
            f"Manifests in {save_folder} are up to date; skipping preparation."
        )
        with open(os.path.join(save_folder, manifests[0])) as handle:
            header = next(csv.reader(handle))
        return header[3:]

    seen = {}  # filename -> (label file, line) for duplicate detection
    rows_per_split = {}
    for split in splits:
        emotions, rows = _read_label_file(
            label_files[split],
            emotions,
            allow_unlabelled=split in unlabelled_splits,
            seen=seen,
        )
        for row in rows:
            wav = os.path.join(audio_path, row["ID"])
            if not os.path.isfile(wav):
                raise DataPrepError(
                    f"audio file '{wav}' does not exist (check --data_folder "
                    "and the audio_folder option)",
                    label_files[split],
                    row.pop("_line"),
                    "filename",
                )
            row["duration"] = f"{audio_info(wav)[0]:.4f}"
            row["wav"] = wav
            row.pop("_line")
        rows_per_split[split] = rows

    os.makedirs(save_folder, exist_ok=True)
    fieldnames = ["ID", "duration", "wav"] + emotions
    for split, rows in rows_per_split.items():
        write_csv(os.path.join(save_folder, f"{split}.csv"), rows, fieldnames)
        logger.info(f"Wrote {len(rows)} rows to {save_folder}/{split}.csv")
    save_options(save_folder, options)
    return emotions


def _label_file(label_path, split):
    unmasked = os.path.join(label_path, f"{split}.unmasked.csv")
    if split == "test" and os.path.isfile(unmasked):
        return unmasked
    path = os.path.join(label_path, f"{split}.csv")
    if not os.path.isfile(path):
        raise DataPrepError(
            f"label file for split '{split}' does not exist", path
        )
    return path


def _read_label_file(path, emotions, allow_unlabelled, seen):
    """Reads and validates one label CSV; returns (emotions, manifest rows)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise DataPrepError("the label file is empty", path, 1)
        header = [name.strip() for name in header]
        if header[0] != "filename":
            raise DataPrepError(
                f"the first column must be 'filename', found '{header[0]}'",
                path,
                1,
            )
        found = header[1:]
        if emotions is not None and found != list(emotions):
            missing = [e for e in emotions if e not in found]
            extra = [e for e in found if e not in emotions]
            detail = []
            if missing:
                detail.append(f"missing {missing}")
            if extra:
                detail.append(f"unexpected {extra}")
            if not detail:
                detail.append(f"order {found} differs from {list(emotions)}")
            raise DataPrepError(
                "emotion columns do not match the expected ones: "
                + "; ".join(detail),
                path,
                1,
            )
        if len(set(found)) != len(found) or not found:
            raise DataPrepError(
                f"emotion columns are empty or repeated: {found}", path, 1
            )
        emotions = found

        rows = []
        labelled_rows = 0
        for line, fields in enumerate(reader, start=2):
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise DataPrepError(
                    f"expected {len(header)} fields, found {len(fields)}",
                    path,
                    line,
                )
            filename = fields[0].strip()
            if not filename:
                raise DataPrepError("empty file name", path, line, "filename")
            if filename in seen:
                first_file, first_line = seen[filename]
                raise DataPrepError(
                    f"duplicate file name '{filename}' (first seen in "
                    f"{first_file}, line {first_line})",
                    path,
                    line,
                    "filename",
                )
            seen[filename] = (path, line)
            row = {"ID": filename, "_line": line}
            values = [v.strip() for v in fields[1:]]
            if all(v == MISSING_LABEL for v in values) and allow_unlabelled:
                row.update(dict.fromkeys(emotions, "nan"))
            else:
                for name, value in zip(emotions, values, strict=True):
                    row[name] = _parse_share(value, path, line, name)
                labelled_rows += 1
            rows.append(row)
    if not rows:
        raise DataPrepError("the split has no rows", path)
    if 0 < labelled_rows < len(rows):
        raise DataPrepError(
            f"{len(rows) - labelled_rows} of {len(rows)} rows have '?' labels; "
            "a split must be labelled in every row or in none",
            path,
        )
    return emotions, rows


def _parse_share(value, path, line, field):
    try:
        number = float(value)
    except ValueError:
        raise DataPrepError(
            f"value '{value}' is not a number (shares are in [0, 1])",
            path,
            line,
            field,
        ) from None
    if not math.isfinite(number):
        raise DataPrepError(f"value '{value}' is not finite", path, line, field)
    if not 0.0 <= number <= 1.0:
        raise DataPrepError(
            f"value {value} is outside [0, 1] (shares are proportions)",
            path,
            line,
            field,
        )
    return value
