"""Loading a recipe's YAML with command-line overrides that are checked first.

HyperPyYAML reports an unknown override as a bare ``KeyError`` listing every
key, and accepts a value of the wrong type until something deep inside
training fails (``--batch_size abc`` surfaces as a DataLoader error). Here each
override is checked against the YAML's own value: an unknown key is named
with the closest known keys, and a value of the wrong type is named with the
type the YAML expects.

Encoder widths need not be looked up: a top-level ``<name>_dim: auto`` (the
default of every YAML with an SSL or Whisper encoder) is replaced, before the
YAML is instantiated, by the width of the encoder its source names
(``encoder_dim`` goes with ``ssl_source``, ``<name>_dim`` with
``<name>_source``), read from that model's config as SpeechBrain's HF lobes
read it. HyperPyYAML builds the pooling and head (``input_size: !ref
<encoder_dim>``) before the recipe sees the encoder, so the width has to be
known first. An explicit number keeps working, and the recipes check it
against the loaded encoder (:func:`check_encoder_width`).

Authors
 * emoshare_sb contributors 2026
"""

import contextlib
import difflib
import io
import sys

import ruamel.yaml
from hyperpyyaml import load_hyperpyyaml, resolve_references
from speechbrain.utils.logger import get_logger

from emoshare_sb.data.errors import DataPrepError
from emoshare_sb.utils.errors import HparamsError, UserError

logger = get_logger(__name__)


USER_ERROR_STATUS = 2


def load_hparams(hparams_file, overrides=None):
    """Checks ``overrides`` against ``hparams_file``, then loads it with them.

    Arguments
    ---------
    hparams_file : str
        The recipe's YAML.
    overrides : str or dict, optional
        YAML text (as ``speechbrain.parse_arguments`` returns it) or a dict.

    Returns
    -------
    dict
        The loaded hyperparameters.

    Raises
    ------
    HparamsError
        For an unknown key or a value of the wrong type.
    """
    check_overrides(hparams_file, overrides)
    overrides = resolve_encoder_widths(hparams_file, overrides)
    with open(hparams_file, encoding="utf-8") as handle:
        return load_hyperpyyaml(handle, overrides)


AUTO = "auto"


def resolve_encoder_widths(hparams_file, overrides=None):
    """Returns ``overrides`` with each ``<name>_dim: auto`` set to its encoder's width.

    ``encoder_dim`` is the width of ``ssl_source``, ``<name>_dim`` that of
    ``<name>_source`` (fusion YAMLs: ``hubert_dim``, ``wav2vec2_dim``;
    ``text_dim`` that of the text model ``text_source``), read
    from the model's config (``hidden_size``; ``d_model`` for Whisper) with
    the YAML's ``pretrained_path`` as the download cache, as the encoder
    itself will be loaded. Nothing is instantiated. Pass the result to
    ``speechbrain.create_experiment_directory`` too, so that the run's
    ``hyperparams.yaml`` records the numbers.

    Arguments
    ---------
    hparams_file : str
        The recipe's YAML.
    overrides : str or dict, optional
        YAML text (as ``speechbrain.parse_arguments`` returns it) or a dict.

    Returns
    -------
    dict
        The overrides, with the resolved widths added.

    Raises
    ------
    HparamsError
        For a width that is neither ``auto`` nor a positive integer, or
        ``auto`` without a matching ``*_source`` key.

    Example
    -------
    >>> from emoshare_sb.synthetic import make_tiny_ssl_model
    >>> tmpdir = getfixture("tmpdir")
    >>> source = make_tiny_ssl_model(str(tmpdir / "tiny"), hidden_size=24)
    >>> path = tmpdir / "h.yaml"
    >>> _ = path.write_text("ssl_source: a/b\\nencoder_dim: auto\\n", "utf-8")
    >>> resolve_encoder_widths(str(path), {"ssl_source": source})["encoder_dim"]
    24
    >>> resolve_encoder_widths(str(path), "encoder_dim: 768")
    {'encoder_dim': 768}
    >>> resolve_encoder_widths(str(path), {"encoder_dim": "abc"})
    Traceback (most recent call last):
    ...
    emoshare_sb.utils.errors.HparamsError: --encoder_dim expects a positive integer or auto, got 'abc'
    """
    overrides = overrides_as_dict(overrides)
    with open(hparams_file, encoding="utf-8") as handle:
        defaults = ruamel.yaml.YAML(typ="rt").load(handle)
    auto_keys = []
    for key, default in defaults.items():
        if not key.endswith("_dim"):
            continue
        value = overrides.get(key, default)
        if str(value) == AUTO:
            auto_keys.append(key)
        elif str(default) == AUTO and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise HparamsError(
                f"--{key} expects a positive integer or auto, got {value!r}"
            )
    if not auto_keys:
        return overrides
    # References and overrides resolved, nothing built: the sources as the
    # YAML will see them.
    with open(hparams_file, encoding="utf-8") as handle:
        resolved = ruamel.yaml.YAML(typ="rt").load(
            resolve_references(handle, overrides)
        )
    for key in auto_keys:
        source_key = (
            "ssl_source" if key == "encoder_dim" else key[:-3] + "source"
        )
        if not resolved.get(source_key):
            raise HparamsError(
                f"{key}: auto reads the width of {source_key}, which "
                f"{hparams_file} does not set: give --{key} a number"
            )
        overrides[key] = encoder_width(
            str(resolved[source_key]),
            resolved.get("pretrained_path"),
            # A text model's folder holds a tokenizer, not a feature extractor.
            speech=source_key != "text_source",
        )
        logger.info(
            f"{key}: auto -> {overrides[key]} (the width of {resolved[source_key]})"
        )
    return overrides


