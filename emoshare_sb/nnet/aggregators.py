"""Length-aware aggregators: frame-level features ``[B, T, C]`` to one vector per clip.

Every module here follows the interface of :mod:`emoshare_sb.nnet.pooling`:
``forward(x [B, T, C], lengths [B]) -> [B, D]`` with SpeechBrain relative
lengths, and padded frames never influence the output (in eval mode), so a
clip's embedding does not depend on what it was batched with. Each module
has an ``output_size`` attribute (``D``).

* :class:`MaskedAttentiveStatisticsPooling`: ECAPA's attentive statistics
  pooling (attention-weighted mean and standard deviation);
* :class:`ECAPAAggregator`: SpeechBrain's ECAPA-TDNN over SSL features, as in
  Morais et al. (2022);
* :class:`CNNLSTM`: architectures 1 and 2 of Mohapatra et al. (2023),
  CNN + 2-layer LSTM, optionally with the hidden-state-query attention;
* :class:`TCGRU`: the temporal-convolution GRU of Mitra et al. (2025).

Two defects of SpeechBrain's ECAPA pieces are worked around here, each with
an upstream patch in ``upstream/``:

* SpeechBrain's ``AttentiveStatisticsPooling`` and ``SEBlock`` build their
  masks as ``arange(T) < lengths * T`` without rounding; for 6,715 of the
  179,101 ``(n, T)`` pairs with ``T < 600`` the float32 product ``(n / T) *
  T`` exceeds ``n`` and one padded frame is counted as valid. The modules here
  pass :func:`~emoshare_sb.nnet.pooling.exact_relative_lengths` instead,
  which selects exactly ``n`` frames (patch
  ``upstream/ecapa-tdnn-mask-rounding``).
* SpeechBrain's ``Conv1d`` pads with ``reflect`` and ECAPA-TDNN convolves
  the padded frames of a batch as if they were signal: at the end of a clip
  in a padded batch a convolution sees padding instead of what the unpadded
  clip sees. The ECAPA aggregator switches its convolutions to zero padding
  and zeroes the padded frames at the input of every convolution wider than
  one frame, which reproduces exactly what the unpadded clip sees (patch
  ``upstream/ecapa-tdnn-zero-padding``).

Authors
 * emoshare_sb contributors 2026
"""

import torch
from speechbrain.lobes.models.ECAPA_TDNN import (
    ECAPA_TDNN,
    AttentiveStatisticsPooling,
)
from speechbrain.nnet.CNN import Conv1d as SBConv1d

from emoshare_sb.nnet.pooling import (
    exact_relative_lengths,
    frame_mask,
    masked_mean,
)


class MaskedAttentiveStatisticsPooling(torch.nn.Module):
    """Attentive statistics pooling over the valid frames.

    A wrapper of SpeechBrain's ``AttentiveStatisticsPooling`` (the pooling of
    ECAPA-TDNN): a small TDNN scores every frame and channel, the scores are
    softmax-normalised over the valid frames, and the attention-weighted mean
    and standard deviation are concatenated. With ``global_context`` the
    scorer also sees the clip's (masked) mean and standard deviation.

    SpeechBrain's layer takes relative lengths but does not round them (see
    the module docstring); this wrapper passes lengths that select exactly the
    valid frames, and takes and returns SpeechBrain's usual ``[B, T, C]`` /
    ``[B, D]`` layout.

    Arguments
    ---------
    input_size : int
        Feature dimension ``C``.
    hidden_size : int
        Attention channels of the scoring TDNN.
    global_context : bool
        Let the scorer see the clip-level mean and standard deviation.

    Example
    -------
    >>> pool = MaskedAttentiveStatisticsPooling(
    ...     input_size=16, hidden_size=8
    ... ).eval()
    >>> x = torch.randn(2, 10, 16)
    >>> pool(x, torch.tensor([1.0, 0.6])).shape
    torch.Size([2, 32])
    >>> pool.output_size
    32
    """

    def __init__(self, input_size, hidden_size=128, global_context=True):
        super().__init__()
        self.asp = AttentiveStatisticsPooling(
            input_size,
            attention_channels=hidden_size,
            global_context=global_context,
        )
        self.output_size = 2 * input_size

    def forward(self, x, lengths=None):
        """Pools ``[B, T, C]`` features into ``[B, 2C]`` (mean, then std).

        Arguments
        ---------
        x : torch.Tensor
            ``[B, T, C]`` features.
        lengths : torch.Tensor, optional
            ``[B]`` relative lengths.

        Returns
        -------
        torch.Tensor
            ``[B, 2C]``.
        """
        mask = frame_mask(x, lengths)
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)
        pooled = self.asp(
            x.transpose(1, 2), lengths=exact_relative_lengths(mask)
        )
        return pooled.squeeze(-1)


