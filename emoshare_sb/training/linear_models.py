"""Linear models on fixed features, their complexity chosen on devel.

What the challenge baselines do with openSMILE functionals: standardise each
feature with the training set's mean and deviation (a
:class:`sklearn.preprocessing.StandardScaler` fitted on train only), fit a
linear SVR / SVM (or ridge, logistic regression) for each value of a
complexity grid on train, score each on devel by the official metric, and
keep the best. The estimators come from the YAML (``!name:sklearn.svm.LinearSVR``
and its settings); the complexity is passed by name (``C`` or ``alpha``).

Authors
 * emoshare_sb contributors 2026
"""

import math

import numpy as np
from sklearn.multioutput import MultiOutputRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from speechbrain.utils.logger import get_logger

logger = get_logger(__name__)


def standardised(estimator, multi_output=False):
    """``StandardScaler`` (fitted on what the pipeline is fitted on) + ``estimator``.

    Arguments
    ---------
    estimator : sklearn estimator
        Unfitted.
    multi_output : bool
        The targets have several columns: an estimator that predicts one
        (``LinearSVR``) is fitted once per column.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted.

    Example
    -------
    >>> from sklearn.svm import LinearSVR
    >>> model = standardised(LinearSVR(), multi_output=True)
    >>> [type(step).__name__ for step in model]
    ['StandardScaler', 'MultiOutputRegressor']
    """
    if multi_output and not get_tags(estimator).target_tags.multi_output:
        estimator = MultiOutputRegressor(estimator)
    return make_pipeline(StandardScaler(), estimator)


def select_on_devel(
    make_estimator,
    complexity_name,
    complexities,
    train,
    devel,
    score,
    multi_output=False,
    name="model",
    train_logger=None,
):
    """Fits one model per complexity on train and keeps the best on devel.

    Arguments
    ---------
    make_estimator : callable
        ``make_estimator(**{complexity_name: value})`` returns an unfitted
        estimator (a ``!name:`` partial from the YAML).
    complexity_name : str
        Its complexity argument (``C``, ``alpha``).
    complexities : list of float
        The grid.
    train, devel : tuple
        ``(features [N, F], targets [N] or [N, K])``.
    score : callable
        ``score(devel_targets, model.predict-like output, model)`` -> float,
        higher is better (the official metric); NaN ranks last.
    multi_output : bool
        See :func:`standardised`.
    name : str
        What is fitted, for the log.
    train_logger : speechbrain.utils.train_logger.TrainLogger, optional
        Also receives one line per complexity (``model``, ``step``, the
        complexity and ``valid score``), as an SSL recipe logs its epochs.

    Returns
    -------
    model : sklearn.pipeline.Pipeline
        The best model, fitted on train.
    search : dict
        ``complexity_name``, ``scores`` (``[[value, devel score], ...]``) and
        ``best`` (the value kept).

    Example
    -------
    >>> from functools import partial
    >>> from sklearn.linear_model import Ridge
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((40, 3))
    >>> y = x @ [1.0, -2.0, 0.5] + 0.1 * rng.standard_normal(40)
    >>> model, search = select_on_devel(
    ...     Ridge,
    ...     "alpha",
    ...     [1e-3, 1e3],
    ...     (x[:30], y[:30]),
    ...     (x[30:], y[30:]),
    ...     lambda t, x, m: m.score(x, t),
    ... )
    >>> search["best"]
    0.001
    """
    if not complexities:
        raise ValueError(f"{name}: the complexity grid is empty")
    train_x, train_y = train
    devel_x, devel_y = devel
    best, best_score, scores = None, -math.inf, []
    for step, value in enumerate(complexities, start=1):
        model = standardised(
            make_estimator(**{complexity_name: value}), multi_output
        )
        model.fit(train_x, train_y)
        value_score = float(score(devel_y, devel_x, model))
        scores.append([value, value_score])
        logger.info(
            f"{name}: {complexity_name}={value:g}, devel {value_score:.4f}"
        )
        if train_logger is not None:
            train_logger.log_stats(
                stats_meta={
                    "model": name,
                    "step": step,
                    complexity_name: value,
                },
                valid_stats={"score": value_score},
            )
        if best is None or (
            math.isfinite(value_score) and value_score > best_score
        ):
            best, best_score = (model, value), value_score
    model, value = best
    logger.info(f"{name}: {complexity_name}={value:g} kept")
    return model, {
        "complexity_name": complexity_name,
        "scores": scores,
        "best": value,
    }


def class_scores(model, features, num_classes):
    """Each clip's distribution over all ``num_classes`` classes.

    A model with ``predict_proba`` (logistic regression) gives its
    probabilities; a linear SVM its decision values through a softmax (a
    ranking of the classes, not calibrated probabilities). Classes the model
    never saw in training get 0.

    Arguments
    ---------
    model : sklearn classifier or pipeline
        Fitted on class indices in ``[0, num_classes)``.
    features : numpy.ndarray
        ``[N, F]``.
    num_classes : int
        All classes.

    Returns
    -------
    numpy.ndarray
        ``[N, num_classes]``, rows summing to 1.

    Example
    -------
    >>> from sklearn.svm import LinearSVC
    >>> x = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> model = standardised(LinearSVC()).fit(x, [0, 0, 2, 2])
    >>> scores = class_scores(model, x, 3)
    >>> scores.shape, bool(scores[:, 1].max() == 0), scores.argmax(1).tolist()
    ((4, 3), True, [0, 0, 2, 2])
    """
    known = np.asarray(model.classes_, dtype=int)
    if hasattr(model, "predict_proba"):
        known_scores = model.predict_proba(features)
    else:
        decision = model.decision_function(features)
        if decision.ndim == 1:  # two classes: one signed margin
            decision = np.stack([-decision, decision], axis=1) / 2.0
        decision = decision - decision.max(axis=1, keepdims=True)
        known_scores = np.exp(decision)
        known_scores /= known_scores.sum(axis=1, keepdims=True)
    scores = np.zeros((len(features), num_classes))
    scores[:, known] = known_scores
    return scores
