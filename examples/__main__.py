"""``python -m examples``: runs the topics and writes REPORT.md with their figures and verdicts.

    python -m examples                            # every topic in examples.TOPICS
    python -m examples --only gradient,l1_vs_l2   # some; the others keep their last results
    python -m examples --quick                    # the small versions the tests run
    python -m examples --report                   # REPORT.md from the stored results only

Figures and each topic's result (JSON) go to ``<out>/figures/``; the report, built from
every topic's latest result in TOPICS order and from the claims of examples/claims.py, to
``<out>/REPORT.md`` (``--out`` defaults to the examples/ folder). The report is a function
of the JSONs alone (no clock, no machine read at build time), so tests/test_report.py can
rebuild it and compare it with the committed file.
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
from examples import claims

HEADER = """# The cheat sheet's claims, checked

Every claim of the "Deep Learning Cheat Sheet" (Camron Godbout, 2016), one row each, quoted
from the text (examples/cheatsheet.md), with a verdict: **holds**, **holds with a caveat**,
**does not hold** or **not testable** (with the reason), and its evidence: the topic whose
experiment measured it, below, with its figure and numbers. Where the cheat sheet is loose or
wrong, the notes say so and give the correct statement.

Built by `python -m examples` (one topic: `python -m examples --only <topic>`); each
experiment is a module of `examples/` with fixed seeds. Every number in this file is
generated from the topics' JSON results (examples/figures/), which record the commit and a
hash of the code that produced them; `tests/test_report.py` fails when a result's code has
changed since, or when this file differs from the one the results build
(`python -m examples --report`), and `tests/test_examples.py` asserts each verdict on a
smaller run.
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


def environment() -> str:
    """Where a result was computed: JAX's version, the machine and backend, Python's version."""
    return (
        f"JAX {jax.__version__} on {platform.machine()} ({jax.default_backend()}), "
        f"Python {platform.python_version()}"
    )


def anchor(i: int, title: str) -> str:
    """GitHub's anchor of the heading ``## i. title``."""
    text = f"{i}-{title}".lower().replace(" ", "-")
    return "".join(c for c in text if c.isalnum() or c in "-_")


def load_records(out: pathlib.Path) -> list[dict[str, Any]]:
    """The stored result of every topic in TOPICS that has one, in TOPICS order."""
    records = []
    for name in examples.TOPICS:
        path = out / "figures" / f"{name}.json"
        if path.exists():
            records.append(json.loads(path.read_text()))
    return records


def claims_table(records: list[dict[str, Any]]) -> list[str]:
    """The summary table: one row per claim of examples/claims.py."""
    index = {r["name"]: (i, r) for i, r in enumerate(records, 1)}
    lines = [
        "| # | section | claim (quoted) | verdict | evidence |",
        "|---|---|---|---|---|",
    ]
    counts = dict.fromkeys(claims.CLAIM_VERDICTS, 0)
    for n, claim in enumerate(claims.CLAIMS, 1):
        found = index.get(claim.topic) if claim.topic else None
        verdict, evidence = claims.judge(claim, found[1]["measured"] if found else None)
        counts[verdict] += 1
        link = f" ([{found[1]['title']}](#{anchor(found[0], found[1]['title'])}))" if found else ""
        quote = claim.quote.replace("|", "\\|")
        evidence = evidence.replace("|", "\\|")
        if not quote.startswith("\u201c"):  # the quote's own quotation mark, else ours
            quote = f"\u201c{quote}\u201d"
        lines.append(f"| {n} | {claim.section} | {quote} | **{verdict}** | {evidence}{link} |")
    tally = ", ".join(f"{v}: {c}" for v, c in counts.items())
    return [f"**{len(claims.CLAIMS)} claims** ({tally}).", "", *lines]


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
        "commit": examples.git_commit(),
        "code_hash": examples.code_hash(name),
        "code_files": examples.code_files(name),
        "environment": environment(),
    }
    (figures / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def main_topic(name: str, argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m examples.<name> [--quick] [--out DIR]`` for a topic whose own run
    writes its record: :func:`run_topic`, then the verdict line."""
    parser = argparse.ArgumentParser(prog=f"python -m examples.{name}")
    parser.add_argument("--quick", action="store_true", help="the small, fast version")
    parser.add_argument("--out", type=pathlib.Path, default=examples.FIGURES)
    args = parser.parse_args(argv)
    record = run_topic(name, args.out, args.quick)
    print(f"{name}: {record['verdict']}: {record['summary']}")
    print(f"figure and results: {args.out}/{name}.png, .json ({record['seconds']} s)")
    return record


def build_report(out: pathlib.Path) -> str:
    """REPORT.md from the stored results of every topic in TOPICS (those present)."""
    records = load_records(out)
    lines = [HEADER, "## The claims", ""]
    lines += claims_table(records)
    envs = sorted({r.get("environment", "an unrecorded environment") for r in records})
    total = sum(r["seconds"] for r in records)
    lines += [
        "",
        "## The experiments",
        "",
        f"Run with {'; '.join(envs)}. Seconds: each topic's wall time on a 2-core machine "
        f"shared with other work (total {total:.0f} s).",
        "",
        "| # | topic | verdict | seconds | code hash |",
        "|---|---|---|---|---|",
    ]
    for i, r in enumerate(records, 1):
        mode = " (quick)" if r["mode"] == "quick" else ""
        lines.append(
            f"| {i} | [{r['title']}](#{anchor(i, r['title'])}) | {r['verdict']} | "
            f"{r['seconds']}{mode} | `{r.get('code_hash', '-')}` |"
        )
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
            f"*`python -m examples --only {r['name']}`: {r['seconds']} s{mode}; "
            f"code hash `{r.get('code_hash', '-')}`, commit `{r.get('commit', '-')[:10]}`.*",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", help="comma-separated topics (default: all): " + ", ".join(examples.TOPICS)
    )
    parser.add_argument("--quick", action="store_true", help="the small, fast versions")
    parser.add_argument(
        "--report",
        action="store_true",
        help="only rebuild REPORT.md from the stored results (runs no experiment)",
    )
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
    for i, name in enumerate([] if args.report else names, 1):
        elapsed = time.perf_counter() - start
        print(f"[{i}/{len(names)}] {name} ... ({elapsed:.0f} s so far)", flush=True)
        record = run_topic(name, figures, args.quick)
        print(f"  {examples.verdict_line(name, record)} ({record['seconds']} s)", flush=True)
    report = args.out / "REPORT.md"
    report.write_text(build_report(args.out))
    seconds = time.perf_counter() - start
    print(f"wrote {report} (figures in {figures}) in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
