"""The benchmark's tables: a terminal table that fits 80 columns, and the full
Markdown report (headline, environment, table, targets, notes)."""

from __future__ import annotations

import math

from rich import box
from rich.table import Table

from benchmarks.plan import group_labels
from benchmarks.verdicts import MARGIN, label

OTHER = {"cudnn": "cuDNN", "autodiff_abs": "autodiff(abs)"}


def _ms(row: dict, name: str) -> str:
    if name in row.get("errors", {}):
        return "err"
    t = row.get("times", {}).get(name)
    return f"{t['median_s'] * 1e3:.3f}" if t else "-"


def _ratio(row: dict, name: str, interval: bool = False) -> str:
    if name in row.get("errors", {}):
        return "err"
    r = row.get("ratios", {}).get(name)
    if r is None:
        return "-"
    return (
        f"{r['median']:.2f} ({r['low']:.2f}-{r['high']:.2f})" if interval else f"{r['median']:.2f}"
    )


def _agree(row: dict) -> str:
    if "error" in row:
        return "err"
    return "yes" if row.get("agree") else "NO"


def _pct(x) -> str:
    return f"{100 * x:.0f}%" if x is not None else "-"


def _mb(row: dict, key: str, names: tuple[str, ...]) -> str:
    values = row.get(key, {})
    return "/".join(f"{values[n] / 2**20:.1f}" if n in values else "-" for n in names)


def _present(rows: list[dict], name: str) -> bool:
    return any(name in r.get("ratios", {}) or name in r.get("errors", {}) for r in rows)


def terminal_table(rows: list[dict], meta: dict) -> Table:
    """One line per row with the key figures (the Markdown file has them all)."""
    if meta["mode"] == "smoke":
        return _smoke_table(rows)
    others = [n for n in OTHER if _present(rows, n)]
    table = Table(
        title=f"value_and_grad time ratios ({meta['dtype']}, matmul {meta['matmul_precision']})",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
    )
    table.add_column("op size", overflow="fold", max_width=26)
    for name in ("hand ms", "h/auto", "h/peer", *(f"h/{OTHER[n]}" for n in others)):
        table.add_column(name, justify="right", overflow="fold")
    table.add_column("A/A", justify="right")
    table.add_column("ok", justify="center")
    for row in rows:
        table.add_row(
            label(row),
            _ms(row, "hand"),
            _ratio(row, "autodiff"),
            _ratio(row, "peer"),
            *(_ratio(row, n) for n in others),
            _pct(row.get("noise")),
            _agree(row),
        )
    return table


def _smoke_table(rows: list[dict]) -> Table:
    table = Table(
        title="smoke: every variant's value and gradient against the hand-written one",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
    )
    table.add_column("op size", overflow="fold", max_width=30)
    table.add_column("checked against hand", overflow="fold")
    table.add_column("max rel diff", justify="right")
    table.add_column("ok", justify="center")
    for row in rows:
        diffs = row.get("agreement_max_rel", {})
        checked = ", ".join(diffs) + "".join(f", {n}: err" for n in row.get("errors", {}))
        table.add_row(
            label(row),
            checked.strip(", ") or "-",
            f"{max(diffs.values()):.1e}" if diffs else "-",
            _agree(row),
        )
    return table


def headline_lines(meta: dict) -> list[str]:
    lines = []
    h = meta.get("headline")
    if h:
        lines.append(
            f"**Headline**: hand-written / autodiff time, geometric mean over {h['ops']} ops at "
            f"their largest size: **{h['geomean']:.2f}** "
            f"(95% interval {h['low']:.2f}-{h['high']:.2f})."
        )
    lines += [f"- {t['target']}: {_counts(t)}" for t in meta.get("targets", [])]
    return lines


def _counts(target: dict) -> str:
    c = target["counts"]
    return f"{c['met']} met, {c['missed']} missed, {c['inconclusive']} inconclusive"


