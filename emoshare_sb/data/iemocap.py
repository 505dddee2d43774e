"""Data preparation for IEMOCAP: 4 classes, one leave-one-session-out fold.

Layout read
-----------
The public release, as its owners ship it::

    <data_folder>/                      (IEMOCAP_full_release, or a folder holding it)
      Session1/ ... Session5/
        sentences/wav/<dialog>/<utterance>.wav      16 kHz mono
        dialog/EmoEvaluation/<dialog>.txt
        dialog/transcriptions/<dialog>.txt          read with ``transcripts=True``

Each EmoEvaluation file holds one tab-separated *summary line* per
utterance, followed by the individual evaluators' lines::

    [6.2901 - 8.2357]	Ses01F_impro01_F000	neu	[2.5000, 2.5000, 2.5000]
    C-E2:	Neutral;	()
    A-E3:	val 3; act 2; dom  2;	()

Only the summary lines (those starting with ``[``) are read: start and end
times, the utterance id, the consensus emotion code (``neu hap exc ang sad
fru sur fea dis oth xxx``; ``xxx``: no agreement) and the valence,
activation and dominance means. Evaluator lines (``C-E2:``, ``A-E3:``),
the ``%`` header and blank lines are skipped, and so are the sub-folders
(``Categorical/``, ``Attribute/``, ``Self-evaluation/``) and hidden files
(``._*`` copies left by macOS archives).

The speaker of an utterance is its session plus the letter that starts the
last part of its id: ``Ses01F_impro01_M012`` is ``Ses01M``, the male actor
of session 1, although the dialog name starts with ``Ses01F`` (that letter
tells who wore the motion-capture markers, not who speaks).

The 4-class set-up
------------------
Utterances whose code is ``neu``, ``hap``, ``ang`` or ``sad``, with ``exc``
merged into ``hap`` (the literature's set-up; Morais et al. Sec. 2.1): 5,531
utterances in the real corpus (neu 1,708, hap 1,636 = 595 hap + 1,041 exc,
ang 1,103, sad 1,084). ``classes`` and ``merge`` choose other set-ups.

One fold
--------
``test``: every utterance of the held-out session (its two speakers).
``train``/``valid``: the utterances of the other four sessions (eight
speakers), split at random at the utterance level, as SUPERB's ``emotion``
task does (s3prl ``downstream/emotion/expert.py``): ``torch.manual_seed(0)``
then ``random_split`` into ``int(0.8 * n)`` training and ``n - int(0.8 * n)``
validation utterances. The same permutation is drawn here
(``torch.randperm(n)`` from a generator seeded with ``seed``, which is what
``random_split`` draws), over the utterances sorted by id. SUPERB draws it
over the order of its own meta-data files (a file-system listing), so the
*membership* of SUPERB's folds cannot be rebuilt from the corpus; the
protocol (which sessions, utterance-level random 80/20, seed 0) is the same,
and the split here depends on nothing but the corpus and the options. Train
and valid share speakers (validation is speaker-dependent); the test
speakers are never seen in training.

Manifests
---------
``train.csv``, ``valid.csv``, ``test.csv`` with the columns
``ID, duration, wav, spk_id, emo`` (``emo`` after merging, e.g. ``hap`` for
an ``exc`` utterance), rows sorted by ID; with ``transcripts=True`` a last column ``text``, the
utterance's line of its dialog's transcriptions file (for a text model;
Morais et al. experiments 10-11; see
:mod:`emoshare_sb.data.iemocap_transcripts`). They are written atomically, the
options they were made with last, and a later call with the same options and
label files (and transcriptions files, when read) does nothing.

Checks
------
EmoEvaluation files are UTF-8 (they are ASCII in the release) or UTF-16 with
BOM; any other encoding stops with the file and line. Audio that cannot be
read or holds NaN/Inf stops preparation, or with ``bad_audio="skip"`` is
left out of its split (after the train/valid split is drawn, so that the
other utterances keep their split) and listed in ``skipped_audio.csv``.

Authors
 * emoshare_sb contributors 2026
"""

import os
import re
from types import MappingProxyType

import torch
from speechbrain.utils.logger import get_logger

from emoshare_sb.data.errors import DataPrepError
from emoshare_sb.data.files import text_lines
from emoshare_sb.data.iemocap_ids import NUMBER, UTTERANCE_ID
from emoshare_sb.data.iemocap_transcripts import (
    existing_transcript_file,
    read_transcripts,
    transcript_of,
)
from emoshare_sb.data.manifest import (
    AudioChecks,
    check_folder_path,
    prepared_with,
    report_skipped,
    save_options,
)
from emoshare_sb.utils.io import write_csv

