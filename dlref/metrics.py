"""Classification metrics: confusion matrix, accuracy, precision, recall and F1.

Jittable functions of integer labels that give scikit-learn's numbers
(``sklearn.metrics``, checked against 1.9). They score thresholded predictions
and have no useful gradient: :func:`dlref.losses.soft_f1` is F1's
differentiable surrogate.

Inputs: ``y_true`` and ``y_pred`` of shape ``(n,)``, integer labels in
``[0, num_classes)`` in a dtype that holds ``num_classes - 1``; with two
classes a floating ``y_pred`` is the probability of class 1, predicted as
``y_pred >= threshold``. ``num_classes`` is a static Python int, so every
output shape is known at trace time and the functions work under ``jit`` and
``vmap`` (vmap a leading axis to score a batch of evaluations at once).
Optional real ``sample_weight`` of shape ``(n,)``.

Conventions (scikit-learn's):

- ``cm[i, j]`` counts samples of true class ``i`` predicted as ``j`` (rows =
  true class). Per class: ``tp = cm[c, c]``, ``predicted = cm[:, c].sum()``,
  ``support = cm[c, :].sum()``; ``precision = tp / predicted``,
  ``recall = tp / support``, ``f1 = 2 tp / (predicted + support)``.
- Zero division gives ``zero_division`` (0, 1 or NaN; default 0): precision
  with nothing predicted, recall with no support, F1 only when
  ``tp = fp = fn = 0``. No warning (scikit-learn's ``"warn"``), as warnings do
  not work under ``jit``.
- ``average``: ``"binary"`` (two classes) the score of class ``pos_label``;
  ``"micro"`` the score of the summed counts (accuracy, for single-label data);
  ``"macro"`` the mean over the classes that occur in ``y_true`` or ``y_pred``,
  NaN scores left out; ``"weighted"`` the same, weighted by support
  (unweighted if the supports sum to 0); ``None`` one score per class, shape
  ``(num_classes,)`` (scikit-learn with ``labels=range(num_classes)``).

Counts are integers, or floating with floating weights; scores are floating
(the wider of the weights' float dtype and JAX's default float).

Bad input raises :class:`dlref.InputError` naming the function and the
argument: shapes, dtypes and options at trace time, also under ``jit``; label
values, NaN probabilities and a NaN threshold when concrete. Under ``jit`` or
``vmap`` values cannot be checked: a sample with a label out of range or a NaN
probability (every sample, for a NaN threshold) is left out of the confusion
matrix, and every score of that evaluation is NaN, never a plausible number.

Empty input, or weights summing to 0 (scikit-learn raises): the confusion
matrix is zeros, accuracy NaN (0 / 0), per-class and micro scores
``zero_division``; with no samples no class occurs, so macro and weighted
averages are NaN.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dlref import _checks
from dlref._checks import InputError

__all__ = [
    "PrecisionRecallF1",
    "confusion_matrix",
    "accuracy",
    "precision",
    "recall",
    "f1_score",
    "precision_recall_fscore_support",
]

_AVERAGES = ("binary", "micro", "macro", "weighted", None)
_INT32_MAX = int(np.iinfo(np.int32).max)


class PrecisionRecallF1(NamedTuple):
    """Precision, recall and F1 (scalars, or shape ``(num_classes,)`` for
    ``average=None``) and the support: the weighted count of each class in
    ``y_true`` for ``average=None``, else None (as scikit-learn)."""

    precision: jax.Array
    recall: jax.Array
    f1: jax.Array
    support: jax.Array | None


class _Labels(NamedTuple):
    """Checked input: labels as int32 (0 where invalid), weights, and which
    samples are valid (a label in range, not a NaN probability)."""

    y_true: jax.Array
    y_pred: jax.Array
    weight: jax.Array | None
    valid: jax.Array
    num_classes: int


# --- checks ----------------------------------------------------------------------


def _concrete_item(value: Any) -> Any:
    """A concrete 0-d JAX array as its Python scalar (as a NumPy scalar is taken)."""
    if isinstance(value, jax.Array) and _checks.is_concrete(value) and value.ndim == 0:
        return value.item()
    return value


def _check_num_classes(fn: str, num_classes: Any) -> None:
    num_classes = _concrete_item(num_classes)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise InputError(
            f"{fn}: `num_classes` must be a Python int, static under jit; got {num_classes!r}"
        )
    if not 1 <= num_classes <= _INT32_MAX:
        raise InputError(f"{fn}: `num_classes` must lie in [1, 2**31 - 1]; got {num_classes}")


def _check_average(fn: str, average: Any, num_classes: int, pos_label: Any) -> None:
    if not isinstance(average, (str, type(None))) or average not in _AVERAGES:
        raise InputError(
            f"{fn}: `average` must be one of 'binary', 'micro', 'macro', 'weighted' or None; "
            f"got {average!r}"
        )
    if average != "binary":
        return
    if num_classes != 2:
        raise InputError(
            f"{fn}: average='binary' needs num_classes=2; got num_classes={num_classes} "
            "(use average=None and take the class's entry, or 'micro', 'macro', 'weighted')"
        )
    if (
        not isinstance(pos_label, (int, np.integer))
        or isinstance(pos_label, bool)
        or (pos_label not in (0, 1))
    ):
        raise InputError(f"{fn}: `pos_label` must be 0 or 1; got {pos_label!r}")


def _check_zero_division(fn: str, zero_division: Any) -> None:
    zero_division = _concrete_item(zero_division)
    ok = (
        isinstance(zero_division, (int, float, np.integer, np.floating))
        and not isinstance(zero_division, bool)
        and (zero_division in (0, 1) or math.isnan(zero_division))
    )
    if not ok:
        raise InputError(
            f"{fn}: `zero_division` must be 0, 1 or nan (a Python number); got {zero_division!r}"
        )


def _check_label_dtype(fn: str, name: str, labels: jax.Array, num_classes: int) -> None:
    """The dtype of ``labels`` can hold every label in [0, num_classes)."""
    largest = int(jnp.iinfo(labels.dtype).max)
    if num_classes - 1 > largest:
        raise InputError(
            f"{fn}: `{name}` must have an integer dtype that holds labels up to "
            f"{num_classes - 1} (num_classes={num_classes}); got dtype {labels.dtype}, "
            f"whose largest value is {largest} (use int32 labels)"
        )


def _check_threshold(fn: str, threshold: Any) -> None:
    """A real scalar, not NaN (checked when concrete)."""
    try:
        dtype = None if threshold is None else jnp.result_type(threshold)
    except TypeError:
        dtype = None
    real = dtype is not None and (
        jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    )
    if not real or jnp.ndim(threshold) != 0:
        given = _checks._describe(threshold) if real else repr(threshold)
        raise InputError(f"{fn}: `threshold` must be a real scalar; got {given}")
    if _checks.is_concrete(threshold) and math.isnan(float(threshold)):
        raise InputError(f"{fn}: `threshold` must be a real number, not NaN; got nan")


def _check_sample_weight(fn: str, sample_weight: jax.Array) -> None:
    """Real weights: a complex weight's imaginary part would be dropped; finite when
    concrete (a NaN weight would make its classes' scores NaN, which the macro and
    weighted means leave out as scikit-learn does)."""
    dtype = sample_weight.dtype
    if not (
        jnp.issubdtype(dtype, jnp.floating)
        or jnp.issubdtype(dtype, jnp.integer)
        or dtype == jnp.bool_
    ):
        raise InputError(
            f"{fn}: `sample_weight` must be real (integer or floating); got "
            f"{_checks._describe(sample_weight)}"
        )
    if _checks.is_concrete(sample_weight) and sample_weight.size:
        values = np.asarray(sample_weight, np.float64)
        if not np.isfinite(values).all():
            raise InputError(
                f"{fn}: `sample_weight` must be finite; got "
                f"{int((~np.isfinite(values)).sum())} NaN or infinite of {values.size}"
            )


def _infer_num_classes(fn: str, y_true: jax.Array, y_pred: jax.Array) -> int:
    """The largest label + 1, read from concrete integer labels."""
    if not (_checks.is_concrete(y_true) and _checks.is_concrete(y_pred)):
        raise InputError(
            f"{fn}: `num_classes` must be given under jit, vmap or grad, where the labels "
            "are traced and the number of classes cannot be read from them; got "
            "num_classes=None (pass num_classes=C, a Python int)"
        )
    largest = -1
    for name, x in (("y_true", y_true), ("y_pred", y_pred)):
        if x.size == 0:
            continue
        values = np.asarray(x)  # numpy: inside jit, jnp would trace even a constant
        low, high = int(values.min()), int(values.max())
        if low < 0:
            raise InputError(
                f"{fn}: `{name}` must hold labels >= 0 (num_classes=None: the number of "
                f"classes is read as the largest label + 1); got values in [{low}, {high}]"
            )
        largest = max(largest, high)
    return largest + 1 if largest >= 0 else 1


def _check_probabilities(fn: str, y_pred: jax.Array, num_classes: int, threshold: Any) -> None:
    """A floating y_pred: two classes, a real threshold, no NaN (when concrete)."""
    if num_classes != 2:
        raise InputError(
            f"{fn}: a floating `y_pred` is read as probabilities of class 1, which needs "
            f"num_classes=2; got num_classes={num_classes} and {_checks._describe(y_pred)} "
            "(pass integer labels, e.g. argmax of the probabilities)"
        )
    _check_threshold(fn, threshold)
    if _checks.is_concrete(y_pred):
        values = np.asarray(y_pred)  # numpy: inside jit, jnp would trace a constant
        nan = np.isnan(values)
        if nan.any():
            raise InputError(
                f"{fn}: `y_pred` must hold probabilities of class 1, not NaN; got "
                f"{int(nan.sum())} NaN of {y_pred.size}"
            )
        if values.size and (values.min() < 0 or values.max() > 1):
            raise InputError(
                f"{fn}: a floating `y_pred` must hold probabilities of class 1, in [0, 1] "
                f"(logits? apply a sigmoid, or threshold them yourself); got values in "
                f"[{values.min()}, {values.max()}]"
            )


def _labels(fn, y_true, y_pred, num_classes, sample_weight, threshold, *, infer=False):
    """Checks the arguments, then returns :class:`_Labels`. ``infer``:
    num_classes=None reads the number of classes from the labels (2 for
    probabilities)."""
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    _checks.integer(fn, y_true=y_true)
    _checks.rank(fn, "y_true", y_true, 1)
    _checks.same_shape(fn, y_true=y_true, y_pred=y_pred)
    probabilities = jnp.issubdtype(y_pred.dtype, jnp.floating)
    if not probabilities:
        _checks.integer(fn, y_pred=y_pred)
    if infer and num_classes is None:
        num_classes = 2 if probabilities else _infer_num_classes(fn, y_true, y_pred)
    _check_num_classes(fn, num_classes)
    num_classes = int(_concrete_item(num_classes))
    _check_label_dtype(fn, "y_true", y_true, num_classes)
    _checks.labels_in_range(fn, "y_true", y_true, num_classes)
    if probabilities:
        _check_probabilities(fn, y_pred, num_classes, threshold)
    else:
        _check_label_dtype(fn, "y_pred", y_pred, num_classes)
        _checks.labels_in_range(fn, "y_pred", y_pred, num_classes)
    if sample_weight is not None:
        sample_weight = jnp.asarray(sample_weight)
        _check_sample_weight(fn, sample_weight)
        _checks.same_shape(fn, y_true=y_true, sample_weight=sample_weight)

    # Under jit the values are unchecked: `valid` marks the samples with labels
    # in range and a probability (and threshold) that is not NaN.
    valid = _in_range(y_true, num_classes)
    if probabilities:
        threshold = jnp.asarray(threshold).astype(y_pred.dtype)
        valid = valid & ~jnp.isnan(y_pred) & ~jnp.isnan(threshold)
        y_pred = (y_pred >= threshold).astype(jnp.int32)
    else:
        valid = valid & _in_range(y_pred, num_classes)
    # Invalid labels become 0 (in range for the cast and the scatter); `valid`
    # leaves them out of every count.
    y_true, y_pred = (jnp.where(valid, y, 0).astype(jnp.int32) for y in (y_true, y_pred))
    return _Labels(y_true, y_pred, sample_weight, valid, num_classes)


def _in_range(labels: jax.Array, num_classes: int) -> jax.Array:
    """0 <= labels < num_classes, compared in the labels' own dtype (which
    holds num_classes - 1: see _check_label_dtype)."""
    return (labels >= 0) & (labels <= jnp.asarray(num_classes - 1, labels.dtype))


# --- counting ---------------------------------------------------------------------


def _dtypes(sample_weight) -> tuple[Any, Any]:
    """(count dtype, score dtype), as the module docstring states."""
    default_int = jax.dtypes.canonicalize_dtype(jnp.int64)
    default_float = jax.dtypes.canonicalize_dtype(jnp.float64)
    if sample_weight is None or not jnp.issubdtype(sample_weight.dtype, jnp.floating):
        return default_int, default_float
    wide = jnp.promote_types(sample_weight.dtype, default_float)
    return wide, wide


def _weights(labels: _Labels, dtype) -> jax.Array:
    """Each sample's weight in ``dtype``, 0 for a sample that is not valid."""
    if labels.weight is None:
        weight = jnp.ones(labels.valid.shape, dtype)
    else:
        weight = labels.weight.astype(dtype)
    return jnp.where(labels.valid, weight, jnp.zeros((), dtype))


