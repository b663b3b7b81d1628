"""L1 and L2 penalties over any pytree of parameters, and the L1 proximal step.

Conventions: ``l1(w) = sum |w|`` and ``l2(w) = 0.5 * sum w**2`` (so that the
gradient of ``l2`` is ``w`` itself, as optax's weight decay assumes). Scale by
your penalty strength: ``loss + lam * l2(params)``.

L1 gives sparse models and L2 does not, but a plain (sub)gradient step on L1
almost never lands on exactly 0: it oscillates around it. The proximal step
:func:`l1_prox` (soft-thresholding) does give exact zeros.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from dlref import _checks
from dlref._numerics import abs0
from dlref._op import op

__all__ = ["l1", "l2", "l1_prox"]

PyTree = Any


def _leaves(fn: str, params: PyTree) -> list[jax.Array]:
    leaves = jax.tree_util.tree_leaves(params)
    _checks.floating(fn, **{f"params leaf {i}": leaf for i, leaf in enumerate(leaves)})
    return leaves


def _total(leaves: list[jax.Array], per_leaf) -> jax.Array:
    """Sum of ``per_leaf(leaf)`` over leaves, in the widest leaf dtype."""
    if not leaves:
        return jnp.zeros(())
    with jax.numpy_dtype_promotion("standard"):  # an explicit choice, allowed in strict mode
        dtype = jnp.result_type(*leaves)
    return functools.reduce(jnp.add, (jnp.sum(per_leaf(leaf)).astype(dtype) for leaf in leaves))


@op
def l1(params: PyTree) -> jax.Array:
    """L1 penalty: ``l1(w) = sum |w|`` over every leaf of a pytree.

    Derivative: ``dw = sign(w) * dy``, with the subgradient 0 at w = 0 (the one
    of smallest norm; ``jnp.abs`` would give +1 under autodiff).

    Args:
      params: a pytree of floating arrays (a dict, a NamedTuple of layers...).

    Returns:
      A scalar, in the widest dtype among the leaves.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import regularizers
      >>> params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array([0.0])}
      >>> regularizers.l1(params)
      Array(3., dtype=float32)
      >>> jax.grad(regularizers.l1)(params)  # sign(w), and 0 at w = 0
      {'b': Array([0.], dtype=float32), 'w': Array([ 1., -1.], dtype=float32)}

    References:
      Tibshirani, Regression shrinkage and selection via the lasso, Journal of
      the Royal Statistical Society B 58(1), 267-288 (1996).
    """
    return _total(_leaves("l1", params), abs0)  # derivative sign(w), 0 at 0


def _l1_fwd(params):
    # The kink convention lives in the backward, so the plain |w| serves here.
    return _total(_leaves("l1", params), jnp.abs), (params,)


def _l1_bwd(res, dy):
    (params,) = res
    return (jax.tree.map(lambda w: dy.astype(w.dtype) * jnp.sign(w), params),)


l1.defvjp(_l1_fwd, _l1_bwd)


@op
def l2(params: PyTree) -> jax.Array:
    """L2 penalty: ``l2(w) = 0.5 * sum w**2`` over every leaf of a pytree.

    Derivative: ``dw = w * dy``: the 1/2 makes it the weights themselves, so
    ``lam * l2`` adds ``lam * w`` to the gradient (optax's ``add_decayed_weights``).
    Twice this is the squared Euclidean norm.

    Args:
      params: a pytree of floating arrays.

    Returns:
      A scalar, in the widest dtype among the leaves.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import regularizers
      >>> params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array([0.0])}
      >>> regularizers.l2(params)  # 0.5 * (1 + 4)
      Array(2.5, dtype=float32)
      >>> jax.grad(regularizers.l2)(params)  # the weights themselves
      {'b': Array([0.], dtype=float32), 'w': Array([ 1., -2.], dtype=float32)}
    """
    return 0.5 * _total(_leaves("l2", params), lambda w: w * w)


def _l2_fwd(params):
    return l2.autodiff(params), (params,)


def _l2_bwd(res, dy):
    (params,) = res
    return (jax.tree.map(lambda w: dy.astype(w.dtype) * w, params),)


l2.defvjp(_l2_fwd, _l2_bwd)


@op(arrays=("threshold",))
def l1_prox(params: PyTree, *, threshold: float | jax.Array) -> PyTree:
    """Proximal step of the L1 penalty (soft-thresholding), leaf by leaf.

    ``prox(w) = argmin_v 0.5 * (v - w)**2 + threshold * |v|
              = sign(w) * max(|w| - threshold, 0)``:
    weights within ``threshold`` of 0 become exactly 0, the rest shrink toward 0
    by ``threshold``. One step of proximal gradient descent on
    ``loss + lam * l1(w)`` with learning rate ``lr`` is
    ``l1_prox(w - lr * grad(loss), threshold=lr * lam)``.

    Derivative: ``dw = dy`` where ``|w| > threshold`` (where the output is not
    0), else 0 (0 at exactly the threshold); ``dthreshold = -sum(sign(w) * dy)``
    over the same entries of every leaf (a threshold given as an array can be
    differentiated, for a learned or meta-learned penalty).

    Args:
      params: a pytree of floating arrays.
      threshold: a non-negative number, or a scalar array (it may be traced under
        ``jit``, e.g. ``lr * lam`` from a schedule); it takes each leaf's dtype. A
        negative one raises when concrete and is clipped to 0 under ``jit``.

    Returns:
      A pytree like ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import regularizers
      >>> w = jnp.array([-2.0, -0.5, 0.0, 0.5, 3.0])
      >>> regularizers.l1_prox(w, threshold=1.0)  # exact zeros within the threshold
      Array([-1.,  0.,  0.,  0.,  2.], dtype=float32)

    References:
      Tibshirani, Regression shrinkage and selection via the lasso, Journal of
      the Royal Statistical Society B 58(1), 267-288 (1996).

      Parikh and Boyd, Proximal algorithms, Foundations and Trends in
      Optimization 1(3), 127-239 (2014): the proximal operator of the L1 norm
      is soft-thresholding.
    """
    _leaves("l1_prox", params)
    _checks.in_interval("l1_prox", "threshold", threshold, 0, float("inf"))
    return jax.tree.map(lambda w: _soft_threshold(w, threshold), params)


def _soft_threshold(w, threshold):
    """Within the threshold: exactly 0; a NaN weight stays NaN (never a silent 0).
    The threshold takes the weight's dtype, and a negative one (possible only
    under ``jit``, where it cannot be checked) is clipped to 0."""
    t = jnp.maximum(jnp.asarray(threshold, w.dtype), 0)
    return jnp.where(w > t, w - t, jnp.where(w < -t, w + t, jnp.where(jnp.isnan(w), w, 0)))


def _l1_prox_fwd(params, *, threshold):
    return l1_prox.autodiff(params, threshold=threshold), (params,)


def _l1_prox_bwd(res, dy, *, threshold):
    (params,) = res

    # "Output not 0" rather than |w| > t: the forward's own expression, so XLA
    # computes value and gradient in one pass over w (w > t implies w - t != 0).
    def grad(w, d):
        return jnp.where(_soft_threshold(w, threshold) != 0, d, 0)

    dparams = jax.tree.map(grad, params, dy)
    # d prox / d threshold = -sign(w) where the output is not 0; 0 where a negative
    # threshold (under jit) is clipped to 0.
    dt = sum(
        jnp.sum(-jnp.sign(w) * d)
        for w, d in zip(jax.tree.leaves(params), jax.tree.leaves(dparams), strict=True)
    )
    dt = jnp.where(jnp.asarray(threshold) >= 0, dt, 0).astype(jnp.result_type(threshold))
    return dparams, {"threshold": dt}


l1_prox.defvjp(_l1_prox_fwd, _l1_prox_bwd)
