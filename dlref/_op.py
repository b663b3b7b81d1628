"""The op mechanism: a plain JAX forward plus a hand-written backward.

Every differentiable function in dlref is written three times, side by side:

    @op
    def sigmoid(x):                 # the plain forward: autodiff differentiates this
        ...

    def _sigmoid_fwd(x):            # forward plus what the backward needs
        y = sigmoid.autodiff(x)
        return y, (y,)

    def _sigmoid_bwd(res, dy):      # the formula: dx = dy * y * (1 - y)
        (y,) = res
        return (dy * y * (1 - y),)

    sigmoid.defvjp(_sigmoid_fwd, _sigmoid_bwd)

Calling ``sigmoid`` runs the forward; ``jax.grad`` of it runs the hand-written
backward (through ``jax.custom_vjp``). ``sigmoid.autodiff`` is the same forward
left to JAX's autodiff, and is the variant to use with forward mode
(``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``), which a ``custom_vjp`` refuses.

Contract of the pair (``jax.custom_vjp``'s, extended to keyword arguments):

- ``fwd`` takes the forward's arguments and returns ``(y, residuals)``; the
  residuals are arrays only.
- ``bwd(res, dy, **hyper)`` returns one cotangent per positional input (``None``
  for an integer input). It may declare any of the forward's keyword-only,
  non-array hyperparameters (``axis``, ``eps``...) and receives those it declares.
- Residuals are the forward's inputs and outputs, and per-example reductions;
  elementwise intermediates are recomputed in the backward from the same
  subexpressions (XLA then shares or refuses them as the device suits), and the
  formula is written ``dy * (local derivative)``. Both rules come from measuring:
  a stored intermediate costs a write and a read of a full array, and
  ``(dy * y) * (1 - y)`` lets XLA merge ``dy * y`` with the loss's own product
  and store it.
- Keyword-only arguments that are arrays (a PRNG ``key``, sample weights) are
  passed through as non-differentiable inputs; the others are static and must be
  hashable.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

__all__ = ["op", "is_op"]


def _is_array(value: Any) -> bool:
    return isinstance(value, (jax.Array, np.ndarray))


def is_op(fn: Any) -> bool:
    """True for a function made by :func:`op` (it has a hand-written backward)."""
    return callable(fn) and hasattr(fn, "autodiff") and hasattr(fn, "defvjp")


def op(forward: Callable[..., Any]) -> Callable[..., Any]:
    """Turns a plain JAX forward into a function whose gradient is hand-written.

    Returns a function with the forward's name, signature and docstring, and the
    attributes ``autodiff`` (the forward itself), ``fwd`` and ``bwd`` (the pair
    given to ``defvjp``), and ``defvjp(fwd, bwd)``, which must be called once
    before use.
    """
    signature = inspect.signature(forward)
    keyword_only = {
        name for name, p in signature.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    pair: dict[str, Callable[..., Any]] = {}

    @functools.lru_cache(maxsize=256)
    def build(static: tuple[tuple[str, Any], ...], dynamic: tuple[str, ...]):
        fwd, bwd = pair["fwd"], pair["bwd"]
        hyper = dict(static)
        bwd_params = inspect.signature(bwd).parameters
        bwd_hyper = {k: v for k, v in hyper.items() if k in bwd_params}
        n_dynamic = len(dynamic)

        def split(flat):
            cut = len(flat) - n_dynamic
            return flat[:cut], dict(zip(dynamic, flat[cut:], strict=True))

        @jax.custom_vjp
        def manual(*flat):
            args, arrays = split(flat)
            return forward(*args, **hyper, **arrays)

        def manual_fwd(*flat):
            args, arrays = split(flat)
            return fwd(*args, **hyper, **arrays)

        def manual_bwd(res, dy):
            cotangents = tuple(bwd(res, dy, **bwd_hyper))
            return cotangents + (None,) * n_dynamic

        manual.defvjp(manual_fwd, manual_bwd)
        return manual

    @functools.wraps(forward)
    def wrapper(*args, **kwargs):
        if "bwd" not in pair:
            raise NotImplementedError(f"{forward.__name__}: defvjp was never called")
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        positional = [v for k, v in bound.arguments.items() if k not in keyword_only]
        hyper = {k: v for k, v in bound.arguments.items() if k in keyword_only}
        arrays = {k: v for k, v in hyper.items() if _is_array(v)}
        static = tuple((k, v) for k, v in hyper.items() if k not in arrays)
        try:
            manual = build(static, tuple(arrays))
        except TypeError as error:  # an unhashable hyperparameter
            raise TypeError(
                f"{forward.__name__}: keyword arguments {sorted(k for k, _ in static)} "
                f"must be hashable (a tuple, not a list); got {static}"
            ) from error
        return manual(*positional, *arrays.values())

    def defvjp(fwd: Callable[..., Any], bwd: Callable[..., Any]) -> None:
        pair.update(fwd=fwd, bwd=bwd)
        wrapper.fwd, wrapper.bwd = fwd, bwd
        build.cache_clear()

    wrapper.autodiff = forward
    wrapper.defvjp = defvjp
    return wrapper
