"""Encoders (front-ends) that turn waveforms into frame-level features.

Every encoder maps ``(wavs [B, samples], wav_lens [B])`` to frame features and
may define ``feature_lengths(wav_lens, num_samples, num_frames)``, the exact
relative number of valid frames of each clip. Downstream modules take
SpeechBrain relative lengths and keep ``round(length * T)`` frames, so the
waveform's relative length can be off by one frame after a convolutional
front-end; :func:`feature_lengths` gives the exact ones when the encoder knows
them.

Authors
 * emoshare_sb contributors 2026
"""


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
    >>> import torch
    >>> feature_lengths(torch.nn.Identity(), torch.tensor([1.0, 0.5]), 100, 10)
    tensor([1.0000, 0.5000])
    """
    module = getattr(encoder, "module", encoder)  # unwrap DDP
    exact = getattr(module, "feature_lengths", None)
    if exact is None:
        return wav_lens
    return exact(wav_lens, num_samples, num_frames)
