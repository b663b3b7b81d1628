"""Activations against the cheat sheet's closed forms and scipy."""

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
from helpers import VARIANTS
from hypothesis import given

from dlref import activations as act

finite = st.floats(-1e4, 1e4, allow_nan=False)
moderate = st.floats(-30, 30, allow_nan=False)
rows = st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=8)
parametrize_variants = pytest.mark.parametrize("variant", VARIANTS)

sigmoid_grad = jax.grad(act.sigmoid)
tanh_grad = jax.grad(act.tanh)


@given(finite)
def test_sigmoid_symmetry(x):
    x = jnp.float64(x)
    # float64: two terms of 2 ulps each (tests/test_ulp.py) and the sum's rounding; 1e-15 = 4.5 eps
    np.testing.assert_allclose(act.sigmoid(x) + act.sigmoid(-x), 1.0, rtol=1e-15)


@given(finite)
def test_sigmoid_range_and_scipy(x):
    y = act.sigmoid(jnp.float64(x))
    assert 0 <= y <= 1
    # float64: 2 ulps against scipy's near-exact expit; atol: XLA flushes subnormal
    # results (x < -708) to 0
    np.testing.assert_allclose(y, scipy.special.expit(x), rtol=1e-15, atol=1e-300)


@given(finite)
def test_sigmoid_derivative_closed_form(x):
    x = jnp.float64(x)
    s = act.sigmoid(x)
    d = sigmoid_grad(x)
    # s * (1 - s) with 1 - s written sigmoid(-x): 1 - s cancels once s nears 1.
    # float64: a 2-ulp gradient against a product of two 2-ulp sigmoids, 2e-15 = 9 eps;
    # atol: subnormal results flushed to 0
    np.testing.assert_allclose(d, s * act.sigmoid(-x), rtol=2e-15, atol=1e-300)
    assert 0 <= d <= 0.25


def test_tanh_and_sigmoid_derivatives_at_zero():
    """The cheat sheet's point about tanh, made exact: tanh'(0) = 1 = 4 sigmoid'(0)."""
    assert tanh_grad(0.0) == 1.0
    assert sigmoid_grad(0.0) == 0.25
    xs = jnp.linspace(-6, 6, 1201, dtype=jnp.float64)
    assert jnp.argmax(jax.vmap(tanh_grad)(xs)) == 600  # largest at 0
    assert jnp.argmax(jax.vmap(sigmoid_grad)(xs)) == 600


@given(moderate)
def test_tanh_is_rescaled_sigmoid(x):
    x = jnp.float64(x)
    # float64: XLA's tanh is up to 7 ulps off, 2 sigmoid(2x) - 1 a few; atol: that subtraction
    # cancels near x = 0, leaving a few eps absolutely
    np.testing.assert_allclose(act.tanh(x), 2 * act.sigmoid(2 * x) - 1, rtol=1e-14, atol=1e-15)
    # 1 - tanh**2 cancels as tanh nears +-1 (exact only to a few eps absolutely:
    # XLA's tanh is a few ulp off); 1 / cosh**2, the same closed form, does not.
    np.testing.assert_allclose(tanh_grad(x), 1 - act.tanh(x) ** 2, rtol=1e-14, atol=2e-15)
    # rtol as above; atol 1e-300 is inert (|x| <= 30 keeps 1 / cosh**2 above 1e-26)
    np.testing.assert_allclose(tanh_grad(x), 1 / np.cosh(float(x)) ** 2, rtol=1e-14, atol=1e-300)


@given(finite)
def test_softplus_scipy_and_derivative_is_sigmoid(x):
    x = jnp.float64(x)
    # float64: 1.6 ulps (tests/test_ulp.py) against NumPy's logaddexp, 1e-15 = 4.5 eps;
    # the gradient's atol: XLA flushes subnormal sigmoids (x < -708) to 0
    # atol: below x = -708 the result is subnormal, which XLA on the CPU flushes to 0
    np.testing.assert_allclose(
        act.softplus(x), np.logaddexp(0.0, float(x)), rtol=1e-15, atol=1e-300
    )
    np.testing.assert_allclose(jax.grad(act.softplus)(x), act.sigmoid(x), rtol=1e-15, atol=1e-300)


@given(st.integers(10, 60), st.floats(0, 1))
def test_hinton_sum_of_sigmoids_approximates_softplus(n, fraction):
    """sum_{i=1..N} sigmoid(x - i + 0.5) ~ softplus(x) for x in [-5, N - 5].

    The sum is the midpoint rule for the integral of sigmoid(x - t) over t in
    [0, N], which is softplus(x) - softplus(x - N). Measured bound for N >= 10:
    |error| <= 0.01063 (0.010621 at N = 10, x = 0.008, where the tail term
    softplus(x - N) adds 4.5e-5 to the midpoint-rule error; 0.010578 at x = 0 as N
    grows).
    """
    x = jnp.float64(-5 + fraction * n)
    shifted = x - jnp.arange(1, n + 1, dtype=jnp.float64) + 0.5
    error = jnp.abs(jnp.sum(act.sigmoid(shifted)) - act.softplus(x))
    assert error <= 0.01063


@pytest.mark.parametrize("n, worst", [(10, 0.010621), (11, 0.010594), (60, 0.010578)])
def test_hinton_bound_is_the_measured_maximum(n, worst):
    """The worst error over a fine grid of [-5, N - 5] (not sampled points)."""
    x = jnp.linspace(-5, n - 5, 200_001, dtype=jnp.float64)
    shifted = x[:, None] - jnp.arange(1, n + 1, dtype=jnp.float64)[None, :] + 0.5
    errors = jnp.abs(jnp.sum(act.sigmoid(shifted), axis=1) - act.softplus(x))
    assert abs(float(errors.max()) - worst) < 1e-6  # `worst` is quoted to 6 decimals
    assert errors.max() <= 0.01063


