"""Bookkeeping shared by the data preparations.

A preparation step stores the options it ran with next to its manifests; a
later run with the same options and all manifests present skips the work, and
a run with different options redoes it. Corpora whose copies name a folder in
several ways are searched with :func:`find_folder`.

Every manifest value is checked against SpeechBrain's CSV loader
(:func:`check_manifest_value`), and every clip's audio through
:class:`AudioChecks`, which stops at a bad clip or leaves it out and lists
it, as the ``bad_audio`` option says.

Authors
 * emoshare_sb contributors 2026
"""

import json
import os
import re

from speechbrain.utils.logger import get_logger

from emoshare_sb.data.audio import AudioReadError, check_audio
from emoshare_sb.data.errors import DataPrepError
from emoshare_sb.data.files import path_problem
from emoshare_sb.utils.io import write_csv, write_json

logger = get_logger(__name__)

OPTIONS_FILE = "prepare_options.json"
SKIPPED_FILE = "skipped_audio.csv"
BAD_AUDIO_POLICIES = ("error", "skip")
# What speechbrain.dataio.dataio.load_data_csv (DynamicItemDataset.from_csv)
# replaces in every field but ID. It has no escape: "$$1" still holds "$1".
SPEECHBRAIN_VARIABLE = re.compile(r"\$([\w.]+)")


def prepared_with(save_folder, options, manifests):
    """Tells whether ``manifests`` exist and were made with ``options``.

    Arguments
    ---------
    save_folder : str
        Where the manifests and the options file live.
    options : dict
        JSON-serialisable options of the preparation.
    manifests : list of str
        File names (relative to ``save_folder``) that the preparation writes.

    Returns
    -------
    bool
        True when the preparation can be skipped.

    Example
    -------
    >>> folder = str(getfixture("tmpdir"))
    >>> prepared_with(folder, {"a": 1}, ["train.csv"])
    False
    >>> _ = open(os.path.join(folder, "train.csv"), "w").write("ID\\n")
    >>> save_options(folder, {"a": 1})
    >>> (
    ...     prepared_with(folder, {"a": 1}, ["train.csv"]),
    ...     prepared_with(folder, {"a": 2}, ["train.csv"]),
    ... )
    (True, False)
    """
    options_path = os.path.join(save_folder, OPTIONS_FILE)
    if not all(os.path.isfile(os.path.join(save_folder, m)) for m in manifests):
        return False
    if not os.path.isfile(options_path):
        return False
    try:
        with open(options_path) as handle:
            saved = json.load(handle)
    except (OSError, json.JSONDecodeError):
        return False
    return saved == json.loads(json.dumps(options))


def save_options(save_folder, options):
    """Records ``options`` as those the manifests in ``save_folder`` were made with.

    Written last, after every manifest, so an interrupted preparation is redone.

    Arguments
    ---------
    save_folder : str
        Where the manifests live.
    options : dict
        JSON-serialisable options of the preparation.
    """
    write_json(os.path.join(save_folder, OPTIONS_FILE), options)


def find_folder(data_folder, folder, candidates, what):
    """The folder a user named, or the first of ``candidates`` that exists.

    Arguments
    ---------
    data_folder : str
        The corpus root.
    folder : str or None
        A folder the user named (absolute or relative to ``data_folder``).
    candidates : sequence of str
        Names used by the corpus' releases, tried in order.
    what : str
        What the folder holds (``audio``, ``label``), for messages; the
        option that names it is ``<what>_folder``.

    Returns
    -------
    str
        The folder's path.

    Raises
    ------
    DataPrepError
        When the named folder does not exist or no candidate does.

    Example
    -------
    >>> root = str(getfixture("tmpdir"))
    >>> os.makedirs(os.path.join(root, "Audio"))
    >>> find_folder(root, None, ("Audios", "Audio"), "audio") == os.path.join(
    ...     root, "Audio"
    ... )
    True
    """
    if folder is not None:
        path = os.path.join(data_folder, folder)
        if not os.path.isdir(path):
            raise DataPrepError(f"{what} folder '{path}' does not exist")
        return path
    for candidate in candidates:
        path = os.path.join(data_folder, candidate)
        if os.path.isdir(path):
            return path
    raise DataPrepError(
        f"no {what} folder found in '{data_folder}' (looked for "
        f"{', '.join(candidates)}); set {what}_folder"
    )