logger = get_logger(__name__)

IEMOCAP_SESSIONS = (1, 2, 3, 4, 5)
IEMOCAP_CODES = (
    "neu",
    "hap",
    "exc",
    "ang",
    "sad",
    "fru",
    "sur",
    "fea",
    "dis",
    "oth",
    "xxx",
)
FOUR_CLASSES = ("neu", "hap", "ang", "sad")
HAPPY_EXCITED_MERGE = MappingProxyType({"exc": "hap"})
SPLITS = ("train", "valid", "test")
MANIFEST_COLUMNS = ["ID", "duration", "wav", "spk_id", "emo"]
RELEASE_FOLDER = "IEMOCAP_full_release"

SUMMARY_LINE = re.compile(
    rf"^\[\s*(?P<start>{NUMBER})\s*-\s*(?P<end>{NUMBER})\s*\]\s+"
    r"(?P<utterance>\S+)\s+(?P<code>\S+)\s+"
    rf"\[\s*(?P<valence>{NUMBER})\s*,\s*(?P<activation>{NUMBER})\s*,\s*(?P<dominance>{NUMBER})\s*\]$"
)


def prepare_iemocap(
    data_folder,
    save_folder,
    test_session,
    valid_ratio=0.2,
    seed=0,
    classes=FOUR_CLASSES,
    merge=HAPPY_EXCITED_MERGE,
    transcripts=False,
    bad_audio="error",
    skip_prep=False,
):
    """Writes the train/valid/test manifests of one leave-one-session-out fold.

    Arguments
    ---------
    data_folder : str
        The release root holding ``Session1`` ... ``Session5`` (or a folder
        holding ``IEMOCAP_full_release``).
    save_folder : str
        Where ``train.csv``, ``valid.csv`` and ``test.csv`` are written.
    test_session : int
        The held-out session (1 to 5): its two speakers are the test set.
    valid_ratio : float
        Share of the training sessions' utterances held out for validation
        (SUPERB: 0.2); the training set gets ``int((1 - valid_ratio) * n)``.
    seed : int
        Seed of the train/valid permutation (SUPERB: 0).
    classes : sequence of str
        Emotion codes kept, after merging; their order is the class order.
    merge : mapping
        Codes relabelled before selection (default ``exc`` -> ``hap``).
    transcripts : bool
        If True, every utterance gets a ``text`` column (the last one): its
        text in ``SessionK/dialog/transcriptions/<dialog>.txt``, read for
        every dialog that has an EmoEvaluation file. A missing
        transcriptions file, or a kept utterance with no line in its
        dialog's file, stops preparation.
    bad_audio : str
        ``"error"`` stops at an utterance whose audio cannot be read or holds
        NaN or Inf; ``"skip"`` leaves it out and lists it in
        ``<save_folder>/skipped_audio.csv``.
    skip_prep : bool
        If True, do nothing and return None.

    Returns
    -------
    dict
        Number of utterances per split.

    Raises
    ------
    DataPrepError
        For any bad input (missing session, malformed summary line, unknown
        code, duplicate utterance, missing audio, missing or malformed
        transcript with ``transcripts=True``), naming the file and line.

    Example
    -------
    >>> from emoshare_sb.synthetic.iemocap import make_iemocap_corpus
    >>> root = str(getfixture("tmpdir"))
    >>> corpus = make_iemocap_corpus(
    ...     root + "/IEMOCAP_full_release", utterances_per_dialog=4
    ... )
    >>> prepare_iemocap(corpus, root + "/fold_1", test_session=1)
    {'train': 32, 'valid': 8, 'test': 10}
    >>> sorted(os.listdir(root + "/fold_1"))
    ['prepare_options.json', 'test.csv', 'train.csv', 'valid.csv']
    >>> print(open(root + "/fold_1/test.csv").readline().strip())
    ID,duration,wav,spk_id,emo
    >>> _ = prepare_iemocap(
    ...     corpus, root + "/text_1", test_session=1, transcripts=True
    ... )
    >>> print(open(root + "/text_1/test.csv").readline().strip())
    ID,duration,wav,spk_id,emo,text
    """
    if skip_prep:
        return None

    classes, merge = _check_options(test_session, valid_ratio, classes, merge)
    checks = AudioChecks(bad_audio, "check data_folder")
    root = find_release_root(data_folder)
    check_folder_path(root, "IEMOCAP release")
    label_files = {
        session: list_label_files(root, session) for session in IEMOCAP_SESSIONS
    }
    transcripts = bool(transcripts)
    # One transcriptions file per EmoEvaluation file, of the same dialog.
    dialogs = [
        (os.path.splitext(os.path.basename(path))[0], session)
        for session in IEMOCAP_SESSIONS
        for path in label_files[session]
    ]
    transcript_files = (
        [existing_transcript_file(root, *dialog) for dialog in dialogs]
        if transcripts
        else []
    )

    manifests = [f"{split}.csv" for split in SPLITS]
    options = {
        "data_folder": root,
        "test_session": int(test_session),
        "valid_ratio": float(valid_ratio),
        "seed": int(seed),
        "classes": list(classes),
        "merge": dict(sorted(merge.items())),
        "split": "utterance-level randperm over the training sessions (SUPERB)",
        "bad_audio": bad_audio,
        "label_files": [
            [
                os.path.relpath(path, root),
                os.path.getsize(path),
                os.path.getmtime(path),
            ]
            for session in IEMOCAP_SESSIONS
            for path in label_files[session]
        ],
        "transcripts": transcripts,
    }
    if transcripts:
        options["transcript_files"] = [
            [
                os.path.relpath(path, root),
                os.path.getsize(path),
                os.path.getmtime(path),
            ]
            for path in transcript_files
        ]
    if prepared_with(save_folder, options, manifests):
        logger.info(
            f"Manifests in {save_folder} are up to date; skipping preparation."
        )
        report_skipped(save_folder)
        return {
            split: _count_rows(os.path.join(save_folder, f"{split}.csv"))
            for split in SPLITS
        }

    utterances = read_summaries(label_files)
    texts = read_transcripts(root, dialogs) if transcripts else None
    selected = select_utterances(root, utterances, classes, merge)
    test = [row for row in selected if _session_of(row["ID"]) == test_session]
    pool = [row for row in selected if _session_of(row["ID"]) != test_session]
    train_ids, valid_ids = split_train_valid(
        [row["ID"] for row in pool], valid_ratio, seed
    )
    by_id = {row["ID"]: row for row in pool}
    rows_per_split = {
        "train": [by_id[i] for i in sorted(train_ids)],
        "valid": [by_id[i] for i in sorted(valid_ids)],
        "test": test,
    }
    for split, rows in rows_per_split.items():
        kept = []
        for row in rows:
            source = row.pop("_source")
            duration = checks.duration(
                row["wav"], split, row["ID"], *source, "utterance"
            )
            if duration is not None:
                row["duration"] = f"{duration:.4f}"
                if texts is not None:
                    row["text"] = transcript_of(root, texts, row["ID"])
                kept.append(row)
        rows[:] = kept
        if not rows:
            raise DataPrepError(
                f"the {split} split of fold {test_session} has no utterance of the classes "
                f"{list(classes)}",
                root,
            )

    columns = MANIFEST_COLUMNS + ["text"] if transcripts else MANIFEST_COLUMNS
    for split, rows in rows_per_split.items():
        write_csv(os.path.join(save_folder, f"{split}.csv"), rows, columns)
        counts = {c: sum(row["emo"] == c for row in rows) for c in classes}
        logger.info(
            f"Fold {test_session}, {split}: {len(rows)} utterances "
            + " ".join(f"{c} {n}" for c, n in counts.items())
            + f", speakers {sorted({row['spk_id'] for row in rows})}"
        )
    checks.write(save_folder, ("valid", "test"))
    save_options(save_folder, options)
    return {split: len(rows) for split, rows in rows_per_split.items()}


