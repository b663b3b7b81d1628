"""Data parallelism across real process boundaries, on one machine.

Each test starts a group of processes on 127.0.0.1 (a free port; JAX's
coordination service and CPU collectives through gloo), each with its own
simulated CPU devices and its own slice of the global batch
(``parallel.shard_local_batch``), and compares what they compute with this
process's single-device result. The processes run this file as a script
(``python tests/test_multiprocess.py WORKER_ARGS``, see :func:`_worker`) and
write their results to a pickle per process. Every wait is bounded and every
child is killed in a ``finally`` (examples/multiprocess.py).

One quick smoke test (2 processes x 1 device, one step) runs by default; the
rest are ``slow`` (``pytest -m slow``): each group pays a few seconds of start-up
per process and its own compilations, on CI's 2 cores.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import pickle
import re
import socket
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
if __name__ == "__main__":  # a worker: the repository's packages, as under pytest
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from examples import multiprocess  # noqa: E402

# float64: the all-reduce only reorders sums, so the steps agree to round-off.
PARALLEL_RTOL = 1e-12
LEARNING_RATE = 0.5
MODELS = ("mlp", "lstm")
VARIANTS = ("manual", "autodiff")
KINDS = ("data_parallel_step", "sharded_step")
# A group's start-up, compilations and steps on 2 shared cores stay well below.
GROUP_TIMEOUT_S = 600
# Heartbeat timeout of the fault tests: a lost process is noticed within it.
HEARTBEAT_S = 5


# --- what every process and the reference compute ------------------------------------


def _random_like(rng, shapes):
    """A tree of NumPy draws shaped as ``shapes``: weights ``N(0, 1 / fan-in)``,
    biases ``N(0, 0.1^2)`` (non-zero). NumPy rather than ``jax.random``: each of a
    process's first random draws would compile (seconds per process)."""
    import jax

    def draw(s):
        std = 1 / np.sqrt(s.shape[0]) if len(s.shape) == 2 else 0.1
        return (std * rng.standard_normal(s.shape)).astype(s.dtype)

    return jax.tree.map(draw, shapes)


def _problem(model):
    """``(params, batch, batch axes, loss for each variant)`` in float64, the same
    in every process (NumPy's generator, fixed seeds)."""
    import jax
    import jax.numpy as jnp

    from dlref import layers, losses, networks
    from dlref import recurrent as rec

    f64 = jnp.float64
    rng = np.random.default_rng(0)
    if model == "mlp":
        shapes = jax.eval_shape(lambda: networks.init_mlp(jax.random.key(0), [6, 16, 16, 4], f64))
        params = _random_like(rng, shapes)
        x = rng.standard_normal((32, 6))
        labels = rng.integers(0, 4, 32).astype(np.int32)

        def mlp(loss):
            return lambda p, x, y: loss(p, x, y, activation="tanh")

        fns = {"manual": mlp(networks.mlp_loss), "autodiff": mlp(networks.mlp_loss.autodiff)}
        return params, (x, labels), (0, 0), fns

    shapes = jax.eval_shape(
        lambda: (
            rec.init_lstm(jax.random.key(0), 3, 8, dtype=f64),
            layers.init_dense(jax.random.key(3), 8, 4, f64),
        )
    )
    params = _random_like(rng, shapes)
    xs = rng.standard_normal((10, 16, 3))  # time-major: batch axis 1
    labels = rng.integers(0, 4, 16).astype(np.int32)

    def classifier(lstm):
        def loss(params, xs, labels):
            lstm_params, (w, b) = params
            state0 = rec.zeros_state(xs.shape[1], 8, f64, lstm=True)
            _, last = lstm(xs, state0, lstm_params)
            logits = layers.dense(last.h, w, b)
            return jnp.mean(losses.softmax_cross_entropy_with_integer_labels(logits, labels))

        return loss

    fns = {"manual": classifier(rec.lstm), "autodiff": classifier(rec.lstm.autodiff)}
    return params, (xs, labels), (1, 0), fns


