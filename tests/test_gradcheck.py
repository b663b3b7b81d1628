"""The gradient checker catches wrong gradients and passes right ones."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlref import InputError, gradcheck


def test_numerical_grad_of_known_function_over_a_pytree():
    params = {"a": jnp.linspace(-1, 1, 5, dtype=jnp.float64), "b": jnp.float64(0.3)}

    def f(p, scale):
        return scale * (jnp.sum(jnp.sin(p["a"])) + p["b"] ** 3)

    grad = gradcheck.numerical_grad(f, params, 2.0)
    # central differences in float64, h ~ eps**(1/3) ~ 6e-6: truncation ~h**2 and rounding
    # ~eps/h give ~1e-10 relative (f is linear in `scale`: rounding only)
    np.testing.assert_allclose(grad["a"], 2 * np.cos(params["a"]), rtol=1e-9)
    np.testing.assert_allclose(grad["b"], 6 * 0.3**2, rtol=1e-9)
    both = gradcheck.numerical_grad(f, params, jnp.float64(2.0), argnums=(0, 1))
    np.testing.assert_allclose(both[1], f(params, 1.0), rtol=1e-9)


def test_check_grad_catches_a_wrong_backward():
    @jax.custom_vjp
    def wrong_square(x):
        return x**2

    wrong_square.defvjp(lambda x: (x**2, x), lambda x, dy: (dy * x,))  # should be 2x
    x = jnp.linspace(0.5, 2, 4, dtype=jnp.float64)
    with pytest.raises(AssertionError, match="gradient vs finite differences"):
        gradcheck.check_grad(lambda x: wrong_square(x).sum(), x)
    with pytest.raises(AssertionError, match="outputs and cotangents differ"):
        gradcheck.check_vjp(wrong_square, lambda x: x**2, x, key=jax.random.key(0))
    # a quadratic: no truncation error, only the rounding eps * |f| / h ~ 1e-10
    assert gradcheck.check_grad(lambda x: jnp.sum(x**2), x).max_rel < 1e-9


def test_compare_reports_exact_close_and_nan():
    a = {"x": jnp.asarray([1.0, 2.0])}
    assert gradcheck.compare(a, a).exact and str(gradcheck.compare(a, a)) == "exact"
    close = gradcheck.compare({"x": jnp.asarray([1.0, 2.0 + 1e-12])}, a)
    # 2.0 + 1e-12 rounds by up to half an ulp of 2 (2.2e-16): 2.2e-4 of the 1e-12
    assert not close.exact and close.max_rel == pytest.approx(5e-13, rel=1e-3)
    assert "max rel" in str(close)
    assert gradcheck.compare({"x": jnp.asarray([jnp.nan, 2.0])}, a).max_rel == float("inf")
    inf = {"x": jnp.asarray([jnp.inf, 2.0])}
    assert gradcheck.compare(inf, inf).exact
    with pytest.raises(InputError, match="structures differ"):
        gradcheck.compare(a, {"y": a["x"]})


def test_compare_is_normwise_per_leaf():
    """A large leaf does not hide an error in a small one."""
    expected = {"big": jnp.asarray([1e6]), "small": jnp.asarray([1e-3])}
    actual = {"big": jnp.asarray([1e6]), "small": jnp.asarray([2e-3])}
    assert gradcheck.compare(actual, expected).max_rel == pytest.approx(1.0)