def _counts(labels: _Labels) -> tuple[jax.Array, jax.Array]:
    """The (weighted) confusion matrix, and which classes occur in y_true or
    y_pred (unweighted: a sample of weight 0 still makes its classes occur)."""
    c = labels.num_classes
    count_dtype, _ = _dtypes(labels.weight)
    # One scatter for both: [..., 0] sums the weights, [..., 1] counts the samples.
    update = jnp.stack([_weights(labels, count_dtype), labels.valid.astype(count_dtype)], -1)
    both = jnp.zeros((c, c, 2), count_dtype).at[labels.y_true, labels.y_pred].add(update)
    samples = both[..., 1]
    return both[..., 0], (jnp.sum(samples, 0) + jnp.sum(samples, 1)) > 0


def _divide(num, den, zero_division, dtype):
    """num / den, and ``zero_division`` where den == 0."""
    num, den = num.astype(dtype), den.astype(dtype)
    zero = den == 0
    return jnp.where(zero, jnp.asarray(zero_division, dtype), num / jnp.where(zero, 1, den))


def _mean_over_present(scores, support, present, average, dtype):
    """Macro or weighted mean over the last axis (classes), over the classes
    present, NaN scores left out: scikit-learn's ``_nanaverage`` over
    ``unique_labels(y_true, y_pred)``."""
    keep = present & ~jnp.isnan(scores)
    kept = jnp.where(keep, scores, 0)
    count = jnp.sum(keep, axis=-1).astype(dtype)
    mean = jnp.where(count > 0, jnp.sum(kept, axis=-1) / jnp.where(count > 0, count, 1), jnp.nan)
    if average == "macro":
        return mean
    weight = jnp.where(keep, support.astype(dtype), 0)
    total = jnp.sum(weight, axis=-1)
    weighted = jnp.sum(kept * weight, axis=-1) / jnp.where(total == 0, 1, total)
    return jnp.where(total == 0, mean, weighted)  # weights summing to 0: unweighted