def _steps(kind, loss_fn, mesh, batch_axes):
    from dlref import parallel

    if kind == "data_parallel_step":
        return parallel.data_parallel_step(loss_fn, mesh, LEARNING_RATE, batch_axes=batch_axes)
    return parallel.sharded_step(loss_fn, LEARNING_RATE)


def _train(step, params, batch, steps):
    """Params after the first and after the last step, and every loss (NumPy)."""
    import jax

    first, losses = None, []
    for _ in range(steps):
        params, loss = step(params, *batch)
        losses.append(np.asarray(loss))
        first = first if first is not None else params
    leaves = lambda tree: [np.asarray(a) for a in jax.tree.leaves(tree)]
    return {"first": leaves(first), "last": leaves(params), "losses": np.stack(losses)}


def _batch_norm_problem():
    from dlref import layers

    rng = np.random.default_rng(1)
    x = 2 * rng.standard_normal((32, 5)) + 1
    scale = rng.uniform(0.5, 2, 5)
    shift = rng.standard_normal(5)
    state = layers.BatchNormState(np.full(5, 0.3), np.full(5, 2.0))
    dy = rng.standard_normal(x.shape)
    return x, scale, shift, state, dy


def _batch_norm(variant, x, scale, shift, state, dy, axis_name=None):
    """Values, running statistics and gradients (random cotangent) of batch norm."""
    import jax
    import jax.numpy as jnp

    from dlref import layers

    fn = layers.batch_norm if variant == "manual" else layers.batch_norm.autodiff
    (y, new), vjp = jax.vjp(
        lambda x, s, b: fn(x, s, b, state, axis_name=axis_name), x, scale, shift
    )
    dx, dscale, dshift = vjp((dy, jax.tree.map(jnp.zeros_like, new)))
    if axis_name is not None:  # the parameters' gradients sum over every device's examples
        dscale, dshift = jax.lax.psum((dscale, dshift), axis_name)
    return y, new, dx, dscale, dshift


# --- the worker: one process of a group --------------------------------------------