class ECAPAAggregator(ECAPA_TDNN):
    """SpeechBrain's ECAPA-TDNN as an aggregator of SSL features.

    Morais et al. (2022) feed (fine-tuned) wav2vec 2.0 / HuBERT features to an
    ECAPA-TDNN and classify its utterance embedding. This subclass keeps
    SpeechBrain's modules, parameters (its state dict is an ``ECAPA_TDNN``
    state dict) and forward pass, and overrides only what makes padding change
    the embedding (see the module docstring):

    * convolutions use zero padding instead of ``reflect``, and a forward
      pre-hook on every convolution wider than one frame zeroes the padded
      frames of its input (inside the Res2Net blocks too), so the last valid
      frames see exactly the zeros an unpadded clip sees; kernel-1
      convolutions, activations and eval-mode BatchNorm are per frame and
      need nothing;
    * the squeeze-excitation means and the attentive statistics pooling get
      relative lengths that select exactly the valid frames.

    :meth:`forward` returns ``[B, lin_neurons]`` (SpeechBrain's
    ``[B, 1, lin_neurons]`` squeezed), the aggregator interface of this
    package. Once SpeechBrain merges the two patches, the subclass reduces
    to ``ECAPA_TDNN(..., padding_mode="constant")`` and that squeeze.

    In training mode BatchNorm statistics come from the whole padded batch,
    padded frames included (as in every SpeechBrain ECAPA recipe), and a batch
    of one clip fails in the final BatchNorm. Under DDP, SpeechBrain converts
    BatchNorm to SyncBatchNorm, which needs GPUs (see
    :class:`emoshare_sb.training.brain.EmotionBrain`).

    Arguments
    ---------
    input_size : int
        Feature dimension ``C`` (e.g. 1024 for large SSL models).
    lin_neurons : int
        Embedding size.
    channels : sequence of int
        Output channels of the TDNN, the SE-Res2Net blocks and the
        multi-layer aggregation (SpeechBrain's default, the "C=512" ECAPA).
    kernel_sizes : sequence of int
        Kernel size of each of those layers.
    dilations : sequence of int
        Dilation of each of those layers.
    attention_channels : int
        Channels of the attentive statistics pooling.
    res2net_scale : int
        Scale of the Res2Net blocks.
    se_channels : int
        Bottleneck of the squeeze-excitation blocks.
    global_context : bool
        Global context in the attentive statistics pooling.
    groups : sequence of int
        Convolution groups of each layer.
    dropout : float
        Channel dropout in the TDNN blocks.
    activation : type
        Activation class.

    Example
    -------
    >>> ecapa = ECAPAAggregator(
    ...     input_size=32, lin_neurons=16, channels=[64, 64, 64, 64, 192]
    ... ).eval()
    >>> ecapa(torch.randn(3, 40, 32), torch.tensor([1.0, 0.7, 0.3])).shape
    torch.Size([3, 16])
    >>> sum(p.numel() for p in ECAPAAggregator(input_size=1024).parameters())
    8610688
    """

    def __init__(
        self,
        input_size,
        lin_neurons=192,
        channels=(512, 512, 512, 512, 1536),
        kernel_sizes=(5, 3, 3, 3, 1),
        dilations=(1, 2, 3, 4, 1),
        attention_channels=128,
        res2net_scale=8,
        se_channels=128,
        global_context=True,
        groups=(1, 1, 1, 1, 1),
        dropout=0.0,
        activation=torch.nn.ReLU,
    ):
        super().__init__(
            input_size,
            lin_neurons=lin_neurons,
            activation=activation,
            channels=list(channels),
            kernel_sizes=list(kernel_sizes),
            dilations=list(dilations),
            attention_channels=attention_channels,
            res2net_scale=res2net_scale,
            se_channels=se_channels,
            global_context=global_context,
            groups=list(groups),
            dropout=dropout,
        )
        self._valid = None  # [B, 1, T] during a forward pass with lengths
        for module in self.modules():
            if isinstance(module, SBConv1d):
                module.padding_mode = "constant"
                if module.kernel_size > 1:
                    module.register_forward_pre_hook(self._zero_padded_frames)
        self.output_size = lin_neurons

    def _zero_padded_frames(self, conv, args):
        """Forward pre-hook of a convolution: zeroes its input's padded frames."""
        if self._valid is None:
            return None
        return (args[0].masked_fill(~self._valid, 0.0), *args[1:])

    def forward(self, x, lengths=None):
        """Embeds ``[B, T, C]`` features into ``[B, lin_neurons]``.

        Arguments
        ---------
        x : torch.Tensor
            ``[B, T, C]`` features.
        lengths : torch.Tensor, optional
            ``[B]`` relative lengths.

        Returns
        -------
        torch.Tensor
            ``[B, lin_neurons]``.
        """
        if lengths is None:  # no padding: SpeechBrain's forward as it is
            return super().forward(x).squeeze(1)
        mask = frame_mask(x, lengths)
        self._valid = mask.unsqueeze(1)
        try:
            embedding = super().forward(x, exact_relative_lengths(mask))
        finally:
            self._valid = None
        return embedding.squeeze(1)