def check_manifest_value(value, file=None, line=None, field=None, what=None):
    """Refuses a manifest value that SpeechBrain's CSV loader would change.

    ``DynamicItemDataset.from_csv`` replaces ``$name`` in every field but
    ``ID`` by a variable it is given, and fails with a ``KeyError`` when it
    is not given one; there is no escape. A ``$`` followed by a letter,
    digit, ``_`` or ``.`` cannot be written into a manifest.

    Arguments
    ---------
    value : str
        The value (a path, a speaker id, ...).
    file, line, field : optional
        Where it comes from, for the message.
    what : str, optional
        What the value is, for the message (default: ``the value``).

    Raises
    ------
    DataPrepError
        When ``value`` holds such a ``$``.

    Example
    -------
    >>> check_manifest_value("/corpus/wav/clip$-1.wav")  # not a variable
    >>> check_manifest_value("/corpus/wav/clip$1.wav", "lab/train.csv", 2)
    Traceback (most recent call last):
    ...
    emoshare_sb.data.errors.DataPrepError: lab/train.csv, line 2: the value '/corpus/wav/clip$1.wav' holds '$1.wav', which SpeechBrain's CSV loader (DynamicItemDataset.from_csv) reads as the variable '1.wav' and fails on; rename it without '$'
    """
    match = SPEECHBRAIN_VARIABLE.search(str(value))
    if match is None:
        return
    raise DataPrepError(
        f"{what or 'the value'} '{value}' holds '{match[0]}', which "
        "SpeechBrain's CSV loader (DynamicItemDataset.from_csv) reads as the "
        f"variable '{match[1]}' and fails on; rename it without '$'",
        file,
        line,
        field,
    )


def check_folder_path(folder, what):
    """Refuses a folder whose path SpeechBrain's CSV loader would change.

    Arguments
    ---------
    folder : str
        A folder whose path starts manifest values (the audio folder).
    what : str
        What it holds, for the message.

    Raises
    ------
    DataPrepError
        When the path holds ``$name`` (see :func:`check_manifest_value`).
    """
    match = SPEECHBRAIN_VARIABLE.search(folder)
    if match is not None:
        raise DataPrepError(
            f"the {what} folder path '{folder}' holds '{match[0]}', which "
            "SpeechBrain's CSV loader (DynamicItemDataset.from_csv) reads as "
            "a variable in the manifests' paths; move or link the corpus to a "
            "path without '$'"
        )


def folder_stamp(folder):
    """The modification time of a folder, which changes when a file is
    added, removed or renamed in it.

    Part of a preparation's options, so that audio deleted or added after
    preparation makes the next run check the corpus again.

    Arguments
    ---------
    folder : str
        The folder.

    Returns
    -------
    int
        Nanoseconds.
    """
    return os.stat(folder).st_mtime_ns


