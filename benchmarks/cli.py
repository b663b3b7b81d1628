"""The command line: every option, checked before anything is measured."""

from __future__ import annotations

import argparse
import dataclasses
import textwrap

from benchmarks import plan, steps

DESCRIPTION = """\
dlref's benchmark: jit(value_and_grad) of every registered op with its
hand-written backward, with JAX autodiff of the same forward, and with the
peer library (jax.nn, optax, flax; cuDNN's LSTM on a GPU), plus two
end-to-end training steps (an MLP and an LSTM, with an optax update).

Default mode (quick): every op at its two CPU-sized sizes and each training
step at one, 15 interleaved rounds in a shuffled order (7 where a call takes
10 ms or more), within a 285 s budget (5 minutes with start-up). --full: the
GPU sizes, 31 rounds (15 for calls of 50 ms or more), 480 s budget (fits 8
minutes on one H100/H200; --plan shows the estimate). --sweep: each op over
sizes from launch-bound to memory-bound. --smoke: tiny sizes, correctness only.

Results: a table on the terminal; a JSON file (written after every row), a
Markdown report and PNG charts in --out (default benchmarks/results/). A
default run of a mode (all ops, its sizes, rounds and budget) writes
<platform>-<device>-<mode>.*, the committed results, once it ends (an
interrupted one leaves them as they were); any other run writes under
<out>/partial/ with a name of its own, shown at the end."""

EPILOG = """\
examples:
  python -m benchmarks                      # quick, every op (the README's command)
  python -m benchmarks --full --plan        # what a GPU run would do, and how long
  python -m benchmarks --full --readme      # GPU sizes; update README.md's gpu block
  python -m benchmarks --sweep --ops relu,softmax,lstm
  python -m benchmarks --ops softmax,dense --sizes 4096x4096,512x1024x1024
  python -m benchmarks --smoke              # every variant checked against the hand-written one"""


@dataclasses.dataclass
class Args:
    mode: str
    ops: list[str] | None
    sizes: list[tuple[int, ...]] | None
    dtype: str
    matmul_precision: str
    repeats: int | None
    budget: float | None
    budget_given: bool
    plan: bool
    seed: int
    out: str
    chart: bool
    readme: str | None

    def changed(self) -> dict:
        """The options that make this a partial run (not its mode's default)."""
        out: dict = {}
        if self.ops:
            out["ops"] = self.ops
        if self.sizes:
            out["sizes"] = ["x".join(map(str, s)) for s in self.sizes]
        if self.repeats:
            out["repeats"] = self.repeats
        if self.budget_given:
            out["budget"] = f"{self.budget:g}" if self.budget else "none"
        if self.dtype != "float32":
            out["dtype"] = self.dtype
        if self.matmul_precision != "highest":
            out["precision"] = self.matmul_precision
        if self.seed != 0:
            out["seed"] = self.seed
        return out


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _budget(text: str) -> float:
    if text.lower() == "none":
        return 0.0
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive (or 'none'), got {text}")
    return value


def _sizes(text: str) -> list[tuple[int, ...]]:
    sizes = []
    for part in text.split(","):
        try:
            size = tuple(int(d) for d in part.strip().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{part!r} is not a size like 256x512 (dimensions joined by x)"
            ) from None
        if not size or min(size) < 1:
            raise argparse.ArgumentTypeError(f"{part!r}: every dimension must be at least 1")
        sizes.append(size)
    return sizes