def _scores(
    fn, y_true, y_pred, *, num_classes, average, pos_label, zero_division, sample_weight, threshold
) -> PrecisionRecallF1:
    """Precision, recall and F1 from one confusion matrix: the body of
    precision_recall_fscore_support, and of precision, recall and f1_score."""
    _check_num_classes(fn, num_classes)
    _check_average(fn, average, num_classes, pos_label)
    _check_zero_division(fn, zero_division)
    labels = _labels(fn, y_true, y_pred, num_classes, sample_weight, threshold)
    _, dtype = _dtypes(labels.weight)
    cm, present = _counts(labels)
    tp, predicted, support = jnp.diagonal(cm), jnp.sum(cm, axis=0), jnp.sum(cm, axis=1)
    if average == "micro":  # one count each, summed over the classes
        tp, predicted, actual = jnp.sum(tp), jnp.sum(predicted), jnp.sum(support)
    else:
        actual = support
    # Rows: precision tp / predicted, recall tp / actual, F1 2 tp / (actual + predicted).
    scores = _divide(
        jnp.stack([tp, tp, 2 * tp]),
        jnp.stack([predicted, actual, actual + predicted]),
        zero_division,
        dtype,
    )
    if average == "binary":
        scores = scores[:, pos_label]
    elif average in ("macro", "weighted"):
        scores = _mean_over_present(scores, support[None, :], present[None, :], average, dtype)
    scores = jnp.where(jnp.all(labels.valid), scores, jnp.nan)  # bad values, under jit
    p, r, f1 = scores
    return PrecisionRecallF1(p, r, f1, support if average is None else None)


