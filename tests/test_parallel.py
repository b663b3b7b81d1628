"""Scale: data-parallel steps on 1, 2, 4 and 8 devices equal the single-device
step, and synchronized batch norm equals batch norm on the global batch.
(Rematerialized backpropagation through time is tested in test_recurrent.py.)

CI simulates the devices: tests/conftest.py sets
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` before JAX starts.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close
from jax.sharding import PartitionSpec as P

from dlref import InputError, layers, losses, networks, parallel
from dlref import recurrent as rec

f64 = jnp.float64
# 4 and 8 devices under -m slow: 1 and 2 cover one and several by default
DEVICE_COUNTS = [1, 2, *(pytest.param(n, marks=pytest.mark.slow) for n in (4, 8))]
# float64: the all-reduce only reorders sums, so the steps agree to round-off.
PARALLEL_RTOL = 1e-12


def test_eight_devices_are_simulated():
    assert jax.device_count() >= 8, "tests/conftest.py sets XLA_FLAGS before JAX starts"


def _mlp_problem(key):
    params = networks.init_mlp(key, [6, 16, 16, 4], f64)
    x = jax.random.normal(jax.random.key(1), (32, 6), f64)
    labels = jax.random.randint(jax.random.key(2), (32,), 0, 4)
    return params, (x, labels), (0, 0)


def _lstm_problem(key):
    """Sequence classification: the last hidden state of an LSTM, then a dense layer."""
    lstm_params = rec.init_lstm(key, 3, 8, dtype=f64)
    readout = layers.init_dense(jax.random.key(3), 8, 4, f64)
    xs = jax.random.normal(jax.random.key(1), (10, 16, 3), f64)  # time-major: batch axis 1
    labels = jax.random.randint(jax.random.key(2), (16,), 0, 4)
    return (lstm_params, readout), (xs, labels), (1, 0)


def _losses(variant):
    lstm = rec.lstm if variant == "manual" else rec.lstm.autodiff
    mlp_loss = networks.mlp_loss if variant == "manual" else networks.mlp_loss.autodiff

    def lstm_loss(params, xs, labels):
        lstm_params, (w, b) = params
        state0 = rec.zeros_state(xs.shape[1], lstm_params.w_hh.shape[0], f64, lstm=True)
        _, last = lstm(xs, state0, lstm_params)
        logits = layers.dense(last.h, w, b)
        return jnp.mean(losses.softmax_cross_entropy_with_integer_labels(logits, labels))

    return {
        "mlp": (_mlp_problem, lambda p, x, y: mlp_loss(p, x, y, activation="tanh")),
        "lstm": (_lstm_problem, lstm_loss),
    }


def _train(step, params, batch, steps=3):
    losses_ = []
    for _ in range(steps):
        params, loss = step(params, *batch)
        losses_.append(loss)
    return params, jnp.stack(losses_)


@pytest.mark.parametrize("devices", DEVICE_COUNTS)
@pytest.mark.parametrize("variant", ["manual", "autodiff"])
@pytest.mark.parametrize("model", ["mlp", "lstm"])
def test_data_parallel_step_equals_single_device(model, variant, devices, key):
    problem, loss_fn = _losses(variant)[model]
    params, batch, batch_axes = problem(key)
    single = jax.jit(parallel.sharded_step(loss_fn, 0.5).__wrapped__)
    expected = _train(single, params, batch)
    mesh = parallel.make_mesh(devices)
    sharded = tuple(
        parallel.shard_batch(mesh, a, axis) for a, axis in zip(batch, batch_axes, strict=True)
    )
    step = parallel.data_parallel_step(loss_fn, mesh, 0.5, batch_axes=batch_axes)
    assert_close(_train(step, parallel.replicate(mesh, params), sharded), expected, PARALLEL_RTOL)
    gspmd = parallel.sharded_step(loss_fn, 0.5)
    assert_close(_train(gspmd, parallel.replicate(mesh, params), sharded), expected, PARALLEL_RTOL)


@pytest.mark.parametrize("variant", ["manual", "autodiff"])
def test_synchronized_batch_norm_equals_global_batch(variant, key):
    """Over 8 devices with ``axis_name``: values, running statistics and
    gradients (random cotangent, non-zero shift) equal the unsharded batch norm."""
    fn = layers.batch_norm if variant == "manual" else layers.batch_norm.autodiff
    x = 2 * jax.random.normal(key, (32, 5), f64) + 1
    scale = jax.random.uniform(jax.random.key(1), (5,), f64, 0.5, 2)
    shift = jax.random.normal(jax.random.key(2), (5,), f64)
    state = layers.BatchNormState(jnp.full((5,), 0.3, f64), jnp.full((5,), 2.0, f64))
    dy = jax.random.normal(jax.random.key(3), x.shape, f64)

    def run(x, scale, shift, state, dy, axis_name=None):
        (y, new), vjp = jax.vjp(
            lambda x, s, b: fn(x, s, b, state, axis_name=axis_name), x, scale, shift
        )
        dx, dscale, dshift = vjp((dy, jax.tree.map(jnp.zeros_like, new)))
        if axis_name is not None:  # the parameters' gradients sum over every device's examples
            dscale, dshift = jax.lax.psum((dscale, dshift), axis_name)
        return y, new, dx, dscale, dshift

    expected = run(x, scale, shift, state, dy)
    mesh = parallel.make_mesh(8)
    sharded = jax.shard_map(
        lambda x, s, b, st, dy: run(x, s, b, st, dy, axis_name="data"),
        mesh=mesh,
        in_specs=(P("data"), P(), P(), P(), P("data")),
        out_specs=(P("data"), P(), P("data"), P(), P()),
        check_vma=False,
    )
    args = (
        parallel.shard_batch(mesh, x),
        *parallel.replicate(mesh, (scale, shift, state)),
        parallel.shard_batch(mesh, dy),
    )
    assert_close(jax.jit(sharded)(*args), expected, PARALLEL_RTOL)


def test_mesh_and_sharding_errors():
    with pytest.raises(InputError, match=r"make_mesh: `devices` must be in \[1, "):
        parallel.make_mesh(jax.device_count() + 1)
    with pytest.raises(
        InputError, match=r"shard_batch: the batch axis 0 of size 6 must divide evenly over 4"
    ):
        parallel.shard_batch(parallel.make_mesh(4), jnp.ones((6, 2)))
    np.testing.assert_equal(parallel.make_mesh(2).devices.size, 2)


@pytest.mark.slow  # the example's timed run over 1, 2, 4 and 8 devices
def test_data_parallel_example_prints_throughput_per_device_count():
    """The example script, as a user runs it (its own process, 4 simulated devices)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "examples.data_parallel",
            "--simulate",
            "4",
            "--batch",
            "64",
            "--steps",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith(("mlp", "lstm"))]
    assert [(r[0], r[1], int(r[2])) for r in rows] == [
        (m, v, n) for m in ("mlp", "lstm") for v in ("hand", "autodiff") for n in (1, 2, 4)
    ]
    assert all(float(r[4]) > 0 for r in rows)
