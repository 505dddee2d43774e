"""Inference with trained emotion models, in SpeechBrain's ``Pretrained`` style.

:class:`EmotionShareRegressor` loads a model trained by the ComParE 2023
recipe (or any recipe with an ``encoder -> pooling -> head`` model) and
predicts one value per output (emotion share) for files or padded batches::

    model = EmotionShareRegressor.from_hparams(source="results/my_run")
    model.predict_file("clip.wav")  # {"Anger": 0.12, ..., "Tiredness": 0.40}

``source`` is either

* an **exported folder** written by :func:`export_model`: the inference
  ``hyperparams.yaml``, the averaged weights (``model.ckpt``, and
  ``encoder.ckpt`` when the encoder was fine-tuned) and the SSL encoder saved
  with ``save_pretrained`` in ``encoder/``. It is self-contained: it loads
  with ``HF_HUB_OFFLINE=1`` and can be moved or copied anywhere; or
* a **trained experiment folder** (the recipe's ``--output_folder``): the
  inference hyperparameters are built on the fly from its
  ``hyperparams.yaml`` and weights are read from ``save/averaged/``; the
  encoder is loaded from the experiment's ``ssl_source`` (a local folder, or a
  hub id already in the experiment's download cache). Nothing is written
  unless ``savedir`` is given, in which case the generated
  ``hyperparams.yaml`` is kept there.

Long recordings are scored in sliding windows (:mod:`emoshare_sb.inference.windows`):
a clip no longer than ``window`` seconds is scored whole, and a longer one
is cut into windows every ``hop`` seconds (the last one aligned to the end)
whose predictions are averaged; the per-window predictions are available too
(:meth:`~EmotionShareRegressor.score_file`). ``window``/``hop`` default to
the experiment's ``eval_window``/``eval_hop`` when it evaluated in windows,
else to 8 s / 4 s (every ComParE clip whole, bounded memory on long
recordings); override them with ``overrides={"window": ..., "hop": ...}``
(0 scores whole clips). :meth:`~EmotionShareRegressor.predict_batch` is the
recipe's evaluation step: a batch padded as the recipe pads it gives the
recipe's predictions exactly.

:class:`VoteDistributionRecognizer` serves the MSP-Podcast recipe's model
the same way: the distribution of the graders' votes over the eight classes
and arousal/valence/dominance on the corpus' 1..7 scale::

    model = VoteDistributionRecognizer.from_hparams(source="results/msp_run")
    model.predict_file("clip.wav")
    # {"probabilities": {"Angry": 0.05, ..., "Neutral": 0.41}, "class": "Neutral",
    #  "arousal": 3.9, "valence": 4.2, "dominance": 4.0}

It shares everything but the model's outputs with
:class:`EmotionShareRegressor` (windows, loading, export): a model with other
outputs overrides :attr:`~EmotionShareRegressor.output_names`,
:meth:`~EmotionShareRegressor.forward`, ``HPARAMS_NEEDED``/``MODULES_NEEDED``
and :attr:`~EmotionShareRegressor.EXPERIMENT_KEYS`, and is added to
:data:`INFERENCE_INTERFACES` so that :func:`interface_class` finds it from an
experiment's ``modules`` (an experiment may also name its class in an
``inference_interface`` key). :func:`load_model` and :func:`export_model` pick
the class by themselves.

Loading never runs code that a folder's YAML names: every tag and target is
checked against an allow-list before HyperPyYAML evaluates anything
(:mod:`emoshare_sb.inference.safety`); ``trust_code=True`` loads a folder you
wrote yourself. Weights are read with ``torch.load(weights_only=True)``.

The roles are split over modules, all importable from here:
:mod:`~emoshare_sb.inference.regressor` and :mod:`~emoshare_sb.inference.votes`
(the classes), :mod:`~emoshare_sb.inference.scoring` (windows and batches),
:mod:`~emoshare_sb.inference.folders` (folder layout and file helpers),
:mod:`~emoshare_sb.inference.exporting` (inference YAML and export) and
:mod:`~emoshare_sb.inference.safety` (the allow-list).

Authors
 * emoshare_sb contributors 2026
"""

