"""Length-aware pooling of frame-level features into one vector per clip.

SpeechBrain's ``AttentionPooling`` gives weight to padded frames; these
modules take the SpeechBrain relative lengths and ignore padding, so a clip's
embedding does not depend on what it was batched with.

Authors
 * emoshare_sb contributors 2026
"""

import torch
from speechbrain.dataio.dataio import length_to_mask


def frame_mask(x, lengths=None):
    """Boolean ``[B, T]`` mask of the valid frames of ``x`` (``[B, T, C]``).

    Arguments
    ---------
    x : torch.Tensor
        ``[B, T, C]`` features.
    lengths : torch.Tensor, optional
        ``[B]`` relative lengths in (0, 1]; None means no padding.

    Returns
    -------
    torch.Tensor
        ``[B, T]`` bool; every row has at least one True.

    Example
    -------
    >>> frame_mask(torch.zeros(2, 4, 3), torch.tensor([1.0, 0.5]))
    tensor([[ True,  True,  True,  True],
            [ True,  True, False, False]])
    """
    batch, time = x.shape[0], x.shape[1]
    if lengths is None:
        return torch.ones(batch, time, dtype=torch.bool, device=x.device)
    abs_lengths = torch.round(lengths * time).clamp(min=1, max=time)
    return length_to_mask(abs_lengths, max_len=time, device=x.device).bool()


class MaskedMeanPooling(torch.nn.Module):
    """Mean over the valid frames.

    Example
    -------
    >>> pool = MaskedMeanPooling()
    >>> x = torch.tensor([[[1.0], [3.0], [100.0]]])
    >>> pool(x, torch.tensor([2 / 3]))
    tensor([[2.]])
    """

    def forward(self, x, lengths=None):
        """Pools ``[B, T, C]`` features into ``[B, C]``.

        Arguments
        ---------
        x : torch.Tensor
            ``[B, T, C]`` features.
        lengths : torch.Tensor, optional
            ``[B]`` relative lengths.

        Returns
        -------
        torch.Tensor
            ``[B, C]``.
        """
        mask = frame_mask(x, lengths).unsqueeze(-1).to(x.dtype)
        return (x * mask).sum(dim=1) / mask.sum(dim=1)


class MaskedAttentivePooling(torch.nn.Module):
    """Attentive pooling: a learned softmax weighting of the valid frames.

    Each frame gets a score from a linear layer (``hidden_size=None``, as in
    SpeechBrain's ``AttentionPooling``) or a small tanh MLP; padded frames get
    no weight.

    Arguments
    ---------
    input_size : int
        Feature dimension ``C``.
    hidden_size : int, optional
        Width of the tanh scoring layer; None scores with one linear layer.

    Example
    -------
    >>> pool = MaskedAttentivePooling(input_size=8)
    >>> x = torch.randn(2, 5, 8)
    >>> pool(x, torch.tensor([1.0, 0.6])).shape
    torch.Size([2, 8])
    """

    def __init__(self, input_size, hidden_size=None):
        super().__init__()
        if hidden_size is None:
            self.score = torch.nn.Linear(input_size, 1)
        else:
            self.score = torch.nn.Sequential(
                torch.nn.Linear(input_size, hidden_size),
                torch.nn.Tanh(),
                torch.nn.Linear(hidden_size, 1),
            )

    def forward(self, x, lengths=None):
        """Pools ``[B, T, C]`` features into ``[B, C]``.

        Arguments
        ---------
        x : torch.Tensor
            ``[B, T, C]`` features.
        lengths : torch.Tensor, optional
            ``[B]`` relative lengths.

        Returns
        -------
        torch.Tensor
            ``[B, C]``.
        """
        weights = self.attention_weights(x, lengths)
        return torch.sum(x * weights.unsqueeze(-1), dim=1)

    def attention_weights(self, x, lengths=None):
        """Softmax weights over time, zero on padded frames.

        Arguments
        ---------
        x : torch.Tensor
            ``[B, T, C]`` features.
        lengths : torch.Tensor, optional
            ``[B]`` relative lengths.

        Returns
        -------
        torch.Tensor
            ``[B, T]``, each row summing to 1.
        """
        scores = self.score(x).squeeze(-1).float()
        scores = scores.masked_fill(~frame_mask(x, lengths), float("-inf"))
        return torch.softmax(scores, dim=1).to(x.dtype)
