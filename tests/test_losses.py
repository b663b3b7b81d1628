"""Losses against the cheat sheet's closed forms, scipy and scikit-learn."""

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import sklearn.metrics
from helpers import VARIANTS
from hypothesis import given
from hypothesis.extra.numpy import arrays

from dlref import InputError, losses
from dlref import activations as act

f64 = jnp.float64


def matrices(low, high, shape=(3, 4)):
    return arrays(np.float64, shape, elements=st.floats(low, high, allow_nan=False))


probabilities = matrices(0, 1)
safe_probabilities = matrices(1e-6, 1 - 1e-6)


@given(matrices(-100, 100), matrices(-100, 100))
def test_mse_and_mae_closed_form(pred, target):
    # float64, a mean of 4 terms on both sides: a few ulps each (1e-14 = 45 eps)
    np.testing.assert_allclose(
        losses.mse(pred, target), ((pred - target) ** 2).mean(-1), rtol=1e-14
    )
    np.testing.assert_allclose(losses.mae(pred, target), np.abs(pred - target).mean(-1), rtol=1e-14)


@given(probabilities, probabilities)
def test_binary_cross_entropy_is_the_cheat_sheet_formula(probs, targets):
    """loss = -sum(t log p + (1 - t) log(1 - p)), with p clipped to [eps, 1 - eps]."""
    eps = np.finfo(np.float64).eps
    p = np.clip(probs, eps, 1 - eps)
    expected = -(scipy.special.xlogy(targets, p) + scipy.special.xlog1py(1 - targets, -p)).sum(-1)
    # float64: dlref within a few ulps (tests/test_ulp.py); the reference takes log(1 - p)
    # as log1p(-p), exact relatively even for tiny p
    np.testing.assert_allclose(losses.binary_cross_entropy(probs, targets), expected, rtol=1e-12)


@given(matrices(-10, 10), probabilities)
def test_bce_with_logits_equals_bce_on_sigmoid_in_safe_range(logits, targets):
    """Safe range |z| <= 10: there 1 - sigmoid(z) >= 4.5e-5 keeps about 11 digits in
    float64. Beyond it the probability form loses digits (1 - p rounds), which is
    why the logits form exists."""
    direct = losses.binary_cross_entropy(act.sigmoid(logits), targets)
    # log(p) for p near 1 is accurate to eps in absolute terms only: compare absolutely
    # too (the logits form is the accurate one there). rtol: 1 - p >= 4.5e-5 costs the
    # probability form at most eps / 4.5e-5 ~ 5e-12 per entry.
    fused = losses.binary_cross_entropy_with_logits(logits, targets)
    np.testing.assert_allclose(fused, direct, rtol=1e-9, atol=1e-13)


@given(matrices(-30, 30, (2,)), st.integers(0, 1))
def test_two_class_softmax_cross_entropy_is_logistic_regression(logits, label):
    """Softmax over two logits with an integer label = BCE with logits on their difference."""
    z = jnp.asarray(logits)
    two_class = losses.softmax_cross_entropy_with_integer_labels(z, jnp.asarray(label))
    binary = losses.binary_cross_entropy_with_logits((z[1:] - z[:1]), jnp.asarray([label], f64))
    # log-sum-exp is accurate to eps absolutely, not relatively for a loss near 0. rtol:
    # z1 - z0 rounds by up to 3.6e-15 (|z1 - z0| <= 60), and each side is a few ulps.
    np.testing.assert_allclose(two_class, binary, rtol=1e-12, atol=1e-15)


@given(matrices(-50, 50), st.lists(st.integers(0, 3), min_size=3, max_size=3))
def test_cross_entropies_with_one_hot_targets_are_minus_log_p_true(logits, labels):
    labels = np.asarray(labels)
    one_hot = np.eye(4)[labels]
    log_p = scipy.special.log_softmax(logits, axis=-1)
    expected = -log_p[np.arange(3), labels]
    # scipy's log_softmax is exact to eps absolutely only: where the true class
    # dominates, -log p is near 0 and scipy's value loses relative digits (dlref's
    # keeps them: tests/test_ulp.py), hence the atol. rtol: scipy's x - max rounds by up to
    # 7e-15 (|x - max| <= 100); the clipped form below is a log on both sides.
    np.testing.assert_allclose(
        losses.softmax_cross_entropy(logits, one_hot), expected, rtol=1e-12, atol=1e-15
    )
    np.testing.assert_allclose(
        losses.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(labels)),
        expected,
        rtol=1e-12,
        atol=1e-15,
    )
    probs = np.exp(log_p)
    expected_clipped = -np.log(np.maximum(probs[np.arange(3), labels], np.finfo(np.float64).eps))
    np.testing.assert_allclose(
        losses.categorical_cross_entropy(probs, one_hot), expected_clipped, rtol=1e-12
    )


