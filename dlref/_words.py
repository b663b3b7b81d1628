"""Double-word arithmetic: a number as an unevaluated sum ``hi + lo`` of two
floats of the dtype, about twice its precision. The exponential in two words is
what brings the sigmoid family, tanh, softmax and the smooth rectifiers within
2 ulp: XLA's ``exp`` is off by up to 1.3 ulp, and every quotient or sum after
it adds its own rounding. Private: the ops that use it are public.

Error-free steps rely on XLA not reassociating floating-point additions (it
does not, except with constants: it folds ``(1 + a) - 1`` to ``a``, so a
constant enters a :func:`two_sum` only through :func:`one`). Products are split
into exact partial products, so fused multiply-adds change nothing. Float32 and
float64; half precision is lifted to float32 by the callers.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import jax
import jax.numpy as jnp
import numpy as np

from dlref._numerics import log1p, neg_abs, two_sum


def wide(x):
    """``x`` in float32 if it is a half-precision array, else unchanged."""
    return x.astype(jnp.float32) if jnp.finfo(x.dtype).bits < 32 else x


def accurate(words, plain, x):
    """``words(x)`` (accurate, a constant to autodiff), differentiated as
    ``plain(x)``: the value is the accurate form's, and autodiff sees the plain
    formula. Half precision is computed in float32 and rounded once."""
    w = wide(x)
    return value_of(plain(w), words(jax.lax.stop_gradient(w))).astype(x.dtype)


def value_of(plain, exact):
    """``exact``'s value (in ``plain``'s dtype) with ``plain``'s derivative.
    Subtracting the zero (not adding it) keeps the sign of a zero ``exact``."""
    exact = jax.lax.stop_gradient(exact.astype(plain.dtype))
    return exact - (jax.lax.stop_gradient(plain) - plain)


def one(x):
    """Ones like ``x`` that XLA cannot see as a constant (an optimization
    barrier), so that ``two_sum(one(x), a)`` is not folded to ``(1 + a, 0)``."""
    return jax.lax.optimization_barrier(jnp.ones_like(x))


def split(a):
    """``a = hi + lo`` exactly, ``hi`` rounded to the upper ``p - ceil(p / 2)`` bits
    of the significand (12 in float32, 26 in float64), so that products of the
    halves are exact. Rounded by XLA's ``reduce_precision``, not Veltkamp's
    ``c - (c - a)``, which the CPU's fused multiply-add contraction breaks."""
    info = jnp.finfo(a.dtype)
    bits = (info.nmant + 1) // 2 - 1  # stored bits of hi: 11 of 23, 25 of 52
    hi = jax.lax.reduce_precision(a, exponent_bits=info.nexp, mantissa_bits=bits)
    return hi, a - hi


def two_prod(a, b):
    """``(p, err)`` with ``p = fl(a * b)`` (to within an ulp) and ``a * b = p + err``
    to about twice the dtype's precision: the four products of the halves of
    :func:`split` are exact, so no multiply-add contraction changes them."""
    a_hi, a_lo = split(a)
    b_hi, b_lo = split(b)
    p, err = two_sum(a_hi * b_hi, a_hi * b_lo + a_lo * b_hi)
    return p, err + a_lo * b_lo


def renormalize(hi, lo):
    """``(h, l)`` with ``h = fl(hi + lo)`` and ``h + l = hi + lo``."""
    return two_sum(hi, lo)


def quotient(n_hi, n_lo, d_hi, d_lo):
    """``(n_hi + n_lo) / (d_hi + d_lo)`` rounded to the dtype, within about 0.5 ulp
    plus the inputs' relative errors: ``q = n_hi / d_hi`` corrected by the exact
    residual ``n - q d`` (:func:`two_prod`) over ``d``."""
    q = n_hi / d_hi
    p, p_err = two_prod(q, d_hi)
    residual = ((n_hi - p) - p_err) + (n_lo - q * d_lo)  # n_hi - p is exact (Sterbenz)
    return q + jnp.where(jnp.isfinite(q) & (d_hi != 0), residual / d_hi, 0)


# exp(v) = 2**k exp(r), r = v - k ln 2 in [-ln 2 / 2, ln 2 / 2] (a hair beyond where
# k rounds), with ln 2 = L1 + L2: L1 has trailing zeros, so k L1 is exact for every k
# of a finite, non-zero result (|k| < 2**8 in float32, 2**11 in float64).
_K_BITS = {np.float32: 8, np.float64: 11}
# exp(r) - 1 - r - r**2 / 2 = r**3 sum_j r**j / (j + 3)!: terms up to the first below
# 2**-(p + 4) of the result at |r| = 0.35.
_EXP_TERMS = {np.float32: 7, np.float64: 12}
# Below, exp underflows to 0 even as a subnormal; above, it overflows. The margin
# keeps 2**k within two normal factors (see _pow2).
_EXP_RANGE = {np.float32: (-110.0, 90.0), np.float64: (-750.0, 710.0)}

