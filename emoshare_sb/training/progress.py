"""Labelled progress bars, and one line per step of progress in a captured log.

SpeechBrain's ``Brain`` draws an unlabelled ``tqdm`` bar for every pass over
a dataset, so the four final evaluation passes (best and averaged model,
devel and test) look alike, and when the output is not a terminal (a log
file) each bar is one line of thousands of characters rewritten with ``\\r``.
:func:`labelled_tqdm` replaces the ``tqdm`` that ``speechbrain.core`` calls
(:func:`install`, done by :class:`~emoshare_sb.training.brain.EmotionBrain`):
it names the pass (:func:`set_label`, e.g. ``"devel, best"``), and when the
stream is not a terminal it prints one line every :data:`PERCENT_STEP` % of
the pass instead.

Authors
 * emoshare_sb contributors 2026
"""

import contextvars
import math
import sys

import speechbrain.core
import tqdm as tqdm_module

PERCENT_STEP = 10
_LABEL = contextvars.ContextVar("progress_label", default=None)


def set_label(label):
    """Names the progress bars that start from now on (None: no name).

    Arguments
    ---------
    label : str or None
        E.g. ``"train, epoch 3"`` or ``"test, averaged"``.
    """
    _LABEL.set(label)


class LineWriter:
    """A stream that turns tqdm's ``\\r`` rewrites into separate lines.

    Arguments
    ---------
    stream : file object
        Where the lines go (stderr).

    Example
    -------
    >>> import io
    >>> out = io.StringIO()
    >>> writer = LineWriter(out)
    >>> _ = writer.write("\\rdevel:  50%|#  | 1/2   ")
    >>> out.getvalue()
    'devel:  50%|#  | 1/2\\n'
    """

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        """Writes each non-empty ``\\r``/``\\n``-separated piece as one line."""
        for piece in text.replace("\r", "\n").split("\n"):
            piece = piece.rstrip()
            if piece:
                self.stream.write(piece + "\n")
        return len(text)

    def flush(self):
        """Flushes the stream."""
        self.stream.flush()


class _LineTqdm(tqdm_module.tqdm):
    """A bar that redraws only every ``miniters`` steps: ``set_postfix`` (the
    training loss, every step) updates the text without drawing it."""

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        """Updates the postfix; it shows at the next line drawn."""
        super().set_postfix(ordered_dict, refresh=False, **kwargs)


def _is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def labelled_tqdm(iterable=None, *args, **kwargs):
    """``tqdm`` with the current label, and line-wise output off a terminal.

    Arguments
    ---------
    iterable : iterable
        What the bar iterates over.
    *args, **kwargs
        Those of :class:`tqdm.tqdm`; ``desc`` defaults to the label set
        with :func:`set_label`.

    Returns
    -------
    tqdm.tqdm
        The bar.

    Example
    -------
    >>> import io
    >>> stream = io.StringIO()
    >>> set_label("devel, best")
    >>> for _ in labelled_tqdm(range(20), file=stream):
    ...     pass
    >>> lines = stream.getvalue().splitlines()
    >>> (
    ...     len(lines),
    ...     lines[0][:17],
    ...     lines[-1][:22],
    ... )  # 0 %, 10 %, ..., 100 %, closed
    (12, 'devel, best:   0%', 'devel, best: 100%|####')
    >>> bar = labelled_tqdm(range(100), file=stream)
    >>> for step in bar:
    ...     bar.set_postfix(train_loss=step)
    >>> len(stream.getvalue().splitlines())  # 12 before, 12 for this bar
    24
    >>> set_label(None)
    """
    kwargs.setdefault("desc", _LABEL.get())
    stream = kwargs.get("file") or sys.stderr
    if not kwargs.get("disable") and not _is_terminal(stream):
        total = kwargs.get("total")
        if total is None:
            try:
                total = len(iterable)
            except TypeError:
                total = None
        kwargs.update(
            file=LineWriter(stream),
            dynamic_ncols=False,
            ncols=80,
            ascii=True,
            mininterval=0,
            maxinterval=math.inf,
            miniters=max(1, math.ceil((total or 0) * PERCENT_STEP / 100)),
        )
        return _LineTqdm(iterable, *args, **kwargs)
    return tqdm_module.tqdm(iterable, *args, **kwargs)


def install():
    """Makes ``speechbrain.core`` draw its bars with :func:`labelled_tqdm`."""
    speechbrain.core.tqdm = labelled_tqdm
