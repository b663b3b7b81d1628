"""Measuring compiled JAX functions: compile time apart, compiled memory, and
interleaved repeats in a shuffled order, each sample ended with ``block_until_ready``."""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax


@dataclasses.dataclass
class Compiled:
    """A function compiled for fixed arguments, with what compiling cost.

    ``peak_bytes`` is what the program holds at once by its memory analysis:
    arguments, outputs and temporaries, less the outputs aliased to arguments.
    """

    call: Callable[..., Any]
    compile_s: float
    temp_bytes: int
    argument_bytes: int
    output_bytes: int
    peak_bytes: int


def lower(fn: Callable[..., Any], args: tuple) -> tuple[Any, float]:
    """``jit(fn)`` traced and lowered for ``args``, and the seconds it took.

    Every call lowers afresh (a new ``jax.jit`` of a new closure), so two calls
    for the same ``fn`` compile to two separate executables, as the A/A control
    needs.
    """
    start = time.perf_counter()
    lowered = jax.jit(lambda *a: fn(*a)).lower(*args)
    return lowered, time.perf_counter() - start


def compile_lowered(lowered: Any, lower_s: float = 0.0) -> Compiled:
    """Compiles a lowered program; ``compile_s`` counts lowering and compiling."""
    start = time.perf_counter()
    compiled = lowered.compile()
    compile_s = lower_s + time.perf_counter() - start
    memory = compiled.memory_analysis()

    def size(name: str) -> int:
        return int(getattr(memory, name, 0) or 0) if memory is not None else -1

    temp, argument, output = (
        size("temp_size_in_bytes"),
        size("argument_size_in_bytes"),
        size("output_size_in_bytes"),
    )
    peak = temp + argument + output - max(size("alias_size_in_bytes"), 0)
    return Compiled(compiled, compile_s, temp, argument, output, peak if memory else -1)


def compile_timed(fn: Callable[..., Any], args: tuple) -> Compiled:
    """``jit(fn)`` lowered and compiled for ``args``; the time that took is kept apart."""
    return compile_lowered(*lower(fn, args))


def _one_sample(call: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    out = None
    for _ in range(calls):
        out = call()
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / calls


def interleaved(
    calls: Mapping[str, Callable[[], Any]],
    *,
    repeats: int,
    min_sample_s: float,
    rng: random.Random,
    deadline: float = math.inf,
    warmup: int = 2,
    slow: tuple[float, int] | None = None,
    previous_s: Mapping[str, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Time per call of each function, over ``repeats`` rounds in a shuffled order.

    ``calls`` maps a name to a function of no arguments (it closes over its
    inputs). Each function runs ``warmup`` times first (at least once; the
    last of them is timed to choose ``k``: pass 1 when every function has
    already run once). Each sample is ``k``
    back-to-back calls, then ``block_until_ready``; ``k`` is the same for
    every function and chosen so that the fastest one's sample lasts at least
    ``min_sample_s`` (short calls are otherwise dominated by the timer and
    dispatch). Every round runs each function once, in an order drawn afresh
    from ``rng``, so no function keeps a position (first after the previous
    round, last before a pause) that the machine treats differently.

    When even the fastest call lasts ``slow[0]`` seconds or more, ``slow[1]``
    rounds at most are taken (long calls vary less, and cost more); when
    ``previous_s`` (the duration of an earlier call of each function) shows
    that already, the warm-up is skipped too (``k`` is 1). Rounds stop
    early when the next one would end after ``deadline`` (a
    ``time.perf_counter()`` value), after at least one round.

    Returns, per function, ``median_s``, the interquartile range ``iqr_s``,
    ``calls`` (``k``) and the ``samples_s`` in the order of the rounds (for
    :func:`paired_ratio`), plus ``orders``: the order of each round.
    """
    names = list(calls)
    if slow and previous_s and min(previous_s[n] for n in names) >= slow[0]:
        warmup, warm = 0, dict(previous_s)
    else:
        warm = {}
    for name in names if warmup else ():
        for _ in range(max(0, warmup - 1)):
            jax.block_until_ready(calls[name]())
        warm[name] = _one_sample(calls[name], 1)
    fastest = min(warm.values())
    if slow and fastest >= slow[0]:
        repeats = min(repeats, slow[1])
    k = max(1, min(10_000, int(min_sample_s / max(fastest, 1e-9)) + 1))
    samples: dict[str, list[float]] = {name: [] for name in names}
    orders = []
    for _ in range(repeats):
        start = time.perf_counter()
        order = rng.sample(names, len(names))
        orders.append(order)
        for name in order:
            samples[name].append(_one_sample(calls[name], k))
        last = time.perf_counter() - start
        if time.perf_counter() + last > deadline:
            break
    result: dict[str, dict[str, Any]] = {}
    for name, values in samples.items():
        q = statistics.quantiles(values, n=4) if len(values) >= 2 else [values[0]] * 3
        result[name] = {
            "median_s": statistics.median(values),
            "iqr_s": q[2] - q[0],
            "calls": k,
            "samples_s": values,
        }
    return {"times": result, "orders": orders}


def _rank(n: int) -> int:
    """The largest ``j`` with ``P(Binomial(n, 1/2) < j) <= 2.5%`` (at least 1)."""

    def below(j: int) -> float:
        return sum(math.comb(n, i) for i in range(j)) / 2**n

    j = 1
    while j < n // 2 and below(j + 1) <= 0.025:
        j += 1
    return j


def median_interval(values: list[float]) -> dict[str, float]:
    """The median of ``values`` and a distribution-free 95% interval for it: the
    sorted values of ranks ``j`` and ``n + 1 - j``, with ``j`` the largest rank
    such that ``P(Binomial(n, 1/2) < j) <= 2.5%`` (ranks 4 and 12 of 15: 96.5%
    coverage); with fewer than 9 values it is the whole sample's range."""
    ordered = sorted(values)
    n = len(ordered)
    j = _rank(n)
    return {"median": statistics.median(ordered), "low": ordered[j - 1], "high": ordered[n - j]}


def paired_ratio(a: list[float], b: list[float]) -> dict[str, float]:
    """The median of the per-round ratios ``a[r] / b[r]`` and a 95% interval for it.

    The two functions of one round ran close together, so a slow spell of the
    machine (another process, clock changes) slows both and cancels in their
    ratio. The interval is :func:`median_interval`'s.
    """
    return median_interval([x / y for x, y in zip(a, b, strict=True)])
