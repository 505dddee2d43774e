"""A SpeechBrain Checkpointer whose checkpoints appear only when complete.

SpeechBrain's ``Checkpointer.save_checkpoint`` writes the meta file
(``CKPT.yaml``, which is what makes a folder count as a checkpoint) first and
the parameter files after it, so a process killed while saving leaves a
checkpoint that looks valid but is half-written, and the next run resumes from
it. Here the meta file is written under a temporary name and renamed into
place after every parameter file is on disk; an interrupted save leaves a
folder that is not a checkpoint, which the next save removes.

Two further guards keep a bad checkpoint from being trusted:

* **non-finite metrics and weights**: a checkpoint whose meta holds NaN or
  Inf, or whose modules hold a non-finite parameter, is never saved
  (:class:`NonFiniteCheckpointError`), and one written before (by an older
  version) is never ranked nor resumed (:meth:`AtomicCheckpointer.find_checkpoints`),
  so ``[0.5, 0.3, NaN, 0.1]`` gives ``[0.5, 0.3]`` as the best two;
* **unreadable checkpoints** (a truncated ``model.ckpt``): resuming names
  the checkpoint and falls back to the previous complete one, with a
  warning (:meth:`AtomicCheckpointer.recover_if_possible`); the unreadable
  one is renamed ``unreadable-CKPT+...`` so that no later step picks it.

Authors
 * emoshare_sb contributors 2026
"""

import logging
import math
import os
import pathlib
import pickle
import shutil
import zipfile

import torch
from speechbrain.utils.checkpoints import CKPT_PREFIX, METAFNAME, Checkpointer
from speechbrain.utils.distributed import if_main_process
from speechbrain.utils.logger import get_logger

from emoshare_sb.data.errors import DataPrepError

logger = get_logger(__name__)

PENDING_METAFNAME = METAFNAME + ".pending"
UNREADABLE_PREFIX = "unreadable-"
# What torch.load raises for a truncated or corrupt file.
UNREADABLE_ERRORS = (
    OSError,
    RuntimeError,
    EOFError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
)


class NonFiniteCheckpointError(DataPrepError):
    """A checkpoint that would hold a NaN/Inf metric or weight.

    A :class:`~emoshare_sb.data.errors.DataPrepError`: the usual cause is a
    clip with non-finite samples or an all-silent split, and the recipes stop
    on it with one line.
    """


class UnreadableCheckpointError(DataPrepError):
    """A checkpoint whose files cannot be loaded (truncated or corrupt)."""


def non_finite_meta(meta):
    """The keys of ``meta`` whose values are NaN or infinite numbers.

    Arguments
    ---------
    meta : mapping
        A checkpoint's meta.

    Returns
    -------
    list of str
        Sorted keys.

    Example
    -------
    >>> non_finite_meta({"spearman": float("nan"), "loss": 0.2, "x": "a"})
    ['spearman']
    """
    return sorted(
        str(key)
        for key, value in (meta or {}).items()
        if isinstance(value, int | float)
        and not isinstance(value, bool)
        and not math.isfinite(value)
    )


def is_finite_checkpoint(checkpoint):
    """Whether a checkpoint's meta holds only finite numbers.

    Arguments
    ---------
    checkpoint : speechbrain.utils.checkpoints.Checkpoint
        A checkpoint.

    Returns
    -------
    bool
        False for a NaN or infinite meta value.
    """
    return not non_finite_meta(checkpoint.meta)


