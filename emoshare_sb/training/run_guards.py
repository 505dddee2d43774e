"""Starts a recipe run: checks its command line, then claims its output folder.

A recipe's ``train.py`` hands its command line to :class:`RunStart` before it
loads any model or writes anything. In that order:

* **the device**: ``--device cuda`` without a GPU stops with "no CUDA
  device; use --device cpu";
* **the overrides and values**: unknown keys and wrong types
  (:func:`~emoshare_sb.training.hparams.check_overrides`), then values that
  would fail late (:func:`check_run_values`: ``number_of_epochs``,
  ``num_averaged_checkpoints``, ``batch_size`` ≥ 1, ``eval_hop`` > 0, ...),
  read from the YAML with references resolved and nothing built;
* **the data folder** (:func:`check_data_folder`), before a model hub error
  can hide it;
* **the output folder** (:meth:`RunStart.claim`): a lock
  (:class:`FolderLock`, ``fcntl.flock`` on ``run.lock`` in it, held by the
  main process for the whole run: a second run into the same folder stops at
  once naming the process that holds it, and a killed run's lock is released
  by the kernel), no symbolic link where the run writes
  (:func:`check_no_symlinks`), and, when the folder holds a started run
  (:func:`run_started`: checkpoints, results, or a fold that started), the
  same hyperparameters as the run that wrote them
  (:func:`changed_hparams`; ``--accept_changed_hparams True`` resumes with
  the new values and logs each one). ``hyperparams.yaml`` is written only
  after these checks.

:meth:`RunStart.remove_if_failed` removes an output folder that this start
created when the start fails, so that a bad path, a missing GPU or a bad
override leaves nothing behind. After training, :func:`check_train_batches`
(called when the datasets exist) refuses a ``batch_size`` that would give no
training step.

Authors
 * emoshare_sb contributors 2026
"""

import contextlib
import fcntl
import os
import shutil

import ruamel.yaml
from speechbrain.utils.checkpoints import CKPT_PREFIX, METAFNAME
from speechbrain.utils.distributed import if_main_process
from speechbrain.utils.logger import get_logger

from emoshare_sb.training.hparams import check_overrides, overrides_as_dict
from emoshare_sb.training.run_checks import (
    RunStartError,
    check_data_folder,
    check_device,
    check_no_symlinks,
    check_run_values,
    read_plan,
)

logger = get_logger(__name__)

ACCEPT_CHANGED_HPARAMS = "accept_changed_hparams"
LOCK_FILE = "run.lock"
HPARAMS_FILE = "hyperparams.yaml"
RESULTS_FILE = "results.json"
# Files of the output folder that SpeechBrain opens for writing (following a
# symbolic link), next to the copy of the recipe script.
RUN_FILES = ("hyperparams.yaml", "env.log", "log.txt", "train_log.txt")


def has_checkpoints(save_folder):
    """Whether ``save_folder`` holds a complete SpeechBrain checkpoint.

    Arguments
    ---------
    save_folder : str
        The checkpointer's folder.

    Returns
    -------
    bool
        True when a ``CKPT+*`` folder with its ``CKPT.yaml`` is there.
    """
    if not os.path.isdir(save_folder):
        return False
    return any(
        name.startswith(CKPT_PREFIX)
        and os.path.isfile(os.path.join(save_folder, name, METAFNAME))
        for name in os.listdir(save_folder)
    )


def run_started(folder, save_folder):
    """Whether ``folder`` holds a run whose hyperparameters a new run must keep.

    A run has started when its ``save_folder`` holds a checkpoint, when the
    folder holds its ``results.json`` (a finished run; an openSMILE run has
    no checkpoints), or when a subfolder holds a ``hyperparams.yaml`` (a
    cross-validation folder whose folds have started).

    Arguments
    ---------
    folder : str
        The run's output folder.
    save_folder : str
        Its checkpointer's folder.

    Returns
    -------
    bool
        True for a started run.

    Example
    -------
    >>> folder = getfixture("tmpdir")
    >>> run_started(str(folder), str(folder / "save"))
    False
    >>> _ = (folder / "results.json").write_text("{}", "utf-8")
    >>> run_started(str(folder), str(folder / "save"))
    True
    """
    if has_checkpoints(save_folder):
        return True
    if os.path.isfile(os.path.join(folder, RESULTS_FILE)):
        return True
    if not os.path.isdir(folder):
        return False
    return any(
        os.path.isfile(os.path.join(folder, name, HPARAMS_FILE))
        for name in os.listdir(folder)
    )


