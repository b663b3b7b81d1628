"""dlref's benchmark: hand-written backward vs JAX autodiff vs the peer library.

    python -m benchmarks                # quick: every op, CPU-sized (about 3 minutes on 2 cores)
    python -m benchmarks --full         # GPU-sized, with roofline shares
    python -m benchmarks --ops softmax,mse --sizes 4096x4096
    python -m benchmarks --smoke        # tiny sizes, correctness only (no timing)

Writes a table to the terminal, and ``<platform>-<mode>.json``, ``.md`` and
``.png`` under ``--out`` (default ``benchmarks/results/``).
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys

import jax.numpy as jnp
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from benchmarks import device, report
from benchmarks.rows import bench_row
from dlref import OPS

MODES = {
    # repeats, smallest sample, stream elements, matmul n
    "quick": {"repeats": 15, "min_sample_s": 0.01, "stream": 2**24, "matmul": 1024},
    "full": {"repeats": 31, "min_sample_s": 0.002, "stream": 2**28, "matmul": 8192},
    "smoke": {"repeats": 0, "min_sample_s": 0.0, "stream": 0, "matmul": 0},
}


def _parse_sizes(text: str | None) -> list[tuple[int, ...]] | None:
    if not text:
        return None
    return [tuple(int(d) for d in part.split("x")) for part in text.split(",")]


def _plan(args) -> list[tuple]:
    names = list(OPS) if not args.ops else [n.strip() for n in args.ops.split(",")]
    unknown = [n for n in names if n not in OPS]
    if unknown:
        sys.exit(f"unknown ops {unknown}; registered: {', '.join(OPS)}")
    sizes = _parse_sizes(args.sizes)
    plan = []
    for name in names:
        spec = OPS[name]
        default = spec.sizes["test"]
        if args.mode == "smoke":
            chosen = [default]
        elif sizes is not None:
            chosen = [s for s in sizes if len(s) == len(default)]
        else:
            chosen = [tuple(s) for s in spec.sizes[args.mode]]
        plan += [(spec, size) for size in chosen]
    return plan


def main(argv: list[str] | None = None) -> int:
    doc = __doc__.split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=doc)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--full", dest="mode", action="store_const", const="full")
    mode.add_argument("--smoke", dest="mode", action="store_const", const="smoke")
    parser.set_defaults(mode="quick")
    parser.add_argument("--ops", help="comma-separated op names (default: all registered)")
    parser.add_argument("--sizes", help="comma-separated sizes like 256x512 (ops of that rank)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, help="interleaved samples per variant")
    parser.add_argument("--out", default="benchmarks/results", help="folder for JSON, MD and PNG")
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument(
        "--readme", action="store_true", help="put the table in README.md's block for this platform"
    )
    args = parser.parse_args(argv)

    settings = dict(MODES[args.mode])
    if args.repeats:
        settings["repeats"] = args.repeats
    timed = args.mode != "smoke"
    console = Console(width=None if sys.stdout.isatty() else 150)
    meta = {"device": device.describe(), "mode": args.mode, "dtype": args.dtype}
    console.print(
        f"[bold]dlref benchmark[/] on {meta['device']['device_kind']} "
        f"({meta['device']['platform']}), JAX {meta['device']['jax']}, mode {args.mode}"
    )
    if timed:
        with console.status("measuring the device's bandwidth and matmul rate"):
            meta["ceilings"] = device.ceilings(
                elements=settings["stream"], matmul_n=settings["matmul"], repeats=9
            )
        c = meta["ceilings"]
        console.print(
            f"stream bandwidth {c['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s, matmul "
            f"{c['matmul_f32_flops_per_s'] / 1e12:.2f} TFLOP/s f32, "
            f"{c['matmul_bf16_flops_per_s'] / 1e12:.2f} TFLOP/s bf16"
        )

    plan = _plan(args)
    rows = []
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("ops", total=len(plan))
        for spec, size in plan:
            progress.update(task, description=f"{spec.name} {'x'.join(map(str, size))}")
            rows.append(
                bench_row(
                    spec,
                    size,
                    jnp.dtype(args.dtype),
                    repeats=settings["repeats"],
                    min_sample_s=settings["min_sample_s"],
                    ceilings=meta.get("ceilings"),
                    roofline=meta["device"]["platform"] == "gpu",
                    time_it=timed,
                )
            )
            progress.advance(task)

    meta["targets"] = report.targets(rows, meta["device"]["platform"])
    header, body = report.table_rows(rows)
    table = Table(*header, title="value_and_grad per call (median of interleaved repeats)")
    for cells in body:
        table.add_row(*cells)
    console.print(table)
    for t in meta["targets"]:
        console.print(f"target {t['target']}: {t['verdict']} ({t['measured']})")

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kind = re.sub(r"[^a-z0-9]+", "-", meta["device"]["device_kind"].lower()).strip("-")
    stem = f"{meta['device']['platform']}-{kind}-{args.mode}"
    report.write_json(out / f"{stem}.json", meta, rows)
    table_md = report.markdown(rows, meta)
    (out / f"{stem}.md").write_text(table_md)
    if args.readme:
        report.update_readme(pathlib.Path("README.md"), meta["device"]["platform"], stem, table_md)
    if timed and not args.no_chart:
        report.chart(out / f"{stem}.png", rows, f"dlref on {meta['device']['device_kind']}")
    chart_note = "" if not timed or args.no_chart else ", .png"
    console.print(f"wrote {out / stem}.json, .md{chart_note}")
    bad = [r["op"] for r in rows if not r["agree"]]
    if bad:
        console.print(f"[red]variants disagree numerically for: {bad}[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
