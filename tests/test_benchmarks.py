"""The benchmark: its method (shuffled order, paired ratios, three outcomes per
target, headline), its planner and budget, its outputs, and a whole run on a
simulated GPU (cuDNN's LSTM played by ``jax.experimental.rnn.lstm_ref``, a
peer that raises). No timing is asserted: timing is judged from benchmark
runs, not tests. Whole runs go in a subprocess, as a user runs them: not under
this test session's float64 and strict-promotion settings."""

import json
import os
import random
import subprocess
import sys
import textwrap
import time

import pytest
from rich.console import Console

from benchmarks import cli, cost, output, plan, report, timing, verdicts

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONPATH"] = REPO
    return env


def run_python(code, *, timeout=300):
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=_env(),
    )
    return done


# --- method -----------------------------------------------------------------------------


def test_paired_ratio_cancels_drift_and_bounds_the_median():
    # The machine slows down 5x over the run; each round's pair shares the slowdown.
    drift = [1 + 4 * r / 14 for r in range(15)]
    hand = [0.8 * d * (1 + 0.01 * (r % 3)) for r, d in enumerate(drift)]
    ratio = timing.paired_ratio(hand, drift)
    assert 0.8 <= ratio["low"] <= ratio["median"] <= ratio["high"] <= 0.82
    # The interval of 15 rounds: the 4th and 12th of the sorted ratios.
    ranked = timing.paired_ratio(list(range(1, 16)), [1.0] * 15)
    assert (ranked["low"], ranked["median"], ranked["high"]) == (4, 8, 12)
    assert timing.paired_ratio([1.0, 3.0, 2.0], [1.0] * 3) == {"median": 2, "low": 1, "high": 3}


def test_interleaved_order_is_shuffled_every_round_and_seeded():
    calls = {name: (lambda: 0) for name in "abcde"}

    def orders(seed):
        return timing.interleaved(calls, repeats=30, min_sample_s=0, rng=random.Random(seed))[
            "orders"
        ]

    first = orders(1)
    assert all(sorted(order) == list("abcde") for order in first)
    # Each name leads in some round (a rotation would too), and the rounds are
    # not rotations of one another (a shuffle).
    assert {order[0] for order in first} == set("abcde")
    rotations = {tuple("abcde"[i:] + "abcde"[:i]) for i in range(5)}
    assert sum(tuple(order) not in rotations for order in first) > 20
    assert orders(1) == first and orders(2) != first


def test_interleaved_stops_at_its_deadline():
    calls = {"a": lambda: time.sleep(0.01), "b": lambda: time.sleep(0.01)}
    start = time.perf_counter()
    result = timing.interleaved(
        calls, repeats=1000, min_sample_s=0, rng=random.Random(0), deadline=start + 0.5
    )
    assert time.perf_counter() - start < 0.8
    assert 1 <= len(result["times"]["a"]["samples_s"]) < 1000


def test_compile_timed_compiles_each_call_separately():
    import jax.numpy as jnp

    def fn(x):
        return jnp.sin(x) * 2

    first, second = (
        timing.compile_timed(fn, (jnp.ones(8),)),
        timing.compile_timed(fn, (jnp.ones(8),)),
    )
    assert first.call is not second.call
    assert first.compile_s > 0 and second.compile_s > 0
    assert first.peak_bytes >= first.argument_bytes > 0


def test_outcome_is_met_missed_or_inconclusive():
    at_most = dict(bound=1.0, at_most=True, margin=0.02)
    assert verdicts.outcome(0.90, 1.01, **at_most) == "met"  # within the 2% margin
    assert verdicts.outcome(1.01, 1.05, **at_most) == "missed"  # all of it over
    assert verdicts.outcome(0.95, 1.05, **at_most) == "inconclusive"
    at_least = dict(bound=0.8, at_most=False, margin=0.02)
    assert verdicts.outcome(0.79, 0.9, **at_least) == "met"
    assert verdicts.outcome(0.5, 0.7, **at_least) == "missed"
    assert verdicts.outcome(0.7, 0.9, **at_least) == "inconclusive"


