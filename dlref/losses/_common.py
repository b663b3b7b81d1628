"""Checks and helpers shared by the losses."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dlref import _checks
from dlref._checks import InputError


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
