"""Skip-if-done bookkeeping for data preparation.

A preparation step stores the options it ran with next to its manifests; a
later run with the same options and all manifests present skips the work, and
a run with different options redoes it.
"""

import json
import os

from emoshare_sb.io import write_json

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
    >>> prepared_with(folder, {"a": 1}, ["train.csv"]), prepared_with(folder, {"a": 2}, ["train.csv"])
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
