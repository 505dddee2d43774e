"""A SpeechBrain Checkpointer whose checkpoints appear only when complete.

SpeechBrain's ``Checkpointer.save_checkpoint`` writes the meta file
(``CKPT.yaml``, which is what makes a folder count as a checkpoint) first and
the parameter files after it, so a process killed while saving leaves a
checkpoint that looks valid but is half-written, and the next run resumes from
it. Here the meta file is written under a temporary name and renamed into
place after every parameter file is on disk; an interrupted save leaves a
folder that is not a checkpoint, which the next save removes.

Authors
 * emoshare_sb contributors 2026
"""

import logging
import os
import pathlib
import shutil

from speechbrain.utils.checkpoints import CKPT_PREFIX, METAFNAME, Checkpointer
from speechbrain.utils.distributed import if_main_process
from speechbrain.utils.logger import get_logger

logger = get_logger(__name__)

PENDING_METAFNAME = METAFNAME + ".pending"


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