def environment_line(meta: dict) -> str:
    d = meta["device"]
    code = f"code of commit {d['code_commit']}"
    if d.get("dirty_files"):
        code += f" plus uncommitted changes to {', '.join(d['dirty_files'])}"
    gpu = ", ".join(
        f"{k} {d[k]}" for k in ("nvidia_smi", "cuda_driver", "cuda_runtime", "cudnn") if k in d
    )
    load = meta.get("load_average", {})
    parts = [
        f"Device: {d['device_kind']} ({d['platform']}{', ' + gpu if gpu else ''})",
        f"JAX {d['jax']}, jaxlib {d['jaxlib']}, Python {d['python']}",
        code,
        d["date"],
        f"mode `{meta['mode']}`, {meta['dtype']}, matmul precision `{meta['matmul_precision']}`",
        f"order seed {meta['seed']}",
        f"XLA_FLAGS `{d['xla_flags'] or '(none)'}`",
    ]
    if load.get("before"):
        parts.append(f"load average before {load['before']}, after {load.get('after')}")
    return "; ".join(parts) + "."


def markdown(rows: list[dict], meta: dict, table_link: str | None = None) -> str:
    """The full report: headline first, then environment, table, targets, notes;
    with ``table_link``, a link to the full report takes the table's place and
    the notes are left out (a sweep's README block)."""
    lines = headline_lines(meta)
    if meta.get("stale"):
        lines += ["", f"**Stale**: {meta['stale']}."]
    lines += ["", environment_line(meta), ""]
    ceil = meta.get("ceilings")
    if ceil:
        m = ceil["matmul_flops_per_s"]
        lines += [
            f"Measured ceilings: copy bandwidth {ceil['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s; "
            f"matmul {m['float32'] / 1e12:.2f} TFLOP/s float32 (precision "
            f"`{meta['matmul_precision']}`), {m['bfloat16'] / 1e12:.2f} TFLOP/s bfloat16.",
            "",
        ]
    lines += [_run_line(meta), ""]
    if table_link:
        lines.append(f"Every row, target and note: [{table_link}]({table_link}).")
    else:
        lines += _table(rows, meta)
        lines += ["", *_notes(rows, meta)]
    return "\n".join(lines).rstrip() + "\n"


def _run_line(meta: dict) -> str:
    run = meta.get("run", {})
    text = (
        f"Run: {run.get('rows_done', 0)} of {run.get('rows_planned', 0)} planned rows in "
        f"{run.get('elapsed_s', 0):.0f} s"
    )
    if run.get("budget_s"):
        text += f" (budget {run['budget_s']:.0f} s, estimate {run.get('estimate_s', 0):.0f} s)"
    text += f", {meta.get('repeats', 0)} interleaved rounds per row in a shuffled order"
    if meta.get("slow") and meta["slow"][1] < meta.get("repeats", 0):
        text += f" ({meta['slow'][1]} where a call takes {meta['slow'][0] * 1e3:.0f} ms or more)"
    if run.get("skipped"):
        text += f"; not run (time budget): {group_labels(run['skipped'])}"
    if run.get("dropped"):
        text += f"; left out by the plan (time budget): {group_labels(run['dropped'])}"
    return text + "."


def _table(rows: list[dict], meta: dict) -> list[str]:
    if meta["mode"] == "smoke":
        header = ["op", "size", "checked against hand (max rel diff)", "agree"]
        body = [
            [
                r["op"],
                "x".join(map(str, r["size"])),
                ", ".join(f"{k} {v:.1e}" for k, v in r.get("agreement_max_rel", {}).items()) or "-",
                _agree(r),
            ]
            for r in rows
        ]
    else:
        header, body = _full_table(rows, meta)
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(cells) + " |" for cells in body]


