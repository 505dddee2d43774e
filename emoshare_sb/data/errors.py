"""The error every data preparation step raises for bad input.

Authors
 * emoshare_sb contributors 2026
"""

import contextlib
import re

# torch.utils.data re-raises a worker's exception as
# ``type("Caught <Type> in DataLoader worker process N.\nOriginal Traceback
# ...\n<module>.<Type>: <message>")``: the original message is the last line.
_WORKER_MESSAGE = re.compile(
    r"^Caught (?P<type>\w+) in DataLoader worker process \d+\.\n"
    r"Original Traceback.*\n[\w.]*(?P=type): (?P<message>[^\n]*)\n?$",
    re.DOTALL,
)


class DataPrepError(ValueError):
    """Bad corpus input, with the file, line and field that caused it.

    The message starts with the location so that a user can open the file at
    the right line: ``lab/train.csv, line 12, field 'Anger': ...``.

    A DataLoader worker that raises this error has it rebuilt in the main
    process from a message holding the worker's whole traceback (PyTorch's
    ``ExceptionWrapper.reraise``); the rebuilt error keeps only the original
    one-line message (the traceback is kept in ``worker_traceback``), so
    that the recipe can print one line.

    Arguments
    ---------
    message : str
        What is wrong and, where useful, what to do about it.
    file : str, optional
        The file that holds the bad input.
    line : int, optional
        The 1-based line number in ``file`` (the header is line 1).
    field : str, optional
        The column or field name.

    Example
    -------
    >>> err = DataPrepError(
    ...     "value 'abc' is not a number", "lab/train.csv", 3, "Anger"
    ... )
    >>> str(err)
    "lab/train.csv, line 3, field 'Anger': value 'abc' is not a number"
    >>> err.line
    3
    >>> str(
    ...     DataPrepError(
    ...         "Caught DataPrepError in DataLoader worker process 0.\\n"
    ...         "Original Traceback (most recent call last):\\n  File ...\\n"
    ...         "emoshare_sb.data.errors.DataPrepError: a.wav: cannot read audio\\n"
    ...     )
    ... )
    'a.wav: cannot read audio'
    """

    def __init__(self, message, file=None, line=None, field=None):
        self.worker_traceback = None
        from_worker = _WORKER_MESSAGE.match(str(message))
        if from_worker is not None and file is None:
            self.worker_traceback = message
            message = from_worker["message"]
        self.file = None if file is None else str(file)
        self.line = line
        self.field = field
        self.reason = message
        location = []
        if self.file is not None:
            location.append(self.file)
        if line is not None:
            location.append(f"line {line}")
        if field is not None:
            location.append(f"field '{field}'")
        prefix = ", ".join(location)
        super().__init__(f"{prefix}: {message}" if prefix else message)


@contextlib.contextmanager
def exit_on_data_error():
    """Turns a :class:`DataPrepError` raised while training or scoring into
    a one-line message and exit status 1.

    For the part of a recipe after set-up: a clip deleted, changed or made
    unreadable since data preparation is found when a DataLoader (worker)
    reads it. Narrower than ``exit_on_user_error``, which also catches
    ``OSError`` at set-up: a mid-run ``OSError`` keeps its traceback.

    Example
    -------
    >>> with exit_on_data_error():
    ...     raise DataPrepError("cannot read audio", "wav/0001.wav")
    Traceback (most recent call last):
    ...
    SystemExit: error: wav/0001.wav: cannot read audio
    """
    try:
        yield
    except DataPrepError as error:
        raise SystemExit(f"error: {error}") from error
