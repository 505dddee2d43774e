"""Combining representations: SSL layers, two encoders, two utterance embeddings.

* :class:`WeightedLayerSum`: the SUPERB learned softmax-weighted sum of all
  hidden states of one SSL encoder;
* :class:`EarlyFusion`: frame-level concatenation of the features of several
  encoders (Morais et al. 2022, "huBERT + W2V2" before one ECAPA-TDNN);
* :class:`LateFusion`: concatenation of utterance embeddings, one encoder and
  one aggregator per branch (Morais et al. 2022, "huBERT & W2V2").
"""

import torch

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
            count = weights.sum(dim=(2, 3), keepdim=True) * hidden_states.shape[-1]
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
    encoder for any aggregator. Relative lengths stay valid after truncation
    up to the rounding that relative lengths always carry.

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


class LateFusion(torch.nn.Module):
    """Concatenation of utterance embeddings from independent branches.

    Branch ``i`` runs ``aggregators[i](encoders[i](wavs, wav_lens), wav_lens)``
    (e.g. an ECAPA-TDNN on wav2vec 2.0 features and another on HuBERT
    features); the embeddings are concatenated into ``[B, sum(D_i)]``.

    Arguments
    ---------
    encoders : list of torch.nn.Module
        One encoder per branch, ``(wavs, wav_lens) -> [B, T, C]``.
    aggregators : list of torch.nn.Module
        One aggregator per branch, ``(x, lengths) -> [B, D]``.

    Example
    -------
    >>> from emoshare_sb.lobes.frontends import FbankFrontEnd, MFCCFrontEnd
    >>> from emoshare_sb.nnet.pooling import MaskedMeanPooling
    >>> fusion = LateFusion([FbankFrontEnd(), MFCCFrontEnd()],
    ...                     [MaskedMeanPooling(), MaskedMeanPooling()])
    >>> fusion(torch.randn(2, 16000), torch.tensor([1.0, 0.5])).shape
    torch.Size([2, 60])
    """

    def __init__(self, encoders, aggregators):
        super().__init__()
        if len(encoders) != len(aggregators) or len(encoders) < 2:
            raise ValueError(
                "LateFusion needs one aggregator per encoder and at least two "
                f"branches, got {len(encoders)} encoders and {len(aggregators)} aggregators"
            )
        self.encoders = torch.nn.ModuleList(encoders)
        self.aggregators = torch.nn.ModuleList(aggregators)

    def forward(self, wavs, wav_lens=None):
        """Embeds with every branch and concatenates the embeddings.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]``.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths.

        Returns
        -------
        torch.Tensor
            ``[B, sum(D_i)]``.
        """
        embeddings = [
            aggregator(encoder(wavs, wav_lens), wav_lens)
            for encoder, aggregator in zip(self.encoders, self.aggregators, strict=True)
        ]
        return torch.cat(embeddings, dim=-1)
