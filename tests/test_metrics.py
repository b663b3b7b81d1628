"""Metrics against scikit-learn and the closed forms; soft F1 against F1.

Classes absent from both y_true and y_pred: scikit-learn's macro and weighted
averages (without ``labels``) run over ``unique_labels(y_true, y_pred)`` only,
and dlref.metrics does the same; ``average=None`` returns every class, as
scikit-learn with ``labels=range(num_classes)``. The label strategies below
draw from a few classes out of ``num_classes`` so that absent classes, a single
class, all-wrong predictions and zero divisions all occur.
"""

import functools
import math
import warnings

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.metrics
from helpers import BACKWARD_RTOL, JIT_RTOL
from hypothesis import given
from sklearn.exceptions import UndefinedMetricWarning

from dlref import InputError, gradcheck, losses, metrics

f64 = jnp.float64
AVERAGES = ["micro", "macro", "weighted", None]
ZERO_DIVISIONS = [0.0, 1.0, math.nan]
SIZES = (1, 8)
# Sums of float64 weights in a different order than scikit-learn's bincount.
WEIGHTED_RTOL = 1e-12
SCORES = {
    "precision": (metrics.precision, sklearn.metrics.precision_score),
    "recall": (metrics.recall, sklearn.metrics.recall_score),
    "f1": (metrics.f1_score, sklearn.metrics.f1_score),
}


@st.composite
def label_arrays(draw, classes=(1, 2, 4), weighted=None):
    """(num_classes, y_true, y_pred, sample_weight or None).

    Labels come from a drawn subset of the classes (often one class), so some
    classes are absent from both arrays; y_pred is sometimes y_true (perfect),
    sometimes shifted by one class (all wrong); weights include zeros. A few
    fixed sizes: each new shape costs an eager compile of every primitive."""
    num_classes = draw(st.sampled_from(classes))
    used = draw(st.lists(st.integers(0, num_classes - 1), min_size=1, max_size=3, unique=True))
    n = draw(st.sampled_from(SIZES))
    labels = st.lists(st.sampled_from(used), min_size=n, max_size=n)
    y_true = np.asarray(draw(labels), np.int64)
    kind = draw(st.sampled_from(["random", "random", "perfect", "all wrong"]))
    if kind == "random":
        y_pred = np.asarray(draw(labels), np.int64)
    elif kind == "perfect":
        y_pred = y_true.copy()
    else:
        y_pred = (y_true + 1) % num_classes if num_classes > 1 else y_true.copy()
    if weighted is None:
        weighted = draw(st.booleans())
    weight = None
    if weighted:
        # No subnormal weights: XLA on CPU flushes them to zero (numpy keeps them).
        values = st.sampled_from([0.0, 0.5, 1.0, 2.5]) | st.floats(0, 10, allow_subnormal=False)
        weight = np.asarray(draw(st.lists(values, min_size=n, max_size=n)), np.float64)
        if weight.sum() == 0:  # scikit-learn refuses weights summing to 0 (dlref: see below)
            weight[0] = 1.0
    return num_classes, y_true, y_pred, weight


def binary_arrays(**kwargs):
    return label_arrays(classes=(2,), **kwargs)


