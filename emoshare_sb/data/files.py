"""Reading label files and resolving the paths they name, with errors that
name the file and line.

Label files are read as UTF-8, with or without a byte-order mark (BOM), or
as UTF-16 with a BOM (what spreadsheet programs save as "Unicode text"): a
BOM tells UTF-16 apart without guessing. Any other encoding (Latin-1,
Windows-1252, UTF-16 without BOM) stops with the file, the line and how to
convert it, instead of a ``UnicodeDecodeError`` that names no file, or
silently wrong text.

Clip names in label files are paths relative to the audio folder. They are
normalised (``./00001.wav`` and ``sub/../00001.wav`` are ``00001.wav``), so
that one clip cannot be counted twice under two spellings, and a name that
leads outside the audio folder (an absolute path, ``../``) is refused unless
the caller allows it.

:func:`audio_signature` identifies an audio file by path, size and
modification time, so that the caches built from it (SSL features,
openSMILE functionals) see when it changes.

Authors
 * emoshare_sb contributors 2026
"""

import codecs
import csv
import errno
import os
import re
import stat

from emoshare_sb.data.errors import DataPrepError

ENCODING_HINT = (
    "label files must be UTF-8 (with or without BOM) or UTF-16 with BOM; "
    "convert it, e.g. iconv -f {source} -t utf-8 OLD > NEW"
)
# One physical line and its end, as a text-mode reader with newline="" sees it.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def text_lines(path):
    """Yields the lines of a label file, decoded, with their numbers.

    Arguments
    ---------
    path : str
        A text file: UTF-8 (BOM optional) or UTF-16 with BOM.

    Yields
    ------
    tuple
        ``(line_number, text)``, 1-based, the line end kept (as ``open(path,
        newline="")`` gives it, which the csv module expects).

    Raises
    ------
    DataPrepError
        When the file is not in one of those encodings, naming the line.

    Example
    -------
    >>> path = getfixture("tmpdir") / "labels.csv"
    >>> _ = path.write_binary(
    ...     "filename,x\\r\\n0001.wav,0.5\\r\\n".encode("utf-16")
    ... )
    >>> list(text_lines(str(path)))
    [(1, 'filename,x\\r\\n'), (2, '0001.wav,0.5\\r\\n')]
    >>> _ = path.write_binary(b"filename\\nd\\xe9j\\xe0.wav\\n")
    >>> list(text_lines(str(path)))
    Traceback (most recent call last):
    ...
    emoshare_sb.data.errors.DataPrepError: ...labels.csv, line 2: not UTF-8 text (byte 0xe9 at column 2); label files must be UTF-8 ...
    """
    with open(path, "rb") as handle:
        head = handle.read(4)
        handle.seek(0)
        if head.startswith(
            (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
        ) and not head.startswith(codecs.BOM_UTF32_LE):
            yield from _utf16_lines(handle.read(), path)
            return
        number = 0
        for raw in handle:
            number += 1
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            if b"\x00" in raw:
                raise DataPrepError(
                    "the file holds NUL bytes: it looks like UTF-16 without a "
                    "byte-order mark, or binary; "
                    + ENCODING_HINT.format(source="utf-16le"),
                    path,
                    number,
                )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataPrepError(
                    f"not UTF-8 text (byte 0x{raw[error.start]:02x} at column "
                    f"{error.start + 1}); "
                    + ENCODING_HINT.format(source="latin1"),
                    path,
                    number,
                ) from None
            if "\r" not in text.rstrip("\r\n"):
                yield number, text
                continue
            # A lone '\r' (old Mac line ends) also ends a line.
            lines = _LINE.findall(text)
            for offset, line in enumerate(lines):
                yield number + offset, line
            number += len(lines) - 1


def _utf16_lines(data, path):
    """Decodes a whole UTF-16 file (with BOM) into numbered lines."""
    try:
        text = data.decode("utf-16")
    except UnicodeDecodeError as error:
        line = data[: error.start].decode("utf-16", "replace").count("\n") + 1
        raise DataPrepError(
            f"not valid UTF-16 text ({error.reason}); "
            + ENCODING_HINT.format(source="utf-16"),
            path,
            line,
        ) from None
    for number, line in enumerate(_LINE.findall(text), start=1):
        yield number, line


def csv_records(path):
    """Yields the records of a CSV label file with the line each starts on.

    Decoding is :func:`text_lines`'. A quoted field may span lines; the line
    reported is the one where its record starts. Blank lines come out as
    empty records, as ``csv.reader`` gives them. UTF-8 files are read by
    ``csv.reader`` from the file directly (the cost of the csv module alone);
    only on a decoding error is the file read again, line by line, to name
    the line.

    Arguments
    ---------
    path : str
        The CSV file.

    Yields
    ------
    tuple
        ``(line_number, fields)``.

    Raises
    ------
    DataPrepError
        For a bad encoding, and for a field longer than
        ``csv.field_size_limit()`` (131,072 characters: in a label file, a
        double quote that is never closed swallows the lines after it).

    Example
    -------
    >>> path = getfixture("tmpdir") / "t.csv"
    >>> _ = path.write('a,b\\n"x\\ny",2\\n3,4\\n')
    >>> list(csv_records(str(path)))
    [(1, ['a', 'b']), (2, ['x\\ny', '2']), (4, ['3', '4'])]
    """
    with open(path, "rb") as handle:
        head = handle.read(4096)
    utf16 = head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    if not utf16 and b"\x00" in head:
        _raise_decoding_error(path)  # UTF-16 without BOM: csv takes NULs
    with open(path, encoding="utf-8-sig", newline="") as handle:
        lines = (text for _, text in text_lines(path)) if utf16 else handle
        reader = csv.reader(lines)
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                _raise_decoding_error(path)
                raise  # not reached: the line-by-line pass raises
            except csv.Error as error:
                if "field larger than field limit" in str(error):
                    raise DataPrepError(
                        f"a field is longer than {csv.field_size_limit():,} "
                        'characters: probably a double quote (") opened on '
                        "this line or after it and never closed",
                        path,
                        start,
                    ) from None
                raise DataPrepError(
                    f"malformed CSV ({error})", path, start
                ) from None
            yield start, fields


def _raise_decoding_error(path):
    """Reads ``path`` line by line, so that a decoding error names its line."""
    for _ in text_lines(path):
        pass


def path_problem(path):
    """Says what is wrong with ``path`` as a file to read, or None.

    Arguments
    ---------
    path : str
        The path of a file that should exist.

    Returns
    -------
    str or None
        ``"does not exist"``, ``"is a directory, not a file"``, ``"is a
        symbolic link loop"``, ``"is a broken symbolic link (to '...')"``,
        ``"is not a regular file (...)"`` or ``"cannot be accessed
        (...)"``; None for a readable regular file.

    Example
    -------
    >>> folder = str(getfixture("tmpdir"))
    >>> path_problem(folder)
    'is a directory, not a file'
    >>> os.symlink("loop", os.path.join(folder, "loop"))
    >>> path_problem(os.path.join(folder, "loop"))
    'is a symbolic link loop'
    >>> path_problem(os.path.join(folder, "nothing.wav"))
    'does not exist'
    """
    try:
        mode = os.stat(path).st_mode
    except ValueError:  # os.stat refuses paths with NUL characters
        return "holds a NUL character"
    except FileNotFoundError:
        if os.path.islink(path):
            return f"is a broken symbolic link (to '{os.readlink(path)}')"
        return "does not exist"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "is a symbolic link loop"
        return f"cannot be accessed ({error.strerror})"
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a device, pipe or socket)"
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return None


