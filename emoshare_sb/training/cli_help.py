"""``train.py HPARAMS --help``: SpeechBrain's run options, then the YAML's keys.

SpeechBrain's ``--help`` lists only its own run options (``--device``,
``--debug`` ...), although every top-level key of the recipe's YAML can be
overridden from the command line too (``--batch_size 8``). Here the keys a
user may set are listed after SpeechBrain's options, each with its default
and the comment the YAML gives it (on its line, or the comment lines just
above it), read from the YAML text itself: nothing is instantiated, no model
is loaded.

Listed: keys with a scalar, list or ``!ref`` value, and ``!PLACEHOLDER``
keys (marked required). Objects (``!new:``, ``!name:``, ``!apply:``),
mappings and private ``__`` keys are left out: they are the recipe's wiring.

Authors
 * emoshare_sb contributors 2026
"""

import re
import sys
import textwrap

import speechbrain as sb

HELP_FLAGS = ("-h", "--help")
_KEY_LINE = re.compile(r"^([A-Za-z_][\w.-]*):(.*)$")
_OBJECT_TAGS = ("!new:", "!name:", "!apply:", "!module:", "!tuple", "!copy")
# Section rulers such as "# Data ------" or "# ####": not a key's comment.
_RULER = re.compile(r"^(.*?)\s*[-#=]{4,}\s*$")


def _split_comment(text):
    """Splits ``value  # comment`` (a ``#`` after a space, outside quotes)."""
    quote = None
    for i, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i].strip(), text[i + 1 :].strip()
    return text.strip(), ""


def yaml_keys(hparams_file):
    """The overridable top-level keys of a YAML, with default and comment.

    Arguments
    ---------
    hparams_file : str
        The recipe's YAML.

    Returns
    -------
    list of (str, str, str)
        ``(key, default, comment)`` in file order; ``default`` is the YAML's
        text (``(required)`` for ``!PLACEHOLDER``), ``comment`` the key's
        comment joined into one line ("" when it has none).

    Example
    -------
    >>> path = getfixture("tmpdir") / "h.yaml"
    >>> _ = path.write_text(
    ...     "# Data ----\\n"
    ...     "data_folder: !PLACEHOLDER  # the corpus root\\n"
    ...     "# Seconds per crop;\\n# 0 = whole clip.\\n"
    ...     "train_window: 0.0\\n"
    ...     "save: !ref <data_folder>/save\\n"
    ...     "model: !new:torch.nn.Linear\\n    in_features: 2\\n"
    ...     "dims:\\n    - arousal\\n    - valence\\n",
    ...     "utf-8",
    ... )
    >>> for key in yaml_keys(str(path)):
    ...     print(key)
    ('data_folder', '(required)', 'the corpus root')
    ('train_window', '0.0', 'Seconds per crop; 0 = whole clip.')
    ('save', '!ref <data_folder>/save', '')
    ('dims', '[arousal, valence]', '')
    """
    with open(hparams_file, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    keys = []
    above = []  # the comment lines just above the current line
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if line.startswith("#"):
            above.append(line.lstrip("#").strip())
            continue
        match = _KEY_LINE.match(line)
        if not match:
            above = []
            continue
        key, rest = match.groups()
        value, comment = _split_comment(rest)
        # The indented lines that follow belong to this key.
        block = []
        while index < len(lines) and (
            not lines[index].strip() or lines[index][:1] in " \t"
        ):
            if lines[index].strip():
                block.append(lines[index].strip())
            index += 1
        comment = comment or " ".join(_comment_lines(above))
        above = []
        default = _default(value, block)
        if key.startswith("__") or default is None:
            continue
        keys.append((key, default, comment))
    return keys


def _comment_lines(lines):
    """Comment lines without section rulers (their title is kept)."""
    kept = []
    for line in lines:
        ruler = _RULER.match(line)
        if ruler:
            line = ""
        if line:
            kept.append(line)
    return kept


def _default(value, block):
    """The default to show for a key's value text, or None if not listed."""
    if value.startswith(_OBJECT_TAGS):
        return None
    if value == "!PLACEHOLDER":
        return "(required)"
    if value:
        if block and value.startswith("["):  # a flow list over lines
            return " ".join([value] + [_split_comment(b)[0] for b in block])
        return value
    items = [_split_comment(b)[0] for b in block]
    if items and all(i.startswith("- ") for i in items):
        entries = [i[2:].strip() for i in items]
        if not any(e.startswith(_OBJECT_TAGS) for e in entries):
            return "[" + ", ".join(entries) + "]"
    return None


def format_yaml_keys(hparams_file, width=80):
    """The ``--help`` section that lists a YAML's keys.

    Arguments
    ---------
    hparams_file : str
        The recipe's YAML.
    width : int
        Line width of the text.

    Returns
    -------
    str
        A heading and one entry per key (``--key DEFAULT`` and its comment).

    Example
    -------
    >>> path = getfixture("tmpdir") / "h.yaml"
    >>> _ = path.write_text("lr: 0.001  # Adam's learning rate\\n", "utf-8")
    >>> print(format_yaml_keys(str(path)))  # doctest: +ELLIPSIS
    YAML keys of .../h.yaml (override any with --key value):
      --lr 0.001
          Adam's learning rate
    """
    out = [f"YAML keys of {hparams_file} (override any with --key value):"]
    for key, default, comment in yaml_keys(hparams_file):
        out.append(f"  --{key} {default}")
        if comment:
            out.extend(
                textwrap.wrap(
                    comment,
                    width=width,
                    initial_indent=" " * 6,
                    subsequent_indent=" " * 6,
                )
            )
    return "\n".join(out)


def print_help_if_asked(argv):
    """On ``-h``/``--help``: SpeechBrain's options, then the YAML's keys; exit 0.

    Call first in a recipe's ``__main__``; without a help flag it returns
    and the recipe parses ``argv`` as usual.

    Arguments
    ---------
    argv : list of str
        The command-line arguments (``sys.argv[1:]``).

    Example
    -------
    >>> print_help_if_asked(["hparams.yaml", "--lr", "0.1"])  # not asked
    """
    if not any(arg in HELP_FLAGS for arg in argv):
        return
    try:
        sb.parse_arguments(argv)  # argparse prints the run options, exits
    except SystemExit:
        pass
    yamls = [arg for arg in argv if arg.endswith((".yaml", ".yml"))]
    print()
    if not yamls:
        print("Give the YAML before --help to list the keys it lets you set.")
    else:
        try:
            print(format_yaml_keys(yamls[0]))
        except OSError as error:
            print(
                f"error: cannot read {yamls[0]}: {error.strerror}",
                file=sys.stderr,
            )
            raise SystemExit(2) from error
    sys.stdout.flush()
    raise SystemExit(0)