def _sk(fn, *args, **kwargs):
    """scikit-learn's result, without its warnings (zero division, a single label)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


def _jnp(weight):
    return None if weight is None else jnp.asarray(weight)


def assert_same(ours, theirs, rtol=WEIGHTED_RTOL, what=""):
    np.testing.assert_allclose(
        np.asarray(ours, np.float64), np.asarray(theirs, np.float64), rtol=rtol, err_msg=what
    )


# --- equal to scikit-learn ---------------------------------------------------


@given(label_arrays())
def test_confusion_matrix_matches_sklearn(arrays):
    num_classes, y_true, y_pred, weight = arrays
    ours = metrics.confusion_matrix(
        y_true, y_pred, num_classes=num_classes, sample_weight=_jnp(weight)
    )
    theirs = _sk(
        sklearn.metrics.confusion_matrix,
        y_true,
        y_pred,
        labels=np.arange(num_classes),
        sample_weight=weight,
    )
    assert ours.shape == (num_classes, num_classes)
    assert jnp.issubdtype(ours.dtype, jnp.integer) == (weight is None)
    assert_same(ours, theirs)


@given(label_arrays())
def test_accuracy_matches_sklearn(arrays):
    """With num_classes, and without it (read from the labels), as scikit-learn
    takes none."""
    num_classes, y_true, y_pred, weight = arrays
    for normalize in (True, False):
        theirs = sklearn.metrics.accuracy_score(
            y_true, y_pred, normalize=normalize, sample_weight=weight
        )
        for given_classes in (num_classes, None):
            ours = metrics.accuracy(
                y_true, y_pred, num_classes=given_classes, normalize=normalize, sample_weight=weight
            )
            assert_same(ours, theirs, what=f"normalize={normalize} num_classes={given_classes}")


@given(
    arrays=label_arrays(),
    drawn=st.sampled_from(AVERAGES),
    zero_division=st.sampled_from(ZERO_DIVISIONS),
)
def test_precision_recall_f1_match_sklearn_for_every_average(arrays, drawn, zero_division):
    """precision_recall_fscore_support for every average; the single-score
    functions (views of it) for one drawn average per example.

    zero_division is drawn, not parametrized: each example costs a dozen eager
    calls on each side, and three full runs took most of this file's time. The
    label strategy makes zero divisions frequent, so every (average,
    zero_division) pair still meets them."""
    num_classes, y_true, y_pred, weight = arrays
    for average in AVERAGES:
        # average=None: every class, as scikit-learn with labels=range(num_classes);
        # the averages: scikit-learn's default labels (the classes present).
        labels = np.arange(num_classes) if average is None else None
        common = dict(average=average, zero_division=zero_division, sample_weight=weight)
        ours = metrics.precision_recall_fscore_support(
            y_true, y_pred, num_classes=num_classes, **common
        )
        theirs = _sk(
            sklearn.metrics.precision_recall_fscore_support, y_true, y_pred, labels=labels, **common
        )
        for i, name in enumerate(SCORES):
            assert_same(ours[i], theirs[i], what=f"prfs {name} average={average}")
        if average is None:
            assert_same(ours.support, theirs[3], what="support")
        else:
            assert ours.support is None and theirs[3] is None
        if average != drawn:
            continue
        for name, (ours_fn, sk_fn) in SCORES.items():
            ours = ours_fn(y_true, y_pred, num_classes=num_classes, **common)
            theirs = _sk(sk_fn, y_true, y_pred, labels=labels, **common)
            assert_same(ours, theirs, what=f"{name} average={average}")


@pytest.mark.parametrize("zero_division", ZERO_DIVISIONS, ids=["zd0", "zd1", "zdnan"])
@given(arrays=binary_arrays(), pos_label=st.sampled_from([0, 1]))
def test_binary_average_matches_sklearn(arrays, pos_label, zero_division):
    _, y_true, y_pred, weight = arrays
    common = dict(average="binary", pos_label=pos_label, zero_division=zero_division)
    for name, (ours_fn, sk_fn) in SCORES.items():
        ours = ours_fn(y_true, y_pred, num_classes=2, sample_weight=weight, **common)
        theirs = _sk(sk_fn, y_true, y_pred, sample_weight=weight, **common)
        assert_same(ours, theirs, what=f"{name} pos_label={pos_label}")


@given(binary_arrays(weighted=False), st.floats(0.05, 0.95))
def test_probabilities_are_thresholded(arrays, threshold):
    """A floating y_pred (two classes) is P(class 1), predicted as p >= threshold."""
    _, y_true, y_pred, _ = arrays
    probs = np.where(y_pred == 1, threshold, np.nextafter(threshold, 0))
    for fn in (metrics.f1_score, metrics.precision, metrics.recall):
        assert_same(
            fn(y_true, probs, num_classes=2, threshold=threshold), fn(y_true, y_pred, num_classes=2)
        )
    assert_same(
        metrics.accuracy(y_true, probs, num_classes=2, threshold=threshold),
        sklearn.metrics.accuracy_score(y_true, y_pred),
    )
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, probs, num_classes=2, threshold=threshold),
        sklearn.metrics.confusion_matrix(y_true, y_pred, labels=[0, 1]),
    )


def test_macro_average_leaves_out_absent_classes():
    """Classes 2 and 3 occur in neither array: macro is over classes 0 and 1
    only (scikit-learn's default); naming every class in ``labels`` would
    count them as zero_division and change the mean."""
    y_true, y_pred = np.asarray([0, 0, 1, 1] * 2), np.asarray([0, 1, 1, 1] * 2)
    ours = metrics.f1_score(y_true, y_pred, num_classes=4, average="macro")
    per_class = metrics.f1_score(y_true, y_pred, num_classes=4, average=None)
    # float64 ratios of small counts and their mean: a rounding or two (1e-15 = 4.5 eps)
    np.testing.assert_allclose(ours, (2 / 3 + 4 / 5) / 2, rtol=1e-15)
    np.testing.assert_allclose(per_class, [2 / 3, 4 / 5, 0, 0], rtol=1e-15)
    assert_same(ours, sklearn.metrics.f1_score(y_true, y_pred, average="macro"))
    all_labels = _sk(sklearn.metrics.f1_score, y_true, y_pred, average="macro", labels=range(4))
    assert not np.isclose(ours, all_labels)
    # A class present only in y_pred counts (its recall is 0 / 0: zero_division).
    y_true, y_pred = np.zeros(8, np.int64), np.asarray([0] * 7 + [2])
    ours = metrics.recall(y_true, y_pred, num_classes=4, average="macro", zero_division=1.0)
    np.testing.assert_allclose(ours, (7 / 8 + 1) / 2, rtol=1e-15)  # as above
    assert_same(
        ours, sklearn.metrics.recall_score(y_true, y_pred, average="macro", zero_division=1.0)
    )


def test_zero_division_cases_by_hand():
    """No predicted positives: precision = zero_division, recall and F1 = 0;
    nothing true and nothing predicted: all three = zero_division."""
    y_true, y_pred, zeros = np.asarray([1, 1] + [0] * 6), np.zeros(8, np.int64), np.zeros(8, int)
    for zd in (0.0, 1.0):
        p, r, f, _ = metrics.precision_recall_fscore_support(
            y_true, y_pred, num_classes=2, average="binary", zero_division=zd
        )
        assert (p, r, f) == (zd, 0.0, 0.0)
        p, r, f, _ = metrics.precision_recall_fscore_support(
            zeros, zeros, num_classes=2, average="binary", zero_division=zd
        )
        assert (p, r, f) == (zd, zd, zd)
    p, r, f, _ = metrics.precision_recall_fscore_support(
        zeros, zeros, num_classes=2, average="binary", zero_division=math.nan
    )
    assert np.isnan(p) and np.isnan(r) and np.isnan(f)


# --- closed forms ----------------------------------------------------------


@given(label_arrays())
def test_f1_score_is_the_harmonic_mean_of_precision_and_recall(arrays):
    num_classes, y_true, y_pred, weight = arrays
    p, r, f, _ = metrics.precision_recall_fscore_support(
        y_true, y_pred, num_classes=num_classes, average=None, sample_weight=weight
    )
    cm = metrics.confusion_matrix(y_true, y_pred, num_classes=num_classes, sample_weight=weight)
    defined = (cm.sum(0) > 0) & (cm.sum(1) > 0)  # both precision and recall defined
    p, r, f = (np.asarray(x)[defined] for x in (p, r, f))
    harmonic = np.where(p + r > 0, 2 * p * r / np.where(p + r > 0, p + r, 1), 0)
    # F1 from the weighted counts against the harmonic mean of the rounded p and r: a few
    # ulps, as WEIGHTED_RTOL's sums; atol and slack: entries that are (near) 0
    np.testing.assert_allclose(f, harmonic, rtol=1e-12, atol=1e-15)
    slack = 1e-12
    assert np.all(np.minimum(p, r) - slack <= f) and np.all(f <= np.maximum(p, r) + slack)
    assert np.all(f <= (p + r) / 2 + slack)


@given(label_arrays())
def test_micro_average_equals_accuracy(arrays):
    """Single-label multiclass: every error is one false positive (of the
    predicted class) and one false negative (of the true one), so micro
    precision = micro recall = micro F1 = accuracy."""
    num_classes, y_true, y_pred, weight = arrays
    acc = metrics.accuracy(y_true, y_pred, num_classes=num_classes, sample_weight=weight)
    for fn, _ in SCORES.values():
        micro = fn(y_true, y_pred, num_classes=num_classes, average="micro", sample_weight=weight)
        np.testing.assert_allclose(micro, acc, rtol=WEIGHTED_RTOL)


@given(label_arrays())
def test_perfect_prediction_scores_one(arrays):
    num_classes, y_true, _, _ = arrays
    assert metrics.accuracy(y_true, y_true, num_classes=num_classes) == 1
    present = np.bincount(y_true, minlength=num_classes) > 0
    prfs = functools.partial(metrics.precision_recall_fscore_support, y_true, y_true)
    for average in ("micro", "macro", "weighted"):
        assert all(s == 1 for s in prfs(num_classes=num_classes, average=average)[:3])
    for per_class in prfs(num_classes=num_classes, average=None)[:3]:
        assert np.all(per_class[present] == 1) and np.all(per_class[~present] == 0)
    cm = metrics.confusion_matrix(y_true, y_true, num_classes=num_classes)
    np.testing.assert_array_equal(cm, np.diag(np.bincount(y_true, minlength=num_classes)))


def test_all_wrong_prediction_scores_zero():
    y_true = np.asarray([0, 1, 2, 2, 1, 0, 3, 3])
    y_pred = (y_true + 1) % 4
    assert metrics.accuracy(y_true, y_pred, num_classes=4) == 0
    for fn, _ in SCORES.values():
        for average in ("micro", "macro", "weighted"):
            assert fn(y_true, y_pred, num_classes=4, average=average) == 0


# --- jit and vmap ------------------------------------------------------------


def _batch(batch=4, n=8, num_classes=4):
    """A batch of evaluations (numpy's generator: cheaper than compiling jax.random)."""
    rng = np.random.default_rng(4)
    y_true = rng.integers(0, num_classes - 1, (batch, n))  # the last class never occurs
    y_pred = np.where(rng.random((batch, n)) < 0.6, y_true, (y_true + 1) % num_classes)
    y_pred[0] = 0  # one evaluation predicting a single class
    return y_true, y_pred, rng.random((batch, n))


def _every_metric(y_true, y_pred, num_classes, **kwargs):
    """Every metric in one call (one compiled program under jit): the scores of
    each average (and "binary" for two classes), accuracy and the confusion matrix."""
    averages = [*AVERAGES, "binary"] if num_classes == 2 else AVERAGES
    scores = {
        str(average): metrics.precision_recall_fscore_support(
            y_true, y_pred, num_classes=num_classes, average=average, **kwargs
        )
        for average in averages
    }
    kwargs.pop("zero_division", None)
    accuracy = metrics.accuracy(y_true, y_pred, num_classes=num_classes, **kwargs)
    cm = metrics.confusion_matrix(y_true, y_pred, num_classes=num_classes, **kwargs)
    return scores, accuracy, cm


def _every_score(result):
    """The floating scores of an _every_metric result: each average's
    precision, recall and F1, and accuracy."""
    scores, accuracy, _ = result
    return [x for prf in scores.values() for x in prf[:3]] + [accuracy]


@functools.cache
def _every_metric_batched(num_classes):
    """_every_metric over a batch of evaluations (vmap), compiled (jit) once per
    num_classes and shared by the tests below; zero_division NaN. Arguments:
    y_true, y_pred, sample_weight and threshold, each with a leading batch axis."""
    return jax.jit(
        jax.vmap(
            lambda t, p, w, threshold: _every_metric(
                t, p, num_classes, zero_division=math.nan, sample_weight=w, threshold=threshold
            )
        )
    )


def test_jit_and_vmap_match_eager():
    """A batch of evaluations at once (vmap), compiled (jit), equals a loop of
    eager calls, for every average (one program, compiled once)."""
    y_true, y_pred, weight = _batch()
    f = functools.partial(_every_metric, num_classes=4, zero_division=math.nan)
    eager = [f(t, p, sample_weight=w) for t, p, w in zip(y_true, y_pred, weight, strict=True)]
    eager = jax.tree.map(lambda *xs: jnp.stack(xs), *eager)
    batched = _every_metric_batched(4)(y_true, y_pred, weight, np.full(len(y_true), 0.5))
    assert jax.tree.structure(batched) == jax.tree.structure(eager)  # support None but per class
    # XLA may fuse and reorder the weighted sums: a few ulps.
    jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=JIT_RTOL), batched, eager)


