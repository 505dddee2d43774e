"""Bookkeeping shared by the data preparations.

A preparation step stores the options it ran with next to its manifests; a
later run with the same options and all manifests present skips the work, and
a run with different options redoes it. Corpora whose copies name a folder in
several ways are searched with :func:`find_folder`.

Authors
 * emoshare_sb contributors 2026
"""

import json
import os

from emoshare_sb.data.errors import DataPrepError
from emoshare_sb.utils.io import write_json

OPTIONS_FILE = "prepare_options.json"


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
