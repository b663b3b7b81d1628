"""How long a row takes: the planner's estimate.

A call of the hand-written program is estimated at the longer of moving its
bytes at the copy bandwidth and doing its flops at the matmul rate of its
dtype (each derated: ``EFFICIENCY``), plus a launch overhead per call and per
step of a recurrence. A timed row runs every program ``repeats + 2`` times
(one call checks its output, one sizes the samples, then the rounds), each sample
lasting at least ``min_sample_s``; programs other than ``hand`` are weighted
by ``WEIGHT``; a mode may give rows of long calls fewer rounds (``slow``).
Compiling costs an allowance per program (more with matrix products, whose
kernels are autotuned on a GPU, and more for recurrences), divided among
parallel compile threads and scaled by how long a small program took to
compile at the start (a loaded machine compiles slower); drawing a row's
inputs costs an allowance too.

On a GPU without a measurement (``--plan``), the rates are NVIDIA's published
H100 SXM figures (the H200 has more bandwidth and the same matmul rates, so an
H100 estimate is an upper bound for both); during a run they are the device's
measured ceilings. The compile allowances are assumptions, stated here and in
the README; the runner corrects the estimate as rows complete.
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax.numpy as jnp

H100_SXM = {
    "bandwidth_bytes_per_s": 3.35e12,  # HBM3
    # dense: float32 on CUDA cores at "highest" precision; TF32 tensor cores else
    "float32_highest": 67e12,
    "float32_tf32": 494.7e12,
    "bfloat16": 989.4e12,
}
EFFICIENCY = {"bytes": 0.7, "flops": 0.6}
WEIGHT = {
    "hand": 1.0,
    "hand_again": 1.0,
    "autodiff": 1.3,
    "autodiff_abs": 1.3,
    "peer": 1.3,
    "cudnn": 0.7,
    "forward": 0.45,
}
# Seconds per program to compile: (base, extra with matrix products, extra for a
# recurrence); per row to draw the inputs; per run for setup (the ceilings, the
# peer probe) and to finish (charts, README); and the
# compile time of the copy program that ``compile`` assumes (the measured one scales it).
ALLOWANCE = {
    "cpu": {
        "launch": 3e-5,
        "step": 2e-5,
        "compile": (0.15, 0.1, 0.5),
        "inputs": 0.5,
        "setup": 4.0,
        "finish": 4.0,
        "probe_compile": 0.04,
    },
    "gpu": {
        "launch": 2e-5,
        "step": 6e-5,
        "compile": (0.8, 2.0, 3.0),
        "inputs": 1.0,
        "setup": 15.0,
        "finish": 5.0,
        "probe_compile": 0.3,
    },
}


def rates(
    platform: str, precision: str, ceilings: dict | None = None, cores: int | None = None
) -> dict[str, Any]:
    """The rates and allowances the estimate uses on ``platform``: the measured
    ``ceilings`` when given, otherwise reference figures; ``cores`` of the host
    (default: this one's) set how many programs compile at once (half of them,
    two at least)."""
    allowance = dict(ALLOWANCE["cpu" if platform == "cpu" else "gpu"])
    scale = 1.0
    if ceilings and ceilings.get("probe_compile_s"):
        scale = min(10.0, max(0.5, ceilings["probe_compile_s"] / allowance["probe_compile"]))
    allowance["compile"] = tuple(scale * s for s in allowance["compile"])
    allowance["inputs"] *= scale
    if ceilings:
        bandwidth = ceilings["bandwidth_bytes_per_s"]
        matmul = dict(ceilings["matmul_flops_per_s"])
        source = "this device's measured ceilings"
    elif platform == "cpu":
        bandwidth, matmul = 5e9, {"float32": 1e11, "bfloat16": 5e10}
        source = "a generic CPU (5 GB/s, 0.1 TFLOP/s)"
    else:
        bandwidth = H100_SXM["bandwidth_bytes_per_s"]
        f32 = H100_SXM["float32_highest" if precision == "highest" else "float32_tf32"]
        matmul = {"float32": f32, "bfloat16": H100_SXM["bfloat16"]}
        source = "published H100 SXM figures"
    return {
        "source": source,
        "platform": platform,
        "bandwidth_bytes_per_s": bandwidth,
        "matmul_flops_per_s": matmul,
        "parallel_compiles": max(2, (cores or os.cpu_count() or 2) // 2),
        "compile_scale": scale,
        **allowance,
    }


def _steps(item) -> int:
    return item.size[0] if len(item.size) == 4 else 0


def call_seconds(item, rates: dict[str, Any], dtype: Any) -> float:
    """Estimated time of one call of the hand-written program."""
    rate = rates["matmul_flops_per_s"].get(
        jnp.dtype(dtype).name, rates["matmul_flops_per_s"]["float32"]
    )
    work = max(
        item.bytes / (rates["bandwidth_bytes_per_s"] * EFFICIENCY["bytes"]),
        item.flops / (rate * EFFICIENCY["flops"]),
    )
    return rates["launch"] + _steps(item) * rates["step"] + work


def compile_seconds(item, rates: dict[str, Any]) -> float:
    base, matmul, scan = rates["compile"]
    one = base + (matmul if item.flops else 0.0) + (scan if _steps(item) else 0.0)
    if item.kind == "step":
        one *= 1.5
    total = sum(one * (0.5 if p == "forward" else 1.0) for p in item.programs)
    return total / min(len(item.programs), rates["parallel_compiles"])


def row_seconds(
    item,
    rates: dict[str, Any],
    dtype: Any,
    *,
    repeats: int,
    min_sample_s: float,
    timed: bool,
    slow: tuple[float, int] | None = None,
) -> float:
    """Estimated seconds of one row: compiling, the agreement check, and timing
    (``slow``: calls at least ``slow[0]`` long get at most ``slow[1]`` rounds)."""
    t = call_seconds(item, rates, dtype)
    weights = [WEIGHT.get(p, 1.0) for p in item.programs]
    check = rates["inputs"] + 2 * t * sum(weights)
    if not timed:
        return compile_seconds(item, rates) + check
    if slow and t * min(weights) >= slow[0]:
        repeats = min(repeats, slow[1])
    k = max(1, math.ceil(min_sample_s / (t * min(weights))))
    per_round = k * t * sum(weights)
    return compile_seconds(item, rates) + check + repeats * per_round


def fixed_seconds(rates: dict[str, Any], timed: bool, spent_s: float | None = None) -> float:
    """Setup (the ceilings, the peer probe: ``spent_s`` when it is done) and
    writing the outputs at the end."""
    setup = spent_s if spent_s is not None else (rates["setup"] if timed else 0.0)
    return setup + rates["finish"]