# --- public functions ---------------------------------------------------------------


def confusion_matrix(
    y_true: jax.Array,
    y_pred: jax.Array,
    *,
    num_classes: int,
    sample_weight: jax.Array | None = None,
    threshold: float = 0.5,
) -> jax.Array:
    """Confusion matrix: ``cm[i, j]`` = (weighted) number of samples of true
    class ``i`` predicted as class ``j`` (rows = true class, columns =
    predicted); for two classes ``cm = [[tn, fp], [fn, tp]]``.

    Equal to ``sklearn.metrics.confusion_matrix(y_true, y_pred,
    labels=range(num_classes), sample_weight=sample_weight)``.

    Args:
      y_true: true labels, integers in ``[0, num_classes)``, shape ``(n,)``.
      y_pred: predicted labels, the shape of ``y_true``; or, for
        ``num_classes=2``, floating probabilities of class 1, predicted as
        ``y_pred >= threshold``.
      num_classes: the number of classes (static).
      sample_weight: optional real weights, shape ``(n,)``.
      threshold: the decision threshold for a floating ``y_pred``.

    Returns:
      Shape ``(num_classes, num_classes)``: integer counts without floating
      weights, floating sums with them. Under ``jit``, a sample with a label
      out of range or a NaN probability is left out (every sample, for a NaN
      threshold), so the matrix sums to less than ``n``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import metrics
      >>> y_true = jnp.array([0, 1, 2, 2])
      >>> y_pred = jnp.array([0, 2, 2, 1])
      >>> print(metrics.confusion_matrix(y_true, y_pred, num_classes=3))
      [[1 0 0]
       [0 0 1]
       [0 1 1]]

    References:
      Kohavi and Provost, Glossary of terms, Machine Learning 30, 271-274
      (1998): the confusion matrix, rows = actual class.
    """
    labels = _labels("confusion_matrix", y_true, y_pred, num_classes, sample_weight, threshold)
    cm, _ = _counts(labels)
    return cm


