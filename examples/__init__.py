"""The cheat sheet's claims, checked: one experiment per topic, each with a figure and a verdict.

    python -m examples                          # every topic: figures/, then REPORT.md
    python -m examples --only gradient,l1_vs_l2 --quick
    python -m examples.gradient                 # one topic: its figure and verdict line

A topic is a module ``examples/<name>.py`` with ``TITLE``, ``CLAIM`` (the cheat sheet's
words) and ``run(out_dir, quick=False) -> dict``, which writes ``out_dir/<name>.png`` and
returns :func:`result`'s dict: ``verdict`` (one of :data:`VERDICTS`), ``summary`` (one line
with the measured numbers), ``figure`` (the PNG's path), ``notes`` (Markdown: what was
measured, and the correct statement where the cheat sheet is loose or wrong) and
``measured`` (the key numbers, which tests/test_examples.py asserts). ``quick=True`` is a
smaller run of the same measurement, for the tests.

Adding a topic: write the module, add its name to :data:`TOPICS`, add its test.
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import time
from types import ModuleType
from typing import Any

import jax
import matplotlib

__all__ = [
    "FIGURES",
    "TOPICS",
    "VERDICTS",
    "load",
    "main_one",
    "result",
    "save",
    "setup",
    "verdict_line",
]

matplotlib.use("Agg")  # before any topic imports pyplot: no display needed

# The topics in report order; a new topic is one module and one line here.
TOPICS = [
    "gradient",
    "activations",
    "softmax_cross_entropy",
    "l1_vs_l2",
    "learning_rate",
]

VERDICTS = ("holds", "holds with a caveat", "does not hold")

FIGURES = pathlib.Path(__file__).parent / "figures"


def setup() -> None:
    """Float64 for every experiment (the measured differences are near rounding)."""
    jax.config.update("jax_enable_x64", True)


def load(name: str) -> ModuleType:
    """The topic module ``examples.<name>``."""
    if name not in TOPICS:
        raise ValueError(f"unknown topic {name!r}; topics: {', '.join(TOPICS)}")
    return importlib.import_module(f"examples.{name}")


def save(fig: Any, out_dir: pathlib.Path, name: str) -> pathlib.Path:
    """Writes ``fig`` to ``out_dir/<name>.png``, closes it and returns the path."""
    import matplotlib.pyplot as plt

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def result(
    verdict: str, summary: str, figure: pathlib.Path, notes: str, **measured: Any
) -> dict[str, Any]:
    """A topic's result; ``measured`` holds the key numbers the tests assert."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}; got {verdict!r}")
    if "\n" in summary:
        raise ValueError("the summary is one line")
    return {
        "verdict": verdict,
        "summary": summary,
        "figure": pathlib.Path(figure),
        "notes": notes.strip(),
        "measured": measured,
    }


def verdict_line(name: str, res: dict[str, Any]) -> str:
    return f"{name}: {res['verdict']}: {res['summary']}"


def main_one(name: str, run: Any, argv: list[str] | None = None) -> None:
    """``python -m examples.<name> [--quick] [--out DIR]``: runs one topic, prints its verdict."""
    parser = argparse.ArgumentParser(prog=f"python -m examples.{name}")
    parser.add_argument("--quick", action="store_true", help="the small, fast version")
    parser.add_argument("--out", type=pathlib.Path, default=FIGURES, help="folder for the PNG")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    res = run(args.out, quick=args.quick)
    print(verdict_line(name, res))
    print(f"figure: {res['figure']} ({time.perf_counter() - start:.1f} s)")
