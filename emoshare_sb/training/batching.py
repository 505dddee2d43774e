"""Length-bucketed dynamic batching: batches of clips of similar length.

A random batch of eight clips of 1-8 s is about 40 % padding, which the
encoder (or the cached-feature loader) processes for nothing. SpeechBrain's
:class:`~speechbrain.dataio.sampler.DynamicBatchSampler` groups clips into
length buckets and fills each batch up to a total length; this module wraps it
with what clip-level emotion corpora need:

* bucket boundaries from the data (geometric between the shortest and the
  longest clip, with a ratio that bounds the padding of any clip), rather than
  SpeechBrain's default, which spreads buckets up to ``max_batch_length`` and
  so puts every clip in one or two buckets when a batch holds several clips;
* lengths as the model sees them: ``min(duration, train_window)`` when
  training on random crops;
* a new shuffle every epoch even when nobody calls ``set_epoch`` (SpeechBrain's
  ``Brain`` calls it only for a sampler registered as ``brain.train_sampler``);
* :func:`padding_fraction` to measure the result.

Authors
 * emoshare_sb contributors 2026
"""

import math

import numpy as np
from speechbrain.dataio.sampler import DynamicBatchSampler

# Defaults sized for 1-8 s clips: 48 s of padded audio per batch (six 8 s
# clips, or 8 clips of a 5.5 s training crop as in Atmaja & Sasou), and
# buckets whose shortest member is at least 90 % of the longest.
DEFAULT_MAX_BATCH_SECONDS = 48.0
DEFAULT_MAX_PADDING = 0.1


def geometric_boundaries(
    min_length, max_length, max_padding=DEFAULT_MAX_PADDING, num_buckets=None
):
    """Bucket upper boundaries, geometric from ``min_length`` to ``max_length``.

    Within a bucket ``(b[i-1], b[i]]`` no clip is padded by more than
    ``1 - b[i-1] / b[i]`` of the batch length, so a ratio of
    ``1 / (1 - max_padding)`` between boundaries bounds each clip's padding
    (the first bucket starts at ``min_length``, so its ratio is at most that).

    Arguments
    ---------
    min_length, max_length : float
        Shortest and longest clip (any unit).
    max_padding : float
        Largest padding fraction of any clip, in (0, 1); sets the number of
        buckets when ``num_buckets`` is None.
    num_buckets : int, optional
        Use this many buckets instead.

    Returns
    -------
    list of float
        Ascending boundaries; the last is ``max_length``.

    Example
    -------
    >>> [round(b, 2) for b in geometric_boundaries(1.0, 2.0, max_padding=0.25)]
    [1.12, 1.5, 2.0]
    >>> (
    ...     len(geometric_boundaries(1.0, 8.0)),
    ...     len(geometric_boundaries(1.0, 8.0, num_buckets=5)),
    ... )
    (20, 5)
    """
    if not 0 < min_length <= max_length:
        raise ValueError(
            f"need 0 < min_length <= max_length, got {min_length}, {max_length}"
        )
    if num_buckets is None:
        if not 0 < max_padding < 1:
            raise ValueError(
                f"max_padding must be in (0, 1), got {max_padding}"
            )
        ratio = 1.0 / (1.0 - max_padding)
        num_buckets = max(
            1, math.ceil(math.log(max_length / min_length) / math.log(ratio))
        )
    else:
        ratio = (max_length / min_length) ** (1.0 / num_buckets)
    # Anchored at max_length exactly: DynamicBatchSampler sizes a bucket's
    # batches by its upper boundary, so the longest clips get
    # int(max_batch_length / max_length) per batch, not one fewer.
    return [
        max_length / ratio ** (num_buckets - 1 - i) for i in range(num_buckets)
    ]


class LengthBucketBatchSampler(DynamicBatchSampler):
    """SpeechBrain's DynamicBatchSampler that reshuffles every epoch by itself.

    The parent draws its random order from ``seed + epoch`` and only changes
    epoch in ``set_epoch``; ``Brain.fit`` calls that only for a sampler it
    knows (``brain.train_sampler``, or under DDP). This subclass moves to the
    next epoch after each full pass, and ``set_epoch`` still sets it exactly
    (so resumed runs see the same batches as uninterrupted ones when the
    ``Brain`` calls it).

    Arguments
    ---------
    *args, **kwargs
        As :class:`speechbrain.dataio.sampler.DynamicBatchSampler`.
    """

    def __iter__(self):
        yield from self._batches
        if self._shuffle_ex:
            self.set_epoch(self._epoch + 1)
        elif self._batch_ordering == "random":
            self._epoch += 1
            self._permute_batches()


