"""The benchmark runner works end to end (tiny sizes, correctness only: no
timing is asserted; timing is judged from benchmark runs, not tests). The
command runs in a subprocess, as a user runs it: not under this test session's
float64 and strict-promotion settings."""

import json
import subprocess
import sys

from benchmarks import report, timing
from dlref import OPS


def run_benchmark(*args):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_smoke_run_checks_every_op_and_writes_results(tmp_path):
    run_benchmark("--smoke", "--out", str(tmp_path))
    (path,) = tmp_path.glob("*-smoke.json")
    data = json.loads(path.read_text())
    assert [row["op"] for row in data["rows"]] == list(OPS)
    assert all(row["agree"] for row in data["rows"])
    assert data["device"]["jax"] and data["device"]["commit"]
    assert (tmp_path / path.name.replace(".json", ".md")).read_text().startswith("Device:")


def test_timed_run_of_two_ops_writes_table_json_and_chart(tmp_path):
    sizes = "8x16,4x8x8"
    run_benchmark(
        "--ops", "softmax,dense", "--sizes", sizes, "--repeats", "3", "--out", str(tmp_path)
    )
    (path,) = tmp_path.glob("*-quick.json")
    rows = json.loads(path.read_text())["rows"]
    assert [(r["op"], r["size"]) for r in rows] == [("softmax", [8, 16]), ("dense", [4, 8, 8])]
    for row in rows:
        assert row["times"]["manual"]["median_s"] > 0 and row["ratio_autodiff"] > 0
    assert path.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _row(op, ratio_autodiff, ratio_peer, temp_bytes, *, autodiff_interval, peer_interval=None):
    row = {
        "op": op,
        "size": [2],
        "times": {},
        "ratio_autodiff": ratio_autodiff,
        "ratio_autodiff_interval": autodiff_interval,
        "ratio_peer": ratio_peer,
        "temp_bytes": temp_bytes,
        "flops": 0,
    }
    if peer_interval:
        row["ratio_peer_interval"] = peer_interval
    return row


def test_targets_verdicts():
    rows = [
        _row(
            "a",
            0.9,
            1.3,
            {"manual": 1, "autodiff": 1},
            autodiff_interval=[0.85, 0.95],
            peer_interval=[1.2, 1.4],
        ),
        _row("b", 1.03, None, {"manual": 2, "autodiff": 1}, autodiff_interval=[0.98, 1.08]),
        _row(
            "c",
            1.10,
            1.05,
            {"manual": 1, "autodiff": 1},
            autodiff_interval=[1.01, 1.2],
            peer_interval=[0.97, 1.1],
        ),
    ]
    verdicts = {t["target"]: t["verdict"] for t in report.targets(rows, "cpu")}
    assert verdicts["hand/autodiff <= 1.00"] == (
        "missed: c 2 1.10 (1.01-1.20); over it within noise: 1 more"
    )
    assert (
        verdicts["hand/peer <= 1.00"]
        == "missed: a 2 1.30 (1.20-1.40); over it within noise: 1 more"
    )
    assert verdicts["compiled temp memory hand/autodiff <= 1.00"] == "missed: b 2 2.00"
    only_b = {t["target"]: t["verdict"] for t in report.targets(rows[1:2], "cpu")}
    assert only_b["hand/autodiff <= 1.00"].startswith("met within noise")
    only_a = {t["target"]: t["verdict"] for t in report.targets(rows[:1], "cpu")}
    assert only_a["hand/autodiff <= 1.00"] == "met"


def test_paired_ratio_cancels_drift_and_bounds_the_median():
    # The machine slows down 5x over the run; each repeat's pair shares the slowdown.
    drift = [1 + 4 * r / 14 for r in range(15)]
    hand = [0.8 * d * (1 + 0.01 * (r % 3)) for r, d in enumerate(drift)]
    ratio = timing.paired_ratio(hand, drift)
    assert 0.8 <= ratio["low"] <= ratio["median"] <= ratio["high"] <= 0.82
    # The interval of 15 repeats: the 4th and 12th of the sorted ratios.
    ranked = timing.paired_ratio(list(range(1, 16)), [1.0] * 15)
    assert (ranked["low"], ranked["median"], ranked["high"]) == (4, 8, 12)
    assert timing.paired_ratio([1.0, 3.0, 2.0], [1.0] * 3) == {"median": 2, "low": 1, "high": 3}