with localcontext() as _context:
    _context.prec = 60
    _LN2 = Decimal(2).ln()


def _ln2_words(dtype) -> tuple[float, float]:
    info = np.finfo(dtype)
    bits = info.nmant + 1 - _K_BITS[dtype]
    exponent = math.floor(math.log2(float(_LN2))) - bits + 1
    l1 = float(round(_LN2 / Decimal(2) ** exponent) * Decimal(2) ** exponent)
    return l1, float(np.dtype(dtype).type(float(_LN2 - Decimal(l1))))


_LN2_WORDS = {d: _ln2_words(d) for d in (np.float32, np.float64)}
_EXP_COEFFICIENTS = {
    d: tuple(1 / math.factorial(j + 3) for j in range(n)) for d, n in _EXP_TERMS.items()
}


def _pow2(k, dtype):
    """``(a, b)`` with ``a * b = 2**k``, each a normal power of two, for integral
    float ``k`` in the range :func:`exp_words` clips to."""
    info = np.finfo(dtype)
    uint = jnp.int32 if info.bits == 32 else jnp.int64
    half = jnp.floor(k / 2)

    def power(m):
        bits = (m.astype(uint) + (info.maxexp - 1)) << info.nmant
        return jax.lax.bitcast_convert_type(bits, dtype)

    return power(half), power(k - half)


def exp_words(v, low=0.0):
    """``exp(v + low)`` as ``(hi, lo)``, ``hi + lo`` within about 0.05 ulp of ``hi``,
    for ``low`` a correction below an ulp of ``v`` (the rounding error of a
    subtraction that formed ``v``). A constant to autodiff (``stop_gradient``):
    callers add the derivative of a plain formula.

    ``k = round(v / ln 2)``, ``r = v - k ln 2`` in two words (``k L1`` exact,
    ``k L2`` and its remainder by :func:`two_sum`); ``exp(r) = 1 + r + r**2 / 2 +
    r**3 P(r)`` with ``r**2`` exact (:func:`two_prod`) and the Taylor
    polynomial ``P`` in the dtype (its rounding is under 2**-5 of an ulp of the
    result at ``|r| = 0.35``); the leading terms are summed exactly, and the
    result is scaled by ``2**k`` (exact where it is normal).
    """
    dtype = np.dtype(v.dtype).type
    low_clip, high_clip = _EXP_RANGE[dtype]
    inside = (v > low_clip) & (v < high_clip)  # else the clipped v's result is exact
    low = jax.lax.stop_gradient(jnp.where(inside, low, 0))
    v = jax.lax.stop_gradient(jnp.clip(v, low_clip, high_clip))
    l1, l2 = _LN2_WORDS[dtype]
    k = jnp.round(v * (1 / math.log(2)))
    r, r_err = two_sum(v - k * l1, -(k * l2))  # v - k L1: exact
    r_low = r_err + low
    square, square_err = two_prod(r, r)
    p = jnp.full_like(r, _EXP_COEFFICIENTS[dtype][-1])
    for c in reversed(_EXP_COEFFICIENTS[dtype][:-1]):
        p = p * r + c
    hi, lo = two_sum(one(r), r)
    hi, err = two_sum(hi, 0.5 * square)
    lo = lo + err + (0.5 * square_err + square * (r * p))
    hi, lo = renormalize(hi, lo)  # exp(r); exp(r + r_low) = exp(r) (1 + r_low)
    hi, lo = renormalize(hi, lo + hi * r_low)
    a, b = _pow2(k, dtype)
    return (hi * a) * b, (lo * a) * b


def one_plus(e_hi, e_lo):
    """``1 + e`` in two words, for ``e = e_hi + e_lo``."""
    hi, lo = two_sum(one(e_hi), e_hi)
    return hi, lo + e_lo


