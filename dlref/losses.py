"""Objective functions, per example.

Every loss takes arrays of shape ``(..., d)``, where the last axis holds the
features or classes of one example, and returns shape ``(...)``: it reduces the
last axis only, never a batch axis (average over the batch yourself). A single
example is a 1-D array. Integer class labels have shape ``(...)``.

Reductions over the last axis: mse, mae and hinge take the *mean* (their names
say so); the cross-entropies take the *sum*, as in the cheat sheet's formula.

Each loss is an :func:`~dlref._op.op` with a hand-written backward giving the
gradient for every floating input (targets too); the logits versions use the
fused gradient ``softmax(z) - y`` / ``sigmoid(z) - y`` instead of the chain
through a log.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dlref import _checks
from dlref._checks import InputError
from dlref._numerics import (
    abs0,
    exp_sum,
    log1p,
    log_normalizer,
    nan_where_not,
    neg_abs,
    shifted_exp,
    two_sum,
    valid_labels,
)
from dlref._op import op

__all__ = [
    "mse",
    "mae",
    "hinge",
    "multiclass_hinge",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "categorical_cross_entropy",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "soft_f1",
]


def _check_pair(fn: str, *, mean: bool = False, unit: tuple[str, ...] = (), **arrays) -> None:
    """Two floating arrays of one dtype and one shape, with a feature axis; for a
    ``mean`` over it, a non-empty one; the arrays named in ``unit`` in [0, 1]."""
    _checks.arrays(fn, **arrays)
    _checks.floating(fn, **arrays)
    _checks.same_dtype(fn, **arrays)
    _checks.same_shape(fn, **arrays)
    name, x = next(iter(arrays.items()))
    _checks.min_rank(fn, name, x, 1, "the last axis holds one example's features")
    if mean and x.shape[-1] == 0:
        raise InputError(
            f"{fn}: `{name}` has an empty last axis: its mean is undefined; got shape {x.shape}"
        )
    _checks.in_unit_interval(fn, **{k: arrays[k] for k in unit})


def _clip_probs(p, low, high):
    """Clip the value into [low, high] but pass gradients straight through."""
    return p + jax.lax.stop_gradient(jnp.clip(p, low, high) - p)


def _one_hot(labels, like):
    """One-hot of integer ``labels`` with the class axis and dtype of ``like``."""
    classes = jnp.arange(like.shape[-1], dtype=labels.dtype).reshape((1,) * labels.ndim + (-1,))
    return (labels[..., None] == classes).astype(like.dtype)


# --- mse -----------------------------------------------------------------------


@op
def mse(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Mean squared error per example: ``mean((pred - target)**2)`` over the last axis.

    Derivative: ``dpred = 2 * (pred - target) / d * dy`` and ``dtarget = -dpred``,
    ``d`` the size of the last axis.

    Args:
      pred: predictions, floating, shape ``(..., d)``.
      target: targets, the shape and dtype of ``pred``.

    Returns:
      The loss, shape ``(...)``; 0 exactly when ``pred == target``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import losses
      >>> pred = jnp.array([[1.0, 2.0], [0.0, 0.0]])  # two examples
      >>> losses.mse(pred, jnp.array([[1.0, 4.0], [1.0, -1.0]]))  # the batch is kept
      Array([2., 1.], dtype=float32)
    """
    _check_pair("mse", mean=True, pred=pred, target=target)
    r = pred - target
    return jnp.mean(r * r, axis=-1)


def _mse_fwd(pred, target):
    return mse.autodiff(pred, target), (pred, target)


def _mse_bwd(res, dy):
    pred, target = res
    # dy * 2/d first: the one product with the residual cannot overflow before the end
    dpred = (dy[..., None] * (2 / pred.shape[-1])) * (pred - target)
    return dpred, -dpred


mse.defvjp(_mse_fwd, _mse_bwd)


# --- mae -----------------------------------------------------------------------


