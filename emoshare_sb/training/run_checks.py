"""Checks a recipe's command line before it loads a model or writes anything.

:class:`~emoshare_sb.training.run_guards.RunStart` calls these in order:

* **the device** (:func:`check_device`): ``--device cuda`` without a GPU
  stops with "no CUDA device; use --device cpu";
* **the values** (:func:`check_run_values`) that would fail late:
  ``number_of_epochs``, ``num_averaged_checkpoints``, ``batch_size`` ≥ 1,
  ``eval_hop`` > 0, ..., read from the YAML with references resolved and
  nothing built (:func:`read_plan`);
* **the data folder** (:func:`check_data_folder`), before a model hub error
  can hide it;
* **no symbolic link** where the run writes (:func:`check_no_symlinks`).

After data preparation, :func:`check_train_batches` refuses a ``batch_size``
that would give no training step. Each failure is a :class:`RunStartError`:
one line, exit status 2.

Authors
 * emoshare_sb contributors 2026
"""

import os

import ruamel.yaml
import torch
from hyperpyyaml import resolve_references

from emoshare_sb.utils.errors import UserError


class RunStartError(UserError):
    """A run that cannot start as asked (device, values, output folder)."""


def check_device(device):
    """Fails when ``device`` names CUDA on a machine without a CUDA device.

    Arguments
    ---------
    device : str
        The run's ``--device`` (``cpu``, ``cuda``, ``cuda:1``).

    Raises
    ------
    RunStartError
        "no CUDA device; use --device cpu".

    Example
    -------
    >>> check_device("cpu")
    """
    device = str(device or "cpu")
    if not device.startswith("cuda"):
        return
    if not torch.cuda.is_available():
        raise RunStartError("no CUDA device; use --device cpu")
    index = device.partition(":")[2]
    if index and int(index) >= torch.cuda.device_count():
        raise RunStartError(
            f"--device {device}: this machine has "
            f"{torch.cuda.device_count()} CUDA device(s); use --device cuda:0"
        )


def read_plan(hparams_file, overrides):
    """The YAML's values with references and overrides resolved, nothing built.

    Arguments
    ---------
    hparams_file : str
        The recipe's YAML.
    overrides : dict
        The command-line overrides.

    Returns
    -------
    dict
        Top-level key to value (tagged values as ruamel reads them).

    Raises
    ------
    RunStartError
        For a ``!PLACEHOLDER`` left unset.

    Example
    -------
    >>> path = getfixture("tmpdir") / "h.yaml"
    >>> _ = path.write_text("seed: 1\\nout: !ref r/<seed>\\n", "utf-8")
    >>> read_plan(str(path), {"seed": 2})["out"]
    'r/2'
    """
    try:
        with open(hparams_file, encoding="utf-8") as handle:
            resolved = resolve_references(handle, overrides)
    except ValueError as error:  # a !PLACEHOLDER left unset
        raise RunStartError(" ".join(str(arg) for arg in error.args)) from error
    return dict(ruamel.yaml.YAML(typ="rt").load(resolved) or {})


# key: (smallest allowed value, strictly greater than it?, what it means)
_LOWER_BOUNDS = {
    "number_of_epochs": (1, False, "epochs to train"),
    "num_averaged_checkpoints": (1, False, "checkpoints to keep and average"),
    "batch_size": (1, False, "clips per batch"),
    "sample_rate": (0, True, "Hz"),
    "train_window": (0, False, "seconds; 0 = whole clip"),
    "eval_window": (0, False, "seconds; 0 = whole clip"),
    "max_batch_seconds": (0, True, "seconds of audio per batch"),
    "max_eval_batch_seconds": (0, False, "seconds; 0 = no bound"),
    "lr": (0, True, "the learning rate"),
}