class AtomicCheckpointer(Checkpointer):
    """Drop-in replacement for ``speechbrain.utils.checkpoints.Checkpointer``.

    Arguments are those of :class:`speechbrain.utils.checkpoints.Checkpointer`.

    Example
    -------
    >>> import torch
    >>> folder = getfixture("tmpdir")
    >>> model = torch.nn.Linear(2, 2)
    >>> checkpointer = AtomicCheckpointer(folder, {"model": model})
    >>> ckpt = checkpointer.save_checkpoint(meta={"score": 1.0})
    >>> sorted(p.name for p in ckpt.path.iterdir())
    ['CKPT.yaml', 'model.ckpt']
    >>> len(checkpointer.list_checkpoints())
    1
    """

    def _save_checkpoint_metafile(
        self, fpath, meta_to_include=None, end_of_epoch=True
    ):
        # The meta file is published by save_checkpoint once the parameters exist.
        pending = pathlib.Path(fpath).with_name(PENDING_METAFNAME)
        return super()._save_checkpoint_metafile(
            pending, meta_to_include or {}, end_of_epoch
        )

    def save_checkpoint(
        self, meta=None, end_of_epoch=True, name=None, verbosity=logging.INFO
    ):
        """Saves a checkpoint that becomes visible only after it is complete.

        Arguments
        ---------
        meta : mapping
            Added to the meta file.
        end_of_epoch : bool
            Whether the checkpoint is at the end of an epoch.
        name : str, optional
            A custom checkpoint name.
        verbosity : int
            Logging level.

        Returns
        -------
        Checkpoint or None
            The saved checkpoint (None on non-main processes).
        """
        bad = non_finite_meta(meta)
        if bad:
            raise NonFiniteCheckpointError(
                f"not saving a checkpoint in {self.checkpoints_dir}: "
                f"{', '.join(bad)} is not finite ({meta[bad[0]]})"
            )
        self.check_finite_parameters()
        if if_main_process():
            self.remove_incomplete_checkpoints()
        checkpoint = super().save_checkpoint(
            meta or {}, end_of_epoch, name, verbosity
        )
        if checkpoint is not None:
            path = pathlib.Path(checkpoint.path)
            _fsync_folder_files(path)
            os.replace(path / PENDING_METAFNAME, path / METAFNAME)
        return checkpoint

    def check_finite_parameters(self):
        """Raises :class:`NonFiniteCheckpointError` if a module holds a NaN/Inf parameter."""
        for name, obj in self.recoverables.items():
            if not isinstance(obj, torch.nn.Module):
                continue
            for parameter_name, tensor in obj.state_dict().items():
                if (
                    torch.is_tensor(tensor)
                    and tensor.is_floating_point()
                    and not torch.isfinite(tensor).all()
                ):
                    raise NonFiniteCheckpointError(
                        f"not saving a checkpoint in {self.checkpoints_dir}: "
                        f"{name}.{parameter_name} holds NaN or Inf values "
                        "(training diverged, or a training clip holds "
                        "non-finite samples)"
                    )

    def find_checkpoints(
        self,
        importance_key=None,
        max_key=None,
        min_key=None,
        ckpt_predicate=None,
        max_num_checkpoints=None,
    ):
        """As SpeechBrain's, leaving out every checkpoint with a NaN/Inf meta value.

        Arguments
        ---------
        importance_key : callable, optional
            The key function used in sorting.
        max_key, min_key : str, optional
            The meta key to rank by (highest or lowest first).
        ckpt_predicate : callable, optional
            Further filter.
        max_num_checkpoints : int, optional
            At most this many.

        Returns
        -------
        list of Checkpoint
            Best first.

        Example
        -------
        >>> import torch
        >>> checkpointer = AtomicCheckpointer(
        ...     getfixture("tmpdir"), {"model": torch.nn.Linear(1, 1)}
        ... )
        >>> for score in (0.5, 0.3, 0.1):
        ...     _ = checkpointer.save_checkpoint(meta={"rho": score})
        >>> found = checkpointer.find_checkpoints(
        ...     max_key="rho", max_num_checkpoints=2
        ... )
        >>> [c.meta["rho"] for c in found]
        [0.5, 0.3]
        """

        def predicate(checkpoint):
            """Finite meta, and the caller's own filter."""
            if not is_finite_checkpoint(checkpoint):
                return False
            return ckpt_predicate is None or ckpt_predicate(checkpoint)

        return super().find_checkpoints(
            importance_key=importance_key,
            max_key=max_key,
            min_key=min_key,
            ckpt_predicate=predicate,
            max_num_checkpoints=max_num_checkpoints,
        )

    def recover_if_possible(
        self,
        importance_key=None,
        max_key=None,
        min_key=None,
        ckpt_predicate=None,
    ):
        """Loads the best checkpoint that can be read, naming any that cannot.

        As SpeechBrain's, but a checkpoint whose files cannot be loaded (a
        truncated ``model.ckpt``) is named in a warning, renamed
        ``unreadable-<name>`` (on the main process) and the next one in the
        same order (the previous complete checkpoint) is loaded instead.

        Arguments
        ---------
        importance_key : callable, optional
            The key function used in sorting.
        max_key, min_key : str, optional
            The meta key to rank by.
        ckpt_predicate : callable, optional
            Further filter.

        Returns
        -------
        Checkpoint or None
            The checkpoint loaded; None when there is none.
        """
        candidates = self.find_checkpoints(
            importance_key, max_key, min_key, ckpt_predicate
        )
        for index, checkpoint in enumerate(candidates):
            try:
                self.load_checkpoint(checkpoint)
            except UNREADABLE_ERRORS as error:
                fallback = (
                    f"falling back to {candidates[index + 1].path.name}"
                    if index + 1 < len(candidates)
                    else "no earlier checkpoint: starting from scratch"
                )
                moved = self.set_aside(checkpoint)
                logger.warning(
                    f"Checkpoint {checkpoint.path} cannot be read "
                    f"({type(error).__name__}: {error}); {fallback}. It is "
                    f"kept as {moved}: delete it (rm -r '{moved}') when you "
                    "no longer need it."
                )
                continue
            return checkpoint
        logger.info("Would load a checkpoint here, but none found yet.")
        return None

    def set_aside(self, checkpoint):
        """Renames an unreadable checkpoint so that it is no longer found.

        Arguments
        ---------
        checkpoint : Checkpoint
            The checkpoint.

        Returns
        -------
        pathlib.Path
            Its new path (the old one on other processes).
        """
        path = pathlib.Path(checkpoint.path)
        target = path.with_name(UNREADABLE_PREFIX + path.name)
        if if_main_process() and path.exists():
            os.replace(path, target)
        return target

    def remove_incomplete_checkpoints(self):
        """Deletes checkpoint folders left without a meta file by an interrupted save.

        Returns
        -------
        list of pathlib.Path
            The folders removed.
        """
        removed = []
        if not self.checkpoints_dir.is_dir():
            return removed
        for path in self.checkpoints_dir.iterdir():
            if (
                path.is_dir()
                and path.name.startswith(CKPT_PREFIX)
                and not (path / METAFNAME).exists()
            ):
                logger.warning(
                    f"Removing incomplete checkpoint {path} (an interrupted save)"
                )
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed


def _fsync_folder_files(folder):
    for path in folder.iterdir():
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
