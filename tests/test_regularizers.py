"""Regularizers: the conventions, the L1 subgradient, and exact zeros from the prox."""

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import VARIANTS
from hypothesis import given
from hypothesis.extra.numpy import arrays

import dlref
from dlref import regularizers as reg

# XLA flushes subnormal numbers to zero (sign(1e-310) is 0 there): draw normal ones.
vectors = arrays(np.float64, (6,), elements=st.floats(-100, 100, allow_subnormal=False))


@given(vectors, vectors)
def test_conventions_over_a_pytree(w, b):
    params = {"layer": {"w": jnp.asarray(w)}, "b": jnp.asarray(b)}
    # float64 sums of 12 non-negative terms in another order: a few ulps (1e-14 = 45 eps)
    np.testing.assert_allclose(reg.l1(params), np.abs(w).sum() + np.abs(b).sum(), rtol=1e-14)
    expected = 0.5 * ((w**2).sum() + (b**2).sum())
    np.testing.assert_allclose(reg.l2(params), expected, rtol=1e-14, atol=1e-300)  # w**2 may flush
    grads = jax.grad(reg.l2)(params)  # the 1/2 makes the gradient the weights themselves
    np.testing.assert_array_equal(grads["layer"]["w"], w)
    np.testing.assert_array_equal(jax.grad(reg.l1)(params)["b"], np.sign(b))


@pytest.mark.parametrize("variant", VARIANTS)
def test_l1_subgradient_zero_at_zero(variant):
    w = jnp.asarray([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(jax.grad(VARIANTS[variant](reg.l1))(w), [-1.0, 0.0, 1.0])


@given(vectors, st.floats(0, 50))
def test_l1_prox_is_soft_thresholding(w, t):
    out = reg.l1_prox({"w": jnp.asarray(w)}, threshold=t)["w"]
    # one subtraction each side, exact where |w| and t are close: an ulp at most
    np.testing.assert_allclose(out, np.sign(w) * np.maximum(np.abs(w) - t, 0), rtol=1e-15)
    assert np.all(out[np.abs(w) <= t] == 0)  # exact zeros


@given(vectors, st.floats(0.01, 10))
def test_l1_prox_minimizes_its_objective(w, t):
    """prox(w) = argmin_v 0.5 (v - w)^2 + t |v|: no nearby point does better."""
    v = reg.l1_prox(jnp.asarray(w), threshold=t)

    def objective(v):
        return 0.5 * (v - w) ** 2 + t * np.abs(v)

    # 1e-12: round-off of objectives up to ~1e3 (~2e-13), far below the rise of at least
    # 0.5 * delta**2 = 5e-7 a step away brings
    for delta in (-1e-3, 1e-3):
        assert np.all(objective(np.asarray(v)) <= objective(np.asarray(v) + delta) + 1e-12)


def test_l1_prox_equals_optax_style_decay_is_not_sparse(key):
    """L2 shrinks but gives no exact zeros; the L1 prox does (the cheat sheet's claim)."""
    w = jax.random.normal(key, (1000,), jnp.float64)
    shrunk_l2 = w - 0.3 * jax.grad(reg.l2)(w)
    assert jnp.sum(shrunk_l2 == 0) == 0
    assert jnp.sum(reg.l1_prox(w, threshold=0.3) == 0) > 200
    updates, _ = optax.add_decayed_weights(0.3).update(jnp.zeros_like(w), None, w)
    # 0.3 * w on both sides: the same rounding
    np.testing.assert_allclose(updates, jax.grad(reg.l2)(w) * 0.3, rtol=1e-15)


def test_mixed_dtype_leaves_sum_in_the_widest():
    params = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2, jnp.float32)}
    assert reg.l1(params).dtype == jnp.float32
    grads = jax.grad(reg.l2)(params)
    assert grads["a"].dtype == jnp.bfloat16 and grads["b"].dtype == jnp.float32


def test_l1_prox_threshold_gradient_equals_autodiff():
    """A threshold given as an array is differentiable: d/dt = -sum(sign(w) dy) over
    the entries not set to 0 (0 for a negative threshold, clipped to 0 under jit)."""
    key = jax.random.key(3)
    w = {"a": jax.random.normal(key, (5,), jnp.float64), "b": jnp.array([3.0, -0.1])}
    dy = jax.tree.map(lambda v: jax.random.normal(jax.random.key(4), v.shape, v.dtype), w)

    def loss(t, prox):
        out = prox(w, threshold=t)
        return sum(
            jnp.sum(o * d) for o, d in zip(jax.tree.leaves(out), jax.tree.leaves(dy), strict=True)
        )

    for t in (0.5, -0.2):
        hand = jax.jit(jax.grad(loss), static_argnums=1)(jnp.float64(t), reg.l1_prox)
        plain = jax.grad(loss)(jnp.float64(max(t, 0.0)), reg.l1_prox.autodiff)
        expected = plain if t >= 0 else 0.0
        np.testing.assert_allclose(hand, expected, rtol=1e-12)
    assert hand.dtype == jnp.float64


def test_l1_prox_traced_threshold_must_be_a_real_scalar():
    """Under jit the threshold's value is unknown, but its shape and dtype are checked:
    a (1,) threshold once broadcast silently."""
    prox = jax.jit(lambda t: reg.l1_prox(jnp.ones((3, 5)), threshold=t))
    with pytest.raises(
        dlref.InputError, match=r"l1_prox: `threshold` must be a real scalar; got shape \(1,\)"
    ):
        prox(jnp.array([0.25]))
    with pytest.raises(dlref.InputError, match="l1_prox: `threshold` must be a real scalar"):
        prox(jnp.array(True))
    np.testing.assert_array_equal(prox(jnp.array(0.25)), jnp.full((3, 5), 0.75))
