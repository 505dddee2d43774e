"""Building the inference YAML of a trained experiment, and writing an export folder.

The model's definitions are copied from the experiment's ``hyperparams.yaml``
as YAML (round trip, nothing evaluated), after the allow-list check of
:mod:`emoshare_sb.inference.safety`: an experiment whose model part names
``!apply:eval`` or any other code is refused, naming the key, so that no
export carries it. :class:`~emoshare_sb.inference.regressor.EmotionShareRegressor`'s
``inference_hparams`` and ``export`` call these with their own class.

Authors
 * emoshare_sb contributors 2026
"""

import contextlib
import io
import os
import shutil
import tempfile

from ruamel.yaml.comments import CommentedMap, TaggedScalar
from ruamel.yaml.tag import Tag
from speechbrain.inference.interfaces import pretrained_from_hparams
from speechbrain.utils.logger import get_logger

from emoshare_sb.inference.folders import (
    AVERAGED_FOLDER,
    ENCODER_FOLDER,
    HPARAMS_FILE,
    _default_windows,
    _experiment_encoder,
    _export_info,
    _read_yaml_tree,
    _ref,
    _replace_folder,
    _yaml,
    averaged_checkpoints,
    check_export_target,
    is_experiment_folder,
)
from emoshare_sb.inference.safety import check_hparams_file
from emoshare_sb.utils.io import atomic_write, make_temp_folder, write_json

logger = get_logger(__name__)

# The module users import the inference classes from, named in exports.
PUBLIC_MODULE = "emoshare_sb.inference.interfaces"


def interface_name(cls):
    """The dotted name an export records for its inference class.

    Arguments
    ---------
    cls : type
        An inference class.

    Returns
    -------
    str
        ``emoshare_sb.inference.interfaces.<Class>`` for the project's own
        classes (importable there whichever module defines them), else the
        class's own module and name.
    """
    import importlib

    public = importlib.import_module(PUBLIC_MODULE)
    if getattr(public, cls.__qualname__, None) is cls:
        return f"{PUBLIC_MODULE}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def inference_yaml(
    cls,
    experiment_folder,
    window=None,
    hop=None,
    exported=False,
    trust_code=False,
):
    """Builds the inference YAML of a trained experiment.

    See :meth:`~emoshare_sb.inference.regressor.EmotionShareRegressor.inference_hparams`.

    Arguments
    ---------
    cls : type
        The inference class.
    experiment_folder : str
        A recipe's ``--output_folder``.
    window, hop : float, optional
        Sliding windows, in seconds.
    exported : bool
        Read the encoder from ``<model_folder>/encoder``.
    trust_code : bool
        Skip the allow-list check of the copied keys.

    Returns
    -------
    str
        The YAML text.
    """
    path = os.path.join(experiment_folder, HPARAMS_FILE)
    tree = _read_yaml_tree(path)
    missing = [key for key in cls.EXPERIMENT_KEYS if key not in tree]
    if missing:
        from emoshare_sb.inference.interfaces import _interface_of_experiment

        served_by = _interface_of_experiment(tree)
        hint = (
            f"; this experiment's model is served by {served_by.__name__} "
            "(load_model picks it)"
            if served_by is not cls
            else "; is this a trained experiment?"
        )
        raise ValueError(f"{path}: keys {missing} are missing{hint}")
    if not trust_code:
        # Only the model's part of the experiment's YAML is copied and loaded.
        check_hparams_file(path, keys=cls.EXPERIMENT_KEYS)
    window, hop = _default_windows(
        tree, window, hop, cls.DEFAULT_WINDOW, cls.DEFAULT_HOP
    )

    hparams = CommentedMap()
    hparams["interface"] = interface_name(cls)
    hparams["model_folder"] = TaggedScalar("", tag="!PLACEHOLDER")
    hparams["window"] = window
    hparams["hop"] = hop
    hparams.update(cls.inference_constants(tree))
    for key in cls.EXPERIMENT_KEYS:
        hparams[key] = tree[key]
    encoder = hparams["encoder"]
    encoder["freeze"] = True
    if exported:
        encoder["source"] = _ref(f"<model_folder>/{ENCODER_FOLDER}")
        encoder["save_path"] = _ref(f"<model_folder>/{ENCODER_FOLDER}")

    names = averaged_checkpoints(experiment_folder)
    missing = [name for name in names if name not in hparams]
    if missing:
        raise ValueError(
            f"{experiment_folder}: averaged checkpoints {missing} belong to no key of "
            f"{cls.__name__}.EXPERIMENT_KEYS {list(cls.EXPERIMENT_KEYS)}"
        )
    loaded = {name: hparams[name] for name in names}
    strict = TaggedScalar(
        "",
        tag="!name:emoshare_sb.inference.folders.load_state_dict_strict",
    )
    pretrainer = CommentedMap()
    pretrainer["loadables"] = CommentedMap(loaded)
    pretrainer["paths"] = CommentedMap(
        {name: _ref(f"<model_folder>/{name}.ckpt") for name in loaded}
    )
    pretrainer["custom_hooks"] = CommentedMap(dict.fromkeys(loaded, strict))
    pretrainer.yaml_set_ctag(
        Tag(suffix="!new:speechbrain.utils.parameter_transfer.Pretrainer")
    )
    hparams["pretrainer"] = pretrainer

    stream = io.StringIO()
    _yaml().dump(hparams, stream)
    header = (
        f"# Inference hyperparameters for {hparams['interface']},\n"
        f"# made from {os.path.abspath(path)}.\n"
        f"# Load with {cls.__name__}.from_hparams(source=<this folder>), which\n"
        "# sets model_folder; window/hop are sliding windows in seconds (null: whole clips).\n"
    )
    return header + stream.getvalue()