def find_release_root(data_folder):
    """The folder holding ``Session1`` to ``Session5``.

    Arguments
    ---------
    data_folder : str
        That folder, or one holding ``IEMOCAP_full_release``.

    Returns
    -------
    str
        The absolute path of the release root.

    Raises
    ------
    DataPrepError
        When a session folder is missing.
    """
    data_folder = os.path.abspath(data_folder)
    nested = os.path.join(data_folder, RELEASE_FOLDER)
    if not os.path.isdir(
        os.path.join(data_folder, "Session1")
    ) and os.path.isdir(nested):
        data_folder = nested
    missing = [
        f"Session{s}"
        for s in IEMOCAP_SESSIONS
        if not os.path.isdir(os.path.join(data_folder, f"Session{s}"))
    ]
    if missing:
        raise DataPrepError(
            f"session folder(s) {', '.join(missing)} not found: data_folder must be "
            f"the IEMOCAP release root holding Session1 ... Session5 ({RELEASE_FOLDER})",
            data_folder,
        )
    return data_folder


def list_label_files(root, session):
    """The EmoEvaluation files of one session, sorted.

    Only ``*.txt`` files directly in ``dialog/EmoEvaluation`` are label
    files; sub-folders and hidden files (``._*`` from macOS archives) are not.

    Arguments
    ---------
    root : str
        The release root.
    session : int
        1 to 5.

    Returns
    -------
    list of str
        Paths of the session's ``<dialog>.txt`` files.
    """
    folder = os.path.join(root, f"Session{session}", "dialog", "EmoEvaluation")
    if not os.path.isdir(folder):
        raise DataPrepError("the EmoEvaluation folder does not exist", folder)
    paths = [
        os.path.join(folder, name)
        for name in sorted(os.listdir(folder))
        if name.endswith(".txt")
        and not name.startswith(".")
        and os.path.isfile(os.path.join(folder, name))
    ]
    if not paths:
        raise DataPrepError("no EmoEvaluation <dialog>.txt file found", folder)
    return paths