class CNNLSTM(torch.nn.Module):
    """CNN + LSTM aggregator of Mohapatra et al. (2023), with optional attention.

    Architecture 1: a stack of 1-D convolutions (kernel 3, ReLU) followed by a
    max-pooling that halves the sequence length, a 2-layer LSTM, and the mean
    of the LSTM outputs over the valid steps (their eq. 1).

    Architecture 2 (``attention=True``): the final hidden states of both LSTM
    layers, ``h_n`` ``[2, B, H]``, are flattened to ``[B, 2H]`` and projected
    to a query ``Q = W_Q h'_n`` (eq. 2a); the query attends over the LSTM
    outputs, which are both keys and values (eq. 2b), with the padded steps
    masked out. The paper's text scales the scores by ``1 / W_l``; its
    released code (and the default here) uses the usual ``1 / sqrt(W_l)``.

    The paper trains one network per emotion; this is one multi-output model
    (the heads are separate). The defaults are the sizes of the released code
    (convolutions 1024 -> 768 -> 384 -> 192, LSTM of 512). Lengths are
    propagated through the pooling (``ceil(n / 2)`` valid steps, the last
    odd frame kept) and the LSTM runs on packed sequences, so padding does not
    change the output.

    Arguments
    ---------
    input_size : int
        Feature dimension ``C``.
    conv_channels : sequence of int
        Output channels of each convolution (``W_c`` is the last one).
    kernel_size : int
        Convolution kernel size (odd; "same" zero padding).
    hidden_size : int
        LSTM size ``W_l`` (the embedding size).
    num_layers : int
        LSTM layers.
    attention : bool
        Architecture 2 (attention) instead of architecture 1 (mean).
    scale : float, optional
        Attention score scale; None is ``1 / sqrt(hidden_size)``.
    dropout : float
        Dropout between LSTM layers.
    sequence_norm_frames : int, optional
        The released code's sequence layer norms (its attention model): the
        pooled sequence is zero-padded to this many steps and layer-normed
        over all of them, ``LayerNorm((L, W_c))`` (its ``ln1``), before the
        LSTM; with attention, the attention weights, zero on padded steps,
        are layer-normed over the ``L`` steps too, ``LayerNorm((1, L))``
        (its ``ln3``), and weight the LSTM outputs (zero on padded steps).
        Both norms mix padding into the result, so a clip's output depends
        on ``L``. The code uses the corpus' longest clip (199 steps). None
        (the default): no such norms.

    Example
    -------
    >>> model = CNNLSTM(
    ...     input_size=32,
    ...     conv_channels=(24, 16),
    ...     hidden_size=20,
    ...     attention=True,
    ... )
    >>> model(torch.randn(3, 15, 32), torch.tensor([1.0, 0.6, 0.1])).shape
    torch.Size([3, 20])
    >>> sum(p.numel() for p in CNNLSTM(1024).parameters())
    7013696
    >>> sum(p.numel() for p in CNNLSTM(1024, attention=True).parameters())
    7538496
    >>> normed = CNNLSTM(
    ...     32, (16,), hidden_size=8, attention=True, sequence_norm_frames=10
    ... )
    >>> normed(torch.randn(2, 20, 32), torch.tensor([1.0, 0.5])).shape
    torch.Size([2, 8])
    """

    def __init__(
        self,
        input_size,
        conv_channels=(768, 384, 192),
        kernel_size=3,
        hidden_size=512,
        num_layers=2,
        attention=False,
        scale=None,
        dropout=0.0,
        sequence_norm_frames=None,
    ):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        sizes = [input_size] + list(conv_channels)
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2)
            for c_in, c_out in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.activation = torch.nn.ReLU()
        self.pool = torch.nn.MaxPool1d(kernel_size=2, stride=2, ceil_mode=True)
        self.lstm = torch.nn.LSTM(
            sizes[-1],
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.attention = attention
        self.scale = scale
        if attention:
            self.query = torch.nn.Linear(num_layers * hidden_size, hidden_size)
        self.output_size = hidden_size
        self.sequence_norm_frames = sequence_norm_frames
        if sequence_norm_frames is not None:
            self.sequence_norm = torch.nn.LayerNorm(
                (sequence_norm_frames, sizes[-1])
            )
            if attention:
                self.weight_norm = torch.nn.LayerNorm((1, sequence_norm_frames))

    def forward(self, x, lengths=None):
        """Embeds ``[B, T, C]`` features into ``[B, hidden_size]``.

        Arguments
        ---------
        x : torch.Tensor
            ``[B, T, C]`` features.
        lengths : torch.Tensor, optional
            ``[B]`` relative lengths.

        Returns
        -------
        torch.Tensor
            ``[B, hidden_size]``.
        """
        mask = frame_mask(x, lengths)
        valid = mask.unsqueeze(1)
        h = x.transpose(1, 2)
        for conv in self.convs:
            h = self.activation(conv(h.masked_fill(~valid, 0.0)))
        # Halve the length; padded frames never win the max.
        h = self.pool(h.masked_fill(~valid, float("-inf")))
        steps = (mask.sum(dim=1) + 1) // 2
        mask = (
            torch.arange(h.shape[-1], device=h.device)[None, :] < steps[:, None]
        )
        h = h.masked_fill(~mask.unsqueeze(1), 0.0).transpose(1, 2)
        if self.sequence_norm_frames is not None:
            h, mask = self.pad_to_norm_length(h, mask)
            h = self.sequence_norm(h)

        packed = torch.nn.utils.rnn.pack_padded_sequence(
            h, steps.cpu(), batch_first=True, enforce_sorted=False
        )
        out, (h_n, _) = self.lstm(packed)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(
            out, batch_first=True, total_length=h.shape[1]
        )
        if not self.attention:
            return masked_mean(out, mask)
        query = self.query(h_n.transpose(0, 1).reshape(h_n.shape[1], -1))
        if self.sequence_norm_frames is not None:
            return self.normed_attention(query, out, mask)
        attended = torch.nn.functional.scaled_dot_product_attention(
            query.unsqueeze(1),
            out,
            out,
            attn_mask=mask.unsqueeze(1),
            scale=self.scale,
        )
        return attended.squeeze(1)

    def pad_to_norm_length(self, h, mask):
        """Zero-pads ``[B, T, C]`` pooled steps (and the mask) to ``L`` steps."""
        length = self.sequence_norm_frames
        if h.shape[1] > length:
            raise ValueError(
                f"a clip has {h.shape[1]} steps after pooling, more than "
                f"sequence_norm_frames={length}: raise it (the released code "
                "uses the corpus' longest clip)"
            )
        extra = length - h.shape[1]
        h = torch.nn.functional.pad(h, (0, 0, 0, extra))
        mask = torch.nn.functional.pad(mask, (0, extra), value=False)
        return h, mask

    def normed_attention(self, query, out, mask):
        """The released code's attention: softmax over the valid steps, then
        ``LayerNorm((1, L))`` over all ``L`` weights, applied to ``out``."""
        scale = self.scale if self.scale is not None else out.shape[-1] ** -0.5
        scores = torch.einsum("bc,btc->bt", query, out) * scale
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), -1)
        weights = self.weight_norm(weights.unsqueeze(1)).squeeze(1)
        out = out.masked_fill(~mask.unsqueeze(-1), 0.0)
        return torch.einsum("bt,btc->bc", weights, out)