def accuracy(
    y_true: jax.Array,
    y_pred: jax.Array,
    *,
    num_classes: int | None = None,
    normalize: bool = True,
    sample_weight: jax.Array | None = None,
    threshold: float = 0.5,
) -> jax.Array:
    """Accuracy: ``sum(w * (y_true == y_pred)) / sum(w)``, the (weighted)
    fraction of samples predicted right; equal to
    ``sklearn.metrics.accuracy_score``. For single-label data it is also the
    micro-averaged precision, recall and F1.

    Args:
      y_true: true labels, integers in ``[0, num_classes)``, shape ``(n,)``.
      y_pred: predicted labels (or, for two classes, probabilities of class 1,
        thresholded), the shape of ``y_true``.
      num_classes: the number of classes (static), used to check the labels.
        None (as scikit-learn, which takes none): 2 for probabilities, else
        the largest label + 1, read from the labels; under ``jit`` or ``vmap``
        the labels are traced, so integer labels need ``num_classes``
        (:class:`dlref.InputError` otherwise).
      normalize: True for the fraction; False for the (weighted) number of
        correct samples.
      sample_weight: optional real weights, shape ``(n,)``.
      threshold: the decision threshold for a floating ``y_pred``.

    Returns:
      A floating scalar. Under ``jit``, NaN when a label is out of range or a
      probability or the threshold is NaN.

    Numerics: one division; no samples, or weights summing to 0, give NaN
    (0 / 0; scikit-learn raises), or 0 with ``normalize=False``.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from dlref import metrics
      >>> y_true = jnp.array([0, 1, 2, 2])
      >>> y_pred = jnp.array([0, 2, 2, 1])
      >>> print(metrics.accuracy(y_true, y_pred))
      0.5
      >>> print(metrics.accuracy(y_true, y_pred, normalize=False))
      2.0
      >>> print(metrics.accuracy(jnp.array([0, 1]), jnp.array([0.2, 0.4])))
      0.5
      >>> accuracy = jax.jit(lambda t, p: metrics.accuracy(t, p, num_classes=3))
      >>> print(accuracy(y_true, y_pred))
      0.5

    References:
      Kohavi and Provost, Glossary of terms, Machine Learning 30, 271-274
      (1998).
    """
    if not isinstance(normalize, (bool, np.bool_)):
        raise InputError(f"accuracy: `normalize` must be True or False; got {normalize!r}")
    labels = _labels("accuracy", y_true, y_pred, num_classes, sample_weight, threshold, infer=True)
    _, dtype = _dtypes(labels.weight)
    weight = _weights(labels, dtype)
    correct = jnp.sum(jnp.where(labels.y_true == labels.y_pred, weight, 0))
    value = correct / jnp.sum(weight) if normalize else correct
    return jnp.where(jnp.all(labels.valid), value, jnp.nan)


def precision_recall_fscore_support(
    y_true: jax.Array,
    y_pred: jax.Array,
    *,
    num_classes: int,
    average: str | None = None,
    pos_label: int = 1,
    zero_division: float = 0.0,
    sample_weight: jax.Array | None = None,
    threshold: float = 0.5,
) -> PrecisionRecallF1:
    """Precision, recall, F1 and support from one confusion matrix.

    Per class: ``precision = tp / (tp + fp)``, ``recall = tp / (tp + fn)``,
    ``f1 = 2 tp / (2 tp + fp + fn)``, ``support = tp + fn``, averaged as
    ``average`` says (module docstring). Equal to
    ``sklearn.metrics.precision_recall_fscore_support`` (beta = 1) with the
    same options, and ``labels=range(num_classes)`` for ``average=None``.

    Args:
      y_true: true labels, integers in ``[0, num_classes)``, shape ``(n,)``.
      y_pred: predicted labels (or, for two classes, probabilities of class 1,
        thresholded), the shape of ``y_true``.
      num_classes: the number of classes (static).
      average: ``"binary"``, ``"micro"``, ``"macro"``, ``"weighted"`` or None
        (per class, the default, as scikit-learn's).
      pos_label: the positive class for ``average="binary"`` (0 or 1); ignored
        otherwise.
      zero_division: 0, 1 or NaN: a score whose denominator is 0.
      sample_weight: optional real weights, shape ``(n,)``.
      threshold: the decision threshold for a floating ``y_pred``.

    Returns:
      A :class:`PrecisionRecallF1`: scalars, or shape ``(num_classes,)`` for
      ``average=None`` (then with the support; None otherwise). Under ``jit``,
      NaN scores when a label is out of range or a probability or the threshold
      is NaN.

    Numerics: counts are exact sums; each score is one division, and a zero
    denominator gives ``zero_division``, never 0 / 0.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import metrics
      >>> y_true = jnp.array([0, 1, 2, 2])
      >>> y_pred = jnp.array([0, 2, 2, 1])
      >>> p, r, f1, support = metrics.precision_recall_fscore_support(
      ...     y_true, y_pred, num_classes=3)
      >>> print(p, r, f1, support)
      [1.  0.  0.5] [1.  0.  0.5] [1.  0.  0.5] [1 1 2]
      >>> print(metrics.precision_recall_fscore_support(
      ...     y_true, y_pred, num_classes=3, average="macro").f1)
      0.5

    References:
      Sokolova and Lapalme, A systematic analysis of performance measures for
      classification tasks, Information Processing and Management 45, 427-437
      (2009): micro and macro averages.
    """
    return _scores("precision_recall_fscore_support", **locals())


