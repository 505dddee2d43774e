"""Quiet, readable run logs: two SpeechBrain messages kept where they belong.

- ``torchvision is not available - cannot save figures``: SpeechBrain logs it
  when :mod:`speechbrain.utils.train_logger` is imported without torchvision,
  for its ``ProgressSampleLogger`` (image samples during training), which no
  recipe here uses. The reports and plots are drawn with matplotlib and are
  saved either way, so the message is dropped.
- The output of ``pip freeze`` (and of every other shell command SpeechBrain
  runs through ``run_shell``) is logged at DEBUG level, so that it opened
  every ``log.txt`` with about 100 package lines. The same list is written
  to the experiment's ``env.log``, its one place; DEBUG records of
  :mod:`speechbrain.utils.superpowers` are dropped from the log.

The filters sit on those two loggers (not on handlers), so they hold whatever
logging configuration SpeechBrain applies later. :func:`quiet_speechbrain_logs`
runs when :mod:`emoshare_sb` is imported, before any recipe loads its YAML.

Authors
 * emoshare_sb contributors 2026
"""

import logging

TRAIN_LOGGER = "speechbrain.utils.train_logger"
SHELL_LOGGER = "speechbrain.utils.superpowers"
TORCHVISION_MESSAGE = "torchvision is not available - cannot save figures"


class _DropTorchvisionNotice(logging.Filter):
    """Drops SpeechBrain's notice that image samples cannot be saved."""

    def filter(self, record):
        """False for the torchvision notice.

        Arguments
        ---------
        record : logging.LogRecord
            A record of the train logger's module.

        Returns
        -------
        bool
            Whether to keep the record.
        """
        return not str(record.msg).startswith(TORCHVISION_MESSAGE)


class _DropShellOutput(logging.Filter):
    """Drops the DEBUG record of a shell command's output (``pip freeze``)."""

    def filter(self, record):
        """False for DEBUG records (a command's output).

        Arguments
        ---------
        record : logging.LogRecord
            A record of ``run_shell``.

        Returns
        -------
        bool
            Whether to keep the record.
        """
        return record.levelno > logging.DEBUG


def quiet_speechbrain_logs():
    """Adds the two filters (once; calling again changes nothing).

    Example
    -------
    >>> quiet_speechbrain_logs()
    >>> logger = logging.getLogger(SHELL_LOGGER)
    >>> logger.filter(logging.makeLogRecord({"levelno": logging.DEBUG}))
    False
    >>> bool(logger.filter(logging.makeLogRecord({"levelno": logging.INFO})))
    True
    >>> notice = logging.makeLogRecord({"msg": TORCHVISION_MESSAGE})
    >>> logging.getLogger(TRAIN_LOGGER).filter(notice)
    False
    """
    for name, kind in (
        (TRAIN_LOGGER, _DropTorchvisionNotice),
        (SHELL_LOGGER, _DropShellOutput),
    ):
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())
