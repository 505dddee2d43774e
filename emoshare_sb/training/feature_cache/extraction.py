"""Encoding many clips with a frozen encoder, fast and in bounded memory.

* :func:`encode_batch`: one zero-padded forward pass; every clip gets its own
  exact number of frames back; clips longer than a chunk are encoded in
  consecutive chunks;
* :func:`encode_clips`: length-sorted padded batches under
  ``torch.inference_mode`` and :func:`~emoshare_sb.lobes.padding.padding_invariant`
  (the fast frozen-encoder inference path);
* :func:`encode_padded_bounded`: the same for a recipe's padded evaluation
  batch, so that one 10-minute clip in devel does not pad the whole batch to
  10 minutes: at most ``max_seconds`` of padded audio go through the encoder
  at once, whatever the clip lengths.

Batching gives each clip exactly the features it gets when encoded alone
(up to float rounding), because the wav2vec2-family models mask padding in
attention, and the group-normalised convolutional front-end of the Base
models is made padding-invariant by
:func:`~emoshare_sb.lobes.padding.padding_invariant`. Encoders of unknown
structure are encoded one clip at a time.

Authors
 * emoshare_sb contributors 2026
"""

import contextlib
import math

import torch

from emoshare_sb.data.audio import MIN_SAMPLES, SAMPLE_RATE, read_audio
from emoshare_sb.lobes import feature_lengths
from emoshare_sb.lobes.padding import padding_invariant
from emoshare_sb.training.feature_cache.fingerprint import (
    conv_layout as encoder_conv_layout,
    frames_for_samples,
    hf_model,
)
from emoshare_sb.utils.cpu import check_autocast_dtype


def encode_batch(encoder, wavs, conv_layout=None, chunk_samples=0, device=None):
    """Encodes clips as one zero-padded batch; returns each clip's own frames.

    Call it under :func:`padding_invariant` (as :func:`encode_clips` does)
    for Base-type models, whose front-end otherwise sees the padding.

    Arguments
    ---------
    encoder : torch.nn.Module
        Called as ``encoder(wavs, relative_lengths)``; returns ``[B, T, C]``
        or ``[L, B, T, C]``.
    wavs : list of torch.Tensor
        ``[samples]`` each.
    conv_layout : list of [kernel, stride], optional
        Gives each clip's number of frames; without it they come from the
        encoder's ``feature_lengths`` (or the relative lengths).
    chunk_samples : int
        > 0: clips longer than this are encoded as consecutive chunks (a tail
        shorter than the encoder's receptive field joins the last chunk) and
        their frames concatenated.
    device : str or torch.device, optional
        Where to run; default: the encoder's device.

    Returns
    -------
    list of torch.Tensor
        ``[T_i, C]`` or ``[T_i, L, C]`` per clip, on the encoder's device.

    Example
    -------
    >>> from emoshare_sb.lobes.ssl import SSLEncoder
    >>> from emoshare_sb.synthetic import make_tiny_ssl_model
    >>> tmp = getfixture("tmpdir")
    >>> encoder = SSLEncoder(make_tiny_ssl_model(str(tmp / "tiny")), str(tmp))
    >>> layout = [[10, 5]] + [[3, 2]] * 4 + [[2, 2]] * 2
    >>> with torch.no_grad():
    ...     feats = encode_batch(
    ...         encoder, [torch.randn(16000), torch.randn(8000)], layout
    ...     )
    >>> [tuple(f.shape) for f in feats]
    [(49, 32), (24, 32)]
    """
    if device is None:
        device = module_device(encoder)
    pieces, owners = [], []
    for owner, wav in enumerate(wavs):
        for piece in split_chunks(wav, chunk_samples):
            pieces.append(piece)
            owners.append(owner)
    lengths = torch.tensor([piece.shape[0] for piece in pieces])
    padded = torch.nn.utils.rnn.pad_sequence(pieces, batch_first=True)
    relative = lengths.float() / padded.shape[1]
    output = encoder(padded.to(device), relative.to(device))
    if output.ndim == 4:  # [L, B, T, C] -> [B, T, L, C]: time first per clip
        output = output.permute(1, 2, 0, 3)
    if conv_layout is not None:
        frames = frames_for_samples(lengths, conv_layout).tolist()
    elif len(pieces) == 1:
        frames = [output.shape[1]]
    else:
        exact = feature_lengths(
            encoder,
            relative.to(output.device),
            padded.shape[1],
            output.shape[1],
        )
        frames = torch.round(exact * output.shape[1]).long().tolist()
    per_clip = [[] for _ in wavs]
    for index, (owner, count) in enumerate(zip(owners, frames, strict=True)):
        per_clip[owner].append(output[index, :count])
    return [torch.cat(parts, dim=0) for parts in per_clip]