def encoder_width(source, cache_dir=None, speech=True):
    """The feature width of the HF model ``source``, read from its config.

    Arguments
    ---------
    source : str
        A hub id or a local model folder.
    cache_dir : str, optional
        Where hub downloads are cached (the encoder's ``save_path``).
    speech : bool
        True: a local folder must be a complete speech model folder
        (:func:`~emoshare_sb.lobes.ssl.check_ssl_source`); False: a text
        model (``text_source``), whose config alone is read.

    Returns
    -------
    int
        ``hidden_size`` (``d_model`` for Whisper, which maps it).

    Example
    -------
    >>> from emoshare_sb.synthetic import make_tiny_ssl_model
    >>> tmpdir = str(getfixture("tmpdir"))
    >>> encoder_width(
    ...     make_tiny_ssl_model(tmpdir + "/w", "whisper", hidden_size=40)
    ... )
    40
    """
    # Imported when needed: the HuggingFace stack takes seconds to import,
    # and checking options or overrides needs none of it.
    from transformers import AutoConfig

    from emoshare_sb.lobes.ssl import check_ssl_source, explain_load_errors

    if speech:
        check_ssl_source(source)
    with explain_load_errors(source):
        config = AutoConfig.from_pretrained(source, cache_dir=cache_dir)
    return int(config.hidden_size)


def overrides_as_dict(overrides):
    """Overrides given as YAML text (or None) or a dict, as a new dict.

    Arguments
    ---------
    overrides : str or dict, optional
        As :func:`speechbrain.parse_arguments` returns them (YAML text).

    Returns
    -------
    dict
        ``{key: value}``.

    Example
    -------
    >>> overrides_as_dict("lr: 0.001\\nbatch_size: 4")
    {'lr': 0.001, 'batch_size': 4}
    >>> overrides_as_dict(None)
    {}
    """
    if isinstance(overrides, str):
        try:
            overrides = ruamel.yaml.YAML(typ="safe", pure=True).load(
                io.StringIO(overrides)
            )
        except ruamel.yaml.YAMLError as error:  # e.g. an option given twice
            problem = getattr(error, "problem", None) or str(error)
            raise HparamsError(
                f"cannot read the command-line overrides: {problem}"
            ) from error
    return dict(overrides or {})


