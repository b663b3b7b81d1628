"""Gradient descent over any pytree, as the cheat sheet writes it: ``W -= lr * dW``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dlref import _checks
from dlref._checks import InputError

__all__ = ["gradient_descent", "sgd"]

PyTree = Any


def gradient_descent(params: PyTree, grads: PyTree, learning_rate: float | jax.Array) -> PyTree:
    """One step of vanilla gradient descent: ``w - learning_rate * dw`` for every leaf.

    Args:
      params: a pytree of floating arrays.
      grads: its gradient, a pytree of the same structure and shapes.
      learning_rate: a scalar (a Python number, or a 0-d array for a schedule);
        NaN or infinite raises when concrete.

    Returns:
      The updated pytree, each leaf in its own dtype. Equal to one step of
      ``optax.sgd(learning_rate)`` (and of :func:`sgd`).

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import optim
      >>> params, grads = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([0.5, -1.0])}
      >>> optim.gradient_descent(params, grads, 0.5)
      {'w': Array([0.75, 2.5 ], dtype=float32)}
    """
    p_def, g_def = jax.tree.structure(params), jax.tree.structure(grads)
    if p_def != g_def:  # type: ignore[operator]  # jaxlib's PyTreeDef has no stub
        raise InputError(
            f"gradient_descent: `grads` must have the structure of `params`; got {g_def} vs {p_def}"
        )
    _check_learning_rate("gradient_descent", learning_rate)
    for w, dw in zip(jax.tree.leaves(params), jax.tree.leaves(grads), strict=True):
        if not jnp.issubdtype(jnp.result_type(w), jnp.floating):
            raise InputError(
                f"gradient_descent: every `params` leaf must be floating (an integer weight "
                f"would round the step away); got dtype {jnp.result_type(w)}"
            )
        if jnp.shape(w) != jnp.shape(dw):
            raise InputError(
                f"gradient_descent: each `grads` leaf must have its `params` leaf's shape; "
                f"got {jnp.shape(dw)} for {jnp.shape(w)}"
            )
    return jax.tree.map(
        lambda w, dw: w - jnp.asarray(learning_rate, w.dtype) * dw.astype(w.dtype), params, grads
    )


def _check_learning_rate(fn: str, learning_rate) -> None:
    """A scalar (a shaped one would change a leaf's shape); finite when concrete."""
    if jnp.ndim(learning_rate) != 0:
        raise InputError(
            f"{fn}: `learning_rate` must be a scalar; got shape {jnp.shape(learning_rate)}"
        )
    if _checks.is_concrete(learning_rate) and not np.isfinite(np.asarray(learning_rate)):
        raise InputError(f"{fn}: `learning_rate` must be finite; got {learning_rate}")


class SGDState(NamedTuple):
    """:func:`sgd` keeps no state.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import optim
      >>> optim.sgd(0.1).init({"w": jnp.zeros(2)})
      SGDState()
    """


def sgd(learning_rate: float) -> optax.GradientTransformation:
    """:func:`gradient_descent` as an optax ``GradientTransformation``:
    ``updates = -learning_rate * grads``, to use with ``optax.apply_updates``.

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from dlref import optim
      >>> params, grads = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([0.5, -1.0])}
      >>> tx = optim.sgd(0.5)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> optax.apply_updates(params, updates)  # as gradient_descent(params, grads, 0.5)
      {'w': Array([0.75, 2.5 ], dtype=float32)}
    """
    _check_learning_rate("sgd", learning_rate)

    def init(params):
        del params
        return SGDState()

    def update(grads, state, params=None):
        del params
        return jax.tree.map(lambda g: -jnp.asarray(learning_rate, g.dtype) * g, grads), state

    return optax.GradientTransformation(init, update)
