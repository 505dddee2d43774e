"""Data preparation for the ComParE 2023 Emotion Share corpus (Hume-Prosody).

The corpus ships as ``wav/*.wav`` and ``lab/{train,devel,test}.csv``; the label
files have the header ``filename,<Emotion 1>,...,<Emotion 9>`` and test labels
are the literal string ``?``. This step validates every row and writes one
SpeechBrain manifest per split with the columns ``ID, duration, wav`` followed
by the emotion columns (``nan`` where the split has no labels).

Emotion names are taken from the header, so the same code serves any corpus in
this layout, whatever its emotions.

Label files are UTF-8 (BOM optional) or UTF-16 with BOM
(:mod:`emoshare_sb.data.files`). File names are paths relative to the audio
folder, normalised (``./00001.wav`` is ``00001.wav``, and is a duplicate of
it); names leading outside the audio folder are refused unless
``allow_outside_audio_folder``. Audio that cannot be read or holds NaN/Inf
stops preparation, or is left out and listed with ``bad_audio="skip"``
(:class:`~emoshare_sb.data.manifest.AudioChecks`).

Authors
 * emoshare_sb contributors 2026
"""

import csv
import math
import os

from speechbrain.utils.logger import get_logger

from emoshare_sb.data.errors import DataPrepError
from emoshare_sb.data.files import clip_path, csv_records, path_problem
from emoshare_sb.data.manifest import (
    AudioChecks,
    check_folder_path,
    check_manifest_value,
    find_folder,
    folder_stamp,
    prepared_with,
    report_skipped,
    save_options,
)
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
    bad_audio="error",
    allow_outside_audio_folder=False,
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
    bad_audio : str
        ``"error"`` stops at a clip whose audio cannot be read or holds NaN
        or Inf; ``"skip"`` leaves it out of its manifest and lists it in
        ``<save_folder>/skipped_audio.csv``.
    allow_outside_audio_folder : bool
        Accept file names that lead outside the audio folder (absolute
        paths, ``../``).
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
    checks = AudioChecks(bad_audio)
    data_folder = os.path.abspath(data_folder)
    audio_path = find_folder(
        data_folder, audio_folder, AUDIO_FOLDER_CANDIDATES, "audio"
    )
    check_folder_path(audio_path, "audio")
    label_path = os.path.join(data_folder, label_folder)
    label_files = {split: _label_file(label_path, split) for split in splits}

    manifests = [f"{split}.csv" for split in splits]
    options = {
        "data_folder": data_folder,
        "audio_folder": audio_path,
        "audio_folder_stamp": folder_stamp(audio_path),
        "label_files": {
            split: [path, os.path.getsize(path), os.path.getmtime(path)]
            for split, path in label_files.items()
        },
        "emotions": None if emotions is None else list(emotions),
        "unlabelled_splits": list(unlabelled_splits),
        "bad_audio": bad_audio,
        "allow_outside_audio_folder": bool(allow_outside_audio_folder),
    }
    if prepared_with(save_folder, options, manifests):
        logger.info(
            f"Manifests in {save_folder} are up to date; skipping preparation."
        )
        report_skipped(save_folder)
        with open(os.path.join(save_folder, manifests[0])) as handle:
            header = next(csv.reader(handle))
        return header[3:]

    seen = {}  # audio path -> (label file, line, name) for duplicates
    rows_per_split = {}
    for split in splits:
        emotions, rows = _read_label_file(
            label_files[split],
            emotions,
            allow_unlabelled=split in unlabelled_splits,
            seen=seen,
            audio_path=audio_path,
            allow_outside=allow_outside_audio_folder,
        )
        kept = []
        for row in rows:
            line = row.pop("_line")
            duration = checks.duration(
                row["wav"],
                split,
                row["ID"],
                label_files[split],
                line,
                "filename",
            )
            if duration is not None:
                row["duration"] = f"{duration:.4f}"
                kept.append(row)
        if not kept:
            raise DataPrepError(
                f"every clip of split '{split}' was skipped for bad audio "
                f"(listed in the log)",
                label_files[split],
            )
        rows_per_split[split] = kept

    os.makedirs(save_folder, exist_ok=True)
    fieldnames = ["ID", "duration", "wav"] + emotions
    for split, rows in rows_per_split.items():
        write_csv(os.path.join(save_folder, f"{split}.csv"), rows, fieldnames)
        logger.info(f"Wrote {len(rows)} rows to {save_folder}/{split}.csv")
    checks.write(save_folder, [s for s in splits if s != "train"])
    save_options(save_folder, options)
    return emotions


def _label_file(label_path, split):
    unmasked = os.path.join(label_path, f"{split}.unmasked.csv")
    if split == "test" and os.path.isfile(unmasked):
        return unmasked
    path = os.path.join(label_path, f"{split}.csv")
    problem = path_problem(path)
    if problem is not None:
        raise DataPrepError(
            f"the label file for split '{split}' {problem}", path
        )
    return path


def _read_label_file(
    path, emotions, allow_unlabelled, seen, audio_path, allow_outside
):
    """Reads and validates one label CSV; returns (emotions, manifest rows)."""
    records = csv_records(path)
    _, header = next(records, (1, None))
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
    for line, fields in records:
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise DataPrepError(
                f"expected {len(header)} fields, found {len(fields)}",
                path,
                line,
            )
        filename = fields[0].strip()
        try:
            clip_id, wav = clip_path(audio_path, filename, allow_outside)
        except ValueError as error:
            raise DataPrepError(str(error), path, line, "filename") from None
        if wav in seen:
            first_file, first_line, first_name = seen[wav]
            spelled = f" as '{first_name}'" if first_name != filename else ""
            raise DataPrepError(
                f"duplicate file name '{filename}' (first seen in "
                f"{first_file}, line {first_line}{spelled})",
                path,
                line,
                "filename",
            )
        seen[wav] = (path, line, filename)
        check_manifest_value(wav, path, line, "filename", what="the audio path")
        row = {"ID": clip_id, "wav": wav, "_line": line}
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
