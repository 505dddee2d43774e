"""Run a transformer encoder only up to the highest hidden state that is read.

A recipe that reads hidden state ``k`` of a 24-layer encoder (``ssl_layer:
20`` of WavLM-Large in the MSP-Podcast YAML) has no use for layers ``k + 1
.. 24``: hidden state ``k`` is the output of layer ``k - 1`` (0 is the input
of the first layer) and no later layer changes it. :func:`first_layers` runs
the first ``k`` layers only, by temporarily handing the HuggingFace encoder a
``ModuleList`` of those layers (the same modules, so the same weights and
autograd graph; the full list is restored on exit, so ``state_dict`` and
checkpoints are unchanged). The returned features are bit-identical to those
of the full forward pass: the same operations run on the same values, only
the unread ones are skipped.

HuggingFace 5 can also record only the selected hidden states
(``output_hidden_states=[k]``), so the states that are not read are not kept
alive until the end of the forward pass: :func:`hidden_state_request` builds
that request.

Authors
 * emoshare_sb contributors 2026
"""

import contextlib

import torch


def highest_layer(layer, num_hidden):
    """The number of transformer layers a ``layer`` selection needs to run.

    Arguments
    ---------
    layer : int, list of int, "all" or None
        The selection (see :class:`emoshare_sb.lobes.ssl.SSLEncoder`).
    num_hidden : int
        Hidden states of the encoder (layers + 1).

    Returns
    -------
    int
        In ``0 .. num_hidden - 1``: layers to run.

    Example
    -------
    >>> highest_layer(20, 25), highest_layer(-1, 25), highest_layer(None, 25)
    (20, 24, 24)
    >>> highest_layer([3, 7], 25), highest_layer("all", 25)
    (7, 24)
    """
    if layer is None or layer == "all":
        return num_hidden - 1
    if isinstance(layer, int):
        return layer % num_hidden
    return max(index % num_hidden for index in layer)


def normalise_layers(layer, num_hidden):
    """A selection with negative indices resolved (an int, a list, "all" or None).

    Arguments
    ---------
    layer : int, list of int, "all" or None
        The selection.
    num_hidden : int
        Hidden states of the encoder.

    Returns
    -------
    int, list of int, "all" or None

    Example
    -------
    >>> normalise_layers(-1, 25), normalise_layers([0, -2], 25)
    (24, [0, 23])
    """
    if layer is None or layer == "all":
        return layer
    if isinstance(layer, int):
        return layer % num_hidden
    return [index % num_hidden for index in layer]


def hidden_state_request(layer):
    """The ``output_hidden_states`` argument that records what ``layer`` reads.

    Arguments
    ---------
    layer : int, list of int, "all" or None
        A normalised selection (:func:`normalise_layers`).

    Returns
    -------
    bool or list of int
        False for the last hidden state alone, True for all of them, else the
        indices (HuggingFace then keeps only those).

    Example
    -------
    >>> hidden_state_request(None), hidden_state_request("all")
    (False, True)
    >>> hidden_state_request(20), hidden_state_request([3, 7])
    ([20], [3, 7])
    """
    if layer is None:
        return False
    if layer == "all":
        return True
    if isinstance(layer, int):
        return [layer]
    return list(layer)


@contextlib.contextmanager
def first_layers(encoder, count, drop_final_norm=False):
    """Makes a HuggingFace transformer encoder run only its first ``count`` layers.

    Arguments
    ---------
    encoder : torch.nn.Module
        A module with a ``layers`` ``ModuleList`` that its forward loops over
        (the ``encoder`` of wav2vec2/HuBERT/WavLM/data2vec models and of
        Whisper).
    count : int
        Layers to run; ``len(encoder.layers)`` or more changes nothing.
    drop_final_norm : bool
        Also skip the encoder's final ``layer_norm`` (Whisper and pre-norm
        models apply it after the last layer), so that ``last_hidden_state``
        is the output of layer ``count - 1`` itself. Only with ``count`` below
        the number of layers.

    Yields
    ------
    torch.nn.Module
        The encoder.

    Example
    -------
    >>> import transformers
    >>> config = transformers.WhisperConfig(
    ...     d_model=16,
    ...     encoder_layers=3,
    ...     encoder_attention_heads=2,
    ...     decoder_attention_heads=2,
    ...     decoder_layers=1,
    ...     decoder_ffn_dim=32,
    ...     encoder_ffn_dim=32,
    ...     num_mel_bins=8,
    ...     max_source_positions=10,
    ... )
    >>> encoder = transformers.WhisperModel(config).encoder.eval()
    >>> mel = torch.randn(1, 8, 20)
    >>> full = encoder(mel, output_hidden_states=True).hidden_states[2]
    >>> with first_layers(encoder, 2, drop_final_norm=True):
    ...     early = encoder(mel).last_hidden_state
    >>> torch.equal(full, early), len(encoder.layers)
    (True, 3)
    """
    layers = encoder.layers
    if count >= len(layers):
        yield encoder
        return
    norm = getattr(encoder, "layer_norm", None)
    encoder.layers = torch.nn.ModuleList(list(layers)[:count])
    if drop_final_norm and norm is not None:
        encoder.layer_norm = torch.nn.Identity()
    try:
        yield encoder
    finally:
        encoder.layers = layers
        if drop_final_norm and norm is not None:
            encoder.layer_norm = norm


@contextlib.contextmanager
def hidden_state_selection(encoder, layers):
    """Makes an all-layers encoder return (and run) only the hidden states ``layers``.

    For a consumer that reads a subset of the hidden states of an encoder
    built with ``layer="all"`` (e.g. a feature cache keeping layers
    ``[6, 12]``): inside the context the encoder's ``layer`` is ``layers``,
    so it stacks only those and stops at the highest. Encoders that do not
    select layers this way (no ``layers_run`` method, or a ``layer`` other
    than ``"all"``) are left as they are.

    Arguments
    ---------
    encoder : torch.nn.Module
        E.g. :class:`~emoshare_sb.lobes.ssl.SSLEncoder`.
    layers : list of int or None
        The hidden states read; None changes nothing.

    Yields
    ------
    torch.nn.Module
        The encoder.

    Example
    -------
    >>> class Encoder(torch.nn.Module):
    ...     layer = "all"
    ...
    ...     def layers_run(self):
    ...         return 0
    >>> encoder = Encoder()
    >>> with hidden_state_selection(encoder, [1, 3]):
    ...     encoder.layer
    [1, 3]
    >>> encoder.layer
    'all'
    """
    selectable = hasattr(encoder, "layers_run") and (
        getattr(encoder, "layer", None) == "all"
    )
    if layers is None or not selectable:
        yield encoder
        return
    encoder.layer = list(layers)
    try:
        yield encoder
    finally:
        encoder.layer = "all"