def write_export(
    cls,
    experiment_folder,
    export_folder,
    window=None,
    hop=None,
    encoder_source=None,
    overwrite=False,
    trust_code=False,
):
    """Writes a self-contained model folder from a trained experiment.

    See :func:`emoshare_sb.inference.interfaces.export_model`.

    Arguments
    ---------
    cls : type
        The inference class.
    experiment_folder : str
        A recipe's ``--output_folder``.
    export_folder : str
        The folder to create; neither the experiment, inside it, nor above it.
    window, hop : float, optional
        Default sliding windows, seconds.
    encoder_source : str, optional
        Read the SSL encoder from here.
    overwrite : bool
        Replace a non-empty ``export_folder``.
    trust_code : bool
        Copy model definitions outside the allow-list.

    Returns
    -------
    str
        The absolute path of ``export_folder``.
    """
    if not is_experiment_folder(experiment_folder):
        raise ValueError(
            f"'{experiment_folder}' is not a trained experiment folder "
            f"(no {HPARAMS_FILE} or {AVERAGED_FOLDER}/model.ckpt)"
        )
    export_folder = os.path.abspath(export_folder)
    check_export_target(experiment_folder, export_folder, overwrite)
    text = cls.inference_hparams(
        experiment_folder, window, hop, exported=True, trust_code=trust_code
    )
    encoder = _experiment_encoder(experiment_folder, encoder_source)

    # Everything is written to a staging folder renamed into place at the
    # end, so an export is complete or absent.
    parent = os.path.dirname(export_folder)
    os.makedirs(parent, exist_ok=True)
    staging = make_temp_folder(parent, ".export-")
    try:
        with open(os.path.join(staging, HPARAMS_FILE), "w") as handle:
            handle.write(text)
        averaged = os.path.join(experiment_folder, AVERAGED_FOLDER)
        for name in averaged_checkpoints(experiment_folder):
            shutil.copyfile(
                os.path.join(averaged, f"{name}.ckpt"),
                os.path.join(staging, f"{name}.ckpt"),
            )
        encoder.model.save_pretrained(os.path.join(staging, ENCODER_FOLDER))
        encoder.feature_extractor.save_pretrained(
            os.path.join(staging, ENCODER_FOLDER)
        )
        write_json(
            os.path.join(staging, "export_info.json"),
            _export_info(experiment_folder, cls.VALIDATION_SPLIT),
        )
        _replace_folder(staging, export_folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info(f"Exported {experiment_folder} to {export_folder}")
    return export_folder


def load_folder(
    cls,
    source,
    hparams_file=HPARAMS_FILE,
    overrides=None,
    savedir=None,
    trust_code=False,
    **kwargs,
):
    """Loads an export or an experiment folder with ``cls``, checked first.

    See :meth:`~emoshare_sb.inference.regressor.EmotionShareRegressor.from_hparams`.

    Arguments
    ---------
    cls : type
        The inference class.
    source : str
        The folder.
    hparams_file : str
        The inference YAML's name.
    overrides : dict, optional
        YAML overrides.
    savedir : str, optional
        Where to keep the generated YAML (experiment) or link files (export).
    trust_code : bool
        Skip the allow-list check.
    **kwargs
        For ``pretrained_from_hparams`` and the constructor.

    Returns
    -------
    EmotionShareRegressor
        The loaded model.
    """
    source = os.fspath(source)
    if not os.path.exists(source):
        raise ValueError(
            f"the model folder '{source}' does not exist: give an exported "
            "model folder or a trained experiment folder"
        )
    if not os.path.isdir(source):
        raise ValueError(
            f"'{source}' is not a folder: give an exported model folder or a "
            "trained experiment folder (the recipe's --output_folder)"
        )
    overrides = dict(overrides or {})
    if not is_experiment_folder(source):
        path = os.path.join(source, hparams_file)
        if not trust_code and os.path.isfile(path):
            check_hparams_file(path)
        overrides.setdefault("model_folder", os.path.abspath(source))
        return pretrained_from_hparams(
            cls,
            source,
            hparams_file,
            overrides=overrides,
            savedir=savedir,
            **kwargs,
        )
    text = cls.inference_hparams(source, trust_code=trust_code)
    overrides.setdefault(
        "model_folder",
        os.path.abspath(os.path.join(source, AVERAGED_FOLDER)),
    )
    with contextlib.ExitStack() as stack:
        folder = savedir or stack.enter_context(tempfile.TemporaryDirectory())
        with atomic_write(os.path.join(folder, hparams_file)) as handle:
            handle.write(text)
        return pretrained_from_hparams(
            cls,
            folder,
            hparams_file,
            overrides=overrides,
            savedir=savedir,
            **kwargs,
        )
