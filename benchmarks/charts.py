"""PNG charts: the ratios per op at its largest size, and for a sweep the ratio
against size (and, on a GPU, the achieved bandwidth against the copy bandwidth)."""

from __future__ import annotations

import math
import pathlib

from benchmarks.verdicts import largest

SERIES = {"autodiff": "hand / autodiff", "peer": "hand / peer", "cudnn": "hand / cuDNN"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _size(row: dict) -> str:
    return "x".join(map(str, row["size"]))


def ratios(path: pathlib.Path, rows: list[dict], title: str) -> bool:
    """Bars of each ratio per op at its largest size, with 95% intervals."""
    chosen = largest(rows)
    if not chosen:
        return False
    plt = _pyplot()
    series = [s for s in SERIES if any(s in r.get("ratios", {}) for r in chosen)]
    fig, ax = plt.subplots(figsize=(8, 0.38 * len(chosen) + 1.6))
    height = 0.8 / len(series)
    for i, name in enumerate(series):
        values, errors = [], [[], []]
        for r in chosen:
            ratio = r.get("ratios", {}).get(name)
            values.append(ratio["median"] if ratio else math.nan)
            errors[0].append(ratio["median"] - ratio["low"] if ratio else 0)
            errors[1].append(ratio["high"] - ratio["median"] if ratio else 0)
        positions = [j + (i - (len(series) - 1) / 2) * height for j in range(len(chosen))]
        ax.barh(positions, values, height=height, xerr=errors, label=SERIES[name], capsize=2)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.axvline(0.6, color="gray", linewidth=1, linestyle="--")
    ax.set_yticks(range(len(chosen)))
    ax.set_yticklabels([f"{r['op']} {_size(r)}" for r in chosen], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("time ratio, 95% interval (< 1: the hand-written backward is faster)")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


FAMILIES = {2: "elementwise, losses, norms", 3: "dense and cells", 4: "sequences", 5: "MLP"}


def sweep(path: pathlib.Path, rows: list[dict], title: str, bandwidth: float | None) -> bool:
    """hand/autodiff against bytes moved per call, one panel per family; on a
    GPU (``bandwidth`` given) a second panel per family with the achieved GB/s
    against the copy bandwidth."""
    timed = [r for r in rows if "autodiff" in r.get("ratios", {}) and r.get("bytes")]
    if not timed:
        return False
    plt = _pyplot()
    from matplotlib.ticker import NullFormatter

    ranks = sorted({len(r["size"]) for r in timed})
    columns = 2 if bandwidth else 1
    fig, axes = plt.subplots(
        len(ranks), columns, figsize=(6.5 * columns, 3.2 * len(ranks) + 0.6), squeeze=False
    )
    for i, rank in enumerate(ranks):
        ax = axes[i][0]
        family = [r for r in timed if len(r["size"]) == rank]
        for op in dict.fromkeys(r["op"] for r in family):
            points = sorted((r["bytes"], r["ratios"]["autodiff"]) for r in family if r["op"] == op)
            ax.errorbar(
                [p[0] / 2**20 for p in points],
                [p[1]["median"] for p in points],
                yerr=[
                    [p[1]["median"] - p[1]["low"] for p in points],
                    [p[1]["high"] - p[1]["median"] for p in points],
                ],
                marker="o",
                markersize=3,
                capsize=2,
                label=op,
            )
        ax.axhline(1.0, color="black", linewidth=1)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("MB moved per call")
        ax.set_ylabel("hand / autodiff (95% interval)")
        ax.set_title(FAMILIES.get(rank, f"rank {rank}"), fontsize=9)
        ax.legend(fontsize=6, ncol=2)
        if bandwidth:
            _bandwidth_panel(axes[i][1], family, bandwidth)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _bandwidth_panel(ax, family: list[dict], bandwidth: float) -> None:
    for op in dict.fromkeys(r["op"] for r in family):
        points = sorted(
            (r["bytes"], r["achieved_bytes_per_s"])
            for r in family
            if r["op"] == op and r.get("achieved_bytes_per_s")
        )
        if points:
            ax.plot([p[0] / 2**20 for p in points], [p[1] / 1e9 for p in points], "o-", label=op)
    ax.axhline(bandwidth / 1e9, color="black", linewidth=1, linestyle="--", label="copy")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_minor_formatter(NullFormatter())
        axis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("MB moved per call")
    ax.set_ylabel("achieved GB/s (hand-written)")
    ax.set_title("achieved bandwidth against the measured copy", fontsize=9)
    ax.legend(fontsize=6)
