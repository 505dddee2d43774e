"""Data preparation for MSP-Podcast (releases v1.6 to v2.0).

Layouts read
------------
Every release is a corpus root holding audio, label files and, in older
releases, a partition file::

    <data_folder>/
      Audios/ or Audio/                     MSP-PODCAST_0001_0008.wav ... (16 kHz mono)
      Labels/ or labels/ or label/
        labels_consensus.csv                (older releases: labels_concensus.csv)
        labels_detailed.csv                 (one row per rater)
      Partitions.txt or Partition.txt       (older releases, when the consensus
                                             file has no Split_Set column)

``labels_consensus.csv`` has the header
``FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set``.
``EmoClass`` is one of ``A S H U F D C N`` (the eight classes), ``O`` (Other)
or ``X`` (no agreement); ``EmoAct/EmoVal/EmoDom`` are rater means on 1..7;
``SpkrID`` and ``Gender`` may be ``Unknown`` (or absent in old releases, read
as ``Unknown``). Without a ``Split_Set`` column the split of each file comes
from ``Partitions.txt``/``Partition.txt``, lines like
``Train; MSP-PODCAST_0023_0048.wav`` (looked for in the corpus root, then in
the label folder). Split names are ``Train``, ``Development`` (``Validation``
before v1.11), ``Test1``, ``Test2`` and ``Test3``, case-insensitive, and map to
the manifests ``train``, ``valid``, ``test1``, ``test2`` and ``test3``.

``labels_detailed.csv`` comes in three formats, recognised by its header:

* v1.7 to v1.12: ``FileName,EmoDetail``, where ``EmoDetail`` is
  ``"WORKER0000001; Neutral; Neutral,Confused; A:2.000000; V:4.000000; D:3.000000;"``
  (rater; primary emotion; comma-separated secondary emotions, possibly empty;
  the rater's arousal, valence and dominance). Rows are read with a CSV
  reader, since the secondary emotions hold commas.
* v1.6: ``FileName,Workers,EmoClass_Major,EmoClass_Second,EmoAct,EmoVal,EmoDom``.
* v2.0: ``FileName,WorkerID,EmoClass_Major,EmoClass_Second,EmoAct,EmoVal,EmoDom``.

Primary emotions are full names (``Angry``, ``Sad``, ``Happy``, ``Surprise``,
``Fear``, ``Disgust``, ``Contempt``, ``Neutral``; ``Anger``, ``Sadness``,
``Happiness``, ``Surprised`` and ``Disgusted`` are read as the same classes;
a one-letter code is accepted too) or Other, written ``Other`` or as free
text ``Other-Concerned``. Secondary emotions outside the eight classes
(``Confused``, ``Amused``, ...) are valid and carry no class mass.

Test3 is unlabelled: its clips (file names contain ``test3``) come from
``Split_Set``/partition rows marked ``Test3`` and from audio files whose name
contains ``test3`` that no label file lists. Their labels, if any, are ignored.

Manifests
---------
One SpeechBrain CSV per split with the columns
``ID, duration, wav, spk_id, gender, emo_class``, the eight vote-distribution
columns ``Angry, Sad, Happy, Surprise, Fear, Disgust, Contempt, Neutral``
(class order ``A S H U F D C N``), ``has_distribution`` and
``arousal, valence, dominance``. ``ID`` is the file name as the corpus writes
it (``MSP-PODCAST_0001_0008.wav``), as challenge submissions name clips.
``emo_class`` is the consensus code among the eight classes, empty for ``O``,
``X`` and Test3. The dimensions are the consensus means mapped from 1..7 to
[0, 1] by ``(x - 1) / 6``, ``nan`` for Test3.

Vote distributions (the targets of Mitra et al.): each rater's primary
emotion is one vote and the class counts are divided by the number of raters,
as FORMATS.md specifies; Other votes carry no class mass, so a distribution
sums to 1 minus the share of Other votes (the distribution losses renormalise
it). With ``include_secondary`` every *distinct* emotion a rater gave (primary
and secondaries; a secondary equal to the primary is not counted twice) is one
vote and the counts are divided by the number of votes cast.

A clip with no class vote (every rater chose Other and, with
``include_secondary``, named none of the eight classes among their secondary
emotions; or no rater row at all) has no distribution: its
columns are ``nan`` and ``has_distribution`` is 0 (select rows on
``has_distribution`` before a loss: ``nan * 0`` is still ``nan``). Such clips
are counted in the log and, with ``no_vote_policy="skip"``, dropped from train
(evaluation splits always keep every clip: their consensus class and
dimensions are still scored); with ``"dimensional_only"`` they stay in train
too.

Checks
------
Label files are UTF-8 (BOM optional) or UTF-16 with BOM
(:mod:`emoshare_sb.data.files`). File names are normalised
(``./MSP-PODCAST_0001_0008.wav`` is ``MSP-PODCAST_0001_0008.wav``) before
duplicates are looked for, and names leading outside the audio folder are
refused unless ``allow_outside_audio_folder``. Audio that cannot be read or
holds NaN/Inf stops preparation, or with ``bad_audio="skip"`` is left out and
listed (:class:`~emoshare_sb.data.manifest.AudioChecks`).

Authors
 * emoshare_sb contributors 2026
"""

