"""Input checks shared by every op: each error names the function, the argument,
what was expected and what was given. Shape, rank and dtype checks go through
chex and run at trace time, so they cost nothing under ``jit``; value checks run
only when the values are concrete (outside ``jit``).

An op called eagerly runs compiled (``Op.__call__``): while it traces, a value
check that meets a traced array hands :func:`defer` a traced flag instead, the
compiled call returns the flags, and a raised one makes the call run again
uncompiled, where the check sees the values and raises its full message.

Every check raises :class:`InputError`, dlref's one exception type for bad input.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import operator
from collections.abc import Callable, Iterator
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np


class InputError(ValueError):
    """Bad input to a dlref function: a wrong shape, rank, dtype, value or option.

    The message leads with the function, the argument, what was expected and what
    was given. A subclass of ``ValueError``, so ``except ValueError`` catches it.
    """


@contextlib.contextmanager
def _chex(message: str) -> Iterator[None]:
    """Turns a failed chex assertion into an :class:`InputError` led by ``message``."""
    try:
        yield
    except AssertionError as error:
        raise InputError(message) from error


def _describe(x: Any) -> str:
    return f"shape {tuple(jnp.shape(x))} and dtype {jnp.result_type(x)}"


def arrays(fn: str, **values: Any) -> None:
    """Each value is an array (JAX or NumPy), not a list or another array-like:
    dlref, like ``jax.numpy``'s reductions, takes arrays only."""
    for name, x in values.items():
        if not isinstance(x, (jax.Array, np.ndarray, np.generic)):
            raise InputError(
                f"{fn}: `{name}` must be a JAX or NumPy array; got {type(x).__name__} "
                f"(wrap it in jnp.asarray)"
            )


_DEFERRED: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "dlref_deferred_checks", default=None
)


@contextlib.contextmanager
def deferring() -> Iterator[list]:
    """Collects the flags :func:`defer` is given while an op's eager call traces."""
    flags: list = []
    token = _DEFERRED.set(flags)
    try:
        yield flags
    finally:
        _DEFERRED.reset(token)


def defer(bad: Callable[[], Any]) -> None:
    """A value check met a traced array. Within :func:`deferring` (an op's eager call,
    compiled), ``bad()``, a traced boolean array that holds True where the check
    fails, is recorded; elsewhere (a user's ``jit``) nothing is checked."""
    flags = _DEFERRED.get()
    if flags is not None:
        flags.append(jnp.any(bad()))


def outside(x: Any, low: float, high: float) -> Any:
    """Traced: where ``x`` lies outside [low, high]. An integer array is compared only
    with the bounds its dtype can hold (uint8 labels against 256 classes)."""
    if jnp.issubdtype(x.dtype, jnp.integer):
        info = jnp.iinfo(x.dtype)
        bad = jnp.zeros(x.shape, bool)
        if low > info.min:
            bad |= x < low
        if high < info.max:
            bad |= x > high
        return bad
    return (x < low) | (x > high)


def in_unit_interval(fn: str, **values: Any) -> None:
    """Every entry lies in [0, 1] (probabilities); checked when concrete. NaN
    passes (it propagates to the result, where it shows)."""
    for name, x in values.items():
        if np.size(x) == 0:
            continue
        if not is_concrete(x):
            defer(functools.partial(outside, x, 0, 1))
            continue
        v = np.asarray(x, np.float64)
        if np.any((v < 0) | (v > 1)):
            raise InputError(
                f"{fn}: `{name}` must lie in [0, 1]; got values in [{np.nanmin(v)}, {np.nanmax(v)}]"
            )


def floating(fn: str, **arrays: Any) -> None:
    """Each array has a floating dtype."""
    for name, x in arrays.items():
        message = f"{fn}: `{name}` must be a floating array; got {_describe(x)}"
        with _chex(message):
            chex.assert_type(x, float, custom_message=message)


def integer(fn: str, **arrays: Any) -> None:
    """Each array has an integer dtype (class labels)."""
    for name, x in arrays.items():
        message = f"{fn}: `{name}` must hold integer labels; got {_describe(x)}"
        with _chex(message):
            chex.assert_type(x, int, custom_message=message)


def same_dtype(fn: str, **arrays: Any) -> None:
    """All arrays share one dtype (no silent promotion)."""
    dtypes = {name: jnp.result_type(x) for name, x in arrays.items()}
    if len(set(dtypes.values())) > 1:
        found = ", ".join(f"`{k}` {v}" for k, v in dtypes.items())
        raise InputError(f"{fn}: arguments must share one dtype; got {found}")


def rank(fn: str, name: str, x: Any, expected: int | set[int]) -> None:
    """``x`` has the expected rank (an int or a set of allowed ranks)."""
    message = f"{fn}: `{name}` must have rank {expected}; got {_describe(x)}"
    with _chex(message):
        chex.assert_rank(x, expected, custom_message=message)


def min_rank(fn: str, name: str, x: Any, minimum: int, meaning: str) -> None:
    """``x`` has at least ``minimum`` axes; ``meaning`` says what they are."""
    if jnp.ndim(x) < minimum:
        raise InputError(
            f"{fn}: `{name}` must have at least {minimum} axis ({meaning}); got {_describe(x)}"
        )