def _worker(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--coordinator", required=True)
    parser.add_argument("--num-processes", type=int, required=True)
    parser.add_argument("--process-id", type=int, required=True)
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--tasks", required=True, help="comma-separated: train,batch_norm,...")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--heartbeat-timeout", type=int, default=multiprocess.HEARTBEAT_TIMEOUT_S)
    parser.add_argument("--out")
    args = parser.parse_args(argv)

    multiprocess.simulate_devices(args.devices)
    multiprocess.initialize(
        args.coordinator,
        args.num_processes,
        args.process_id,
        heartbeat_timeout=args.heartbeat_timeout,
    )
    import jax

    jax.config.update("jax_enable_x64", True)
    from jax.experimental import multihost_utils
    from jax.sharding import PartitionSpec as P

    from dlref import InputError, parallel

    processes, index = jax.process_count(), jax.process_index()
    mesh = parallel.make_mesh()  # every device of every process

    def local(array, axis):  # this process's slice of the global batch
        return np.split(np.asarray(array), processes, axis=axis)[index]

    def feed(batch, batch_axes):
        pairs = zip(batch, batch_axes, strict=True)
        return [parallel.shard_local_batch(mesh, local(a, axis), axis) for a, axis in pairs]

    results = {"devices": jax.device_count(), "processes": processes}
    for task in args.tasks.split(","):
        if task == "train":
            for model in args.models.split(","):
                params, batch, batch_axes, fns = _problem(model)
                sharded = feed(batch, batch_axes)
                for variant in args.variants.split(","):
                    for kind in args.kinds.split(","):
                        step = _steps(kind, fns[variant], mesh, batch_axes)
                        state = parallel.replicate(mesh, params)
                        results[model, variant, kind] = _train(step, state, sharded, args.steps)
        elif task == "batch_norm":
            x, scale, shift, state, dy = _batch_norm_problem()
            for variant in args.variants.split(","):
                fn = jax.jit(
                    jax.shard_map(
                        lambda x, s, b, st, dy, v=variant: _batch_norm(v, x, s, b, st, dy, "data"),
                        mesh=mesh,
                        in_specs=(P("data"), P(), P(), P(), P("data")),
                        out_specs=(P("data"), P(), P("data"), P(), P()),
                        check_vma=False,
                    )
                )
                out = fn(
                    feed([x], [0])[0],
                    *parallel.replicate(mesh, (scale, shift, state)),
                    *feed([dy], [0]),
                )
                gathered = multihost_utils.process_allgather(out, tiled=True)
                results["batch_norm", variant] = [np.asarray(a) for a in jax.tree.leaves(gathered)]
        elif task == "bad_batch":  # 3 examples per process: a global batch of 3 * processes
            errors = []
            for attempt in (
                lambda: parallel.shard_local_batch(mesh, np.ones((3, 2))),
                lambda: parallel.shard_batch(mesh, np.ones((3 * processes, 2))),
            ):
                try:
                    attempt()
                except InputError as error:
                    errors.append(str(error))
            results["bad_batch"] = errors
        elif task == "loop":  # train until killed, one line per step
            params, batch, batch_axes, fns = _problem("mlp")
            step = _steps("data_parallel_step", fns["manual"], mesh, batch_axes)
            state, sharded = parallel.replicate(mesh, params), feed(batch, batch_axes)
            for i in range(10**9):
                state, loss = step(state, *sharded)
                jax.block_until_ready(loss)
                print(f"step {i}", flush=True)
                time.sleep(0.05)
        else:
            raise SystemExit(f"unknown task {task!r}")
    if args.out:
        with open(os.path.join(args.out, f"p{index}.pkl"), "wb") as f:
            pickle.dump(results, f)


# --- the tests' side ---------------------------------------------------------------


def _commands(processes, devices, port, *worker_args):
    return [
        [
            sys.executable,
            str(HERE / "test_multiprocess.py"),
            "--coordinator",
            f"{multiprocess.LOOPBACK}:{port}",
            "--num-processes",
            str(processes),
            "--process-id",
            str(i),
            "--devices",
            str(devices),
            *worker_args,
        ]
        for i in range(processes)
    ]


def _env():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _group(tmp_path, processes, devices, *worker_args):
    """Runs a group to the end; every process's results, in process order."""
    port = multiprocess.free_port()
    commands = _commands(processes, devices, port, "--out", str(tmp_path), *worker_args)
    multiprocess.run(commands, timeout=GROUP_TIMEOUT_S, env=_env(), cwd=str(ROOT))
    results = []
    for i in range(processes):
        with open(tmp_path / f"p{i}.pkl", "rb") as f:
            results.append(pickle.load(f))
    assert results[0]["devices"] == processes * devices
    assert results[0]["processes"] == processes
    return results


def _reference(model, variant, steps):
    """The single-process, single-device run (this process, one device)."""
    import jax

    params, batch, _, fns = _problem(model)
    from dlref import parallel

    single = jax.jit(parallel.sharded_step(fns[variant], LEARNING_RATE).__wrapped__)
    return _train(single, params, batch, steps)


def _max_rel(actual, expected):
    """The largest ``|a - e| / max(|e|, tiny)`` over two lists of arrays."""
    worst = 0.0
    for a, e in zip(actual, expected, strict=True):
        a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        assert a.shape == e.shape
        scale = np.maximum(np.abs(e), np.finfo(np.float64).tiny)
        worst = max(worst, float(np.max(np.abs(a - e) / scale, initial=0.0)))
    return worst


def _same_in_every_process(results, key):
    """Replicated results are the same bits in every process (one all-reduce result)."""
    first = _flat(results[0][key])
    return all(
        all(np.array_equal(a, b, equal_nan=True) for a, b in zip(first, _flat(r[key]), strict=True))
        for r in results[1:]
    )


