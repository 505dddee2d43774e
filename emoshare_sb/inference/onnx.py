"""ONNX export of a whole model (encoder, pooling, head) and ONNX Runtime inference.

:func:`export_onnx` writes one graph, ``model.onnx``, from a loaded
:class:`~emoshare_sb.inference.interfaces.EmotionShareRegressor` or
:class:`~emoshare_sb.inference.interfaces.VoteDistributionRecognizer`: the
encoder up to the highest layer it reads (the later layers are not in the
graph), the pooling or aggregator and the head(s), with dynamic batch and
length. Its inputs are the zero-padded waveforms ``wavs`` ``[B, samples]``
(float32) and the padding mask ``mask`` ``[B, samples]`` (int64, 1 on valid
samples); its output ``predictions`` ``[B, D]`` is what the interface's
``forward`` returns. Next to it, ``onnx.json`` holds the interface class and
its plain hyperparameters (output names, sample rate, windows), so
:func:`load_onnx_model` runs the model with ``onnxruntime`` on CPU without
the torch weights: the interface's own batching, windowing and file scoring
are reused, only its ``forward`` runs in ONNX Runtime.

:func:`quantize_onnx` applies ONNX Runtime's dynamic int8 quantisation
(weights of MatMul/Gemm in int8, activations quantised on the fly), written
as ``model.int8.onnx``; its accuracy cost is measured by
``benchmarks/bench_inference.py``.

The graph is traced with the attention computed the eager way (plain
MatMul/Softmax, the most portable ONNX) and the padded-batch path always
taken, so one graph serves every batch. Whisper's encoder (fixed 30 s
windows, reshaped by Python arithmetic on the input length) is not exported.

Authors
 * emoshare_sb contributors 2026
"""

import contextlib
import json
import os
import warnings

import torch

from emoshare_sb.utils.io import atomic_write, write_json

ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model.int8.onnx"
ONNX_INFO_FILE = "onnx.json"
OPSET = 17


class OnnxGraph(torch.nn.Module):
    """What is exported: ``(wavs, mask) -> interface.forward(wavs, lengths)``.

    Arguments
    ---------
    interface : EmotionShareRegressor
        A loaded interface (its modules are the graph's).
    """

    def __init__(self, interface):
        super().__init__()
        self.interface = interface

    def forward(self, wavs, mask):
        """Predictions of a padded batch.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]`` zero-padded waveforms.
        mask : torch.Tensor
            ``[B, samples]`` 1 on valid samples, 0 on padding.

        Returns
        -------
        torch.Tensor
            ``[B, D]``.
        """
        lengths = mask.sum(dim=-1).to(wavs.dtype) / wavs.shape[-1]
        return self.interface.forward(wavs, lengths)


@contextlib.contextmanager
def _eager_attention(encoder):
    """Computes attention the eager way while tracing (restored on exit)."""
    model = getattr(encoder, "model", None)
    config = getattr(model, "config", None)
    previous = getattr(config, "_attn_implementation", None)
    if previous in (None, "eager"):
        yield
        return
    model.set_attn_implementation("eager")
    previous_device = getattr(encoder, "_attention_device", None)
    encoder._attention_device = "onnx"  # keep the lobe from switching back
    try:
        yield
    finally:
        model.set_attn_implementation(previous)
        encoder._attention_device = previous_device


def _broadcast_length_to_mask(length, max_len=None, dtype=None, device=None):
    """SpeechBrain's ``length_to_mask`` by broadcasting (no traced batch size).

    SpeechBrain's ``expand(len(length), max_len)`` records the traced batch
    size as a constant; comparing ``arange(max_len)[None]`` with
    ``length[:, None]`` gives the same mask for any batch.
    """
    if max_len is None:
        max_len = length.max().long().item()
    mask = (
        torch.arange(max_len, device=length.device, dtype=length.dtype)[None, :]
        < length[:, None]
    )
    return mask.to(
        dtype=length.dtype if dtype is None else dtype,
        device=length.device if device is None else device,
    )


@contextlib.contextmanager
def _traceable_masks():
    """Uses :func:`_broadcast_length_to_mask` in the pooling while tracing."""
    from emoshare_sb.nnet import pooling

    original = pooling.length_to_mask
    pooling.length_to_mask = _broadcast_length_to_mask
    try:
        yield
    finally:
        pooling.length_to_mask = original


