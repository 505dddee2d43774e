"""Learning-rate schedules with the interface of SpeechBrain's ``NewBobScheduler``.

:class:`emoshare_sb.training.brain.EmotionBrain` steps each scheduler of
``lr_schedulers`` once per epoch with the validation loss, as
``scheduler(metric) -> (old_lr, new_lr)``. SpeechBrain's ``NewBobScheduler``
compares each epoch with the one before; Atmaja & Sasou's released code
uses PyTorch's ``ReduceLROnPlateau``, which compares with the best epoch so
far. :class:`PlateauScheduler` is that rule behind the NewBob interface
(SpeechBrain's own ``ReduceLROnPlateau`` takes optimizers and epochs, not
this interface).

Authors
 * emoshare_sb contributors 2026
"""

import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)


@register_checkpoint_hooks
class PlateauScheduler:
    """Multiplies the value by ``factor`` after ``patience`` epochs without a new best.

    The rule of ``torch.optim.lr_scheduler.ReduceLROnPlateau`` in ``min``
    mode with a relative threshold: an epoch is better when its metric is
    below ``best * (1 - threshold)``; after more than ``patience`` epochs in
    a row that are not, the value is multiplied by ``factor`` and the count
    starts again.

    Arguments
    ---------
    initial_value : float
        The starting learning rate.
    factor : float
        The multiplier at each reduction.
    patience : int
        Epochs without improvement tolerated before a reduction.
    threshold : float
        Relative improvement that counts as better.

    Example
    -------
    >>> scheduler = PlateauScheduler(1.0, factor=0.5, patience=1)
    >>> [scheduler(loss)[1] for loss in (3.0, 2.0, 2.5, 2.5, 2.5, 1.0)]
    [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    """

    def __init__(self, initial_value, factor=0.5, patience=5, threshold=1e-4):
        self.hyperparam_value = initial_value
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.best = float("inf")
        self.num_bad_epochs = 0

    def __call__(self, metric_value):
        """Returns the current and the new value after an epoch's ``metric_value``.

        Arguments
        ---------
        metric_value : float
            The epoch's validation loss (lower is better).

        Returns
        -------
        tuple of float
            ``(old_value, new_value)``.
        """
        old_value = self.hyperparam_value
        if metric_value < self.best * (1.0 - self.threshold):
            self.best = float(metric_value)
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.num_bad_epochs > self.patience:
            self.hyperparam_value = old_value * self.factor
            self.num_bad_epochs = 0
        return old_value, self.hyperparam_value

    @mark_as_saver
    def save(self, path):
        """Saves the schedule's state."""
        torch.save(
            {
                "hyperparam_value": self.hyperparam_value,
                "best": self.best,
                "num_bad_epochs": self.num_bad_epochs,
            },
            path,
        )

    @mark_as_loader
    def load(self, path, end_of_epoch=False):
        """Restores the schedule's state."""
        del end_of_epoch  # the state is per epoch either way
        state = torch.load(path)
        self.hyperparam_value = state["hyperparam_value"]
        self.best = state["best"]
        self.num_bad_epochs = state["num_bad_epochs"]
