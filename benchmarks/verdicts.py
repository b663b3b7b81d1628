"""The benchmark's targets, judged with three outcomes, and its headline.

Each target is a bound on a figure with a 95% interval. A row *meets* an
at-most target when the interval's upper end is within the bound plus a
``MARGIN`` of 2% of it (a difference that small is no difference worth
claiming), *misses* it when the interval's lower end lies over the bound, and
is *inconclusive* otherwise (an at-least target mirrors this). Compiled memory
is exact, so its margin is 0. Rows whose variants disagree numerically are
left out of every target.
"""

from __future__ import annotations

import math

import numpy as np

MARGIN = 0.02

FUSED_TARGET_OPS = (
    "batch_norm",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "binary_cross_entropy_with_logits",
    "lstm",
    "gru",
    "mlp_loss",
)
"""Ops whose hand-written backward the algebra makes clearly cheaper than autodiff."""

BANDWIDTH_ELEMENTS = 2**26
"""Memory-bound rows this large (or the largest of an op) are held to the copy bandwidth."""


def label(row: dict) -> str:
    return f"{row['op']} {'x'.join(map(str, row['size']))}"


def outcome(low: float, high: float, bound: float, *, at_most: bool, margin: float) -> str:
    if at_most:
        if high <= bound * (1 + margin):
            return "met"
        return "missed" if low > bound else "inconclusive"
    if low >= bound * (1 - margin):
        return "met"
    return "missed" if high < bound else "inconclusive"


def _judge(name: str, bound: float, figures: dict, *, at_most=True, margin=MARGIN) -> dict:
    """``figures``: row label -> (value, low, high)."""
    outcomes: dict[str, list[str]] = {"met": [], "missed": [], "inconclusive": []}
    for key, (_, low, high) in sorted(figures.items()):
        outcomes[outcome(low, high, bound, at_most=at_most, margin=margin)].append(key)
    return {
        "target": name,
        "bound": bound,
        "at_most": at_most,
        "margin": margin,
        "counts": {k: len(v) for k, v in outcomes.items()},
        "rows": outcomes,
        "figures": {k: list(v) for k, v in figures.items()},
    }


def _ratio_figures(rows: list[dict], variant: str, ops=None) -> dict:
    out = {}
    for row in rows:
        ratio = row.get("ratios", {}).get(variant)
        if ratio and (ops is None or row["op"] in ops):
            out[label(row)] = (ratio["median"], ratio["low"], ratio["high"])
    return out


def _elements(row: dict) -> int:
    return math.prod(row["size"])


def largest(rows: list[dict]) -> list[dict]:
    """Each op's row of the largest size (timed rows only)."""
    best: dict[str, dict] = {}
    for row in rows:
        if "times" in row and (
            row["op"] not in best or _elements(row) > _elements(best[row["op"]])
        ):
            best[row["op"]] = row
    return list(best.values())


def targets(rows: list[dict], platform: str) -> list[dict]:
    """Every target with its counts of met, missed and inconclusive rows."""
    timed = [r for r in rows if "times" in r and r.get("agree")]
    if not timed:
        return []
    out = [
        _judge("hand/autodiff <= 1.00", 1.0, _ratio_figures(timed, "autodiff")),
        _judge(
            "hand/autodiff <= 0.60 where the algebra fuses",
            0.6,
            _ratio_figures(timed, "autodiff", FUSED_TARGET_OPS),
        ),
        _judge("hand/peer <= 1.00", 1.0, _ratio_figures(timed, "peer")),
    ]
    memory = {}
    for r in timed:
        temp = r.get("temp_bytes", {})
        if "autodiff" in temp and (temp["hand"] > 0 or temp["autodiff"] > 0):
            v = temp["hand"] / max(temp["autodiff"], 1)
            memory[label(r)] = (v, v, v)
    out.append(_judge("compiled temp memory hand/autodiff <= 1.00", 1.0, memory, margin=0.0))
    cudnn = _ratio_figures(timed, "cudnn")
    if cudnn:
        out.append(_judge("LSTM hand-written within 1.5x of cuDNN (time ratio <= 1.5)", 1.5, cudnn))
    if platform == "gpu":
        out.append(bandwidth_target(timed))
    return [t for t in out if t["figures"]]


def bandwidth_target(rows: list[dict]) -> dict:
    """Memory-bound ops (no matrix products) at their largest size, if at least
    2^26 elements: the hand-written program's share of the copy bandwidth, as a
    fraction of the op's own ceiling (1 for one pass; less for an op that must
    read its data more than once), at least 0.80."""
    figures = {}
    for row in largest([r for r in rows if r["kind"] == "op"]):
        if row["flops"] == 0 and row.get("roofline_share") and _elements(row) >= BANDWIDTH_ELEMENTS:
            ceiling = row.get("own_ceiling", 1.0)
            low, high = row["roofline_share_interval"]
            figures[label(row)] = (row["roofline_share"] / ceiling, low / ceiling, high / ceiling)
    return _judge(
        "memory-bound ops >= 80% of their bandwidth ceiling at >= 2^26 elements",
        0.8,
        figures,
        at_most=False,
    )


def headline(rows: list[dict], seed: int, resamples: int = 2000) -> dict | None:
    """The geometric mean of hand/autodiff over every op at its largest size,
    with a 95% bootstrap interval (each op's per-round ratios resampled)."""
    chosen = [
        r
        for r in largest([r for r in rows if r["kind"] == "op" and r.get("agree")])
        if "autodiff" in r.get("times", {})
    ]
    if not chosen:
        return None
    logs = [
        np.log(
            np.asarray(r["times"]["hand"]["samples_s"])
            / np.asarray(r["times"]["autodiff"]["samples_s"])
        )
        for r in chosen
    ]
    value = float(np.exp(np.mean([np.median(x) for x in logs])))
    rng = np.random.default_rng(seed)
    boots = np.mean(
        [np.median(x[rng.integers(0, len(x), (resamples, len(x)))], axis=1) for x in logs], axis=0
    )
    low, high = np.exp(np.percentile(boots, [2.5, 97.5]))
    return {"geomean": value, "low": float(low), "high": float(high), "ops": len(chosen)}