@given(matrices(-50, 50))
def test_softmax_cross_entropy_fused_gradient(logits):
    """dz = softmax(z) - y for targets summing to 1."""
    targets = scipy.special.softmax(logits[::-1], axis=-1)
    grad = jax.grad(lambda z: losses.softmax_cross_entropy(z, targets).sum())(logits)
    # atol: p - t cancels, so it is exact to an ulp of 1 absolutely (tests/test_ulp.py)
    np.testing.assert_allclose(
        grad, scipy.special.softmax(logits, axis=-1) - targets, rtol=1e-13, atol=1e-15
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_binary_cross_entropy_finite_at_zero_and_one(variant):
    f = VARIANTS[variant](losses.binary_cross_entropy)
    probs = jnp.asarray([[0.0, 1.0, 0.0, 1.0]], f64)
    targets = jnp.asarray([[1.0, 0.0, 0.0, 1.0]], f64)
    value, grad = jax.value_and_grad(lambda p: f(p, targets).sum())(probs)
    eps = np.finfo(np.float64).eps
    # float64, a sum of 4 terms of a few ulps each
    np.testing.assert_allclose(value, -2 * np.log(eps) - 2 * np.log1p(-eps), rtol=1e-12)
    # confidently wrong: large finite gradient pushing the right way (1 / eps = 4.5e15);
    # right: small (1 / (1 - eps) ~ 1 in size; 1.01 a margin).
    assert grad[0, 0] < -1e15 and grad[0, 1] > 1e15
    assert abs(grad[0, 2]) <= 1.01 and abs(grad[0, 3]) <= 1.01


@given(matrices(-10, 10), st.lists(st.sampled_from([-1.0, 1.0]), min_size=12, max_size=12))
def test_hinge_zero_beyond_margin(scores, signs):
    labels = np.asarray(signs).reshape(3, 4)
    beyond = labels * (1 + np.abs(scores))  # labels * scores >= 1 everywhere
    assert np.all(losses.hinge(beyond, labels) == 0)
    grad = jax.grad(lambda s: losses.hinge(s, labels).sum())(beyond)
    assert np.all(grad == 0)
    np.testing.assert_allclose(
        losses.hinge(scores, labels), np.maximum(0, 1 - labels * scores).mean(-1)
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_hinge_gradient_zero_at_margin(variant):
    f = VARIANTS[variant](losses.hinge)
    grad = jax.grad(lambda s: f(s, jnp.asarray([1.0, -1.0])))(jnp.asarray([1.0, -1.0]))
    assert np.all(grad == 0)


@given(matrices(-10, 10, (6, 4)), st.lists(st.integers(0, 3), min_size=6, max_size=6))
def test_multiclass_hinge_matches_sklearn(scores, labels):
    """sklearn's hinge_loss is the batch mean of the Crammer-Singer hinge."""
    labels = np.asarray(labels)
    ours = losses.multiclass_hinge(scores, jnp.asarray(labels)).mean()
    theirs = sklearn.metrics.hinge_loss(labels, scores, labels=np.arange(4))
    # float64, a mean of 6 margins of a few ulps; atol: scikit-learn's 1 - margin cancels near
    # the margin, exact to eps absolutely
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("variant", VARIANTS)
def test_multiclass_hinge_tied_rivals_share_the_gradient(variant):
    f = VARIANTS[variant](losses.multiclass_hinge)
    scores = jnp.asarray([0.0, 2.0, 2.0, -1.0], f64)  # rivals 1 and 2 tie; true class 0
    grad = jax.grad(lambda s: f(s, jnp.asarray(0)))(scores)
    np.testing.assert_array_equal(grad, [-1.0, 0.5, 0.5, 0.0])


@pytest.mark.parametrize("variant", VARIANTS)
def test_multiclass_hinge_gradient_zero_at_margin(variant):
    f = VARIANTS[variant](losses.multiclass_hinge)
    scores = jnp.asarray([3.0, 2.0, 1.0], f64)  # margin 1 + 2 - 3 = 0 exactly
    assert f(scores, jnp.asarray(0)) == 0
    np.testing.assert_array_equal(jax.grad(lambda s: f(s, jnp.asarray(0)))(scores), 0)


@pytest.mark.parametrize(
    "fn, make_target",
    [
        (losses.mse, lambda p: p),
        (losses.mae, lambda p: p),
        (losses.hinge, lambda p: jnp.sign(p)),
        (losses.binary_cross_entropy, lambda p: p),
        (losses.categorical_cross_entropy, lambda p: p),
        (losses.softmax_cross_entropy, lambda z: act.softmax(z)),
        (losses.binary_cross_entropy_with_logits, lambda z: act.sigmoid(z)),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_loss_minimal_at_perfect_prediction(fn, make_target, key):
    """Each loss is at its minimum over predictions when the prediction is perfect:
    0 for the distances; the entropy of the target for the cross-entropies."""
    if fn in (losses.binary_cross_entropy, losses.categorical_cross_entropy):
        pred = act.softmax(jax.random.normal(key, (5, 4), f64))
    elif fn is losses.hinge:
        pred = 2 * jax.random.normal(key, (5, 4), f64)
        pred = jnp.where(jnp.abs(pred) < 1, 2 * jnp.sign(pred), pred)
    else:
        pred = jax.random.normal(key, (5, 4), f64)
    target = make_target(pred)
    loss = fn(pred, target)
    grad = jax.grad(lambda p: fn(p, target).sum())(pred)
    if fn in (losses.mse, losses.mae, losses.hinge):
        assert np.all(loss == 0)
        np.testing.assert_array_equal(grad, 0)
    elif fn is not losses.categorical_cross_entropy:  # constrained to the simplex: see below
        # a difference of equal terms (prediction - target): 0 to an ulp of 1
        np.testing.assert_allclose(grad, 0, atol=1e-15)
    perturbed = fn(pred + 0.01 * jax.random.normal(key, pred.shape, f64), target)
    if fn is losses.categorical_cross_entropy:
        perturbed = fn(
            act.softmax(jnp.log(pred) + 0.1 * jax.random.normal(key, pred.shape, f64)), target
        )
    # 1e-12: round-off of losses of order 1, far below the rise a perturbation brings
    assert np.all(perturbed >= loss - 1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
def test_softmax_cross_entropy_masked_logits(variant):
    """Masked (-inf) logits with zero target: finite loss, no NaN gradient."""
    f = VARIANTS[variant](losses.softmax_cross_entropy)
    logits = jnp.asarray([[2.0, -jnp.inf, 0.5, -jnp.inf]], f64)
    targets = jnp.asarray([[0.7, 0.0, 0.3, 0.0]], f64)
    loss, (dz, dt) = jax.value_and_grad(lambda z, t: f(z, t).sum(), (0, 1))(logits, targets)
    expected = -(targets[0, [0, 2]] * scipy.special.log_softmax(np.asarray([2.0, 0.5]))).sum()
    np.testing.assert_allclose(loss, expected, rtol=1e-14)  # float64, a few ulps each side
    assert np.all(np.isfinite(dz)) and np.all(np.isfinite(dt))
    assert dz[0, 1] == 0 and dz[0, 3] == 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_integer_label_cross_entropy_masked_logits(variant):
    f = VARIANTS[variant](losses.softmax_cross_entropy_with_integer_labels)
    logits = jnp.asarray([[2.0, -jnp.inf, 0.5]], f64)
    loss, dz = jax.value_and_grad(lambda z: f(z, jnp.asarray([0])).sum())(logits)
    # float64, a few ulps each side
    np.testing.assert_allclose(loss, -scipy.special.log_softmax([2.0, 0.5])[0], rtol=1e-14)
    assert np.all(np.isfinite(dz)) and dz[0, 1] == 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_mae_gradient_zero_at_kink(variant):
    f = VARIANTS[variant](losses.mae)
    x = jnp.asarray([[1.0, 2.0, 3.0]], f64)
    dpred, dtarget = jax.grad(lambda p, t: f(p, t).sum(), (0, 1))(x, x)
    np.testing.assert_array_equal(dpred, 0)
    np.testing.assert_array_equal(dtarget, 0)


def test_losses_never_reduce_the_batch(key):
    """Per example: shape (batch, d) -> (batch,); (b1, b2, d) -> (b1, b2)."""
    for shape in [(7, 3), (2, 5, 3), (3,)]:
        x = jax.random.uniform(key, shape, f64, 0.1, 0.9)
        labels = jnp.zeros(shape[:-1], jnp.int32)
        for fn in (
            losses.mse,
            losses.mae,
            losses.binary_cross_entropy,
            losses.softmax_cross_entropy,
        ):
            assert fn(x, x).shape == shape[:-1]
        assert losses.softmax_cross_entropy_with_integer_labels(x, labels).shape == shape[:-1]
        assert losses.multiclass_hinge(x, labels).shape == shape[:-1]


@pytest.mark.parametrize(
    "fn, bad",
    [
        (losses.binary_cross_entropy_with_logits, "targets"),
        (losses.softmax_cross_entropy, "targets"),
        (losses.soft_f1, "targets"),
        (losses.soft_f1, "probs"),
    ],
)
def test_out_of_range_targets_under_jit_give_nan_loss_and_gradient(fn, bad):
    """Under jit, where [0, 1] cannot be checked, the example with a value outside it
    gets a NaN loss and NaN gradients (hand-written); the other examples are untouched."""
    x = jnp.full((2, 3), 0.25, jnp.float64)
    t = jnp.full((2, 3), 0.5, jnp.float64)
    args = {"probs" if fn is losses.soft_f1 else "logits": x, "targets": t}
    args[bad] = args[bad].at[0, 1].set(1.5)
    loss = jax.jit(lambda a, b: fn(a, b))(*args.values())
    grads = jax.jit(jax.grad(lambda a, b: fn(a, b).sum(), argnums=(0, 1)))(*args.values())
    assert np.isnan(loss[0]) and np.isfinite(loss[1])
    for g in grads:
        assert np.isnan(g[0]).any() and np.isfinite(g[1]).all()
    with pytest.raises(InputError, match=f"`{bad}` must lie in \\[0, 1\\]"):
        fn(*args.values())  # eagerly: the clear error
