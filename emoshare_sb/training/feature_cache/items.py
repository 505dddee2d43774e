"""The clips a feature cache is asked for, and the layout of what it returns.

Authors
 * emoshare_sb contributors 2026
"""

import csv
import os


def to_encoder_layout(features):
    """Turns a padded batch of cached features into the encoder's output layout.

    Cached clips are time-first (``[T, C]`` or ``[T, L, C]``) so that
    SpeechBrain pads them along time; the encoder returns ``[B, T, C]`` or,
    for all layers, ``[L, B, T, C]``.

    Arguments
    ---------
    features : torch.Tensor
        ``[B, T, C]`` or ``[B, T, L, C]``.

    Returns
    -------
    torch.Tensor
        ``[B, T, C]`` or ``[L, B, T, C]``.

    Example
    -------
    >>> import torch
    >>> to_encoder_layout(torch.zeros(2, 7, 13, 4)).shape
    torch.Size([13, 2, 7, 4])
    >>> to_encoder_layout(torch.zeros(2, 7, 4)).shape
    torch.Size([2, 7, 4])
    """
    if features.ndim == 4:
        return features.permute(2, 0, 1, 3)
    return features


def read_manifest_items(
    csv_paths, id_field="ID", wav_field="wav", duration_field="duration"
):
    """``(id, wav, duration)`` of every row of SpeechBrain CSV manifests.

    Arguments
    ---------
    csv_paths : list of str
        Manifests (e.g. those :func:`emoshare_sb.data.compare23.prepare_compare23` writes).
    id_field, wav_field, duration_field : str
        Column names; a missing duration column gives ``None`` durations.

    Returns
    -------
    list of tuple
        ``(id, wav_path, duration_seconds_or_None)``.

    Example
    -------
    >>> path = getfixture("tmpdir") / "train.csv"
    >>> _ = path.write_text(
    ...     "ID,duration,wav,Anger\\na,1.5,/x/a.wav,0.2\\n", "utf-8"
    ... )
    >>> read_manifest_items([str(path)])
    [('a', '/x/a.wav', 1.5)]
    """
    items = []
    for csv_path in csv_paths:
        with open(csv_path, newline="") as handle:
            for row in csv.DictReader(handle):
                duration = row.get(duration_field)
                items.append(
                    (
                        row[id_field],
                        row[wav_field],
                        float(duration) if duration else None,
                    )
                )
    return items


def normalise_items(items):
    """Accepts manifest paths or ``(id, wav[, duration])`` tuples; drops duplicates.

    Arguments
    ---------
    items : str, list of str or list of tuple
        Manifests, or items.

    Returns
    -------
    list of tuple
        ``(id, wav, duration_or_None)``, each id once.

    Raises
    ------
    ValueError
        When one id names two audio files.

    Example
    -------
    >>> normalise_items([("a", "/x/a.wav"), ("a", "/x/a.wav", 1.0)])
    [('a', '/x/a.wav', None)]
    """
    if isinstance(items, str | os.PathLike):
        items = [items]  # one manifest
    items = list(items)
    if items and isinstance(items[0], str | os.PathLike):
        items = read_manifest_items([os.fspath(p) for p in items])
    unique = {}
    for item in items:
        clip_id, wav = str(item[0]), os.fspath(item[1])
        duration = item[2] if len(item) > 2 else None
        if clip_id in unique and os.path.abspath(
            unique[clip_id][1]
        ) != os.path.abspath(wav):
            raise ValueError(
                f"clip id '{clip_id}' names two audio files: '{unique[clip_id][1]}' and "
                f"'{wav}'; ids must be unique within a feature cache"
            )
        unique.setdefault(clip_id, (clip_id, wav, duration))
    return list(unique.values())
