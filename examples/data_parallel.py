"""Data-parallel training: throughput per device count.

    python -m examples.data_parallel                # 1, 2, 4, ... up to every device JAX sees
    python -m examples.data_parallel --devices 4    # up to 4 devices
    python -m examples.data_parallel --simulate 8   # 8 simulated CPU devices

An MLP and an LSTM classifier take data-parallel gradient-descent steps with
:func:`dlref.parallel.data_parallel_step` (``shard_map``, explicit gradient
all-reduce), with the hand-written backward and with autodiff, on a global batch
split evenly over the devices. Each row gives the median step time over timed
steps after a warm-up, examples per second, and the speed-up over one device.

On one CPU, simulated devices share the same cores: throughput cannot grow with
their count there (the rows then measure the cost of sharding); real scaling
needs real devices (several GPUs, or several hosts with
``jax.distributed.initialize()``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def _arguments(argv):
    parser = argparse.ArgumentParser(
        prog="python -m examples.data_parallel", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--devices", type=int, help="the largest device count (default: all)")
    parser.add_argument("--simulate", type=int, help="simulate this many CPU devices")
    parser.add_argument("--batch", type=int, default=1024, help="global batch (examples per step)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per row")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = _arguments(argv)
    if args.simulate:  # before JAX starts: XLA reads the flag once
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + f" --xla_force_host_platform_device_count={args.simulate}"
        )
    import jax
    import jax.numpy as jnp

    from dlref import layers, losses, networks, parallel
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
                state, loss = step(state, *sharded)  # compile and warm up
                jax.block_until_ready(loss)
                times = []
                for _ in range(args.steps):
                    start = time.perf_counter()
                    state, loss = step(state, *sharded)
                    jax.block_until_ready(loss)
                    times.append(time.perf_counter() - start)
                t = statistics.median(times)
                base = base or t
                rate = args.batch / t
                cells = (model, variant, n, 1e3 * t, rate, rate / n, base / t)
                print("{:6} {:9} {:7d} {:9.2f} {:11.0f} {:11.0f} {:8.2f}".format(*cells))
    if device.platform == "cpu" and len(counts) > 1:
        print(
            "note: simulated CPU devices share the machine's cores; throughput cannot scale here."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