def _ops(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("no op names given")
    unknown = [n for n in names if n not in plan.names_known()]
    if unknown:
        known = textwrap.fill(", ".join(plan.names_known()), 78, subsequent_indent="  ")
        raise argparse.ArgumentTypeError(f"unknown ops {unknown}; known:\n  {known}")
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--full", dest="mode", action="store_const", const="full", help="GPU sizes (31 rounds)"
    )
    mode.add_argument(
        "--sweep",
        dest="mode",
        action="store_const",
        const="sweep",
        help="each op over sizes from launch-bound to memory-bound; charts ratio (and, on a "
        "GPU, GB/s) against size; budget 180 s on a CPU, 480 s elsewhere",
    )
    mode.add_argument(
        "--smoke",
        dest="mode",
        action="store_const",
        const="smoke",
        help="tiny sizes, no timing: checks every variant's value and gradient",
    )
    p.set_defaults(mode="quick")
    p.add_argument(
        "--ops",
        type=_ops,
        help="comma-separated op names (default: every registered op, then the training "
        f"steps {', '.join(steps.STEPS)})",
    )
    p.add_argument(
        "--sizes",
        type=_sizes,
        help="comma-separated sizes like 256x512 or 64x512x512; each op takes those of its "
        "rank (without --ops: the ops that take any of them)",
    )
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument(
        "--matmul-precision",
        default="highest",
        choices=["default", "high", "highest"],
        help="jax.default_matmul_precision for the whole run (default: highest, true float32; "
        "'default' lets a GPU use TF32)",
    )
    p.add_argument(
        "--repeats", type=_positive_int, help="interleaved rounds per row (default: the mode's)"
    )
    p.add_argument(
        "--budget",
        type=_budget,
        metavar="SECONDS",
        help="wall-clock limit for the whole run, compiles included: the plan fits it (fewer "
        "rounds, then fewer rows) and the run stops cleanly at it; 'none' for no limit "
        "(default: 285 quick, 480 full, sweep 180 on a CPU and 480 elsewhere, none for smoke)",
    )
    p.add_argument(
        "--plan",
        action="store_true",
        help="print the plan and its time estimate, and exit without measuring",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffled order (default 0)")
    p.add_argument("--out", default="benchmarks/results", help="results folder")
    p.add_argument("--no-chart", dest="chart", action="store_false", help="skip the PNG charts")
    p.add_argument(
        "--readme",
        nargs="?",
        const="README.md",
        metavar="PATH",
        help="write the report into PATH's (default README.md) marked block for this device "
        "kind (<!-- results:cpu -->, gpu, tpu; cpu-sweep for a sweep), created if missing",
    )
    return p


def parse(argv: list[str] | None = None) -> Args:
    p = parser()
    ns = p.parse_args(argv)
    if ns.mode == "sweep" and ns.sizes:
        p.error("--sweep chooses its own sizes; leave out --sizes")
    if ns.mode == "smoke" and (ns.repeats or ns.budget is not None):
        p.error("--smoke times nothing; --repeats and --budget do not apply")
    return Args(
        mode=ns.mode,
        ops=ns.ops,
        sizes=ns.sizes,
        dtype=ns.dtype,
        matmul_precision=ns.matmul_precision,
        repeats=ns.repeats,
        budget=ns.budget,
        budget_given=ns.budget is not None,
        plan=ns.plan,
        seed=ns.seed,
        out=ns.out,
        chart=ns.chart,
        readme=ns.readme,
    )


def select(args: Args, dtype) -> tuple[list[str], dict[str, list[tuple[int, ...]]], list[str]]:
    """The ops to run and their ``--sizes``, or the problems (checked by
    tracing, before anything runs)."""
    names = args.ops or plan.names_known()
    if not args.sizes:
        missing = [n for n in names if not plan.sizes_for(n, args.mode, "cpu")]
        if args.ops and missing:
            return (
                [],
                {},
                [f"{', '.join(missing)}: no benchmark sizes in the registry; give --sizes"],
            )
        return [n for n in names if n not in missing], {}, []
    chosen: dict[str, list[tuple[int, ...]]] = {}
    problems = []
    for name in names:
        fitting = [s for s in args.sizes if len(s) == plan.size_rank(name)]
        if not fitting:
            if args.ops:
                problems.append(
                    f"--sizes has no size of rank {plan.size_rank(name)} for {name} (like "
                    f"{'x'.join(map(str, plan.spec_of(name).sizes['test']))})"
                )
            continue
        bad = [why for s in fitting if (why := plan.check_size(name, s, dtype))]
        problems += bad
        chosen[name] = fitting
    if not chosen and not problems:
        problems.append("no registered op takes sizes of the ranks given in --sizes")
    return list(chosen), chosen, problems
