"""Reading the transcriptions of the IEMOCAP release, for text models.

Layout read
-----------
One file per dialog, next to its EmoEvaluation file::

    <release root>/SessionK/dialog/transcriptions/<dialog>.txt

holding one line per turn::

    Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.
    Ses01F_impro01_MXX0 [010.0000-011.5000]: Hmm.

A line whose first word is an utterance id of the IEMOCAP form
(``Ses<NN><F|M>_<dialog>_<F|M><number>``, as
:data:`emoshare_sb.data.iemocap_ids.UTTERANCE_ID` reads it) is an utterance
turn: it must go on with ``[start-end]:``, and the rest of the line,
stripped, is the utterance's text. Other lines (turns that are not labelled
utterances, such as ``..._MXX0`` or ``..._FXX1``, blank lines, any other
text) are skipped. Files are UTF-8 (with or without BOM; ASCII in the
release) or UTF-16 with BOM.

Checks
------
A turn line without ``[start-end]:``, an utterance id listed twice, and a
text that SpeechBrain's CSV loader would change (``$name``) stop with the
file and line.

Authors
 * emoshare_sb contributors 2026
"""

import os
import re

from emoshare_sb.data.errors import DataPrepError
from emoshare_sb.data.files import text_lines
from emoshare_sb.data.iemocap_ids import NUMBER, UTTERANCE_ID
from emoshare_sb.data.manifest import check_manifest_value

TRANSCRIPTIONS_FOLDER = "transcriptions"
# The first word of a line: an utterance id when UTTERANCE_ID matches it.
_FIRST_WORD = re.compile(r"^[A-Za-z0-9_-]+")
# What follows the id on a turn line: " [006.2901-008.2357]: Excuse me."
_TURN_REST = re.compile(
    rf"^\s*\[\s*{NUMBER}\s*-\s*{NUMBER}\s*\]\s*:(?P<text>.*)$", re.DOTALL
)
_DIALOG = re.compile(r"^Ses(?P<session>\d{2})")


def transcript_file(root, dialog, session=None):
    """The transcriptions file of one dialog.

    Arguments
    ---------
    root : str
        The release root (holding ``Session1`` ... ``Session5``).
    dialog : str
        The dialog name, e.g. ``Ses01F_impro01``.
    session : int, optional
        Its session; by default read from the dialog name (``Ses01...``).

    Returns
    -------
    str
        ``<root>/Session<K>/dialog/transcriptions/<dialog>.txt``.

    Raises
    ------
    DataPrepError
        When ``session`` is not given and ``dialog`` does not start with
        ``Ses<NN>``.

    Example
    -------
    >>> transcript_file("/corpus", "Ses02M_impro02")
    '/corpus/Session2/dialog/transcriptions/Ses02M_impro02.txt'
    """
    if session is None:
        match = _DIALOG.match(dialog)
        if match is None:
            raise DataPrepError(
                f"'{dialog}' is not an IEMOCAP dialog name (Ses<NN><F|M>_...)",
                root,
            )
        session = int(match["session"])
    return os.path.join(
        root,
        f"Session{int(session)}",
        "dialog",
        TRANSCRIPTIONS_FOLDER,
        f"{dialog}.txt",
    )


def parse_transcript_line(text, file=None, line=None):
    """Parses one line of a transcriptions file.

    Arguments
    ---------
    text : str
        ``<utterance> [start-end]: <text>``.
    file : str, optional
        The file the line comes from, for the messages.
    line : int, optional
        Its 1-based line number, for the messages.

    Returns
    -------
    tuple or None
        ``(utterance_id, text)``, the text stripped; None for a line that is
        not a turn of an utterance (an unlabelled ``..._MXX0`` turn, a blank
        line, other text).

    Raises
    ------
    DataPrepError
        When the line starts with an utterance id but does not go on with
        ``[start-end]:``, or when its text holds a ``$name`` (which
        SpeechBrain's CSV loader would substitute).

    Example
    -------
    >>> parse_transcript_line(
    ...     "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.\\n"
    ... )
    ('Ses01F_impro01_F000', 'Excuse me.')
    >>> parse_transcript_line("Ses01F_impro01_MXX0 [010.0-011.5]: Hmm.") is None
    True
    >>> parse_transcript_line("") is None
    True
    >>> parse_transcript_line("Ses01F_impro01_F001: Yes.", "t.txt", 4)
    Traceback (most recent call last):
    ...
    emoshare_sb.data.errors.DataPrepError: t.txt, line 4: malformed transcript line 'Ses01F_impro01_F001: Yes.': expected '<utterance> [start-end]: <text>'
    """
    stripped = text.strip()
    first = _FIRST_WORD.match(stripped)
    if first is None or UTTERANCE_ID.match(first[0]) is None:
        return None
    turn = _TURN_REST.match(stripped[first.end() :])
    if turn is None:
        raise DataPrepError(
            f"malformed transcript line {stripped!r}: expected "
            "'<utterance> [start-end]: <text>'",
            file,
            line,
        )
    words = turn["text"].strip()
    check_manifest_value(words, file, line, what="the transcript")
    return first[0], words


