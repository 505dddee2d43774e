"""Combining representations: SSL layers, two encoders, two utterance embeddings.

Everything here fits the recipes' ``encoder -> pooling -> head`` structure:

* :class:`WeightedLayerSum`: the SUPERB learned softmax-weighted sum of all
  hidden states of one SSL encoder, and :class:`LayerMixEncoder`, which puts
  it after the encoder so the pair is an encoder ``(wavs, wav_lens) -> [B,
  T, C]`` (the mix is trained with the head);
* :class:`EarlyFusion`: frame-level concatenation of the features of several
  encoders (Morais et al. 2022, "huBERT + W2V2" before one ECAPA-TDNN);
* :class:`ChannelSplitPooling`: one aggregator per encoder's channels of an
  :class:`EarlyFusion` output, utterance embeddings concatenated: late fusion
  (Morais et al. 2022, "huBERT & W2V2", one ECAPA-TDNN per encoder).

Authors
 * emoshare_sb contributors 2026
"""

import torch

from emoshare_sb.lobes import feature_lengths
from emoshare_sb.nnet.pooling import frame_mask


class WeightedLayerSum(torch.nn.Module):
    """Learned softmax-weighted sum of stacked hidden states ``[L, B, T, C]``.

    Takes the output of ``SSLEncoder(layer="all")``. The weights start equal
    (zero logits), as in SUPERB and SpeechBrain's ``WeightedSSLModel``, which
    runs its own encoder; this module only combines the states, so the same
    encoder output can also feed other heads.

    Optionally each layer is normalised first:

    * ``"frame"`` (or True): layer norm of every frame over the channels, as
      SUPERB and SpeechBrain do; frames are normalised independently, so
      padding cannot leak;
    * ``"utterance"``: every layer of every clip is standardised with the mean
      and standard deviation over its valid frames and channels, so layers of
      very different scales are comparable and padding is ignored.

    Padded frames of the output are zero when ``lengths`` is given.

    Arguments
    ---------
    num_layers : int
        Number of hidden states ``L`` (``SSLEncoder.num_layers``).
    layer_norm : bool or str, optional
        None/False, ``"frame"``/True or ``"utterance"``.
    eps : float
        Added to the variance in the normalisations.

    Example
    -------
    >>> combine = WeightedLayerSum(num_layers=3)
    >>> hidden = torch.randn(3, 2, 10, 8)
    >>> combine(hidden, torch.tensor([1.0, 0.5])).shape
    torch.Size([2, 10, 8])
    >>> combine.layer_weights()
    tensor([0.3333, 0.3333, 0.3333], grad_fn=<SoftmaxBackward0>)
    """

    def __init__(self, num_layers, layer_norm=None, eps=1e-5):
        super().__init__()
        if layer_norm is True:
            layer_norm = "frame"
        if layer_norm not in (None, False, "frame", "utterance"):
            raise ValueError(
                f"layer_norm must be None, 'frame' or 'utterance', got {layer_norm!r}"
            )
        self.num_layers = num_layers
        self.layer_norm = layer_norm or None
        self.eps = eps
        self.weights = torch.nn.Parameter(torch.zeros(num_layers))

    def layer_weights(self):
        """The softmax-normalised layer weights ``[L]`` (they sum to 1).

        Returns
        -------
        torch.Tensor
            ``[L]``.
        """
        return torch.softmax(self.weights, dim=0)

    def forward(self, hidden_states, lengths=None):
        """Combines ``[L, B, T, C]`` hidden states into ``[B, T, C]``.

        Arguments
        ---------
        hidden_states : torch.Tensor
            ``[L, B, T, C]`` stacked hidden states.
        lengths : torch.Tensor, optional
            ``[B]`` relative lengths.

        Returns
        -------
        torch.Tensor
            ``[B, T, C]``.
        """
        if hidden_states.shape[0] != self.num_layers:
            raise ValueError(
                f"expected {self.num_layers} hidden states, got {hidden_states.shape[0]}"
                " (num_layers must be the encoder's number of hidden states)"
            )
        mask = frame_mask(hidden_states[0], lengths)  # [B, T]
        valid = mask[None, :, :, None]
        hidden_states = hidden_states.masked_fill(~valid, 0.0)
        if self.layer_norm == "frame":
            hidden_states = torch.nn.functional.layer_norm(
                hidden_states, hidden_states.shape[-1:], eps=self.eps
            )
        elif self.layer_norm == "utterance":
            weights = valid.to(hidden_states.dtype)
            count = (
                weights.sum(dim=(2, 3), keepdim=True) * hidden_states.shape[-1]
            )
            mean = hidden_states.sum(dim=(2, 3), keepdim=True) / count
            centred = (hidden_states - mean) * weights
            var = (centred**2).sum(dim=(2, 3), keepdim=True) / count
            hidden_states = centred / torch.sqrt(var + self.eps)
        weights = self.layer_weights().to(hidden_states.dtype).view(-1, 1, 1, 1)
        combined = (hidden_states * weights).sum(dim=0)
        return combined.masked_fill(~mask.unsqueeze(-1), 0.0)