def _full_table(rows: list[dict], meta: dict):
    others = [n for n in OTHER if _present(rows, n)]
    gpu = meta["device"]["platform"] == "gpu"
    header = [
        "op",
        "size",
        "hand ms",
        "autodiff ms",
        "peer ms",
        "hand/autodiff",
        "hand/peer",
        *(f"hand/{OTHER[n]}" for n in others),
        "A/A width",
        "grad/fwd",
        "compile s hand/auto/peer",
        "peak MB hand/auto/peer",
        "temp MB hand/auto",
        *(["roofline", "GB/s"] if gpu else []),
        "agree",
    ]
    body = []
    for r in rows:
        compile_s = r.get("compile_s", {})
        gbs = r.get("achieved_bytes_per_s")
        body.append(
            [
                r["op"],
                "x".join(map(str, r["size"])),
                _ms(r, "hand"),
                _ms(r, "autodiff"),
                _ms(r, "peer"),
                _ratio(r, "autodiff", True),
                _ratio(r, "peer", True),
                *(_ratio(r, n, True) for n in others),
                _pct(r.get("noise")),
                f"{r['grad_over_fwd']:.1f}" if "grad_over_fwd" in r else "-",
                "/".join(
                    f"{compile_s[n]:.2f}" if n in compile_s else "-"
                    for n in ("hand", "autodiff", "peer")
                ),
                _mb(r, "peak_bytes", ("hand", "autodiff", "peer")),
                _mb(r, "temp_bytes", ("hand", "autodiff")),
                *(
                    [_pct(r.get("roofline_share")), f"{gbs / 1e9:.0f}" if gbs else "-"]
                    if gpu
                    else []
                ),
                _agree(r),
            ]
        )
    return header, body


def _notes(rows: list[dict], meta: dict) -> list[str]:
    lines = []
    if meta["mode"] != "smoke":
        lines += [
            "Times are medians per call; each ratio is the median of the per-round ratios "
            "with its 95% interval. A/A width: the interval width of the hand-written program "
            "against a second compilation of itself (the row's noise). grad/fwd: "
            "value_and_grad time over the forward's. Peak MB: arguments, outputs and "
            "temporaries of the compiled program.",
            "",
            f"Targets (met: the interval's upper end within the bound plus {MARGIN:.0%}; "
            "missed: its lower end over the bound; else inconclusive; rows whose variants "
            "disagree are left out):",
            "",
        ]
        for t in meta.get("targets", []):
            r = t["rows"]
            text = f"- {t['target']}: {_counts(t)}"
            if r["missed"]:
                text += "; missed: " + ", ".join(_figure(t, k) for k in r["missed"])
            if r["inconclusive"]:
                text += "; inconclusive: " + ", ".join(_figure(t, k) for k in r["inconclusive"])
            lines.append(text)
        lines.append("")
    peers = sorted({(r["op"], r["peer_name"]) for r in rows if r.get("peer_name")})
    if peers:
        lines.append("Peers: " + "; ".join(f"{op}: {name}" for op, name in peers) + ".")
    notes = sorted({(r["op"], r["note"]) for r in rows if r.get("note")})
    lines += [f"Note on {op}: {note}." for op, note in notes]
    for name, probe in meta.get("peers", {}).items():
        if not probe["available"]:
            lines.append(f"{name}: not run ({probe['reason']}).")
    for r in rows:
        for variant, error in r.get("errors", {}).items():
            lines.append(f"Error, {label(r)}, {variant}: `{error}`")
    ceilings = {
        r["op"]: r["own_ceiling"] for r in rows if r.get("extra_bytes") and "own_ceiling" in r
    }
    if ceilings:
        lines.append(
            "Ops that need more than one pass over their data (their bandwidth target is 80% "
            "of their own ceiling, as a share of the copy bandwidth): "
            + ", ".join(f"{op} {_pct(c)}" for op, c in sorted(ceilings.items()))
            + "."
        )
    return lines


def _figure(target: dict, key: str) -> str:
    value, low, high = target["figures"][key]
    if math.isclose(low, high):
        return f"{key} {value:.2f}"
    return f"{key} {value:.2f} ({low:.2f}-{high:.2f})"