import importlib
import os

from emoshare_sb.inference.folders import (  # noqa: F401 (public names)
    AVERAGED_FOLDER,
    DEFAULT_HOP,
    DEFAULT_WINDOW,
    ENCODER_FOLDER,
    HPARAMS_FILE,
    _read_yaml_tree,
    _tiny_experiment,
    averaged_checkpoints,
    is_experiment_folder,
    load_state_dict_strict,
)
from emoshare_sb.inference.regressor import (  # noqa: F401 (public names)
    EmotionShareRegressor,
    FilePrediction,
    WindowPredictions,
)
from emoshare_sb.inference.safety import UnsafeHparamsError  # noqa: F401
from emoshare_sb.inference.votes import VoteDistributionRecognizer

# Inference classes tried in turn on an experiment folder: the first whose
# MODULES_NEEDED the experiment's ``modules`` all define serves it.
INFERENCE_INTERFACES = (VoteDistributionRecognizer, EmotionShareRegressor)


def export_model(
    experiment_folder,
    export_folder,
    window=None,
    hop=None,
    encoder_source=None,
    overwrite=False,
    trust_code=False,
):
    """Writes a self-contained, offline-loadable model folder from an experiment.

    The folder holds ``hyperparams.yaml`` (the inference YAML: encoder reading
    ``encoder/``, pooling, head, output names, sample rate, window and hop,
    ``modules`` and a ``pretrainer``), ``model.ckpt`` (the averaged pooling +
    head), ``encoder.ckpt`` when the experiment fine-tuned the encoder,
    ``encoder/`` (the SSL model's ``save_pretrained`` weights, config and
    feature-extractor config) and ``export_info.json`` (where it came from,
    which checkpoints were averaged, the devel scores). It is written to a
    staging folder and renamed into place, so it is complete or absent.

    The experiment's inference class (:func:`interface_class`: the
    MSP-Podcast recipe's model is exported by :class:`VoteDistributionRecognizer`,
    the ComParE recipes' by :class:`EmotionShareRegressor`) does the export.

    Arguments
    ---------
    experiment_folder : str
        A trained recipe's ``--output_folder``.
    export_folder : str
        The folder to create.
    window, hop : float, optional
        Default sliding windows of the exported model, in seconds; 0 scores
        whole clips. By default the experiment's ``eval_window``/``eval_hop``
        when it evaluated in windows, else ``DEFAULT_WINDOW``/``DEFAULT_HOP``
        (8 s / 4 s: whole ComParE clips, bounded memory on long recordings).
    encoder_source : str, optional
        Read the SSL encoder from here instead of the experiment's
        ``ssl_source`` (e.g. a local copy of a hub model).
    overwrite : bool
        Replace an existing, non-empty ``export_folder``. The target may not
        be the experiment, lie inside it or contain it.
    trust_code : bool
        Copy model definitions outside the allow-list of
        :mod:`emoshare_sb.inference.safety` (by default an experiment whose
        model part names e.g. ``!apply:eval`` is refused, naming the key).

    Returns
    -------
    str
        The absolute path of ``export_folder``.

    Example
    -------
    >>> import torch
    >>> from emoshare_sb.synthetic import make_tiny_ssl_model
    >>> tmp = getfixture("tmpdir")
    >>> experiment = _tiny_experiment(
    ...     str(tmp / "exp"), make_tiny_ssl_model(str(tmp / "ssl"))
    ... )
    >>> folder = export_model(experiment, str(tmp / "export"))
    >>> sorted(os.listdir(folder))
    ['encoder', 'export_info.json', 'hyperparams.yaml', 'model.ckpt']
    >>> model = EmotionShareRegressor.from_hparams(
    ...     folder, run_opts={"device": "cpu"}
    ... )
    >>> model.predict_batch(torch.randn(3, 16000)).shape
    torch.Size([3, 2])
    """
    cls = interface_class(experiment_folder, trust_code)
    return cls.export(
        experiment_folder,
        export_folder,
        window,
        hop,
        encoder_source,
        overwrite,
        trust_code,
    )