def check_overrides(hparams_file, overrides):
    """Raises :class:`HparamsError` for an override the YAML cannot take.

    Arguments
    ---------
    hparams_file : str
        The recipe's YAML.
    overrides : str or dict, optional
        YAML text or a dict.

    Example
    -------
    >>> path = getfixture("tmpdir") / "h.yaml"
    >>> _ = path.write_text(
    ...     "batch_size: 8\\nlr: 0.001\\nfreeze: True\\nsource: a/b\\n", "utf-8"
    ... )
    >>> check_overrides(str(path), "lr: 1e-4\\nbatch_size: 4")
    >>> check_overrides(str(path), "batch_size: abc")
    Traceback (most recent call last):
    ...
    emoshare_sb.utils.errors.HparamsError: --batch_size expects an integer (the YAML has 8), got 'abc'
    >>> check_overrides(str(path), {"batchsize": 4})
    Traceback (most recent call last):
    ...
    emoshare_sb.utils.errors.HparamsError: --batchsize is not a key of ...h.yaml; did you mean --batch_size?
    """
    if not overrides:
        return
    overrides = overrides_as_dict(overrides)
    with open(hparams_file, encoding="utf-8") as handle:
        defaults = ruamel.yaml.YAML(typ="rt").load(handle)
    for key, value in overrides.items():
        if key not in defaults:
            close = difflib.get_close_matches(key, list(defaults), n=3)
            hint = (
                f"; did you mean {', '.join('--' + c for c in close)}?"
                if close
                else ""
            )
            raise HparamsError(f"--{key} is not a key of {hparams_file}{hint}")
        expected = _expected_type(defaults[key])
        # null is accepted everywhere: it means "off" or "default" for optional keys.
        if (
            value is not None
            and expected is not None
            and not _fits(value, expected)
        ):
            raise HparamsError(
                f"--{key} expects {_TYPE_NAMES[expected]} (the YAML has "
                f"{defaults[key]}), got {value!r}"
            )


def check_encoder_width(encoder, width, width_key="encoder_dim"):
    """Fails early, with the fix, when a width key does not match its encoder.

    Arguments
    ---------
    encoder : torch.nn.Module
        The loaded encoder, with an ``output_size`` (an
        :class:`~emoshare_sb.lobes.fusion.EarlyFusion` sums its encoders').
    width : int
        The YAML's value (``encoder_dim``).
    width_key : str
        The key's name, for the message.

    Raises
    ------
    HparamsError
        Naming the width the encoder has and the override that fixes it.

    Example
    -------
    >>> from emoshare_sb.lobes.frontends import FbankFrontEnd
    >>> check_encoder_width(FbankFrontEnd(n_mels=40), 40)
    >>> check_encoder_width(FbankFrontEnd(n_mels=40), 80)
    Traceback (most recent call last):
    ...
    emoshare_sb.utils.errors.HparamsError: The encoder (FbankFrontEnd) outputs 40-dim features but encoder_dim is 80: set --encoder_dim auto (or 40)
    """
    actual = encoder.output_size
    if actual != width:
        parts = getattr(encoder, "encoders", None) or [encoder]
        names = ", ".join(
            getattr(part, "source", None) or type(part).__name__
            for part in parts
        )
        raise HparamsError(
            f"The encoder ({names}) outputs {actual}-dim features but "
            f"{width_key} is {width}: set --{width_key} auto (or {actual})"
        )


_TYPE_NAMES = {
    bool: "True or False",
    int: "an integer",
    float: "a number",
    list: "a list",
}


def _expected_type(default):
    if getattr(
        getattr(default, "tag", None), "value", None
    ):  # !ref, !new:, ... : not checked
        tag = default.tag.value
        if tag and tag.startswith("!"):
            return None
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, list):
        return list
    return None


def _fits(value, expected):
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, expected)


@contextlib.contextmanager
def exit_on_user_error():
    """Turns a bad-input error into a one-line message and exit status 2.

    For the set-up part of a recipe (loading the YAML, checking the encoder,
    preparing data): an unknown override, a bad label row, a missing audio
    file or model folder, or a full disk is the user's to fix, and a traceback
    only hides the message that says how. The message goes to stderr as
    ``error: ...``.

    Example
    -------
    >>> import contextlib, io
    >>> stderr = io.StringIO()
    >>> with contextlib.redirect_stderr(stderr), exit_on_user_error():
    ...     raise HparamsError("--lr expects a number")
    Traceback (most recent call last):
    ...
    SystemExit: 2
    >>> stderr.getvalue()
    'error: --lr expects a number\\n'
    """
    try:
        yield
    except (UserError, DataPrepError, OSError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(USER_ERROR_STATUS) from error
