"""The benchmark runner works end to end (tiny sizes, correctness only: no
timing is asserted; timing is judged from benchmark runs, not tests). The
command runs in a subprocess, as a user runs it: not under this test session's
float64 and strict-promotion settings."""

import json
import subprocess
import sys

from benchmarks import report
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


def test_targets_verdicts():
    rows = [
        {
            "op": "a",
            "size": [2],
            "times": {},
            "ratio_autodiff": 0.9,
            "ratio_peer": 1.3,
            "noise": 0.01,
            "temp_bytes": {"manual": 1, "autodiff": 1},
            "flops": 0,
        },
        {
            "op": "b",
            "size": [2],
            "times": {},
            "ratio_autodiff": 1.03,
            "ratio_peer": None,
            "noise": 0.05,
            "temp_bytes": {"manual": 2, "autodiff": 1},
            "flops": 0,
        },
    ]
    verdicts = {t["target"]: t["verdict"] for t in report.targets(rows, "cpu")}
    assert verdicts["hand/autodiff <= 1.00"].startswith("met within noise")
    assert verdicts["hand/peer <= 1.00"] == "missed: a 2"
    assert verdicts["compiled temp memory hand/autodiff <= 1.00"] == "missed: b 2"
