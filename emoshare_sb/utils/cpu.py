"""What this CPU can do fast: its name, torch's kernel level, native bfloat16.

The same code is fast on one CPU and slow on another: bfloat16 autocast was
1.4x faster than float32 on a CPU with AVX512-BF16 and 27x *slower* on an
AVX2-only one (no native bfloat16: every product is emulated). So:

* :func:`cpu_summary` names the CPU, the kernel level torch dispatches to
  (``torch.backends.cpu.get_cpu_capability()``: ``AVX512``, ``AVX2``, ...;
  the environment variable ``ATEN_CPU_CAPABILITY`` lowers it) and whether
  bfloat16 is native; every benchmark prints it;
* :func:`has_native_bf16` is the rule the package uses: never choose or
  recommend bfloat16 on a CPU without it, and :func:`check_autocast_dtype`
  warns when a user forces it there;
* :func:`choose_attention` picks the attention kernel of the exact path
  (``"sdpa"`` or ``"eager"``) per machine, by rule, and says which in the log.

Authors
 * emoshare_sb contributors 2026
"""

import os
import platform

import torch
from speechbrain.utils.logger import get_logger

logger = get_logger(__name__)

# What choose_attention decided, so the log says it once per process.
_LOGGED = set()


def cpu_name():
    """The CPU model as the OS reports it (``/proc/cpuinfo``), else platform's.

    Returns
    -------
    str

    Example
    -------
    >>> isinstance(cpu_name(), str) and len(cpu_name()) > 0
    True
    """
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_capability():
    """The kernel level torch dispatches to: ``AVX512``, ``AVX2``, ``DEFAULT``, etc.

    Returns
    -------
    str

    Example
    -------
    >>> cpu_capability() in (
    ...     "AVX512",
    ...     "AVX2",
    ...     "DEFAULT",
    ...     "NO AVX",
    ...     "ZVECTOR",
    ...     "VSX",
    ...     "SVE256",
    ... )
    True
    """
    return torch.backends.cpu.get_cpu_capability()


def _cpu_flags():
    """torch's cpuinfo flags (``{"avx512_bf16": True, ...}``), or ``{}``."""
    probe = getattr(torch._C._cpu, "_get_cpu_capability", None)
    if probe is None:
        return {}
    try:
        return dict(probe())
    except (RuntimeError, TypeError):
        return {}


def has_native_bf16():
    """Whether this CPU computes bfloat16 products natively (AVX512-BF16 or AMX-BF16).

    Also False when torch is made to dispatch below AVX-512
    (``ATEN_CPU_CAPABILITY=avx2``), since its bfloat16 kernels then emulate.

    Returns
    -------
    bool

    Example
    -------
    >>> isinstance(has_native_bf16(), bool)
    True
    """
    flags = _cpu_flags()
    native = bool(flags.get("avx512_bf16") or flags.get("amx_bf16"))
    return native and cpu_capability() == "AVX512"


def cpu_summary():
    """One line: CPU model, cores, torch's kernel level, native bfloat16, threads.

    Returns
    -------
    str

    Example
    -------
    >>> "capability" in cpu_summary()
    True
    """
    forced = os.environ.get("ATEN_CPU_CAPABILITY")
    capability = cpu_capability() + (
        f" (forced by ATEN_CPU_CAPABILITY={forced})" if forced else ""
    )
    return (
        f"{cpu_name()}, {os.cpu_count()} logical CPUs, torch capability "
        f"{capability}, native bf16: {'yes' if has_native_bf16() else 'no'}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )


def check_autocast_dtype(dtype, device="cpu"):
    """Warns when bfloat16 autocast is asked for on a CPU that emulates it.

    Arguments
    ---------
    dtype : torch.dtype or None
        The requested autocast dtype.
    device : str or torch.device
        Where the model runs (only CPUs are checked).

    Returns
    -------
    bool
        True when the request is fine, False when it was warned about.

    Example
    -------
    >>> check_autocast_dtype(None)
    True
    >>> check_autocast_dtype(torch.bfloat16, "cuda:0")
    True
    """
    if dtype != torch.bfloat16 or torch.device(device).type != "cpu":
        return True
    if has_native_bf16():
        return True
    logger.warning(
        "bfloat16 was requested on a CPU without native bfloat16 (%s): it is "
        "emulated there and was measured many times slower than float32; "
        "use float32 (the default) or int8 instead",
        cpu_summary(),
    )
    return False


def choose_attention(device="cpu", requested="auto"):
    """The attention kernel of the exact path on this machine: ``sdpa`` or ``eager``.

    Both compute the same attention (they differ by float rounding). The rule:
    on GPUs SDPA (fused kernels); on CPUs SDPA where torch dispatches AVX-512
    kernels (measured equal or faster there), eager elsewhere, because on an
    AVX2-only machine the SDPA path measured 0.224 RTF against eager's 0.181
    (issue 14). SDPA's CPU kernel is torch's own blocked flash attention
    (vectorised at the ``ATEN_CPU_CAPABILITY`` level, its small matrix
    products through MKL), where eager attention is one batched MKL matmul
    and a softmax; with ``ATEN_CPU_CAPABILITY=avx2`` on an AVX-512 machine the
    two measured alike (README "Performance"), so the gap belongs to that
    machine's CPU and the rule keeps eager there. ``bench_inference.py``
    measures ``ours-sdpa`` against ``ours-eager`` on any machine. The choice
    is logged once per process.

    Arguments
    ---------
    device : str or torch.device
        Where the encoder runs.
    requested : str
        ``"auto"`` (the rule), ``"sdpa"`` or ``"eager"`` (kept as given).

    Returns
    -------
    str
        ``"sdpa"`` or ``"eager"``.

    Example
    -------
    >>> choose_attention("cuda:0")
    'sdpa'
    >>> choose_attention("cpu", requested="eager")
    'eager'
    """
    if requested not in ("auto", "sdpa", "eager"):
        raise ValueError(
            f"attention must be 'auto', 'sdpa' or 'eager', got {requested!r}"
        )
    if requested != "auto":
        return requested
    if torch.device(device).type != "cpu":
        choice, why = "sdpa", "not a CPU"
    elif cpu_capability() == "AVX512":
        choice, why = "sdpa", "CPU kernels at AVX512"
    else:
        choice, why = "eager", f"CPU kernels at {cpu_capability()}"
    if (choice, why) not in _LOGGED:
        _LOGGED.add((choice, why))
        logger.info("Attention kernel: %s (%s; %s)", choice, why, cpu_name())
    return choice
