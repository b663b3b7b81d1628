"""Activations against the cheat sheet's closed forms and scipy."""

import functools

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import scipy.optimize
import scipy.special
import scipy.stats
from helpers import VARIANTS
from hypothesis import given
from jax._src.ad_checkpoint import saved_residuals  # as tests/test_contracts.py

from dlref import InputError
from dlref import activations as act
from dlref.activations import _precise

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
    # the terms i = 1..N of a fixed-length (60) array: one program for every N
    i = jnp.arange(1, 61, dtype=jnp.float64)
    terms = jnp.where(i <= n, act.sigmoid(x - i + 0.5), 0)
    error = jnp.abs(jnp.sum(terms) - act.softplus(x))
    assert error <= 0.01063


@pytest.mark.parametrize(
    "n, worst",
    [(10, 0.010621), (11, 0.010594), pytest.param(60, 0.010578, marks=pytest.mark.slow)],
)
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


# --- gelu, silu, leaky_relu, elu, log_sigmoid -------------------------------------------

gelu_tanh = functools.partial(act.gelu, approximate=True)
DTYPES = [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64]
NEW = ["gelu", "gelu_tanh", "silu", "elu", "log_sigmoid", "leaky_relu"]


def _activation(name, variant="manual"):
    """The op called ``name`` ("gelu_tanh": gelu with approximate=True) as ``variant``."""
    if name == "gelu_tanh":
        return functools.partial(VARIANTS[variant](act.gelu), approximate=True)
    return VARIANTS[variant](getattr(act, name))


@parametrize_variants
@pytest.mark.parametrize("approximate", [False, True])
def test_gelu_at_zero(variant, approximate):
    f = functools.partial(VARIANTS[variant](act.gelu), approximate=approximate)
    assert f(0.0) == 0.0
    assert jax.grad(f)(0.0) == 0.5


@given(finite)
def test_gelu_is_x_times_normal_cdf(x):
    x = jnp.float64(x)
    # float64: the value is within 3.5 ulp (tests/test_ulp.py), scipy's ndtr within a few;
    # atol: XLA flushes subnormal results (x < -37.5) to 0
    np.testing.assert_allclose(
        act.gelu(x), float(x) * scipy.special.ndtr(float(x)), rtol=1e-14, atol=1e-300
    )
    slope = scipy.special.ndtr(float(x)) + float(x) * scipy.stats.norm.pdf(float(x))
    # the derivative is a difference near its root x = -0.7518: atol of a few eps of its terms
    np.testing.assert_allclose(jax.grad(act.gelu)(x), slope, rtol=1e-13, atol=1e-15)


@given(moderate)
def test_gelu_minus_its_mirror_is_x(x):
    """gelu(x) - gelu(-x) = x Phi(x) + x (1 - Phi(x)) = x."""
    x = jnp.float64(x)
    # float64: two values of about 10 ulp each, the larger |x|, differenced: 4e-15 relative to x
    np.testing.assert_allclose(act.gelu(x) - act.gelu(-x), x, rtol=4e-15, atol=1e-300)


@given(moderate)
def test_gelu_tanh_form_is_the_paper_formula(x):
    x = float(x)
    u = np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)
    # float64: 1 + tanh(u) cancels for u << 0, so the textbook formula is compared with an
    # absolute tolerance of its own rounding (eps times x); the sigmoid form is the exact one
    np.testing.assert_allclose(
        gelu_tanh(jnp.float64(x)), 0.5 * x * (1 + np.tanh(u)), rtol=1e-14, atol=1e-15 * abs(x)
    )
    # The same function through 1 + tanh(u) = 2 sigmoid(2u), without the cancellation. The
    # reference rounds 2u, and the sigmoid's tail multiplies that by |2u| (up to 745 where the
    # value is not 0): 745 * 2.2e-16 = 1.7e-13
    np.testing.assert_allclose(
        gelu_tanh(jnp.float64(x)), x * scipy.special.expit(2 * u), rtol=2e-13, atol=1e-300
    )


