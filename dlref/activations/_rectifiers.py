"""The relu family: leaky_relu, elu, silu (swish) and gelu."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dlref import _checks
from dlref._numerics import neg_abs, sigmoid_from_exp
from dlref._op import op
from dlref._words import accurate, sigmoid_slope_words, sigmoid_words, value_of, wide
from dlref.activations._precise import (
    TANH_FORM_END,
    exp_neg_abs,
    expm1_nonpositive,
    gelu_exact,
    tanh_form_exponent,
    times_exp,
    underflows,
)

__all__ = ["leaky_relu", "elu", "silu", "gelu"]


def _real(fn: str, name: str, value: Any, *, minimum: float | None = None) -> None:
    """A hyperparameter is a finite real number (``>= minimum`` if given); a
    traced one (the autodiff variant under ``jit``) cannot be checked."""
    if isinstance(value, jax.core.Tracer):
        return
    v = value
    if isinstance(v, (jax.Array, np.ndarray, np.generic)) and np.ndim(v) == 0:
        v = np.asarray(v).item()
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _checks.InputError(f"{fn}: `{name}` must be a real number; got {value!r}")
    if not math.isfinite(v) or (minimum is not None and v < minimum):
        expected = "a finite number" + ("" if minimum is None else f" >= {minimum}")
        raise _checks.InputError(f"{fn}: `{name}` must be {expected}; got {v}")


# --- leaky_relu --------------------------------------------------------------


@op
def leaky_relu(x: jax.Array, *, negative_slope: float = 0.01) -> jax.Array:
    """Leaky relu, elementwise: ``leaky_relu(x) = x if x >= 0 else negative_slope * x``.

    Derivative: 1 for x > 0, ``negative_slope`` for x < 0, and by convention 1
    at x = 0 (the right branch, as ``jax.nn.leaky_relu``, which selects with
    ``x >= 0``; PyTorch's backward gives ``negative_slope`` there). This is the
    one kink of :mod:`dlref.activations` whose slope at 0 is the right branch's:
    ``leaky_relu`` with ``negative_slope=0`` has slope 1 at 0 where ``relu`` has 0.

    Args:
      x: floating array of any shape.
      negative_slope: the slope for x < 0, a finite number (any sign; 0.01 by
        default, as jax.nn and PyTorch); keyword-only, static.

    Returns:
      An array of the shape and dtype of ``x``; NaN where ``x`` is NaN (its
      gradient there is ``negative_slope`` times the upstream gradient).

    Numerics: exact for x >= 0; one rounding (``negative_slope * x``) below.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import activations
      >>> activations.leaky_relu(jnp.array([-2.0, 0.0, 3.0]), negative_slope=0.1)
      Array([-0.2,  0. ,  3. ], dtype=float32)
      >>> print(jax.grad(activations.leaky_relu)(0.0))  # the right branch at 0
      1.0

    References:
      Maas, Hannun and Ng, Rectifier nonlinearities improve neural network
      acoustic models, ICML workshop on deep learning for audio, speech and
      language processing (2013).
    """
    _checks.floating("leaky_relu", x=x)
    _real("leaky_relu", "negative_slope", negative_slope)
    return jnp.where(x >= 0, x, negative_slope * x)


def _leaky_relu_fwd(x, *, negative_slope=0.01):
    return leaky_relu.autodiff(x, negative_slope=negative_slope), (x,)


def _leaky_relu_bwd(res, dy, *, negative_slope):
    (x,) = res
    return (jnp.where(x >= 0, dy, negative_slope * dy),)


leaky_relu.defvjp(_leaky_relu_fwd, _leaky_relu_bwd)


# --- elu ---------------------------------------------------------------------


@op
def elu(x: jax.Array, *, alpha: float = 1.0) -> jax.Array:
    """Exponential linear unit, elementwise: ``elu(x) = x if x > 0 else alpha * (exp(x) - 1)``.

    Saturates at ``-alpha`` as x goes to -inf; continuous at 0.

    Derivative: 1 for x > 0 and ``alpha * exp(x)`` for x <= 0: by convention
    ``alpha`` at x = 0 (the left branch, as ``jax.nn.elu`` and PyTorch; with
    the default ``alpha = 1`` both branches give 1 and elu is smooth there).

    Args:
      x: floating array of any shape.
      alpha: the magnitude of the negative saturation, a finite number >= 0
        (keyword-only, static). A negative ``alpha`` raises
        :class:`~dlref.InputError`: it would turn the negative branch upward
        (non-monotone, saturating at ``+|alpha|``), which no ELU variant uses;
        ``alpha = 0`` is relu, with relu's slope 0 at 0.

    Returns:
      An array of the shape and dtype of ``x``, in ``(-alpha, inf)`` (``-alpha``
      itself once ``exp(x)`` is below half an ulp of 1).

    Numerics: ``exp(x) - 1`` is computed as an ``expm1`` of dlref's own for
    x <= 0 (a Taylor series on (-ln 2, 0], ``exp(x) - 1`` below; XLA's expm1
    on the CPU is off by up to 3.5 ulp in float32), so the value is within 2
    ulp for ``alpha = 1`` (0.87 the worst measured) and the gradient within
    2.5 (2.26; tests/test_ulp.py); the exponential's argument is clamped to <= 0,
    so nothing overflows and autodiff's gradient is finite for every x. The
    gradient ``alpha * exp(x)`` is recomputed from ``x``: forming it as
    ``y + alpha`` would cancel to nothing as y nears -alpha. Half precision is
    computed in float32.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import activations
      >>> activations.elu(jnp.array([-100.0, 0.0, 2.0]), alpha=0.5)  # saturates at -alpha
      Array([-0.5,  0. ,  2. ], dtype=float32)
      >>> print(jax.grad(lambda x: activations.elu(x, alpha=0.5))(0.0))  # alpha at 0
      0.5

    References:
      Clevert, Unterthiner and Hochreiter, Fast and accurate deep network
      learning by exponential linear units (ELUs), ICLR 2016.
    """
    _checks.floating("elu", x=x)
    x = jnp.asarray(x)  # a Python scalar (the autodiff variant) too
    _real("elu", "alpha", alpha, minimum=0)
    w = wide(x)
    below = jnp.where(w > 0, 0, w)  # the negative branch sees x <= 0 only: no overflow
    return jnp.where(w > 0, w, alpha * expm1_nonpositive(below)).astype(x.dtype)


def _elu_fwd(x, *, alpha=1.0):
    return elu.autodiff(x, alpha=alpha), (x,)


def _elu_bwd(res, dy, *, alpha):
    (x,) = res
    w = wide(x)
    slope = jnp.where(w > 0, 1, alpha * jnp.exp(jnp.where(w > 0, 0, w)))
    return (dy * slope.astype(dy.dtype),)


elu.defvjp(_elu_fwd, _elu_bwd)


# --- silu --------------------------------------------------------------------


@op
def silu(x: jax.Array) -> jax.Array:
    """Sigmoid linear unit (swish), elementwise: ``silu(x) = x * sigmoid(x)``.

    A smooth relu with a minimum of about -0.2785 at x = -1.2785.

    Derivative: ``silu'(x) = sigmoid(x) * (1 + x * (1 - sigmoid(x)))``, 1/2 at
    0, computed as ``(1 + e (1 + x)) / (1 + e)**2`` for x > 0 and
    ``e ((1 + x) + e) / (1 + e)**2`` for x <= 0, with ``e = exp(-|x|)``.

    Args:
      x: floating array of any shape.

    Returns:
      An array of the shape and dtype of ``x``, at least -0.2785.

    Numerics: ``x * sigmoid(x)`` with dlref's sigmoid (``1 / (1 + e)`` or ``e /
    (1 + e)``, ``e = exp(-|x|)`` in two words, the quotient corrected): the exp
    is of a non-positive number, so nothing overflows in either tail, and the
    value is within 2 ulp (1.37 in float32 and 1.31 in float64 the worst
    measured; tests/test_ulp.py; with XLA's exp it was 2.92). The gradient
    keeps ``x`` and takes XLA's ``exp(-|x|)``, within 4 ulp (2.46 measured);
    ``1 + x`` is exact near the derivative's root (x = -1.2785),
    where the derivative is a difference of terms near 0.2 and so is within 4
    ulp of those terms, not of itself. Far below 0, where ``exp(x)`` is
    subnormal (flushed to 0 on the CPU) but ``x exp(x)`` is not, the products
    are formed as ``(x 2**-64) exp(x + 64 ln 2)``. Half precision is computed in
    float32.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import activations
      >>> activations.silu(jnp.array([-200.0, 0.0, 200.0]))  # no overflow in either tail
      Array([ -0.,   0., 200.], dtype=float32)
      >>> print(jax.grad(activations.silu)(0.0))
      0.5

    References:
      Hendrycks and Gimpel, Gaussian error linear units (GELUs), 2016
      (arXiv:1606.08415): the sigmoid linear unit.

      Ramachandran, Zoph and Le, Searching for activation functions, 2017
      (arXiv:1710.05941): the name swish.
    """
    _checks.floating("silu", x=x)

    def silu_from(sigmoid_fn):
        return lambda w: jnp.where(underflows(w), times_exp(w, w), w * sigmoid_fn(w))

    return accurate(silu_from(sigmoid_words), silu_from(sigmoid_from_exp), jnp.asarray(x))


def _silu_fwd(x):
    return silu.autodiff(x), (x,)


def _silu_bwd(res, dy):
    (x,) = res
    w = wide(x)
    e = jnp.exp(neg_abs(w))  # the forward's exponential
    numerator = jnp.where(w > 0, 1 + e * (1 + w), e * ((1 + w) + e))
    local = jnp.where(underflows(w), times_exp(1 + w, w), numerator / (1 + e * (2 + e)))
    return (dy * local.astype(dy.dtype),)


silu.defvjp(_silu_fwd, _silu_bwd)


# --- gelu --------------------------------------------------------------------

_CUBIC = 0.044715
_TWO_K = 2 * math.sqrt(2 / math.pi)


def _gelu_plain(w):
    """``x Phi(x)`` and ``Phi(x) + x phi(x)`` by the plain formulas: what autodiff
    differentiates (the accurate values come from ``gelu_exact``)."""
    cdf = 0.5 * jax.lax.erfc(-w * math.sqrt(0.5))
    xc = jnp.clip(w, -40, 40)  # exp(-800) is 0: no inf * 0 in the derivative
    return w * cdf, cdf + (w / math.sqrt(2 * math.pi)) * jnp.exp(-0.5 * (xc * xc))


@op
def gelu(x: jax.Array, *, approximate: bool = False) -> jax.Array:
    """Gaussian error linear unit, elementwise: ``gelu(x) = x * Phi(x)``.

    ``Phi(x) = erfc(-x / sqrt(2)) / 2`` is the standard normal CDF. With
    ``approximate=True``, the tanh form
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))``, computed as
    ``x * sigmoid(2 u)``, ``u = sqrt(2/pi) (x + 0.044715 x**3)`` (the same
    function: ``1 + tanh(u) = 2 sigmoid(2u)``). dlref's default is the exact
    form, as PyTorch's ``gelu`` and the paper's; ``jax.nn.gelu`` defaults to
    ``approximate=True``.

    Derivative: exact form, ``gelu'(x) = Phi(x) + x * phi(x)``, with
    ``phi(x) = exp(-x**2 / 2) / sqrt(2 pi)``, 1/2 at 0; tanh form,
    ``s + x * s * (1 - s) * 2 sqrt(2/pi) (1 + 3 * 0.044715 x**2)`` with
    ``s = sigmoid(2u)``.

    Args:
      x: floating array of any shape.
      approximate: use the tanh form (keyword-only, static; a Python bool).

    Returns:
      An array of the shape and dtype of ``x``, at least about -0.17 (the
      minimum, at x = -0.7518).

    Numerics: exact form: below 0, ``Phi(x) = erfc(t) / 2`` with ``t = -x /
    sqrt(2)`` is sensitive to ``t`` (its relative error is multiplied by
    ``2 t**2``), and XLA's erfc rounds ``t * t`` inside (50 ulp off in float32
    and 490 in float64 deep in the tail) and is ``1 - erf`` below 1 (10 ulp
    off at 0.95). So ``t`` is taken exactly (the constant and the product in
    two words), and erfc is dlref's own: from the nearest anchor ``t0 = k /
    32``, whose ``erfc(t0)`` was computed in decimal arithmetic, plus the
    Taylor series of the integral from ``t0`` to ``t``; from x = -9 (float32)
    or -10 (float64) on, ``Phi(x) = phi(x) M(-x)`` with Mills' ratio ``M`` from
    its asymptotic series. ``x**2`` in ``phi(x) = exp(-x**2 / 2) / sqrt(2 pi)``
    is taken in two words, and the products with ``x`` are formed before the
    exponential where it would be subnormal. The value is within 3.5 ulp (3.05
    the worst measured, far below 0 where XLA's exp and a few products add;
    1.9 above x = -9) and the gradient within 4 (3.63; tests/test_ulp.py).
    Tanh form: the sigmoid's negative tail multiplies an error in ``2 u`` by
    ``|2 u|`` (up to 100 in float32 and 745 in float64), so ``2 u`` is formed
    in two words (exact partial products, the constants in two words); the
    value is within 3.5 ulp (2.99 measured) and the gradient within 5 (4.48),
    as silu's, and jax.nn's ``1 + tanh(u)`` cancellation does not arise (in
    float32 jax.nn.gelu is 0 below x = -4.87, and 0.2% off at x = -4). Both forms: the
    derivative near its root at x = -0.7518 (tanh form: -0.7525) is a
    difference of terms near 0.2, within the stated ulps of those terms; no
    overflow for any finite x; half precision is computed in float32.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import activations
      >>> activations.gelu(jnp.array([-10.0, 0.0, 1.0]))  # x Phi(x)
      Array([-7.6198536e-23,  0.0000000e+00,  8.4134471e-01], dtype=float32)
      >>> x = jnp.array([-6.0, 0.0, 1.0])
      >>> activations.gelu(x, approximate=True)  # the tanh form keeps its tail
      Array([-8.439647e-11,  0.000000e+00,  8.411920e-01], dtype=float32)
      >>> jax.nn.gelu(x)  # 1 + tanh(u) rounds to 0
      Array([-0.      ,  0.      ,  0.841192], dtype=float32)
      >>> print(jax.grad(activations.gelu)(0.0))
      0.5

    References:
      Hendrycks and Gimpel, Gaussian error linear units (GELUs), 2016
      (arXiv:1606.08415), section 2: both forms.
    """
    _checks.floating("gelu", x=x)
    x = jnp.asarray(x)
    if not isinstance(approximate, (bool, np.bool_)):
        raise _checks.InputError(f"gelu: `approximate` must be True or False; got {approximate!r}")
    w = wide(x)
    if approximate:
        _, two_u, low = tanh_form_exponent(w)
        y = jnp.where(underflows(two_u), times_exp(w, two_u, low), w * _sigmoid_2u(two_u, low))
        # Beyond the clip the sigmoid is exactly 1 or 0: x or -0, with autodiff's gradient
        # 1 or 0 directly (through the quotient a huge x times a zero slope would give NaN).
        saturated = jnp.abs(w) > TANH_FORM_END
        return jnp.where(saturated, jnp.where(w > 0, w, 0 * w), y).astype(x.dtype)
    value, _ = gelu_exact(w)
    plain, _ = _gelu_plain(w)
    return (value + (plain - jax.lax.stop_gradient(plain))).astype(x.dtype)


def _sigmoid_2u(two_u, low):
    """The tanh form's ``sigmoid(2 u)``, ``2 u = two_u + low``: the value to about
    0.6 ulp (:func:`dlref._words.sigmoid_words`), the derivative of the plain
    ``1 / (1 + e)`` or ``e / (1 + e)``, ``e = exp(-|2 u|)``."""
    e = exp_neg_abs(two_u, low)
    return value_of(jnp.where(two_u > 0, 1, e) / (1 + e), sigmoid_words(two_u, low))


def _gelu_fwd(x, *, approximate=False):
    return gelu.autodiff(x, approximate=approximate), (x,)


def _gelu_bwd(res, dy, *, approximate):
    (x,) = res
    w = wide(x)
    if approximate:
        xc, two_u, low = tanh_form_exponent(w)
        e = exp_neg_abs(two_u, low)  # the forward's exponential; s (1 - s) = e / (1 + e)**2
        slope = _TWO_K * (1 + (3 * _CUBIC) * (xc * xc))  # d(2 u)/dx
        s = _sigmoid_2u(two_u, low)
        s_slope = value_of(e / (1 + e * (2 + e)), sigmoid_slope_words(two_u, low))
        local = s + w * (slope * s_slope)  # slope * 0 before a huge w
        local = jnp.where(underflows(two_u), times_exp(1 + xc * slope, two_u, low), local)
    else:
        _, slope = gelu_exact(w)
        _, plain = _gelu_plain(w)
        local = slope + (plain - jax.lax.stop_gradient(plain))
    return (dy * local.astype(dy.dtype),)


gelu.defvjp(_gelu_fwd, _gelu_bwd)