def _flat(value):
    if isinstance(value, dict):
        return [a for k in sorted(value) for a in _flat(value[k])]
    if isinstance(value, list | tuple):
        return [a for v in value for a in _flat(v)]
    return [np.asarray(value)]


def test_smoke_two_processes_one_step(tmp_path):
    """2 processes x 1 device, one MLP step (hand-written backward, shard_map):
    the parameters and the loss equal the single-device step."""
    key = ("mlp", "manual", "data_parallel_step")
    results = _group(
        tmp_path, 2, 1, "--tasks", "train", "--models", "mlp", "--variants", "manual",
        "--kinds", "data_parallel_step",
    )  # fmt: skip
    assert _same_in_every_process(results, key)
    expected = _reference("mlp", "manual", 1)
    got = results[0][key]
    assert _max_rel(got["first"], expected["first"]) <= PARALLEL_RTOL
    assert _max_rel(got["losses"], expected["losses"]) <= PARALLEL_RTOL


# --- slow: every model, variant and step; 2 x 2 and 4 x 2 --------------------------
#
# One test per group shape, each checking everything its group computed: a group
# costs a start-up per process and every compilation, and under pytest-xdist a
# fixture shared by several tests would run once per worker.


def _check_one_step(results):
    """One step across processes (parameters after it, and its loss) equals the
    single-process, single-device step to 1e-12 in float64, and the replicated
    results are the same bits in every process."""
    failures = []
    for model in MODELS:
        for variant in VARIANTS:
            expected = _reference(model, variant, 1)
            for kind in KINDS:
                key = (model, variant, kind)
                got = results[0][key]
                errors = (
                    _max_rel(got["first"], expected["first"]),
                    _max_rel(got["losses"][:1], expected["losses"]),
                )
                if max(errors) > PARALLEL_RTOL or not _same_in_every_process(results, key):
                    failures.append(f"one step {key}: params, loss {errors}")
    return failures


def _check_ten_steps(results, devices):
    """Ten steps across processes equal ten steps in one process to 1e-12 (float64),
    on one device and on as many devices, but not bit for bit: across processes the
    all-reduce adds each process's partial sum of the gradients through gloo, an
    order of additions of its own; float addition is not associative, so the last
    bits of some parameters differ (measured, entry by entry, relative: below 1e-15
    after one step, below 2e-13 after ten)."""
    import jax.numpy as jnp

    from dlref import parallel

    failures = []
    mesh = parallel.make_mesh(devices)
    for model in MODELS:
        params, batch, batch_axes, fns = _problem(model)
        pairs = zip(batch, batch_axes, strict=True)
        sharded = [parallel.shard_batch(mesh, jnp.asarray(a), axis) for a, axis in pairs]
        for variant in VARIANTS:
            one_device = _reference(model, variant, 10)
            for kind in KINDS:
                got = results[0][model, variant, kind]
                step = _steps(kind, fns[variant], mesh, batch_axes)
                same_devices = _train(step, parallel.replicate(mesh, params), sharded, 10)
                errors = (
                    _max_rel(got["last"], one_device["last"]),
                    _max_rel(got["losses"], one_device["losses"]),
                    _max_rel(_flat(got), _flat(same_devices)),
                )
                if max(errors) > PARALLEL_RTOL:
                    failures.append(f"ten steps {model, variant, kind}: {errors}")
    return failures


def _check_batch_norm(results):
    """Batch norm with ``axis_name`` over every device of every process equals batch
    norm on the global batch: values, running statistics, gradients."""
    failures = []
    for variant in VARIANTS:
        key = ("batch_norm", variant)
        expected = [np.asarray(a) for a in _flat(_batch_norm(variant, *_batch_norm_problem()))]
        error = _max_rel(results[0][key], expected)
        if error > PARALLEL_RTOL or not _same_in_every_process(results, key):
            failures.append(f"batch norm {variant}: {error}")
    return failures