def interface_class(source, trust_code=False):
    """The inference class of an exported or experiment folder.

    An export names it in its YAML's ``interface`` key. An experiment may
    name it in an ``inference_interface`` key; otherwise its ``modules``
    decide: the first class of :data:`INFERENCE_INTERFACES` whose
    ``MODULES_NEEDED`` it defines (``class_head`` and ``dimension_head``:
    :class:`VoteDistributionRecognizer`), else :class:`EmotionShareRegressor`.

    Arguments
    ---------
    source : str
        An exported or trained experiment folder.
    trust_code : bool
        Import a class outside ``emoshare_sb`` named by the folder.

    Returns
    -------
    type
        A :class:`EmotionShareRegressor` subclass (or itself).
    """
    path = os.path.join(source, HPARAMS_FILE)
    if not os.path.exists(source):
        raise ValueError(
            f"the model folder '{source}' does not exist: give an exported "
            "model folder (emoshare-export) or a trained experiment folder"
        )
    if not os.path.isfile(path):
        raise ValueError(
            f"'{source}' holds no {HPARAMS_FILE}: not a model or experiment folder"
        )
    tree = _read_yaml_tree(path)
    if is_experiment_folder(source):
        return _interface_of_experiment(tree, path, trust_code)
    return _import_interface(
        tree.get("interface") or EmotionShareRegressor, path, trust_code
    )


def _interface_of_experiment(tree, path=HPARAMS_FILE, trust_code=False):
    """The inference class of an experiment's YAML tree (see :func:`interface_class`)."""
    if tree.get("inference_interface"):
        return _import_interface(tree["inference_interface"], path, trust_code)
    modules = set(tree.get("modules") or {})
    return next(
        (
            cls
            for cls in INFERENCE_INTERFACES
            if set(cls.MODULES_NEEDED) <= modules
        ),
        EmotionShareRegressor,
    )


def _import_interface(dotted, path, trust_code=False):
    """Imports ``package.module.Class`` and checks that it is an inference class.

    Only ``emoshare_sb`` modules are imported unless ``trust_code``: an
    import runs the module's code.
    """
    if isinstance(dotted, type):
        return dotted
    module, _, name = str(dotted).rpartition(".")
    if not trust_code and not (
        module == "emoshare_sb" or module.startswith("emoshare_sb.")
    ):
        raise UnsafeHparamsError(
            path,
            None,
            f"the interface class '{dotted}' is outside emoshare_sb; "
            "importing it would run its module's code. If you wrote this "
            "folder and trust it, pass trust_code=True "
            "(emoshare-predict --trust-code)",
        )
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, EmotionShareRegressor)):
        raise ValueError(
            f"{path}: '{dotted}' is not an EmotionShareRegressor class"
        )
    return cls


def load_model(
    source, device="cpu", overrides=None, savedir=None, trust_code=False
):
    """Loads an exported or experiment folder with its own inference class.

    Arguments
    ---------
    source : str
        An exported model folder or a trained experiment folder.
    device : str
        ``"cpu"``, ``"cuda:0"``, ...
    overrides : dict, optional
        YAML overrides (e.g. ``{"window": 20.0, "hop": 10.0}``).
    savedir : str, optional
        See :meth:`EmotionShareRegressor.from_hparams`.
    trust_code : bool
        Load a folder whose YAML names code outside the allow-list
        (:mod:`emoshare_sb.inference.safety`); only for folders you wrote.

    Returns
    -------
    EmotionShareRegressor
        The model, in eval mode on ``device``.
    """
    cls = interface_class(source, trust_code)
    return cls.from_hparams(
        source,
        overrides=overrides,
        savedir=savedir,
        trust_code=trust_code,
        run_opts={"device": device},
    )
