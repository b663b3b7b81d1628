"""Soft F1: the differentiable surrogate of the F1 score, per example."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dlref._numerics import in_unit, nan_where_not, two_sum
from dlref._op import op
from dlref._words import one, quotient, sum_words, two_prod, value_of, wide
from dlref.losses._common import _check_pair

# --- soft F1 -------------------------------------------------------------------


def _soft_counts(probs, targets):
    """The soft counts of each example, scaled by ``c``, the power of two at or
    below its largest entry (so the scaling is exact).

    Returns ``c`` (shape ``(..., 1)``, held constant), the scaled inputs
    ``p = probs / c`` and ``t = targets / c``, ``tp = sum(p * t)`` and
    ``s = sum(p + t)`` over the last axis: the soft TP is ``c**2 * tp`` and
    ``sum(probs) + sum(targets) = c * s``, so soft F1 = ``2 * c * tp / s``. An
    example whose entries are all below the dtype's smallest normal number
    (zeros or subnormals, which CPUs may flush to zero) gets ``c = 1`` and
    ``s = 0``; any other has ``s >= 1`` (its largest entry scales into [1, 2)).
    """
    tiny = jnp.finfo(probs.dtype).tiny
    top = jnp.maximum(
        jnp.max(probs, axis=-1, keepdims=True, initial=0),
        jnp.max(targets, axis=-1, keepdims=True, initial=0),
    )
    nonzero = ~(top < tiny)  # NaN counts as nonzero, and so propagates
    _, exponent = jnp.frexp(top)  # top = mantissa * 2**exponent, mantissa in [1/2, 1)
    power = jnp.ldexp(jnp.ones_like(top), exponent - 1)
    c = jax.lax.stop_gradient(jnp.where(nonzero, power, 1))
    p, t = probs / c, targets / c
    tp = jnp.sum(p * t, axis=-1)
    s = jnp.where(nonzero[..., 0], jnp.sum(p + t, axis=-1), 0)
    return c, p, t, tp, s


def _safe(s):
    """``s`` with its zeros (all-zero examples) replaced by 1."""
    return jnp.where(s > 0, s, 1)


@op
def soft_f1(probs: jax.Array, targets: jax.Array) -> jax.Array:
    """Soft F1 loss per example: ``1 - 2 * sum(p * t) / (sum(p) + sum(t))`` over the last axis.

    F1 = 2 TP / (2 TP + FP + FN) counts thresholded predictions: as a function
    of the model's scores it is piecewise constant (its gradient is 0 almost
    everywhere, and undefined where a prediction crosses the threshold), so it
    cannot be trained on (see :func:`dlref.metrics.f1_score`, the metric). Soft
    F1 replaces the counts by soft counts from probabilities: TP = sum(p t),
    predicted positives sum(p), actual positives sum(t) (the expected counts
    if each prediction were drawn from Bernoulli(p); soft F1 is the ratio of
    those expectations, not the expected F1), and is smooth in p. At 0/1
    probabilities the soft counts are the counts and ``soft_f1 = 1 - F1``
    exactly (with ``zero_division=0``, scikit-learn's default); in between it
    is a smooth surrogate, and with 0/1 targets its gradient raises p where
    t = 1 and lowers it where t = 0.

    The last axis holds the predictions one F1 is computed over: for binary
    classification, the examples of a batch (pass shape ``(batch,)``, or
    ``(..., batch)``); for multi-label classification, one example's labels.
    Leading axes are independent and never reduced.

    Derivative: with ``S = sum(p) + sum(t)`` and ``f = 2 sum(p t) / S``,
    ``dp = (f - 2 t) / S * dy`` and ``dt = (f - 2 p) / S * dy``; for inputs
    in [0, 1] both are at most ``2 |dy|`` (``f / S <= 1/2`` and ``t <= S``), and
    ``dp <= 0`` where t = 1, ``dp >= 0`` where t = 0 (for ``dy > 0``).

    Args:
      probs: predicted probabilities in [0, 1], floating, shape ``(..., n)``.
      targets: targets in [0, 1] (0/1 labels or soft), the shape and dtype of
        ``probs``.

    Returns:
      The loss ``1 - soft F1``, in [0, 1], shape ``(...)``; 0 exactly when
      ``probs == targets`` is 0/1 with at least one 1.

    Numerics: ``S = 0`` (an all-zero example: nothing predicted, nothing
    true) gives loss 1 and gradient 0. Loss 1 is the continuous extension
    (soft F1 <= max(p, t) tends to 0 as every entry does) and 1 - F1 with
    ``zero_division=0``; the gradient, whose limit depends on the direction,
    is set to 0. An example whose entries are all subnormal counts as all-zero.
    A probability or target outside [0, 1] raises when concrete; under ``jit``
    its example's loss and gradients are NaN (a probability of 3 would give a
    loss of -0.5).
    Both soft counts are computed on the inputs divided by the example's
    largest entry rounded down to a power of two (held constant, as softmax's
    max; the division is exact), which leaves the ratio unchanged and keeps
    the scaled ``S >= 1``: neither the backward nor autodiff of this forward
    (whose ``1 / S**2`` overflows for tiny S) then divides by a tiny number.
    The value is formed as the soft misses over the counts, ``sum(p (1 - t) +
    t (1 - p)) / S``, whose terms are all >= 0: the equal ``1 - 2 TP / S``
    loses the digits of a good prediction's small loss (p = 1 - 2**-24, t = 1
    in float32 gave 6.0e-8 for 3.0e-8). Each product and ``1 - t`` is formed
    in two words, the sums as pairwise trees of exact two-word additions, and
    the quotient is corrected by its exact residual: the value is within 0.5
    ulp (0.50 the worst measured, for one entry and for rows of 4; about six
    roundings in the plain form gave 2.5 and 3.4). The gradient takes ``TP /
    S`` and ``2 / S`` from the same two-word sums and is within 4 ulp of
    ``max(f, 2 t) / S`` (3.16; tests/test_ulp.py). Autodiff, and the
    gradient's own derivative, differentiate the plain forms. A consequence
    of F1 itself: an example with no
    positive target has loss 1 whatever its predictions (F1 = 0) and no
    gradient for ``probs``, so false positives there are not pushed down;
    compute the loss over a batch axis when that matters.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import losses
      >>> targets = jnp.array([1.0, 0.0, 0.0])
      >>> losses.soft_f1(jnp.array([1.0, 0.0, 1.0]), targets)  # 0/1 probabilities: 1 - F1
      Array(0.33333334, dtype=float32)
      >>> jax.grad(losses.soft_f1)(jnp.array([0.5, 0.5, 0.0]), targets)  # raises p where t = 1
      Array([-0.75,  0.25,  0.25], dtype=float32)

    References:
      van Rijsbergen, Information Retrieval, 2nd ed., Butterworths (1979),
      chapter 7: the F measure. The soft counts above make it a smooth surrogate.
    """
    _check_pair("soft_f1", unit=("probs", "targets"), probs=probs, targets=targets)
    _, p, t, _, s = _soft_counts(probs, targets)
    # 1 - 2 TP / S = (soft FP + soft FN) / S = sum(p (1 - t) + t (1 - p)) / S: a
    # sum of non-negative terms, where 1 - 2 TP / S cancels for a good prediction.
    misses = jnp.sum(p * (1 - targets) + t * (1 - probs), axis=-1)
    value = value_of(misses / _safe(s), _misses_over_counts(probs, targets))
    return nan_where_not(_in_unit_rows(probs, targets), jnp.where(s <= 0, 1, value))


def _in_unit_rows(probs, targets):
    """True for an example whose probabilities and targets all lie in [0, 1]."""
    return jnp.all(in_unit(probs) & in_unit(targets), axis=-1)


def _words_counts(probs, targets):
    """``(p, t, tp, s)`` of :func:`_soft_counts` in float32 or float64, with ``tp``
    and ``s`` in two words (:func:`dlref._words.sum_words`): constants to autodiff."""
    probs, targets = (jax.lax.stop_gradient(wide(a)) for a in (probs, targets))
    c, p, t, _, _ = _soft_counts(probs, targets)
    tp = sum_words(*two_prod(p, t), axis=-1)
    s = sum_words(*two_sum(p, t), axis=-1)
    return c, p, t, tp, s


def _misses_over_counts(probs, targets):
    """The loss ``sum(p (1 - t) + t (1 - p)) / S`` to about 0.6 ulp: each product
    and ``1 - t`` in two words, the sums by :func:`dlref._words.sum_words`, the
    corrected quotient."""
    _, p, t, _, (s_hi, s_lo) = _words_counts(probs, targets)
    terms = []
    for a, b in ((p, targets), (t, probs)):
        b = wide(jax.lax.stop_gradient(b))
        rest, rest_lo = two_sum(one(b), -b)  # 1 - b
        hi, lo = two_prod(a, rest)
        terms.append((hi, lo + a * rest_lo))
    hi, lo = two_sum(terms[0][0], terms[1][0])
    m_hi, m_lo = sum_words(hi, lo + (terms[0][1] + terms[1][1]), axis=-1)
    value = quotient(m_hi, m_lo, _safe(s_hi), s_lo)
    return value[..., 0]


def _soft_f1_fwd(probs, targets):
    loss = soft_f1.autodiff(probs, targets)
    c, _, _, tp, s = _soft_counts(probs, targets)
    return loss, (probs, targets, c, tp, s)


def _soft_f1_bwd(res, dy):
    probs, targets, c, tp, s = res
    p, t = probs / c, targets / c  # the forward's scaled inputs
    _, _, _, (tp_hi, tp_lo), (s_hi, s_lo) = _words_counts(probs, targets)
    # In the scaled counts f = 2 c tp / s and S = c s, so
    # dp = (f - 2 targets) / S * dy = 2 (tp / s - t) / s * dy: c cancels, and s >= 1.
    # tp / s and 2 / s take their values from the two-word sums (the difference
    # with t then starts exact) and their derivatives (grad of grad) from the plain ones.
    q = value_of((tp / _safe(s))[..., None], quotient(tp_hi, tp_lo, _safe(s_hi), s_lo))
    k = jnp.where(s <= 0, 0, 2 / _safe(s))[..., None]  # 0 for an all-zero example
    k = value_of(k, jnp.where(s_hi <= 0, 0, 2 / _safe(s_hi)))
    dy = nan_where_not(_in_unit_rows(probs, targets), dy)[..., None]  # outside [0, 1]: NaN
    return dy * (k * (q - t)), dy * (k * (q - p))


soft_f1.defvjp(_soft_f1_fwd, _soft_f1_bwd)