class AudioChecks:
    """Checks each clip's audio for a preparation; stops or skips bad ones.

    A missing file, a directory or a symbolic link loop where a file should
    be is always an error (a wrong folder would otherwise skip every clip).
    Audio that cannot be read, holds no sample, or holds a NaN or Inf sample
    stops preparation with ``bad_audio="error"`` (the default); with
    ``"skip"`` the clip is left out of its manifest, named in the log, and
    listed in ``skipped_audio.csv`` in the save folder (split, ID, wav,
    reason, label file and line).

    Arguments
    ---------
    bad_audio : str
        ``"error"`` or ``"skip"``.
    missing_hint : str
        Appended to the message for a missing file: where to look.

    Example
    -------
    >>> import numpy as np, soundfile
    >>> folder = getfixture("tmpdir")
    >>> samples = np.zeros(1600, dtype="float32")
    >>> soundfile.write(str(folder / "ok.wav"), samples, 16000)
    >>> samples[3] = np.inf
    >>> soundfile.write(
    ...     str(folder / "inf.wav"), samples, 16000, subtype="FLOAT"
    ... )
    >>> checks = AudioChecks("skip")
    >>> checks.duration(str(folder / "ok.wav"), "train", "ok.wav", "lab.csv", 2)
    0.1
    >>> checks.duration(
    ...     str(folder / "inf.wav"), "train", "inf.wav", "lab.csv", 3
    ... )
    >>> [row["ID"] for row in checks.skipped]
    ['inf.wav']
    """

    def __init__(
        self,
        bad_audio="error",
        missing_hint="check data_folder and the audio_folder option",
    ):
        if bad_audio not in BAD_AUDIO_POLICIES:
            raise DataPrepError(
                f"bad_audio must be one of {list(BAD_AUDIO_POLICIES)}, "
                f"got {bad_audio!r}"
            )
        self.policy = bad_audio
        self.missing_hint = missing_hint
        self.skipped = []

    def duration(self, wav, split, clip_id, file=None, line=None, field=None):
        """The clip's duration, or None when it is skipped.

        Arguments
        ---------
        wav : str
            The audio file.
        split : str
            The manifest the clip is for.
        clip_id : str
            The clip's ID.
        file, line, field : optional
            The label file row that names the clip, for messages.

        Returns
        -------
        float or None
            Seconds; None for a clip left out (``bad_audio="skip"``).

        Raises
        ------
        DataPrepError
            For a path that is not a file, and for bad audio with
            ``bad_audio="error"``.
        """
        problem = path_problem(wav)
        if problem is not None:
            raise DataPrepError(
                f"audio file '{wav}' {problem} ({self.missing_hint})",
                file,
                line,
                field,
            )
        try:
            return check_audio(wav)
        except AudioReadError as error:
            if self.policy == "error":
                raise DataPrepError(
                    f"audio file '{wav}': {error.reason}; fix or remove the "
                    "file, or set bad_audio: skip to leave such clips out",
                    file,
                    line,
                    field,
                ) from error
            logger.warning(
                f"Skipped {split} clip '{clip_id}' (bad_audio: skip): "
                f"{error.reason} ('{wav}')"
            )
            self.skipped.append(
                {
                    "split": split,
                    "ID": clip_id,
                    "wav": wav,
                    "reason": error.reason,
                    "label_file": file or "",
                    "line": line or "",
                }
            )
            return None

    def write(self, save_folder, evaluation_splits=()):
        """Lists the skipped clips in ``skipped_audio.csv`` and the log.

        Removes the list of an earlier preparation when nothing was skipped.

        Arguments
        ---------
        save_folder : str
            Where the manifests are.
        evaluation_splits : sequence of str
            Splits that are scored: the log warns that their scores leave
            the skipped clips out.
        """
        path = os.path.join(save_folder, SKIPPED_FILE)
        if not self.skipped:
            if os.path.exists(path):
                os.remove(path)
            return
        write_csv(
            path,
            self.skipped,
            ["split", "ID", "wav", "reason", "label_file", "line"],
        )
        counts = {}
        for row in self.skipped:
            counts[row["split"]] = counts.get(row["split"], 0) + 1
        for split, count in counts.items():
            scored = (
                f"; its scores and predictions leave {'them' if count > 1 else 'it'} out"
                if split in evaluation_splits
                else ""
            )
            logger.warning(
                f"{count} {split} clip(s) skipped for bad audio "
                f"(bad_audio: skip), listed in {path}{scored}"
            )


def report_skipped(save_folder):
    """Logs, when a preparation is skipped, how many clips it left out.

    Arguments
    ---------
    save_folder : str
        Where the manifests are.
    """
    path = os.path.join(save_folder, SKIPPED_FILE)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            count = sum(1 for _ in handle) - 1
        logger.warning(
            f"{count} clip(s) were left out for bad audio (bad_audio: skip), "
            f"listed in {path}"
        )
