"""The benchmark's outputs: a terminal table, the targets, a JSON file, a
Markdown table and a PNG chart of the ratios."""

from __future__ import annotations

import json
import pathlib
from collections import defaultdict

# Ops whose hand-written backward the algebra makes clearly cheaper than autodiff.
FUSED_TARGET_OPS = (
    "batch_norm",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "binary_cross_entropy_with_logits",
    "lstm",
    "gru",
    "mlp_loss",
)


def _ms(row: dict, name: str) -> str:
    t = row.get("times", {}).get(name)
    return f"{t['median_s'] * 1e3:.3f}" if t else "-"


def _ratio(row: dict, name: str, interval: bool = False) -> str:
    value = row.get(f"ratio_{name}")
    if value is None:
        return "-"
    low_high = row.get(f"ratio_{name}_interval")
    if interval and low_high:
        return f"{value:.2f} ({low_high[0]:.2f}-{low_high[1]:.2f})"
    return f"{value:.2f}"


def table_rows(rows: list[dict], intervals: bool = False) -> tuple[list[str], list[list[str]]]:
    """The table's header and cells; ``intervals`` adds each ratio's 95% interval."""
    cudnn = any(row.get("ratio_gpu_peer") is not None for row in rows)
    header = [
        "op",
        "size",
        "hand ms",
        "autodiff ms",
        "peer ms",
        "fwd ms",
        "hand/auto",
        "hand/peer",
        "temp MB hand/auto",
        *(["hand/cuDNN"] if cudnn else []),
        "A/A noise",
        "roofline",
        "agree",
    ]
    body = []
    for row in rows:
        temp = row["temp_bytes"]
        share = row.get("roofline_share")
        body.append(
            [
                row["op"],
                "x".join(map(str, row["size"])),
                _ms(row, "manual"),
                _ms(row, "autodiff"),
                _ms(row, "peer"),
                _ms(row, "forward"),
                _ratio(row, "autodiff", intervals),
                _ratio(row, "peer", intervals),
                f"{temp['manual'] / 2**20:.1f}/{temp['autodiff'] / 2**20:.1f}",
                *([_ratio(row, "gpu_peer", intervals)] if cudnn else []),
                f"{100 * row['noise']:.0f}%" if "noise" in row else "-",
                f"{100 * share:.0f}%" if share is not None else "-",
                "yes" if row["agree"] else "NO",
            ]
        )
    return header, body


def markdown(rows: list[dict], meta: dict) -> str:
    header, body = table_rows(rows, intervals=True)
    lines = [
        f"Device: {meta['device']['device_kind']} ({meta['device']['platform']}); "
        f"JAX {meta['device']['jax']}, commit {meta['device']['commit']}, "
        f"{meta['device']['date']}, mode `{meta['mode']}`, {meta['dtype']}.",
        "",
    ]
    ceil = meta.get("ceilings")
    if ceil:
        lines += [
            f"Measured ceilings: stream bandwidth {ceil['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s; "
            f"matmul {ceil['matmul_f32_flops_per_s'] / 1e12:.2f} TFLOP/s float32, "
            f"{ceil['matmul_bf16_flops_per_s'] / 1e12:.2f} TFLOP/s bfloat16.",
            "",
        ]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    lines += [
        "",
        "Ratios: the median of the per-repeat ratios of interleaved runs, with its 95% interval.",
        "",
        "Targets:",
        "",
    ]
    lines += [f"- {t['target']}: {t['verdict']} ({t['measured']})" for t in meta["targets"]]
    return "\n".join(lines) + "\n"