import math
import os

import numpy as np
from speechbrain.utils.logger import get_logger

from emoshare_sb.data.errors import DataPrepError
from emoshare_sb.data.files import (
    clip_path,
    csv_records,
    path_problem,
    text_lines,
)
from emoshare_sb.data.manifest import (
    OPTIONS_FILE,
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

MSP_CLASS_CODES = ["A", "S", "H", "U", "F", "D", "C", "N"]
MSP_CLASS_NAMES = [
    "Angry",
    "Sad",
    "Happy",
    "Surprise",
    "Fear",
    "Disgust",
    "Contempt",
    "Neutral",
]
# Consensus codes that are valid but name none of the eight classes.
NO_CLASS_CODES = ("O", "X")
MSP_SPLITS = ("train", "valid", "test1", "test2", "test3")
UNLABELLED_SPLITS = ("test3",)
MANIFEST_COLUMNS = (
    ["ID", "duration", "wav", "spk_id", "gender", "emo_class"]
    + MSP_CLASS_NAMES
    + ["has_distribution", "arousal", "valence", "dominance"]
)
NO_VOTE_POLICIES = ("skip", "dimensional_only")
UNKNOWN = "Unknown"

AUDIO_FOLDER_CANDIDATES = ("Audios", "Audio", "audios", "audio")
LABEL_FOLDER_CANDIDATES = ("Labels", "labels", "label", "Label")
CONSENSUS_FILE_CANDIDATES = ("labels_consensus.csv", "labels_concensus.csv")
DETAILED_FILE = "labels_detailed.csv"
PARTITION_FILE_CANDIDATES = ("Partitions.txt", "Partition.txt")

SPLIT_ALIASES = {
    "train": "train",
    "development": "valid",
    "validation": "valid",
    "test1": "test1",
    "test2": "test2",
    "test3": "test3",
}
_CLASS_ALIASES = {
    "angry": "A",
    "anger": "A",
    "sad": "S",
    "sadness": "S",
    "happy": "H",
    "happiness": "H",
    "surprise": "U",
    "surprised": "U",
    "fear": "F",
    "disgust": "D",
    "disgusted": "D",
    "contempt": "C",
    "neutral": "N",
}
_CLASS_ALIASES.update({code.lower(): code for code in MSP_CLASS_CODES})
OTHER = "O"
_CONSENSUS_REQUIRED = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom")
_DIMENSION_COLUMNS = (
    ("EmoAct", "arousal"),
    ("EmoVal", "valence"),
    ("EmoDom", "dominance"),
)
_DETAILED_HEADERS = {
    ("FileName", "EmoDetail"): "v1.7",
    (
        "FileName",
        "Workers",
        "EmoClass_Major",
        "EmoClass_Second",
        "EmoAct",
        "EmoVal",
        "EmoDom",
    ): "v1.6",
    (
        "FileName",
        "WorkerID",
        "EmoClass_Major",
        "EmoClass_Second",
        "EmoAct",
        "EmoVal",
        "EmoDom",
    ): "v2.0",
}
# Bump when the manifests' content changes, so that old manifests are redone.
_MANIFEST_VERSION = 1


def prepare_msp_podcast(
    data_folder,
    save_folder,
    splits=None,
    include_secondary=False,
    no_vote_policy="skip",
    audio_folder=None,
    label_folder=None,
    bad_audio="error",
    allow_outside_audio_folder=False,
    skip_prep=False,
):
    """Validates an MSP-Podcast release and writes one manifest per split.

    See the module docstring for the layouts read, the manifest columns and how
    the vote distributions are computed.

    Arguments
    ---------
    data_folder : str
        The corpus root (holding the audio and label folders).
    save_folder : str
        Where ``<split>.csv`` manifests are written.
    splits : sequence of str, optional
        Manifests to write, among ``train``, ``valid``, ``test1``, ``test2``
        and ``test3``. By default every split the release has. Asking for a
        split the release lacks is an error.
    include_secondary : bool
        Also count the raters' secondary emotions in the vote distributions.
    no_vote_policy : str
        What to do with train clips that have no class vote: ``"skip"`` drops
        them, ``"dimensional_only"`` keeps them with ``has_distribution`` 0.
    audio_folder : str, optional
        The audio folder, absolute or relative to ``data_folder``. By default
        the first of ``Audios``, ``Audio`` that exists.
    label_folder : str, optional
        The label folder, absolute or relative to ``data_folder``. By default
        the first of ``Labels``, ``labels``, ``label`` that exists.
    bad_audio : str
        ``"error"`` stops at a clip whose audio cannot be read or holds NaN
        or Inf; ``"skip"`` leaves it out of its manifest (any split) and
        lists it in ``<save_folder>/skipped_audio.csv``.
    allow_outside_audio_folder : bool
        Accept file names that lead outside the audio folder (absolute
        paths, ``../``).
    skip_prep : bool
        If True, do nothing and return the class names.

    Returns
    -------
    list of str
        The eight class names, in the order of the distribution columns.

    Raises
    ------
    DataPrepError
        For any bad input, naming the file, line and field.

    Example
    -------
    >>> from emoshare_sb.synthetic.msp_podcast import make_msp_podcast_corpus
    >>> root = str(getfixture("tmpdir"))
    >>> _ = make_msp_podcast_corpus(
    ...     root + "/corpus", layout="v1.12", n_per_split=5
    ... )
    >>> prepare_msp_podcast(root + "/corpus", root + "/manifests")[:3]
    ['Angry', 'Sad', 'Happy']
    >>> sorted(
    ...     os.listdir(root + "/manifests")
    ... )  # doctest: +NORMALIZE_WHITESPACE
    ['prepare_options.json', 'test1.csv', 'test2.csv', 'test3.csv', 'train.csv',
     'valid.csv']
    """
    if skip_prep:
        return list(MSP_CLASS_NAMES)
    if no_vote_policy not in NO_VOTE_POLICIES:
        raise ValueError(
            f"no_vote_policy must be one of {NO_VOTE_POLICIES}, got '{no_vote_policy}'"
        )
    if splits is not None:
        unknown = [s for s in splits if s not in MSP_SPLITS]
        if unknown:
            raise ValueError(
                f"unknown splits {unknown}; choose among {MSP_SPLITS}"
            )
    checks = AudioChecks(bad_audio)
    data_folder = os.path.abspath(data_folder)
    audio_path = find_folder(
        data_folder, audio_folder, AUDIO_FOLDER_CANDIDATES, "audio"
    )
    check_folder_path(audio_path, "audio")
    label_path = find_folder(
        data_folder, label_folder, LABEL_FOLDER_CANDIDATES, "label"
    )
    consensus_file = _find_file(
        [label_path], CONSENSUS_FILE_CANDIDATES, required=True
    )
    detailed_file = _find_file([label_path], (DETAILED_FILE,), required=False)
    partition_file = _find_file(
        [data_folder, label_path], PARTITION_FILE_CANDIDATES, required=False
    )

    clips = _read_consensus(
        consensus_file, partition_file, audio_path, allow_outside_audio_folder
    )
    _add_unlisted_test3_audio(clips, audio_path)
    found_splits = [
        s for s in MSP_SPLITS if any(c["split"] == s for c in clips.values())
    ]
    if splits is None:
        splits = found_splits
    missing = [s for s in splits if s not in found_splits]
    if missing:
        raise DataPrepError(
            f"the release has no clip in split(s) {missing} (found {found_splits}); "
            "leave out those splits",
            consensus_file,
        )

    manifests = [f"{split}.csv" for split in splits]
    options = {
        "manifest_version": _MANIFEST_VERSION,
        "data_folder": data_folder,
        "audio_folder": audio_path,
        "audio_folder_stamp": folder_stamp(audio_path),
        "label_files": {
            os.path.basename(path): [
                path,
                os.path.getsize(path),
                os.path.getmtime(path),
            ]
            for path in (consensus_file, detailed_file, partition_file)
            if path is not None
        },
        "splits": list(splits),
        "include_secondary": bool(include_secondary),
        "no_vote_policy": no_vote_policy,
        "bad_audio": bad_audio,
        "allow_outside_audio_folder": bool(allow_outside_audio_folder),
    }
    if prepared_with(save_folder, options, manifests):
        logger.info(
            f"Manifests in {save_folder} are up to date; skipping preparation."
        )
        report_skipped(save_folder)
        return list(MSP_CLASS_NAMES)

    if detailed_file is None:
        logger.warning(
            f"No {DETAILED_FILE} in {label_path}: no clip has a vote distribution."
        )
        ratings = {}
    else:
        ratings = _read_detailed(detailed_file, clips)

    rows_per_split = {split: [] for split in splits}
    # Per split: clips whose raters all chose Other, clips with no rater row,
    # clips dropped, clips without a consensus class (O or X).
    counts = {
        split: dict.fromkeys(
            ("all_other", "no_rater_rows", "dropped", "no_class"), 0
        )
        for split in splits
    }
    for name, clip in clips.items():
        split = clip["split"]
        if split not in rows_per_split:
            continue
        clip_ratings = ratings.get(name, [])
        row = _manifest_row(name, clip, clip_ratings, include_secondary)
        if split in UNLABELLED_SPLITS:
            rows_per_split[split].append(row)
            continue
        if row["has_distribution"] == 0:
            counts[split]["all_other" if clip_ratings else "no_rater_rows"] += 1
            if split == "train" and no_vote_policy == "skip":
                counts[split]["dropped"] += 1
                continue
        counts[split]["no_class"] += row["emo_class"] == ""
        rows_per_split[split].append(row)

    for split, rows in rows_per_split.items():
        if not rows:
            raise DataPrepError(
                f"split '{split}' has no clip left (no_vote_policy='{no_vote_policy}' "
                "drops train clips without class votes; try 'dimensional_only')",
                consensus_file,
            )
        kept = []
        for row in rows:
            clip = clips[row["ID"]]
            source_file, source_line = clip["source"]
            duration = checks.duration(
                clip["wav"],
                split,
                row["ID"],
                source_file,
                source_line,
                "FileName",
            )
            if duration is not None:
                row["duration"] = f"{duration:.4f}"
                row["wav"] = clip["wav"]
                kept.append(row)
        if not kept:
            raise DataPrepError(
                f"every clip of split '{split}' was skipped for bad audio "
                "(listed in the log)",
                consensus_file,
            )
        rows[:] = kept

    # Every check has passed: only now are existing manifests replaced. The
    # options file goes first so that an interruption while writing leaves no
    # mix of old and new manifests that looks up to date.
    os.makedirs(save_folder, exist_ok=True)
    options_path = os.path.join(save_folder, OPTIONS_FILE)
    if os.path.exists(options_path):
        os.remove(options_path)
    for split, rows in rows_per_split.items():
        write_csv(
            os.path.join(save_folder, f"{split}.csv"), rows, MANIFEST_COLUMNS
        )
        summary = f"Wrote {len(rows)} rows to {save_folder}/{split}.csv"
        if split not in UNLABELLED_SPLITS:
            count = counts[split]
            summary += (
                f"; clips without class votes: {count['all_other']} where every "
                f"rater chose Other, {count['no_rater_rows']} with no rater row "
                f"({count['dropped']} dropped by no_vote_policy='{no_vote_policy}'); "
                f"{count['no_class']} kept clips with consensus O or X"
            )
        logger.info(summary)
    checks.write(save_folder, [s for s in splits if s != "train"])
    save_options(save_folder, options)
    return list(MSP_CLASS_NAMES)


def vote_distribution(ratings, include_secondary=False):
    """The share of raters' votes that went to each of the eight classes.

    As FORMATS.md specifies, primary votes are normalised by the number of
    raters and Other votes carry no class mass, so a clip with Other votes
    has a distribution summing to less than 1 (the losses renormalise it).
    With secondary votes, every distinct emotion a rater gave (primary and
    secondaries) is one vote and the counts are normalised by the number of
    votes cast.

    Arguments
    ---------
    ratings : list of tuple
        One ``(primary, secondaries)`` per rater: ``primary`` is a class code
        (``"A"`` ... ``"N"``) or ``"O"`` for Other; ``secondaries`` a
        collection of class codes (emotions outside the eight classes left out).
    include_secondary : bool
        Also count each rater's distinct secondary classes.

    Returns
    -------
    numpy.ndarray or None
        ``[8]`` vote shares (order ``A S H U F D C N``), or None when no rater
        voted for one of the eight classes.

    Example
    -------
    >>> votes = [("N", {"N"}), ("H", set()), ("O", {"S"}), ("N", {"H"})]
    >>> vote_distribution(votes).round(3).tolist()
    [0.0, 0.0, 0.25, 0.0, 0.0, 0.0, 0.0, 0.5]
    >>> vote_distribution(votes, include_secondary=True).round(3).tolist()
    [0.0, 0.167, 0.333, 0.0, 0.0, 0.0, 0.0, 0.333]
    >>> vote_distribution([("O", set())]) is None
    True
    """
    counts = np.zeros(len(MSP_CLASS_CODES))
    votes_cast = 0
    for primary, secondaries in ratings:
        emotions = {primary}
        if include_secondary:
            emotions |= set(secondaries)
        votes_cast += len(emotions)
        for code in emotions - {OTHER}:
            counts[MSP_CLASS_CODES.index(code)] += 1
    if counts.sum() == 0:
        return None
    return counts / votes_cast


# The ninth category of the graders' votes: its share is what the eight class
# columns leave (1 - their sum), so that a pdf may include it (Mitra et al.).
OTHER_CLASS = "Other"
PDF_CATEGORIES = MSP_CLASS_NAMES + [OTHER_CLASS]


def check_class_sets(pdf_classes, scored_classes):
    """Checks a recipe's class sets; returns the problem in one line, or None.

    Arguments
    ---------
    pdf_classes : list of str
        The categories of the predicted vote pdf: distinct names among the
        eight classes and ``Other``.
    scored_classes : list of str
        The classes the categorical metrics score: distinct names among
        ``pdf_classes``, not ``Other`` (no consensus class is Other's).

    Returns
    -------
    str or None
        What is wrong, or None.

    Example
    -------
    >>> check_class_sets(PDF_CATEGORIES, ["Neutral", "Happy"]) is None
    True
    >>> check_class_sets(["Happy", "Calm"], ["Happy"])
    "pdf_classes: 'Calm' is not one of Angry, Sad, Happy, Surprise, Fear, Disgust, Contempt, Neutral, Other"
    """
    for key, names, allowed in (
        ("pdf_classes", pdf_classes, PDF_CATEGORIES),
        ("scored_classes", scored_classes, pdf_classes),
    ):
        if not names or len(set(names)) != len(names):
            return f"{key} must be a non-empty list of distinct names"
        for name in names:
            if name not in allowed:
                return f"{key}: '{name}' is not one of {', '.join(allowed)}"
    if OTHER_CLASS in scored_classes:
        return f"scored_classes: '{OTHER_CLASS}' is no consensus class"
    return None


def class_pdf(shares, pdf_classes):
    """The vote pdf over ``pdf_classes`` from a manifest's eight vote shares.

    Votes for categories outside ``pdf_classes`` are dropped and the rest
    renormalised; ``Other`` gets the share the eight columns leave.

    Arguments
    ---------
    shares : sequence of float
        The eight class columns of a manifest row (order ``A S H U F D C N``)
        of a clip with a distribution (``has_distribution`` 1).
    pdf_classes : list of str
        The pdf's categories (see :func:`check_class_sets`).

    Returns
    -------
    numpy.ndarray or None
        ``[len(pdf_classes)]`` summing to 1, or None when no vote falls in
        ``pdf_classes``.

    Example
    -------
    >>> shares = [0.0, 0.0, 0.25, 0.0, 0.0, 0.0, 0.0, 0.5]  # 1/4 Other
    >>> class_pdf(shares, MSP_CLASS_NAMES).round(3).tolist()
    [0.0, 0.0, 0.333, 0.0, 0.0, 0.0, 0.0, 0.667]
    >>> class_pdf(shares, ["Neutral", "Happy", "Other"]).tolist()
    [0.5, 0.25, 0.25]
    >>> class_pdf(shares, ["Angry", "Sad"]) is None
    True
    """
    shares = np.asarray(shares, dtype=float)
    other = max(0.0, 1.0 - float(shares.sum()))
    by_name = dict(zip(MSP_CLASS_NAMES, shares, strict=True))
    by_name[OTHER_CLASS] = other
    pdf = np.array([by_name[name] for name in pdf_classes])
    total = pdf.sum()
    if total <= 0:
        return None
    return pdf / total


def _manifest_row(name, clip, ratings, include_secondary):
    row = {
        "ID": name,
        "spk_id": clip["spk_id"],
        "gender": clip["gender"],
        "emo_class": "",
        "has_distribution": 0,
    }
    row.update(dict.fromkeys(MSP_CLASS_NAMES, "nan"))
    row.update({dimension: "nan" for _, dimension in _DIMENSION_COLUMNS})
    if clip["split"] in UNLABELLED_SPLITS:
        return row
    if clip["emo_class"] in MSP_CLASS_CODES:
        row["emo_class"] = clip["emo_class"]
    for dimension, value in clip["dimensions"].items():
        row[dimension] = f"{(value - 1.0) / 6.0:.6g}"
    distribution = vote_distribution(ratings, include_secondary)
    if distribution is not None:
        row["has_distribution"] = 1
        row.update(
            {
                c: f"{p:.6g}"
                for c, p in zip(MSP_CLASS_NAMES, distribution, strict=True)
            }
        )
    return row


def _find_file(folders, candidates, required):
    for folder in folders:
        for candidate in candidates:
            path = os.path.join(folder, candidate)
            problem = path_problem(path)
            if problem is None:
                return path
            if os.path.lexists(path):
                raise DataPrepError(f"the label file {problem}", path)
    if required:
        raise DataPrepError(
            f"none of {', '.join(candidates)} found in {', '.join(folders)} "
            "(only the CSV label files are read, not the JSON ones)"
        )
    return None


def _split_name(value, path, line, field):
    split = SPLIT_ALIASES.get(value.strip().lower())
    if split is None:
        raise DataPrepError(
            f"unknown split '{value}' (expected Train, Development, Validation, "
            "Test1, Test2 or Test3)",
            path,
            line,
            field,
        )
    return split


def _read_partitions(path):
    """Reads ``Split; FileName`` lines; returns {file name: (split, line)}."""
    partitions = {}
    for line, text in text_lines(path):
        if not text.strip():
            continue
        parts = [part.strip() for part in text.split(";")]
        if len(parts) != 2 or not all(parts):
            raise DataPrepError(
                f"expected 'Split; FileName', found '{text.strip()}'",
                path,
                line,
            )
        split = _split_name(parts[0], path, line, "split")
        name = os.path.normpath(parts[1])
        if name in partitions:
            raise DataPrepError(
                f"file '{parts[1]}' is listed twice (first on line "
                f"{partitions[name][1]})",
                path,
                line,
                "FileName",
            )
        partitions[name] = (split, line)
    return partitions


def _read_consensus(path, partition_file, audio_path, allow_outside):
    """Reads the consensus labels; returns {file name: clip dict}, in file order."""
    records = csv_records(path)
    header = [name.strip() for name in next(records, (1, []))[1]]
    if not header:
        raise DataPrepError("the consensus label file is empty", path, 1)
    missing = [column for column in _CONSENSUS_REQUIRED if column not in header]
    if missing:
        raise DataPrepError(
            f"missing column(s) {missing} in the header", path, 1
        )
    has_split_column = "Split_Set" in header
    if has_split_column:
        partitions = None
    elif partition_file is None:
        raise DataPrepError(
            "no Split_Set column and no Partitions.txt/Partition.txt found: "
            "the split of each clip is unknown",
            path,
            1,
        )
    else:
        partitions = _read_partitions(partition_file)
    clips = {}
    for line, fields in records:
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise DataPrepError(
                f"expected {len(header)} fields, found {len(fields)}",
                path,
                line,
            )
        values = dict(zip(header, (f.strip() for f in fields), strict=True))
        name, wav = _clip_name(
            values["FileName"], audio_path, allow_outside, path, line
        )
        if name in clips:
            first = clips[name]["source"][1]
            raise DataPrepError(
                f"duplicate file name '{values['FileName']}' (first on line "
                f"{first}{_spelled(clips[name], values['FileName'])})",
                path,
                line,
                "FileName",
            )
        if has_split_column:
            split = _split_name(values["Split_Set"], path, line, "Split_Set")
        elif name in partitions:
            split = partitions[name][0]
        else:
            raise DataPrepError(
                f"file '{name}' is not listed in {partition_file}",
                path,
                line,
                "FileName",
            )
        clips[name] = _consensus_clip(values, split, path, line)
        clips[name].update(wav=wav, written=values["FileName"])
    if partitions is not None:
        for name, (split, line) in partitions.items():
            if name in clips:
                continue
            if split not in UNLABELLED_SPLITS:
                raise DataPrepError(
                    f"file '{name}' of split '{split}' has no row in {path}",
                    partition_file,
                    line,
                    "FileName",
                )
            clip_id, wav = _clip_name(
                name, audio_path, allow_outside, partition_file, line
            )
            clips[clip_id] = _unlabelled_clip(split, (partition_file, line))
            clips[clip_id]["wav"] = wav
    _check_test3_names(clips)
    return clips


def _clip_name(name, audio_path, allow_outside, path, line):
    """The normalised name and audio path of a clip, checked for manifests."""
    try:
        clip_id, wav = clip_path(audio_path, name, allow_outside)
    except ValueError as error:
        raise DataPrepError(str(error), path, line, "FileName") from None
    check_manifest_value(wav, path, line, "FileName", what="the audio path")
    return clip_id, wav


def _spelled(clip, name):
    """`` as '<name>'`` when a duplicate was first written another way."""
    written = clip.get("written", name)
    return f" as '{written}'" if written != name else ""


def _consensus_clip(values, split, path, line):
    clip = _unlabelled_clip(split, (path, line))
    clip["spk_id"] = values.get("SpkrID") or UNKNOWN
    check_manifest_value(
        clip["spk_id"], path, line, "SpkrID", what="the speaker id"
    )
    gender = (values.get("Gender") or UNKNOWN).capitalize()
    if gender not in ("Male", "Female", UNKNOWN):
        raise DataPrepError(
            f"unknown gender '{values['Gender']}' (expected Male, Female or Unknown)",
            path,
            line,
            "Gender",
        )
    clip["gender"] = gender
    if split in UNLABELLED_SPLITS:
        return clip  # Test3 labels, if any, are placeholders.
    code = values["EmoClass"].upper()
    if code not in MSP_CLASS_CODES and code not in NO_CLASS_CODES:
        raise DataPrepError(
            f"unknown emotion class '{values['EmoClass']}' (expected one of "
            f"{' '.join(MSP_CLASS_CODES + list(NO_CLASS_CODES))})",
            path,
            line,
            "EmoClass",
        )
    clip["emo_class"] = code
    for column, dimension in _DIMENSION_COLUMNS:
        clip["dimensions"][dimension] = _parse_rating(
            values[column], path, line, column
        )
    return clip


def _unlabelled_clip(split, source):
    return {
        "split": split,
        "spk_id": UNKNOWN,
        "gender": UNKNOWN,
        "emo_class": "",
        "dimensions": {},
        "source": source,
    }


def _check_test3_names(clips):
    for name, clip in clips.items():
        if "test3" in name.lower() and clip["split"] not in UNLABELLED_SPLITS:
            path, line = clip["source"]
            raise DataPrepError(
                f"file '{name}' is named as a Test3 clip but is in split "
                f"'{clip['split']}'",
                path,
                line,
                "FileName",
            )


def _add_unlisted_test3_audio(clips, audio_path):
    """Adds Test3 audio files that no label file lists (they have no labels)."""
    for name in sorted(os.listdir(audio_path)):
        if (
            "test3" in name.lower()
            and name.lower().endswith(".wav")
            and name not in clips
        ):
            wav = os.path.join(audio_path, name)
            check_manifest_value(wav, what="the audio path")
            clips[name] = _unlabelled_clip("test3", (wav, None))
            clips[name]["wav"] = wav


def _parse_rating(value, path, line, field):
    try:
        number = float(value)
    except ValueError:
        raise DataPrepError(
            f"value '{value}' is not a number (ratings are on a 1..7 scale)",
            path,
            line,
            field,
        ) from None
    if not math.isfinite(number) or not 1.0 <= number <= 7.0:
        raise DataPrepError(
            f"value {value} is outside the 1..7 rating scale", path, line, field
        )
    return number


def _primary_code(value, path, line, field):
    text = value.strip()
    if text.lower() in _CLASS_ALIASES:
        return _CLASS_ALIASES[text.lower()]
    if text.lower().startswith("other") or text.upper() == OTHER:
        return OTHER
    raise DataPrepError(
        f"unknown primary emotion '{value}' (expected one of "
        f"{', '.join(MSP_CLASS_NAMES)}, or Other)",
        path,
        line,
        field,
    )


def _secondary_codes(value):
    """Class codes among comma-separated secondary emotions; others carry no mass."""
    items = (item.strip().lower() for item in value.split(","))
    return {_CLASS_ALIASES[item] for item in items if item in _CLASS_ALIASES}


def _parse_emo_detail(detail, path, line):
    """Splits a v1.7-v1.12 ``EmoDetail`` string into its six fields."""
    parts = [part.strip() for part in detail.split(";")]
    if parts and parts[-1] == "":
        parts.pop()  # the string ends with ';'
    if len(parts) != 6:
        raise DataPrepError(
            f"malformed EmoDetail '{detail}': expected 'rater; primary; "
            "secondary; A:x; V:x; D:x;'",
            path,
            line,
            "EmoDetail",
        )
    worker, primary, secondary = parts[:3]
    for prefix, part in zip("AVD", parts[3:], strict=True):
        if not part.startswith(prefix + ":"):
            raise DataPrepError(
                f"malformed EmoDetail '{detail}': expected '{prefix}:<rating>', "
                f"found '{part}'",
                path,
                line,
                "EmoDetail",
            )
        try:
            _parse_rating(part[2:], path, line, "EmoDetail")
        except DataPrepError as err:
            raise DataPrepError(
                f"in EmoDetail '{detail}', the {prefix} rating: {err.reason}",
                path,
                line,
                "EmoDetail",
            ) from None
    return worker, primary, secondary


def _read_detailed(path, clips):
    """Reads per-rater labels; returns {file name: [(primary, secondaries), ...]}."""
    ratings = {}
    raters_seen = set()
    unknown_files = set()
    duplicate_rows = 0
    records = csv_records(path)
    header = tuple(name.strip() for name in next(records, (1, []))[1])
    layout = _DETAILED_HEADERS.get(header)
    if layout is None:
        raise DataPrepError(
            f"unrecognised header {list(header)}; expected one of "
            f"{[list(h) for h in _DETAILED_HEADERS]}",
            path,
            1,
        )
    for line, fields in records:
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise DataPrepError(
                f"expected {len(header)} fields, found {len(fields)}",
                path,
                line,
            )
        name = os.path.normpath(fields[0].strip())
        if layout == "v1.7":
            worker, primary, secondary = _parse_emo_detail(
                fields[1], path, line
            )
            primary_field = "EmoDetail"
        else:
            worker, primary, secondary = (f.strip() for f in fields[1:4])
            primary_field = "EmoClass_Major"
            for column, value in zip(header[4:], fields[4:], strict=True):
                _parse_rating(value.strip(), path, line, column)
        if not worker:
            raise DataPrepError("empty rater id", path, line, header[1])
        primary = _primary_code(primary, path, line, primary_field)
        if name not in clips:
            unknown_files.add(name)
            continue
        if (name, worker) in raters_seen:
            duplicate_rows += 1  # the same rater counts once
            continue
        raters_seen.add((name, worker))
        ratings.setdefault(name, []).append(
            (primary, _secondary_codes(secondary))
        )
    if unknown_files:
        logger.warning(
            f"{path}: ignored the rows of {len(unknown_files)} file(s) with no "
            f"consensus row, e.g. '{sorted(unknown_files)[0]}'"
        )
    if duplicate_rows:
        logger.warning(
            f"{path}: ignored {duplicate_rows} repeated row(s) of a rater on a clip"
        )
    return ratings