def parse_summary_line(text):
    """Parses one EmoEvaluation summary line.

    Arguments
    ---------
    text : str
        ``[start - end]<TAB>utterance<TAB>code<TAB>[V, A, D]``.

    Returns
    -------
    dict or None
        ``start``, ``end``, ``utterance``, ``code``, ``valence``,
        ``activation``, ``dominance``; None when the line is not a
        well-formed summary line.

    Example
    -------
    >>> line = "\\t".join(
    ...     [
    ...         "[6.2901 - 8.2357]",
    ...         "Ses01F_impro01_F000",
    ...         "neu",
    ...         "[2.5000, 2.5000, 2.5000]",
    ...     ]
    ... )
    >>> parse_summary_line(line)["utterance"], parse_summary_line(line)["code"]
    ('Ses01F_impro01_F000', 'neu')
    >>> parse_summary_line(
    ...     "[6.2901 - 8.2357]\\tSes01F_impro01_F000\\tneu"
    ... ) is None
    True
    """
    match = SUMMARY_LINE.match(text.strip())
    if match is None:
        return None
    fields = match.groupdict()
    for name in ("start", "end", "valence", "activation", "dominance"):
        fields[name] = float(fields[name])
    return fields


def speaker_of(utterance):
    """The speaker of an utterance: its session and the gender of its last id part.

    Arguments
    ---------
    utterance : str
        An utterance id.

    Returns
    -------
    str or None
        ``Ses<NN><F|M>``; None for an id not of the IEMOCAP form.

    Example
    -------
    >>> speaker_of("Ses01F_impro01_M012"), speaker_of("Ses03M_script01_1_F000")
    ('Ses01M', 'Ses03F')
    """
    match = UTTERANCE_ID.match(utterance)
    if match is None:
        return None
    return f"Ses{match['session']}{match['gender']}"


def read_summaries(label_files):
    """Reads and checks the summary lines of every EmoEvaluation file.

    Arguments
    ---------
    label_files : dict
        ``{session: [EmoEvaluation file paths]}``.

    Returns
    -------
    list of dict
        One per utterance: ``utterance``, ``code``, ``spk_id``, ``file``, ``line``.

    Raises
    ------
    DataPrepError
        On a malformed summary line, an unknown code, an utterance id of the
        wrong form or session, or an utterance listed twice.
    """
    seen = {}
    utterances = []
    for session, paths in label_files.items():
        for path in paths:
            for line_number, text in text_lines(path):
                if not text.lstrip().startswith("["):
                    continue  # header, blank line or an evaluator's line
                fields = parse_summary_line(text)
                if fields is None:
                    raise DataPrepError(
                        f"malformed summary line {text.strip()!r}: expected "
                        "'[start - end]<TAB>utterance<TAB>code<TAB>[V, A, D]'",
                        path,
                        line_number,
                    )
                utterance, code = fields["utterance"], fields["code"]
                if code not in IEMOCAP_CODES:
                    raise DataPrepError(
                        f"unknown emotion code '{code}' (IEMOCAP codes: "
                        f"{' '.join(IEMOCAP_CODES)})",
                        path,
                        line_number,
                        "emotion",
                    )
                speaker = speaker_of(utterance)
                if speaker is None:
                    raise DataPrepError(
                        f"utterance id '{utterance}' is not of the form "
                        "Ses<NN><F|M>_<dialog>_<F|M><number>",
                        path,
                        line_number,
                        "utterance",
                    )
                if _session_of(utterance) != session:
                    raise DataPrepError(
                        f"utterance '{utterance}' belongs to session "
                        f"{_session_of(utterance)} but is listed in Session{session}",
                        path,
                        line_number,
                        "utterance",
                    )
                if utterance in seen:
                    first_path, first_line = seen[utterance]
                    raise DataPrepError(
                        f"duplicate utterance '{utterance}' (first seen in "
                        f"{first_path}, line {first_line})",
                        path,
                        line_number,
                        "utterance",
                    )
                seen[utterance] = (path, line_number)
                utterances.append(
                    {
                        "utterance": utterance,
                        "code": code,
                        "spk_id": speaker,
                        "file": path,
                        "line": line_number,
                    }
                )
    return utterances