def _check_bad_batch(results, processes, devices):
    """3 examples per process: every process gets an InputError naming the global
    batch and the device count, from shard_local_batch and from shard_batch."""
    size, count = 3 * processes, processes * devices
    expected = [
        f"shard_local_batch: the global batch of size {size} (3 per process x {processes} "
        f"processes, along axis 0) must divide evenly over {count} devices",
        f"shard_batch: the batch axis 0 of size {size} must divide evenly over {count} devices",
    ]
    return [f"bad batch: {r['bad_batch']}" for r in results if r["bad_batch"] != expected]


@pytest.mark.slow
def test_two_processes_of_two_devices(tmp_path):
    """2 processes x 2 devices: one step and ten steps of the MLP and the LSTM
    classifier (both backward variants, data_parallel_step and sharded_step),
    synchronized batch norm, and a batch the 4 devices do not divide."""
    results = _group(tmp_path, 2, 2, "--tasks", "train,batch_norm,bad_batch", "--steps", "10")
    failures = _check_one_step(results) + _check_ten_steps(results, 4)
    failures += _check_batch_norm(results) + _check_bad_batch(results, 2, 2)
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_four_processes_of_two_devices(tmp_path):
    """4 processes x 2 devices: one step of every model, variant and kind of step,
    synchronized batch norm, and a batch the 8 devices do not divide."""
    results = _group(tmp_path, 4, 2, "--tasks", "train,batch_norm,bad_batch")
    failures = _check_one_step(results) + _check_batch_norm(results)
    failures += _check_bad_batch(results, 4, 2)
    assert not failures, "\n".join(failures)


# --- faults ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("victim", [1, 0], ids=["worker", "coordinator"])
def test_a_killed_process_stops_the_others(victim):
    """2 processes train; one is killed (SIGKILL) mid-run. A launcher watching them
    (multiprocess.wait) names it at once; without one, the survivor stops by
    itself, never hangs: at once when a gradient all-reduce loses its peer (gloo:
    "Connection closed by peer" or "reset by peer"), else within the heartbeat timeout (JAX's
    coordination service: "tasks are unhealthy (stopped sending heartbeats): 1")."""
    port = multiprocess.free_port()
    commands = _commands(2, 1, port, "--tasks", "loop", "--heartbeat-timeout", str(HEARTBEAT_S))
    procs = multiprocess.start(commands, env=_env(), cwd=str(ROOT))
    try:
        deadline = time.monotonic() + GROUP_TIMEOUT_S
        while not all("step 2" in p.output()[0] for p in procs):
            for p in procs:
                assert p.popen.poll() is None, p.output()[1][-3000:]
            assert time.monotonic() < deadline, "the group did not start training"
            time.sleep(0.2)
        procs[victim].popen.kill()
        killed = time.monotonic()
        with pytest.raises(multiprocess.LaunchError) as error:
            multiprocess.wait(procs, timeout=10)
        assert time.monotonic() - killed < 2
        assert f"process {victim} (pid {procs[victim].popen.pid}) was killed by SIGKILL" in str(
            error.value
        )
        survivor = procs[1 - victim]
        code = survivor.popen.wait(timeout=HEARTBEAT_S + 30)
        elapsed = time.monotonic() - killed
        stderr = survivor.output()[1]
        assert code != 0
        assert elapsed <= HEARTBEAT_S + 10, f"the survivor took {elapsed:.1f} s"
        said = multiprocess.summary(code, stderr)
        print(f"the survivor stopped {elapsed:.1f} s after the kill: {said}")
        assert f"lost process {victim} (no heartbeat)" in said or re.search(
            r"Gloo all-reduce failed: .* by peer", said
        ), said
    finally:
        multiprocess.stop(procs)


