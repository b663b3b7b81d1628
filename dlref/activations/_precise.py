"""Exact products and the accurate pieces of the smooth rectifiers: gelu's value
and derivative without the rounding of ``x / sqrt(2)`` and ``x**2``, the tanh
form's exponent in two words, ``expm1`` for ``x <= 0``, and products with an
exponential that underflows. Private to :mod:`dlref.activations`.

Each works in float32 or float64 (:func:`wide` lifts half precision to float32
first). Their error-free steps rely on XLA not reassociating floating-point
additions, as ``dlref._numerics.two_sum`` does; products are split into exact
partial products, so fused multiply-adds change nothing.
"""

from __future__ import annotations

import functools
import math
from decimal import Decimal, localcontext
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np

from dlref._numerics import neg_abs, two_sum
from dlref._words import exp_words, one, one_plus, quotient, two_prod, value_of


def _double_word(value: Decimal, dtype) -> tuple[float, float]:
    """``value`` as ``hi + lo``, each rounded to ``dtype``."""
    numpy_dtype = np.dtype(dtype).type
    hi = float(numpy_dtype(float(value)))
    return hi, float(numpy_dtype(float(value - Decimal(hi))))


def _decimal_pi(digits: int) -> Decimal:
    """pi by Machin's formula, ``16 atan(1/5) - 4 atan(1/239)``, to ``digits`` digits."""

    def atan_inverse(n: int) -> Decimal:  # atan(1 / n) by its series
        total, power, k, x2 = Decimal(0), Decimal(1) / n, 0, Decimal(n * n)
        while power > Decimal(10) ** -(digits + 5):
            total += (-1) ** k * power / (2 * k + 1)
            power /= x2
            k += 1
        return total

    with localcontext() as context:
        context.prec = digits + 10
        return 16 * atan_inverse(5) - 4 * atan_inverse(239)


_PI = _decimal_pi(100)
_DTYPES = (np.float32, np.float64)
with localcontext() as _context:
    _context.prec = 50
    _SQRT_HALF = Decimal(2).sqrt() / 2  # 1 / sqrt(2)
    _SQRT_HALF_WORDS = {d: _double_word(_SQRT_HALF, d) for d in _DTYPES}
    # gelu's tanh form: 2 u = 2 sqrt(2 / pi) (x + 0.044715 x**3), the decimal constant exactly
    _CUBIC_WORDS = {d: _double_word(Decimal("0.044715"), d) for d in _DTYPES}
    _TWO_K_WORDS = {d: _double_word(2 * (2 / _PI).sqrt(), d) for d in _DTYPES}

_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
# Beyond these |x| the normal tail and density underflow in the dtype (Q(20) ~ 3e-89,
# Q(40) ~ 4e-350); clipping keeps the exact products far from overflow.
_TAIL_END = {np.float32: 20.0, np.float64: 40.0}
# From z = |x| = 9 (float32) or 10 (float64) on, 1 - Q(z) rounds to 1 and the tail
# is phi(x) M(z) with Mills' ratio M from its asymptotic series; its first omitted
# term is below 1e-9 (6e-19) of the sum there.
_FAR = {np.float32: 9.0, np.float64: 10.0}
_FAR_TERMS = {np.float32: 8, np.float64: 25}
# Below, erfc(t), t = z / sqrt(2), from the nearest anchor t0 = k / 32 (|t - t0| <= 1/64),
# whose erfc(t0) and exp(-t0**2) are computed once, in decimal arithmetic.
_STEP = 32
_ANCHORS = math.ceil(10.0 / math.sqrt(2) * _STEP) + 2
_INTEGRAL_TERMS = {np.float32: 8, np.float64: 14}  # the last below 1e-10 (1e-18) of the first