def sum_words(hi, lo, axis: int):
    """``sum(hi + lo)`` along ``axis``, kept, in two words: a pairwise tree of
    :func:`two_sum` (``log2 n`` levels), the errors summed apart. 0 over an empty
    axis."""
    axis = axis % hi.ndim
    n = hi.shape[axis]
    if n == 0:
        zeros = jnp.zeros((*hi.shape[:axis], 1, *hi.shape[axis + 1 :]), hi.dtype)
        return zeros, zeros
    while n > 1:
        if n % 2:
            pad = [(0, 0)] * hi.ndim
            pad[axis] = (0, 1)
            hi, lo = jnp.pad(hi, pad), jnp.pad(lo, pad)
            n += 1
        half = n // 2
        a, b = (jax.lax.slice_in_dim(hi, i, i + half, axis=axis) for i in (0, half))
        a_lo, b_lo = (jax.lax.slice_in_dim(lo, i, i + half, axis=axis) for i in (0, half))
        hi, err = two_sum(a, b)
        lo = (a_lo + b_lo) + err
        n = half
    return hi, lo


def sigmoid_words(x, low=0.0):
    """``sigmoid(x + low)`` to about 0.6 ulp (``low`` a correction below an ulp
    of ``x``), a constant to autodiff: ``1 / (1 + e)`` or ``e / (1 + e)``, ``e =
    exp(-|x + low|)`` in two words, the quotient corrected (:func:`quotient`)."""
    e_hi, e_lo = exp_words(jnp.where(x > 0, -x, x), jnp.where(x > 0, -low, low))
    d_hi, d_lo = one_plus(e_hi, e_lo)
    positive = x > 0
    n_hi = jnp.where(positive, 1, e_hi)
    return quotient(n_hi, jnp.where(positive, 0, e_lo), d_hi, d_lo)


def sigmoid_slope_words(x, low=0.0):
    """``sigmoid'(x + low) = e / (1 + e)**2``, ``e = exp(-|x + low|)`` in two
    words, to about 0.6 ulp: the square of ``1 + e`` in two words, the quotient
    corrected. A constant to autodiff."""
    e_hi, e_lo = exp_words(jnp.where(x > 0, -x, x), jnp.where(x > 0, -low, low))
    d_hi, d_lo = one_plus(e_hi, e_lo)
    square, square_lo = two_prod(d_hi, d_hi)
    return quotient(e_hi, e_lo, square, square_lo + 2 * d_hi * d_lo)


# log1p(y) = 2 atanh(s), s = y / (2 + y) <= 1/3 for y in [0, 1]: 2 s (1 + z/3 + z**2/5
# + ...), z = s**2 <= 1/9, to the first term below 2**-(p + 4).
_ATANH_TERMS = {np.float32: 9, np.float64: 18}


def log1p_exp_words(v):
    """``log(1 + exp(v))`` for ``v <= 0``, to about 0.7 ulp, a constant to
    autodiff: with ``y = exp(v)`` in two words (in (0, 1]), ``log1p(y) = 2
    atanh(s)``, ``s = y / (2 + y) <= 1/3`` in two words (the quotient and its
    exact residual), ``2 s + 2 s z P(z)``, ``z = s**2``: the correction is under
    8% of the result, so one rounding dominates."""
    dtype = np.dtype(v.dtype).type
    y_hi, y_lo = exp_words(v)
    d_hi, d_lo = two_sum(2 * one(y_hi), y_hi)
    d_lo = d_lo + y_lo
    s = y_hi / d_hi
    p, p_err = two_prod(s, d_hi)
    s_lo = (((y_hi - p) - p_err) + (y_lo - s * d_lo)) / d_hi
    z = s * s
    series = jnp.full_like(z, 1 / (2 * _ATANH_TERMS[dtype] + 1))
    for n in range(_ATANH_TERMS[dtype] - 1, 0, -1):
        series = series * z + 1 / (2 * n + 1)
    return 2 * s + 2 * (s_lo + s * (z * series))


def softplus_tail(x):
    """``log(1 + exp(-|x|))`` to about 1 ulp (:func:`log1p_exp_words`),
    differentiated as the plain formula: softplus is ``relu(x)`` plus this."""

    def plain(w):
        return log1p(jnp.exp(neg_abs(w)))

    return accurate(lambda w: log1p_exp_words(neg_abs(w)), plain, x)


def softmax_words(x, top, axis: int):
    """``softmax(x)`` along ``axis`` to about 0.6 ulp, a constant to autodiff:
    ``exp(x - top)`` in two words (the subtraction's remainder carried), their
    sum in two words (:func:`sum_words`) and the corrected quotient."""
    d, r = two_sum(x, -top)
    e_hi, e_lo = exp_words(d, r)
    s_hi, s_lo = sum_words(e_hi, e_lo, axis)
    return quotient(e_hi, e_lo, s_hi, s_lo)