@pytest.mark.slow
def test_coordinator_port_in_use_is_a_clear_error():
    """Process 0 of a group whose coordinator port is taken stops at once with an
    error naming the port (JAX's own coordinator would crash with "Failed to add
    port to server")."""
    with socket.socket() as busy:
        busy.bind((multiprocess.LOOPBACK, 0))
        busy.listen()
        port = busy.getsockname()[1]
        command = multiprocess.python_module(
            "examples.data_parallel", "--coordinator", f"127.0.0.1:{port}",
            "--num-processes", "2", "--process-id", "0", "--devices-per-process", "1",
        )  # fmt: skip
        with pytest.raises(multiprocess.LaunchError) as error:
            multiprocess.run([command], timeout=GROUP_TIMEOUT_S, env=_env(), cwd=str(ROOT))
    assert (
        f"process 0 (pid {0}) exited with code 2: error: LaunchError: the coordinator port "
        f"{port} on 127.0.0.1 is already in use" in re.sub(r"pid \d+", "pid 0", str(error.value))
    )


@pytest.mark.slow
def test_launcher_prints_throughput_per_process_count():
    """``python -m examples.data_parallel --processes 2 --devices-per-process 2``:
    one row per model, backward and process count, with the all-reduce time."""
    command = multiprocess.python_module(
        "examples.data_parallel", "--processes", "2", "--devices-per-process", "2",
        "--batch", "64", "--steps", "2", "--model", "mlp",
    )  # fmt: skip
    ((stdout, _),) = multiprocess.run([command], timeout=GROUP_TIMEOUT_S, env=_env(), cwd=str(ROOT))
    rows = [line.split() for line in stdout.splitlines() if line.startswith("mlp")]
    assert [(r[0], r[1], int(r[2]), int(r[3])) for r in rows] == [
        ("mlp", v, p, 2 * p) for p in (1, 2) for v in ("hand", "autodiff")
    ]
    assert all(float(r[5]) > 0 and float(r[7]) > 0 for r in rows)


# --- the launcher's own checks (no process started) -----------------------------------


def test_launcher_refuses_a_busy_port_and_a_batch_the_devices_do_not_divide(capsys):
    from examples import data_parallel

    with socket.socket() as busy:
        busy.bind((multiprocess.LOOPBACK, 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv = ["--processes", "2", "--coordinator", f"127.0.0.1:{port}"]
        assert data_parallel.main(argv) == 2
    assert f"the coordinator port {port} on 127.0.0.1 is already in use" in capsys.readouterr().err
    argv = ["--processes", "2", "--devices-per-process", "2", "--batch", "6"]
    assert data_parallel.main(argv) == 2
    assert (
        "the global batch 6 must divide evenly over the 4 devices of 2 processes x 2 devices"
        in capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        data_parallel.main(["--coordinator", "127.0.0.1:1", "--process-id", "0"])
    assert "--coordinator, --num-processes and --process-id" in capsys.readouterr().err


def test_summary_names_the_lost_process():
    jax_fatal = (
        "F1202 client.h:80] Terminating process because the JAX distributed service detected "
        "fatal errors. absl::Status: UNAVAILABLE: The following tasks are unhealthy (stopped "
        "sending heartbeats):\n1\nThe tasks have crashed.\n*** Check failure stack trace: ***"
    )
    assert multiprocess.summary(-6, jax_fatal) == (
        "was killed by SIGABRT: the distributed service lost process 1 (no heartbeat)"
    )
    traceback = "Traceback (most recent call last):\n  ...\nValueError: bad\n"
    assert multiprocess.summary(1, traceback) == "exited with code 1: ValueError: bad"
    assert multiprocess.summary(-9, "") == "was killed by SIGKILL"
    with pytest.raises(multiprocess.LaunchError, match="HOST:PORT"):
        multiprocess.parse_address("127.0.0.1")


if __name__ == "__main__":
    _worker(sys.argv[1:])
