"""Cross-entropies: binary and categorical, on probabilities and on logits,
and against integer labels, per example."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dlref import _checks
from dlref._numerics import (
    exp_sum,
    in_unit,
    log1p,
    log_normalizer,
    nan_where_not,
    neg_abs,
    shifted_exp,
    valid_labels,
)
from dlref._op import op
from dlref._words import softplus_tail
from dlref.losses._common import _check_pair, _clip_probs

# --- binary cross-entropy on probabilities -----------------------------------


def _unit_bounds(p):
    """Clip bounds [eps, 1 - eps], eps the machine epsilon of the dtype."""
    eps = jnp.finfo(p.dtype).eps
    return eps, 1 - eps


@op
def binary_cross_entropy(probs: jax.Array, targets: jax.Array) -> jax.Array:
    """Binary cross-entropy on probabilities (the cheat sheet's formula), per example.

    ``loss = -sum(t * log(p) + (1 - t) * log(1 - p))`` over the last axis.

    Derivative: ``dp = (p - t) / (p * (1 - p)) * dy`` and
    ``dt = -(log(p) - log(1 - p)) * dy = log((1 - p) / p) * dy``.

    Args:
      probs: predicted probabilities in [0, 1], floating, shape ``(..., d)``.
      targets: target probabilities in [0, 1] (0/1 labels or soft), the shape and
        dtype of ``probs``.

    Returns:
      The loss, shape ``(...)``.

    Numerics: ``p`` is clipped to ``[eps, 1 - eps]``, eps the dtype's machine
    epsilon (2.2e-16 in float64, 1.2e-7 in float32, 9.8e-4 in float16), so
    p = 0 or 1 gives a finite loss (at most ``-log(eps)`` per entry: 36.0 in
    float64, 15.9 in float32). The clip passes the gradient straight through:
    the derivative is the formula's at the clipped p, so a confidently wrong
    prediction keeps a large, finite gradient (at most 1/eps) instead of none.
    ``log(1 - p)`` is computed as ``log1p(-p)`` (dlref's own: XLA's log1p is off
    by up to 128 ulp in float64 for p in [0.3, 0.6]). ``dt`` is formed as
    ``log1p((1 - 2p) / p)`` for p in [1/4, 3/4], where ``log p - log(1 - p)``
    cancels (it is 0 at p = 1/2), and as that difference elsewhere. For logits use
    :func:`binary_cross_entropy_with_logits`, which needs no clip.
    Probabilities or targets outside [0, 1] raise when concrete; under ``jit``
    such probabilities are clipped as above and such targets give a meaningless
    (possibly negative) loss.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import losses
      >>> probs, targets = jnp.array([[0.5], [0.0]]), jnp.array([[1.0], [1.0]])
      >>> losses.binary_cross_entropy(probs, targets)  # log(2); p = 0 is clipped to eps
      Array([ 0.6931472, 15.942385 ], dtype=float32)

    References:
      Shannon (1948); Cover and Thomas (2006): see :func:`categorical_cross_entropy`.
    """
    _check_pair("binary_cross_entropy", unit=("probs", "targets"), probs=probs, targets=targets)
    p = _clip_probs(probs, *_unit_bounds(probs))
    return -jnp.sum(targets * jnp.log(p) + (1 - targets) * log1p(-p), axis=-1)


def _binary_cross_entropy_fwd(probs, targets):
    return binary_cross_entropy.autodiff(probs, targets), (probs, targets)


def _binary_cross_entropy_bwd(res, dy):
    probs, targets = res
    p = _clip_probs(probs, *_unit_bounds(probs))  # the forward's p, log p, log1p(-p)
    dy = dy[..., None]
    return dy * ((p - targets) / (p * (1 - p))), dy * _log_odds_against(p)


def _log_odds_against(p):
    """``log((1 - p) / p)`` to a few ulps: ``log1p((1 - 2p) / p)`` on [1/4, 3/4],
    where ``1 - 2p`` is exact and the two logs would cancel; their difference
    elsewhere, where they do not."""
    middle = (p >= 0.25) & (p <= 0.75)
    q = jnp.where(middle, p, 0.5)  # the other branch's input, kept harmless
    return jnp.where(middle, log1p((1 - 2 * q) / q), log1p(-p) - jnp.log(p))


binary_cross_entropy.defvjp(_binary_cross_entropy_fwd, _binary_cross_entropy_bwd)


# --- binary cross-entropy on logits ------------------------------------------


@op
def binary_cross_entropy_with_logits(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Binary cross-entropy of ``sigmoid(logits)`` against targets, per example.

    ``loss = sum(softplus(z) - t * z)`` over the last axis, which equals the
    cheat sheet's ``-sum(t log p + (1 - t) log(1 - p))`` at ``p = sigmoid(z)``.

    Derivative (fused): ``dz = (sigmoid(z) - t) * dy`` and ``dt = -z * dy``.

    Args:
      logits: raw scores, floating, shape ``(..., d)``.
      targets: target probabilities in [0, 1], the shape and dtype of ``logits``.

    Returns:
      The loss, shape ``(...)``.

    Numerics: each entry is ``(relu(z) - t * z) + log1p(exp(-|z|))``: the
    large terms cancel first (exactly, for t = 1 and z > 0 or t = 0 and
    z < 0), then the small one is added, so a confident, correct prediction
    keeps its tiny loss (z = 100, t = 1 gives 3.7e-44, not 0). The textbook
    order ``softplus(z) - t * z`` rounds the small term against the large one
    first: it loses bits from z of a few units and gives 0 from z of about 15
    in float32 and 34 in float64. ``relu(z) - t * z`` is formed as
    ``z * (1 - t)`` for z > 0 and ``-t * z`` otherwise (``1 - t`` is exact for
    t >= 1/2), so a soft target near 1 does not cancel either; both terms are
    >= 0; each entry is within 2 ulp (the exp in two words, then log1p, as in
    softplus; 1.89 the worst measured).
    A target outside [0, 1] raises when concrete; under ``jit`` its entry's
    loss, and the gradients there, are NaN. The exp is of a non-positive number
    and never overflows, and no clip is needed; ``log(sigmoid(z))`` would
    underflow to -inf for z below about -104 in float32. The gradient
    ``sigmoid(z) - t`` is formed as ``(1 - t) - sigmoid(-z)`` for z > 0, so with
    t = 1 it is ``-sigmoid(-z)`` to a few ulps rather than the rounding noise of
    ``sigmoid(z) - 1``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import losses
      >>> logits, targets = jnp.array([[0.0], [20.0]]), jnp.array([[1.0], [1.0]])
      >>> losses.binary_cross_entropy_with_logits(logits, targets)  # log(2); the tiny loss kept
      Array([6.9314718e-01, 2.0611537e-09], dtype=float32)
    """
    _check_pair(
        "binary_cross_entropy_with_logits", unit=("targets",), logits=logits, targets=targets
    )
    z = logits
    # relu(z) - t z without cancellation: z (1 - t) for z > 0, -t z otherwise
    linear = z * jnp.where(z > 0, 1 - targets, -targets)
    return jnp.sum(nan_where_not(in_unit(targets), linear + softplus_tail(z)), axis=-1)


def _bce_logits_fwd(logits, targets):
    return binary_cross_entropy_with_logits.autodiff(logits, targets), (logits, targets)


def _bce_logits_bwd(res, dy):
    logits, targets = res
    dy = nan_where_not(in_unit(targets), dy[..., None])  # a target outside [0, 1]: NaN
    e = jnp.exp(neg_abs(logits))
    low = e / (1 + e)  # sigmoid(-|z|): sigmoid(z) - t = (1 - t) - low for z > 0
    dlogits = jnp.where(logits > 0, (1 - targets) - low, low - targets)
    return dy * dlogits, -dy * logits


binary_cross_entropy_with_logits.defvjp(_bce_logits_fwd, _bce_logits_bwd)


# --- categorical cross-entropy on probabilities ------------------------------


@op
def categorical_cross_entropy(probs: jax.Array, targets: jax.Array) -> jax.Array:
    """Categorical cross-entropy on probabilities, per example: ``-sum(t * log(p))``.

    With one-hot targets this is ``-log p[true class]``. Cross-entropy is the
    information-theoretic cost of coding ``t`` with a code built for ``p``
    (Shannon), not the thermodynamic entropy.

    Derivative: ``dp = -t / p * dy`` and ``dt = -log(p) * dy``.

    Args:
      probs: predicted distribution over the last axis, floating, shape ``(..., C)``.
      targets: target distribution (one-hot or soft), the shape and dtype of ``probs``.

    Returns:
      The loss, shape ``(...)``.

    Numerics: ``p`` is clipped below at eps, the dtype's machine epsilon, with
    the gradient passed straight through (see :func:`binary_cross_entropy`), so
    p = 0 gives a finite loss and gradient. For logits use
    :func:`softmax_cross_entropy`. Entries outside [0, 1] (a negative target
    probability) raise when concrete; under ``jit`` they are not checked.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import losses
      >>> probs = jnp.array([0.5, 0.25, 0.25])
      >>> losses.categorical_cross_entropy(probs, jnp.array([0.0, 1.0, 0.0]))  # -log(1/4)
      Array(1.3862944, dtype=float32)

    References:
      Shannon, A mathematical theory of communication, Bell System Technical
      Journal 27, 379-423 and 623-656 (1948).

      Cover and Thomas, Elements of Information Theory, 2nd ed., Wiley (2006),
      chapter 2: the cross-entropy of ``t`` and ``p`` is ``H(t) + D(t || p)``.
    """
    _check_pair(
        "categorical_cross_entropy", unit=("probs", "targets"), probs=probs, targets=targets
    )
    p = _clip_probs(probs, jnp.finfo(probs.dtype).eps, 1)
    return -jnp.sum(targets * jnp.log(p), axis=-1)


def _categorical_cross_entropy_fwd(probs, targets):
    return categorical_cross_entropy.autodiff(probs, targets), (probs, targets)


def _categorical_cross_entropy_bwd(res, dy):
    probs, targets = res
    p = _clip_probs(probs, jnp.finfo(probs.dtype).eps, 1)  # the forward's p and log p
    dy = dy[..., None]
    return -dy * (targets / p), -dy * jnp.log(p)


categorical_cross_entropy.defvjp(_categorical_cross_entropy_fwd, _categorical_cross_entropy_bwd)


# --- softmax cross-entropy on logits -----------------------------------------


def _masked(log_p, targets):
    """log_p, with -inf (masked or underflowed) entries of zero target set to 0."""
    return jnp.where(jnp.isneginf(log_p) & (targets == 0), 0, log_p)


@op
def softmax_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Cross-entropy of ``softmax(logits)`` against target distributions, per example.

    ``loss = -sum(t * log_softmax(z))`` over the last axis (classes).

    Derivative (fused): ``dz = (softmax(z) * sum(t) - t) * dy``, which is the
    familiar ``softmax(z) - t`` when the targets sum to 1; ``dt = -log_softmax(z) * dy``.

    Args:
      logits: raw class scores, floating, shape ``(..., C)``.
      targets: target distributions (one-hot or soft), the shape and dtype of ``logits``.

    Returns:
      The loss, shape ``(...)``.

    Numerics: ``log_softmax(z) = (z - max) - log(sum(exp(z - max)))``, stable for
    any finite logits; the log of the sum is ``log1p`` of its terms after one
    maximal entry, so a confident, correct prediction keeps its small loss (see
    :func:`dlref.activations.log_softmax`). The backward keeps only per-example
    scalars (max, log-sum, sum) and recomputes ``softmax(z)`` from the logits,
    so no (batch, C) array of log-probabilities is stored. The gradient
    ``softmax(z) * sum(t) - t`` is a difference: where its two terms nearly
    cancel (a confident true class) it is accurate to 4.5 ulp of the larger
    term (3.92 the worst measured; tests/test_ulp.py), not of the result.
    Logits masked with ``-inf`` where the target is 0 contribute 0 (not
    ``0 * -inf = NaN``) and get gradient 0; their derivative with respect to
    the target, mathematically +inf, is set to 0. A masked true class gives
    loss +inf. A target outside [0, 1] raises when concrete; under ``jit`` its
    example's loss and gradients are NaN.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import losses
      >>> targets = jnp.array([0.0, 1.0, 0.0, 0.0])
      >>> losses.softmax_cross_entropy(jnp.zeros(4), targets)  # log(4)
      Array(1.3862944, dtype=float32)
      >>> jax.grad(losses.softmax_cross_entropy)(jnp.zeros(4), targets)  # softmax(z) - t
      Array([ 0.25, -0.75,  0.25,  0.25], dtype=float32)
    """
    _check_pair("softmax_cross_entropy", unit=("targets",), logits=logits, targets=targets)
    top, log_sum = log_normalizer(logits, -1)
    log_p = _masked((logits - top) - log_sum, targets)
    return nan_where_not(_unit_rows(targets), -jnp.sum(targets * log_p, axis=-1))


def _unit_rows(targets):
    """True for an example whose targets all lie in [0, 1]."""
    return jnp.all(in_unit(targets), axis=-1)


def _softmax_cross_entropy_fwd(logits, targets):
    loss = softmax_cross_entropy.autodiff(logits, targets)
    top, log_sum = log_normalizer(logits, -1)
    return loss, (logits, targets, top, log_sum, exp_sum(logits, top, -1))


def _softmax_cross_entropy_bwd(res, dy):
    logits, targets, top, log_sum, exp_sum = res
    log_p = _masked((logits - top) - log_sum, targets)  # the forward's log-probabilities
    dy = nan_where_not(_unit_rows(targets), dy)[..., None]  # targets outside [0, 1]: NaN
    scale = dy * jnp.sum(targets, axis=-1, keepdims=True) / exp_sum  # one division per row
    return shifted_exp(logits, top) * scale - dy * targets, -dy * log_p


softmax_cross_entropy.defvjp(_softmax_cross_entropy_fwd, _softmax_cross_entropy_bwd)


# --- softmax cross-entropy with integer labels -------------------------------


@op
def softmax_cross_entropy_with_integer_labels(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Cross-entropy of ``softmax(logits)`` against integer labels, per example.

    ``loss = -log_softmax(z)[y] = logsumexp(z) - z[y]``.

    Derivative (fused): ``dz = (softmax(z) - one_hot(y)) * dy``; labels get no
    gradient.

    Args:
      logits: raw class scores, floating, shape ``(..., C)``.
      labels: integer class labels in [0, C), shape ``(...)``.

    Returns:
      The loss, shape ``(...)``.

    Numerics: ``log(sum(exp(z - max))) - (z[y] - max)``, stable for any finite
    logits; only the true class's log-probability is formed, and the backward
    recomputes ``softmax(z)`` from the logits and the per-example max and
    log-sum. Masked ``-inf`` logits get gradient 0. Labels outside [0, C) raise
    when concrete; under ``jit`` they make that example's loss and gradient NaN.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import losses
      >>> logits, labels = jnp.zeros((2, 4)), jnp.array([1, 3])  # labels: shape (batch,)
      >>> losses.softmax_cross_entropy_with_integer_labels(logits, labels)  # log(4) each
      Array([1.3862944, 1.3862944], dtype=float32)
    """
    _checks.class_labels("softmax_cross_entropy_with_integer_labels", logits, labels)
    top, log_sum = log_normalizer(logits, -1)
    picked = jnp.take_along_axis(logits, labels[..., None], axis=-1, mode="fill")
    return nan_where_not(valid_labels(labels, logits.shape[-1]), (log_sum - (picked - top))[..., 0])


def _sce_labels_fwd(logits, labels):
    loss = softmax_cross_entropy_with_integer_labels.autodiff(logits, labels)
    top, _ = log_normalizer(logits, -1)
    return loss, (logits, labels, top, exp_sum(logits, top, -1))


def _sce_labels_bwd(res, dy):
    logits, labels, top, exp_sum = res
    dy = nan_where_not(valid_labels(labels, logits.shape[-1]), dy)
    probs_dy = shifted_exp(logits, top) * (dy[..., None] / exp_sum)  # one division per row
    # Subtract dy at each true class in place: a scatter of one entry per
    # example, where a one-hot would be a compare over every logit.
    true_class = (*jnp.indices(labels.shape, sparse=True), labels)
    return probs_dy.at[true_class].add(-dy), None


softmax_cross_entropy_with_integer_labels.defvjp(_sce_labels_fwd, _sce_labels_bwd)