def _canonical(value):
    """A ruamel value as plain data, tags kept, for comparing."""
    tag = getattr(getattr(value, "tag", None), "value", None)
    if isinstance(value, dict):
        plain = {str(k): _canonical(v) for k, v in value.items()}
    elif isinstance(value, list | tuple):
        plain = [_canonical(v) for v in value]
    elif hasattr(value, "value") and tag:  # a tagged scalar
        plain = str(value.value)
    else:
        plain = value
    return (tag, plain) if tag else plain


def _shown(value):
    """A short text for a changed value."""
    text = str(value[1] if isinstance(value, tuple) else value)
    return text if len(text) <= 60 else text[:57] + "..."


def changed_hparams(saved_file, plan, ignore=()):
    """The top-level keys whose values differ from a run's ``hyperparams.yaml``.

    Arguments
    ---------
    saved_file : str
        The ``hyperparams.yaml`` the run wrote when it started.
    plan : dict
        The values of this start (:func:`read_plan`).
    ignore : iterable of str
        Keys that may differ.

    Returns
    -------
    list of str
        ``"key: old -> new"`` per difference, in the YAML's order.

    Example
    -------
    >>> path = getfixture("tmpdir") / "hyperparams.yaml"
    >>> _ = path.write_text(
    ...     "# Generated\\nlr: 0.001\\nbatch_size: 8\\n", "utf-8"
    ... )
    >>> changed_hparams(str(path), {"lr": 0.5, "batch_size": 8})
    ['lr: 0.001 -> 0.5']
    """
    with open(saved_file, encoding="utf-8") as handle:
        saved = dict(ruamel.yaml.YAML(typ="rt").load(handle) or {})
    changes = []
    ignore = set(ignore)
    for key in list(saved) + [k for k in plan if k not in saved]:
        if key in ignore:
            continue
        old = _canonical(saved[key]) if key in saved else None
        new = _canonical(plan[key]) if key in plan else None
        if old != new:
            changes.append(
                f"{key}: {_shown(old) if key in saved else '(absent)'} -> "
                f"{_shown(new) if key in plan else '(absent)'}"
            )
    return changes


