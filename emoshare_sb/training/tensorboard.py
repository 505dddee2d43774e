"""TensorBoard logging of every epoch's metrics (the YAML's ``use_tensorboard``).

Authors
 * emoshare_sb contributors 2026
"""

from speechbrain.utils.distributed import main_process_only
from speechbrain.utils.train_logger import TensorboardLogger


class EpochTensorboardLogger(TensorboardLogger):
    """SpeechBrain's :class:`TensorboardLogger`, stepped by epoch and flushed.

    SpeechBrain's logger counts its calls as the step, so a resumed run
    starts again at step 1, and it leaves the events in the writer's buffer
    (up to two minutes). Here the step of every scalar is the epoch of
    ``stats_meta``, and each call is written to disk before it returns. Tags
    are SpeechBrain's: ``<metric>/<split>`` (``loss/train``,
    ``spearman/valid``) and the meta values (``epoch``, ``lr``).

    Arguments
    ---------
    save_dir : str
        The folder of the event files.

    Example
    -------
    >>> from tensorboard.backend.event_processing.event_accumulator import (
    ...     EventAccumulator,
    ... )
    >>> folder = str(getfixture("tmpdir"))
    >>> logger = EpochTensorboardLogger(folder)
    >>> logger.log_stats({"epoch": 3}, {"loss": 0.5}, {"loss": 0.7, "ccc": 0.2})
    >>> events = EventAccumulator(folder)
    >>> _ = events.Reload()
    >>> [(e.step, round(e.value, 3)) for e in events.Scalars("ccc/valid")]
    [(3, 0.2)]
    """

    @main_process_only
    def log_stats(
        self,
        stats_meta,
        train_stats=None,
        valid_stats=None,
        test_stats=None,
        verbose=False,
    ):
        """Writes the epoch's metrics at step ``stats_meta["epoch"]``."""
        epoch = stats_meta.get("epoch")
        if epoch is not None:  # the parent adds 1 to each step
            self.global_step["meta"] = epoch - 1
            for split, stats in (
                ("train", train_stats),
                ("valid", valid_stats),
                ("test", test_stats),
            ):
                for name in stats or {}:
                    self.global_step[split][name] = epoch - 1
        super().log_stats(stats_meta, train_stats, valid_stats, test_stats)
        self.writer.flush()