class TCGRU(torch.nn.Module):
    """Temporal-convolution GRU (TC-GRU) of Mitra et al. (2025).

    A temporal convolution (kernel 3, ReLU), two GRU layers of 256 units and
    an embedding layer of 256 units. With ``conv_channels=256`` on
    1024-dimensional features (HuBERT/WavLM large) the model has 1.64 M
    parameters, the "1.6M parameters" of the paper's appendix A.8 (the
    convolution holds 0.79 M, the GRUs 0.79 M, the embedding 0.07 M); the
    multi-task output heads are separate.

    The paper names no pooling stage between the GRU and the embedding layer,
    i.e. the GRU is used sequence-to-one: by default the embedding is computed
    from the final hidden state of the top GRU layer, taken at each clip's
    last valid frame (packed sequences). ``pooling="mean"`` uses the mean of
    the GRU outputs over the valid frames instead.

    Arguments
    ---------
    input_size : int
        Feature dimension ``C``.
    conv_channels : int
        Output channels of the temporal convolution.
    kernel_size : int
        Temporal convolution kernel size (odd; "same" zero padding).
    gru_size : int
        Units per GRU layer.
    num_layers : int
        GRU layers.
    embedding_size : int
        Size of the embedding layer (the output).
    pooling : str
        ``"last"`` (final hidden state) or ``"mean"`` (masked mean of the
        GRU outputs).
    dropout : float
        Dropout between GRU layers.
    activation : type
        Activation class after the convolution and the embedding layer.

    Example
    -------
    >>> model = TCGRU(input_size=1024)
    >>> sum(p.numel() for p in model.parameters())
    1641984
    >>> model(torch.randn(2, 50, 1024), torch.tensor([1.0, 0.5])).shape
    torch.Size([2, 256])
    """

    def __init__(
        self,
        input_size=1024,
        conv_channels=256,
        kernel_size=3,
        gru_size=256,
        num_layers=2,
        embedding_size=256,
        pooling="last",
        dropout=0.0,
        activation=torch.nn.ReLU,
    ):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if pooling not in ("last", "mean"):
            raise ValueError(
                f"pooling must be 'last' or 'mean', got {pooling!r}"
            )
        self.conv = torch.nn.Conv1d(
            input_size, conv_channels, kernel_size, padding=kernel_size // 2
        )
        self.conv_activation = activation()
        self.gru = torch.nn.GRU(
            conv_channels,
            gru_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.embedding = torch.nn.Sequential(
            torch.nn.Linear(gru_size, embedding_size), activation()
        )
        self.pooling = pooling
        self.output_size = embedding_size

    def forward(self, x, lengths=None):
        """Embeds ``[B, T, C]`` features into ``[B, embedding_size]``.

        Arguments
        ---------
        x : torch.Tensor
            ``[B, T, C]`` features.
        lengths : torch.Tensor, optional
            ``[B]`` relative lengths.

        Returns
        -------
        torch.Tensor
            ``[B, embedding_size]``.
        """
        mask = frame_mask(x, lengths)
        h = x.masked_fill(~mask.unsqueeze(-1), 0.0).transpose(1, 2)
        h = self.conv_activation(self.conv(h)).transpose(1, 2)
        steps = mask.sum(dim=1)
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            h, steps.cpu(), batch_first=True, enforce_sorted=False
        )
        out, h_n = self.gru(packed)
        if self.pooling == "last":
            summary = h_n[-1]
        else:
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(
                out, batch_first=True, total_length=h.shape[1]
            )
            summary = masked_mean(out, mask)
        return self.embedding(summary)