class FolderLock:
    """An exclusive ``fcntl.flock`` on ``<folder>/run.lock`` held while the run lives.

    The kernel releases it when the process ends, however it ends, so a
    killed run never blocks the next one. The lock file holds the PID of the
    process that holds it, for the message of the run that finds it taken.

    Arguments
    ---------
    folder : str
        The output folder (created if needed).

    Example
    -------
    >>> folder = str(getfixture("tmpdir"))
    >>> lock = FolderLock(folder)
    >>> lock.acquire()
    >>> FolderLock(folder).acquire()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    emoshare_sb.training.run_checks.RunStartError: .../run.lock: the output folder is in use by another run (process ...); wait for it to finish or choose another --output_folder
    >>> lock.release()
    >>> FolderLock(folder).acquire()
    """

    def __init__(self, folder):
        self.path = os.path.join(folder, LOCK_FILE)
        self.handle = None

    def acquire(self):
        """Takes the lock, or raises :class:`RunStartError` naming its holder."""
        check_no_symlinks(os.path.dirname(self.path), [LOCK_FILE])
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunStartError(
                f"{self.path}: the output folder is in use by another run "
                f"(process {holder}); wait for it to finish or choose another "
                "--output_folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self.handle = handle

    def release(self):
        """Releases the lock (the process ending does the same)."""
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


class RunStart:
    """The start-up checks of one recipe run, before anything is loaded or written.

    Arguments
    ---------
    hparams_file : str
        The recipe's YAML.
    overrides : str or dict
        The command-line overrides (``speechbrain.parse_arguments``);
        ``accept_changed_hparams`` is taken out of them (a run option, not a
        hyperparameter).
    run_opts : dict
        SpeechBrain's run options (``device``).

    Raises
    ------
    RunStartError, HparamsError
        For a device, override, value or data folder that cannot work.

    Example
    -------
    >>> path = getfixture("tmpdir") / "h.yaml"
    >>> _ = path.write_text("number_of_epochs: 2\\n", "utf-8")
    >>> start = RunStart(str(path), "number_of_epochs: 3", {"device": "cpu"})
    >>> start.overrides, start.plan["number_of_epochs"]
    ({'number_of_epochs': 3}, 3)
    >>> RunStart(str(path), "number_of_epochs: 0", {})
    Traceback (most recent call last):
    ...
    emoshare_sb.training.run_checks.RunStartError: --number_of_epochs must be at least 1 (epochs to train), got 0
    """

    def __init__(self, hparams_file, overrides, run_opts):
        self.hparams_file = hparams_file
        overrides = overrides_as_dict(overrides)
        accept = overrides.pop(ACCEPT_CHANGED_HPARAMS, False)
        if not isinstance(accept, bool):
            raise RunStartError(
                f"--{ACCEPT_CHANGED_HPARAMS} expects True or False, got {accept!r}"
            )
        self.accept_changed = accept
        self.overrides = overrides
        check_device((run_opts or {}).get("device"))
        check_overrides(hparams_file, overrides)
        self.plan = read_plan(hparams_file, overrides)
        check_run_values(self.plan)
        check_data_folder(self.plan)
        self.folder = None
        self.created = False
        self.lock = None
        self.changes = []

    def claim(
        self,
        overrides,
        folder_key="output_folder",
        script=None,
        ignore=(),
        lock=True,
        compare=True,
    ):
        """Checks and locks the output folder; call just before writing into it.

        Arguments
        ---------
        overrides : dict
            The final overrides (encoder widths resolved), as
            ``hyperparams.yaml`` will record them.
        folder_key : str
            The YAML key of the folder (``fold_folder`` for an IEMOCAP fold).
        script : str, optional
            The recipe script, whose copy goes into the folder.
        ignore : iterable of str
            Keys that may differ from the run's saved ``hyperparams.yaml``.
        lock : bool
            Whether to lock the folder (on the main process only).
        compare : bool
            Whether to compare with the saved ``hyperparams.yaml`` of a
            started run (:func:`run_started`).

        Raises
        ------
        RunStartError
            For a folder in use, a symbolic link, or changed hyperparameters
            of a started run (unless ``--accept_changed_hparams True``).
        """
        plan = read_plan(self.hparams_file, overrides)
        self.folder = str(plan[folder_key])
        names = list(RUN_FILES) + ([os.path.basename(script)] if script else [])
        check_no_symlinks(self.folder, names)
        save_folder = str(
            plan.get("save_folder") or os.path.join(self.folder, "save")
        )
        saved = os.path.join(self.folder, HPARAMS_FILE)
        if (
            compare
            and os.path.isfile(saved)
            and run_started(self.folder, save_folder)
        ):
            changes = changed_hparams(saved, plan, ignore)
            if changes and not self.accept_changed:
                raise RunStartError(
                    f"{self.folder} holds a run started with other "
                    f"hyperparameters ({'; '.join(changes)}): rerun with "
                    "the same values, choose another --output_folder, or add "
                    f"--{ACCEPT_CHANGED_HPARAMS} True to resume with the new "
                    "ones"
                )
            self.changes = changes
        if if_main_process():
            if not os.path.isdir(self.folder):
                os.makedirs(self.folder)
                self.created = True
            if lock:
                self.lock = FolderLock(self.folder)
                self.lock.acquire()

    def for_folder(self):
        """A copy of these checks for another folder of the same run (a fold).

        Returns
        -------
        RunStart
            With no folder claimed yet.
        """
        copy = RunStart.__new__(RunStart)
        copy.__dict__.update(self.__dict__)
        copy.folder, copy.created, copy.lock = None, False, None
        copy.changes = []
        return copy

    def log_changes(self):
        """Logs each accepted hyperparameter change (after the run's log file is set up)."""
        for change in self.changes:
            logger.warning(
                f"Resuming {self.folder} with a changed hyperparameter "
                f"(--{ACCEPT_CHANGED_HPARAMS} True): {change}; values "
                "held in the checkpoint (optimizer state, learning rate, "
                "epoch counter) are restored from it"
            )

    def keep(self):
        """From now on the folder stays, whatever fails (the run has started)."""
        self.created = False

    def folders_to_remove(self):
        """The folder, if this start created it and it is not kept yet.

        Returns
        -------
        list of str
            Zero or one folder.
        """
        return [self.folder] if self.created else []

    @contextlib.contextmanager
    def remove_if_failed(self, also=()):
        """Removes the output folder this start created if the block fails.

        Arguments
        ---------
        also : iterable of str
            Further folders this start created, removed with it.
        """
        try:
            yield
        except BaseException:
            if self.created:
                if self.lock is not None:
                    self.lock.release()
                shutil.rmtree(self.folder, ignore_errors=True)
                self.created = False
            for folder in also:
                shutil.rmtree(folder, ignore_errors=True)
            raise