def test_confusion_matrix_and_accuracy_under_jit_and_vmap():
    y_true, y_pred, weight = _batch()
    cm = functools.partial(metrics.confusion_matrix, num_classes=4)
    acc = functools.partial(metrics.accuracy, num_classes=4)
    eager_cm = jnp.stack([cm(t, p) for t, p in zip(y_true, y_pred, strict=True)])
    np.testing.assert_array_equal(jax.jit(jax.vmap(cm))(y_true, y_pred), eager_cm)
    eager_acc = jnp.stack(
        [acc(t, p, sample_weight=w) for t, p, w in zip(y_true, y_pred, weight, strict=True)]
    )
    batched = jax.jit(jax.vmap(lambda t, p, w: acc(t, p, sample_weight=w)))
    np.testing.assert_allclose(batched(y_true, y_pred, weight), eager_acc, rtol=JIT_RTOL)
    probs = np.random.default_rng(6).random(y_true.shape)
    binary = np.clip(y_true, 0, 1)
    f1 = functools.partial(metrics.f1_score, num_classes=2)
    np.testing.assert_array_equal(
        jax.jit(jax.vmap(f1))(binary, probs),
        jnp.stack([f1(t, p) for t, p in zip(binary, probs, strict=True)]),
    )


# --- bad input ---------------------------------------------------------------