def default_batch_seconds(device):
    """Padded audio per forward pass that suits a device.

    On CPU one clip at a time is fastest (measured on 2 cores: batches of
    12 s and 32 s of padded audio cost 6 % and 47 % more CPU time per second
    of audio than single clips, the large activations of the convolutional
    front-end no longer fitting in cache); GPUs want large batches.

    Arguments
    ---------
    device : str or torch.device
        Where the encoder runs.

    Returns
    -------
    float
        0.0 (one clip per pass) on CPU, 64.0 seconds elsewhere.

    Example
    -------
    >>> default_batch_seconds("cpu"), default_batch_seconds("cuda:0")
    (0.0, 64.0)
    """
    return 0.0 if torch.device(device).type == "cpu" else 64.0


def encode_clips(
    encoder,
    wavs,
    batch_seconds=None,
    sample_rate=SAMPLE_RATE,
    device=None,
    autocast_dtype=None,
):
    """Fast frozen-encoder inference that gives each clip its solo features.

    Clips are sorted by length and encoded in padded batches of at most
    ``batch_seconds`` of padded audio, under ``torch.inference_mode`` and
    :func:`padding_invariant`; attention uses whatever the encoder was loaded
    with (SDPA by default in transformers 5). Encoders without a known
    wav2vec2-style front-end are run one clip at a time.

    Arguments
    ---------
    encoder : torch.nn.Module
        E.g. :class:`emoshare_sb.lobes.ssl.SSLEncoder` (or one whose Linear
        layers were quantised with ``torch.ao.quantization.quantize_dynamic``).
    wavs : list of torch.Tensor
        ``[samples]`` each, at ``sample_rate``.
    batch_seconds : float, optional
        Padded audio per forward pass; default :func:`default_batch_seconds`.
    sample_rate : int
        Of ``wavs``.
    device : str or torch.device, optional
        Default: the encoder's device.
    autocast_dtype : torch.dtype, optional
        E.g. ``torch.bfloat16``: run under ``torch.autocast`` (faster on CPUs
        with AMX/AVX512-BF16, at a rounding cost the inference benchmark
        measures). Features are returned in float32.

    Returns
    -------
    list of torch.Tensor
        ``[T_i, C]`` (or ``[T_i, L, C]``) per clip, in the input order.

    Example
    -------
    >>> from emoshare_sb.lobes.ssl import SSLEncoder
    >>> from emoshare_sb.synthetic import make_tiny_ssl_model
    >>> tmp = getfixture("tmpdir")
    >>> encoder = SSLEncoder(make_tiny_ssl_model(str(tmp / "tiny")), str(tmp))
    >>> wavs = [torch.randn(8000), torch.randn(16000)]
    >>> [tuple(f.shape) for f in encode_clips(encoder, wavs)]
    [(24, 32), (49, 32)]
    >>> batched = encode_clips(encoder, wavs, batch_seconds=8.0)
    >>> torch.allclose(batched[0], encode_clips(encoder, wavs)[0], atol=1e-5)
    True
    """
    if device is None:
        device = module_device(encoder)
    if batch_seconds is None:
        batch_seconds = default_batch_seconds(device)
    conv_layout = encoder_conv_layout(encoder)
    model = hf_model(encoder)
    if conv_layout is None or model is None:
        batch_seconds = 0.0  # unknown encoder: one clip per forward pass
    order = sorted(range(len(wavs)), key=lambda i: -wavs[i].shape[0])
    batches = length_batches(
        [wavs[i].shape[0] / sample_rate for i in order], batch_seconds
    )
    results = [None] * len(wavs)
    padding = (
        padding_invariant(model)
        if model is not None
        else contextlib.nullcontext()
    )
    check_autocast_dtype(autocast_dtype, device)
    autocast = (
        torch.autocast(torch.device(device).type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else contextlib.nullcontext()
    )
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.inference_mode(), padding, autocast:
            for batch in batches:
                indices = [order[j] for j in batch]
                features = encode_batch(
                    encoder,
                    [wavs[i] for i in indices],
                    conv_layout,
                    device=device,
                )
                for index, clip in zip(indices, features, strict=True):
                    results[index] = clip.float()
    finally:
        encoder.train(was_training)
    return results


def encode_padded_bounded(
    encoder, wavs, wav_lens, max_seconds, sample_rate=SAMPLE_RATE
):
    """Encodes a padded batch with at most ``max_seconds`` of padded audio per pass.

    A batch that fits (``B x longest <= max_seconds``) is encoded as it is,
    so its features are exactly those of ``encoder(wavs, wav_lens)``.
    Otherwise the clips are unpadded, sorted by length and encoded in
    sub-batches that fit, a clip longer than ``max_seconds`` alone in
    consecutive chunks of ``max_seconds`` (:func:`encode_batch`, the chunking
    of the feature cache), and the frames are padded back into one batch with
    exact frame lengths. Peak memory is then bounded by ``max_seconds``,
    whatever the clip lengths; a chunked clip's frames saw only their chunk
    through self-attention (an approximation for clips over ``max_seconds``
    only).

    Arguments
    ---------
    encoder : torch.nn.Module
        ``encoder(wavs, wav_lens) -> [B, T, C]`` (or ``[L, B, T, C]``).
    wavs : torch.Tensor
        ``[B, samples]``, zero-padded.
    wav_lens : torch.Tensor
        ``[B]`` relative lengths.
    max_seconds : float
        Padded audio per forward pass; 0 or None: no bound.
    sample_rate : int
        Of ``wavs``.

    Returns
    -------
    tuple
        ``(features, feature_lens)``: ``[B, T, C]`` (or ``[L, B, T, C]``)
        and ``[B]`` relative frame lengths.

    Example
    -------
    >>> from emoshare_sb.lobes.ssl import SSLEncoder
    >>> from emoshare_sb.synthetic import make_tiny_ssl_model
    >>> tmp = getfixture("tmpdir")
    >>> encoder = SSLEncoder(make_tiny_ssl_model(str(tmp / "tiny")), str(tmp))
    >>> wavs, lens = torch.randn(3, 48000), torch.tensor([1.0, 0.2, 0.1])
    >>> with torch.no_grad():
    ...     feats, feat_lens = encode_padded_bounded(encoder, wavs, lens, 2.0)
    >>> # the 3 s clip in chunks of 2 s and 1 s: 99 + 49 frames (149 whole)
    >>> feats.shape, (feat_lens * feats.shape[1]).round()
    (torch.Size([3, 148, 32]), tensor([148.,  29.,  14.]))
    """
    batch, total = wavs.shape
    if (
        not max_seconds
        or max_seconds <= 0
        or batch * total <= max_seconds * sample_rate
    ):
        features = encoder(wavs, wav_lens)
        lens = feature_lengths(encoder, wav_lens, total, features.shape[-2])
        return features, lens
    num_samples = torch.round(wav_lens * total).long().clamp(min=1).tolist()
    # Every clip as pieces of at most max_seconds (split_chunks, as the cache
    # chunks), then the pieces, longest first, in passes that fit.
    pieces, owners = [], []
    for row, count in enumerate(num_samples):
        for piece in split_chunks(
            wavs[row, :count], int(max_seconds * sample_rate)
        ):
            pieces.append(piece)
            owners.append(row)
    order = sorted(range(len(pieces)), key=lambda i: -pieces[i].shape[0])
    groups = length_batches(
        [pieces[i].shape[0] / sample_rate for i in order], max_seconds
    )
    layout = encoder_conv_layout(getattr(encoder, "module", encoder))
    encoded = [None] * len(pieces)
    for group in groups:
        indices = [order[j] for j in group]
        outputs = encode_batch(
            encoder, [pieces[i] for i in indices], layout, device=wavs.device
        )
        for index, frames in zip(indices, outputs, strict=True):
            encoded[index] = frames
    per_clip = [
        torch.cat([f for f, o in zip(encoded, owners, strict=True) if o == row])
        for row in range(batch)
    ]
    frames = torch.tensor([f.shape[0] for f in per_clip])
    padded = torch.nn.utils.rnn.pad_sequence(per_clip, batch_first=True)
    if padded.ndim == 4:  # [B, T, L, C] -> [L, B, T, C]
        padded = padded.permute(2, 0, 1, 3)
    lens = frames.float().to(wavs.device) / padded.shape[-2]
    return padded, lens


def module_device(module):
    """The device of a module's first parameter (CPU without parameters).

    Arguments
    ---------
    module : torch.nn.Module

    Returns
    -------
    torch.device

    Example
    -------
    >>> module_device(torch.nn.Linear(2, 2))
    device(type='cpu')
    """
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


class AudioItems(torch.utils.data.Dataset):
    """Reads the audio of ``(id, wav, duration)`` items.

    Arguments
    ---------
    items : list of tuple
        ``(id, wav, duration)``.
    sample_rate : int
        Read (and resampled) at this rate.
    """

    def __init__(self, items, sample_rate):
        self.items, self.sample_rate = items, sample_rate

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        item = self.items[index]
        return item, read_audio(item[1], self.sample_rate)


def split_chunks(wav, chunk):
    """Consecutive chunks of ``chunk`` samples; a too-short tail joins the last one.

    Arguments
    ---------
    wav : torch.Tensor
        ``[samples]``.
    chunk : int
        Samples per chunk; 0 keeps the clip whole.

    Returns
    -------
    list of torch.Tensor

    Example
    -------
    >>> [c.shape[0] for c in split_chunks(torch.zeros(20200), 10000)]
    [10000, 10200]
    """
    if chunk <= 0 or wav.shape[0] <= chunk:
        return [wav]
    starts = list(range(0, wav.shape[0], chunk))
    if wav.shape[0] - starts[-1] < MIN_SAMPLES:
        starts.pop()
    ends = starts[1:] + [wav.shape[0]]
    return [wav[s:e] for s, e in zip(starts, ends, strict=True)]


def length_batches(durations, batch_seconds, chunk_seconds=None):
    """Groups consecutive (length-sorted) items while the padded batch fits.

    The padded batch costs (number of pieces) x (longest piece), where a clip
    is one piece, or ``ceil(duration / chunk_seconds)`` chunks when chunked.
    ``batch_seconds <= 0`` gives one item per batch.

    Arguments
    ---------
    durations : list of float
        Seconds, longest first.
    batch_seconds : float
        Padded audio per batch.
    chunk_seconds : float, optional
        Chunk length of long clips.

    Returns
    -------
    list of list of int

    Example
    -------
    >>> length_batches([8.0, 7.0, 2.0, 1.0, 1.0], 16.0)
    [[0, 1], [2, 3, 4]]
    >>> length_batches([8.0, 1.0], 0)
    [[0], [1]]
    """
    batches, current, pieces, longest = [], [], 0, 0.0
    for index, duration in enumerate(durations):
        count = 1
        if chunk_seconds and duration > chunk_seconds:
            count, duration = math.ceil(duration / chunk_seconds), chunk_seconds
        if current and (
            batch_seconds <= 0
            or max(longest, duration) * (pieces + count) > batch_seconds
        ):
            batches.append(current)
            current, pieces, longest = [], 0, 0.0
        current.append(index)
        pieces += count
        longest = max(longest, duration)
    if current:
        batches.append(current)
    return batches
