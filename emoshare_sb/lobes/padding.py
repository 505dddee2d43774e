"""Padding-invariant encoding for wav2vec2-family models with a GroupNorm front-end.

HuBERT/wav2vec2 Base models (``feat_extract_norm="group"``) normalise their
first convolution over the whole padded input, so a clip's features depend on
what it is batched with; attention already ignores padding through the
``attention_mask``. :func:`padding_invariant` makes that normalisation use
each clip's valid frames only. The SSL lobe encodes under it, and so does the
feature cache, so a clip gets the same features alone, in any batch, and from
the cache.

Authors
 * emoshare_sb contributors 2026
"""

import contextlib

import torch


class _MaskedGroupNorm(torch.nn.Module):
    """GroupNorm whose statistics cover only each clip's valid frames."""

    def __init__(self, norm, kernel, stride):
        super().__init__()
        self.norm = norm
        self.kernel, self.stride = kernel, stride
        self.valid_frames = None

    def capture_lengths(self, module, args, kwargs):
        """Forward pre-hook of the HF model: reads the sample mask it is given."""
        mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        if mask is None:
            self.valid_frames = None
        else:
            samples = mask.sum(dim=-1)
            self.valid_frames = (samples - self.kernel) // self.stride + 1

    def _masked_norm(self, x):
        """The statistics of the valid frames, vectorised over the batch."""
        return _vectorised_group_norm(self.norm, x, self.valid_frames)

    def forward(self, x):
        """Normalises ``[B, C, T]`` over the valid frames of each clip."""
        if self.valid_frames is not None and torch.onnx.is_in_onnx_export():
            return self._masked_norm(x)  # one graph for any batch
        if self.valid_frames is None or bool(
            (self.valid_frames >= x.shape[2]).all()
        ):
            return self.norm(x)  # no padding in this batch
        batch, channels, time = x.shape
        groups, per_group = (
            self.norm.num_groups,
            channels // self.norm.num_groups,
        )
        # Statistics of each clip's valid frames (a view, no copy), with the
        # same fused kernel GroupNorm uses.
        if per_group == 1:  # wav2vec2/HuBERT: one group per channel (fast path)
            stats = [
                torch.var_mean(x[i, :, : int(frames)], dim=-1, unbiased=False)
                for i, frames in enumerate(self.valid_frames)
            ]
        else:
            stats = [
                torch.var_mean(
                    x[i, :, : int(frames)].reshape(groups, per_group, -1),
                    dim=(1, 2),
                    unbiased=False,
                )
                for i, frames in enumerate(self.valid_frames)
            ]
        var = torch.stack([v for v, _ in stats]).repeat_interleave(
            per_group, dim=1
        )
        mean = torch.stack([m for _, m in stats]).repeat_interleave(
            per_group, dim=1
        )
        weight = self.norm.weight if self.norm.affine else None
        bias = self.norm.bias if self.norm.affine else None
        if torch.is_grad_enabled():  # differentiable through the statistics
            normed = (x - mean[:, :, None]) * torch.rsqrt(
                var[:, :, None] + self.norm.eps
            )
            if weight is not None:
                normed = normed * weight[None, :, None] + bias[None, :, None]
            return normed
        # One fused pass: batch_norm with given statistics, one "channel" per
        # (clip, channel) pair.
        normed = torch.nn.functional.batch_norm(
            x.reshape(1, batch * channels, time),
            mean.reshape(-1),
            var.reshape(-1),
            None if weight is None else weight.repeat(batch),
            None if bias is None else bias.repeat(batch),
            training=False,
            eps=self.norm.eps,
        )
        return normed.reshape(batch, channels, time)