y3 = jnp.asarray([0, 1, 2])
yb = jnp.asarray([0, 1, 1])  # two classes
probs = jnp.asarray([0.2, 0.7, 0.4])  # their probabilities of class 1
BAD = [
    (
        "float y_true",
        lambda: metrics.f1_score(y3.astype(f64), y3, num_classes=3, average="macro"),
        r"f1_score: `y_true` must hold integer labels; got shape \(3,\) and dtype float64",
    ),
    (
        "y_true range",
        lambda: metrics.precision(y3, y3, num_classes=2, average="macro"),
        r"precision: `y_true` must lie in \[0, 2\); got values in \[0, 2\]",
    ),
    (
        "y_pred negative",
        lambda: metrics.recall(y3, y3 - 1, num_classes=3, average=None),
        r"recall: `y_pred` must lie in \[0, 3\); got values in \[-1, 1\]",
    ),
    (
        "shapes",
        lambda: metrics.confusion_matrix(y3, y3[:2], num_classes=3),
        r"confusion_matrix: `y_pred` must have the shape of `y_true` \(3,\); got \(2,\)",
    ),
    (
        "rank",
        lambda: metrics.accuracy(y3[None], y3[None], num_classes=3),
        r"accuracy: `y_true` must have rank 1; got shape \(1, 3\)",
    ),
    (
        "weight shape",
        lambda: metrics.accuracy(y3, y3, num_classes=3, sample_weight=jnp.ones(2)),
        r"accuracy: `sample_weight` must have the shape of `y_true`",
    ),
    (
        "average",
        lambda: metrics.f1_score(y3, y3, num_classes=3, average="samples"),
        r"f1_score: `average` must be one of 'binary', 'micro', 'macro', 'weighted' or None; "
        r"got 'samples'",
    ),
    (
        "binary multiclass",
        lambda: metrics.f1_score(y3, y3, num_classes=3),
        r"f1_score: average='binary' needs num_classes=2; got num_classes=3",
    ),
    (
        "pos_label",
        lambda: metrics.f1_score(y3 % 2, y3 % 2, num_classes=2, pos_label=2),
        r"f1_score: `pos_label` must be 0 or 1; got 2",
    ),
    (
        "zero_division",
        lambda: metrics.precision(y3, y3, num_classes=3, average=None, zero_division="warn"),
        r"precision: `zero_division` must be 0, 1 or nan",
    ),
    (
        "probs multiclass",
        lambda: metrics.accuracy(y3, 0.3 * y3.astype(f64), num_classes=3),
        r"accuracy: a floating `y_pred` is read as probabilities of class 1, which needs "
        r"num_classes=2",
    ),
    (
        "num_classes",
        lambda: metrics.confusion_matrix(y3, y3, num_classes=0),
        r"confusion_matrix: `num_classes` must lie in \[1, 2\*\*31 - 1\]; got 0",
    ),
    (
        "num_classes traced",
        lambda: jax.jit(lambda c: metrics.confusion_matrix(y3, y3, num_classes=c))(3),
        r"confusion_matrix: `num_classes` must be a Python int",
    ),
    (
        "num_classes None",
        lambda: metrics.f1_score(y3, y3, num_classes=None, average="macro"),
        r"f1_score: `num_classes` must be a Python int, static under jit; got None",
    ),
    (
        "num_classes too large",
        lambda: metrics.accuracy(y3, y3, num_classes=2**31),
        r"accuracy: `num_classes` must lie in \[1, 2\*\*31 - 1\]; got 2147483648",
    ),
    (
        "accuracy negative labels, num_classes read",
        lambda: metrics.accuracy(y3, y3 - 1),
        r"accuracy: `y_pred` must hold labels >= 0 \(num_classes=None: the number of classes "
        r"is read as the largest label \+ 1\); got values in \[-1, 1\]",
    ),
    (
        "accuracy num_classes None under jit",
        lambda: jax.jit(metrics.accuracy)(y3, y3),
        r"accuracy: `num_classes` must be given under jit, vmap or grad, where the labels are "
        r"traced .*; got num_classes=None \(pass num_classes=C, a Python int\)",
    ),
    (
        "accuracy num_classes None under vmap",
        lambda: jax.vmap(metrics.accuracy)(y3[None], y3[None]),
        r"accuracy: `num_classes` must be given under jit, vmap or grad",
    ),
    (
        "normalize",
        lambda: metrics.accuracy(y3, y3, normalize="false"),
        r"accuracy: `normalize` must be True or False; got 'false'",
    ),
    (
        "threshold not a number",
        lambda: metrics.f1_score(yb, probs, num_classes=2, threshold="0.5"),
        r"f1_score: `threshold` must be a real scalar; got '0.5'",
    ),
    (
        "threshold None",
        lambda: metrics.precision(yb, probs, num_classes=2, threshold=None),
        r"precision: `threshold` must be a real scalar; got None",
    ),
    (
        "threshold not a scalar",
        lambda: metrics.recall(yb, probs, num_classes=2, threshold=jnp.full(3, 0.5)),
        r"recall: `threshold` must be a real scalar; got shape \(3,\) and dtype float64",
    ),
    (
        "pos_label bool",
        lambda: metrics.precision(yb, yb, num_classes=2, pos_label=True),
        r"precision: `pos_label` must be 0 or 1; got True",
    ),
    (
        "zero_division bool",
        lambda: metrics.recall(yb, yb, num_classes=2, zero_division=True),
        r"recall: `zero_division` must be 0, 1 or nan \(a Python number\); got True",
    ),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_metrics_bad_input_raises_a_clear_error(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_metrics_shape_and_dtype_errors_raise_under_jit():
    f1 = functools.partial(metrics.f1_score, num_classes=3, average="macro")
    with pytest.raises(InputError, match="`y_true` must hold integer labels"):
        jax.jit(f1)(y3.astype(f64), y3)
    with pytest.raises(InputError, match="`y_pred` must have the shape of `y_true`"):
        jax.jit(f1)(y3, y3[:2])


def test_metrics_out_of_range_labels_under_jit_give_nan_and_are_not_counted():
    """Values cannot be checked under jit: every score of an evaluation with a
    label out of range is NaN, never a plausible number, and the confusion
    matrix leaves the sample out."""
    y_true, y_pred, weight = _batch()
    bad_true, bad_pred = y_true.copy(), y_pred.copy()
    bad_pred[0, 0] = 4  # too large
    bad_true[1, 0] = -1  # negative (no wrapping around)
    thresholds = np.full(len(y_true), 0.5)
    result = _every_metric_batched(4)(bad_true, bad_pred, weight, thresholds)
    clean = _every_metric_batched(4)(y_true, y_pred, weight, thresholds)
    for score, clean_score in zip(_every_score(result), _every_score(clean), strict=True):
        assert np.all(np.isnan(score[:2]))
        np.testing.assert_array_equal(score[2:], clean_score[2:])  # the other evaluations
    for row in (0, 1):
        left_out = np.ones(len(y_true[row]), bool)
        left_out[0] = False
        expected = sklearn.metrics.confusion_matrix(
            y_true[row][left_out],
            y_pred[row][left_out],
            labels=range(4),
            sample_weight=weight[row][left_out],
        )
        np.testing.assert_allclose(result[2][row], expected, rtol=JIT_RTOL)


def test_metrics_label_dtype_must_hold_num_classes():
    """int16 labels with 40000 classes gave accuracy NaN, uint8 labels with 300
    classes wrapped around: a dtype that cannot hold num_classes - 1 raises,
    also under jit (the dtype is static)."""
    labels = y3.astype(jnp.int16)
    with pytest.raises(
        InputError,
        match=r"accuracy: `y_true` must have an integer dtype that holds labels up to 39999 "
        r"\(num_classes=40000\); got dtype int16, whose largest value is 32767 "
        r"\(use int32 labels\)",
    ):
        metrics.accuracy(labels, labels, num_classes=40000)
    narrow = y3.astype(jnp.uint8)
    for fn in (metrics.confusion_matrix, metrics.precision_recall_fscore_support):
        name = fn.__name__
        for y_true, y_pred, arg in ((narrow, y3, "y_true"), (y3, narrow, "y_pred")):
            match = rf"{name}: `{arg}` must have an integer dtype that holds labels up to 299"
            with pytest.raises(InputError, match=match + r".* got dtype uint8"):
                fn(y_true, y_pred, num_classes=300)
            with pytest.raises(InputError, match=match):
                jax.jit(functools.partial(fn, num_classes=300))(y_true, y_pred)


def test_metrics_narrow_and_mixed_label_dtypes_match_sklearn():
    """A dtype that holds num_classes - 1 is enough (uint8 and 256 classes), and
    y_true and y_pred may differ in dtype (compared as int32 inside)."""
    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 256, 8).astype(np.uint8)
    y_pred = np.where(rng.random(8) < 0.5, y_true, 255).astype(np.int16)
    assert_same(
        metrics.accuracy(y_true, y_pred, num_classes=256),
        sklearn.metrics.accuracy_score(y_true, y_pred),
    )
    # Compiled: one program instead of an eager compile of every primitive at 256 classes.
    f1 = jax.jit(functools.partial(metrics.f1_score, num_classes=256, average="macro"))
    assert_same(f1(y_true, y_pred), sklearn.metrics.f1_score(y_true, y_pred, average="macro"))
    assert_same(
        metrics.accuracy((y_true % 128).astype(np.int8), y_pred % 128, num_classes=128),
        sklearn.metrics.accuracy_score(y_true % 128, y_pred % 128),
    )


def test_accuracy_of_probabilities_needs_no_num_classes_under_jit():
    """Probabilities mean two classes: no labels need reading, so jit works
    without num_classes (integer labels need it: see BAD)."""
    expected = sklearn.metrics.accuracy_score(yb, np.asarray(probs) >= 0.5)
    assert_same(jax.jit(metrics.accuracy)(yb, probs), expected)


# Every public function, on two classes (so a floating y_pred is allowed).
BINARY_FUNCTIONS = [
    metrics.confusion_matrix,
    metrics.accuracy,
    metrics.precision_recall_fscore_support,
    metrics.precision,
    metrics.recall,
    metrics.f1_score,
]


def test_metrics_nan_threshold_raises():
    for fn in BINARY_FUNCTIONS:
        with pytest.raises(
            InputError, match=rf"{fn.__name__}: `threshold` must be a real number, not NaN; got nan"
        ):
            fn(yb, probs, num_classes=2, threshold=math.nan)


def test_metrics_nan_threshold_under_jit_gives_nan_and_counts_nothing():
    """A traced threshold cannot be checked: with a NaN one every prediction is
    undefined, so every score is NaN and the confusion matrix is zeros."""
    f = _every_metric_batched(2)
    result = f(
        jnp.stack([yb, yb]),
        jnp.stack([probs, probs]),
        jnp.ones((2, 3)),
        np.asarray([math.nan, 0.5]),
    )
    scores = _every_score(result)
    assert all(np.all(np.isnan(score[0])) for score in scores)
    assert not any(np.any(np.isnan(score[1])) for score in scores)
    np.testing.assert_array_equal(result[2][0], 0)
    expected = sklearn.metrics.confusion_matrix(yb, np.asarray(probs) >= 0.5)
    np.testing.assert_array_equal(result[2][1], expected)  # a number: counted as usual


def test_metrics_nan_probability_raises():
    """A NaN probability was predicted as class 0 (NaN >= threshold is False)."""
    nan_probs = probs.at[1].set(math.nan)
    for fn in BINARY_FUNCTIONS:
        with pytest.raises(
            InputError,
            match=rf"{fn.__name__}: `y_pred` must hold probabilities of class 1, not NaN; "
            r"got 1 NaN of 3",
        ):
            fn(yb, nan_probs, num_classes=2)


def test_metrics_nan_probability_under_jit_gives_nan_and_is_not_counted():
    batch_true = jnp.stack([yb, yb])
    batch_probs = jnp.stack([probs.at[1].set(math.nan), probs])  # row 1 has no NaN
    result = _every_metric_batched(2)(batch_true, batch_probs, jnp.ones((2, 3)), np.full(2, 0.5))
    scores = _every_score(result)
    assert all(np.all(np.isnan(score[0])) for score in scores)
    assert not any(np.any(np.isnan(score[1])) for score in scores)
    cm = sklearn.metrics.confusion_matrix(yb, np.asarray(probs) >= 0.5)
    np.testing.assert_array_equal(result[2][1], cm)
    cm[1, 1] -= 1  # the sample with the NaN probability (true 1, predicted 1) is left out
    np.testing.assert_array_equal(result[2][0], cm)


def test_metrics_complex_sample_weight_raises():
    """The imaginary part was dropped; the dtype is static, so jit raises too."""
    weight = jnp.asarray([1.0, 2.0, 1.0 + 1.0j])
    for fn in BINARY_FUNCTIONS:
        match = (
            rf"{fn.__name__}: `sample_weight` must be real \(integer or floating\); "
            r"got shape \(3,\) and dtype complex128"
        )
        with pytest.raises(InputError, match=match):
            fn(yb, yb, num_classes=2, sample_weight=weight)
    with pytest.raises(InputError, match="`sample_weight` must be real"):
        jax.jit(functools.partial(metrics.accuracy, num_classes=2))(yb, yb, sample_weight=weight)


@pytest.mark.parametrize("zero_division", ZERO_DIVISIONS, ids=["zd0", "zd1", "zdnan"])
def test_metrics_empty_input_gives_the_documented_result(zero_division):
    """No samples (scikit-learn raises): the confusion matrix is zeros, accuracy
    NaN (0 / 0; 0 correct with normalize=False), per-class and micro scores
    zero_division, macro and weighted NaN (no class occurs)."""
    empty = jnp.zeros(0, jnp.int32)
    scores, accuracy, cm = _every_metric(empty, empty, 2, zero_division=zero_division)
    np.testing.assert_array_equal(cm, np.zeros((2, 2)))
    assert np.isnan(accuracy) and np.isnan(metrics.accuracy(empty, empty))  # num_classes read
    assert metrics.accuracy(empty, empty, num_classes=2, normalize=False) == 0
    for average in ("None", "micro", "binary"):
        for score in scores[average][:3]:
            np.testing.assert_array_equal(score, zero_division)
    np.testing.assert_array_equal(scores["None"].support, [0, 0])
    for average in ("macro", "weighted"):
        assert all(np.isnan(score) for score in scores[average][:3])


def test_metrics_weights_summing_to_zero_give_the_documented_result():
    """scikit-learn raises; dlref: accuracy NaN (0 / 0), scores from zero counts
    (zero_division), the classes still occur (macro over them)."""
    labels, zeros = np.arange(8) % 4, np.zeros(8)
    scores, accuracy, cm = _every_metric(labels, labels, 4, zero_division=1.0, sample_weight=zeros)
    assert np.isnan(accuracy)
    np.testing.assert_array_equal(cm, np.zeros((4, 4)))
    assert all(np.all(score == 1) for prf in scores.values() for score in prf[:3])


# --- soft F1 (dlref.losses.soft_f1) --------------------------------------------

# Compiled once per shape and dtype: one program instead of an eager compile per primitive.
VARIANTS = ("manual", "autodiff")


@functools.cache
def _jitted(variant):
    return jax.jit(losses.soft_f1 if variant == "manual" else losses.soft_f1.autodiff)


@functools.cache
def _value_and_grad(variant):
    f = losses.soft_f1 if variant == "manual" else losses.soft_f1.autodiff
    return jax.jit(jax.value_and_grad(lambda p, t: f(p, t).sum(), (0, 1)))


@given(
    st.lists(st.integers(0, 1), min_size=24, max_size=24),
    st.lists(st.integers(0, 1), min_size=24, max_size=24),
)
def test_soft_f1_at_zero_one_probabilities_is_one_minus_f1(p, t):
    """At 0/1 probabilities the soft counts are the counts: soft_f1 = 1 - F1 per
    row, with F1's zero_division 0 (scikit-learn's default) for an all-zero row
    (the last row here)."""
    # Rows of 8, the size the metrics tests use (no new eager compiles for f1_score).
    p = np.asarray(p + [0] * 8, np.int64).reshape(4, 8)
    t = np.asarray(t + [0] * 8, np.int64).reshape(4, 8)
    expected = [
        1 - _sk(sklearn.metrics.f1_score, ti, pi, zero_division=0.0)
        for pi, ti in zip(p, t, strict=True)
    ]
    for variant in VARIANTS:
        loss = _jitted(variant)(p.astype(np.float64), t.astype(np.float64))
        # exact counts, a division and 1 - F1: an ulp or two; atol: rows whose loss is 0
        np.testing.assert_allclose(loss, expected, rtol=1e-15, atol=1e-15)
    assert_same(1 - metrics.f1_score(t[0], p[0], num_classes=2), expected[0])


@given(
    st.lists(st.floats(0, 1), min_size=6, max_size=6),
    st.lists(st.floats(0, 1), min_size=6, max_size=6),
)
def test_soft_f1_closed_form_bounds_and_gradient(p, t):
    """loss = 1 - 2 sum(p t) / (sum p + sum t) in [0, 1]; gradients bounded by 2
    and pushing each p toward its target (dp <= 0 where t = 1, >= 0 where t = 0)."""
    p, t = np.asarray(p).reshape(2, 3), np.asarray(t).reshape(2, 3)
    t[0] = np.round(t[0])  # row 0: 0/1 targets
    s = p.sum(-1) + t.sum(-1)
    closed = np.where(s > 0, 1 - 2 * (p * t).sum(-1) / np.where(s > 0, s, 1), 1)
    for variant in VARIANTS:
        loss = _jitted(variant)(p, t)
        # float64 sums of 3 terms and a ratio, a few ulps; atol: the reference's 1 - ratio
        # cancels for a loss near 0, exact to eps absolutely; the bounds: a few ulps past them
        np.testing.assert_allclose(loss, closed, rtol=1e-13, atol=1e-15)
        assert np.all((loss >= -1e-15) & (loss <= 1 + 1e-15))
    _, (dp, dt) = _value_and_grad("manual")(p, t)
    # the bound 2 with room for a few ulps of rounding
    assert np.all(np.abs(dp) <= 2 + 1e-12) and np.all(np.abs(dt) <= 2 + 1e-12)
    assert np.all(dp[0][t[0] == 1] <= 0) and np.all(dp[0][t[0] == 0] >= 0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_soft_f1_all_zero_example_gives_one_and_zero_gradient(variant):
    zeros = np.zeros((2, 3))
    loss, (dp, dt) = _value_and_grad(variant)(zeros, zeros)
    assert loss == 2
    np.testing.assert_array_equal(dp, 0)
    np.testing.assert_array_equal(dt, 0)
    # The continuous extension: soft F1 tends to 0 (loss to 1) as every entry does.
    small = np.full((2, 3), 1e-150)
    # exactly 1 - 1e-150, which rounds to 1; rtol: the scaled counts' rounding
    np.testing.assert_allclose(_jitted(variant)(small, small), 1, rtol=1e-12)


@pytest.mark.parametrize(
    "dtype", [jnp.float16, jnp.bfloat16, jnp.float32], ids=lambda d: jnp.dtype(d).name
)
def test_soft_f1_tiny_inputs_finite_in_low_precision(dtype):
    """Where 1 / S**2 overflows (S tiny): the scaled counts keep every gradient finite."""
    info = jnp.finfo(dtype)
    rows = [
        [float(info.tiny), 0.0, 0.0],
        [float(info.smallest_subnormal), 0.0, float(info.tiny)],
        [4 * float(info.tiny), float(info.tiny), 0.0],
    ]
    p = jnp.asarray(rows, dtype)
    t = p[::-1]
    for variant in VARIANTS:
        loss, (dp, dt) = _value_and_grad(variant)(p, t)
        for x in (loss, dp, dt):
            assert x.dtype == dtype and np.all(np.isfinite(np.asarray(x, np.float64)))


def test_soft_f1_reduces_the_last_axis_only():
    for shape in [(7,), (2, 3, 4)]:
        p = np.linspace(0, 1, math.prod(shape)).reshape(shape)
        # eval_shape: the shapes of an eager call, traced without compiling.
        assert jax.eval_shape(losses.soft_f1, p, p[..., ::-1]).shape == shape[:-1]


def test_soft_f1_backward_matches_autodiff_on_soft_and_zero_one_inputs(key):
    """Beyond the registry's check: 0/1 targets, soft targets and rows with a
    zero target (the regime of training), float64."""
    rng = np.random.default_rng(5)
    p = rng.random((8, 6))
    targets = rng.random((8, 6))  # rows 4-7 soft
    targets[:4] = targets[:4] < 0.4  # rows 0-3 0/1
    targets[0] = 0
    gradcheck.check_vjp(
        _jitted("manual"), _jitted("autodiff"), p, targets, key=key, rtol=BACKWARD_RTOL
    )