def _row(op, autodiff, peer=None, temp=(1, 1), agree=True, samples=None):
    row = {
        "op": op,
        "kind": "op",
        "size": [2, 4],
        "flops": 0,
        "agree": agree,
        "times": {"hand": {"samples_s": samples or [1.0] * 9, "median_s": 1e-3}},
        "ratios": {"autodiff": dict(zip(("median", "low", "high"), autodiff, strict=True))},
        "temp_bytes": {"hand": temp[0], "autodiff": temp[1]},
    }
    if peer:
        row["ratios"]["peer"] = dict(zip(("median", "low", "high"), peer, strict=True))
    return row


def test_targets_count_outcomes_and_leave_out_disagreeing_rows():
    rows = [
        _row("a", (0.9, 0.85, 0.95), peer=(1.3, 1.2, 1.4)),
        _row("b", (1.03, 0.98, 1.08), temp=(2, 1)),
        _row("c", (1.10, 1.01, 1.2), peer=(1.0, 0.97, 1.01)),
        _row("d", (5.0, 4.0, 6.0), agree=False),
    ]
    found = {t["target"]: t for t in verdicts.targets(rows, "cpu")}
    auto = found["hand/autodiff <= 1.00"]
    assert auto["counts"] == {"met": 1, "missed": 1, "inconclusive": 1}
    assert auto["rows"]["missed"] == ["c 2x4"] and auto["rows"]["inconclusive"] == ["b 2x4"]
    assert found["hand/peer <= 1.00"]["rows"] == {
        "met": ["c 2x4"],
        "missed": ["a 2x4"],
        "inconclusive": [],
    }
    memory = found["compiled temp memory hand/autodiff <= 1.00"]
    assert memory["rows"]["missed"] == ["b 2x4"] and memory["counts"]["met"] == 2


def test_bandwidth_target_uses_each_ops_own_ceiling():
    big = [8192, 8192]
    one_pass = {**_row("relu", (1, 1, 1)), "size": big, "roofline_share": 0.85}
    one_pass["roofline_share_interval"] = [0.83, 0.87]
    three_pass = {**_row("batch_norm", (1, 1, 1)), "size": big, "roofline_share": 0.45}
    three_pass.update(roofline_share_interval=[0.44, 0.46], own_ceiling=0.5)
    slow = {**_row("tanh", (1, 1, 1)), "size": big, "roofline_share": 0.5}
    slow["roofline_share_interval"] = [0.45, 0.55]
    target = verdicts.bandwidth_target([one_pass, three_pass, slow])
    assert target["rows"]["met"] == ["batch_norm 8192x8192", "relu 8192x8192"]
    assert target["rows"]["missed"] == ["tanh 8192x8192"]


def test_headline_is_the_geometric_mean_at_each_ops_largest_size():
    def timed(op, size, ratio):
        row = _row(op, (ratio, ratio, ratio))
        row["size"] = size
        row["times"] = {"hand": {"samples_s": [ratio] * 9}, "autodiff": {"samples_s": [1.0] * 9}}
        return row

    rows = [timed("a", [2, 2], 9.0), timed("a", [4, 4], 0.5), timed("b", [4, 4], 2.0)]
    head = verdicts.headline(rows, seed=0)
    assert head["ops"] == 2
    assert head["geomean"] == pytest.approx(1.0)
    assert head["low"] == pytest.approx(1.0) and head["high"] == pytest.approx(1.0)


# --- planner and command line ---------------------------------------------------------


def _rates():
    return cost.rates("cpu", "highest", None)


