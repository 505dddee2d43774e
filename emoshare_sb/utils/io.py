"""Atomic file writing: a file is either complete or absent, never half-written.

Every manifest, prediction file, results file and checkpoint the project
writes goes through :func:`atomic_write`, which writes to a temporary file in
the same folder and renames it into place only when writing succeeded. The
file gets the permissions that ``open`` would give it (0644 under umask 022,
not ``mkstemp``'s 0600), so that a colleague can read a shared cache, and a
destination that is a symbolic link is refused rather than replaced.
:func:`make_temp_folder` is the same for a folder renamed into place (an
export): 0755 under umask 022. :func:`write_json` writes strict JSON (no bare
``NaN``); :func:`write_results_json` writes ``null`` for a non-finite score
and lists each one under ``"errors"``.

Authors
 * emoshare_sb contributors 2026
"""

import contextlib
import csv
import json
import math
import os
import tempfile


def current_umask():
    """The process's umask, read without changing it where Linux allows.

    Returns
    -------
    int
        E.g. ``0o022``.

    Example
    -------
    >>> import os
    >>> old = os.umask(0o027)
    >>> oct(current_umask())
    '0o27'
    >>> _ = os.umask(old)
    """
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def refuse_symlink(path):
    """Raises ``OSError`` when ``path`` is a symbolic link.

    Arguments
    ---------
    path : str or os.PathLike
        A file about to be written.

    Raises
    ------
    OSError
        Naming the link and its target.
    """
    if os.path.islink(path):
        raise OSError(
            f"{os.fspath(path)} is a symbolic link (to {os.readlink(path)}): "
            "not writing through it; remove it"
        )


def make_temp_folder(parent, prefix):
    """``tempfile.mkdtemp`` with the permissions ``os.makedirs`` would give.

    Arguments
    ---------
    parent : str
        Where to create it.
    prefix : str
        Start of its name.

    Returns
    -------
    str
        The new folder (0755 under umask 022).

    Example
    -------
    >>> import os, stat
    >>> old = os.umask(0o022)
    >>> folder = make_temp_folder(str(getfixture("tmpdir")), ".export-")
    >>> oct(stat.S_IMODE(os.stat(folder).st_mode))
    '0o755'
    >>> _ = os.umask(old)
    """
    folder = tempfile.mkdtemp(prefix=prefix, dir=parent)
    os.chmod(folder, 0o777 & ~current_umask())
    return folder


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
    refuse_symlink(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(
        dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp"
    )
    try:
        # mkstemp gives 0600; a file made by open() gets 0666 less the umask.
        os.fchmod(fd, 0o666 & ~current_umask())
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
    """Writes ``obj`` as indented, strict JSON, atomically.

    Arguments
    ---------
    path : str or os.PathLike
        The destination file.
    obj : object
        Anything :func:`json.dump` accepts, without NaN or infinity.

    Raises
    ------
    ValueError
        For a NaN or infinite number (strict JSON parsers reject them);
        nothing is written.

    Example
    -------
    >>> path = getfixture("tmpdir") / "x.json"
    >>> write_json(path, {"rho": 0.5})
    >>> json.load(open(path))
    {'rho': 0.5}
    >>> write_json(path, {"rho": float("nan")})
    Traceback (most recent call last):
    ...
    ValueError: ...x.json: rho is nan, which JSON cannot hold
    """
    bad = non_finite_fields(obj)
    if bad:
        raise ValueError(
            f"{os.fspath(path)}: {bad[0]} is {_find(obj, bad[0])}, which "
            "JSON cannot hold"
        )
    with atomic_write(path, "w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=False, allow_nan=False)
        handle.write("\n")


def non_finite_fields(obj, prefix=""):
    """The dotted paths of the NaN or infinite numbers in ``obj``.

    Arguments
    ---------
    obj : object
        Nested dicts and lists.
    prefix : str
        Path of ``obj`` itself.

    Returns
    -------
    list of str
        E.g. ``["devel.spearman.mean", "scores.2"]``.

    Example
    -------
    >>> non_finite_fields({"a": {"b": float("nan")}, "c": [1.0, float("inf")]})
    ['a.b', 'c.1']
    """
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list | tuple):
        items = enumerate(obj)
    else:
        is_number = isinstance(obj, float | int) and not isinstance(obj, bool)
        return [prefix] if is_number and not math.isfinite(obj) else []
    found = []
    for key, value in items:
        found += non_finite_fields(
            value, f"{prefix}.{key}" if prefix else str(key)
        )
    return found


def _find(obj, dotted):
    for part in dotted.split("."):
        obj = obj[int(part)] if isinstance(obj, list | tuple) else obj[part]
    return obj


def _nulled(obj):
    if isinstance(obj, dict):
        return {key: _nulled(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nulled(value) for value in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_results_json(path, results, headline=None):
    """Writes a results file with ``null`` for each non-finite score.

    A non-finite headline score (one the run is judged by) is also listed
    under ``"errors"`` and returned, for the caller to fail the run; other
    non-finite values (a per-gender score of a group with one clip) are
    undefined and written as ``null`` only.

    Arguments
    ---------
    path : str or os.PathLike
        The destination file (``results.json``).
    results : dict
        The results.
    headline : iterable of str, optional
        Dotted field names, matched at the end of a field's path
        (``"spearman.mean"`` matches ``devel.spearman.mean``); None: every
        field is a headline.

    Returns
    -------
    list of str
        One line per non-finite headline score (empty when all are finite).

    Example
    -------
    >>> path = getfixture("tmpdir") / "results.json"
    >>> nan = float("nan")
    >>> write_results_json(path, {"devel": {"ccc": nan, "wa": 0.5}})
    ['devel.ccc is nan (written as null)']
    >>> json.load(open(path))
    {'devel': {'ccc': None, 'wa': 0.5}, 'errors': ['devel.ccc is nan (written as null)']}
    >>> write_results_json(path, {"a": {"wa": 0.5, "per_gender": nan}}, ["wa"])
    []
    """
    headline = None if headline is None else tuple(headline)

    def is_headline(field):
        """Whether ``field`` is one the run is judged by."""
        return headline is None or any(
            field == name or field.endswith("." + name) for name in headline
        )

    errors = [
        f"{field} is {_find(results, field)} (written as null)"
        for field in non_finite_fields(results)
        if is_headline(field)
    ]
    clean = _nulled(results)
    if errors:
        clean["errors"] = list(clean.get("errors") or []) + errors
    write_json(path, clean)
    return errors
