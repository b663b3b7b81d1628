"""Activations: sigmoid, relu, tanh, softplus, softmax, log_softmax.

Each is an :func:`~dlref._op.op`: calling it runs the forward written here, and
``jax.grad`` runs the hand-written backward beneath it. ``f.autodiff`` is the
same forward differentiated by JAX (use it for forward mode).

Kinks follow one convention: a branch is chosen with ``x > 0``, so the slope at
exactly 0 is the slope of the left branch (relu'(0) = 0), and ``-|x|`` is
written ``where(x > 0, -x, x)`` so that autodiff sees the same branch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dlref import _checks
from dlref._numerics import exp_sum, log_normalizer, neg_abs, row_max, sigmoid_from_exp
from dlref._op import op

__all__ = ["sigmoid", "relu", "tanh", "softplus", "softmax", "log_softmax"]


# --- sigmoid -----------------------------------------------------------------


@op
def sigmoid(x: jax.Array) -> jax.Array:
    """Logistic sigmoid, elementwise: ``sigmoid(x) = 1 / (1 + exp(-x))``, in [0, 1].

    Derivative: ``sigmoid'(x) = sigmoid(x) * (1 - sigmoid(x))``, at most 1/4 (at 0).

    Args:
      x: floating array of any shape.

    Returns:
      An array of the shape and dtype of ``x``.

    Numerics: computed by XLA's ``logistic`` primitive, which is stable in both
    tails: no overflow, and neither the value nor any gradient is NaN for a finite
    x (the textbook ``1 / (1 + exp(-x))`` overflows below about -88 in float32 and
    its autodiff gradient is NaN there). In float64 it matches
    ``scipy.special.expit`` to the last ulp down to x = -700. The value rounds to
    exactly 0 or 1 in the far tails, where the gradient is 0.
    """
    _checks.floating("sigmoid", x=x)
    return jax.lax.logistic(x)


def _sigmoid_fwd(x):
    y = sigmoid.autodiff(x)
    return y, (y,)


def _sigmoid_bwd(res, dy):
    (y,) = res
    return (dy * (y * (1 - y)),)


sigmoid.defvjp(_sigmoid_fwd, _sigmoid_bwd)


# --- relu --------------------------------------------------------------------


@op
def relu(x: jax.Array) -> jax.Array:
    """Rectified linear unit, elementwise: ``relu(x) = x if x > 0 else 0``, in [0, inf).

    Derivative: 1 for x > 0, 0 for x < 0, and by convention 0 at x = 0 (as
    ``jax.nn.relu``; ``jnp.maximum(x, 0)`` would give 1/2 under autodiff).

    Args:
      x: floating array of any shape.

    Returns:
      An array of the shape and dtype of ``x``; ``relu(NaN)`` is NaN (as
      ``jax.nn.relu``), and so is its gradient: a NaN is never hidden as 0.
    """
    _checks.floating("relu", x=x)
    return jnp.where(x <= 0, 0, x)  # NaN fails the test and passes through


def _relu_fwd(x):
    y = relu.autodiff(x)
    return y, (y,)


def _relu_bwd(res, dy):
    (y,) = res  # y <= 0 exactly where x <= 0 (y is NaN where x is)
    return (jnp.where(y <= 0, 0, dy),)


relu.defvjp(_relu_fwd, _relu_bwd)


# --- tanh --------------------------------------------------------------------


@op
def tanh(x: jax.Array) -> jax.Array:
    """Hyperbolic tangent, elementwise: ``tanh(x) = (e^x - e^-x) / (e^x + e^-x)``, in [-1, 1].

    Equal to ``2 * sigmoid(2x) - 1``: a sigmoid rescaled to be zero-centred.

    Derivative: ``tanh'(x) = 1 - tanh(x)**2``, largest at 0 where it is 1 (four
    times sigmoid'(0) = 1/4).

    Args:
      x: floating array of any shape.

    Returns:
      An array of the shape and dtype of ``x``.

    Numerics: XLA's tanh saturates to exactly +-1 for large |x|, where the
    gradient is 0; no exp is formed, so nothing overflows.
    """
    _checks.floating("tanh", x=x)
    return jnp.tanh(x)


def _tanh_fwd(x):
    y = tanh.autodiff(x)
    return y, (y,)


def _tanh_bwd(res, dy):
    (y,) = res
    return (dy * (1 - y * y),)


tanh.defvjp(_tanh_fwd, _tanh_bwd)


# --- softplus ----------------------------------------------------------------


@op
def softplus(x: jax.Array) -> jax.Array:
    """Softplus, elementwise: ``softplus(x) = log(1 + exp(x))``, in (0, inf).

    A smooth relu; Hinton's sum of shifted sigmoids approximates it.

    Derivative: ``softplus'(x) = sigmoid(x)``, formed from the forward's own
    ``exp(-|x|)``.

    Args:
      x: floating array of any shape.

    Returns:
      An array of the shape and dtype of ``x``.

    Numerics: computed as ``relu(x) + log1p(exp(-|x|))``; the exp is of a
    non-positive number and never overflows, and log1p keeps precision where
    exp(-|x|) is tiny.
    """
    _checks.floating("softplus", x=x)
    return jnp.where(x > 0, x, 0) + jnp.log1p(jnp.exp(neg_abs(x)))


def _softplus_fwd(x):
    return softplus.autodiff(x), (x,)


def _softplus_bwd(res, dy):
    (x,) = res
    return (dy * sigmoid_from_exp(x),)


softplus.defvjp(_softplus_fwd, _softplus_bwd)


# --- softmax -----------------------------------------------------------------


def _shifted(fn: str, x, axis: int):
    """``x - max(x)`` along ``axis``; the max is a constant to autodiff."""
    _checks.floating(fn, x=x)
    _checks.min_rank(fn, "x", x, 1, "the axis to normalize over")
    return x - row_max(x, axis)


@op
def softmax(x: jax.Array, axis: int = -1) -> jax.Array:
    """Softmax along ``axis``: ``softmax(x)_i = exp(x_i) / sum_j exp(x_j)``.

    Each slice along ``axis`` is a probability distribution (non-negative, sums
    to 1), unchanged by adding a constant to ``x``.

    Derivative (vector-Jacobian product): ``dx = y * (dy - sum(dy * y))``, where
    ``y = softmax(x)`` and the sum runs along ``axis``.

    Args:
      x: floating array with at least one axis.
      axis: the axis to normalize over.

    Returns:
      An array of the shape and dtype of ``x``.

    Numerics: the row maximum is subtracted first (a constant to autodiff, via
    ``stop_gradient``; softmax does not change), so every exponent is <= 0 and
    nothing overflows for large logits. Masked entries set to ``-inf`` get
    probability 0 and gradient 0, with no NaN, as long as one entry of the slice
    is finite (a slice of all ``-inf`` is NaN, as in jax.nn).
    """
    e = jnp.exp(_shifted("softmax", x, axis))
    return e / jnp.sum(e, axis=axis, keepdims=True)


def _softmax_fwd(x, *, axis=-1):
    y = softmax.autodiff(x, axis=axis)
    return y, (y,)


def _softmax_bwd(res, dy, *, axis=-1):
    (y,) = res
    return (y * (dy - jnp.sum(dy * y, axis=axis, keepdims=True)),)


softmax.defvjp(_softmax_fwd, _softmax_bwd)


# --- log_softmax -------------------------------------------------------------


@op
def log_softmax(x: jax.Array, axis: int = -1) -> jax.Array:
    """Log-softmax along ``axis``: ``log_softmax(x)_i = x_i - log(sum_j exp(x_j))``.

    Derivative (vector-Jacobian product): ``dx = dy - softmax(x) * sum(dy)``, the
    sum along ``axis``; softmax is formed from the forward's exponentials.

    Args:
      x: floating array with at least one axis.
      axis: the axis to normalize over.

    Returns:
      An array of the shape and dtype of ``x``, all entries <= 0.

    Numerics: the row maximum is subtracted first (``stop_gradient``), so the
    log-sum-exp is of numbers <= 0 and its argument is in [1, n]: no overflow and
    no log(0). Computing ``log(softmax(x))`` instead would give -inf where the
    softmax underflows. Masked ``-inf`` entries give ``-inf`` and a gradient of
    0, with no NaN, while one entry of the slice is finite.
    """
    _checks.floating("log_softmax", x=x)
    _checks.min_rank("log_softmax", "x", x, 1, "the axis to normalize over")
    top, log_sum = log_normalizer(x, axis)
    return (x - top) - log_sum


def _log_softmax_fwd(x, *, axis=-1):
    top, _ = log_normalizer(x, axis)
    return log_softmax.autodiff(x, axis=axis), (x, top, exp_sum(x, top, axis))


def _log_softmax_bwd(res, dy, *, axis=-1):
    x, top, exp_sum = res
    probs = jnp.exp(x - top) / exp_sum  # the forward's exponentials
    return (dy - probs * jnp.sum(dy, axis=axis, keepdims=True),)


log_softmax.defvjp(_log_softmax_fwd, _log_softmax_bwd)