def test_gelu_default_is_the_exact_form_unlike_jax_nn():
    """dlref's default is PyTorch's and the paper's (exact); jax.nn.gelu's is the tanh form."""
    x = jnp.linspace(-3.0, 3.0, 13, dtype=jnp.float64)
    # float64: the erfc forms agree to a few ulp
    np.testing.assert_allclose(act.gelu(x), jax.nn.gelu(x, approximate=False), rtol=1e-14)
    # atol: jax.nn's 1 + tanh(u) loses up to eps |x| absolutely below 0
    np.testing.assert_allclose(gelu_tanh(x), jax.nn.gelu(x), rtol=1e-14, atol=1e-15)
    assert not np.allclose(act.gelu(x), jax.nn.gelu(x), rtol=1e-6)  # the forms differ by ~1e-4


def _gelu_slope(x, approximate):
    """gelu' in float64 by scipy: Phi + x phi, or the tanh form's s + x s (1 - s) (2u)'."""
    if not approximate:
        return scipy.special.ndtr(x) + x * scipy.stats.norm.pdf(x)
    k = np.sqrt(2 / np.pi)
    s = scipy.special.expit(2 * k * (x + 0.044715 * x**3))
    return s + x * s * (1 - s) * 2 * k * (1 + 3 * 0.044715 * x * x)


@pytest.mark.parametrize("approximate", [False, True])
def test_gelu_derivative_crosses_zero_at_the_minimum(approximate):
    """gelu has one minimum, at x = -0.7518 (tanh form -0.7525), where gelu' changes sign."""
    root = scipy.optimize.brentq(_gelu_slope, -1, -0.5, args=(approximate,), xtol=1e-15)
    assert abs(root - (-0.7525 if approximate else -0.7518)) < 1e-4
    grad = jax.grad(functools.partial(act.gelu, approximate=approximate))
    # gelu'' ~ 0.6 there: 1e-9 away the derivative is 6e-10, far beyond its rounding (~1e-17)
    assert grad(jnp.float64(root - 1e-9)) < 0 < grad(jnp.float64(root + 1e-9))
    assert abs(float(grad(jnp.float64(root)))) < 1e-15


@pytest.mark.parametrize("approximate", [False, True])
def test_gelu_negative_tail_keeps_its_size_float32(approximate):
    """Far below 0 gelu is tiny but not 0 (jax.nn's tanh form gives exactly 0 below x = -4.87,
    where 1 + tanh(u) rounds to 0), and jax.nn's erfc form is 33 ulp off at x = -11."""
    f = functools.partial(act.gelu, approximate=approximate)
    # the tanh form underflows float32 from x = -10 on (exp(2u) < 1e-38), the exact one at -14
    x = np.array([-5.0, -8.0, -9.5] if approximate else [-5.0, -8.0, -11.0, -13.0], np.float32)
    got = np.asarray(f(jnp.asarray(x)), np.float64)
    wide = x.astype(np.float64)
    if approximate:
        expected = wide * scipy.special.expit(2 * np.sqrt(2 / np.pi) * (wide + 0.044715 * wide**3))
    else:
        expected = wide * scipy.special.ndtr(wide)
    assert np.all(got < 0)
    # float32: within 3.5 ulp (tests/test_ulp.py), 1e-6 = 8 eps; the references are float64
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    peer = np.asarray(jax.nn.gelu(jnp.asarray(x), approximate=approximate), np.float64)
    assert np.max(np.abs(peer - expected) / np.abs(expected)) > 1e-6  # jax.nn is not


@parametrize_variants
@pytest.mark.parametrize("fn", NEW)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_new_activations_finite_at_the_extremes(fn, variant, dtype):
    f = _activation(fn, variant)
    big = float(jnp.finfo(dtype).max)
    x = jnp.asarray([-big, -1e4, -100.0, -10.0, -1.0, 0.0, 1.0, 10.0, 100.0, 1e4, big], dtype)
    y, grads = jax.vmap(jax.value_and_grad(f))(x)
    assert y.dtype == dtype and grads.dtype == dtype
    assert np.all(np.isfinite(np.asarray(y, np.float64)))
    assert np.all(np.isfinite(np.asarray(grads, np.float64)))


