"""Layers: dense, dropout and batch norm beyond the registry's five checks:
dropout's statistics and special rates, batch norm over several steps against
flax, its PyTorch correspondence, and half precision."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import FINITE_DIFF_RTOL, assert_close

from dlref import InputError, gradcheck, layers
from dlref.layers import BatchNormState

f64 = jnp.float64


def test_dense_with_several_batch_axes(key):
    x = jax.random.normal(key, (2, 3, 4), f64)
    w, b = layers.init_dense(key, 4, 5, f64)
    b = b + 0.5
    # float64, sums of 4 products and a bias: a few ulps; the VJPs are the same products
    np.testing.assert_allclose(
        layers.dense(x, w, b), np.einsum("abi,io->abo", x, w) + np.asarray(b), rtol=1e-14
    )
    gradcheck.check_vjp(layers.dense, layers.dense.autodiff, x, w, b, key=key, rtol=1e-12)


# --- dropout -----------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{"rate": 0.0}, {"rate": 0.5, "training": False}])
@pytest.mark.parametrize("variant", ["manual", "autodiff"])
def test_dropout_rate_zero_and_evaluation_are_the_identity(variant, kwargs, key):
    f = layers.dropout if variant == "manual" else layers.dropout.autodiff
    x = jax.random.normal(key, (4, 5), f64)
    np.testing.assert_array_equal(f(x, key=key, **kwargs), x)
    grad = jax.grad(lambda x: jnp.sum(jnp.sin(f(x, key=key, **kwargs))))(x)
    np.testing.assert_allclose(grad, jnp.cos(x), rtol=1e-15)  # cos(x) passed through: an ulp


@pytest.mark.parametrize("variant", ["manual", "autodiff"])
def test_dropout_rate_one_gives_zeros_and_zero_gradients(variant, key):
    f = layers.dropout if variant == "manual" else layers.dropout.autodiff
    x = jax.random.normal(key, (4, 5), f64)
    y, grad = jax.value_and_grad(lambda x: jnp.sum(f(x, rate=1.0, key=key) * x))(x)
    assert y == 0 and np.all(grad == 0) and not np.any(np.isnan(grad))


def test_dropout_same_key_same_mask_and_backward_reuses_it(key):
    x = jax.random.uniform(key, (64, 64), f64, 1, 2)  # non-zero: y == 0 exactly where dropped
    y1 = layers.dropout(x, rate=0.4, key=key)
    np.testing.assert_array_equal(y1, layers.dropout(x, rate=0.4, key=key))
    assert not np.array_equal(y1, layers.dropout(x, rate=0.4, key=jax.random.key(7)))
    grad = jax.grad(lambda x: jnp.sum(layers.dropout(x, rate=0.4, key=key)))(x)
    np.testing.assert_array_equal(grad != 0, y1 != 0)
    np.testing.assert_allclose(grad[y1 != 0], 1 / 0.6, rtol=1e-15)  # 1 - 0.4 is 0.6 to an ulp


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_dropout_statistics_and_flax(rate, key):
    """Kept fraction ~ 1 - rate and the mean preserved, for dlref and for flax's
    Dropout (a different random stream: only statistics can agree). Tolerance:
    5 standard deviations of the binomial fraction over n = 2**20 entries."""
    n = 2**20
    x = jnp.ones((n,), f64)
    mine = layers.dropout(x, rate=rate, key=key)
    theirs = nn.Dropout(rate=rate, deterministic=False).apply({}, x, rngs={"dropout": key})
    sigma = np.sqrt(rate * (1 - rate) / n)
    for y in (mine, theirs):
        kept = float(jnp.mean(y != 0))
        assert abs(kept - (1 - rate)) < 5 * sigma
        # mean(y) = kept / (1 - rate): within 5 sigma / (1 - rate) of 1
        assert abs(float(jnp.mean(y)) - 1) < 5 * sigma / (1 - rate)
        np.testing.assert_allclose(y[y != 0], 1 / (1 - rate), rtol=1e-15)  # one rounding each


def test_dropout_needs_a_key_only_when_it_draws_a_mask():
    x = jnp.ones((2, 3))
    np.testing.assert_array_equal(layers.dropout(x, rate=0.5, training=False), x)
    np.testing.assert_array_equal(layers.dropout(x, rate=0.0), x)
    with pytest.raises(InputError, match=r"dropout: `key` is needed to draw the mask"):
        layers.dropout(x, rate=0.5)


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_dropout_rate_outside_unit_interval_is_an_error(rate, key):
    with pytest.raises(InputError, match=r"dropout: `rate` must lie in \[0.0, 1.0\]"):
        layers.dropout(jnp.ones(3), rate=rate, key=key)


# --- batch norm ----------------------------------------------------------------------


def _flax_batch_norm(x, scale, shift, state, training):
    module = nn.BatchNorm(use_running_average=not training, momentum=0.99, epsilon=1e-5)
    variables = {
        "params": {"scale": scale, "bias": shift},
        "batch_stats": {"mean": state.mean, "var": state.var},
    }
    with jax.numpy_dtype_promotion("standard"):  # flax is not strict-clean
        y, updated = module.apply(variables, x, mutable=["batch_stats"])
    return y, BatchNormState(updated["batch_stats"]["mean"], updated["batch_stats"]["var"])


@pytest.mark.parametrize("shape", [(16, 5), (4, 3, 3, 5)], ids=["dense", "nhwc"])
def test_batch_norm_running_statistics_follow_flax_over_steps(shape, key):
    scale, shift, state = layers.init_batch_norm(5, f64)
    scale, shift = scale * 1.5, shift + 0.3
    ours = theirs = state
    for k in jax.random.split(key, 6):
        x = 3 * jax.random.normal(k, shape, f64) + 2
        y_ours, ours = layers.batch_norm(x, scale, shift, ours, training=True)
        y_theirs, theirs = _flax_batch_norm(x, scale, shift, theirs, training=True)
        # float64: flax's fast variance E[x**2] - E[x]**2 cancels (13 - 4 here): tens of ulps
        assert_close(y_ours, y_theirs, 1e-12)
        assert_close(ours, theirs, 1e-12)
    x = jax.random.normal(key, shape, f64)
    y_eval, same = layers.batch_norm(x, scale, shift, ours, training=False)
    assert_close(y_eval, _flax_batch_norm(x, scale, shift, theirs, training=False)[0], 1e-12)
    assert same is ours or jax.tree.all(
        jax.tree.map(lambda a, b: bool(jnp.all(a == b)), same, ours)
    )


def test_batch_norm_momentum_is_pytorchs_complement_and_pytorch_var_is_unbiased(key):
    """PyTorch's BatchNorm1d update (written from its documentation):
    r_mean <- (1 - 0.1) r_mean + 0.1 mean; r_var <- (1 - 0.1) r_var + 0.1 var_unbiased.
    dlref with momentum 0.9 gives the same mean and the biased variance."""
    x = jax.random.normal(key, (8, 3), f64) * 2 + 1
    state = BatchNormState(jnp.full((3,), 0.5, f64), jnp.full((3,), 2.0, f64))
    _, new = layers.batch_norm(x, jnp.ones(3, f64), jnp.zeros(3, f64), state, momentum=0.9)
    n = x.shape[0]
    torch_mean = 0.9 * state.mean + 0.1 * x.mean(0)
    torch_var = 0.9 * state.var + 0.1 * x.var(0, ddof=1)
    # float64: the same updates, with dlref's 1 - 0.9 for the literal 0.1: a few ulps
    np.testing.assert_allclose(new.mean, torch_mean, rtol=1e-14)
    np.testing.assert_allclose(new.var, 0.9 * state.var + 0.1 * x.var(0), rtol=1e-14)
    # the difference (~0.06) cancels variances of ~2: their few ulps, amplified ~35-fold
    np.testing.assert_allclose(torch_var - new.var, 0.1 * x.var(0) / (n - 1), rtol=1e-12)


def test_batch_norm_closed_form_backward_with_random_cotangent(key):
    """An all-ones cotangent hides a wrong batch-norm backward (sum(dy) terms
    cancel); random cotangents and a non-zero shift do not."""
    x = jax.random.normal(key, (32, 4), f64) * 3 + 1
    scale, shift = jnp.asarray([0.5, 2.0, -1.0, 1.5], f64), jnp.asarray([0.1, -0.2, 0.3, 1.0], f64)
    state = BatchNormState(jnp.zeros(4, f64), jnp.ones(4, f64))
    fn = lambda *a: layers.batch_norm(*a)[0]
    # float64, the closed form against autodiff: sums over 32 rows in another order
    gradcheck.check_vjp(
        fn,
        lambda *a: layers.batch_norm.autodiff(*a)[0],
        x,
        scale,
        shift,
        state,
        key=key,
        argnums=(0, 1, 2),
        rtol=1e-12,
    )
    cotangent = jax.random.normal(jax.random.key(1), x.shape, f64)  # not x's key
    loss = lambda x: jnp.vdot(cotangent, fn(x, scale, shift, state))
    gradcheck.check_grad(loss, x, rtol=FINITE_DIFF_RTOL)
    # the gradient of x sums to 0 per feature: the output ignores a shift of x (atol: exactly
    # 0 in exact arithmetic; 32 float64 terms of order 1 leave ~1e-15)
    np.testing.assert_allclose(jnp.sum(jax.grad(loss)(x), axis=0), 0, atol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_batch_norm_half_precision_constant_feature(dtype, key):
    """A constant feature (a dead unit) has variance 0; in float16 eps = 1e-5 is a
    subnormal that XLA flushes to 0: batch norm computes in float32 instead."""
    x = jax.random.normal(key, (16, 3)).astype(dtype).at[:, 1].set(2.0)
    scale, shift, state = layers.init_batch_norm(3, dtype)
    y, new = layers.batch_norm(x, scale, shift, state)
    grad = jax.grad(lambda x: jnp.sum(layers.batch_norm(x, scale, shift, state)[0] * x))(x)
    assert y.dtype == dtype and new.mean.dtype == dtype and grad.dtype == dtype
    assert jnp.all(jnp.isfinite(y)) and jnp.all(jnp.isfinite(grad))
    np.testing.assert_array_equal(y[:, 1], 0)


def test_layer_errors_name_the_argument():
    x = jnp.ones((4, 3))
    with pytest.raises(InputError, match=r"dense: `w` must have shape \(3, None\)"):
        layers.dense(x, jnp.ones((2, 5)), jnp.ones(5))
    with pytest.raises(InputError, match=r"dense: `b` must have shape \(5,\)"):
        layers.dense(x, jnp.ones((3, 5)), jnp.ones(4))
    scale, shift, state = layers.init_batch_norm(3, f64)
    with pytest.raises(InputError, match=r"batch_norm: `scale` must have shape \(3,\)"):
        layers.batch_norm(x, jnp.ones(2), shift, state)
    with pytest.raises(InputError, match=r"batch_norm: `x` must have at least 2 axis"):
        layers.batch_norm(jnp.ones(3), scale, shift, state)