def _is_plain(value):
    """Whether a hyperparameter value is plain data (JSON), not an object."""
    if isinstance(value, str | int | float | bool) or value is None:
        return True
    if isinstance(value, list | tuple):
        return all(_is_plain(v) for v in value)
    return False


def export_onnx(interface, folder, example_seconds=(2.0, 1.3), opset=OPSET):
    """Writes ``model.onnx`` and ``onnx.json`` for an interface into ``folder``.

    Arguments
    ---------
    interface : EmotionShareRegressor
        A loaded model (an export, or an experiment folder loaded with
        :func:`~emoshare_sb.inference.interfaces.load_model`).
    folder : str
        Created if needed; the two files are written atomically.
    example_seconds : tuple of float
        Lengths of the traced example batch (padded: the mask is used).
    opset : int
        ONNX opset.

    Returns
    -------
    str
        The path of ``model.onnx``.

    Example
    -------
    >>> from emoshare_sb.inference.interfaces import EmotionShareRegressor
    >>> from emoshare_sb.lobes.ssl import SSLEncoder
    >>> from emoshare_sb.nnet.heads import MLPHead
    >>> from emoshare_sb.nnet.pooling import MaskedMeanPooling
    >>> from emoshare_sb.synthetic import make_tiny_ssl_model
    >>> tmp = getfixture("tmpdir")
    >>> encoder = SSLEncoder(make_tiny_ssl_model(str(tmp / "tiny")), str(tmp))
    >>> modules = {
    ...     "encoder": encoder,
    ...     "pooling": MaskedMeanPooling(),
    ...     "head": MLPHead(32, 2, hidden_size=8),
    ... }
    >>> hparams = {"emotions": ["Calm", "Sad"], "sample_rate": 16000}
    >>> hparams.update(window=None, hop=None)
    >>> model = EmotionShareRegressor(
    ...     modules, hparams, run_opts={"device": "cpu"}
    ... )
    >>> path = export_onnx(model, str(tmp / "onnx"))
    >>> sorted(os.listdir(os.path.dirname(path)))
    ['model.onnx', 'onnx.json']
    >>> onnx_model = load_onnx_model(str(tmp / "onnx"))
    >>> wavs, lens = torch.randn(2, 24000), torch.tensor([1.0, 0.6])
    >>> expected = model.predict_batch(wavs, lens)
    >>> torch.allclose(
    ...     onnx_model.predict_batch(wavs, lens), expected, atol=1e-4
    ... )
    True
    """
    encoder = interface.mods.encoder
    if not hasattr(encoder, "layers_run") or hasattr(encoder, "encode_mel"):
        raise ValueError(
            f"ONNX export supports the SSL encoders (SSLEncoder), not "
            f"{type(encoder).__name__}"
        )
    os.makedirs(folder, exist_ok=True)
    rate = int(interface.hparams.sample_rate)
    lengths = [int(s * rate) for s in example_seconds]
    wavs = torch.zeros(len(lengths), max(lengths))
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    generator = torch.Generator().manual_seed(0)
    for row, count in enumerate(lengths):
        wavs[row, :count] = torch.randn(count, generator=generator)
        mask[row, :count] = 1
    graph = OnnxGraph(interface).eval()
    path = os.path.join(folder, ONNX_FILE)
    staging = path + ".partial"
    with (
        torch.no_grad(),
        _eager_attention(encoder),
        _traceable_masks(),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # tracer warnings on shape arithmetic
        torch.onnx.export(
            graph,
            (wavs, mask),
            staging,
            input_names=["wavs", "mask"],
            output_names=["predictions"],
            dynamic_axes={
                "wavs": {0: "batch", 1: "samples"},
                "mask": {0: "batch", 1: "samples"},
                "predictions": {0: "batch"},
            },
            opset_version=opset,
            dynamo=False,
        )
    with open(staging, "rb") as handle:
        data = handle.read()
    os.remove(staging)
    with atomic_write(path, "wb") as handle:
        handle.write(data)
    cls = type(interface)
    hparams = {
        name: getattr(interface.hparams, name)
        for name in cls.HPARAMS_NEEDED
        if _is_plain(getattr(interface.hparams, name))
    }
    write_json(
        os.path.join(folder, ONNX_INFO_FILE),
        {
            "interface": f"{cls.__module__}.{cls.__qualname__}",
            "hparams": {
                k: list(v) if isinstance(v, tuple) else v
                for k, v in hparams.items()
            },
            "encoder_layers_run": int(encoder.layers_run()),
            "opset": opset,
        },
    )
    return path


def quantize_onnx(folder):
    """ONNX Runtime's dynamic int8 quantisation of ``folder/model.onnx``.

    Arguments
    ---------
    folder : str
        Holds ``model.onnx``; ``model.int8.onnx`` is written next to it.

    Returns
    -------
    str
        The path of ``model.int8.onnx``.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = os.path.join(folder, ONNX_FILE)
    path = os.path.join(folder, ONNX_INT8_FILE)
    staging = path + ".partial.onnx"
    quantize_dynamic(source, staging, weight_type=QuantType.QInt8)
    os.replace(staging, path)
    return path


class OnnxRuntimeModel:
    """Runs ``model.onnx`` with ONNX Runtime on CPU, as the interface's ``forward``.

    Arguments
    ---------
    path : str
        The ONNX file.
    threads : int, optional
        Intra-op threads (default: ONNX Runtime's).
    """

    def __init__(self, path, threads=None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        self.path = path
        self.session = onnxruntime.InferenceSession(
            path, options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, wavs, wav_lens=None):
        """Predictions of a padded batch.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]``.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths.

        Returns
        -------
        torch.Tensor
            ``[B, D]`` float32 on the CPU.
        """
        wavs = wavs.detach().float().cpu()
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0])
        samples = torch.round(wav_lens.detach().cpu() * wavs.shape[1]).long()
        mask = (torch.arange(wavs.shape[1])[None, :] < samples[:, None]).long()
        (predictions,) = self.session.run(
            ["predictions"], {"wavs": wavs.numpy(), "mask": mask.numpy()}
        )
        return torch.from_numpy(predictions)


def load_onnx_model(folder, quantized=False, threads=None, overrides=None):
    """The folder's interface running ``model.onnx`` in ONNX Runtime, without torch weights.

    Arguments
    ---------
    folder : str
        Written by :func:`export_onnx` (``emoshare-export --onnx``).
    quantized : bool
        Run ``model.int8.onnx`` (:func:`quantize_onnx`).
    threads : int, optional
        ONNX Runtime intra-op threads.
    overrides : dict, optional
        Hyperparameters to change, e.g. ``{"window": 20.0, "hop": 10.0}``.

    Returns
    -------
    EmotionShareRegressor
        An instance of the exported interface class whose ``forward`` runs
        in ONNX Runtime (its modules are placeholders).

    (See :func:`export_onnx` for an example.)
    """
    from emoshare_sb.inference import interfaces

    info_path = os.path.join(folder, ONNX_INFO_FILE)
    path = os.path.join(folder, ONNX_INT8_FILE if quantized else ONNX_FILE)
    for needed in (info_path, path):
        if not os.path.isfile(needed):
            raise FileNotFoundError(
                f"'{needed}' is missing: write the folder with "
                "emoshare-export --onnx (and --quantize for the int8 model)"
            )
    with open(info_path) as handle:
        info = json.load(handle)
    name = info["interface"].rsplit(".", 1)[-1]
    cls = {
        c.__name__: c
        for c in (
            interfaces.EmotionShareRegressor,
            interfaces.VoteDistributionRecognizer,
        )
    }.get(name)
    if cls is None:
        raise ValueError(
            f"{info_path}: unknown interface '{info['interface']}'"
        )
    hparams = {**info["hparams"], **(overrides or {})}
    if "log_softmax" in cls.HPARAMS_NEEDED:  # inside the graph; a placeholder
        hparams["log_softmax"] = torch.nn.Identity()
    modules = {name: torch.nn.Identity() for name in cls.MODULES_NEEDED}
    model = cls(modules, hparams, run_opts={"device": "cpu"})
    model.onnx = OnnxRuntimeModel(path, threads)
    return model
