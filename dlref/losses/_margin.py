"""Margin losses: the binary and the multiclass (Crammer-Singer) hinge, per example."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dlref import _checks
from dlref._checks import InputError
from dlref._numerics import (
    nan_where_not,
    two_sum,
    valid_labels,
)
from dlref._op import op
from dlref.losses._common import _check_pair, _one_hot

# --- hinge ---------------------------------------------------------------------


def _check_signs(fn: str, labels) -> None:
    if not _checks.is_concrete(labels):
        _checks.defer(lambda: jnp.abs(labels) != 1)
    elif labels.size:
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
    concrete; under ``jit`` a label of 0 (the 0/1 convention's negative class)
    makes its entry's loss and gradients NaN (other values cannot be told from a
    differentiated label near +-1, and are left to the eager check). A
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
    margin = nan_where_not(labels != 0, 1 - labels * scores)
    return jnp.mean(jnp.where(margin <= 0, 0, margin), axis=-1)


def _hinge_fwd(scores, labels):
    return hinge.autodiff(scores, labels), (scores, labels)


def _hinge_bwd(res, dy):
    scores, labels = res
    g = jnp.where(1 - labels * scores <= 0, 0, -dy[..., None] / scores.shape[-1])
    g = nan_where_not(labels != 0, g)
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
