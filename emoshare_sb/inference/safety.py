"""Safe loading: the HyperPyYAML an inference folder may hold, checked before it runs.

HyperPyYAML builds objects while it reads a file: ``!new:os.system`` or
``!apply:eval`` in a model folder's ``hyperparams.yaml`` would run code as
soon as the folder is loaded. An inference folder (an export, or the model
part of an experiment's YAML) only needs a few tags on a few packages, so
every node is checked against an allow-list on the YAML text, before
HyperPyYAML evaluates anything:

* ``!ref``, ``!copy``, ``!tuple``, ``!PLACEHOLDER`` and plain YAML data;
* ``!new:`` on a *class* of ``emoshare_sb``, ``torch.nn`` or ``speechbrain``
  (not a function, which ``!new:`` would call);
* ``!name:`` on a class or function of those packages (a reference: nothing
  is called while loading);
* ``!apply:`` only on a few pure built-ins (``len``, ``getattr`` of a
  public attribute, ``int``, ...), which the recipes' YAMLs use for sizes.

``!include:``, ``!module:``, ``!applyref:``, Python tags
(``!!python/object``) and any other target are refused with
:class:`UnsafeHparamsError`, naming the file, the line and the tag. Folders
the user wrote themselves load with ``trust_code=True`` (``--trust-code``).

Authors
 * emoshare_sb contributors 2026
"""

import importlib

import ruamel.yaml
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

# Packages whose classes (!new:) and callables (!name:) a model folder may name.
ALLOWED_PACKAGES = ("emoshare_sb", "torch.nn", "speechbrain")
# Modules of those packages that run shell commands or processes.
DENIED_MODULES = (
    "speechbrain.utils.superpowers",
    "speechbrain.utils.DER",
    "speechbrain.utils.distributed",
)
# Pure built-ins that !apply: may call (sizes and simple arithmetic).
ALLOWED_APPLY = (
    "len",
    "getattr",
    "int",
    "float",
    "str",
    "bool",
    "tuple",
    "list",
    "min",
    "max",
    "sum",
    "abs",
    "round",
)
# Tags that carry data only.
DATA_TAGS = ("!ref", "!copy", "!tuple", "!PLACEHOLDER")
TRUST_HINT = (
    "refused: loading would run it. If you wrote this folder and trust it, "
    "pass trust_code=True (emoshare-predict --trust-code)"
)


class UnsafeHparamsError(ValueError):
    """A model folder's YAML names a tag or target outside the allow-list.

    Arguments
    ---------
    path : str
        The file.
    line : int or None
        1-based line of the refused node.
    detail : str
        What is refused and why.
    """

    def __init__(self, path, line, detail):
        self.path, self.line, self.detail = path, line, detail
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {detail}")


def check_hparams_text(text, path="hyperparams.yaml", keys=None):
    """Checks HyperPyYAML text against the allow-list, without evaluating it.

    Arguments
    ---------
    text : str
        The YAML.
    path : str
        The file's name, for the error.
    keys : collection of str, optional
        Check only these top-level keys (e.g. the model part of an
        experiment's YAML, which is all that inference loads).

    Raises
    ------
    UnsafeHparamsError
        At the first disallowed node: ``<path>:<line>: '<tag>' ... refused``.

    Example
    -------
    >>> check_hparams_text(
    ...     "head: !new:torch.nn.Linear [2, 3]\\nn: !apply:len [[1]]"
    ... )
    >>> try:
    ...     check_hparams_text("x: 1\\npwn: !apply:os.system [ls]", "h.yaml")
    ... except UnsafeHparamsError as error:
    ...     print(str(error).split(":")[:3])
    ['h.yaml', '2', " '!apply"]
    """
    try:
        root = ruamel.yaml.YAML().compose(text)
    except ruamel.yaml.YAMLError as error:
        raise UnsafeHparamsError(
            path, None, f"not valid YAML: {error}"
        ) from error
    if root is None:
        return
    if keys is None or not isinstance(root, MappingNode):
        check_node(root, path)
        return
    for name, value in root.value:
        if isinstance(name, ScalarNode) and name.value in keys:
            check_node(value, path, name.value)


def check_hparams_file(path, keys=None):
    """Checks a YAML file (see :func:`check_hparams_text`).

    Arguments
    ---------
    path : str
        The file.
    keys : collection of str, optional
        Check only these top-level keys.
    """
    with open(path, encoding="utf-8") as handle:
        check_hparams_text(handle.read(), path, keys)


def check_node(node, path, key=None):
    """Checks one composed YAML node and its children.

    Arguments
    ---------
    node : ruamel.yaml.nodes.Node
        From ``ruamel.yaml.YAML().compose``.
    path : str
        The file's name, for the error.
    key : str, optional
        The top-level key the node belongs to, named in the error.

    Raises
    ------
    UnsafeHparamsError
        At the first disallowed node.
    """
    stack = [(node, key)]
    while stack:
        node, key = stack.pop()
        reason = _refusal(node)
        if reason:
            named = f" (key '{key}')" if key else ""
            raise UnsafeHparamsError(
                path,
                node.start_mark.line + 1,
                f"'{node.tag}'{named} {reason}; {TRUST_HINT}",
            )
        if isinstance(node, MappingNode):
            for name, value in node.value:
                child_key = key
                if child_key is None and isinstance(name, ScalarNode):
                    child_key = name.value
                stack.extend([(name, child_key), (value, child_key)])
        elif isinstance(node, SequenceNode):
            stack.extend((child, key) for child in node.value)


def _refusal(node):
    """Why a node is refused, or None when it is allowed."""
    tag = str(node.tag or "")
    if tag.startswith("tag:yaml.org,2002:"):
        plain = tag[len("tag:yaml.org,2002:") :]
        if plain in ("str", "int", "float", "bool", "null", "map", "seq"):
            return None
        if plain in ("binary", "timestamp", "omap", "pairs", "set", "merge"):
            return None
        return "is not a plain YAML type"
    if tag in DATA_TAGS or not tag.startswith("!"):
        return None
    kind, _, target = tag.partition(":")
    if kind == "!new":
        return _check_target(target, want_class=True)
    if kind == "!name":
        return _check_target(target, want_class=False)
    if kind == "!apply":
        if target not in ALLOWED_APPLY:
            return (
                f"calls '{target}', which is not one of {list(ALLOWED_APPLY)}"
            )
        if target == "getattr" and not _public_getattr(node):
            return "reads a private attribute"
        return None
    return "is not a tag an inference folder may use"


def _check_target(target, want_class):
    """Why ``target`` may not follow ``!new:`` / ``!name:``, or None."""
    if not any(
        target == package or target.startswith(package + ".")
        for package in ALLOWED_PACKAGES
    ):
        return f"names a target outside {list(ALLOWED_PACKAGES)}"
    module_name, _, name = target.rpartition(".")
    if any(
        module_name == denied or module_name.startswith(denied + ".")
        for denied in DENIED_MODULES
    ):
        return "names a module that runs processes"
    try:
        value = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        return "names nothing that can be imported"
    if want_class and not isinstance(value, type):
        return "calls a function, not a class"
    if not callable(value):
        return "is not callable"
    return None


def _public_getattr(node):
    """True when a ``!apply:getattr`` reads a public attribute by a plain name."""
    arguments = node.value if isinstance(node, SequenceNode) else []
    if len(arguments) < 2 or not isinstance(arguments[1], ScalarNode):
        return False
    name = str(arguments[1].value)
    return name.isidentifier() and not name.startswith("_")