def targets(rows: list[dict], platform: str) -> list[dict]:
    """Each of the benchmark's targets, with the measured figure and a verdict."""
    timed = [r for r in rows if "times" in r]
    if not timed:
        return []
    out = []

    def key(r):
        return f"{r['op']} {'x'.join(map(str, r['size']))}"

    def add(target: str, bound: float, values: dict[str, float], intervals=None):
        """Met: every value within the bound. Missed: a value over it whose 95%
        interval lies wholly over it too (for a figure without an interval,
        any value over it). Else met within noise."""
        if not values:
            return
        intervals = intervals or {}

        def shown(k):
            low_high = intervals.get(k)
            return f"{k} {values[k]:.2f}" + (
                f" ({low_high[0]:.2f}-{low_high[1]:.2f})" if low_high else ""
            )

        name = max(values, key=values.get)
        over = sorted(k for k, v in values.items() if v > bound)
        missed = [k for k in over if intervals.get(k, (values[k],))[0] > bound]
        noisy = [k for k in over if k not in missed]
        verdict = "met"
        if missed:
            verdict = "missed: " + ", ".join(map(shown, missed))
            if noisy:
                verdict += f"; over it within noise: {len(noisy)} more"
        elif noisy:
            verdict = "met within noise (over the bound, but the 95% interval reaches it: "
            verdict += ", ".join(map(shown, noisy)) + ")"
        out.append(
            {
                "target": target,
                "verdict": verdict,
                "measured": f"worst {shown(name)}",
                "values": values,
            }
        )

    def ratios(name: str, ops=None):
        chosen = [r for r in timed if r.get(f"ratio_{name}") is not None]
        chosen = [r for r in chosen if ops is None or r["op"] in ops]
        values = {key(r): r[f"ratio_{name}"] for r in chosen}
        intervals = {
            key(r): r[f"ratio_{name}_interval"] for r in chosen if f"ratio_{name}_interval" in r
        }
        return values, intervals

    add("hand/autodiff <= 1.00", 1.00, *ratios("autodiff"))
    add(
        "hand/autodiff <= 0.60 where the algebra fuses", 0.60, *ratios("autodiff", FUSED_TARGET_OPS)
    )
    add("hand/peer <= 1.00", 1.00, *ratios("peer"))
    temp = {
        key(r): r["temp_bytes"]["manual"] / max(r["temp_bytes"]["autodiff"], 1)
        for r in timed
        if r["temp_bytes"]["manual"] > 0 or r["temp_bytes"]["autodiff"] > 0
    }
    add("compiled temp memory hand/autodiff <= 1.00", 1.00, temp)
    add("LSTM hand-written within 1.5x of cuDNN (time ratio <= 1.5)", 1.5, *ratios("gpu_peer"))
    if platform == "gpu":
        large = {
            key(r): r["roofline_share"]
            for r in timed
            if r["flops"] == 0 and r.get("roofline_share") and _elements(r) >= 2**26
        }
        if large:
            name = min(large, key=large.get)
            ok = all(v >= 0.8 for v in large.values())
            out.append(
                {
                    "target": "memory-bound ops >= 80% of stream bandwidth at >= 2^26 elements",
                    "verdict": "met" if ok else "missed",
                    "measured": f"lowest {name} {100 * large[name]:.0f}%",
                    "values": large,
                }
            )
    return out


def _elements(row: dict) -> int:
    n = 1
    for d in row["size"]:
        n *= d
    return n


def write_json(path: pathlib.Path, meta: dict, rows: list[dict]) -> None:
    path.write_text(json.dumps({**meta, "rows": rows}, indent=1, default=str) + "\n")


def chart(path: pathlib.Path, rows: list[dict], title: str) -> None:
    """Bars of hand/autodiff and hand/peer per op at its largest size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    largest: dict[str, dict] = {}
    for row in rows:
        if "times" in row and (
            row["op"] not in largest or _elements(row) > _elements(largest[row["op"]])
        ):
            largest[row["op"]] = row
    ops = list(largest)
    ratios = defaultdict(list)
    for op in ops:
        ratios["hand / autodiff"].append(largest[op]["ratio_autodiff"])
        ratios["hand / peer"].append(largest[op]["ratio_peer"] or float("nan"))
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(ops) + 1.5))
    height = 0.4
    for i, (label, values) in enumerate(ratios.items()):
        positions = [j + (i - 0.5) * height for j in range(len(ops))]
        ax.barh(positions, values, height=height, label=label)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.axvline(0.6, color="gray", linewidth=1, linestyle="--")
    ax.set_yticks(range(len(ops)))
    ax.set_yticklabels([f"{op} {'x'.join(map(str, largest[op]['size']))}" for op in ops])
    ax.invert_yaxis()
    ax.set_xlabel("time ratio (< 1: hand-written backward is faster)")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def update_readme(readme: pathlib.Path, platform: str, stem: str, table_md: str) -> None:
    """Replace the block between ``<!-- results:<platform> -->`` and
    ``<!-- /results:<platform> -->`` with this run's table and chart."""
    start, end = f"<!-- results:{platform} -->", f"<!-- /results:{platform} -->"
    text = readme.read_text()
    if start not in text:
        raise SystemExit(f"{readme} has no {start} marker")
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1] if end in rest else rest
    chart_line = f"![ratios](benchmarks/results/{stem}.png)\n\n"
    readme.write_text(f"{before}{start}\n{table_md}\n{chart_line}{end}{after}")
