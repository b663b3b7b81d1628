"""Regression losses: mean squared and mean absolute error, per example."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dlref._numerics import (
    abs0,
)
from dlref._op import op
from dlref.losses._common import _check_pair

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