def select_utterances(root, utterances, classes, merge):
    """Keeps the utterances of ``classes`` (after ``merge``), with their audio.

    Arguments
    ---------
    root : str
        The release root.
    utterances : list of dict
        As returned by :func:`read_summaries`.
    classes : sequence of str
        Codes kept.
    merge : mapping
        Codes relabelled first.

    Returns
    -------
    list of dict
        Manifest rows (``ID, wav, spk_id, emo``; the duration is added once
        the audio is checked) sorted by ID, each with ``_source``, the
        summary line's ``(file, line)``.

    Raises
    ------
    DataPrepError
        When a kept utterance has no audio file.
    """
    rows = []
    for utterance in utterances:
        emotion = merge.get(utterance["code"], utterance["code"])
        if emotion not in classes:
            continue
        utterance_id = utterance["utterance"]
        dialog = utterance_id.rsplit("_", 1)[0]
        wav = os.path.join(
            root,
            f"Session{_session_of(utterance_id)}",
            "sentences",
            "wav",
            dialog,
            f"{utterance_id}.wav",
        )
        rows.append(
            {
                "ID": utterance_id,
                "wav": wav,
                "spk_id": utterance["spk_id"],
                "emo": emotion,
                "_source": (utterance["file"], utterance["line"]),
            }
        )
    return sorted(rows, key=lambda row: row["ID"])


def split_train_valid(utterance_ids, valid_ratio=0.2, seed=0):
    """SUPERB's random utterance-level train/valid split.

    The ids are sorted, permuted with ``torch.randperm`` from a generator
    seeded with ``seed`` (the permutation ``torch.manual_seed(seed)`` then
    ``torch.utils.data.random_split`` draws), and the first
    ``int((1 - valid_ratio) * n)`` go to training.

    Arguments
    ---------
    utterance_ids : list of str
        The training sessions' utterances.
    valid_ratio : float
        Share held out for validation.
    seed : int
        Seed of the permutation.

    Returns
    -------
    tuple of list
        Training ids and validation ids.

    Example
    -------
    >>> ids = [f"u{i}" for i in range(10)]
    >>> train, valid = split_train_valid(ids, 0.2, seed=0)
    >>> len(train), len(valid), sorted(train + valid) == sorted(ids)
    (8, 2, True)
    >>> split_train_valid(ids, 0.2, seed=0) == (train, valid)
    True
    """
    ordered = sorted(utterance_ids)
    num_train = int((1 - valid_ratio) * len(ordered))
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(len(ordered), generator=generator).tolist()
    return [ordered[i] for i in order[:num_train]], [
        ordered[i] for i in order[num_train:]
    ]


def _check_options(test_session, valid_ratio, classes, merge):
    if test_session not in IEMOCAP_SESSIONS:
        raise ValueError(
            f"test_session must be one of {IEMOCAP_SESSIONS}, got {test_session!r}"
        )
    if not 0.0 < valid_ratio < 1.0:
        raise ValueError(f"valid_ratio must be in (0, 1), got {valid_ratio}")
    classes = [str(c) for c in classes]
    merge = {str(k): str(v) for k, v in (merge or {}).items()}
    unknown = [
        c
        for c in classes + list(merge) + list(merge.values())
        if c not in IEMOCAP_CODES
    ]
    if unknown:
        raise ValueError(
            f"unknown IEMOCAP code(s) {unknown}; the codes are {IEMOCAP_CODES}"
        )
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise ValueError(
            f"classes must be at least two distinct codes, got {classes}"
        )
    lost = [f"{k} -> {v}" for k, v in merge.items() if v not in classes]
    if lost:
        raise ValueError(
            f"merge target(s) not among the classes {classes}: {lost}"
        )
    return classes, merge


def _session_of(utterance):
    return int(utterance[3:5])


def _count_rows(path):
    with open(path, encoding="utf-8") as handle:
        return sum(1 for _ in handle) - 1