def read_transcripts(root, dialogs):
    """Reads the transcriptions files of some dialogs.

    Arguments
    ---------
    root : str
        The release root.
    dialogs : iterable of str or of (str, int)
        Dialog names, or ``(dialog, session)`` pairs (see
        :func:`transcript_file`).

    Returns
    -------
    dict
        ``{utterance_id: text}`` of every utterance turn.

    Raises
    ------
    DataPrepError
        When a file does not exist, on a malformed turn line or a ``$name``
        in a text (see :func:`parse_transcript_line`), or when an utterance
        has two turn lines (naming both).

    Example
    -------
    >>> root = str(getfixture("tmpdir"))
    >>> folder = os.path.join(root, "Session1", "dialog", "transcriptions")
    >>> os.makedirs(folder)
    >>> _ = open(os.path.join(folder, "Ses01F_impro01.txt"), "w").write(
    ...     "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.\\n"
    ...     "Ses01F_impro01_MXX0 [008.5000-009.0000]: Hmm.\\n\\n"
    ...     "Ses01F_impro01_M000 [009.1000-010.2000]:  Do you have your forms?\\n"
    ... )
    >>> read_transcripts(root, ["Ses01F_impro01"])
    {'Ses01F_impro01_F000': 'Excuse me.', 'Ses01F_impro01_M000': 'Do you have your forms?'}
    >>> read_transcripts(root, ["Ses01M_impro02"])
    Traceback (most recent call last):
    ...
    emoshare_sb.data.errors.DataPrepError: ...Ses01M_impro02.txt: the transcriptions file of dialog 'Ses01M_impro02' does not exist
    """
    seen = {}
    transcripts = {}
    for dialog in dialogs:
        dialog, session = (
            (dialog, None) if isinstance(dialog, str) else tuple(dialog)
        )
        path = transcript_file(root, dialog, session)
        if not os.path.isfile(path):
            raise DataPrepError(
                f"the transcriptions file of dialog '{dialog}' does not exist",
                path,
            )
        for line_number, text in text_lines(path):
            turn = parse_transcript_line(text, path, line_number)
            if turn is None:
                continue
            utterance, words = turn
            if utterance in seen:
                first_path, first_line = seen[utterance]
                raise DataPrepError(
                    f"duplicate utterance '{utterance}' in the transcriptions "
                    f"(first seen in {first_path}, line {first_line})",
                    path,
                    line_number,
                    "utterance",
                )
            seen[utterance] = (path, line_number)
            transcripts[utterance] = words
    return transcripts


def existing_transcript_file(root, dialog, session):
    """The transcriptions file of ``dialog``; stops when it does not exist.

    Arguments
    ---------
    root : str
        The release root.
    dialog : str
        E.g. ``Ses01F_impro01``.
    session : int
        Its session.

    Returns
    -------
    str
        The file's path.

    Raises
    ------
    DataPrepError
        Naming the missing file.
    """
    path = transcript_file(root, dialog, session)
    if not os.path.isfile(path):
        raise DataPrepError(
            f"the transcriptions file of dialog '{dialog}' does not exist "
            "(transcripts=True reads one per EmoEvaluation file)",
            path,
        )
    return path


def transcript_of(root, texts, utterance):
    """The text of ``utterance``; stops, naming its dialog's file, when it has none.

    Arguments
    ---------
    root : str
        The release root.
    texts : dict
        ``{utterance id: text}`` (:func:`read_transcripts`).
    utterance : str
        The utterance id.

    Returns
    -------
    str
        Its text.

    Raises
    ------
    DataPrepError
        When the dialog's file has no line for it.
    """
    if utterance not in texts:
        raise DataPrepError(
            f"utterance '{utterance}' has no transcript line "
            "('<utterance> [start-end]: <text>'), which transcripts=True needs",
            transcript_file(root, utterance.rsplit("_", 1)[0]),
            None,
            "utterance",
        )
    return texts[utterance]
