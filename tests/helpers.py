"""Shared test helpers: the one tolerance table, and losses through an op."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

from dlref import gradcheck

# Hand-written backward vs JAX autodiff of the same forward (float64): both are
# exact formulas, so they agree to a few ulps; 1e-10 leaves room for sums.
BACKWARD_RTOL = 1e-10
# Second derivatives through the hand-written backward vs autodiff (float64):
# the two differentiate different (equal) expressions, so rounding differs more.
SECOND_ORDER_RTOL = 1e-9
# Central differences in float64: truncation ~h^2 and rounding ~eps/h with
# h ~ 6e-6 give about 1e-10 relative; 1e-6 allows for large third derivatives.
FINITE_DIFF_RTOL = 1e-6
# Forward vs an independent implementation: a few ulps of each dtype.
PEER_RTOL = {jnp.float64: 1e-12, jnp.float32: 1e-5}
# jit vs eager: XLA may fuse and reorder, float64.
JIT_RTOL = 1e-12

# conftest.py compiles the suite at LLVM optimization level 0 (faster to compile;
# the last bit of a result may differ where the default level contracts a multiply
# and an add into one fused operation). The accuracy tests, whose bounds are in
# ulps, compile at XLA's default level, 3, so the bounds hold for a default build:
# jax.jit(f, compiler_options=DEFAULT_LEVEL).
DEFAULT_LEVEL = {"xla_backend_optimization_level": 3}

# The two variants of every op: the public one (hand-written backward) and the
# same forward differentiated by JAX.
VARIANTS = {"manual": lambda f: f, "autodiff": lambda f: f.autodiff}

FLOAT_DTYPES = [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64]
NUMPY_DTYPES = {
    jnp.float16: np.float16,
    jnp.bfloat16: ml_dtypes.bfloat16,
    jnp.float32: np.float32,
    jnp.float64: np.float64,
}


def assert_close(actual, expected, rtol, what=""):
    result = gradcheck.compare(actual, expected)
    assert result.within(rtol), f"{what}: {result} > rtol {rtol}"
    return result


def tree_vdot(a, b):
    """Inner product of two pytrees of one structure."""
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def cotangent_loss(fn, cotangent):
    """``args -> sum(cotangent * fn(args))``: a scalar loss with a fixed random
    upstream gradient (an all-ones one hides errors that cancel in a sum)."""

    return lambda *args: tree_vdot(cotangent, fn(*args))


def random_cotangent(key, fn, args):
    return gradcheck.random_like(key, jax.eval_shape(fn, *args))