@functools.cache
def _anchor_tables(dtype) -> tuple[np.ndarray, ...]:
    """``erfc(t0)`` in two words and ``(2 / sqrt(pi)) exp(-t0**2)`` in one, rounded
    to ``dtype``, for ``t0 = k / 32``: erf from its Taylor series at 90 digits
    (its largest term, near ``exp(t0**2)``, is below 1e22, so ``1 - erf`` keeps
    over 40 correct digits of ``erfc(t0) >= 1e-23``)."""
    hi, lo, gauss = [], [], []
    with localcontext() as context:
        context.prec = 90
        two_over_sqrt_pi = 2 / _PI.sqrt()
        tiny = Decimal(10) ** -85
        for k in range(_ANCHORS):
            t = Decimal(k) / _STEP
            square, term, total, n = t * t, t, t, 0
            while True:
                n += 1
                term = -term * square / n
                total += term / (2 * n + 1)
                if abs(term) < tiny:
                    break
            words = _double_word(1 - two_over_sqrt_pi * total, dtype)
            hi.append(words[0])
            lo.append(words[1])
            gauss.append(float(two_over_sqrt_pi * (-square).exp()))
    return tuple(np.asarray(v, dtype) for v in (hi, lo, gauss))


def _series(coefficients, u):
    """``sum_k c_k u**k`` by Horner's rule (the last step adds ``c_0``: one rounding)."""
    total = jnp.full_like(u, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        total = total * u + c
    return total


def _far_coefficients(terms: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The asymptotic series in ``u = 1 / z**2``, times ``1 / sqrt(2 pi)``, of
    ``z M(z) = sum_k (-1)**k (2k - 1)!! u**k`` (Mills' ratio ``M``: the value,
    ``-x Phi(x) / phi(x)`` at ``x = -z``) and of ``1 - u z M(z) = 1 - u + u**2
    - 3 u**3 + ...`` (the derivative, ``(Phi(x) + x phi(x)) / (x phi(x))``)."""
    double_factorial = [1.0]  # (2k - 1)!!, k = 0, 1, ...
    for k in range(1, terms + 1):
        double_factorial.append(double_factorial[-1] * (2 * k - 1))
    value = tuple((-1) ** k * d * _INV_SQRT_2PI for k, d in enumerate(double_factorial))
    slope = (_INV_SQRT_2PI, *(-c for c in value[:-1]))
    return value, slope


def _erfc_anchored(z, c_hi: float, c_lo: float):
    """``erfc(z / sqrt 2)`` for ``0 <= z < 10``, without XLA's erfc (see
    :func:`gelu_exact`)."""
    dtype = np.dtype(z.dtype).type
    p, p_err = two_prod(z, jnp.asarray(c_hi, z.dtype))  # t = z / sqrt 2 = p + ...
    k = jnp.round(p * _STEP)
    t0 = k / _STEP  # exact
    d = (p - t0) + (p_err + z * c_lo)  # t - t0; p - t0 is exact
    index = jnp.clip(k.astype(jnp.int32), 0, _ANCHORS - 1)
    hi, lo, gauss = (jnp.take(jnp.asarray(v), index) for v in _anchor_tables(dtype))
    # exp(-2 t0 v - v**2) = sum_n c_n v**n: (n + 1) c_(n+1) = -2 t0 c_n - 2 c_(n-1)
    c_prev, c = jnp.zeros_like(z), jnp.ones_like(z)
    terms = [c]
    for n in range(_INTEGRAL_TERMS[dtype]):  # reciprocals, not divisions: cheaper, and
        c_prev, c = c, (-2 * t0 * c - 2 * c_prev) * (1 / (n + 1))  # the rounding stays
        terms.append(c * (1 / (n + 2)))  # in the correction, under a third of the result
    total = terms[-1]
    for q in reversed(terms[:-1]):
        total = total * d + q
    integral = d * total  # int_0^d exp(-2 t0 v - v**2) dv
    # erfc(t) = erfc(t0) - (2 / sqrt(pi)) exp(-t0**2) integral
    return hi + (lo - gauss * integral)


def gelu_exact(x):
    """``(x Phi(x), Phi(x) + x phi(x))``: gelu's value and derivative, accurate,
    as constants to autodiff (the caller adds the plain formula's derivative).

    ``Phi(x) = erfc(-x / sqrt 2) / 2``, formed as ``Q`` or ``1 - Q`` from the
    upper tail ``Q = erfc(t) / 2``, ``t = |x| / sqrt 2`` (``Q <= 1/2``, so ``1 -
    Q`` loses nothing). The tail ``erfc(t)`` is sensitive to ``t`` (its
    relative error is multiplied by ``2 t**2``), and XLA's erfc rounds ``t * t``
    inside (50 ulp off in float32, 490 in float64). So ``t`` is taken exactly,
    as ``|x| * (c_hi + c_lo)`` with exact products,
    and XLA's erfc is not used (it is also ``1 - erf`` below 1, 10 ulp off at
    0.95): ``t = t0 + d`` with ``t0 = k / 32`` the nearest anchor, whose
    ``erfc(t0)`` (in two words) and ``exp(-t0**2)`` were computed in decimal
    arithmetic, and ``erfc(t) = erfc(t0) - (2 / sqrt(pi)) exp(-t0**2) I`` with
    ``I = int_0^d exp(-2 t0 v - v**2) dv`` from its Taylor series (``|d| <=
    1/64``; the correction is under a third of the result). Far in the tail
    (``-x >= 9`` in float32, 10 in float64) ``Phi(x) = phi(x) M(-x)``
    with Mills' ratio from its asymptotic series, and the products with ``x``
    are formed before the exponential (:func:`times_exp`), so no subnormal
    intermediate is flushed where the result is normal. ``x * phi(x)`` takes
    ``x**2 = high + low`` exactly: ``e - e * low / 2``, ``e = exp(-high / 2)``
    (``exp`` would multiply the rounding of ``x**2`` by ``x**2 / 2``: 700 ulp in
    float64's tail).
    """
    dtype = np.dtype(x.dtype).type
    c_hi, c_lo = _SQRT_HALF_WORDS[dtype]
    x = jax.lax.stop_gradient(x)
    z = jnp.clip(jnp.abs(x), 0, _TAIL_END[dtype])  # |x|: the exact products stay moderate
    high, low = two_prod(z, z)

    def times_gauss(m):  # m * exp(-x**2 / 2)
        return times_exp(m, -0.5 * high, -0.5 * low)

    far = z >= _FAR[dtype]
    u = 1 / jnp.where(far, z * z, 1)
    value_series, slope_series = _far_coefficients(_FAR_TERMS[dtype])
    # Q(|x|) = erfc(|x| / sqrt 2) / 2 from the anchors; Phi(x) = Q or 1 - Q (Q <= 1/2).
    # Beyond |x| = 9 (10), 1 - Q rounds to 1, and below 0 the asymptotic series serves.
    tail = 0.5 * _erfc_anchored(jnp.where(far, 0, z), c_hi, c_lo)
    cdf = jnp.where(x < 0, tail, jnp.where(far, 1, 1 - tail))
    x_pdf = times_gauss(x * _INV_SQRT_2PI)
    negative_far = far & (x < 0)
    value = jnp.where(negative_far, times_gauss(-_series(value_series, u)), x * cdf)
    slope = jnp.where(negative_far, times_gauss(x * _series(slope_series, u)), cdf + x_pdf)
    return value, slope


def _factorial_series(dtype) -> tuple[float, ...]:
    """``1/2!, 1/3!, ..., 1/n!``, n such that the last term of ``expm1`` on
    ``[-ln 2, 0]`` is below an eighth of an ulp of the result."""
    terms = 11 if dtype == np.float32 else 17
    return tuple(1 / math.factorial(k) for k in range(2, terms + 1))


def expm1_nonpositive(x):
    """``exp(x) - 1`` for ``x <= 0``, to about 1.3 ulp (XLA's ``expm1`` on the
    CPU is off by up to 3.5 ulp in float32 and 2.4 in float64).

    On ``(-ln 2, 0]`` the Taylor series ``x + x**2 (1/2! + x (1/3! + ...))``
    by Horner's rule: ``x`` is exact and the correction is under 0.4 of the
    result, so the sum rounds once. Below, ``exp(x) - 1``: ``exp(x) <= 1/2``,
    whose error shrinks in the difference, in [-1, -1/2]. Autodiff
    differentiates the series term by term (to the same precision).
    """
    coefficients = _factorial_series(np.dtype(x.dtype).type)
    near = x > -math.log(2)
    s = jnp.where(near, x, 0)
    q = jnp.full_like(s, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        q = q * s + c
    series = s + (s * s) * q
    return jnp.where(near, series, jnp.exp(jnp.where(near, -1, x)) - 1)


# Beyond |x| = 50 the tanh form's sigmoid is exactly 0 or 1 in float64 (|2 u| > 9000).
TANH_FORM_END = 50.0


def tanh_form_exponent(x):
    """``(xc, two_u, low)`` for gelu's tanh form: ``xc`` is ``x`` clipped to
    ``+-50`` (where the sigmoid saturates; ``x**3`` cannot overflow), and
    ``2 u = 2 sqrt(2/pi) (xc + 0.044715 xc**3)`` is ``two_u + low`` to about
    twice the dtype's precision: the sigmoid's tail multiplies an error in
    ``2 u`` by ``|2 u|`` (up to 745 in float64), so ``2 u`` is formed from
    Dekker products and two-word constants. ``two_u`` carries the plain
    formula's derivative; ``low`` is a constant to autodiff."""
    dtype = np.dtype(x.dtype).type
    (c, c_low), (k, k_low) = _CUBIC_WORDS[dtype], _TWO_K_WORDS[dtype]
    xc = jnp.clip(x, -TANH_FORM_END, TANH_FORM_END)
    plain = k * (xc + c * (xc * xc * xc))
    z = jax.lax.stop_gradient(xc)
    square, square_low = two_prod(z, z)
    cubic, err = two_prod(jnp.asarray(c, z.dtype), square)
    cubic_low = err + (c * square_low + c_low * square)  # c x**2
    scaled, err = two_prod(jnp.asarray(k, z.dtype), z)
    scaled_low = err + k_low * z  # 2 sqrt(2/pi) x
    term, err = two_prod(scaled, cubic)
    term_low = err + (scaled * cubic_low + scaled_low * cubic)  # 2 sqrt(2/pi) c x**3
    # A sum of two variables: XLA folds (1 + a) - 1 to a, so no constant enters a two_sum.
    two_u, err = two_sum(scaled, term)
    low = err + (scaled_low + term_low)
    exact = jax.lax.stop_gradient(two_u)
    return xc, exact + (plain - jax.lax.stop_gradient(plain)), jax.lax.stop_gradient(low)


def exp_neg_abs(two_u, low):
    """``exp(-|two_u + low|)`` for a small ``low``: ``e + e * (-+low)``, ``e =
    exp(-|two_u|)``; for ``e`` below ``e**40`` times the smallest normal number,
    where the correction may be subnormal and flushed, use :func:`times_exp`."""
    e = jnp.exp(neg_abs(two_u))
    return e + e * jnp.where(two_u > 0, -low, low)


# Far below 0, where exp(v) is subnormal (flushed to 0 on the CPU) but m * exp(v)
# is not (silu's x exp(x), the tanh form's x exp(2 u), gelu's x phi(x)), the
# product is formed as (m 2**-64) exp(v + 64 ln 2): m 2**-64 is exact, and so is
# v + _SHIFT, _SHIFT being 64 ln 2 rounded to a multiple of the spacing of the
# floats at 1024 (float64) or 256 (float32), beyond which the result is 0 anyway;
# the rest of 64 ln 2 joins the correction ``low``.
with localcontext() as _context:
    _context.prec = 50
    _LN2_64 = 64 * Decimal(2).ln()
    _SHIFT = {
        d: float(round(_LN2_64 * 2**g) / Decimal(2**g))
        for d, g in ((np.float32, 15), (np.float64, 43))
    }
    _SHIFT_LOW = {d: float(_LN2_64 - Decimal(_SHIFT[d])) for d in _DTYPES}


def underflows(v):
    """True where ``exp(v)`` is below ``e**40`` times the smallest normal number,
    so that a correction ``exp(v) * low`` could be subnormal and flushed."""
    return v < math.log(float(jnp.finfo(v.dtype).tiny)) + 40


def times_exp(m, v, low=0.0):
    """``m * exp(v + low)`` for ``v <= 0`` (``low`` a small correction to ``v``),
    as ``m * e_hi + m * e_lo`` with the exponential in two words
    (:func:`dlref._words.exp_words`), differentiated as ``m * exp(v)``; where :func:`underflows`, as
    ``(m 2**-64) exp(v + 64 ln 2)`` with no subnormal intermediate. A positive
    ``v`` is read as 0, so that a branch a ``where`` discards cannot overflow
    (nor give autodiff an ``inf * 0``)."""
    dtype = np.dtype(v.dtype).type
    shifted = underflows(v)
    argument = jnp.where(shifted, v + _SHIFT[dtype], jnp.where(v > 0, 0, v))
    e_hi, e_lo = exp_words(argument, jnp.where(shifted, low + _SHIFT_LOW[dtype], low))
    m = jnp.where(shifted, m * 2.0**-64, m)
    main, correction = m * value_of(jnp.exp(argument), e_hi), m * e_lo
    return jnp.where(correction == 0, main, main + correction)  # keeps a zero's sign


# tanh below |x| = 0.55: its odd Taylor series, from the exact Bernoulli numbers.
TANH_SERIES_END = 0.55


def _bernoulli_even(count: int) -> list[Fraction]:
    """``B_2, B_4, ..., B_2count`` exactly (the Akiyama-Tanigawa algorithm)."""
    row: list[Fraction] = []
    numbers = []
    for m in range(2 * count + 1):
        row.append(Fraction(1, m + 1))
        for j in range(m, 0, -1):
            row[j - 1] = j * (row[j - 1] - row[j])
        numbers.append(row[0])
    return numbers[2::2]


@functools.cache
def _tanh_coefficients(dtype) -> tuple[float, ...]:
    """``c_n`` of ``tanh(x) = x + x z sum_(n >= 2) c_n z**(n - 2)``, ``z = x**2``:
    ``c_n = 4**n (4**n - 1) B_2n / (2n)!``, up to the first term below 1e-3 of
    an ulp of ``x`` at ``|x| = 0.55``."""
    eps = float(np.finfo(dtype).eps)
    coefficients: list[float] = []
    for n, b in enumerate(_bernoulli_even(40)[1:], start=2):
        c = Fraction(4**n * (4**n - 1)) * b / math.factorial(2 * n)
        coefficients.append(float(c))
        if abs(float(c)) * TANH_SERIES_END ** (2 * n - 2) < 1e-3 * eps:
            break
    return tuple(coefficients)


def tanh_words(x):
    """``tanh(x)`` to about 1 ulp, a constant to autodiff. Below ``|x| = 0.55``
    the odd series ``x + x z P(z)`` (the correction under a tenth of the
    result); above, ``(1 - e) / (1 + e)``, ``e = exp(-2|x|)`` in two words
    (``2|x|`` is exact), the quotient corrected, and the sign of ``x``."""
    dtype = np.dtype(x.dtype).type
    a = jnp.abs(x)
    small = a < TANH_SERIES_END
    s = jnp.where(small, x, 0)
    z = s * s
    coefficients = _tanh_coefficients(dtype)
    p = jnp.full_like(z, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        p = p * z + c
    series = s + s * (z * p)
    e_hi, e_lo = exp_words(-2 * jnp.where(small, 1, a))
    n_hi, n_lo = two_sum(one(e_hi), -e_hi)
    d_hi, d_lo = one_plus(e_hi, e_lo)
    large = quotient(n_hi, n_lo - e_lo, d_hi, d_lo)
    return jnp.where(small, series, jnp.where(x < 0, -large, large))