def clip_path(folder, name, allow_outside=False):
    """Normalises a clip name from a label file and joins it to its folder.

    Arguments
    ---------
    folder : str
        The audio folder the names are relative to.
    name : str
        The name as the label file writes it.
    allow_outside : bool
        Accept names that lead outside ``folder`` (absolute, ``../``).

    Returns
    -------
    tuple
        ``(clip_id, path)``: the normalised name (the clip's ID) and the
        normalised path of its file.

    Raises
    ------
    ValueError
        For an empty name, or one outside ``folder`` when not allowed; the
        message is the reason (the caller adds file and line).

    Example
    -------
    >>> clip_path("/corpus/wav", "./00001.wav")
    ('00001.wav', '/corpus/wav/00001.wav')
    >>> clip_path("/corpus/wav", "../secret.wav")
    Traceback (most recent call last):
    ...
    ValueError: the path '../secret.wav' leads outside the audio folder '/corpus/wav' ...
    >>> clip_path("/corpus/wav", "/data/x.wav", allow_outside=True)
    ('/data/x.wav', '/data/x.wav')
    """
    name = name.strip()
    normal = os.path.normpath(name) if name else ""
    if normal in ("", "."):
        raise ValueError("empty file name")
    outside = os.path.isabs(normal) or normal.split(os.sep)[0] == os.pardir
    if outside and not allow_outside:
        raise ValueError(
            f"the path '{name}' leads outside the audio folder '{folder}' "
            "(label files name clips relative to it; set "
            "allow_outside_audio_folder: True under prepare_data to accept "
            "such paths)"
        )
    return normal, os.path.normpath(os.path.join(folder, normal))


def audio_signature(path):
    """``{"path", "size", "mtime_ns"}`` of an audio file: changes when it does.

    Arguments
    ---------
    path : str
        The audio file.

    Returns
    -------
    dict
        Absolute path, size in bytes and modification time in nanoseconds.

    Example
    -------
    >>> path = getfixture("tmpdir") / "a.wav"
    >>> _ = path.write_binary(b"1234")
    >>> audio_signature(str(path))["size"]
    4
    """
    stat = os.stat(path)
    return {
        "path": os.path.abspath(path),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }
