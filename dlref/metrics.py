"""Classification metrics: confusion matrix, accuracy, precision, recall and F1.

Plain, jittable functions of integer label arrays that give scikit-learn's
numbers (``sklearn.metrics``, checked against version 1.9). They are metrics,
not losses: their inputs are integer labels, so they have no gradient (the
differentiable surrogate of F1 is :func:`dlref.losses.soft_f1`).

Every function takes ``y_true`` and ``y_pred`` of shape ``(n,)`` and a static
``num_classes``: labels are integers in ``[0, num_classes)`` and every output
has a shape known at trace time, so the functions work under ``jax.jit`` and
``jax.vmap`` (vmap over a leading axis to score a batch of evaluations at
once). Hyperparameters are keyword-only and static (Python values).

Conventions (scikit-learn's, written down):

- Confusion matrix: ``cm[i, j]`` counts samples of true class ``i`` predicted
  as ``j`` (rows = true class, columns = predicted). Per class ``c``:
  ``tp = cm[c, c]``, predicted positives ``cm[:, c].sum()``, actual positives
  (the support) ``cm[c, :].sum()``.
- ``precision = tp / predicted``, ``recall = tp / actual``,
  ``f1 = 2 tp / (predicted + actual)`` (= ``2 tp / (2 tp + fp + fn)``, the
  harmonic mean of precision and recall when both are defined).
- ``zero_division`` (0, 1 or NaN; default 0) is the value of a score whose
  denominator is 0: precision with no predicted positives, recall with no
  actual positives, F1 only when both are 0 (``tp = fp = fn = 0``). F1 is
  *not* recomputed from a replaced precision or recall: with no predictions
  and some actual positives, F1 is 0 even for ``zero_division=1``.
  scikit-learn's default ``"warn"`` gives 0 and a warning; dlref gives 0 and
  no warning (warnings do not work under ``jit``).
- ``average``:

  - ``"binary"`` (needs ``num_classes=2``): the score of class ``pos_label``
    (default 1);
  - ``"micro"``: the score of the counts summed over classes; for
    single-label multiclass data micro precision = micro recall = micro F1 =
    accuracy;
  - ``"macro"``: the unweighted mean of the per-class scores over the classes
    that occur in ``y_true`` or ``y_pred`` (at least once, whatever their
    sample weights); a class absent from both is left out of the mean, as
    scikit-learn does when ``labels`` is not given (its ``labels`` are
    ``unique_labels(y_true, y_pred)``). Scores equal to NaN
    (``zero_division=NaN``) are left out too; NaN if none is left;
  - ``"weighted"``: the same classes, each weighted by its support (its
    weighted count in ``y_true``); if those weights sum to 0 the unweighted
    mean, as scikit-learn's ``_nanaverage``;
  - ``None``: one score per class, shape ``(num_classes,)``, indexed by class
    (a class absent from both arrays gets ``zero_division``); this is
    scikit-learn's output with ``labels=range(num_classes)``: without
    ``labels`` scikit-learn returns the present classes only.

  scikit-learn's ``"samples"`` (multilabel data) is not supported.
- ``pos_label`` is used by ``average="binary"`` only (ignored otherwise, where
  scikit-learn warns).
- ``sample_weight``: optional weights, shape ``(n,)``; each sample counts with
  its weight in every count.
- Probabilities: with ``num_classes=2``, a floating ``y_pred`` is read as the
  probability of class 1 and the prediction is ``y_pred >= threshold``
  (default 0.5), for every average and for the confusion matrix.
- Dtypes: counts are integers (the default integer dtype) without weights or
  with integer weights, and floating with floating weights (the wider of the
  weights' dtype and the default float dtype); scores are in that float dtype
  (the default float dtype without floating weights: float64 with x64 on,
  float32 otherwise).

Bad input raises an error naming the function, the argument and the shapes or
values: at trace time (also under ``jit``) for a float ``y_true``, a ``y_pred``
that is neither integer nor (for two classes) floating, shapes that differ or
are not 1-D, an unknown ``average``, a bad ``zero_division``, ``pos_label`` or
``num_classes``; eagerly for labels outside ``[0, num_classes)``. Under
``jit`` (or ``vmap``) label values cannot be checked: a sample with a label
outside ``[0, num_classes)`` is left out of every count (so the confusion
matrix then sums to less than the number of samples), and every score (a
float) of an evaluation that has one is NaN, never a plausible number.

Degenerate inputs scikit-learn refuses (it raises ValueError): no samples, or
sample weights summing to 0. dlref gives accuracy NaN (0 / 0) for both; the
per-class precision, recall and F1 then have zero denominators and give
``zero_division``, and with no samples no class occurs, so macro and weighted
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


class PrecisionRecallF1(NamedTuple):
    """Precision, recall and F1 (scalars, or shape ``(num_classes,)`` for
    ``average=None``) and the support: the weighted count of each class in
    ``y_true`` for ``average=None``, else None (as scikit-learn)."""

    precision: jax.Array
    recall: jax.Array
    f1: jax.Array
    support: jax.Array | None


# --- checks ----------------------------------------------------------------------


def _check_num_classes(fn: str, num_classes: Any) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise InputError(
            f"{fn}: `num_classes` must be a Python int, static under jit; got {num_classes!r}"
        )
    if num_classes < 1:
        raise InputError(f"{fn}: `num_classes` must be at least 1; got {num_classes}")


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
    if isinstance(pos_label, bool) or pos_label not in (0, 1):
        raise InputError(f"{fn}: `pos_label` must be 0 or 1; got {pos_label!r}")


def _check_zero_division(fn: str, zero_division: Any) -> None:
    ok = isinstance(zero_division, (int, float, np.number)) and (
        zero_division in (0, 1) or math.isnan(zero_division)
    )
    if not ok:
        raise InputError(
            f"{fn}: `zero_division` must be 0, 1 or nan (a Python number); got {zero_division!r}"
        )


def _labels(fn: str, y_true, y_pred, num_classes, sample_weight, threshold):
    """Checked integer labels (a floating y_pred thresholded) and weights."""
    _check_num_classes(fn, num_classes)
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    _checks.integer(fn, y_true=y_true)
    _checks.rank(fn, "y_true", y_true, 1)
    _checks.same_shape(fn, y_true=y_true, y_pred=y_pred)
    _checks.labels_in_range(fn, "y_true", y_true, num_classes)
    if jnp.issubdtype(y_pred.dtype, jnp.floating):
        if num_classes != 2:
            raise InputError(
                f"{fn}: a floating `y_pred` is read as probabilities of class 1, which needs "
                f"num_classes=2; got num_classes={num_classes} and {_checks._describe(y_pred)} "
                "(pass integer labels, e.g. argmax of the probabilities)"
            )
        y_pred = (y_pred >= jnp.asarray(threshold, y_pred.dtype)).astype(y_true.dtype)
    else:
        _checks.integer(fn, y_pred=y_pred)
        _checks.labels_in_range(fn, "y_pred", y_pred, num_classes)
    if sample_weight is not None:
        sample_weight = jnp.asarray(sample_weight)
        _checks.same_shape(fn, y_true=y_true, sample_weight=sample_weight)
    return y_true, y_pred, sample_weight


# --- counting ---------------------------------------------------------------------


def _dtypes(sample_weight) -> tuple[Any, Any]:
    """(count dtype, score dtype), as the module docstring states."""
    default_int = jax.dtypes.canonicalize_dtype(jnp.int64)
    default_float = jax.dtypes.canonicalize_dtype(jnp.float64)
    if sample_weight is None or not jnp.issubdtype(sample_weight.dtype, jnp.floating):
        return default_int, default_float
    wide = jnp.promote_types(sample_weight.dtype, default_float)
    return wide, wide


def _in_range(labels, num_classes):
    return (labels >= 0) & (labels < num_classes)


def _counts(y_true, y_pred, num_classes, sample_weight):
    """The (weighted) confusion matrix, which classes occur in y_true or y_pred
    (unweighted), and whether every label is in range.

    A sample with a label out of range (possible only under jit) goes to index
    ``C * C`` (or ``C``), which the scatter drops."""
    c = num_classes
    count_dtype, _ = _dtypes(sample_weight)
    valid = _in_range(y_true, c) & _in_range(y_pred, c)
    t = jnp.where(valid, y_true, c).astype(jnp.int32)
    p = jnp.where(valid, y_pred, c).astype(jnp.int32)
    flat = jnp.where(valid, t * c + p, c * c)
    if sample_weight is None:
        weight = jnp.ones(y_true.shape, count_dtype)
    else:
        weight = sample_weight.astype(count_dtype)
    cm = jnp.zeros(c * c, count_dtype).at[flat].add(weight, mode="drop").reshape(c, c)
    present = jnp.zeros(c, bool).at[t].set(True, mode="drop").at[p].set(True, mode="drop")
    return cm, present, jnp.all(valid)


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
    fn, y_true, y_pred, num_classes, average, pos_label, zero_division, sample_weight, threshold
) -> PrecisionRecallF1:
    y_true, y_pred, sample_weight = _labels(
        fn, y_true, y_pred, num_classes, sample_weight, threshold
    )
    _check_average(fn, average, num_classes, pos_label)
    _check_zero_division(fn, zero_division)
    _, dtype = _dtypes(sample_weight)
    cm, present, valid = _counts(y_true, y_pred, num_classes, sample_weight)
    tp, predicted, support = jnp.diagonal(cm), jnp.sum(cm, axis=0), jnp.sum(cm, axis=1)
    if average == "micro":  # one count each, summed over the classes
        tp, predicted, actual = jnp.sum(tp), jnp.sum(predicted), jnp.sum(support)
    else:
        actual = support
    # precision, recall and F1 at once: rows tp / predicted, tp / actual and
    # 2 tp / (actual + predicted).
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
    scores = jnp.where(valid, scores, jnp.nan)  # a label out of range, under jit
    return PrecisionRecallF1(*scores, support=support if average is None else None)


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
    class ``i`` predicted as class ``j`` (rows = true, columns = predicted).

    Equal to ``sklearn.metrics.confusion_matrix(y_true, y_pred,
    labels=range(num_classes), sample_weight=sample_weight)``. For two classes
    ``cm = [[tn, fp], [fn, tp]]``.

    Args:
      y_true: true labels, integers in ``[0, num_classes)``, shape ``(n,)``.
      y_pred: predicted labels, integers, the shape of ``y_true``; or, for
        ``num_classes=2``, floating probabilities of class 1, predicted as
        ``y_pred >= threshold``.
      num_classes: the number of classes (static).
      sample_weight: optional weights, shape ``(n,)``.
      threshold: the decision threshold for floating ``y_pred``.

    Returns:
      Shape ``(num_classes, num_classes)``: integer counts without weights (or
      with integer weights), floating sums with floating weights. Under
      ``jit``, samples with a label outside ``[0, num_classes)`` are left out.
    """
    fn = "confusion_matrix"
    y_true, y_pred, sample_weight = _labels(
        fn, y_true, y_pred, num_classes, sample_weight, threshold
    )
    cm, _, _ = _counts(y_true, y_pred, num_classes, sample_weight)
    return cm


def accuracy(
    y_true: jax.Array,
    y_pred: jax.Array,
    *,
    num_classes: int,
    normalize: bool = True,
    sample_weight: jax.Array | None = None,
    threshold: float = 0.5,
) -> jax.Array:
    """Accuracy: the (weighted) fraction of samples with ``y_pred == y_true``.

    ``accuracy = sum(w * (y_true == y_pred)) / sum(w)``, equal to
    ``sklearn.metrics.accuracy_score``; for single-label multiclass data it is
    also the micro-averaged precision, recall and F1.

    Args:
      y_true: true labels, integers in ``[0, num_classes)``, shape ``(n,)``.
      y_pred: predicted labels (or, for two classes, probabilities of class 1,
        thresholded), the shape of ``y_true``.
      num_classes: the number of classes (static; used to check the labels).
      normalize: True for the fraction; False for the (weighted) number of
        correct samples.
      sample_weight: optional weights, shape ``(n,)``.
      threshold: the decision threshold for floating ``y_pred``.

    Returns:
      A floating scalar. No samples, or weights summing to 0, give NaN (0 / 0;
      scikit-learn raises). Under ``jit``, NaN when a label is out of range.
    """
    fn = "accuracy"
    y_true, y_pred, sample_weight = _labels(
        fn, y_true, y_pred, num_classes, sample_weight, threshold
    )
    _, dtype = _dtypes(sample_weight)
    valid = jnp.all(_in_range(y_true, num_classes) & _in_range(y_pred, num_classes))
    weight = jnp.ones(y_true.shape, dtype) if sample_weight is None else sample_weight
    weight = weight.astype(dtype)
    correct = jnp.sum(jnp.where(y_true == y_pred, weight, 0))
    value = correct / jnp.sum(weight) if normalize else correct
    return jnp.where(valid, value, jnp.nan)


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
    """Precision, recall, F1 and support in one pass over the confusion matrix.

    Per class: ``precision = tp / (tp + fp)``, ``recall = tp / (tp + fn)``,
    ``f1 = 2 tp / (2 tp + fp + fn)``, ``support = tp + fn``; averaged as
    ``average`` says (see the module docstring). Equal to
    ``sklearn.metrics.precision_recall_fscore_support`` (beta = 1) with the
    same ``average``, ``pos_label``, ``zero_division`` and ``sample_weight``,
    and ``labels=range(num_classes)`` for ``average=None`` (the default, as
    scikit-learn's).

    Args:
      y_true: true labels, integers in ``[0, num_classes)``, shape ``(n,)``.
      y_pred: predicted labels (or, for two classes, probabilities of class 1,
        thresholded), the shape of ``y_true``.
      num_classes: the number of classes (static).
      average: ``"binary"``, ``"micro"``, ``"macro"``, ``"weighted"`` or None
        (per class).
      pos_label: the positive class for ``average="binary"`` (0 or 1).
      zero_division: 0, 1 or NaN: the score where its denominator is 0.
      sample_weight: optional weights, shape ``(n,)``.
      threshold: the decision threshold for floating ``y_pred``.

    Returns:
      A :class:`PrecisionRecallF1`: scalars, or shape ``(num_classes,)`` for
      ``average=None`` (then with the support; None otherwise).
    """
    return _scores(
        "precision_recall_fscore_support",
        y_true,
        y_pred,
        num_classes,
        average,
        pos_label,
        zero_division,
        sample_weight,
        threshold,
    )


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

    Args: as :func:`precision_recall_fscore_support`; ``average`` defaults to
    ``"binary"``, as scikit-learn's.

    Returns:
      A scalar, or shape ``(num_classes,)`` for ``average=None``.
    """
    return _scores(
        "precision",
        y_true,
        y_pred,
        num_classes,
        average,
        pos_label,
        zero_division,
        sample_weight,
        threshold,
    ).precision


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

    Args: as :func:`precision_recall_fscore_support`; ``average`` defaults to
    ``"binary"``, as scikit-learn's.

    Returns:
      A scalar, or shape ``(num_classes,)`` for ``average=None``.
    """
    return _scores(
        "recall",
        y_true,
        y_pred,
        num_classes,
        average,
        pos_label,
        zero_division,
        sample_weight,
        threshold,
    ).recall


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
    """F1: ``2 tp / (2 tp + fp + fn)``, the harmonic mean ``2 P R / (P + R)`` of
    precision and recall where both are defined; equal to
    ``sklearn.metrics.f1_score``.

    F1 lies between min(P, R) and max(P, R) and is at most their arithmetic
    mean. Macro F1 is the mean of the per-class F1 (not the F1 of the macro
    precision and recall). It is a metric of thresholded predictions, with no
    useful gradient; :func:`dlref.losses.soft_f1` is its differentiable
    surrogate.

    Args: as :func:`precision_recall_fscore_support`; ``average`` defaults to
    ``"binary"``, as scikit-learn's. ``zero_division`` applies only when
    ``tp + fp + fn = 0``.

    Returns:
      A scalar, or shape ``(num_classes,)`` for ``average=None``.
    """
    return _scores(
        "f1_score",
        y_true,
        y_pred,
        num_classes,
        average,
        pos_label,
        zero_division,
        sample_weight,
        threshold,
    ).f1
