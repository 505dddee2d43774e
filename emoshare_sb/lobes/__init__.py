"""Encoders (front-ends) that turn waveforms into frame-level features.

Every encoder maps ``(wavs [B, samples], wav_lens [B])`` to frame features and
may define ``feature_lengths(wav_lens, num_samples, num_frames)``, the exact
relative number of valid frames of each clip. Downstream modules take
SpeechBrain relative lengths and keep ``round(length * T)`` frames, so the
waveform's relative length can be off by one frame after a convolutional
front-end; :func:`feature_lengths` gives the exact ones when the encoder knows
them, and :func:`relative_frame_lengths` is the arithmetic every encoder's
``feature_lengths`` shares (only the samples-to-frames count differs).

Text encoders (:mod:`emoshare_sb.lobes.text`) map a list of transcripts to
token features and their relative lengths, and
:mod:`emoshare_sb.lobes.multimodal` encodes speech and text side by side.

Authors
 * emoshare_sb contributors 2026
"""

import torch


def valid_samples(wav_lens, num_samples):
    """Numbers of valid samples of a padded waveform batch.

    Arguments
    ---------
    wav_lens : torch.Tensor
        ``[B]`` relative lengths (SpeechBrain convention).
    num_samples : int
        Samples of the padded batch.

    Returns
    -------
    torch.Tensor
        ``[B]`` integers in ``[1, num_samples]``.

    Example
    -------
    >>> valid_samples(torch.tensor([1.0, 0.5, 0.0]), 16000)
    tensor([16000,  8000,     1])
    """
    return (
        torch.round(wav_lens * num_samples).long().clamp(min=1, max=num_samples)
    )


def relative_frame_lengths(wav_lens, num_samples, num_frames, frames_of):
    """Exact relative frame lengths of a padded batch, given the frame count rule.

    Arguments
    ---------
    wav_lens : torch.Tensor
        ``[B]`` relative waveform lengths.
    num_samples : int
        Samples of the padded waveform batch.
    num_frames : int
        Frames of the padded feature batch.
    frames_of : callable
        Maps ``[B]`` integer numbers of valid samples to the encoder's numbers
        of output frames (e.g. HF's ``_get_feat_extract_output_lengths``).

    Returns
    -------
    torch.Tensor
        ``[B]`` valid frames (at least 1, at most ``num_frames``) divided by
        ``num_frames``.

    Example
    -------
    >>> def frames_of(samples):  # a centred STFT with a 160-sample hop
    ...     return 1 + samples // 160
    >>> relative_frame_lengths(torch.tensor([1.0, 0.5]), 16000, 101, frames_of)
    tensor([1.0000, 0.5050])
    """
    frames = frames_of(valid_samples(wav_lens, num_samples))
    return frames.clamp(min=1, max=num_frames).float() / num_frames


def feature_lengths(encoder, wav_lens, num_samples, num_frames):
    """Relative lengths of an encoder's output frames.

    Arguments
    ---------
    encoder : torch.nn.Module
        The encoder (possibly wrapped in DistributedDataParallel).
    wav_lens : torch.Tensor
        ``[B]`` relative lengths of the waveforms.
    num_samples : int
        Samples of the padded waveform batch.
    num_frames : int
        Frames of the encoder's padded output.

    Returns
    -------
    torch.Tensor
        ``[B]`` relative frame lengths; ``wav_lens`` itself for an encoder
        without ``feature_lengths``.

    Example
    -------
    >>> feature_lengths(torch.nn.Identity(), torch.tensor([1.0, 0.5]), 100, 10)
    tensor([1.0000, 0.5000])
    """
    module = getattr(encoder, "module", encoder)  # unwrap DDP
    exact = getattr(module, "feature_lengths", None)
    if exact is None:
        return wav_lens
    return exact(wav_lens, num_samples, num_frames)
