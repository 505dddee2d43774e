"""Scoring decoded clips: sliding-window pieces, batched forward passes, speech-only windows.

A clip is cut into the windows of :func:`~emoshare_sb.inference.windows.window_starts`
(one piece when it is no longer than the window, or when windows are off).
Pieces of many clips go through the model ``batch_size`` at a time, padded
only to the longest piece of their batch, so memory is bounded however long
the recordings are, and clips sorted by length are padded little.

With voice activity detection (:mod:`emoshare_sb.data.vad`), windows stay
on the recording's own timeline, but a window is scored on its speech
samples only; a window with less than ``MIN_SPEECH_SECONDS`` of speech is
marked silent and not scored, and the clip's summary is the mean over the
scored windows (none when the clip holds no speech).

Authors
 * emoshare_sb contributors 2026
"""

import contextlib
import dataclasses

import torch

from emoshare_sb.inference.windows import window_starts


@dataclasses.dataclass
class WindowPredictions:
    """Predictions of the sliding windows of a batch of clips.

    Attributes
    ----------
    predictions : torch.Tensor
        ``[W, D]`` one row per window.
    owners : torch.Tensor
        ``[W]`` index of the clip each window comes from.
    starts, ends : torch.Tensor
        ``[W]`` window bounds in seconds.
    """

    predictions: torch.Tensor
    owners: torch.Tensor
    starts: torch.Tensor
    ends: torch.Tensor


@dataclasses.dataclass
class FilePrediction:
    """The predictions for one audio file.

    Attributes
    ----------
    path : str
        The file.
    duration : float
        Seconds (after resampling to the model's rate).
    summary : dict
        ``{output name: value}`` for the whole clip (the mean over windows).
    windows : list of dict
        One ``{"start": s, "end": s, "values": {name: value}}`` per window;
        a single window covers a clip no longer than the window length.
        With voice activity detection each also has ``speech`` (seconds)
        and ``silent`` (True: not scored, ``values`` None).
    speech : float or None
        Seconds of speech found (None without voice activity detection).
    """

    path: str
    duration: float
    summary: dict
    windows: list
    speech: float = None


# A window with less speech than this (seconds) is silent: the SSL
# front-ends need a few hundred samples, and a burst this short carries no
# emotion the model can read.
MIN_SPEECH_SECONDS = 0.25


@dataclasses.dataclass
class Piece:
    """One window of one clip.

    Attributes
    ----------
    owner : int
        Index of the clip.
    start, end : int
        Window bounds in samples, on the clip's timeline.
    samples : torch.Tensor or None
        ``[n]`` the samples scored (all of the window, or its speech);
        None for a silent window, which is not scored.
    speech : int or None
        Speech samples in the window (None without voice activity detection).
    """

    owner: int
    start: int
    end: int
    samples: torch.Tensor = None
    speech: int = None


def cut_pieces(signals, window, hop, speech_masks=None, min_speech=0):
    """Cuts clips into the pieces a model scores.

    Arguments
    ---------
    signals : list of torch.Tensor
        ``[samples]`` clips.
    window, hop : int or None
        Window and hop in samples; None scores each clip whole.
    speech_masks : list of torch.Tensor, optional
        ``[samples]`` bool per clip: score only the speech samples of each
        window, and mark windows with fewer than ``min_speech`` silent.
    min_speech : int
        See ``speech_masks``.

    Returns
    -------
    list of Piece
        In clip order, then window order.

    Example
    -------
    >>> pieces = cut_pieces([torch.ones(10), torch.ones(3)], 4, 4)
    >>> [(p.owner, p.start, p.end) for p in pieces]
    [(0, 0, 4), (0, 4, 8), (0, 6, 10), (1, 0, 3)]
    >>> mask = torch.tensor([True] * 3 + [False] * 7)
    >>> pieces = cut_pieces([torch.ones(10)], 4, 4, [mask], min_speech=2)
    >>> [(p.speech, p.samples is None) for p in pieces]
    [(3, False), (0, True), (0, True)]
    """
    pieces = []
    for owner, signal in enumerate(signals):
        length = signal.shape[0]
        if window is None:
            bounds = [(0, length)]
        else:
            bounds = [
                (start, min(start + window, length))
                for start in window_starts(length, window, hop or window)
            ]
        for start, end in bounds:
            samples = signal[start:end]
            speech = None
            if speech_masks is not None:
                mask = speech_masks[owner][start:end]
                speech = int(mask.sum())
                samples = (
                    samples[mask] if speech >= max(min_speech, 1) else None
                )
            pieces.append(Piece(owner, start, end, samples, speech))
    return pieces


