"""Sliding-window scoring: cut clips into windows, predict each, average per clip.

Used for evaluation with a fixed window (Atmaja & Sasou's window study,
Porjazovski et al.'s segment scoring) and for long recordings at inference.
A clip shorter than one window is scored whole, as a single window.

Authors
 * emoshare_sb contributors 2026
"""

import math

import torch


def window_starts(num_samples, window, hop):
    """Start samples of the windows that cover a clip of ``num_samples``.

    The last window is aligned to the end of the clip so that no sample is
    left out; a clip no longer than ``window`` has one window at 0.

    Arguments
    ---------
    num_samples : int
        Clip length in samples.
    window : int
        Window length in samples.
    hop : int
        Hop between window starts in samples.

    Returns
    -------
    list of int
        Window start positions.

    Example
    -------
    >>> window_starts(10, 4, 3)
    [0, 3, 6]
    >>> window_starts(11, 4, 3)
    [0, 3, 6, 7]
    >>> window_starts(3, 4, 3)
    [0]
    """
    if window <= 0 or hop <= 0:
        raise ValueError(
            f"window and hop must be positive, got {window} and {hop}"
        )
    if num_samples <= window:
        return [0]
    count = math.floor((num_samples - window) / hop) + 1
    starts = [i * hop for i in range(count)]
    if starts[-1] + window < num_samples:
        starts.append(num_samples - window)
    return starts


def split_into_windows(wavs, wav_lens, window, hop):
    """Cuts a padded batch into a padded batch of windows.

    Arguments
    ---------
    wavs : torch.Tensor
        ``[B, samples]`` zero-padded clips.
    wav_lens : torch.Tensor
        ``[B]`` relative lengths.
    window : int
        Window length in samples.
    hop : int
        Hop in samples.

    Returns
    -------
    windows : torch.Tensor
        ``[W, min(window, samples)]`` zero-padded windows of all clips.
    window_lens : torch.Tensor
        ``[W]`` relative lengths of the windows.
    owners : torch.Tensor
        ``[W]`` index of the clip each window comes from.

    Example
    -------
    >>> wavs = torch.ones(2, 10)
    >>> windows, lens, owners = split_into_windows(
    ...     wavs, torch.tensor([1.0, 0.3]), 4, 4
    ... )
    >>> windows.shape, owners.tolist(), lens.tolist()
    (torch.Size([4, 4]), [0, 0, 0, 1], [1.0, 1.0, 1.0, 0.75])
    """
    num_samples = torch.round(wav_lens * wavs.shape[1]).long().tolist()
    width = min(window, wavs.shape[1])
    pieces, lengths, owners = [], [], []
    for index, length in enumerate(num_samples):
        for start in window_starts(length, window, hop):
            piece = wavs[index, start : min(start + window, length)]
            lengths.append(piece.shape[0] / width)
            pieces.append(
                torch.nn.functional.pad(piece, (0, width - piece.shape[0]))
            )
            owners.append(index)
    return (
        torch.stack(pieces),
        torch.tensor(lengths, device=wavs.device),
        torch.tensor(owners, device=wavs.device),
    )


def average_by_owner(predictions, owners, num_clips):
    """Averages window predictions into clip predictions.

    Arguments
    ---------
    predictions : torch.Tensor
        ``[W, D]`` window predictions.
    owners : torch.Tensor
        ``[W]`` clip index of each window.
    num_clips : int
        Number of clips ``B``.

    Returns
    -------
    torch.Tensor
        ``[B, D]`` mean of each clip's windows.

    Example
    -------
    >>> average_by_owner(
    ...     torch.tensor([[1.0], [3.0], [5.0]]), torch.tensor([0, 0, 1]), 2
    ... )
    tensor([[2.],
            [5.]])
    """
    sums = predictions.new_zeros(num_clips, predictions.shape[1])
    sums.index_add_(0, owners, predictions)
    counts = (
        torch.bincount(owners, minlength=num_clips).clamp(min=1).unsqueeze(1)
    )
    return sums / counts.to(predictions.dtype)