def _vectorised_group_norm(norm, x, valid_frames):
    """GroupNorm over each clip's valid frames without a loop over the batch.

    The same statistics as the per-clip path, computed with a mask (so an
    exported ONNX graph has no batch-size-dependent loop); float rounding
    can differ from the per-clip path.
    """
    batch, channels, time = x.shape
    groups = norm.num_groups
    valid = torch.arange(time, device=x.device)[None, :] < valid_frames[:, None]
    weights = valid.to(x.dtype)[:, None, None, :]  # [B, 1, 1, T]
    grouped = x.reshape(batch, groups, channels // groups, time)
    count = weights.sum(dim=-1, keepdim=True) * (channels // groups)
    mean = (grouped * weights).sum(dim=(2, 3), keepdim=True) / count
    var = (((grouped - mean) * weights) ** 2).sum(
        dim=(2, 3), keepdim=True
    ) / count
    normed = ((grouped - mean) * torch.rsqrt(var + norm.eps)).reshape(
        batch, channels, time
    )
    if norm.affine:
        normed = normed * norm.weight[None, :, None] + norm.bias[None, :, None]
    return normed


def has_group_norm_frontend(model):
    """Whether a HF wav2vec2-family model group-normalises its first conv layer.

    Such models (HuBERT/wav2vec2 Base, ``feat_extract_norm="group"``) compute
    that normalisation over the whole padded input, so batching changes the
    features unless :func:`padding_invariant` is used.

    Arguments
    ---------
    model : torch.nn.Module
        A HuggingFace model (or anything else: returns False).

    Returns
    -------
    bool
    """
    conv_layers = getattr(
        getattr(model, "feature_extractor", None), "conv_layers", None
    )
    if not conv_layers:
        return False
    norm = getattr(conv_layers[0], "layer_norm", None)
    return isinstance(norm, torch.nn.GroupNorm | _MaskedGroupNorm)


@contextlib.contextmanager
def padding_invariant(model):
    """Makes a wav2vec2-family model give every clip of a padded batch its solo features.

    Attention already ignores padding when the model gets an
    ``attention_mask``; the one batch-dependent step left is the GroupNorm of
    the first convolution in Base-type models, whose per-channel statistics
    run over the padded length. Inside this context that GroupNorm uses only
    each clip's valid frames (read from the ``attention_mask`` given to the
    model). Layer-norm front-ends (Large models) need nothing and are left
    untouched. The original module is restored on exit.

    Arguments
    ---------
    model : torch.nn.Module
        A HuggingFace wav2vec2/HuBERT/WavLM model.

    Yields
    ------
    torch.nn.Module
        The same model.

    Example
    -------
    >>> import transformers
    >>> config = transformers.HubertConfig(
    ...     hidden_size=16,
    ...     num_hidden_layers=1,
    ...     num_attention_heads=2,
    ...     intermediate_size=32,
    ...     conv_dim=(8,) * 7,
    ...     num_conv_pos_embeddings=16,
    ...     num_conv_pos_embedding_groups=4,
    ... )
    >>> model = transformers.HubertModel(config).eval()
    >>> wavs = torch.randn(2, 8000)
    >>> wavs[1, 4000:] = 0
    >>> mask = torch.ones(2, 8000, dtype=torch.long)
    >>> mask[1, 4000:] = 0
    >>> alone = model(wavs[1:, :4000]).last_hidden_state
    >>> with torch.no_grad(), padding_invariant(model):
    ...     batched = model(wavs, attention_mask=mask).last_hidden_state
    >>> torch.allclose(batched[1, : alone.shape[1]], alone, atol=1e-4)
    True
    """
    with _group_norm_over_valid_frames(model), float_padding_masks(model):
        yield model


@contextlib.contextmanager
def _group_norm_over_valid_frames(model):
    """The GroupNorm half of :func:`padding_invariant`."""
    if not has_group_norm_frontend(model) or isinstance(
        model.feature_extractor.conv_layers[0].layer_norm, _MaskedGroupNorm
    ):
        yield model
        return
    first = model.feature_extractor.conv_layers[0]
    original = first.layer_norm
    masked = _MaskedGroupNorm(
        original, model.config.conv_kernel[0], model.config.conv_stride[0]
    )
    first.layer_norm = masked
    handle = model.register_forward_pre_hook(
        masked.capture_lengths, with_kwargs=True
    )
    try:
        yield model
    finally:
        handle.remove()
        first.layer_norm = original


def _attention_with_float_mask(original, num_heads):
    """Wraps WavLM's ``torch_multi_head_self_attention``: the boolean
    padding mask is folded into the float position bias (``-inf`` at padded
    keys, as torch itself would add it), and no separate mask is passed."""

    def attention(hidden_states, attention_mask, gated_position_bias):
        """WavLM's attention, with the padding inside the float bias.

        Arguments
        ---------
        hidden_states : torch.Tensor
            ``[B, T, C]``.
        attention_mask : torch.Tensor or None
            ``[B, T]``, 1 at valid frames.
        gated_position_bias : torch.Tensor
            ``[B * heads, T, T]``.

        Returns
        -------
        tuple
            What the wrapped method returns.
        """
        if attention_mask is not None:
            padded = attention_mask.ne(1)  # [B, T] True at padded frames
            batch, time = padded.shape
            gated_position_bias = (
                gated_position_bias.view(batch, num_heads, -1, time)
                .masked_fill(padded[:, None, None, :], float("-inf"))
                .view(batch * num_heads, -1, time)
            )
        return original(hidden_states, None, gated_position_bias)

    return attention


@contextlib.contextmanager
def float_padding_masks(model):
    """Gives WavLM's attention one float mask instead of a bool and a float one.

    HF's WavLM passes torch a boolean ``key_padding_mask`` together with its
    float relative-position bias as ``attn_mask``; torch warns ("Support for
    mismatched key_padding_mask and attn_mask is deprecated") on every
    padded batch. Inside this context the padding is added to the bias
    (``-inf`` at padded keys, exactly what torch does with the boolean mask)
    and only the float mask is passed. Other models are left untouched.

    Arguments
    ---------
    model : torch.nn.Module
        A HuggingFace model (WavLM is the one changed).

    Yields
    ------
    torch.nn.Module
        The same model.

    Example
    -------
    >>> import warnings
    >>> import transformers
    >>> config = transformers.WavLMConfig(
    ...     hidden_size=16,
    ...     num_hidden_layers=1,
    ...     num_attention_heads=2,
    ...     intermediate_size=32,
    ...     conv_dim=(8,) * 7,
    ...     num_conv_pos_embeddings=16,
    ...     num_conv_pos_embedding_groups=4,
    ...     feat_extract_norm="layer",
    ... )
    >>> model = transformers.WavLMModel(config).eval()
    >>> wavs, mask = torch.randn(2, 8000), torch.ones(2, 8000, dtype=torch.long)
    >>> mask[1, 4000:] = 0
    >>> with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     before = model(wavs, attention_mask=mask).last_hidden_state
    >>> any("mismatched key_padding_mask" in str(w.message) for w in caught)
    True
    >>> with (
    ...     torch.no_grad(),
    ...     float_padding_masks(model),
    ...     warnings.catch_warnings(),
    ... ):
    ...     warnings.simplefilter("error")  # no mismatched-mask warning
    ...     after = model(wavs, attention_mask=mask).last_hidden_state
    >>> torch.allclose(before, after, atol=1e-6)
    True
    """
    patched = [
        module
        for module in model.modules()
        if hasattr(module, "torch_multi_head_self_attention")
        and "torch_multi_head_self_attention" not in vars(module)
    ]
    for module in patched:
        module.torch_multi_head_self_attention = _attention_with_float_mask(
            module.torch_multi_head_self_attention, module.num_heads
        )
    try:
        yield model
    finally:
        for module in patched:
            del module.torch_multi_head_self_attention
