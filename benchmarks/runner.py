"""A run: the plan, the rows one by one (each written as soon as it is done),
a running ETA, the budget kept, and the report at the end."""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
import random
import signal
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
from rich.console import Console

from benchmarks import charts, cli, cost, device, output, plan, report, steps, verdicts
from benchmarks.cases import op_case
from benchmarks.rows import error_text, measure
from dlref import OPS


class Stopped(Exception):
    """SIGTERM (a job's time limit): finish writing what was measured."""


def _on_sigterm(signum, frame):
    raise Stopped("terminated")


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = cli.parse(argv)
    console = Console(width=None if sys.stdout.isatty() else 80, highlight=False)
    with jax.default_matmul_precision(args.matmul_precision):
        return Run(args, console, started, argv).execute()


class Run:
    def __init__(self, args: cli.Args, console: Console, started: float, argv=None):
        self.args, self.console, self.started = args, console, started
        self.argv = list(sys.argv[1:] if argv is None else argv)
        self.dtype = jnp.dtype(args.dtype)
        self.timed = args.mode != "smoke"

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def execute(self) -> int:
        args, console = self.args, self.console
        names, sizes, problems = cli.select(args, self.dtype)
        if problems:
            for line in problems:
                console.print(f"[red]error:[/] {line}")
            return 2
        info = device.describe()
        platform = info["platform"]
        meta: dict[str, Any] = {
            "device": info,
            "mode": args.mode,
            "dtype": args.dtype,
            "matmul_precision": args.matmul_precision,
            "seed": args.seed,
            "command": " ".join(["python -m benchmarks", *self.argv]),
            "load_average": {"before": device.load_average()},
        }
        console.print(
            f"[bold]dlref benchmark[/] on {info['device_kind']} ({platform}), JAX {info['jax']}, "
            f"mode {args.mode}, {args.dtype}, matmul precision {args.matmul_precision}"
        )
        self._report_committed(meta)
        meta["peers"] = self._probe(names, platform, dry=args.plan)
        cudnn = any(p["available"] for p in meta["peers"].values())
        items = plan.make_items(names, args.mode, platform, self.dtype, sizes=sizes, cudnn=cudnn)
        settings = plan.MODES[args.mode]
        if self.timed and not (args.plan and platform != "cpu"):
            # A CPU's ceilings serve the plan only (no roofline there): small probes.
            small = args.plan or platform == "cpu"
            with console.status("measuring the device's copy bandwidth and matmul rates"):
                meta["ceilings"] = device.ceilings(
                    elements=2**22 if small else settings.stream,
                    matmul_n=512 if small else settings.matmul,
                    repeats=5 if args.plan else 9,
                )
            c = meta["ceilings"]
            console.print(
                f"copy bandwidth {c['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s, matmul "
                f"{c['matmul_flops_per_s']['float32'] / 1e12:.2f} TFLOP/s float32, "
                f"{c['matmul_flops_per_s']['bfloat16'] / 1e12:.2f} TFLOP/s bfloat16"
            )
        rates = cost.rates(platform, args.matmul_precision, meta.get("ceilings"))
        budget = args.budget if args.budget_given else settings.budget(platform)
        budget = budget or None
        the_plan = plan.make_plan(
            items,
            args.mode,
            rates,
            self.dtype,
            budget_s=budget,
            repeats=args.repeats,
            spent_s=None if args.plan else self.elapsed(),
        )
        for line in plan.describe(the_plan):
            console.print(line)
        if args.plan:
            return 0
        if not the_plan.items:
            console.print("[red]error:[/] nothing to run (the budget leaves no row)")
            return 1
        return self._measure(the_plan, meta, platform, rates)

    def _report_committed(self, meta: dict) -> None:
        """Says whether this device's committed results still match the code."""
        path = pathlib.Path(self.args.out) / (output.stem(meta) + ".json")
        if path.exists():
            try:
                why = device.staleness(json.loads(path.read_text()))
            except (ValueError, KeyError):
                why = "unreadable"
            if why:
                self.console.print(f"[yellow]committed results {path} are stale:[/] {why}")

    def _probe(self, names: list[str], platform: str, dry: bool) -> dict:
        peers = {}
        for name in names:
            spec = OPS.get(name)
            if spec is None or spec.gpu_peer is None or spec.gpu_peer_name in peers:
                continue
            peers[spec.gpu_peer_name] = device.probe_gpu_peer(spec, platform, self.dtype, dry=dry)
            probe = peers[spec.gpu_peer_name]
            if not probe["available"] and platform == "gpu":
                self.console.print(f"[yellow]{spec.gpu_peer_name} not run:[/] {probe['reason']}")
        return peers

    def _measure(self, the_plan: plan.Plan, meta: dict, platform: str, rates: dict) -> int:
        args, console = self.args, self.console
        changed = args.changed()
        committed = not changed and args.mode != "smoke"
        name = output.stem(meta) + ("" if committed else "-" + output.partial_tag(changed))
        if args.mode == "smoke" and not changed:
            name = output.stem(meta)
        dest = output.Destination(pathlib.Path(args.out), name, committed)
        meta["repeats"] = the_plan.repeats
        meta["slow"] = the_plan.slow
        meta["run"] = {
            "rows_planned": len(the_plan.items),
            "rows_done": 0,
            "budget_s": the_plan.budget_s,
            "estimate_s": the_plan.estimate_s,
            "estimate_source": rates["source"],
            "dropped": [label for label, _ in the_plan.dropped],
            "skipped": [],
        }
        rows: list[dict] = []
        order = {n: i for i, n in enumerate([*OPS, *steps.STEPS])}

        def sort_key(row):
            return order.get(row["op"], 0), math.prod(row["size"])

        def write(final: bool = False):
            rows.sort(key=sort_key)
            meta["run"]["elapsed_s"] = self.elapsed()
            meta["run"]["rows_done"] = len(rows)
            if final:
                meta["load_average"]["after"] = device.load_average()
                if meta["device"]["dirty_files"]:
                    meta["stale"] = device.staleness(meta)
                meta["targets"] = verdicts.targets(rows, platform)
                meta["headline"] = verdicts.headline(rows, args.seed)
            dest.write({**meta, "rows": rows}, report.markdown(rows, meta))

        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        status = 0
        try:
            self._loop(the_plan, meta, rates, rows, write)
        except (KeyboardInterrupt, Stopped) as exc:
            console.print(f"[yellow]stopped ({type(exc).__name__}); writing what was measured[/]")
            done = {(r["op"], tuple(r["size"])) for r in rows}
            meta["run"]["skipped"] += [
                i.label for i in the_plan.items if (i.name, i.size) not in done
            ]
            status = 130
        finally:
            signal.signal(signal.SIGTERM, previous)
        # Rows the budget left out are part of the run (its report lists them);
        # an interrupted run is not complete.
        complete = status == 0
        meta["run"]["complete"] = complete
        write(final=True)
        chart_paths = self._charts(dest, rows, meta) if args.chart and self.timed else []
        files = dest.finish(complete)
        if args.readme:
            readme = pathlib.Path(args.readme)
            link = None
            if args.mode == "sweep":  # a sweep's table is long: the README links to it
                full = next(p for p in files if p.suffix == ".md")
                link = os.path.relpath(full.resolve(), readme.resolve().parent)
            md = report.markdown(rows, meta, table_link=link)
            final_charts = [p for p in files if p.suffix == ".png"]
            output.update_readme(readme, output.readme_key(meta), md, final_charts)
        self._summary(rows, meta, files, complete, committed, chart_paths)
        bad = [verdicts.label(r) for r in rows if not r.get("agree") or "error" in r]
        if args.mode == "smoke":
            bad += [f"{verdicts.label(r)} {v}" for r in rows for v in r.get("errors", {})]
        if bad:
            console.print(f"[red]variants disagree or fail for:[/] {', '.join(dict.fromkeys(bad))}")
            return status or 1
        return status

    def _loop(self, the_plan, meta, rates, rows, write) -> None:
        args, console = self.args, self.console
        budget = the_plan.budget_s
        reserve = rates["finish"]
        deadline = self.started + budget - reserve if budget else math.inf
        settings = plan.MODES[args.mode]
        estimated_done = actual_done = 0.0
        items = the_plan.items

        def est(item, r):
            return cost.row_seconds(
                item,
                rates,
                self.dtype,
                repeats=r,
                min_sample_s=settings.min_sample_s,
                timed=self.timed,
                slow=the_plan.slow,
            )

        for index, item in enumerate(items):
            correction = min(10.0, max(0.3, actual_done / estimated_done)) if actual_done else 1.0
            repeats = the_plan.repeats
            if budget:
                available = deadline - time.perf_counter()
                floor = min(the_plan.repeats, plan.MIN_REPEATS)

                def fits(r, index=index, correction=correction, available=available):
                    return sum(est(i, r) for i in items[index:]) * correction <= available

                if fits(floor):  # the most rounds (up to the plan's) that fit every row left
                    low, high = floor, the_plan.repeats
                    while low < high:
                        mid = (low + high + 1) // 2
                        low, high = (mid, high) if fits(mid) else (low, mid - 1)
                    repeats = low
                elif est(item, floor) * correction <= available:
                    repeats = floor
                else:
                    meta["run"]["skipped"].append(item.label)
                    console.print(f"[yellow]skipped {item.label}: over the time budget[/]")
                    continue
            row_start, row_cpu = time.perf_counter(), time.process_time()
            row = self._row(
                item, meta, repeats, deadline, rates["parallel_compiles"], the_plan.slow
            )
            spent = time.perf_counter() - row_start
            row["row_s"] = spent
            row.setdefault("cpu_s", {})["row"] = time.process_time() - row_cpu
            actual_done += spent
            estimated_done += est(item, repeats)
            rows.append(row)
            write()
            remaining = sum(est(i, the_plan.repeats) for i in items[index + 1 :]) * (
                actual_done / estimated_done
            )
            console.print(self._progress_line(index, len(items), row, spent, remaining, budget))

    def _row(
        self, item: plan.Item, meta: dict, repeats: int, deadline: float, workers: int, slow
    ) -> dict:
        variants = frozenset(item.programs)
        seed = f"{self.args.seed}-{item.label}"
        try:
            if item.kind == "step":
                case = steps.step_case(item.name, item.size, self.dtype, variants=variants)
            else:
                spec = OPS[item.name]
                cudnn = spec.gpu_peer if "cudnn" in variants else None
                case = op_case(spec, item.size, self.dtype, variants=variants, cudnn=cudnn)
                for peer, probe in meta["peers"].items():
                    if peer == spec.gpu_peer_name and not probe["available"]:
                        case.skipped["cudnn"] = probe["reason"]
            return measure(
                case,
                repeats=repeats,
                min_sample_s=plan.MODES[self.args.mode].min_sample_s,
                rng=random.Random(seed),
                deadline=deadline,
                time_it=self.timed,
                ceilings=meta.get("ceilings") if meta["device"]["platform"] == "gpu" else None,
                compile_workers=workers,
                slow=slow,
            )
        except Exception as exc:  # the inputs could not be made (out of memory, ...)
            return {
                "op": item.name,
                "kind": item.kind,
                "size": list(item.size),
                "dtype": self.dtype.name,
                "agree": False,
                "error": error_text(exc),
                "errors": {"hand": error_text(exc)},
            }

    def _progress_line(self, index, total, row, spent, remaining, budget) -> str:
        ratios = row.get("ratios", {})
        figures = " ".join(
            f"{short} {ratios[n]['median']:.2f}"
            for n, short in (("autodiff", "h/auto"), ("peer", "h/peer"))
            if n in ratios
        )
        if "error" in row:
            figures = "[red]error[/]"
        elif row.get("errors"):
            figures += f" [yellow]({', '.join(row['errors'])} failed)[/]"
        limit = f" of {budget:.0f}" if budget else ""
        return (
            f"[{index + 1}/{total}] {verdicts.label(row)} {figures} {spent:.1f}s; "
            f"elapsed {self.elapsed():.0f}s{limit}, ETA {remaining:.0f}s"
        )

    def _charts(self, dest, rows, meta) -> list[pathlib.Path]:
        title = (
            f"dlref on {meta['device']['device_kind']}, {meta['dtype']}, mode {meta['mode']}, "
            f"code {meta['device']['code_commit']}"
        )
        paths = []
        with contextlib.suppress(Exception):
            if meta["mode"] == "sweep":
                bandwidth = None
                if meta["device"]["platform"] == "gpu" and meta.get("ceilings"):
                    bandwidth = meta["ceilings"]["bandwidth_bytes_per_s"]
                if charts.sweep(dest.path(".png"), rows, title, bandwidth):
                    paths.append(dest.path(".png"))
            elif charts.ratios(dest.path(".png"), rows, title):
                paths.append(dest.path(".png"))
        return paths

    def _summary(self, rows, meta, files, complete, committed, chart_paths) -> None:
        console = self.console
        console.print(report.terminal_table(rows, meta))
        for line in report.headline_lines(meta):
            console.print(line.replace("**", ""))
        skipped = meta["run"]["skipped"]
        if skipped:
            console.print(
                f"[yellow]{len(skipped)} planned rows not run (time budget): "
                f"{plan.group_labels(skipped)}[/]"
            )
        if not complete:
            console.print(
                "[yellow]interrupted[/]"
                + ("; the committed results are left as they were" if committed else "")
            )
        console.print("wrote " + ", ".join(str(p) for p in files))
