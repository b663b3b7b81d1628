"""What a run measures and how long it will take: modes, sizes, and the planner
that fits a run into its time budget.

A run is a list of :class:`Item` (one row each). Its duration is estimated per
row from the row's bytes and flops at the device's rates, a launch overhead
per call (and per step of a recurrence), the number of timed samples, and a
compile allowance per program (see :mod:`benchmarks.cost`). When the estimate
exceeds the budget, the planner first lowers the rounds (to 9 at least, the
fewest that give a median interval narrower than the sample's range), then
drops rows from the end of the run order, which puts every op's largest size
first (the headline's rows); a sweep drops whole ops instead.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from benchmarks import cost, steps
from benchmarks.cases import PLAIN_ABS
from dlref import OPS

MIN_REPEATS = 9
SLOW_REPEATS = 7
"""Rounds for rows of long calls: their interval is the range of the 7 ratios
(98% coverage)."""
ALL_VARIANTS = frozenset(
    {"hand", "hand_again", "autodiff", "autodiff_abs", "peer", "cudnn", "forward"}
)


@dataclasses.dataclass(frozen=True)
class Mode:
    repeats: int
    min_sample_s: float
    stream: int  # elements of the copy-bandwidth measurement (on an accelerator)
    matmul: int  # n of the matmul-rate measurement (on an accelerator)
    variants: frozenset[str]
    budget_s: dict[str, float | None]  # by platform ("default" for any other)
    slow: tuple[float, int] | None = None  # calls this long (s) get fewer rounds

    def budget(self, platform: str) -> float | None:
        return self.budget_s.get(platform, self.budget_s["default"])


MODES = {
    "quick": Mode(15, 0.004, 2**24, 1024, ALL_VARIANTS, {"default": 285.0}, (0.01, SLOW_REPEATS)),
    "full": Mode(31, 0.002, 2**28, 8192, ALL_VARIANTS, {"default": 480.0}, (0.05, 15)),
    "sweep": Mode(
        MIN_REPEATS,
        0.003,
        2**26,
        4096,
        frozenset({"hand", "autodiff", "peer", "cudnn"}),
        {"cpu": 180.0, "default": 480.0},
    ),
    "smoke": Mode(
        0,
        0.0,
        0,
        0,
        frozenset({"hand", "autodiff", "autodiff_abs", "peer", "cudnn"}),
        {"default": None},
    ),
}

SWEEP_FIRST = (
    "relu",
    "softmax",
    "softmax_cross_entropy",
    "batch_norm",
    "dense",
    "lstm",
    "mlp_loss",
)
"""A sweep cut by its budget keeps these ops first: one of each family."""


def sweep_sizes(rank: int, platform: str) -> list[tuple[int, ...]]:
    """Sizes from launch-bound to memory-bound, by the rank of an op's sizes:
    2 (rows x 512: 2^12 to 2^26 elements on a GPU, 2^11 to 2^21 on a CPU),
    3 (n x n x n), 4 (time x batch x hidden x hidden, batch and hidden growing),
    5 (an MLP: batch x 784 x width x 2 x 10, batch = width)."""
    big = platform != "cpu"
    if rank == 2:
        return [(2**j, 512) for j in (range(3, 18, 2) if big else range(2, 13, 2))]
    if rank == 3:
        return [
            (n, n, n) for n in ([2**j for j in range(7, 14)] if big else [32, 64, 128, 256, 512])
        ]
    if rank == 4:
        scales = [1, 2, 4, 8, 16] if big else [1, 2, 4]
        return [(64 if big else 16, 16 * r, 128 * r, 128 * r) for r in scales]
    if rank == 5:
        widths = [2**j for j in range(8, 15)] if big else [64, 128, 256, 512, 1024]
        return [(n, 784, n, 2, 10) for n in widths]
    raise ValueError(f"no sweep sizes for rank {rank}")


@dataclasses.dataclass(frozen=True)
class Item:
    """One planned row."""

    name: str
    kind: str  # "op" or "step"
    size: tuple[int, ...]
    programs: tuple[str, ...]
    bytes: int
    flops: int

    @property
    def label(self) -> str:
        return f"{self.name} {'x'.join(map(str, self.size))}"


@dataclasses.dataclass
class Plan:
    mode: str
    items: list[Item]
    repeats: int
    slow: tuple[float, int] | None
    min_sample_s: float
    budget_s: float | None
    estimate_s: float
    rows_s: dict[str, float]
    dropped: list[tuple[str, str]]  # (label, reason)
    rates: dict[str, Any]


def spec_of(name: str):
    return steps.source(name) if name in steps.STEPS else OPS[name]


def names_known() -> list[str]:
    return [*OPS, *steps.STEPS]


def size_rank(name: str) -> int:
    return len(spec_of(name).sizes["test"])


def sizes_for(name: str, mode: str, platform: str) -> list[tuple[int, ...]]:
    """The sizes of ``name`` in ``mode``; none for a registry entry without
    benchmark sizes (a variant kept for the tests), except in a smoke run."""
    spec = spec_of(name)
    if mode == "smoke":
        return [tuple(spec.sizes["test"])]
    if not spec.sizes.get("quick") and not spec.sizes.get("full"):
        return []
    if mode == "sweep":
        own = spec.sizes.get("sweep")
        if own is not None:
            return [tuple(s) for s in own["cpu" if platform == "cpu" else "gpu"]]
        return sweep_sizes(size_rank(name), platform)
    sizes = [tuple(s) for s in spec.sizes[mode]]
    if name in steps.STEPS:  # one training step of each kind: its source's largest size
        return [max(sizes, key=_elements)]
    return sizes


def check_size(name: str, size: tuple[int, ...], dtype: Any) -> str | None:
    """Why ``size`` is not valid for op ``name`` (traced, not run), or None."""
    spec = spec_of(name)
    if len(size) != size_rank(name):
        return f"{name} takes sizes of rank {size_rank(name)} (like {_fmt(spec.sizes['test'])})"
    try:
        jax.eval_shape(lambda: spec.manual(*spec.example_args(jax.random.key(0), dtype, size)))
    except Exception as exc:
        return f"{name} at {_fmt(size)}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return None


def _fmt(size) -> str:
    return "x".join(map(str, size))


def programs_for(name: str, variants: frozenset[str], cudnn: bool) -> tuple[str, ...]:
    spec = spec_of(name)
    wanted = ["hand"]
    wanted += [v for v in ("hand_again", "autodiff") if v in variants]
    if "autodiff_abs" in variants and name in PLAIN_ABS:
        wanted.append("autodiff_abs")
    if "peer" in variants and (name in steps.STEPS or spec.peer is not None):
        wanted.append("peer")
    if "cudnn" in variants and cudnn and name not in steps.STEPS and spec.gpu_peer is not None:
        wanted.append("cudnn")
    if "forward" in variants:
        wanted.append("forward")
    return tuple(wanted)


def make_items(
    names: list[str],
    mode: str,
    platform: str,
    dtype: Any,
    *,
    sizes: dict[str, list[tuple[int, ...]]] | None = None,
    cudnn: bool = False,
) -> list[Item]:
    """The rows of a run, in run order: for quick and full, every op's largest
    size first, then the other sizes; for a sweep, op by op (``SWEEP_FIRST``
    first), sizes ascending."""
    variants = MODES[mode].variants
    per_name = {}
    for name in names:
        spec = spec_of(name)
        chosen = (sizes or {}).get(name) or sizes_for(name, mode, platform)
        if not chosen:
            continue
        programs = programs_for(name, variants, cudnn)
        kind = "step" if name in steps.STEPS else "op"
        per_name[name] = [
            Item(
                name,
                kind,
                size,
                programs,
                spec.bytes_moved(size, dtype),
                spec.flops(size) if spec.flops else 0,
            )
            for size in sorted(chosen, key=lambda s: _elements(s))
        ]
    if mode == "sweep":
        first = [n for n in SWEEP_FIRST if n in per_name]
        order = first + [n for n in per_name if n not in first]
        return [item for n in order for item in per_name[n]]
    largest = [items[-1] for items in per_name.values()]
    rest = [item for items in per_name.values() for item in items[:-1]]
    return largest + rest


def _elements(size) -> int:
    n = 1
    for d in size:
        n *= d
    return n


def make_plan(
    items: list[Item],
    mode: str,
    rates: dict[str, Any],
    dtype: Any,
    *,
    budget_s: float | None,
    repeats: int | None = None,
    spent_s: float | None = None,
) -> Plan:
    """Fits ``items`` into ``budget_s`` (None: no limit); see the module docstring.
    ``spent_s``: the seconds already spent on setup (else its allowance)."""
    settings = MODES[mode]
    planned_repeats = repeats or settings.repeats
    timed = mode != "smoke"

    slow = None if repeats else settings.slow

    def row_s(item: Item, r: int) -> float:
        return cost.row_seconds(
            item,
            rates,
            dtype,
            repeats=r,
            min_sample_s=settings.min_sample_s,
            timed=timed,
            slow=slow,
        )

    fixed = cost.fixed_seconds(rates, timed, spent_s)

    def total(chosen: list[Item], r: int) -> float:
        return fixed + sum(row_s(i, r) for i in chosen)

    kept, dropped, r = list(items), [], planned_repeats
    if budget_s is not None and total(kept, r) > budget_s:
        floor = min(planned_repeats, MIN_REPEATS)
        while r > floor and total(kept, r) > budget_s:
            r -= 1
        while kept and total(kept, r) > budget_s:
            group = [kept[-1]] if mode != "sweep" else [i for i in kept if i.name == kept[-1].name]
            for item in group:
                kept.remove(item)
                dropped.append((item.label, "over the time budget"))
    return Plan(
        mode=mode,
        items=kept,
        repeats=r,
        slow=slow,
        min_sample_s=settings.min_sample_s,
        budget_s=budget_s,
        estimate_s=total(kept, r),
        rows_s={item.label: row_s(item, r) for item in kept},
        dropped=dropped,
        rates=rates,
    )


def describe(plan: Plan) -> list[str]:
    """The plan as lines of text: what runs, for how long, and what was left out."""
    budget = f"budget {plan.budget_s:.0f} s" if plan.budget_s else "no time budget"
    rounds = f"{plan.repeats} rounds"
    if plan.slow and plan.slow[1] < plan.repeats:
        rounds += f" ({plan.slow[1]} where a call takes {plan.slow[0] * 1e3:.0f} ms or more)"
    lines = [
        f"plan: {len(plan.items)} rows, {rounds}, about {plan.estimate_s:.0f} s "
        f"({budget}; estimate from {plan.rates['source']})"
    ]
    by_name: dict[str, list[str]] = {}
    for item in plan.items:
        by_name.setdefault(item.name, []).append(_fmt(item.size))
    for name, sizes in by_name.items():
        secs = sum(v for k, v in plan.rows_s.items() if k.split(" ")[0] == name)
        shown = (
            ", ".join(sizes)
            if len(sizes) <= 3
            else f"{sizes[0]} to {sizes[-1]}, {len(sizes)} sizes"
        )
        lines.append(f"  {name}: {shown} (~{secs:.0f} s)")
    if plan.dropped:
        lines.append(f"left out ({len(plan.dropped)} rows, {plan.dropped[0][1]}):")
        lines.append("  " + group_labels([label for label, _ in plan.dropped]))
    return lines


def group_labels(labels: list[str]) -> str:
    """``["mse 4x512", "mse 16x512", "relu 8x8"]`` as ``"mse (2 sizes), relu 8x8"``."""
    sizes: dict[str, list[str]] = {}
    for label in labels:
        name, _, size = label.partition(" ")
        sizes.setdefault(name, []).append(size)
    return ", ".join(
        f"{name} {s[0]}" if len(s) == 1 else f"{name} ({len(s)} sizes)" for name, s in sizes.items()
    )
