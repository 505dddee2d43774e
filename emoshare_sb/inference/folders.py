"""Model folders: what an export or an experiment holds, and the helpers that read and write them.

The file names (``hyperparams.yaml``, ``save/averaged/``, ``encoder/``), the
strict weight loader the inference YAML's pretrainer uses (``torch.load``
with ``weights_only=True``), the round-trip YAML helpers that copy an
experiment's model definitions without evaluating them, the checks on an
export's target folder, and a tiny experiment for doctests and tests.

Authors
 * emoshare_sb contributors 2026
"""

import io
import os
import shutil
import tempfile

import ruamel.yaml
import torch
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar

HPARAMS_FILE = "hyperparams.yaml"
AVERAGED_FOLDER = os.path.join("save", "averaged")
ENCODER_FOLDER = "encoder"

# Windows long enough to hold a whole ComParE clip (1.2 s to 8 s), so that
# clips like the training data are scored whole, as the recipe scores them.
DEFAULT_WINDOW = 8.0
DEFAULT_HOP = 4.0


def load_state_dict_strict(module, path):
    """Pretrainer hook: loads a state dict and fails on any missing or extra key.

    SpeechBrain's default transfer is non-strict and only logs mismatches,
    which would leave part of a model with random weights if the inference
    hyperparameters did not match the checkpoint.

    Arguments
    ---------
    module : torch.nn.Module
        Receives the parameters.
    path : str
        A ``torch.save``-d state dict.

    Example
    -------
    >>> path = str(getfixture("tmpdir") / "w.ckpt")
    >>> torch.save(torch.nn.Linear(2, 3).state_dict(), path)
    >>> load_state_dict_strict(torch.nn.Linear(2, 3), path)
    >>> try:
    ...     load_state_dict_strict(torch.nn.Linear(2, 4), path)
    ... except RuntimeError:
    ...     print("size mismatch")
    size mismatch
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    module.load_state_dict(state, strict=True)


def is_experiment_folder(path):
    """Tells whether ``path`` is a trained experiment folder (not an export).

    Arguments
    ---------
    path : str
        A folder.

    Returns
    -------
    bool
        True when it holds ``hyperparams.yaml`` and ``save/averaged/model.ckpt``.
    """
    return os.path.isfile(os.path.join(path, HPARAMS_FILE)) and os.path.isfile(
        os.path.join(path, AVERAGED_FOLDER, "model.ckpt")
    )


def averaged_checkpoints(experiment_folder):
    """Names of the averaged module checkpoints of an experiment.

    Arguments
    ---------
    experiment_folder : str
        A recipe's ``--output_folder``.

    Returns
    -------
    list of str
        Recoverable names with a ``save/averaged/<name>.ckpt`` (``model``,
        and ``encoder`` for a fine-tuned encoder), sorted.
    """
    folder = os.path.join(experiment_folder, AVERAGED_FOLDER)
    return sorted(
        name[: -len(".ckpt")]
        for name in os.listdir(folder)
        if name.endswith(".ckpt")
    )


def _default_windows(
    tree, window, hop, default_window=DEFAULT_WINDOW, default_hop=DEFAULT_HOP
):
    """Window and hop in seconds (None, None: whole clips) for an experiment."""
    if window is None:
        if (
            tree.get("eval_window") or 0
        ) > 0:  # the recipe evaluated in windows
            window = tree["eval_window"]
            hop = tree.get("eval_hop") if hop is None else hop
        else:
            window = default_window
            hop = default_hop if hop is None else hop
    if window <= 0:
        return None, None
    hop = window / 2 if hop is None else hop
    if not 0 < hop <= window:
        raise ValueError(
            f"hop must be in (0, window], got window={window}, hop={hop}"
        )
    return float(window), float(hop)


def _yaml():
    yaml = ruamel.yaml.YAML()  # round trip: keeps the HyperPyYAML tags
    yaml.width = 100
    return yaml


def _read_yaml_tree(path):
    with open(path, encoding="utf-8") as handle:
        tree = _yaml().load(handle)
    _strip_comments(tree)
    return tree


def _strip_comments(node, seen=None):
    """Drops comments, which would otherwise land next to the wrong keys."""
    seen = set() if seen is None else seen
    if id(node) in seen or not isinstance(node, CommentedMap | CommentedSeq):
        return
    seen.add(id(node))
    node.ca.items.clear()
    node.ca.comment = None
    for child in node.values() if isinstance(node, CommentedMap) else node:
        _strip_comments(child, seen)


def _ref(text):
    return TaggedScalar(text, tag="!ref")


def _experiment_encoder(experiment_folder, encoder_source=None):
    """Instantiates the experiment's encoder from its YAML definition."""
    from hyperpyyaml import load_hyperpyyaml

    tree = _read_yaml_tree(os.path.join(experiment_folder, HPARAMS_FILE))
    node = tree["encoder"]
    node["freeze"] = True
    if encoder_source is not None:
        node["source"] = os.fspath(encoder_source)
    stream = io.StringIO()
    _yaml().dump(CommentedMap(encoder=node), stream)
    return load_hyperpyyaml(stream.getvalue())["encoder"]