@given(finite)
def test_silu_is_x_times_sigmoid(x):
    x = jnp.float64(x)
    s = scipy.special.expit(float(x))
    # float64: within 3 ulp (tests/test_ulp.py) against scipy's near-exact expit; atol: XLA
    # flushes subnormal results to 0
    np.testing.assert_allclose(act.silu(x), float(x) * s, rtol=1e-15, atol=1e-300)
    # silu' = sigmoid (1 + x (1 - sigmoid)), with 1 - sigmoid(x) = sigmoid(-x); near its root
    # (x = -1.2785) a difference: atol a few eps of its terms
    slope = s * (1 + float(x) * scipy.special.expit(-float(x)))
    np.testing.assert_allclose(jax.grad(act.silu)(x), slope, rtol=1e-14, atol=1e-15)


@parametrize_variants
def test_silu_at_zero_and_its_minimum(variant):
    f = VARIANTS[variant](act.silu)
    assert f(0.0) == 0.0 and jax.grad(f)(0.0) == 0.5
    # the minimum, where x = -1 - exp(x): x = -1.27846
    root = scipy.optimize.brentq(lambda v: v + 1 + np.exp(v), -2, -1, xtol=1e-15)
    assert abs(float(jax.grad(f)(jnp.float64(root)))) < 1e-15
    np.testing.assert_allclose(f(jnp.float64(root)), root * scipy.special.expit(root), rtol=1e-15)


@given(moderate)
def test_silu_minus_its_mirror_is_x(x):
    x = jnp.float64(x)
    # float64: two values of about 2 ulp each (the larger near |x|), differenced
    np.testing.assert_allclose(act.silu(x) - act.silu(-x), x, rtol=2e-15, atol=1e-300)


@parametrize_variants
@pytest.mark.parametrize("slope", [0.01, 0.2, 0.0, -0.5])
def test_leaky_relu_kink_is_the_right_branch(variant, slope):
    """leaky_relu'(0) = 1, as jax.nn.leaky_relu (x >= 0 selects x)."""
    f = functools.partial(VARIANTS[variant](act.leaky_relu), negative_slope=slope)
    assert jax.grad(f)(0.0) == 1.0
    assert jax.grad(f)(1e-30) == 1.0
    assert jax.grad(f)(-1e-30) == np.float32(slope)
    assert jax.grad(functools.partial(jax.nn.leaky_relu, negative_slope=slope))(0.0) == 1.0


def test_leaky_relu_with_slope_zero_is_relu_except_at_the_kink():
    x = jnp.asarray([-2.0, -0.0, 0.0, 3.0])
    np.testing.assert_array_equal(act.leaky_relu(x, negative_slope=0.0), act.relu(x))
    assert jax.grad(act.relu)(0.0) == 0.0
    assert jax.grad(functools.partial(act.leaky_relu, negative_slope=0.0))(0.0) == 1.0


@given(finite, st.floats(-2, 2))
def test_leaky_relu_values(x, slope):
    y = act.leaky_relu(jnp.float64(x), negative_slope=slope)
    assert y == (x if x >= 0 else np.float64(slope) * x)  # one product: exact as NumPy's


@parametrize_variants
@pytest.mark.parametrize("alpha", [1.0, 0.5, 2.0])
def test_elu_left_limit_and_kink(variant, alpha):
    """elu(x) -> -alpha as x -> -inf; elu'(0) = alpha, as jax.nn.elu (the left branch)."""
    f = functools.partial(VARIANTS[variant](act.elu), alpha=alpha)
    assert f(-1e4) == -alpha and f(jnp.float64(-800.0)) == -alpha
    assert jax.grad(f)(0.0) == alpha
    assert jax.grad(f)(1e-30) == 1.0
    assert jax.grad(functools.partial(jax.nn.elu, alpha=alpha))(0.0) == alpha
    assert f(0.0) == 0.0 and f(2.5) == 2.5