def check_run_values(plan):
    """Fails on a value that would only fail after loading or training.

    Arguments
    ---------
    plan : dict
        As :func:`read_plan` returns it; keys the YAML lacks are not checked.

    Raises
    ------
    RunStartError
        Naming the option, the value and the allowed range.

    Example
    -------
    >>> check_run_values(
    ...     {"number_of_epochs": 2, "eval_window": 0, "eval_hop": 0}
    ... )
    >>> check_run_values({"num_averaged_checkpoints": 0})
    Traceback (most recent call last):
    ...
    emoshare_sb.training.run_checks.RunStartError: --num_averaged_checkpoints must be at least 1 (checkpoints to keep and average), got 0
    >>> check_run_values({"eval_window": 4.0, "eval_hop": 0})
    Traceback (most recent call last):
    ...
    emoshare_sb.training.run_checks.RunStartError: --eval_hop must be above 0 seconds when --eval_window is 4.0, got 0
    """
    for key, (bound, strict, meaning) in _LOWER_BOUNDS.items():
        if key not in plan or plan[key] is None:
            continue
        value = plan[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue  # a tagged value or a type check_overrides reports
        if value != value or value in (float("inf"), float("-inf")):
            raise RunStartError(f"--{key} must be a finite number, got {value}")
        if value < bound or (strict and value == bound):
            relation = "above" if strict else "at least"
            raise RunStartError(
                f"--{key} must be {relation} {bound} ({meaning}), got {value}"
            )
    window, hop = plan.get("eval_window"), plan.get("eval_hop")
    if isinstance(window, int | float) and window > 0:
        if not isinstance(hop, int | float) or not 0 < hop < float("inf"):
            raise RunStartError(
                f"--eval_hop must be above 0 seconds when --eval_window is "
                f"{window}, got {hop}"
            )


def check_data_folder(plan):
    """Fails when the YAML's ``data_folder`` is not a folder (unless ``skip_prep``).

    Arguments
    ---------
    plan : dict
        As :func:`read_plan` returns it.

    Raises
    ------
    RunStartError
        Saying that the data folder does not exist (or is not a folder).

    Example
    -------
    >>> check_data_folder({"data_folder": str(getfixture("tmpdir"))})
    >>> check_data_folder({"data_folder": "/nonexistent/corpus"})
    Traceback (most recent call last):
    ...
    emoshare_sb.training.run_checks.RunStartError: --data_folder '/nonexistent/corpus' does not exist: give the corpus folder
    """
    folder = plan.get("data_folder")
    if not isinstance(folder, str) or not folder or plan.get("skip_prep"):
        return  # with skip_prep the manifests name the audio files
    if not os.path.exists(folder):
        raise RunStartError(
            f"--data_folder '{folder}' does not exist: give the corpus folder"
        )
    if not os.path.isdir(folder):
        raise RunStartError(
            f"--data_folder '{folder}' is a file, not a folder: give the "
            "corpus folder"
        )


def check_no_symlinks(folder, names):
    """Fails when a file the run writes in ``folder`` is a symbolic link.

    Writing through it would overwrite (or append to) its target, outside the
    output folder.

    Arguments
    ---------
    folder : str
        The output folder.
    names : iterable of str
        File names in it that the run writes.

    Raises
    ------
    RunStartError
        Naming the link and its target.

    Example
    -------
    >>> import os
    >>> tmp = str(getfixture("tmpdir"))
    >>> check_no_symlinks(tmp, ["log.txt"])
    >>> os.symlink("/etc/hostname", os.path.join(tmp, "log.txt"))
    >>> check_no_symlinks(tmp, ["log.txt"])
    Traceback (most recent call last):
    ...
    emoshare_sb.training.run_checks.RunStartError: .../log.txt is a symbolic link (to /etc/hostname): the run will not write through it; remove it
    """
    for name in names:
        path = os.path.join(folder, name)
        if os.path.islink(path):
            raise RunStartError(
                f"{path} is a symbolic link (to {os.readlink(path)}): the run "
                "will not write through it; remove it"
            )


def check_train_batches(num_clips, loader_options):
    """Fails when ``drop_last`` and a batch larger than the training set leave no step.

    Arguments
    ---------
    num_clips : int
        Clips in the training set.
    loader_options : dict
        The training dataloader options (``batch_size``, ``drop_last``).

    Raises
    ------
    RunStartError
        Saying what to do.

    Example
    -------
    >>> check_train_batches(12, {"batch_size": 4, "drop_last": True})
    >>> check_train_batches(12, {"batch_size": 16, "drop_last": True})
    Traceback (most recent call last):
    ...
    emoshare_sb.training.run_checks.RunStartError: --batch_size 16 is larger than the training set (12 clips) and drop_last is on: no training step would run; use --batch_size 12 or less
    """
    batch_size = (loader_options or {}).get("batch_size")
    if not (loader_options or {}).get("drop_last") or not batch_size:
        return
    if batch_size > num_clips:
        raise RunStartError(
            f"--batch_size {batch_size} is larger than the training set "
            f"({num_clips} clips) and drop_last is on: no training step would "
            f"run; use --batch_size {max(num_clips, 1)} or less"
        )
