"""``python -m examples``: runs the topics and writes REPORT.md with their figures and verdicts.

    python -m examples                            # every topic in examples.TOPICS
    python -m examples --only gradient,l1_vs_l2   # some; the others keep their last results
    python -m examples --quick                    # the small versions the tests run

Figures and each topic's result (JSON) go to ``<out>/figures/``; the report, built from
every topic's latest result in TOPICS order, to ``<out>/REPORT.md`` (``--out`` defaults to
the examples/ folder).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import sys
import time
from typing import Any

import jax

import examples

HEADER = """# The cheat sheet's claims, checked

Every claim of the "Deep Learning Cheat Sheet" (Camron Godbout, 2016) that an experiment can test,
with the experiment's figure and a verdict: **holds**, **holds with a caveat** or **does not
hold**, with the measured numbers. Where the cheat sheet is loose or wrong, the notes say so
and give the correct statement. Built by `python -m examples` (one topic:
`python -m examples.<topic>`); each experiment is a module of `examples/` with fixed seeds,
and `tests/test_examples.py` asserts every verdict on a smaller run, so this report cannot
silently go stale.
"""


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, pathlib.Path):
        return str(value)
    if hasattr(value, "item"):  # numpy and JAX scalars
        return value.item()
    return value


def run_topic(name: str, figures: pathlib.Path, quick: bool) -> dict[str, Any]:
    """Runs one topic; stores its result as ``figures/<name>.json`` and returns it."""
    module = examples.load(name)
    start = time.perf_counter()
    res = module.run(figures, quick=quick)
    seconds = time.perf_counter() - start
    record = {
        "name": name,
        "title": module.TITLE,
        "claim": module.CLAIM,
        "verdict": res["verdict"],
        "summary": res["summary"],
        "figure": pathlib.Path(res["figure"]).name,
        "notes": res["notes"],
        "measured": _jsonable(res["measured"]),
        "mode": "quick" if quick else "full",
        "seconds": round(seconds, 1),
    }
    (figures / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def build_report(out: pathlib.Path) -> str:
    """REPORT.md from the stored results of every topic in TOPICS (those present)."""
    records = []
    for name in examples.TOPICS:
        path = out / "figures" / f"{name}.json"
        if path.exists():
            records.append(json.loads(path.read_text()))
    lines = [HEADER]
    lines.append(
        f"Run with JAX {jax.__version__} on {platform.machine()} "
        f"({jax.default_backend()}), Python {platform.python_version()}.\n"
    )
    lines.append("| # | topic | verdict | seconds |")
    lines.append("|---|---|---|---|")
    for i, r in enumerate(records, 1):
        anchor = f"{i}-{r['title']}".lower().replace(" ", "-")
        anchor = "".join(c for c in anchor if c.isalnum() or c == "-")
        mode = " (quick)" if r["mode"] == "quick" else ""
        lines.append(f"| {i} | [{r['title']}](#{anchor}) | {r['verdict']} | {r['seconds']}{mode} |")
    for i, r in enumerate(records, 1):
        mode = ", quick mode" if r["mode"] == "quick" else ""
        lines += [
            "",
            f"## {i}. {r['title']}",
            "",
            f"> {r['claim']}",
            "",
            f"**Verdict: {r['verdict']}.** {r['summary']}.",
            "",
            f"![{r['title']}](figures/{r['figure']})",
            "",
            r["notes"],
            "",
            f"*`python -m examples.{r['name']}`: {r['seconds']} s{mode}.*",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", help="comma-separated topics (default: all): " + ", ".join(examples.TOPICS)
    )
    parser.add_argument("--quick", action="store_true", help="the small, fast versions")
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path(examples.__file__).parent,
        help="folder for REPORT.md and figures/ (default: examples/)",
    )
    args = parser.parse_args(argv)
    names = examples.TOPICS if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in examples.TOPICS]
    if unknown:
        parser.error(f"unknown topics {unknown}; topics: {', '.join(examples.TOPICS)}")
    figures = args.out / "figures"
    figures.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name} ...", flush=True)
        record = run_topic(name, figures, args.quick)
        print(f"  {examples.verdict_line(name, record)} ({record['seconds']} s)", flush=True)
    report = args.out / "REPORT.md"
    report.write_text(build_report(args.out))
    seconds = time.perf_counter() - start
    print(f"wrote {report} (figures in {figures}) in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
