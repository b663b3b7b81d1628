"""One benchmark row: compile a :class:`~benchmarks.cases.Case`'s programs, hold
each to the ``hand`` one, time them, and derive the ratios.

A program that fails (it does not compile, runs out of memory, or raises)
marks its own cell with the error and the row goes on without it. Before
timing, the compared programs' values and gradients must agree with ``hand``'s,
so a fast wrong answer cannot win. Each ratio is the median of the per-round
ratios of two interleaved programs, with a 95% interval; the A/A ratio (two
compilations of the same function) gives the row's noise: its interval's width.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import random
import time
import traceback
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.cases import Case
from benchmarks.timing import compile_lowered, interleaved, lower, median_interval, paired_ratio

# Different (equal) formulas agree to about the unit roundoff times the number
# of terms of the longest sum; these bounds, relative to each leaf's largest
# element, leave room for that and catch any formula error.
AGREEMENT_RTOL = {jnp.dtype(jnp.float32): 1e-4, jnp.dtype(jnp.bfloat16): 5e-2}

COMPARED_WITH_HAND = ("hand_again", "autodiff", "autodiff_abs", "peer", "cudnn")


def error_text(exc: BaseException) -> str:
    """One line naming the error (type, first line of the message, where raised)."""
    lines = str(exc).strip().splitlines() or [""]
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {lines[0][:200]}{where}"


def agreement(outputs: dict[str, Any], reference: Any) -> dict[str, float]:
    """Per output, the largest ``max|a - e| / max|e|`` over the leaves of its
    pytree against ``reference``'s (inf where the structure or a shape differs).
    Arrays on an accelerator are compared there, in one compiled program;
    arrays on the CPU by NumPy, which compiles nothing."""
    ref_leaves, ref_tree = jax.tree.flatten(reference)
    errors, comparable = {}, {}
    for name, out in outputs.items():
        leaves, tree = jax.tree.flatten(out)
        if tree != ref_tree or any(
            jnp.shape(a) != jnp.shape(e) for a, e in zip(leaves, ref_leaves, strict=True)
        ):
            errors[name] = float("inf")
        else:
            comparable[name] = leaves
    if comparable:
        on_cpu = all(_on_cpu(x) for x in ref_leaves)
        compare = (
            functools.partial(_max_relative, np)
            if on_cpu
            else jax.jit(functools.partial(_max_relative, jnp))
        )
        errors.update({name: float(v) for name, v in compare(comparable, ref_leaves).items()})
    return errors


def _on_cpu(x) -> bool:
    devices = getattr(x, "devices", None)
    return devices is None or all(d.platform == "cpu" for d in devices())


def _max_relative(xp, outputs: dict[str, list], reference: list) -> dict[str, Any]:
    def one(a, e):
        a, e = xp.asarray(a, xp.float32), xp.asarray(e, xp.float32)
        scale = xp.maximum(xp.max(xp.abs(e), initial=0.0), np.finfo(np.float32).tiny)
        return xp.max(xp.abs(a - e), initial=0.0) / scale

    return {
        name: xp.max(xp.stack([one(a, e) for a, e in zip(leaves, reference, strict=True)]))
        for name, leaves in outputs.items()
    }


def _compile_all(case: Case, errors: dict[str, str], workers: int) -> dict:
    """Lowers each program in turn (tracing is Python) and compiles them in
    parallel threads (XLA compiles outside Python's lock); a failure marks that
    program only."""
    lowered = {}
    for name, program in case.programs.items():
        try:
            lowered[name] = lower(program.fn, program.args)
        except Exception as exc:
            errors[name] = error_text(exc)
    compiled = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {name: pool.submit(compile_lowered, *lo) for name, lo in lowered.items()}
        for name, future in futures.items():
            try:
                compiled[name] = future.result()
            except Exception as exc:
                errors[name] = error_text(exc)
    return compiled


def measure(
    case: Case,
    *,
    repeats: int,
    min_sample_s: float,
    rng: random.Random,
    deadline: float = float("inf"),
    time_it: bool = True,
    ceilings: dict | None = None,
    compile_workers: int = 1,
    slow: tuple[float, int] | None = None,
) -> dict:
    """The row of ``case``; see the module docstring. ``ceilings`` (a GPU's
    measured bandwidth and matmul rates) adds roofline shares."""
    row: dict[str, Any] = {
        "op": case.name,
        "kind": case.kind,
        "size": list(case.size),
        "dtype": case.dtype.name,
        "peer_name": case.peer_name,
        "cudnn_name": case.cudnn_name,
        "note": case.note,
        "errors": {},
        "skipped": dict(case.skipped),
        "bytes": case.bytes,
        "extra_bytes": case.extra_bytes,
        "flops": case.flops,
    }
    errors = row["errors"]
    start, cpu = time.perf_counter(), time.process_time()
    compiled = _compile_all(case, errors, compile_workers)
    row["compile_s"] = {name: c.compile_s for name, c in compiled.items()}
    row["compile_wall_s"] = time.perf_counter() - start
    row["cpu_s"] = {"compile": time.process_time() - cpu}
    row["temp_bytes"] = {name: c.temp_bytes for name, c in compiled.items()}
    row["peak_bytes"] = {name: c.peak_bytes for name, c in compiled.items()}

    start, cpu = time.perf_counter(), time.process_time()
    outputs, first_s = {}, {}
    for name, c in compiled.items():
        program = case.programs[name]
        try:
            call_start = time.perf_counter()
            out = jax.block_until_ready(c.call(*program.args))
            first_s[name] = time.perf_counter() - call_start
            outputs[name] = program.check(out) if program.check else None
        except Exception as exc:
            errors[name] = error_text(exc)
    if "hand" not in outputs:
        row["agree"] = False
        row["error"] = errors.get("hand", "the hand-written program did not run")
        return row
    reference = outputs["hand"]
    tol = AGREEMENT_RTOL.get(case.dtype, 1e-4)
    row["agreement_max_rel"] = agreement(
        {n: outputs[n] for n in COMPARED_WITH_HAND if outputs.get(n) is not None}, reference
    )
    row["agree"] = all(err <= tol for err in row["agreement_max_rel"].values())
    row["check_s"] = time.perf_counter() - start
    row["cpu_s"]["check"] = time.process_time() - cpu
    if not time_it:
        return row

    runnable = {name: c for name, c in compiled.items() if name in outputs}
    calls = {
        name: (lambda c=c, args=case.programs[name].args: c.call(*args))
        for name, c in runnable.items()
    }
    start, cpu = time.perf_counter(), time.process_time()
    try:
        timed = interleaved(
            calls,
            repeats=repeats,
            min_sample_s=min_sample_s,
            rng=rng,
            deadline=deadline,
            warmup=1,  # each program ran once for the agreement check
            slow=slow,
            previous_s=first_s,
        )
    except Exception as exc:
        row["error"] = f"timing: {error_text(exc)}"
        return row
    row["timing_s"] = time.perf_counter() - start
    row["cpu_s"]["timing"] = time.process_time() - cpu
    times = timed["times"]
    row["times"] = times
    row["repeats"] = len(times["hand"]["samples_s"])
    row["orders"] = timed["orders"]
    row["ratios"] = {
        name: paired_ratio(times["hand"]["samples_s"], times[name]["samples_s"])
        for name in times
        if name not in ("hand", "forward")
    }
    if "hand_again" in row["ratios"]:
        aa = row["ratios"]["hand_again"]
        row["noise"] = aa["high"] - aa["low"]
    if "forward" in times:
        row["grad_over_fwd"] = times["hand"]["median_s"] / times["forward"]["median_s"]
    if ceilings:
        _roofline(row, case, ceilings)
    return row


def _roofline(row: dict, case: Case, ceilings: dict) -> None:
    """The hand-written program's share of the device's floor: the longer of
    moving ``bytes`` at the copy bandwidth and doing ``flops`` at the matmul rate
    of the row's dtype; with its interval from the median's."""
    rate = ceilings["matmul_flops_per_s"][case.dtype.name]
    floor_s = max(case.bytes / ceilings["bandwidth_bytes_per_s"], case.flops / rate)
    t = median_interval(row["times"]["hand"]["samples_s"])
    row["roofline_share"] = floor_s / t["median"]
    row["roofline_share_interval"] = [floor_s / t["high"], floor_s / t["low"]]
    row["achieved_bytes_per_s"] = case.bytes / t["median"]
    if case.bytes:
        row["own_ceiling"] = case.bytes / (case.bytes + case.extra_bytes)