@given(finite, st.floats(0, 4))
def test_elu_is_alpha_expm1(x, alpha):
    y = act.elu(jnp.float64(x), alpha=alpha)
    expected = x if x > 0 else alpha * np.expm1(x)
    # float64: dlref's expm1 within 1.3 ulp and one product; NumPy's expm1 within 1 ulp
    np.testing.assert_allclose(y, expected, rtol=1e-15, atol=1e-300)
    dy = jax.grad(functools.partial(act.elu, alpha=alpha))(jnp.float64(x))
    # atol: exp(x) is subnormal below x = -708, flushed to 0 by XLA
    np.testing.assert_allclose(dy, 1.0 if x > 0 else alpha * np.exp(x), rtol=1e-15, atol=1e-300)


def test_elu_with_alpha_zero_is_relu():
    x = jnp.linspace(-3.0, 3.0, 13)
    np.testing.assert_array_equal(act.elu(x, alpha=0.0), act.relu(x))
    assert jax.grad(functools.partial(act.elu, alpha=0.0))(0.0) == 0.0 == jax.grad(act.relu)(0.0)


@parametrize_variants
def test_log_sigmoid_at_zero(variant):
    f = VARIANTS[variant](act.log_sigmoid)
    assert f(jnp.float64(0.0)) == -np.log(2.0)
    assert jax.grad(f)(0.0) == 0.5


@given(finite)
def test_log_sigmoid_is_minus_softplus_of_minus_x_bit_for_bit(x):
    for dtype in (jnp.float32, jnp.float64):
        v = jnp.asarray(x, dtype)
        np.testing.assert_array_equal(act.log_sigmoid(v), -act.softplus(-v))


@given(finite)
def test_log_sigmoid_scipy_and_derivative(x):
    x = jnp.float64(x)
    # float64: within 2.5 ulp (tests/test_ulp.py) against scipy's log_expit
    np.testing.assert_allclose(
        act.log_sigmoid(x), scipy.special.log_expit(float(x)), rtol=1e-15, atol=1e-300
    )
    # the derivative is sigmoid(-x); atol: subnormal results (x > 708) flushed to 0
    np.testing.assert_allclose(
        jax.grad(act.log_sigmoid)(x), scipy.special.expit(-float(x)), rtol=1e-15, atol=1e-300
    )


