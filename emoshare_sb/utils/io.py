"""Atomic file writing: a file is either complete or absent, never half-written.

Every manifest, prediction file, results file and checkpoint the project
writes goes through :func:`atomic_write`, which writes to a temporary file in
the same folder and renames it into place only when writing succeeded.

Authors
 * emoshare_sb contributors 2026
"""

import contextlib
import csv
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_write(path, mode="w", **open_kwargs):
    """Opens a temporary file that replaces ``path`` only if the block succeeds.

    Arguments
    ---------
    path : str or os.PathLike
        The destination file. Its folder is created if needed.
    mode : str
        ``"w"`` for text or ``"wb"`` for bytes.
    **open_kwargs
        Passed to :func:`open` (e.g. ``newline=""`` for CSV files).

    Yields
    ------
    file object
        The temporary file to write to.

    Example
    -------
    >>> import pathlib
    >>> tmp = pathlib.Path(getfixture("tmpdir"))
    >>> with atomic_write(tmp / "a.txt") as f:
    ...     _ = f.write("complete")
    >>> (tmp / "a.txt").read_text()
    'complete'
    >>> try:
    ...     with atomic_write(tmp / "b.txt") as f:
    ...         _ = f.write("half")
    ...         raise OSError("No space left on device")
    ... except OSError:
    ...     pass
    >>> (tmp / "b.txt").exists(), sorted(p.name for p in tmp.iterdir())
    (False, ['a.txt'])
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(
        dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp_path)
        raise


def write_csv(path, rows, fieldnames):
    """Writes a list of dicts as a CSV file, atomically.

    Arguments
    ---------
    path : str or os.PathLike
        The destination file.
    rows : iterable of dict
        One dict per row, keyed by ``fieldnames``.
    fieldnames : list of str
        The header, in order.

    Example
    -------
    >>> path = getfixture("tmpdir") / "x.csv"
    >>> write_csv(path, [{"a": 1, "b": 2}], ["a", "b"])
    >>> print(open(path).read().strip())
    a,b
    1,2
    """
    with atomic_write(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)


def write_json(path, obj):
    """Writes ``obj`` as indented JSON, atomically.

    Arguments
    ---------
    path : str or os.PathLike
        The destination file.
    obj : object
        Anything :func:`json.dump` accepts.

    Example
    -------
    >>> path = getfixture("tmpdir") / "x.json"
    >>> write_json(path, {"rho": 0.5})
    >>> json.load(open(path))
    {'rho': 0.5}
    """
    with atomic_write(path, "w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=False)
        handle.write("\n")