def make_batch_sampler(
    dataset,
    max_batch_length=DEFAULT_MAX_BATCH_SECONDS,
    max_padding=DEFAULT_MAX_PADDING,
    num_buckets=None,
    length_key="duration",
    max_length=None,
    shuffle=True,
    batch_ordering="random",
    max_batch_ex=None,
    seed=42,
    lengths=None,
):
    """A length-bucketed batch sampler over a DynamicItemDataset (or lengths).

    Arguments
    ---------
    dataset : speechbrain.dataio.dataset.DynamicItemDataset or torch Dataset
        The data; lengths are read from its ``length_key`` annotation.
    max_batch_length : float
        Most padded length per batch (seconds when lengths are durations).
    max_padding : float
        Bound on any clip's padding, setting the number of buckets.
    num_buckets : int, optional
        Fixed number of buckets instead (geometric boundaries).
    length_key : str
        Annotation holding each clip's length (the manifests' ``duration``).
    max_length : float, optional
        Lengths are capped here: the training crop (``train_window``), since
        a cropped clip is only that long in the batch.
    shuffle : bool
        New random order every epoch (training); False keeps dataset order.
    batch_ordering : str
        ``"random"``, ``"ascending"`` or ``"descending"`` (by batch length).
    max_batch_ex : int, optional
        Most clips per batch.
    seed : int
        Seed of the shuffles.
    lengths : list of float, optional
        Lengths given directly (required for a plain torch Dataset).

    Returns
    -------
    LengthBucketBatchSampler
        Yields lists of dataset indices; every clip exactly once per epoch.

    Example
    -------
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> durations = [1.0, 7.5, 1.05, 8.0, 4.0, 4.2]
    >>> data = {f"c{i}": {"duration": d} for i, d in enumerate(durations)}
    >>> sampler = make_batch_sampler(
    ...     DynamicItemDataset(data), max_batch_length=16, shuffle=False
    ... )
    >>> sorted(sorted(batch) for batch in sampler)
    [[0, 2], [1, 3], [4, 5]]
    """
    if lengths is None:
        lengths = [
            float(dataset.data[data_id][length_key])
            for data_id in dataset.data_ids
        ]
    lengths = [float(length) for length in lengths]
    if max_length is not None and max_length > 0:
        lengths = [min(length, float(max_length)) for length in lengths]
    if not lengths:
        raise ValueError("cannot batch an empty dataset")
    boundaries = geometric_boundaries(
        min(lengths),
        max(lengths),
        max_padding=max_padding,
        num_buckets=num_buckets,
    )
    return LengthBucketBatchSampler(
        dataset,
        max_batch_length=max_batch_length,
        shuffle=shuffle,
        batch_ordering=batch_ordering,
        max_batch_ex=max_batch_ex,
        bucket_boundaries=boundaries,
        lengths_list=lengths,
        seed=seed,
    )


def dataloader_options(
    dataset,
    train,
    max_batch_length=DEFAULT_MAX_BATCH_SECONDS,
    num_workers=0,
    train_window=None,
    **sampler_kwargs,
):
    """``loader_kwargs`` for ``Brain.fit``/``Brain.evaluate`` with length bucketing.

    Arguments
    ---------
    dataset : speechbrain.dataio.dataset.DynamicItemDataset
        The split.
    train : bool
        True: shuffled every epoch, random batch order, lengths capped at
        ``train_window``. False: dataset order (sorted datasets stay sorted),
        longest batches first.
    max_batch_length : float
        Most padded seconds per batch.
    num_workers : int
        DataLoader workers.
    train_window : float, optional
        Training crop in seconds (0 or None: whole clips).
    **sampler_kwargs
        Passed to :func:`make_batch_sampler` (``max_padding``,
        ``max_batch_ex``, ``seed``, ...).

    Returns
    -------
    dict
        ``{"batch_sampler": ..., "num_workers": ...}``; do not add
        ``batch_size`` or ``shuffle``. For training, also set
        ``brain.train_sampler = options["batch_sampler"]`` so the Brain's
        ``set_epoch`` keeps resumed runs identical to uninterrupted ones.

    Example
    -------
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> data = {f"c{i}": {"duration": 1.0 + i} for i in range(4)}
    >>> options = dataloader_options(
    ...     DynamicItemDataset(data), train=True, train_window=2.5
    ... )
    >>> sorted(options)
    ['batch_sampler', 'num_workers']
    """
    sampler_kwargs.setdefault("shuffle", train)
    sampler_kwargs.setdefault(
        "batch_ordering", "random" if train else "descending"
    )
    sampler = make_batch_sampler(
        dataset,
        max_batch_length=max_batch_length,
        max_length=train_window if train else None,
        **sampler_kwargs,
    )
    return {"batch_sampler": sampler, "num_workers": num_workers}


def padding_fraction(batches, lengths):
    """Fraction of a padded batch's frames that are padding, over all batches.

    ``sum(batch_size * longest - sum(lengths)) / sum(batch_size * longest)``.

    Arguments
    ---------
    batches : iterable of list of int
        Indices into ``lengths``, one list per batch.
    lengths : sequence of float
        Length of each item.

    Returns
    -------
    float
        In [0, 1).

    Example
    -------
    >>> padding_fraction([[0, 1], [2]], [2.0, 1.0, 5.0])
    0.1111111111111111
    """
    lengths = np.asarray(lengths, dtype=float)
    padded = real = 0.0
    for batch in batches:
        batch_lengths = lengths[list(batch)]
        padded += len(batch_lengths) * batch_lengths.max()
        real += batch_lengths.sum()
    return float((padded - real) / padded) if padded else 0.0