def precision(
    y_true: jax.Array,
    y_pred: jax.Array,
    *,
    num_classes: int,
    average: str | None = "binary",
    pos_label: int = 1,
    zero_division: float = 0.0,
    sample_weight: jax.Array | None = None,
    threshold: float = 0.5,
) -> jax.Array:
    """Precision: ``tp / (tp + fp)``, the fraction of predicted positives that
    are right; equal to ``sklearn.metrics.precision_score``.

    Args and Numerics: as :func:`precision_recall_fscore_support`; ``average``
    defaults to ``"binary"``, as scikit-learn's.

    Returns:
      A scalar, or shape ``(num_classes,)`` for ``average=None``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import metrics
      >>> y_true = jnp.array([1, 1, 1, 1, 1, 1, 0, 0])
      >>> y_pred = jnp.array([1, 1, 1, 0, 0, 0, 1, 0])
      >>> print(metrics.precision(y_true, y_pred, num_classes=2))
      0.75
      >>> print(metrics.precision(y_true, y_pred, num_classes=2, average=None))
      [0.25 0.75]

    References:
      van Rijsbergen, Information Retrieval, 2nd ed., Butterworths (1979),
      chapter 7.
    """
    return _scores("precision", **locals()).precision


def recall(
    y_true: jax.Array,
    y_pred: jax.Array,
    *,
    num_classes: int,
    average: str | None = "binary",
    pos_label: int = 1,
    zero_division: float = 0.0,
    sample_weight: jax.Array | None = None,
    threshold: float = 0.5,
) -> jax.Array:
    """Recall: ``tp / (tp + fn)``, the fraction of actual positives found;
    equal to ``sklearn.metrics.recall_score``.

    Args and Numerics: as :func:`precision_recall_fscore_support`; ``average``
    defaults to ``"binary"``, as scikit-learn's.

    Returns:
      A scalar, or shape ``(num_classes,)`` for ``average=None``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import metrics
      >>> y_true = jnp.array([1, 1, 1, 1, 1, 1, 0, 0])
      >>> y_pred = jnp.array([1, 1, 1, 0, 0, 0, 1, 0])
      >>> print(metrics.recall(y_true, y_pred, num_classes=2))
      0.5
      >>> weight = jnp.array([3, 3, 3, 1, 1, 1, 1, 1])
      >>> print(metrics.recall(y_true, y_pred, num_classes=2, sample_weight=weight))
      0.75

    References:
      van Rijsbergen, Information Retrieval, 2nd ed., Butterworths (1979),
      chapter 7.
    """
    return _scores("recall", **locals()).recall


def f1_score(
    y_true: jax.Array,
    y_pred: jax.Array,
    *,
    num_classes: int,
    average: str | None = "binary",
    pos_label: int = 1,
    zero_division: float = 0.0,
    sample_weight: jax.Array | None = None,
    threshold: float = 0.5,
) -> jax.Array:
    """F1: ``2 tp / (2 tp + fp + fn)``, the harmonic mean ``2 P R / (P + R)``
    of precision and recall where both are defined; equal to
    ``sklearn.metrics.f1_score``.

    F1 lies between min(P, R) and max(P, R). Macro F1 is the mean of the
    per-class F1, not the F1 of the macro precision and recall. A metric of
    thresholded predictions, with no useful gradient:
    :func:`dlref.losses.soft_f1` is its differentiable surrogate.

    Args and Numerics: as :func:`precision_recall_fscore_support`; ``average``
    defaults to ``"binary"``, as scikit-learn's. ``zero_division`` applies only
    when ``tp + fp + fn = 0``.

    Returns:
      A scalar, or shape ``(num_classes,)`` for ``average=None``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import metrics
      >>> y_true = jnp.array([1, 1, 1, 1, 1, 1, 0, 0])
      >>> y_pred = jnp.array([1, 1, 1, 0, 0, 0, 1, 0])
      >>> print(metrics.f1_score(y_true, y_pred, num_classes=2))  # P 0.75, R 0.5
      0.6
      >>> probs = jnp.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.2, 0.6, 0.1])
      >>> print(metrics.f1_score(y_true, probs, num_classes=2))  # predicts y_pred
      0.6
      >>> print(metrics.f1_score(y_true, probs, num_classes=2, threshold=0.75))
      0.5

    References:
      van Rijsbergen, Information Retrieval, 2nd ed., Butterworths (1979),
      chapter 7 (the F measure); Opitz and Burst, Macro F1 and Macro F1,
      arXiv:1911.03347 (2019): the two macro F1s.
    """
    return _scores("f1_score", **locals()).f1
