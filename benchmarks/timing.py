"""Measuring compiled JAX functions: compile time apart, compiled memory, and
medians of interleaved repeats (A B C A B C ...) ended with ``block_until_ready``."""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax


@dataclasses.dataclass
class Compiled:
    """A function compiled for fixed arguments, with what compiling cost."""

    call: Callable[..., Any]
    compile_s: float
    temp_bytes: int
    argument_bytes: int
    output_bytes: int


def compile_timed(fn: Callable[..., Any], args: tuple) -> Compiled:
    """``jit(fn)`` lowered and compiled for ``args``; the time that took is kept apart."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    memory = compiled.memory_analysis()

    def size(name: str) -> int:
        return int(getattr(memory, name, 0) or 0) if memory is not None else -1

    return Compiled(
        compiled,
        compile_s,
        size("temp_size_in_bytes"),
        size("argument_size_in_bytes"),
        size("output_size_in_bytes"),
    )


def _one_sample(call: Callable[..., Any], args: tuple, calls: int) -> float:
    start = time.perf_counter()
    out = None
    for _ in range(calls):
        out = call(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / calls


def interleaved_medians(
    calls: Mapping[str, Callable[..., Any]],
    args: tuple,
    *,
    repeats: int,
    min_sample_s: float,
) -> dict[str, dict[str, float]]:
    """Median time per call of each function, over ``repeats`` interleaved samples.

    Each function runs twice first (warm-up). Each sample is ``k`` back-to-back
    calls, then ``block_until_ready``; ``k`` is the same for every function and
    chosen so that the fastest one's sample lasts at least ``min_sample_s``
    (short calls are otherwise dominated by the timer and dispatch). The order
    rotates every repeat so that no function always runs first.

    Returns, per function, ``median_s``, the interquartile range ``iqr_s`` and
    the ``samples_s`` in the order taken (for :func:`paired_ratio`).
    """
    names = list(calls)
    for name in names:
        for _ in range(2):
            jax.block_until_ready(calls[name](*args))
    fastest = min(_one_sample(calls[name], args, 1) for name in names)
    k = max(1, min(10_000, int(min_sample_s / max(fastest, 1e-9)) + 1))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            samples[name].append(_one_sample(calls[name], args, k))
    result = {}
    for name, values in samples.items():
        q = statistics.quantiles(values, n=4) if len(values) >= 2 else [values[0]] * 3
        result[name] = {
            "median_s": statistics.median(values),
            "iqr_s": q[2] - q[0],
            "calls": k,
            "samples_s": values,
        }
    return result


def paired_ratio(a: list[float], b: list[float]) -> dict[str, float]:
    """The median of the per-repeat ratios ``a[r] / b[r]`` and a 95% interval for it.

    The two functions of one repeat ran back to back, so a slow spell of the
    machine (another process, clock changes) slows both and cancels in their
    ratio. The interval is distribution-free: the sorted ratios of ranks ``j``
    and ``n + 1 - j``, with ``j`` the largest rank such that
    ``P(Binomial(n, 1/2) < j) <= 2.5%`` (ranks 4 and 12 of 15: 96.5% coverage);
    with fewer than 9 repeats it is the whole sample's range.
    """
    ratios = sorted(x / y for x, y in zip(a, b, strict=True))
    n = len(ratios)

    def below(j: int) -> float:  # P(Binomial(n, 1/2) < j)
        return sum(math.comb(n, i) for i in range(j)) / 2**n

    j = 1
    while j < n // 2 and below(j + 1) <= 0.025:
        j += 1
    return {"median": statistics.median(ratios), "low": ratios[j - 1], "high": ratios[n - j]}