@given(finite)
def test_relu_range_and_kink(x):
    x = jnp.float64(x)
    assert act.relu(x) >= 0
    assert act.relu(x) == max(float(x), 0.0)


@parametrize_variants
def test_relu_derivative_at_zero_is_zero(variant):
    f = VARIANTS[variant](act.relu)
    assert jax.grad(f)(0.0) == 0.0
    assert jax.grad(f)(1e-300) == 1.0
    assert jax.grad(f)(-1e-300) == 0.0


@parametrize_variants
@pytest.mark.parametrize("x", [-1e4, -104.0, -88.8, -30.0, 30.0, 88.8, 104.0, 1e4])
def test_sigmoid_stable_in_both_tails_float32(variant, x):
    """The textbook 1 / (1 + exp(-x)) has a NaN autodiff gradient below -88 in float32."""
    f = VARIANTS[variant](act.sigmoid)
    x = jnp.float32(x)
    y, dy = jax.value_and_grad(f)(x)
    assert np.isfinite(y) and np.isfinite(dy)
    # float32: 2 ulps each side, 1e-6 = 8 eps; atol: x <= -88.8 gives subnormals, flushed to 0
    np.testing.assert_allclose(y, scipy.special.expit(np.float32(x)), rtol=1e-6, atol=1e-37)


@given(rows, st.floats(-1e3, 1e3))
def test_softmax_sums_to_one_and_shift_invariant(row, c):
    x = jnp.asarray(row, jnp.float64)
    y = act.softmax(x)
    # float64: up to 8 entries of 3 ulps each and the sum's roundings, 1e-14 = 45 eps
    np.testing.assert_allclose(jnp.sum(y), 1.0, rtol=1e-14)
    # x + c rounds x by up to half an ulp of 1e3 (1.1e-13), which moves each entry by
    # ~2e-13 relatively; atol 1e-300 is inert (entries stay above e**-100)
    np.testing.assert_allclose(act.softmax(x + c), y, rtol=1e-9, atol=1e-300)
    # scipy's exp(x - max) keeps the rounding of x - max (|x - max| <= 100: ~1e-14 relative)
    np.testing.assert_allclose(y, scipy.special.softmax(np.asarray(row)), rtol=1e-13, atol=1e-300)


@given(rows)
def test_log_softmax_is_log_of_softmax(row):
    x = jnp.asarray(row, jnp.float64)
    # float64: the log of a 3-ulp softmax is ~1e-15 off absolutely; atol: near 0 (one dominant
    # logit) log(softmax) rounds to 0; scipy's x - max - log(sum) keeps that subtraction's
    # rounding, ~1e-14 absolutely
    np.testing.assert_allclose(act.log_softmax(x), jnp.log(act.softmax(x)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        act.log_softmax(x), scipy.special.log_softmax(row), rtol=1e-13, atol=1e-13
    )


@given(moderate, moderate)
def test_two_class_softmax_is_sigmoid_of_difference(a, b):
    y = act.softmax(jnp.asarray([a, b], jnp.float64))
    # float64: a - b rounds by up to 3.6e-15 (|a - b| <= 60), moving sigmoid as much
    # relatively; atol 1e-300 is inert (sigmoid(-60) ~ 9e-27)
    np.testing.assert_allclose(y[0], act.sigmoid(jnp.float64(a - b)), rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_axis(axis, key):
    x = jax.random.normal(key, (3, 4, 5), jnp.float64)
    # float64: dlref within 3 ulps, scipy within a few more (|x - max| < 10)
    np.testing.assert_allclose(
        act.softmax(x, axis=axis), scipy.special.softmax(x, axis=axis), rtol=1e-13
    )
    np.testing.assert_allclose(
        act.log_softmax(x, axis=axis), scipy.special.log_softmax(x, axis=axis), rtol=1e-13
    )


@parametrize_variants
@pytest.mark.parametrize("fn", [act.softmax, act.log_softmax], ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_masked_entries_give_no_nan(fn, variant, dtype, key):
    """-inf entries (a mask) get probability 0 and gradient 0, with no NaN."""
    x = jax.random.normal(key, (4, 6), dtype) * 1e3
    mask = jnp.array(
        [[1, 0, 0, 0, 0, 0], [1, 1, 0, 1, 0, 1], [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0]]
    )
    x = jnp.where(mask > 0, -jnp.inf, x)
    f = VARIANTS[variant](fn)
    y = f(x)
    cotangent = jax.random.normal(key, x.shape, dtype)
    grad = jax.grad(lambda x: jnp.sum(jnp.where(mask > 0, 0, f(x) * cotangent)))(x)
    assert not jnp.any(jnp.isnan(y)) and not jnp.any(jnp.isnan(grad))
    assert jnp.all(jnp.where(mask > 0, grad, 0) == 0)
    probs = y if fn is act.softmax else jnp.exp(y)
    assert jnp.all(jnp.where(mask > 0, probs, 0) == 0)
    # sized for float32: up to 6 entries of 3 ulps each and the sum's roundings, 1e-6 = 8 eps
    np.testing.assert_allclose(jnp.sum(probs, axis=-1), 1, rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
def test_softmax_large_logits(dtype):
    x = jnp.asarray([1e4, 1e4 - 1, -1e4], dtype)
    y = act.softmax(x)
    expected = scipy.special.softmax(np.asarray(x, np.float64))
    # sized for bfloat16 (8 significant bits, eps 7.8e-3): one rounding of each probability;
    # atol for the smallest ones
    np.testing.assert_allclose(np.asarray(y, np.float64), expected, rtol=1e-2, atol=1e-3)
