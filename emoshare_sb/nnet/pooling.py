"""Length-aware pooling of frame-level features into one vector per clip.

Each module takes SpeechBrain relative lengths and ignores padding, so a
clip's embedding does not depend on what it was batched with. They stand in
for two SpeechBrain modules that cannot do that today:

* ``speechbrain.nnet.pooling.AttentionPooling`` takes no lengths, so padded
  frames get attention weight: :class:`MaskedAttentivePooling` (upstream
  patch ``upstream/attention-pooling-lengths``);
* ``speechbrain.nnet.pooling.StatisticsPooling`` adds random noise (about
  1e-5) to the mean in eval mode too, so the same clip gives different
  embeddings from one call to the next: :class:`MaskedMeanPooling` (upstream
  patch ``upstream/statistics-pooling-eval-noise``).

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


def exact_relative_lengths(mask):
    """Relative lengths that every SpeechBrain mask reads back as exactly n frames.

    SpeechBrain builds some masks without rounding: ``length_to_mask(lengths
    * T)`` keeps frames ``t < lengths * T`` (ECAPA-TDNN's pooling and
    squeeze-excitation) and ``make_padding_mask`` keeps ``t < lengths * T -
    1e-6`` (``InputNormalization``). For many ``(n, T)`` the float32 product
    ``(n / T) * T`` exceeds ``n`` by more than that and one padded frame is
    counted as valid. ``lengths = (n - 0.25) / T`` is a quarter frame away
    from any whole number, far above float rounding: those masks keep the
    first ``n`` frames, and so do the rounding ones (:func:`frame_mask`,
    and SpeechBrain's masks once the upstream patches
    ``upstream/ecapa-tdnn-mask-rounding`` and
    ``upstream/make-padding-mask-rounding`` are merged; then plain ``n / T``
    will do).

    Arguments
    ---------
    mask : torch.Tensor
        ``[B, T]`` bool mask of the valid frames (see :func:`frame_mask`).

    Returns
    -------
    torch.Tensor
        ``[B]`` float relative lengths.

    Example
    -------
    >>> mask = torch.tensor([[True, True, True, False, False, False, False]])
    >>> rel = exact_relative_lengths(mask)
    >>> length_to_mask(rel * 7, max_len=7).bool().equal(mask)
    True
    >>> frame_mask(torch.zeros(1, 7, 1), rel).equal(mask)
    True
    """
    return (mask.sum(dim=1).float() - 0.25) / mask.shape[1]


def masked_mean(x, mask):
    """Mean of ``x`` ``[B, T, C]`` over the frames where ``mask`` ``[B, T]`` is True.

    Arguments
    ---------
    x : torch.Tensor
        ``[B, T, C]`` features.
    mask : torch.Tensor
        ``[B, T]`` bool; every row has at least one True.

    Returns
    -------
    torch.Tensor
        ``[B, C]``.

    Example
    -------
    >>> x = torch.tensor([[[1.0], [3.0], [100.0]]])
    >>> masked_mean(x, torch.tensor([[True, True, False]]))
    tensor([[2.]])
    """
    weights = mask.unsqueeze(-1).to(x.dtype)
    return (x * weights).sum(dim=1) / weights.sum(dim=1)


class MaskedMeanPooling(torch.nn.Module):
    """Mean over the valid frames.

    SpeechBrain's ``StatisticsPooling(return_std=False)`` computes the same
    mean but adds noise to it in eval mode too (see the module docstring).

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
        return masked_mean(x, frame_mask(x, lengths))


def _drop_score_bias(module, state_dict, prefix, *args):
    """Load-state-dict pre-hook: drops the last scoring layer's bias of old state dicts."""
    state_dict.pop(f"{prefix}score.{_last_layer_name(module)}bias", None)


def _last_layer_name(module):
    """``""`` for a linear scorer, ``"<i>."`` for the last layer of an MLP one."""
    if isinstance(module.score, torch.nn.Sequential):
        return f"{len(module.score) - 1}."
    return ""


class MaskedAttentivePooling(torch.nn.Module):
    """Attentive pooling: a learned softmax weighting of the valid frames.

    Each frame gets a score from a linear layer (``hidden_size=None``, as in
    SpeechBrain's ``AttentionPooling``) or a small tanh MLP; padded frames get
    no weight. The last scoring layer has no bias: a bias adds the same value
    to every frame's score, which the softmax cancels, so it would be a
    parameter that never gets a gradient. State dicts saved with that bias
    (before it was removed) still load; the bias is dropped.

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
    >>> sum(p.numel() for p in pool.parameters())
    8
    """

    def __init__(self, input_size, hidden_size=None):
        super().__init__()
        if hidden_size is None:
            self.score = torch.nn.Linear(input_size, 1, bias=False)
        else:
            self.score = torch.nn.Sequential(
                torch.nn.Linear(input_size, hidden_size),
                torch.nn.Tanh(),
                torch.nn.Linear(hidden_size, 1, bias=False),
            )
        self.register_load_state_dict_pre_hook(_drop_score_bias)

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