def _export_info(experiment_folder, validation_split="devel"):
    info = {"experiment_folder": os.path.abspath(experiment_folder)}
    results = os.path.join(experiment_folder, "results.json")
    if os.path.isfile(results):
        import json

        with open(results) as handle:
            summary = json.load(handle)
        info.update(
            {
                "ssl_source": summary.get("ssl_source"),
                "averaged_from": summary.get("averaged_from"),
                validation_split: summary.get(validation_split),
            }
        )
    return info


def _replace_folder(staging, destination):
    """Moves ``staging`` to ``destination``, replacing it if it exists."""
    if not os.path.exists(destination) or not os.listdir(destination):
        os.replace(staging, destination)
        return
    old = tempfile.mkdtemp(
        prefix=".old-export-", dir=os.path.dirname(destination)
    )
    os.replace(destination, os.path.join(old, "old"))
    os.replace(staging, destination)
    shutil.rmtree(old, ignore_errors=True)


def _tiny_experiment(
    folder, ssl_source, emotions=("Calm", "Sad"), encoder_dim=32
):
    """Writes an untrained experiment folder (random head), for doctests and tests."""
    import textwrap

    os.makedirs(os.path.join(folder, AVERAGED_FOLDER), exist_ok=True)
    text = textwrap.dedent(
        f"""\
        emotions: {list(emotions)}
        sample_rate: 16000
        encoder: !new:emoshare_sb.lobes.ssl.SSLEncoder
            source: {ssl_source}
            save_path: {folder}/pretrained
        pooling: !new:emoshare_sb.nnet.pooling.MaskedAttentivePooling
            input_size: {encoder_dim}
        head: !new:emoshare_sb.nnet.heads.MLPHead
            input_size: {encoder_dim}
            output_size: {len(emotions)}
            hidden_size: 8
        model: !new:torch.nn.ModuleList
            - [!ref <pooling>, !ref <head>]
        modules:
            encoder: !ref <encoder>
            pooling: !ref <pooling>
            head: !ref <head>
        """
    )
    with open(os.path.join(folder, HPARAMS_FILE), "w") as handle:
        handle.write(text)
    from hyperpyyaml import load_hyperpyyaml

    model = load_hyperpyyaml(text)["model"]
    torch.save(
        model.state_dict(), os.path.join(folder, AVERAGED_FOLDER, "model.ckpt")
    )
    return folder


def check_export_target(experiment_folder, export_folder, overwrite=False):
    """Refuses an export target that would destroy the run or overwrite a folder.

    Arguments
    ---------
    experiment_folder : str
        The run exported.
    export_folder : str
        The target.
    overwrite : bool
        Whether a non-empty target may be replaced.

    Raises
    ------
    ValueError
        The target is the run, lies inside it, or contains it (replacing it
        would delete the run).
    FileExistsError
        The target is a non-empty folder and ``overwrite`` is False.

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> run = str(tmp / "run")
    >>> check_export_target(run, str(tmp / "model"))
    >>> for target in (run, str(tmp), os.path.join(run, "model")):
    ...     try:
    ...         check_export_target(run, target, overwrite=True)
    ...     except ValueError as error:
    ...         print(str(error).split("'")[2].strip())
    is the experiment
    contains the experiment
    lies inside the experiment
    """
    source = os.path.realpath(experiment_folder)
    target = os.path.realpath(export_folder)
    relation = None
    if target == source:
        relation = "is"
    elif os.path.commonpath([source, target]) == target:
        relation = "contains"
    elif os.path.commonpath([source, target]) == source:
        relation = "lies inside"
    if relation:
        raise ValueError(
            f"the export target '{export_folder}' {relation} the experiment "
            f"'{experiment_folder}': exporting there would delete the run; "
            "choose a folder outside it (e.g. models/<name>)"
        )
    if os.path.exists(target) and not os.path.isdir(target):
        raise FileExistsError(
            f"the export target '{export_folder}' is a file, not a folder"
        )
    if os.path.isdir(target) and os.listdir(target) and not overwrite:
        raise FileExistsError(
            f"'{export_folder}' is a non-empty folder; pass --overwrite "
            "(overwrite=True in Python) to replace it"
        )
