"""Loading a recipe's YAML with command-line overrides that are checked first.

HyperPyYAML reports an unknown override as a bare ``KeyError`` listing every
key, and accepts a value of the wrong type until something deep inside
training fails (``--batch_size abc`` surfaces as a DataLoader error). Here each
override is checked against the YAML's own value: an unknown key is named
with the closest known keys, and a value of the wrong type is named with the
type the YAML expects.

Authors
 * emoshare_sb contributors 2026
"""

import contextlib
import difflib
import io

import ruamel.yaml
from hyperpyyaml import load_hyperpyyaml

from emoshare_sb.data.errors import DataPrepError


class HparamsError(ValueError):
    """A command-line override that does not fit the YAML file."""


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
    with open(hparams_file, encoding="utf-8") as handle:
        return load_hyperpyyaml(handle, overrides)


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
    emoshare_sb.training.hparams.HparamsError: --batch_size expects an integer (the YAML has 8), got 'abc'
    >>> check_overrides(str(path), {"batchsize": 4})
    Traceback (most recent call last):
    ...
    emoshare_sb.training.hparams.HparamsError: --batchsize is not a key of ...h.yaml; did you mean --batch_size?
    """
    if not overrides:
        return
    if isinstance(overrides, str):
        overrides = (
            ruamel.yaml.YAML(typ="safe", pure=True).load(io.StringIO(overrides))
            or {}
        )
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


def check_encoder_dim(hparams):
    """Fails early, with the fix, when ``encoder_dim`` does not match the encoder.

    Arguments
    ---------
    hparams : dict
        Loaded hyperparameters with ``encoder`` (having ``output_size``) and
        ``encoder_dim``.

    Raises
    ------
    HparamsError
        Naming the width the encoder has and the override that fixes it.
    """
    actual = hparams["encoder"].output_size
    if actual != hparams["encoder_dim"]:
        name = hparams.get("ssl_source", type(hparams["encoder"]).__name__)
        raise HparamsError(
            f"The encoder ({name}) outputs {actual}-dim features but encoder_dim "
            f"is {hparams['encoder_dim']}: add --encoder_dim {actual}"
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
    """Turns a bad-input error into a one-line message and exit status 1.

    For the set-up part of a recipe (loading the YAML, checking the encoder,
    preparing data): an unknown override, a bad label row, a missing audio
    file or model folder, or a full disk is the user's to fix, and a traceback
    only hides the message that says how.

    Example
    -------
    >>> with exit_on_user_error():
    ...     raise HparamsError("--lr expects a number")
    Traceback (most recent call last):
    ...
    SystemExit: error: --lr expects a number
    """
    try:
        yield
    except (HparamsError, DataPrepError, OSError) as error:
        raise SystemExit(f"error: {error}") from error
