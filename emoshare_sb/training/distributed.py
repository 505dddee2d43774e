"""The process group of a multi-process run, destroyed before Python exits.

SpeechBrain's :func:`~speechbrain.utils.distributed.ddp_init_group` creates
the group under ``torchrun`` and nothing destroys it. A process that exits
with a Gloo group alive can die with SIGABRT during interpreter shutdown:
Gloo's worker threads still hold work objects whose tensors, freed then,
need the GIL of an interpreter that is being torn down (pytorch/pytorch#179291).
On a 2-process CPU run this turned a finished run, results written, into a
failed one (exit -6), at random. :func:`start_process_group` registers
:func:`torch.distributed.destroy_process_group` to run at exit, while the
interpreter is still whole, on every way out: success, an error line
(``SystemExit``) or an exception.

Authors
 * emoshare_sb contributors 2026
"""

import atexit

import torch
from speechbrain.utils.distributed import ddp_init_group


def start_process_group(run_opts):
    """Joins the ``torchrun`` process group (if any); leaves it at exit.

    A no-op without ``torchrun`` (no ``RANK``/``LOCAL_RANK`` in the
    environment), as :func:`~speechbrain.utils.distributed.ddp_init_group`.

    Arguments
    ---------
    run_opts : dict
        SpeechBrain's run options (``distributed_backend`` is read).

    Returns
    -------
    bool
        Whether a process group is now initialised.

    Example
    -------
    >>> start_process_group(
    ...     {"distributed_backend": "gloo"}
    ... )  # not under torchrun
    False
    """
    ddp_init_group(run_opts)
    if not torch.distributed.is_initialized():
        return False
    atexit.register(leave_process_group)
    return True


def leave_process_group():
    """Destroys the default process group if it is still initialised.

    Local for Gloo: no process waits for another, so a process that fails
    alone still exits at once with its own status.

    Example
    -------
    >>> leave_process_group()  # no group: nothing to do
    """
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