class EarlyFusion(torch.nn.Module):
    """Frame-level concatenation of the features of several encoders.

    Each encoder maps ``(wavs, wav_lens)`` to ``[B, T_i, C_i]``; frame counts
    can differ by a frame or two between families, so every output is
    truncated to the shortest ``T`` before concatenating the channels. The
    result is ``[B, T, sum(C_i)]``, with ``output_size = sum(C_i)``, a drop-in
    encoder for any aggregator. :meth:`feature_lengths` gives each clip's
    exact number of valid fused frames (the fewest over the encoders).

    Arguments
    ---------
    encoders : list of torch.nn.Module
        Encoders with an ``output_size`` attribute (e.g.
        :class:`~emoshare_sb.lobes.ssl.SSLEncoder`, the front-ends of
        :mod:`emoshare_sb.lobes.frontends`).

    Example
    -------
    >>> from emoshare_sb.lobes.frontends import FbankFrontEnd, MFCCFrontEnd
    >>> fusion = EarlyFusion([FbankFrontEnd(), MFCCFrontEnd()])
    >>> fusion(torch.randn(2, 16000), torch.tensor([1.0, 0.5])).shape
    torch.Size([2, 101, 60])
    >>> fusion.output_size
    60
    >>> (
    ...     fusion.feature_lengths(torch.tensor([1.0, 0.5]), 16000, 101) * 101
    ... ).round()
    tensor([101.,  51.])
    """

    def __init__(self, encoders):
        super().__init__()
        if len(encoders) < 2:
            raise ValueError("EarlyFusion needs at least two encoders")
        self.encoders = torch.nn.ModuleList(encoders)
        self.output_size = sum(encoder.output_size for encoder in encoders)

    def forward(self, wavs, wav_lens=None):
        """Encodes with every encoder and concatenates the frames.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]``.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths.

        Returns
        -------
        torch.Tensor
            ``[B, T, output_size]``.
        """
        feats = [encoder(wavs, wav_lens) for encoder in self.encoders]
        time = min(f.shape[-2] for f in feats)
        return torch.cat([f[..., :time, :] for f in feats], dim=-1)

    def feature_lengths(self, wav_lens, num_samples, num_frames):
        """Exact relative lengths of the fused frames: the fewest over the encoders.

        Arguments
        ---------
        wav_lens : torch.Tensor
            ``[B]`` relative waveform lengths.
        num_samples : int
            Samples of the padded waveform batch.
        num_frames : int
            Frames of the fused (truncated) batch.

        Returns
        -------
        torch.Tensor
            ``[B]`` valid frames divided by ``num_frames``.
        """
        lengths = [
            feature_lengths(encoder, wav_lens, num_samples, num_frames)
            for encoder in self.encoders
        ]
        return torch.stack(lengths).amin(dim=0)


class LayerMixEncoder(torch.nn.Module):
    """An encoder returning all hidden states, followed by a learned layer mix.

    ``encoder(wavs, wav_lens)`` gives ``[L, B, T, C]`` (e.g.
    :class:`~emoshare_sb.lobes.ssl.SSLEncoder` or
    :class:`~emoshare_sb.lobes.whisper.WhisperEncoder` with ``layer="all"``)
    and ``layer_mix(hidden, lengths)`` combines them into ``[B, T, C]`` (e.g.
    :class:`WeightedLayerSum`), with the encoder's exact frame lengths. The
    pair is a drop-in encoder with ``output_size``, the SSL encoder's
    ``num_layers`` and its ``feature_lengths``.

    The mix belongs to the downstream model: a recipe puts ``layer_mix`` in its
    trainable ``model`` so the head's optimizer trains it and checkpoint
    averaging averages it. The recipes run a frozen encoder without autograd
    (``EmotionBrain.encode``), so in training mode this module re-enables
    autograd for the mix alone: the SSL features stay graph-free, the mix
    weights get gradients. In eval mode nothing is recorded.

    Arguments
    ---------
    encoder : torch.nn.Module
        Returns stacked hidden states ``[L, B, T, C]``; needs ``output_size``.
    layer_mix : torch.nn.Module
        ``(hidden [L, B, T, C], lengths [B]) -> [B, T, C]`` (relative frame
        lengths).

    Example
    -------
    >>> from emoshare_sb.lobes.ssl import SSLEncoder
    >>> from emoshare_sb.synthetic import make_tiny_ssl_model
    >>> source = make_tiny_ssl_model(str(getfixture("tmpdir") / "tiny"))
    >>> ssl = SSLEncoder(
    ...     source, save_path=str(getfixture("tmpdir")), layer="all"
    ... )
    >>> encoder = LayerMixEncoder(ssl, WeightedLayerSum(ssl.num_layers)).train()
    >>> with torch.no_grad():  # as the recipes run a frozen encoder
    ...     feats = encoder(torch.randn(2, 16000), torch.tensor([1.0, 0.5]))
    >>> feats.shape, encoder.output_size, feats.requires_grad
    (torch.Size([2, 49, 32]), 32, True)
    """

    def __init__(self, encoder, layer_mix):
        super().__init__()
        if getattr(encoder, "layer", "all") != "all":
            raise ValueError(
                f"the encoder must return every hidden state (layer='all'), "
                f"got layer={encoder.layer!r}"
            )
        expected = getattr(layer_mix, "num_layers", None)
        num_layers = getattr(encoder, "num_layers", None)
        if None not in (expected, num_layers) and expected != num_layers:
            raise ValueError(
                f"the layer mix combines {expected} hidden states but the encoder "
                f"has {num_layers}: set the mix's num_layers to the encoder's num_layers"
            )
        self.encoder = encoder
        self.layer_mix = layer_mix
        self.output_size = encoder.output_size
        self.num_layers = num_layers

    def forward(self, wavs, wav_lens=None):
        """Encodes, then mixes the hidden states.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]``.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths.

        Returns
        -------
        torch.Tensor
            ``[B, T, output_size]``.
        """
        hidden = self.encoder(wavs, wav_lens)
        lengths = wav_lens
        if wav_lens is not None:
            lengths = self.feature_lengths(
                wav_lens, wavs.shape[-1], hidden.shape[-2]
            )
        with torch.set_grad_enabled(torch.is_grad_enabled() or self.training):
            return self.layer_mix(hidden, lengths)

    def feature_lengths(self, wav_lens, num_samples, num_frames):
        """The encoder's exact relative frame lengths (the mix keeps the frames).

        Arguments
        ---------
        wav_lens : torch.Tensor
            ``[B]`` relative waveform lengths.
        num_samples : int
            Samples of the padded waveform batch.
        num_frames : int
            Frames of the padded feature batch.

        Returns
        -------
        torch.Tensor
            ``[B]`` valid frames divided by ``num_frames``.
        """
        return feature_lengths(self.encoder, wav_lens, num_samples, num_frames)


