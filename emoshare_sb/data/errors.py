"""The error every data preparation step raises for bad input.

Authors
 * emoshare_sb contributors 2026
"""


class DataPrepError(ValueError):
    """Bad corpus input, with the file, line and field that caused it.

    The message starts with the location so that a user can open the file at
    the right line: ``lab/train.csv, line 12, field 'Anger': ...``.

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
    """

    def __init__(self, message, file=None, line=None, field=None):
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
