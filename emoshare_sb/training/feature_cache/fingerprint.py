"""What makes cached features valid: the encoder's fingerprint and the audio's signature.

A cache sub-folder is named by a hash of everything that changes the
features (encoder class, architecture config, a content hash of the weights,
the options that change what the encoder returns), and each entry records its
audio file's path, size and modification time.

Why a content hash of the weights rather than the model folder's file
size/mtime: the encoder may come from the hub cache, a copy, or a fine-tuned
checkpoint loaded in memory; hashing the ``state_dict`` catches all of them
and costs about 0.3 s per GB here (SHA-256), negligible next to extraction.

Authors
 * emoshare_sb contributors 2026
"""

import hashlib
import json

import torch

# Encoder attributes that change what the encoder returns for the same weights.
_ENCODER_OPTIONS = (
    "layer",
    "output_norm",
    "normalize_wav",
    "output_all_hiddens",
)
# HF config keys that do not change the computation (names, bookkeeping).
_VOLATILE_CONFIG_KEYS = (
    "transformers_version",
    "architectures",
    "output_hidden_states",
)


def state_dict_sha256(module):
    """SHA-256 of a module's parameters and buffers (names, dtypes, shapes, bytes).

    Arguments
    ---------
    module : torch.nn.Module
        Any module.

    Returns
    -------
    str
        Hex digest; identical weights give identical digests wherever they
        were loaded from.

    Example
    -------
    >>> a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    >>> _ = b.load_state_dict(a.state_dict())
    >>> state_dict_sha256(a) == state_dict_sha256(b)
    True
    >>> with torch.no_grad():
    ...     b.bias[0] += 1e-3
    >>> state_dict_sha256(a) == state_dict_sha256(b)
    False
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        # A uint8 view of any dtype (bfloat16 included) exposes the raw bytes
        # without a copy.
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def hf_model(encoder):
    """The HuggingFace model inside an SSL lobe (or the encoder itself), or None.

    Arguments
    ---------
    encoder : torch.nn.Module
        An encoder.

    Returns
    -------
    torch.nn.Module or None

    Example
    -------
    >>> hf_model(torch.nn.Linear(2, 2)) is None
    True
    """
    model = getattr(encoder, "model", encoder)
    return model if hasattr(model, "config") else None


def conv_layout(encoder):
    """The ``[kernel, stride]`` pairs of a wav2vec2-family front-end, or None.

    Arguments
    ---------
    encoder : torch.nn.Module
        An encoder.

    Returns
    -------
    list or None

    Example
    -------
    >>> conv_layout(torch.nn.Linear(2, 2)) is None
    True
    """
    model = hf_model(encoder)
    config = getattr(model, "config", None)
    kernels = getattr(config, "conv_kernel", None)
    strides = getattr(config, "conv_stride", None)
    if kernels is None or strides is None:
        return None
    return [[int(k), int(s)] for k, s in zip(kernels, strides, strict=True)]


def frames_for_samples(num_samples, conv_layout):
    """Number of encoder frames for ``num_samples`` input samples.

    Arguments
    ---------
    num_samples : int or torch.Tensor
        Input lengths in samples.
    conv_layout : list of [kernel, stride]
        The convolutional front-end (``conv_kernel``/``conv_stride`` of the
        wav2vec2-family configs).

    Returns
    -------
    int or torch.Tensor
        Frames (0 when the input is shorter than the receptive field).

    Example
    -------
    >>> layout = [[10, 5]] + [[3, 2]] * 4 + [[2, 2]] * 2
    >>> frames_for_samples(16000, layout), frames_for_samples(88000, layout)
    (49, 274)
    """
    frames = num_samples
    for kernel, stride in conv_layout:
        frames = (frames - kernel) // stride + 1
    if isinstance(frames, torch.Tensor):
        return frames.clamp(min=0)
    return max(int(frames), 0)


def encoder_fingerprint(encoder, encoder_id=None):
    """Everything about an encoder that changes the features it returns.

    Arguments
    ---------
    encoder : torch.nn.Module
        The encoder (e.g. :class:`emoshare_sb.lobes.ssl.SSLEncoder`).
    encoder_id : str, optional
        Anything else the caller knows changes the features.

    Returns
    -------
    dict
        JSON-serialisable: class, architecture config, weights hash, options.

    Example
    -------
    >>> fingerprint = encoder_fingerprint(torch.nn.Linear(2, 2))
    >>> sorted(fingerprint)
    ['class', 'config', 'id', 'options', 'weights_sha256']
    """
    model = hf_model(encoder)
    config = None
    if model is not None and hasattr(model.config, "to_dict"):
        config = {
            key: value
            for key, value in model.config.to_dict().items()
            if not key.startswith("_") and key not in _VOLATILE_CONFIG_KEYS
        }
    options = {
        name: getattr(encoder, name)
        for name in _ENCODER_OPTIONS
        if hasattr(encoder, name)
    }
    return {
        "class": f"{type(encoder).__module__}.{type(encoder).__qualname__}",
        "config": config,
        "weights_sha256": state_dict_sha256(encoder),
        "options": options,
        "id": encoder_id,
    }


def transformers_major():
    """The major version of transformers (``"5"``), or None without it.

    Returns
    -------
    str or None

    Example
    -------
    >>> transformers_major().isdigit()
    True
    """
    try:
        import transformers
    except ImportError:  # a non-HF encoder
        return None
    return transformers.__version__.split(".")[0]


def cache_settings(encoder, encoder_id=None, format_version=1, **options):
    """Everything a cache configuration's features depend on, and its hash.

    Arguments
    ---------
    encoder : torch.nn.Module
        The frozen encoder.
    encoder_id : str, optional
        Extra text for the fingerprint.
    format_version : int
        The on-disk format.
    **options
        The cache's settings (layers, sample rate, chunking, dtype, front-end).

    Returns
    -------
    tuple
        ``(settings, key)``: a JSON-safe dict and its 16-hex-digit hash.

    Example
    -------
    >>> settings, key = cache_settings(torch.nn.Linear(2, 2), dtype="float16")
    >>> settings["dtype"], len(key)
    ('float16', 16)
    """
    settings = {
        "format": format_version,
        "encoder": encoder_fingerprint(encoder, encoder_id),
        # transformers 5 changed which hidden state pre-norm models return
        # as the last layer; major versions may change features.
        "transformers_major": transformers_major(),
        **options,
    }
    # A JSON round trip turns config values such as torch dtypes into text.
    settings = json.loads(json.dumps(settings, default=str))
    canonical = json.dumps(settings, sort_keys=True, default=str)
    return settings, hashlib.sha256(canonical.encode()).hexdigest()[:16]