def predict_pieces(model, pieces, batch_size):
    """Runs the model on the scored pieces, ``batch_size`` at a time.

    Arguments
    ---------
    model : callable
        ``model(wavs, wav_lens) -> [B, D]`` (an inference interface).
    pieces : list of Piece
        From :func:`cut_pieces`; silent ones (``samples`` None) are skipped.
    batch_size : int
        Pieces per forward pass.

    Returns
    -------
    list of torch.Tensor or None
        ``[D]`` prediction per piece, None for a silent one.

    Example
    -------
    >>> head = lambda wavs, lens: torch.stack([wavs.sum(1), lens], 1)
    >>> out = predict_pieces(head, cut_pieces([torch.ones(6)], 4, 2), 8)
    >>> [row.tolist() for row in out]
    [[4.0, 1.0], [4.0, 1.0]]
    """
    scored = [index for index, p in enumerate(pieces) if p.samples is not None]
    predictions = [None] * len(pieces)
    with torch.inference_mode():
        for first in range(0, len(scored), batch_size):
            chunk = scored[first : first + batch_size]
            width = max(pieces[i].samples.shape[0] for i in chunk)
            batch = pieces[chunk[0]].samples.new_zeros(len(chunk), width)
            for row, index in enumerate(chunk):
                samples = pieces[index].samples
                batch[row, : samples.shape[0]] = samples
            lens = torch.tensor(
                [pieces[i].samples.shape[0] / width for i in chunk],
                device=batch.device,
            )
            for index, row in zip(chunk, model(batch, lens), strict=True):
                predictions[index] = row
    return predictions


def mean_prediction(rows):
    """The mean of the non-None prediction rows, or None when all are None.

    Arguments
    ---------
    rows : list of torch.Tensor or None
        ``[D]`` rows.

    Returns
    -------
    torch.Tensor or None
        ``[D]``.

    Example
    -------
    >>> mean_prediction([torch.tensor([1.0]), None, torch.tensor([3.0])])
    tensor([2.])
    >>> mean_prediction([None]) is None
    True
    """
    rows = [row for row in rows if row is not None]
    if not rows:
        return None
    return torch.stack(rows).mean(0)


@contextlib.contextmanager
def one_torch_thread():
    """Runs the block with one intra-op torch thread, then restores the count.

    Silero VAD runs a small network on 32 ms chunks, one after the other:
    with several threads each chunk pays the threads' synchronisation, which
    made the detector 20 times slower on 2 busy cores (168 s vs 7.6 s for a
    minute of audio).

    Example
    -------
    >>> before = torch.get_num_threads()
    >>> with one_torch_thread():
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def score_signals(model, signals, paths=None, vad=False):
    """Predicts decoded clips together: :class:`FilePrediction` each.

    See :meth:`~emoshare_sb.inference.regressor.EmotionShareRegressor.score_signals`.

    Arguments
    ---------
    model : emoshare_sb.inference.regressor.EmotionShareRegressor
        The interface (its ``forward``, ``to_dict``, windows and batch size).
    signals : list of torch.Tensor
        ``[samples]`` clips at the model's rate.
    paths : list of str, optional
        Their files.
    vad : bool
        Score only speech.

    Returns
    -------
    list of FilePrediction
        One per clip.
    """
    signals = [s.float().flatten().to(model.device) for s in signals]
    paths = paths or [""] * len(signals)
    rate = model.hparams.sample_rate
    masks = None
    if vad:
        from emoshare_sb.data.vad import speech_mask

        with one_torch_thread():
            masks = [speech_mask(s.cpu(), rate).to(s.device) for s in signals]
    pieces = model._cut(signals, masks)
    rows = predict_pieces(model, pieces, model.window_batch_size)
    results = []
    for owner, (signal, path) in enumerate(zip(signals, paths, strict=False)):
        mine = [i for i, p in enumerate(pieces) if p.owner == owner]
        summary = mean_prediction([rows[i] for i in mine])
        windows = []
        for i in mine:
            window = {
                "start": pieces[i].start / rate,
                "end": pieces[i].end / rate,
                "values": None if rows[i] is None else model.to_dict(rows[i]),
            }
            if vad:
                window["speech"] = pieces[i].speech / rate
                window["silent"] = rows[i] is None
            windows.append(window)
        results.append(
            FilePrediction(
                path=str(path),
                duration=signal.shape[0] / rate,
                summary=None if summary is None else model.to_dict(summary),
                windows=windows,
                speech=float(masks[owner].sum()) / rate if vad else None,
            )
        )
    return results