@op
def mae(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Mean absolute error per example: ``mean(|pred - target|)`` over the last axis.

    Derivative: ``dpred = sign(pred - target) / d * dy``, ``dtarget = -dpred``;
    at ``pred == target`` (the kink) the derivative is 0, the subgradient of
    smallest norm (``jnp.abs`` would give +1 under autodiff).

    Args:
      pred: predictions, floating, shape ``(..., d)``.
      target: targets, the shape and dtype of ``pred``.

    Returns:
      The loss, shape ``(...)``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import losses
      >>> losses.mae(jnp.array([[1.0, 2.0]]), jnp.array([[1.0, 4.0]]))
      Array([1.], dtype=float32)
      >>> jax.grad(losses.mae)(jnp.array([0.0, 1.0]), jnp.zeros(2))  # 0 at the kink
      Array([0. , 0.5], dtype=float32)
    """
    return _mean_abs(pred, target, abs0)  # derivative sign(r), 0 at 0


def _mean_abs(pred, target, absolute):
    _check_pair("mae", mean=True, pred=pred, target=target)
    return jnp.mean(absolute(pred - target), axis=-1)


def _mae_fwd(pred, target):
    # The kink convention lives in the backward, so the plain |r| serves here.
    return _mean_abs(pred, target, jnp.abs), (pred, target)


def _mae_bwd(res, dy):
    pred, target = res
    # The sign by comparison: pred - target may be subnormal and flushed to 0
    # (XLA on the CPU), which would make the slope 0 away from the kink. NaN stays NaN.
    sign = jnp.where(pred > target, 1, jnp.where(pred < target, -1, jnp.sign(pred - target)))
    dpred = dy[..., None] * (sign / pred.shape[-1])
    return dpred, -dpred


mae.defvjp(_mae_fwd, _mae_bwd)


# --- hinge ---------------------------------------------------------------------


def _check_signs(fn: str, labels) -> None:
    if _checks.is_concrete(labels) and labels.size:
        labels = np.asarray(labels)  # numpy: a concrete closure under jit stays concrete
        bad = np.abs(labels) != 1
        if np.any(bad):
            raise InputError(
                f"{fn}: `labels` must be -1 or +1; got {labels[bad][:5].tolist()} among them"
            )


@op
def hinge(scores: jax.Array, labels: jax.Array) -> jax.Array:
    """Hinge loss per example: ``mean(max(0, 1 - labels * scores))`` over the last axis.

    Derivative: where the margin ``1 - labels * scores`` is positive,
    ``dscores = -labels / d * dy`` and ``dlabels = -scores / d * dy``; 0 where it
    is negative, and 0 at exactly the margin (optax's autodiff gives half there).

    Args:
      scores: raw scores, floating, shape ``(..., d)``; one binary decision per entry.
      labels: -1 or +1, the shape and dtype of ``scores``.

    Returns:
      The loss, shape ``(...)``; 0 once every ``labels * scores >= 1``.

    Numerics: labels other than -1 and +1 (0/1 labels, say) raise when
    concrete; under ``jit`` they make the example's loss and gradients NaN. A
    NaN score gives a NaN loss (never the 0 of a failed ``margin > 0``).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import losses
      >>> scores, labels = jnp.array([2.0, 1.0, 0.5, -1.0]), jnp.ones(4)
      >>> losses.hinge(scores, labels)  # the mean of 0, 0, 0.5 and 2
      Array(0.625, dtype=float32)
      >>> jax.grad(losses.hinge)(scores, labels)  # 0 at exactly the margin (score 1)
      Array([ 0.  ,  0.  , -0.25, -0.25], dtype=float32)

    References:
      Cortes and Vapnik, Support-vector networks, Machine Learning 20(3),
      273-297 (1995).
    """
    _check_pair("hinge", mean=True, scores=scores, labels=labels)
    _check_signs("hinge", labels)
    margin = nan_where_not(jnp.abs(labels) == 1, 1 - labels * scores)
    return jnp.mean(jnp.where(margin <= 0, 0, margin), axis=-1)


def _hinge_fwd(scores, labels):
    return hinge.autodiff(scores, labels), (scores, labels)


def _hinge_bwd(res, dy):
    scores, labels = res
    g = jnp.where(1 - labels * scores <= 0, 0, -dy[..., None] / scores.shape[-1])
    g = nan_where_not(jnp.abs(labels) == 1, g)
    return g * labels, g * scores


hinge.defvjp(_hinge_fwd, _hinge_bwd)


# --- multiclass_hinge ----------------------------------------------------------


def _multiclass_parts(scores, labels):
    """The true class's one-hot, the scores with it masked out, the strongest
    rival's score and the margin."""
    own = _one_hot(labels, scores)
    rivals = jnp.where(own > 0, -jnp.inf, scores)
    rival = jnp.max(rivals, axis=-1)
    # 1 - (s_y - rival) with the difference kept exactly (lead + lo): near the
    # margin 1 + rival - s_y cancels, and a rounded 1 + rival would leave only
    # noise (and a gradient switched on or off by it).
    lead, lo = two_sum(jnp.sum(own * scores, axis=-1), -rival)
    margin = (1 - lead) - lo
    return own, rivals, rival, margin


@op
def multiclass_hinge(scores: jax.Array, labels: jax.Array) -> jax.Array:
    """Multiclass (Crammer-Singer) hinge loss per example.

    ``loss = max(0, 1 + max_{j != y} s_j - s_y)``, with ``y`` the true class:
    zero once the true class beats every other by a margin of 1 (the same value
    as ``optax.losses.multiclass_hinge_loss`` and, averaged over a batch,
    ``sklearn.metrics.hinge_loss``).

    Derivative: where the margin is positive, +dy on the strongest rival class
    and -dy on the true class; 0 elsewhere and at exactly the margin. Rivals
    tied for strongest share the +dy equally (as autodiff of ``jnp.max`` does).

    Args:
      scores: raw scores, floating, shape ``(..., C)`` with ``C >= 2``.
      labels: integer class labels in [0, C), shape ``(...)``.

    Returns:
      The loss, shape ``(...)``.

    Numerics: labels outside [0, C) raise when concrete; under ``jit`` they
    make that example's loss and gradient NaN. A NaN score gives a NaN loss.
    The margin is ``1 - (s_y - rival)`` with the difference carried exactly
    (TwoSum), so it is correctly rounded near 0 and its sign, which switches the
    gradient, is exact.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import losses
      >>> scores = jnp.array([[3.0, 1.0, 0.0], [1.0, 0.5, 2.0]])
      >>> losses.multiclass_hinge(scores, jnp.array([0, 0]))  # 0, then 1 + 2 - 1
      Array([0., 2.], dtype=float32)

    References:
      Crammer and Singer, On the algorithmic implementation of multiclass
      kernel-based vector machines, JMLR 2, 265-292 (2001).
    """
    _checks.class_labels("multiclass_hinge", scores, labels, "scores")
    if scores.shape[-1] < 2:
        raise InputError(f"multiclass_hinge: `scores` needs >= 2 classes; got shape {scores.shape}")
    *_, margin = _multiclass_parts(scores, labels)
    margin = nan_where_not(valid_labels(labels, scores.shape[-1]), margin)
    return jnp.where(margin <= 0, 0, margin)


def _multiclass_hinge_fwd(scores, labels):
    loss = multiclass_hinge.autodiff(scores, labels)
    return loss, (scores, labels)


def _multiclass_hinge_bwd(res, dy):
    scores, labels = res
    own, rivals, rival, margin = _multiclass_parts(scores, labels)
    strongest = (rivals == rival[..., None]).astype(scores.dtype)
    share = strongest / jnp.sum(strongest, axis=-1, keepdims=True)
    g = jnp.where(margin <= 0, 0, dy)
    g = nan_where_not(valid_labels(labels, scores.shape[-1]), g)[..., None]
    return g * (share - own), None


multiclass_hinge.defvjp(_multiclass_hinge_fwd, _multiclass_hinge_bwd)


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
    >= 0; each entry is within 2.5 ulp (XLA's exp, then log1p, as in softplus).
    The exp is of a non-positive number and never overflows, and no clip
    is needed; ``log(sigmoid(z))`` would underflow to -inf for z below about
    -104 in float32. The gradient ``sigmoid(z) - t`` is formed as
    ``(1 - t) - sigmoid(-z)`` for z > 0, so with t = 1 it is ``-sigmoid(-z)`` to
    a few ulps rather than the rounding noise of ``sigmoid(z) - 1``.

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
    return jnp.sum(linear + log1p(jnp.exp(neg_abs(z))), axis=-1)


def _bce_logits_fwd(logits, targets):
    return binary_cross_entropy_with_logits.autodiff(logits, targets), (logits, targets)


def _bce_logits_bwd(res, dy):
    logits, targets = res
    dy = dy[..., None]
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
    loss +inf.

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
    return -jnp.sum(targets * log_p, axis=-1)


def _softmax_cross_entropy_fwd(logits, targets):
    loss = softmax_cross_entropy.autodiff(logits, targets)
    top, log_sum = log_normalizer(logits, -1)
    return loss, (logits, targets, top, log_sum, exp_sum(logits, top, -1))


def _softmax_cross_entropy_bwd(res, dy):
    logits, targets, top, log_sum, exp_sum = res
    log_p = _masked((logits - top) - log_sum, targets)  # the forward's log-probabilities
    dy = dy[..., None]
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
    Both soft counts are computed on the inputs divided by the example's
    largest entry rounded down to a power of two (held constant, as softmax's
    max; the division is exact), which leaves the ratio unchanged and keeps
    the scaled ``S >= 1``: neither the backward nor autodiff of this forward
    (whose ``1 / S**2`` overflows for tiny S) then divides by a tiny number.
    The value is formed as the soft misses over the counts, ``sum(p (1 - t) +
    t (1 - p)) / S``, whose terms are all >= 0: the equal ``1 - 2 TP / S``
    loses the digits of a good prediction's small loss (p = 1 - 2**-24, t = 1
    in float32 gave 6.0e-8 for 3.0e-8). The value takes about six roundings:
    it is within 3 ulp for one entry and 4 ulp for rows of 4 (2.5 and 3.4 the
    worst measured), the gradient within 5 ulp of ``max(f, 2 t) / S`` (4.7;
    tests/test_ulp.py). A consequence of F1 itself: an example with no
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
    return jnp.where(s <= 0, 1, misses / _safe(s))


def _soft_f1_fwd(probs, targets):
    loss = soft_f1.autodiff(probs, targets)
    c, _, _, tp, s = _soft_counts(probs, targets)
    return loss, (probs, targets, c, tp, s)


def _soft_f1_bwd(res, dy):
    probs, targets, c, tp, s = res
    p, t = probs / c, targets / c  # the forward's scaled inputs
    # In the scaled counts f = 2 c tp / s and S = c s, so
    # dp = (f - 2 targets) / S * dy = 2 (tp / s - t) / s * dy: c cancels, and s >= 1.
    q = (tp / _safe(s))[..., None]
    k = jnp.where(s <= 0, 0, 2 / _safe(s))[..., None]  # 0 for an all-zero example
    dy = dy[..., None]
    return dy * (k * (q - t)), dy * (k * (q - p))


soft_f1.defvjp(_soft_f1_fwd, _soft_f1_bwd)
