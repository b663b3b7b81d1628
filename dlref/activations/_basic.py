"""The sigmoid family (sigmoid, log_sigmoid, softplus), relu, tanh, softmax and
log_softmax."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dlref import _checks
from dlref._numerics import (
    exp_sum,
    log_normalizer,
    neg_abs,
    row_max,
    shifted_exp,
    sigmoid_from_exp,
)
from dlref._op import op
from dlref._words import accurate, sigmoid_words, softmax_words, softplus_tail
from dlref.activations._precise import tanh_words

__all__ = ["sigmoid", "log_sigmoid", "relu", "tanh", "softplus", "softmax", "log_softmax"]


# --- sigmoid -----------------------------------------------------------------


@op
def sigmoid(x: jax.Array) -> jax.Array:
    """Logistic sigmoid, elementwise: ``sigmoid(x) = 1 / (1 + exp(-x))``, in [0, 1].

    Derivative: ``sigmoid'(x) = sigmoid(x) * (1 - sigmoid(x))``, at most 1/4 (at 0),
    computed as ``e / (1 + e * (2 + e))`` with ``e = exp(-|x|)``.

    Args:
      x: floating array of any shape.

    Returns:
      An array of the shape and dtype of ``x``.

    Numerics: ``1 / (1 + e)`` for x > 0 and ``e / (1 + e)`` otherwise, ``e =
    exp(-|x|)``: the exp is of a non-positive number, so nothing overflows and
    neither the value nor any gradient is NaN for a finite x (the textbook ``1 /
    (1 + exp(-x))`` overflows below about -88 in float32 and its autodiff gradient
    is NaN there). ``e`` is computed in two words (about twice the dtype's
    precision; XLA's exp is off by up to 1.3 ulp) and the quotient is corrected
    by its exact residual, so the value is within 0.5 ulp (0.50 the worst
    measured in float32 and float64; tests/test_ulp.py asserts 2). Autodiff
    differentiates XLA's ``logistic``, whose value it replaces. The value rounds
    to exactly 0 or 1 in the far tails. The gradient keeps ``x``, not the value:
    ``y * (1 - y)`` loses every digit of ``1 - y`` once y rounds to near 1
    (x = 17 in float32 gives 0 for 4e-8), while ``e / (1 + e)**2`` is within 4
    ulp in both tails, the square expanded as ``1 + e * (2 + e)`` so that only
    one sum with 1 rounds (3.1 ulp measured over 160,000 points, 4.2 unexpanded;
    tests/test_ulp.py).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import activations
      >>> activations.sigmoid(jnp.array([-200.0, 0.0, 200.0]))  # saturates, no overflow
      Array([0. , 0.5, 1. ], dtype=float32)
      >>> print(jax.grad(activations.sigmoid)(0.0))  # the largest slope, 1/4
      0.25
    """
    _checks.floating("sigmoid", x=x)
    return accurate(sigmoid_words, jax.lax.logistic, x)


def _sigmoid_fwd(x):
    return sigmoid.autodiff(x), (x,)


def _sigmoid_bwd(res, dy):
    (x,) = res
    e = jnp.exp(neg_abs(x))  # sigmoid'(x) = sigmoid(|x|) sigmoid(-|x|) = e / (1 + e)**2
    return (dy * (e / (1 + e * (2 + e))),)


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
      ``jax.nn.relu``: a NaN is never hidden as 0), and its gradient there is
      the upstream gradient (the identity branch; jax.nn gives 0).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import activations
      >>> activations.relu(jnp.array([-1.0, 0.0, 2.0]))
      Array([0., 0., 2.], dtype=float32)
      >>> print(jax.grad(activations.relu)(0.0))  # relu'(0) = 0
      0.0

    References:
      Nair and Hinton, Rectified linear units improve restricted Boltzmann
      machines, ICML 2010.

      Bertoin, Bolte, Gerchinovitz and Pauwels, Numerical influence of ReLU'(0)
      on backpropagation, NeurIPS 2021: the case for relu'(0) = 0.
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
    times sigmoid'(0) = 1/4), computed as ``4 e / (1 + e * (2 + e))`` with
    ``e = exp(-2|x|)``.

    Args:
      x: floating array of any shape.

    Returns:
      An array of the shape and dtype of ``x``.

    Numerics: below ``|x| = 0.55`` the odd Taylor series ``x + x z P(z)``, ``z =
    x**2``, its coefficients ``4**n (4**n - 1) B_2n / (2n)!`` from the exact
    Bernoulli numbers (11 terms in float32, 21 in float64; the correction is
    under a tenth of the result); above, ``sign(x) (1 - e) / (1 + e)``, ``e =
    exp(-2|x|)`` in two words, the quotient corrected. It saturates to exactly
    +-1 for large |x|, and nothing overflows. The value is within 1 ulp (0.57
    in float32 and 0.61 in float64 the worst measured; tests/test_ulp.py asserts
    2; XLA's tanh is off by up to 4.03 and 6.92). Autodiff differentiates
    ``jnp.tanh``, whose value it replaces. The
    gradient keeps ``x``, not the value: ``1 - y**2`` loses every digit once y
    rounds to near +-1 (x = 9 in float32 gives 0 for 6e-8), while
    ``4 e / (1 + e)**2`` (the square expanded, as for sigmoid) is within 4 ulp
    for every x (3.5 measured over 160,000 points).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import activations
      >>> activations.tanh(jnp.array([-200.0, 0.0, 200.0]))  # saturates at +-1
      Array([-1.,  0.,  1.], dtype=float32)
      >>> print(jax.grad(activations.tanh)(0.0))  # four times sigmoid'(0)
      1.0
    """
    _checks.floating("tanh", x=x)
    return accurate(tanh_words, jnp.tanh, x)


def _tanh_fwd(x):
    return tanh.autodiff(x), (x,)


def _tanh_bwd(res, dy):
    (x,) = res
    e = jnp.exp(2 * neg_abs(x))  # 1 - tanh(x)**2 = 4 e / (1 + e)**2
    return (dy * (4 * e / (1 + e * (2 + e))),)


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
    exp(-|x|) is tiny (dlref's own log1p: XLA's is off by 2.3 ulp in float32).
    The exp is taken in two words, ``e_hi + e_lo``, and ``log1p(e) = log1p(e_hi)
    + e_lo / (1 + e_hi)``, so the value is within 2 ulp (1.51 in float32 and
    1.58 in float64 the worst measured; tests/test_ulp.py).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import activations
      >>> x = jnp.array([-200.0, 0.0, 200.0])
      >>> activations.softplus(x)  # 0, log(2), x: no overflow
      Array([  0.       ,   0.6931472, 200.       ], dtype=float32)
      >>> print(jax.grad(activations.softplus)(0.0))  # softplus' = sigmoid
      0.5
      >>> x = jnp.linspace(-3.0, 3.0, 7)  # Hinton's sum of shifted sigmoids
      >>> approx = sum(activations.sigmoid(x - i + 0.5) for i in range(1, 100))
      >>> bool(jnp.all(jnp.abs(approx - activations.softplus(x)) < 0.02))
      True

    References:
      Dugas, Bengio, Belisle, Nadeau and Garcia, Incorporating second-order
      functional knowledge for better option pricing, NIPS 13 (2001).

      Nair and Hinton, Rectified linear units improve restricted Boltzmann
      machines, ICML 2010: ``sum_{i>=1} sigmoid(x - i + 0.5)`` approximates
      ``softplus(x)``.
    """
    _checks.floating("softplus", x=x)
    return jnp.where(x > 0, x, 0) + softplus_tail(x)


def _softplus_fwd(x):
    return softplus.autodiff(x), (x,)


def _softplus_bwd(res, dy):
    (x,) = res
    return (dy * sigmoid_from_exp(x),)


softplus.defvjp(_softplus_fwd, _softplus_bwd)


# --- log_sigmoid -------------------------------------------------------------


@op
def log_sigmoid(x: jax.Array) -> jax.Array:
    """Log-sigmoid, elementwise: ``log_sigmoid(x) = log(sigmoid(x)) = -softplus(-x)``, in (-inf, 0).

    The log-likelihood of a positive label given a logit: binary cross-entropy
    with logits is ``-log_sigmoid(z)`` for t = 1 and ``-log_sigmoid(-z)`` for t = 0.

    Derivative: ``log_sigmoid'(x) = sigmoid(-x) = 1 - sigmoid(x)``, in (0, 1),
    1/2 at 0, formed from the forward's own ``exp(-|x|)``.

    Args:
      x: floating array of any shape.

    Returns:
      An array of the shape and dtype of ``x``.

    Numerics: computed as ``min(x, 0) - log1p(exp(-|x|))`` (softplus's form,
    mirrored): the exp is of a non-positive number and never overflows, so the
    value is ``x`` to within rounding far below 0 (no ``log(0) = -inf`` where the
    sigmoid underflows) and keeps its tiny size, about ``-exp(-x)``, far above 0
    (``log(sigmoid(x))`` rounds to 0 from x = 17 in float32). XLA's exp followed
    by dlref's log1p leaves the value within 2 ulp (softplus's form; 1.72 the
    worst measured; tests/test_ulp.py). The
    gradient ``sigmoid(-x)`` is ``e / (1 + e)`` or ``1 / (1 + e)``, ``e =
    exp(-|x|)``: no ``1 - sigmoid(x)`` cancellation.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import activations
      >>> activations.log_sigmoid(jnp.array([-200.0, 0.0, 20.0]))  # x, -log 2, -exp(-20)
      Array([-2.0000000e+02, -6.9314718e-01, -2.0611537e-09], dtype=float32)
      >>> print(jax.grad(activations.log_sigmoid)(0.0))  # sigmoid(-0)
      0.5
    """
    _checks.floating("log_sigmoid", x=x)
    return jnp.where(x > 0, 0, x) - softplus_tail(x)


def _log_sigmoid_fwd(x):
    return log_sigmoid.autodiff(x), (x,)


def _log_sigmoid_bwd(res, dy):
    (x,) = res
    return (dy * sigmoid_from_exp(-x),)


log_sigmoid.defvjp(_log_sigmoid_fwd, _log_sigmoid_bwd)


# --- softmax -----------------------------------------------------------------


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
    nothing overflows for large logits. ``x - max`` rounds where the two differ
    in magnitude, and exp would multiply that rounding error by ``|x - max|``
    (up to 2**9 ulp in float64); its exact remainder is carried into the
    exponential, which is computed in two words (XLA's exp is off by up to 1.3
    ulp). The row sum is a pairwise tree of exact two-word additions, and the
    quotient is corrected by its exact residual, so each probability is within
    0.5 ulp (0.50 the worst measured in float32 and float64; the plain ``e /
    sum(e)`` was off by 3.01). Autodiff differentiates the plain form, whose
    value it replaces. The gradient is a difference that is 0 for a constant
    ``dy``: it is within 4 ulp of the size of its terms, ``y * (|dy| +
    sum(|dy| * y))`` (1.99 the worst measured; tests/test_ulp.py). Masked
    entries set to ``-inf`` get probability 0 and gradient 0, with no
    NaN, as long as one entry of the slice is finite (a slice of all ``-inf`` is
    NaN, as in jax.nn).

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import activations
      >>> x = jnp.log(jnp.array([[1.0, 3.0], [1.0, 1.0]]))
      >>> activations.softmax(x).round(4)  # each row sums to 1
      Array([[0.25, 0.75],
             [0.5 , 0.5 ]], dtype=float32)
      >>> activations.softmax(x, 0).round(4)  # the axis, positionally: each column
      Array([[0.5 , 0.75],
             [0.5 , 0.25]], dtype=float32)

    References:
      Bridle, Probabilistic interpretation of feedforward classification
      network outputs, with relationships to statistical pattern recognition,
      in Neurocomputing, Springer (1990): the name and the normalized exponential.
    """
    _checks.floating("softmax", x=x)
    _checks.min_rank("softmax", "x", x, 1, "the axis to normalize over")

    def plain(w):
        e = shifted_exp(w, row_max(w, axis))
        return e / jnp.sum(e, axis=axis, keepdims=True)

    return accurate(lambda w: softmax_words(w, row_max(w, axis), axis), plain, x)


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
    no log(0). The log of that sum is taken as ``log1p`` of its terms after one
    maximal entry, so a confident maximum keeps its small log-probability
    (``log`` of the rounded sum gives 0 for -4e-8 in float32). Computing
    ``log(softmax(x))`` instead would give -inf where the softmax underflows.
    Masked ``-inf`` entries give ``-inf``, with no NaN, while one entry of the
    slice is finite; their gradient is the cotangent itself, ``dx_i = dy_i``
    (the true derivative: softmax is 0 there), not 0.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import activations
      >>> activations.log_softmax(jnp.array([0.0, 0.0]))  # log(1/2)
      Array([-0.6931472, -0.6931472], dtype=float32)
      >>> activations.log_softmax(jnp.array([0.0, -jnp.inf]))  # a masked entry: no NaN
      Array([  0., -inf], dtype=float32)
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
    probs = shifted_exp(x, top) / exp_sum  # the forward's exponentials
    return (dy - probs * jnp.sum(dy, axis=axis, keepdims=True),)


log_softmax.defvjp(_log_softmax_fwd, _log_softmax_bwd)