def test_planner_fits_the_budget_by_rounds_then_rows():
    import jax.numpy as jnp

    items = plan.make_items(plan.names_known(), "quick", "cpu", jnp.float32)
    assert items[0].label.startswith("sigmoid 2048x1024")  # largest sizes first
    free = plan.make_plan(items, "quick", _rates(), jnp.float32, budget_s=None)
    assert free.repeats == 15 and len(free.items) == len(items) and not free.dropped
    fewer_rounds = plan.make_plan(
        items, "quick", _rates(), jnp.float32, budget_s=free.estimate_s * 0.9
    )
    assert plan.MIN_REPEATS <= fewer_rounds.repeats < 15
    assert fewer_rounds.estimate_s <= free.estimate_s * 0.9
    tight = plan.make_plan(items, "quick", _rates(), jnp.float32, budget_s=free.estimate_s / 3)
    assert tight.repeats == plan.MIN_REPEATS and tight.dropped
    assert tight.estimate_s <= free.estimate_s / 3
    kept = {item.label for item in tight.items}
    # Rows are left out from the end: the smaller sizes before any op's largest.
    assert all(i.label in kept for i in items[: len(tight.items)])


def test_default_full_run_fits_eight_minutes_on_an_h100():
    import jax.numpy as jnp

    rates = cost.rates("gpu", "highest", None, cores=16)  # a GPU host's cores
    items = plan.make_items(plan.names_known(), "full", "gpu", jnp.float32, cudnn=True)
    full = plan.make_plan(items, "full", rates, jnp.float32, budget_s=None)
    assert full.estimate_s <= 8 * 60, plan.describe(full)


def test_sweep_drops_whole_ops():
    import jax.numpy as jnp

    items = plan.make_items(["relu", "softmax", "lstm"], "sweep", "cpu", jnp.float32)
    assert [i.name for i in items][:2] == ["relu", "relu"]
    free = plan.make_plan(items, "sweep", _rates(), jnp.float32, budget_s=None)
    kept = plan.make_plan(items, "sweep", _rates(), jnp.float32, budget_s=free.estimate_s * 0.6)
    counts = {n: sum(i.name == n for i in kept.items) for n in ("relu", "softmax", "lstm")}
    assert all(c in (0, len(plan.sweep_sizes(plan.size_rank(n), "cpu"))) for n, c in counts.items())


@pytest.mark.parametrize(
    "argv",
    [
        ["--ops", "softmax,nope"],
        ["--sizes", "256by512"],
        ["--budget", "0"],
        ["--repeats", "0"],
        ["--sweep", "--sizes", "8x8"],
        ["--smoke", "--repeats", "3"],
        ["--full", "--smoke"],
    ],
)
def test_cli_refuses_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse(argv)
    assert exc.value.code == 2


def test_cli_checks_sizes_against_each_op_before_running(tmp_path):
    from benchmarks.runner import main

    start = time.perf_counter()
    assert main(["--ops", "dense", "--sizes", "256x512", "--out", str(tmp_path)]) == 2
    assert main(["--ops", "lstm_checkpointed", "--sizes", "6x2x4x4", "--out", str(tmp_path)]) == 2
    assert time.perf_counter() - start < 30 and not list(tmp_path.iterdir())
    args = cli.parse(["--sizes", "64x64"])
    names, _, problems = cli.select(args, "float32")
    assert "softmax" in names and "dense" not in names and not problems


def test_help_explains_every_option():
    text = cli.parser().format_help()
    for option in ("--full", "--sweep", "--smoke", "--ops", "--sizes", "--dtype", "--budget"):
        assert option in text
    for words in ("Default mode (quick)", "benchmarks/results/", "partial/", "--matmul-precision"):
        assert words in text


# --- outputs ----------------------------------------------------------------------------


def _meta(mode="quick", platform="cpu"):
    return {
        "device": {
            "platform": platform,
            "device_kind": "Test Device",
            "jax": "0",
            "jaxlib": "0",
            "python": "3",
            "xla_flags": "",
            "date": "today",
            "commit": "abc",
            "code_commit": "abc",
            "dirty_files": [],
        },
        "mode": mode,
        "dtype": "float32",
        "matmul_precision": "highest",
        "seed": 0,
    }


