"""One benchmark row: one registered op at one size, every variant.

The timed function is ``jit(value_and_grad(loss))`` with
``loss(args) = <c, op(args)>`` for a fixed random cotangent ``c``, so the
backward pass gets a realistic upstream gradient; it is timed with the
hand-written backward (``manual``), with JAX autodiff of the same forward
(``autodiff``) and with the peer implementation (``peer``), plus the forward
alone, and the hand-written one a second time as an A/A control whose spread
is the row's noise. Before timing, the variants' values and gradients must agree, so a fast
wrong answer cannot win. Each ratio is the median of the per-repeat ratios of
two interleaved variants, with a 95% interval (``ratio_<variant>_interval``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from benchmarks.timing import compile_timed, interleaved_medians, paired_ratio
from dlref import OpSpec, gradcheck

# float32 results of different (equal) formulas: agreement well within 1e-4.
AGREEMENT_RTOL = {jnp.dtype(jnp.float32): 1e-4, jnp.dtype(jnp.bfloat16): 3e-2}


def _tree_vdot(a, b):
    return sum(
        jnp.vdot(x, y).astype(jnp.float32)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def _value_and_grad(fn, cotangent, argnums):
    return jax.value_and_grad(lambda *args: _tree_vdot(cotangent, fn(*args)), argnums)


def bench_row(
    spec: OpSpec,
    size: tuple[int, ...],
    dtype,
    *,
    repeats: int,
    min_sample_s: float,
    ceilings: dict | None,
    roofline: bool = False,
    time_it: bool = True,
) -> dict:
    key_args, key_ct = jax.random.split(jax.random.key(sum(map(ord, spec.name))))
    args = spec.example_args(key_args, dtype, size)
    read = spec.loss_output or (lambda out: out)  # what a training loss reads
    variants = {"manual": spec.manual, "autodiff": spec.autodiff}
    if spec.peer is not None:
        variants["peer"] = spec.peer
    if spec.gpu_peer is not None and jax.default_backend() == "gpu":
        variants["gpu_peer"] = spec.gpu_peer
    variants = {name: lambda *a, fn=fn: read(fn(*a)) for name, fn in variants.items()}
    cotangent = gradcheck.random_like(key_ct, jax.eval_shape(variants["manual"], *args))
    grads = {
        name: compile_timed(_value_and_grad(fn, cotangent, spec.diff_argnums), args)
        for name, fn in variants.items()
    }
    forwards = {"forward": compile_timed(spec.manual, args)}
    if spec.peer is not None:
        forwards["forward_peer"] = compile_timed(spec.peer, args)

    reference = grads["manual"].call(*args)
    agreement = {
        name: gradcheck.compare(grads[name].call(*args), reference).max_rel
        for name in grads
        if name != "manual"
    }
    tol = AGREEMENT_RTOL.get(jnp.dtype(dtype), 1e-4)
    row = {
        "op": spec.name,
        "size": list(size),
        "dtype": jnp.dtype(dtype).name,
        "peer_name": spec.peer_name,
        "agreement_max_rel": agreement,
        "agree": all(err <= tol for err in agreement.values()),
        "compile_s": {name: c.compile_s for name, c in {**grads, **forwards}.items()},
        "temp_bytes": {name: c.temp_bytes for name, c in grads.items()},
        "argument_bytes": {name: c.argument_bytes for name, c in grads.items()},
        "bytes": spec.bytes_moved(size, dtype),
        "flops": spec.flops(size) if spec.flops else 0,
    }
    if not time_it:
        return row
    calls = {name: c.call for name, c in {**grads, **forwards}.items()}
    calls["manual_again"] = grads["manual"].call  # A/A control: the spread is noise
    times = interleaved_medians(calls, args, repeats=repeats, min_sample_s=min_sample_s)
    row["times"] = times
    manual = times["manual"]["median_s"]

    def ratio(other: str) -> dict[str, float]:
        return paired_ratio(times["manual"]["samples_s"], times[other]["samples_s"])

    row["noise"] = abs(ratio("manual_again")["median"] - 1)
    row["ratio_peer"] = None
    for other in ("autodiff", "peer", "gpu_peer"):
        if other in times:
            interval = ratio(other)
            row[f"ratio_{other}"] = interval["median"]
            row[f"ratio_{other}_interval"] = [interval["low"], interval["high"]]
    if "gpu_peer" in times:
        row["gpu_peer_name"] = spec.gpu_peer_name
    if ceilings and roofline:
        floor_s = max(
            row["bytes"] / ceilings["bandwidth_bytes_per_s"],
            row["flops"] / ceilings["matmul_f32_flops_per_s"],
        )
        row["roofline_share"] = floor_s / manual
        row["achieved_bytes_per_s"] = row["bytes"] / manual
    return row