class ChannelSplitPooling(torch.nn.Module):
    """Pools consecutive channel groups with their own aggregators (late fusion).

    The features ``[B, T, sum(split_sizes)]`` of an :class:`EarlyFusion`
    encoder are split back into each encoder's channels; group ``i`` is pooled
    by ``aggregators[i]`` and the utterance embeddings are concatenated into
    ``[B, sum(D_i)]``. With one ECAPA-TDNN per encoder this is the late fusion
    of Morais et al. (2022): the same encoder as early fusion, a different
    pooling, so both fit a recipe's ``encoder -> pooling -> head``.

    Arguments
    ---------
    aggregators : list of torch.nn.Module
        One per group, ``(x [B, T, C_i], lengths) -> [B, D_i]``; ``D_i`` is
        the aggregator's ``output_size``, or ``C_i`` for one without (mean or
        attentive pooling).
    split_sizes : list of int
        Channels of each group, in order (each encoder's ``output_size``).

    Example
    -------
    >>> from emoshare_sb.nnet.pooling import MaskedMeanPooling
    >>> from emoshare_sb.nnet.aggregators import TCGRU
    >>> aggregators = [
    ...     MaskedMeanPooling(),
    ...     TCGRU(8, conv_channels=4, gru_size=4, embedding_size=5),
    ... ]
    >>> pooling = ChannelSplitPooling(aggregators, split_sizes=[6, 8])
    >>> pooling(torch.randn(2, 10, 14), torch.tensor([1.0, 0.5])).shape
    torch.Size([2, 11])
    >>> pooling.output_size
    11
    """

    def __init__(self, aggregators, split_sizes):
        super().__init__()
        if len(aggregators) != len(split_sizes) or len(aggregators) < 2:
            raise ValueError(
                "ChannelSplitPooling needs one aggregator per channel group and at "
                f"least two groups, got {len(aggregators)} aggregators and "
                f"split sizes {list(split_sizes)}"
            )
        self.aggregators = torch.nn.ModuleList(aggregators)
        self.split_sizes = [int(size) for size in split_sizes]
        self.output_size = sum(
            getattr(aggregator, "output_size", size)
            for aggregator, size in zip(
                aggregators, self.split_sizes, strict=True
            )
        )

    def forward(self, x, lengths=None):
        """Pools each channel group and concatenates the embeddings.

        Arguments
        ---------
        x : torch.Tensor
            ``[B, T, sum(split_sizes)]`` features.
        lengths : torch.Tensor, optional
            ``[B]`` relative lengths.

        Returns
        -------
        torch.Tensor
            ``[B, output_size]``.
        """
        if x.shape[-1] != sum(self.split_sizes):
            raise ValueError(
                f"features have {x.shape[-1]} channels but the split sizes "
                f"{self.split_sizes} add up to {sum(self.split_sizes)}: they must be "
                "the fused encoders' output sizes, in order"
            )
        groups = torch.split(x, self.split_sizes, dim=-1)
        return torch.cat(
            [
                aggregator(group, lengths)
                for aggregator, group in zip(
                    self.aggregators, groups, strict=True
                )
            ],
            dim=-1,
        )