def test_log_sigmoid_tails_float32():
    """x far below 0 gives x (no log(0)); far above 0, about -exp(-x), not 0."""
    x = jnp.asarray([-1e4, -100.0, 20.0, 50.0], jnp.float32)
    y = act.log_sigmoid(x)
    assert y[0] == -1e4 and y[1] == -100.0
    # float32: within 2.5 ulp, 1e-6 = 8 eps
    np.testing.assert_allclose(y[2:], -np.exp(-np.asarray([20.0, 50.0])), rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize("fn", NEW)
def test_half_precision_is_the_float32_result_rounded(fn, dtype):
    f = _activation(fn)
    x = jnp.linspace(-8.0, 8.0, 33).astype(dtype)
    y = f(x)
    assert y.dtype == dtype
    reference = f(x.astype(jnp.float32))
    if fn in ("log_sigmoid", "leaky_relu"):  # computed in the half format itself
        # a few of its roundings (eps 2**-10 and 2**-7); atol for values near 0
        eps = float(jnp.finfo(dtype).eps)
        np.testing.assert_allclose(
            np.asarray(y, np.float64), np.asarray(reference, np.float64), rtol=4 * eps, atol=1e-3
        )
    else:  # computed in float32 and rounded once
        np.testing.assert_array_equal(y, reference.astype(dtype))


@pytest.mark.parametrize("fn", NEW)
def test_new_activations_keep_only_their_input(fn):
    """The backward recomputes from x: the residual is the argument itself."""
    f = _activation(fn)
    x = jnp.linspace(-3.0, 3.0, 7)
    kept = saved_residuals(f, x)
    assert len(kept) == 1 and kept[0][1].startswith("from the argument"), kept


BAD_HYPERPARAMETERS = [
    (act.elu, {"alpha": -1.0}, r"elu: `alpha` must be a finite number >= 0; got -1.0"),
    (act.elu, {"alpha": float("nan")}, r"elu: `alpha` must be a finite number >= 0; got nan"),
    (act.elu, {"alpha": float("inf")}, r"elu: `alpha` must be a finite number >= 0; got inf"),
    (act.elu, {"alpha": "1"}, r"elu: `alpha` must be a real number; got '1'"),
    (act.elu, {"alpha": True}, r"elu: `alpha` must be a real number; got True"),
    (
        act.leaky_relu,
        {"negative_slope": float("nan")},
        r"leaky_relu: `negative_slope` must be a finite number; got nan",
    ),
    (
        act.leaky_relu,
        {"negative_slope": -float("inf")},
        r"leaky_relu: `negative_slope` must be a finite number; got -inf",
    ),
    (
        act.leaky_relu,
        {"negative_slope": None},
        r"leaky_relu: `negative_slope` must be a real number; got None",
    ),
    (act.gelu, {"approximate": "tanh"}, r"gelu: `approximate` must be True or False; got 'tanh'"),
    (act.gelu, {"approximate": 1}, r"gelu: `approximate` must be True or False; got 1"),
]


@pytest.mark.parametrize("fn, kwargs, message", BAD_HYPERPARAMETERS)
def test_bad_hyperparameters_raise(fn, kwargs, message):
    x = jnp.ones(3)
    for f in (fn, fn.autodiff):
        with pytest.raises(InputError, match=message):
            f(x, **kwargs)


def test_hyperparameters_given_as_arrays_are_checked():
    with pytest.raises(InputError, match=r"elu: `alpha` must be a finite number >= 0; got -2.0"):
        act.elu(jnp.ones(3), alpha=np.float64(-2.0))
    with pytest.raises(InputError, match=r"elu: `alpha` must be a finite number >= 0"):
        act.elu.autodiff(jnp.ones(3), alpha=jnp.asarray(-2.0))


@pytest.mark.parametrize("fn", ["gelu", "silu", "elu", "log_sigmoid", "leaky_relu"])
def test_integer_input_raises(fn):
    with pytest.raises(InputError, match=rf"{fn}: `x` must be a floating array; got shape \(3,\)"):
        getattr(act, fn)(jnp.arange(3))


@pytest.mark.parametrize("fn", NEW)
def test_nan_propagates(fn):
    f = _activation(fn)
    x = jnp.asarray([jnp.nan, -1.0, 1.0])
    y, grads = jax.vmap(jax.value_and_grad(f))(x)
    assert np.isnan(y[0]) and np.isnan(grads[0]) == (fn != "leaky_relu")
    assert np.all(np.isfinite(y[1:]))


def test_gelu_erfc_anchors_are_exact_to_two_words():
    """gelu's erfc starts from erfc(k / 32), computed once in decimal arithmetic: each
    anchor, in two float64 words, is erfc to within an ulp of the second word."""
    hi, lo, gauss = _precise._anchor_tables(np.float64)
    with mpmath.workprec(200):
        for k in range(len(hi)):
            t = mpmath.mpf(k) / 32
            exact = mpmath.erfc(t)
            assert (
                abs(mpmath.mpf(float(hi[k])) + mpmath.mpf(float(lo[k])) - exact)
                <= exact * 2.0**-104
            )
            weight = 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-t * t)
            assert abs(mpmath.mpf(float(gauss[k])) - weight) <= weight * 2.0**-53  # rounded once