def same_shape(fn: str, **arrays: Any) -> None:
    """All arrays share one shape (no broadcasting)."""
    (first, x0), *rest = arrays.items()
    for name, x in rest:
        message = (
            f"{fn}: `{name}` must have the shape of `{first}` {jnp.shape(x0)}; got {jnp.shape(x)}"
        )
        with _chex(message):
            chex.assert_shape(x, jnp.shape(x0), custom_message=message)


def shape(fn: str, name: str, x: Any, expected: tuple[int | None, ...], why: str) -> None:
    """``x`` has the expected shape (``None`` matches any size)."""
    message = f"{fn}: `{name}` must have shape {expected} ({why}); got {jnp.shape(x)}"
    with _chex(message):
        chex.assert_shape(x, expected, custom_message=message)


def is_concrete(x: Any) -> bool:
    """True when the values of ``x`` are known (not traced under jit/vmap/grad)."""
    return not isinstance(x, jax.core.Tracer)


def labels_in_range(fn: str, name: str, labels: Any, num_classes: int) -> None:
    """Integer labels lie in [0, num_classes); checked when concrete."""
    if np.size(labels) == 0:
        return
    if not is_concrete(labels):
        defer(lambda: outside(labels, 0, num_classes - 1))
        return
    values = np.asarray(labels)
    low, high = values.min(), values.max()
    if low < 0 or high >= num_classes:
        raise InputError(
            f"{fn}: `{name}` must lie in [0, {num_classes}); got values in [{low}, {high}]"
        )


def in_interval(fn: str, name: str, value: Any, low: float, high: float) -> None:
    """A scalar hyperparameter is a real number in [low, high] (NaN is not); its value
    is checked when concrete."""
    real = (int, float, np.integer, np.floating, jax.Array, np.ndarray)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, real):
        raise InputError(f"{fn}: `{name}` must be a real number; got {value!r}")
    dtype = jnp.result_type(value)
    if np.ndim(value) != 0 or not jnp.issubdtype(dtype, jnp.number):
        raise InputError(
            f"{fn}: `{name}` must be a real scalar; got shape {np.shape(value)} and dtype {dtype}"
        )
    if not is_concrete(value):
        defer(lambda: ~((value >= low) & (value <= high)))
    elif not low <= float(value) <= high:
        raise InputError(f"{fn}: `{name}` must lie in [{low}, {high}]; got {value}")


def class_labels(fn: str, logits: Any, labels: Any, name: str = "logits") -> None:
    """Floating scores ``(..., C)`` and integer labels ``(...)`` in [0, C) whose
    dtype can hold every class index."""
    floating(fn, **{name: logits})
    min_rank(fn, name, logits, 1, "the last axis holds the classes")
    integer(fn, labels=labels)
    shape(
        fn,
        "labels",
        labels,
        jnp.shape(logits)[:-1],
        f"the shape of `{name}` without its class axis",
    )
    classes = jnp.shape(logits)[-1]
    if classes == 0:
        raise InputError(f"{fn}: `{name}` must have at least one class; got {_describe(logits)}")
    if classes - 1 > jnp.iinfo(jnp.result_type(labels)).max:
        raise InputError(
            f"{fn}: `labels` of dtype {jnp.result_type(labels)} cannot hold the {classes} classes "
            f"of `{name}`; use int32 labels"
        )
    labels_in_range(fn, "labels", labels, classes)


def sizes(fn: str, minimum: int = 0, **values: Any) -> list[int]:
    """Each an integer >= ``minimum`` (Python, NumPy or a concrete 0-d JAX integer),
    returned as Python ints: an initializer's sizes."""
    out = []
    for name, value in values.items():
        try:
            k = operator.index(value)
        except TypeError:
            k = None
        if k is None or isinstance(value, (bool, np.bool_)) or k < minimum:
            raise InputError(f"{fn}: `{name}` must be an integer >= {minimum}; got {value!r}")
        out.append(k)
    return out


def float_dtype(fn: str, dtype: Any) -> None:
    """A real floating dtype (parameters and states are never integer or complex)."""
    try:
        d = jnp.dtype(dtype)
    except TypeError:
        d = None
    if d is None or not jnp.issubdtype(d, jnp.floating):
        raise InputError(f"{fn}: `dtype` must be a real floating dtype; got {dtype!r}")


def real_number(fn: str, name: str, value: Any) -> None:
    """A finite real Python or NumPy number (not a bool, a string, None or NaN)."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not np.isfinite(value)
    ):
        raise InputError(f"{fn}: `{name}` must be a finite real number; got {value!r}")


def prng_key(fn: str, name: str, key: Any) -> None:
    """``key`` is a JAX PRNG key: a typed key array, or raw ``uint32`` key data."""
    typed = isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    raw = isinstance(key, (jax.Array, np.ndarray)) and key.dtype == np.uint32
    if not (typed or (raw and key.shape[-1:] == (2,))):
        raise InputError(
            f"{fn}: `{name}` must be a JAX PRNG key (jax.random.key(seed)); got {key!r:.80}"
        )


def nonempty(fn: str, name: str, x: Any, why: str) -> None:
    """``x`` has at least one entry."""
    if jnp.size(x) == 0:
        raise InputError(f"{fn}: `{name}` must not be empty ({why}); got {_describe(x)}")