def test_terminal_table_fits_80_columns():
    long = _row("softmax_cross_entropy_with_integer_labels", (0.93, 0.9, 0.97), peer=(1, 1, 1))
    long["size"] = [1024, 784, 1024, 2, 10]
    long["noise"] = 0.12
    long["times"]["hand"]["median_s"] = 0.0123
    long["errors"] = {"cudnn": "RuntimeError: no cuDNN"}
    with open(os.devnull, "w") as sink:
        console = Console(width=80, record=True, file=sink)
        console.print(report.terminal_table([long, _row("relu", (1, 1, 1))], _meta()))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text and "0.93" in text and "12.300" in text


def test_readme_gets_one_block_per_device_kind(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- results:cpu -->\nold\n<!-- /results:cpu -->\n\n## Layout\n")
    chart = tmp_path / "benchmarks" / "gpu.png"
    output.update_readme(readme, "gpu", "gpu table\n", [chart])
    output.update_readme(readme, "cpu", "new cpu table\n", [])
    text = readme.read_text()
    assert "old" not in text and "new cpu table" in text
    assert text.index("<!-- /results:cpu -->") < text.index("<!-- results:gpu -->")
    assert text.index("<!-- /results:gpu -->") < text.index("## Layout")
    assert "![gpu](benchmarks/gpu.png)" in text
    output.update_readme(readme, "gpu", "gpu again\n", [])
    assert text.count("results:gpu") == readme.read_text().count("results:gpu") == 2
    bare = tmp_path / "BARE.md"
    bare.write_text("# bare\n")
    output.update_readme(bare, "tpu", "tpu table\n", [])
    assert "## Benchmark results\n\n<!-- results:tpu -->\ntpu table" in bare.read_text()


def test_only_a_default_run_that_ends_by_itself_replaces_the_committed_results(tmp_path):
    committed = output.Destination(tmp_path, "cpu-x-quick", committed=True)
    committed.write({"rows": []}, "table\n")
    assert (tmp_path / "partial" / "cpu-x-quick.json").exists()
    assert committed.finish(complete=False) == [
        tmp_path / "partial" / "cpu-x-quick.json",
        tmp_path / "partial" / "cpu-x-quick.md",
    ]
    assert not (tmp_path / "cpu-x-quick.json").exists()
    committed.finish(complete=True)
    assert json.loads((tmp_path / "cpu-x-quick.json").read_text()) == {"rows": []}
    args = cli.parse(["--ops", "relu", "--budget", "60"])
    assert output.partial_tag(args.changed()) == "ops-relu-budget-60"
    long = cli.parse(["--ops", ",".join(plan.names_known()[:9])]).changed()
    assert len(output.partial_tag(long)) < 40


def test_staleness_is_reported():
    from benchmarks import device

    now = device.code_state()
    meta = {"device": {"code_commit": now["code_commit"], "dirty_files": []}}
    assert device.staleness(meta) is None
    meta["device"]["code_commit"] = "0000000"
    assert "changed since" in device.staleness(meta)
    meta["device"]["dirty_files"] = ["dlref/losses.py"]
    assert "uncommitted changes to dlref/losses.py" in device.staleness(meta)


# --- whole runs -------------------------------------------------------------------------

SIMULATED_GPU = """
import dataclasses, json, sys
from benchmarks import device, runner
from dlref import OPS, _peers

real = device.describe()
device.describe = lambda: {**real, "platform": "gpu", "device_kind": "NVIDIA H100 (simulated)"}
device.ceilings = lambda **kw: {
    "bandwidth_bytes_per_s": 5e9,
    "matmul_flops_per_s": {"float32": 1e11, "bfloat16": 5e10},
    "stream_elements": 0, "matmul_n": 0, "probe_compile_s": 0.04,
}
object.__setattr__(OPS["lstm"], "gpu_peer", _peers.cudnn_lstm_reference)

def raising(*args):
    raise RuntimeError("this peer always fails")

object.__setattr__(OPS["relu"], "peer", raising)
out, readme = sys.argv[1], sys.argv[2]
common = ["--sizes", "8x16,4x3x8x16", "--repeats", "3", "--out", out, "--readme", readme]
codes = [
    runner.main(["--ops", "softmax,relu,lstm", *common]),
    runner.main(["--ops", "lstm", "--dtype", "bfloat16", *common]),
]
print("EXIT", json.dumps(codes))
"""


@pytest.fixture(scope="module")
def simulated_gpu_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu")
    readme = tmp / "README.md"
    readme.write_text("# README\n\n<!-- results:cpu -->\ncpu\n<!-- /results:cpu -->\n")
    code = SIMULATED_GPU.replace("sys.argv[1], sys.argv[2]", f"{str(tmp)!r}, {str(readme)!r}")
    done = run_python(code)
    assert "EXIT" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    runs = {}
    for path in (tmp / "partial").glob("*.json"):
        data = json.loads(path.read_text())
        runs[data["dtype"]] = (data, path)
    return done, runs, readme


def test_simulated_gpu_run_writes_rows_json_markdown_readme_and_chart(simulated_gpu_run):
    done, runs, readme = simulated_gpu_run
    assert json.loads(done.stdout.split("EXIT", 1)[1]) == [0, 0]
    data, path = runs["float32"]
    assert data["device"]["platform"] == "gpu" and data["run"]["complete"]
    assert [r["op"] for r in data["rows"]] == ["relu", "softmax", "lstm"]  # registry order
    lstm = next(r for r in data["rows"] if r["op"] == "lstm")
    assert lstm["agree"] and lstm["agreement_max_rel"]["cudnn"] < 1e-4
    assert {"autodiff", "peer", "cudnn", "hand_again"} <= set(lstm["ratios"])
    assert lstm["roofline_share"] > 0 and lstm["noise"] >= 0 and lstm["grad_over_fwd"] > 0
    assert data["peers"]["cuDNN (jax.experimental.rnn)"]["available"]
    assert data["headline"]["ops"] == 3 and data["targets"]
    md = path.with_suffix(".md").read_text()
    assert md.startswith("**Headline**") and "hand/cuDNN" in md and "roofline" in md
    assert path.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = readme.read_text()
    assert "<!-- results:cpu -->\ncpu\n" in text and text.count("<!-- results:gpu -->") == 1
    assert "![" in text.split("<!-- results:gpu -->")[1]


def test_simulated_gpu_run_marks_a_failing_peer_and_goes_on(simulated_gpu_run):
    _, runs, _ = simulated_gpu_run
    data, path = runs["float32"]
    relu = next(r for r in data["rows"] if r["op"] == "relu")
    assert "this peer always fails" in relu["errors"]["peer"]
    assert relu["agree"] and "autodiff" in relu["ratios"] and "peer" not in relu["ratios"]
    md = path.with_suffix(".md").read_text()
    assert "Error, relu 8x16, peer: `RuntimeError: this peer always fails" in md


def test_simulated_gpu_run_in_bfloat16_skips_cudnn_with_its_reason(simulated_gpu_run):
    _, runs, _ = simulated_gpu_run
    data, path = runs["bfloat16"]
    assert data["run"]["complete"] and all(r["agree"] for r in data["rows"])
    lstm = next(r for r in data["rows"] if r["op"] == "lstm")
    assert "cudnn" not in lstm.get("ratios", {})
    assert "accepts only float32 and float64" in lstm["skipped"]["cudnn"]
    assert "accepts only float32 and float64" in path.with_suffix(".md").read_text()


def test_runner_lowers_rounds_then_skips_rows_to_stay_inside_the_budget(monkeypatch):
    from benchmarks import runner

    budget, finish = 3.0, 0.5
    args = cli.parse(["--ops", "relu", "--budget", str(budget)])
    with open(os.devnull, "w") as sink:
        run = runner.Run(args, Console(file=sink), time.perf_counter())
        items = [plan.Item("relu", "op", (i, 1), ("hand",), 0, 0) for i in range(100)]
        # Each row takes 1.5 times its estimate: the runner must correct for it.
        monkeypatch.setattr(cost, "row_seconds", lambda *a, repeats, **k: 0.002 * repeats)

        def fake_row(item, meta, repeats, deadline, workers, slow):
            time.sleep(0.003 * repeats)
            return {"op": item.name, "size": list(item.size), "repeats": repeats}

        monkeypatch.setattr(run, "_row", fake_row)
        the_plan = plan.Plan("quick", items, 15, None, 0.0, budget, 0.0, {}, [], {})
        meta, rows = {"run": {"skipped": []}}, []
        run._loop(the_plan, meta, {"finish": finish, "parallel_compiles": 1}, rows, lambda: None)
    assert time.perf_counter() - run.started <= budget - finish + 0.1
    assert rows[0]["repeats"] > rows[-1]["repeats"] == plan.MIN_REPEATS
    assert meta["run"]["skipped"] and len(rows) + len(meta["run"]["skipped"]) == 100


def test_interrupted_run_keeps_every_finished_row_and_the_committed_results(tmp_path, monkeypatch):
    from benchmarks import runner

    (tmp_path / "cpu-test-device-quick.json").write_text("committed\n")
    args = cli.parse(["--out", str(tmp_path), "--no-chart"])
    items = [plan.Item("relu", "op", (i, 1), ("hand",), 0, 0) for i in range(1, 4)]

    def fake_row(item, meta, repeats, deadline, workers, slow):
        if item.size[0] == 3:
            raise runner.Stopped("terminated")  # what SIGTERM raises
        return {"op": "relu", "kind": "op", "size": list(item.size), "agree": True, "errors": {}}

    with open(os.devnull, "w") as sink:
        run = runner.Run(args, Console(file=sink), time.perf_counter())
        monkeypatch.setattr(run, "_row", fake_row)
        the_plan = plan.Plan("quick", items, 15, None, 0.0, None, 0.0, {}, [], {})
        rates = cost.rates("cpu", "highest")
        meta = {**_meta(), "load_average": {"before": None}, "peers": {}}
        status = run._measure(the_plan, meta, "cpu", rates)
    assert status == 130
    data = json.loads((tmp_path / "partial" / "cpu-test-device-quick.json").read_text())
    assert [r["size"] for r in data["rows"]] == [[1, 1], [2, 1]]
    assert data["run"]["complete"] is False and data["run"]["skipped"] == ["relu 3x1"]
    assert (tmp_path / "cpu-test-device-quick.json").read_text() == "committed\n"


@pytest.mark.slow
def test_budget_run_stays_inside_its_budget(tmp_path):
    # 40 s: room for the device probe and a few rows even on a loaded 2-core machine
    # (at 12 s the planner could leave no row there, and the run rightly refuses)
    budget = 40
    code = textwrap.dedent(
        f"""
        from benchmarks import runner
        runner.main(["--ops", "relu,tanh,mse", "--sizes", "64x64",
                     "--repeats", "2000", "--budget", "{budget}", "--no-chart",
                     "--out", {str(tmp_path)!r}])
        """
    )
    done = run_python(code)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = (tmp_path / "partial").glob("*.json")
    data = json.loads(path.read_text())
    assert data["run"]["elapsed_s"] <= budget
    assert data["rows"] and data["repeats"] < 2000
    assert all(r["repeats"] < 2000 for r in data["rows"])


@pytest.mark.slow
def test_smoke_run_checks_every_op_and_writes_results(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
        env=_env(),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = (tmp_path / "partial").glob("*-smoke.json")
    data = json.loads(path.read_text())
    assert [row["op"] for row in data["rows"]] == [*plan.names_known()]
    assert all(row["agree"] and not row["errors"] for row in data["rows"])
    assert "checked against hand" in done.stdout
