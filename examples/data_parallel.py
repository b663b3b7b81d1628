"""Data-parallel training: throughput per device count, in one process or several.

    python -m examples.data_parallel                # 1, 2, 4, ... up to every device JAX sees
    python -m examples.data_parallel --devices 4    # up to 4 devices
    python -m examples.data_parallel --simulate 8   # 8 simulated CPU devices

Several processes on this machine (coordinator and gloo on 127.0.0.1, a free port),
each with its own simulated CPU devices and its own slice of the global batch;
configurations of 1, 2, 4, ... up to P processes:

    python -m examples.data_parallel --processes 4 --devices-per-process 2

Several hosts: the same script once per host (process 0's host is the coordinator),
or with ``--cluster`` where ``jax.distributed.initialize()`` reads the cluster's
environment (Slurm, Open MPI, TPU):

    python -m examples.data_parallel --coordinator HOST:PORT --num-processes N --process-id I

An MLP and an LSTM classifier take data-parallel gradient-descent steps with
:func:`dlref.parallel.data_parallel_step` (``shard_map``, explicit gradient
all-reduce), with the hand-written backward and with autodiff, on a global batch
split evenly over the devices. Each row gives the median step time over timed
steps after a warm-up, examples per second, and the speed-up over one device.

With several processes, each row adds the time of one all-reduce of the model's
gradients (``lax.pmean`` over every device of every process, as in the step),
measured apart. A process that dies stops the run: the launcher stops the others
at once and names it; without the launcher, JAX's coordination service stops the
others within ``--heartbeat-timeout`` seconds (see examples/multiprocess.py).

On one CPU, simulated devices and local processes share the same cores:
throughput cannot grow with their count there (the rows then measure the cost of
sharding and communication); real scaling needs real devices (several GPUs, or
several hosts).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

PROG = "python -m examples.data_parallel"
MODELS = ("mlp", "lstm")


def _arguments(argv):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, help="the largest device count (default: all)")
    parser.add_argument("--simulate", type=int, help="simulate this many CPU devices")
    parser.add_argument("--batch", type=int, default=1024, help="global batch (examples per step)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per row")
    parser.add_argument(
        "--model", choices=MODELS, action="append", help="only this model (repeatable)"
    )
    group = parser.add_argument_group("several processes on this machine")
    group.add_argument(
        "--processes",
        type=int,
        help="start local processes: 1, 2, 4, ... up to this many, one configuration each",
    )
    group.add_argument(
        "--devices-per-process",
        type=int,
        help="simulated CPU devices per process (default 1 with --processes)",
    )
    group.add_argument(
        "--timeout", type=float, default=900, help="seconds one configuration may take"
    )
    group = parser.add_argument_group("one process of several (one per host)")
    group.add_argument("--coordinator", help="HOST:PORT of process 0's coordinator")
    group.add_argument("--num-processes", type=int, help="how many processes in all")
    group.add_argument("--process-id", type=int, help="this process's index, from 0")
    group.add_argument(
        "--cluster",
        action="store_true",
        help="read the three from the cluster's environment (Slurm, Open MPI, TPU)",
    )
    group.add_argument(
        "--heartbeat-timeout",
        type=int,
        default=10,
        help="seconds without a heartbeat before a process is declared lost (JAX's default: 100)",
    )
    group.add_argument("--rows-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    several = args.coordinator or args.num_processes is not None or args.process_id is not None
    if args.processes is not None:
        if args.num_processes is not None or args.process_id is not None or args.cluster:
            parser.error(
                "--processes starts every process itself: "
                "no --num-processes, --process-id or --cluster"
            )
        if args.processes < 1:
            parser.error(f"--processes must be at least 1; got {args.processes}")
        args.devices_per_process = args.devices_per_process or 1
    elif several and not (args.coordinator and args.num_processes and args.process_id is not None):
        parser.error("one process of several takes --coordinator, --num-processes and --process-id")
    if args.cluster and several:
        parser.error("--cluster reads the coordinator and indices from the environment: give none")
    if args.devices_per_process is not None and args.devices_per_process < 1:
        parser.error(f"--devices-per-process must be at least 1; got {args.devices_per_process}")
    args.distributed = bool(several or args.cluster)
    return args


def main(argv=None) -> int:
    args = _arguments(argv)
    from dlref import InputError
    from examples import multiprocess

    try:
        if args.processes is not None:
            return _launch(args)
        if args.distributed:
            return _process(args)
    except (InputError, multiprocess.LaunchError) as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    return _single(args)


def _models(jax, jnp, selected):
    """Each model's problem (``batch -> (params, batch arrays, their batch axes)``) and
    its loss with the hand-written backward and with autodiff."""
    from dlref import layers, losses, networks
    from dlref import recurrent as rec

    def mlp_problem(batch):
        params = networks.init_mlp(jax.random.key(0), [256, 512, 512, 10])
        x = jax.random.normal(jax.random.key(1), (batch, 256))
        y = jax.random.randint(jax.random.key(2), (batch,), 0, 10)
        return params, (x, y), (0, 0)

    def lstm_problem(batch):
        params = (
            rec.init_lstm(jax.random.key(0), 32, 128),
            layers.init_dense(jax.random.key(3), 128, 10),
        )
        xs = jax.random.normal(jax.random.key(1), (32, batch, 32))
        y = jax.random.randint(jax.random.key(2), (batch,), 0, 10)
        return params, (xs, y), (1, 0)

    def lstm_loss(fn):
        def loss(params, xs, y):
            lstm_params, (w, b) = params
            _, last = fn(xs, rec.zeros_state(xs.shape[1], 128, lstm=True), lstm_params)
            return jnp.mean(
                losses.softmax_cross_entropy_with_integer_labels(layers.dense(last.h, w, b), y)
            )

        return loss

    models = {
        "mlp": (
            mlp_problem,
            {
                "hand": lambda p, x, y: networks.mlp_loss(p, x, y),
                "autodiff": lambda p, x, y: networks.mlp_loss.autodiff(p, x, y),
            },
        ),
        "lstm": (
            lstm_problem,
            {"hand": lstm_loss(rec.lstm), "autodiff": lstm_loss(rec.lstm.autodiff)},
        ),
    }
    return {name: models[name] for name in MODELS if name in (selected or MODELS)}


def _time(step, state, batch, steps):
    """The median time of ``steps`` calls after one warm-up (compilation) call."""
    import jax

    state, loss = step(state, *batch)
    jax.block_until_ready(loss)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        state, loss = step(state, *batch)
        jax.block_until_ready(loss)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _single(args) -> int:
    if args.simulate:  # before JAX starts: XLA reads the flag once
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + f" --xla_force_host_platform_device_count={args.simulate}"
        )
    import jax
    import jax.numpy as jnp

    from dlref import parallel

    models = _models(jax, jnp, args.model)
    largest = min(args.devices or jax.device_count(), jax.device_count())
    counts = [n for n in (1, 2, 4, 8, 16, 32, 64, 128, 256) if n <= largest and args.batch % n == 0]
    device = jax.devices()[0]
    print(f"{jax.device_count()} {device.platform} devices ({device.device_kind})")
    print(f"global batch {args.batch}, median of {args.steps} timed steps after a warm-up")
    columns = ("model", "backward", "devices", "step ms", "examples/s", "per device", "speed-up")
    print("{:6} {:9} {:>7} {:>9} {:>11} {:>11} {:>8}".format(*columns))
    for model, (problem, variants) in models.items():
        params, batch, batch_axes = problem(args.batch)
        for variant, loss_fn in variants.items():
            base = None
            for n in counts:
                mesh = parallel.make_mesh(n)
                step = parallel.data_parallel_step(loss_fn, mesh, 0.01, batch_axes=batch_axes)
                state = parallel.replicate(mesh, params)
                pairs = zip(batch, batch_axes, strict=True)
                sharded = [parallel.shard_batch(mesh, a, axis) for a, axis in pairs]
                t = _time(step, state, sharded, args.steps)
                base = base or t
                rate = args.batch / t
                cells = (model, variant, n, 1e3 * t, rate, rate / n, base / t)
                print("{:6} {:9} {:7d} {:9.2f} {:11.0f} {:11.0f} {:8.2f}".format(*cells))
    if device.platform == "cpu" and len(counts) > 1:
        print(
            "note: simulated CPU devices share the machine's cores; throughput cannot scale here."
        )
    return 0


def _process(args) -> int:
    """One process of several: joins the group, feeds its slice of the global batch,
    times the data-parallel step and the gradient all-reduce; process 0 prints."""
    from examples import multiprocess

    if args.devices_per_process:  # before JAX starts
        multiprocess.simulate_devices(args.devices_per_process)
    if args.cluster:
        multiprocess.initialize(None, None, None, heartbeat_timeout=args.heartbeat_timeout)
    else:
        multiprocess.initialize(
            args.coordinator,
            args.num_processes,
            args.process_id,
            heartbeat_timeout=args.heartbeat_timeout,
        )
    import jax

    try:
        return _measure(args)
    except jax.errors.JaxRuntimeError as error:
        # A collective failed: a process of the group is gone (gloo reports "Connection
        # closed by peer"). Exit at once rather than through jax.distributed's shutdown,
        # which waits for every process, the lost one too.
        print(
            f"error: process {jax.process_index()}: a collective failed; a process of the "
            f"group is lost: {error}",
            file=sys.stderr,
            flush=True,
        )
        os._exit(1)


def _measure(args) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import PartitionSpec as P

    from dlref import InputError, parallel

    processes, index, devices = jax.process_count(), jax.process_index(), jax.device_count()
    if args.batch % processes:
        raise InputError(
            f"{PROG}: the global batch {args.batch} must divide evenly over {processes} processes"
        )
    mesh = parallel.make_mesh()  # every device of every process
    allreduce = jax.jit(  # the step's gradient all-reduce, alone
        jax.shard_map(
            lambda g: jax.lax.pmean(g, "data"),
            mesh=mesh,
            in_specs=P(),
            out_specs=P(),
            check_vma=False,
        )
    )
    rows = []
    for model, (problem, variants) in _models(jax, jnp, args.model).items():
        params, batch, batch_axes = problem(args.batch)  # the same in every process
        local = [
            np.split(np.asarray(a), processes, axis=axis)[index]
            for a, axis in zip(batch, batch_axes, strict=True)
        ]
        sharded = [
            parallel.shard_local_batch(mesh, a, axis)
            for a, axis in zip(local, batch_axes, strict=True)
        ]
        state = parallel.replicate(mesh, params)
        reduce_s = _time(lambda g: (g, allreduce(g)), state, (), args.steps)
        for variant, loss_fn in variants.items():
            step = parallel.data_parallel_step(loss_fn, mesh, 0.01, batch_axes=batch_axes)
            rows.append((model, variant, _time(step, state, sharded, args.steps), reduce_s))
    if index == 0:
        if args.rows_only:
            for model, variant, t, r in rows:
                print("row", model, variant, processes, devices, t, r, flush=True)
        else:
            print(f"{processes} processes, {devices} {jax.devices()[0].platform} devices")
            print(f"global batch {args.batch}, median of {args.steps} timed steps after a warm-up")
            _print_rows([(m, v, processes, devices, t, r, 1.0) for m, v, t, r in rows], args.batch)
    return 0


COLUMNS = ("model", "backward", "processes", "devices", "step ms", "examples/s", "speed-up")


def _print_rows(rows, batch, header=True) -> None:
    if header:
        print("{:6} {:9} {:>9} {:>7} {:>9} {:>11} {:>8} {:>13}".format(*COLUMNS, "all-reduce ms"))
    for model, variant, processes, devices, t, r, speedup in rows:
        cells = (model, variant, processes, devices, 1e3 * t, batch / t, speedup, 1e3 * r)
        print("{:6} {:9} {:9d} {:7d} {:9.2f} {:11.0f} {:8.2f} {:13.3f}".format(*cells), flush=True)


def _launch(args) -> int:
    """Starts 1, 2, 4, ... up to ``--processes`` local processes, one configuration
    after the other, and prints process 0's rows with the speed-up over the first."""
    from dlref import InputError
    from examples import multiprocess

    d = args.devices_per_process
    counts = [p for p in (1, 2, 4, 8, 16, 32, 64) if p < args.processes] + [args.processes]
    for p in counts:
        if args.batch % (p * d):
            raise InputError(
                f"{PROG}: the global batch {args.batch} must divide evenly over the "
                f"{p * d} devices of {p} processes x {d} devices"
            )
    port = None
    if args.coordinator:
        host, port = multiprocess.parse_address(args.coordinator)
        if host not in (multiprocess.LOOPBACK, "localhost"):
            raise multiprocess.LaunchError(
                f"--processes starts the processes on this machine: the coordinator must be "
                f"{multiprocess.LOOPBACK}:PORT; got {args.coordinator}"
            )
        multiprocess.check_port_free(multiprocess.LOOPBACK, port)
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONUNBUFFERED"] = "1"
    print(f"local processes on {multiprocess.LOOPBACK}, {d} simulated CPU devices each")
    print(f"global batch {args.batch}, median of {args.steps} timed steps after a warm-up")
    base = {}
    for p in counts:
        address = f"{multiprocess.LOOPBACK}:{port or multiprocess.free_port()}"
        common = ["--coordinator", address, "--num-processes", str(p)]
        common += ["--devices-per-process", str(d), "--batch", str(args.batch)]
        common += ["--steps", str(args.steps), "--heartbeat-timeout", str(args.heartbeat_timeout)]
        common += [f"--model={m}" for m in args.model or ()] + ["--rows-only"]
        commands = [
            multiprocess.python_module("examples.data_parallel", *common, "--process-id", str(i))
            for i in range(p)
        ]
        try:
            outputs = multiprocess.run(commands, timeout=args.timeout, env=env)
        except multiprocess.LaunchError as error:
            raise multiprocess.LaunchError(f"{p} processes x {d} devices: {error}") from None
        rows = []
        for line in outputs[0][0].splitlines():
            if line.startswith("row "):
                _, model, variant, procs, devices, t, r = line.split()
                t = float(t)
                base.setdefault((model, variant), t)
                speedup = base[model, variant] / t
                rows.append((model, variant, int(procs), int(devices), t, float(r), speedup))
        _print_rows(rows, args.batch, header=p == counts[0])
    print(
        "note: the processes share this machine's cores; throughput cannot scale here, the"
        " rows show the cost of sharding and communication."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
