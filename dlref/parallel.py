"""Data parallelism on JAX's own SPMD machinery: a ``Mesh``, ``NamedSharding``
and ``shard_map``; nothing home-made.

Two ways to take a training step with the batch sharded over every device and
the parameters replicated:

- :func:`data_parallel_step` writes the parallelism out with ``jax.shard_map``:
  each device computes the loss and gradients of its shard, then an explicit
  all-reduce (``lax.pmean`` over the mesh axis) averages them, and every device
  applies the same update. With equal shards, the mean of the shard means is the
  global mean, so the step equals the single-device step.
- :func:`sharded_step` leaves it to the compiler: ``jax.jit`` of the plain step
  on sharded inputs, where XLA's SPMD partitioner inserts the same all-reduce.

Batch norm synchronized across devices is :func:`dlref.layers.batch_norm` with
``axis_name`` set to the mesh axis (inside ``shard_map``).

Several hosts: call ``jax.distributed.initialize()`` on every host first (one
process per host); ``jax.devices()`` then lists every host's devices, a mesh over
them spans the hosts, and the same functions run unchanged. Each host feeds its
own part of the batch (:func:`shard_local_batch`, through
``jax.make_array_from_process_local_data``); :func:`shard_batch` also works there
when every process holds the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from dlref._checks import InputError
from dlref.optim import gradient_descent

__all__ = [
    "data_parallel_step",
    "make_mesh",
    "replicate",
    "shard_batch",
    "shard_local_batch",
    "sharded_step",
]

PyTree = Any


def make_mesh(devices: Sequence[jax.Device] | int | None = None, axis: str = "data") -> Mesh:
    """A one-axis mesh over ``devices`` (default: every device JAX sees; an int
    takes the first that many).

    Examples:
      >>> from dlref import parallel
      >>> mesh = parallel.make_mesh(1)
      >>> mesh.axis_names, mesh.devices.size
      (('data',), 1)
    """
    if devices is None:
        devices = jax.devices()
    elif isinstance(devices, int):
        if not 1 <= devices <= jax.device_count():
            count = jax.device_count()
            raise InputError(
                f"make_mesh: `devices` must be in [1, {count}] (the devices JAX sees); "
                f"got {devices}"
            )
        devices = jax.devices()[:devices]
    return Mesh(np.asarray(devices), (axis,))


def _batch_spec(batch_axis: int, axis: str) -> P:
    return P(*([None] * batch_axis), axis)


def shard_batch(mesh: Mesh, array: jax.Array, batch_axis: int = 0) -> jax.Array:
    """``array`` split along ``batch_axis`` over the mesh's devices.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import parallel
      >>> mesh = parallel.make_mesh(1)
      >>> tuple(parallel.shard_batch(mesh, jnp.ones((4, 3))).sharding.spec)
      ('data',)
      >>> xs = jnp.ones((6, 4, 3))  # time-major: (time, batch, d)
      >>> tuple(parallel.shard_batch(mesh, xs, batch_axis=1).sharding.spec)
      (None, 'data')
    """
    (axis,) = mesh.axis_names
    n = mesh.devices.size
    if array.shape[batch_axis] % n:
        raise InputError(
            f"shard_batch: the batch axis {batch_axis} of size {array.shape[batch_axis]} must "
            f"divide evenly over {n} devices"
        )
    return jax.device_put(array, NamedSharding(mesh, _batch_spec(batch_axis, axis)))


def shard_local_batch(mesh: Mesh, local: Any, batch_axis: int = 0) -> jax.Array:
    """The global batch of which this process holds ``local``, split along
    ``batch_axis`` over the mesh's devices (``jax.make_array_from_process_local_data``).

    With several processes (``jax.distributed``), every process of the mesh calls it
    with its own slice, all slices of one shape: the global batch is their
    concatenation in process order (:func:`make_mesh` lists the devices by process,
    so process ``i`` holds examples ``i * L`` to ``(i + 1) * L - 1`` for a local
    batch of ``L``). With one process it is :func:`shard_batch`.

    Raises:
      InputError: if the global batch does not divide evenly over the mesh's
        devices (the message names both numbers), or ``batch_axis`` is not an
        axis of ``local``, or this process has no device in the mesh.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import parallel
      >>> mesh = parallel.make_mesh(1)
      >>> x = parallel.shard_local_batch(mesh, jnp.ones((4, 3)))
      >>> x.shape, tuple(x.sharding.spec)
      ((4, 3), ('data',))
    """
    (axis,) = mesh.axis_names
    shape = np.shape(local)
    if not 0 <= batch_axis < len(shape):
        raise InputError(
            f"shard_local_batch: `batch_axis` {batch_axis} is not an axis of `local` "
            f"(shape {shape})"
        )
    devices = mesh.devices.size
    processes = len({d.process_index for d in mesh.devices.flat})
    mine = sum(d.process_index == jax.process_index() for d in mesh.devices.flat)
    if not mine:
        raise InputError(
            f"shard_local_batch: process {jax.process_index()} has no device in the mesh"
        )
    size = shape[batch_axis] * processes
    if size % devices:
        raise InputError(
            f"shard_local_batch: the global batch of size {size} ({shape[batch_axis]} per "
            f"process x {processes} processes, along axis {batch_axis}) must divide evenly "
            f"over {devices} devices"
        )
    global_shape = (*shape[:batch_axis], size, *shape[batch_axis + 1 :])
    sharding = NamedSharding(mesh, _batch_spec(batch_axis, axis))
    return jax.make_array_from_process_local_data(sharding, local, global_shape)


def replicate(mesh: Mesh, tree: PyTree) -> PyTree:
    """A copy of every leaf of ``tree`` on every device of the mesh.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import parallel
      >>> params = parallel.replicate(parallel.make_mesh(1), {"w": jnp.ones(2)})
      >>> params["w"].sharding.is_fully_replicated
      True
    """
    return jax.device_put(tree, NamedSharding(mesh, P()))


def data_parallel_step(
    loss_fn: Callable[..., jax.Array],
    mesh: Mesh,
    learning_rate: float,
    *,
    batch_axes: Sequence[int],
) -> Callable[..., tuple[PyTree, jax.Array]]:
    """One step of data-parallel gradient descent, written out with ``shard_map``.

    Args:
      loss_fn: ``loss_fn(params, *batch) -> scalar``, the *mean* loss over the
        examples it is given (each device calls it on its shard).
      mesh: a one-axis mesh (:func:`make_mesh`).
      learning_rate: the step size.
      batch_axes: for each batch argument, the axis that indexes examples (0 for
        ``(batch, features)``, 1 for a time-major sequence ``(time, batch, d)``).

    Returns:
      A jitted ``step(params, *batch) -> (new_params, loss)``; ``params``
      replicated (:func:`replicate`), each batch argument sharded
      (:func:`shard_batch`).

    The gradient all-reduce is explicit: ``lax.pmean`` of the per-device
    gradients. ``check_vma=False`` keeps it explicit: with JAX's
    varying-manual-axes checking on, ``jax.grad`` inside ``shard_map`` would
    already sum the gradients of the replicated parameters across devices.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import parallel
      >>> mesh = parallel.make_mesh(1)
      >>> loss_fn = lambda w, x, y: jnp.mean((x @ w - y) ** 2)
      >>> step = parallel.data_parallel_step(loss_fn, mesh, 0.1, batch_axes=(0, 0))
      >>> x = parallel.shard_batch(mesh, jnp.ones((4, 3)))
      >>> y = parallel.shard_batch(mesh, jnp.ones(4))
      >>> step(parallel.replicate(mesh, jnp.zeros(3)), x, y)  # (new params, mean loss)
      (Array([0.2, 0.2, 0.2], dtype=float32), Array(1., dtype=float32))
    """
    (axis,) = mesh.axis_names

    def local_step(params, *batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
        grads = jax.lax.pmean(grads, axis)  # the all-reduce: the global mean gradient
        loss = jax.lax.pmean(loss, axis)
        return gradient_descent(params, grads, learning_rate), loss

    in_specs = (P(), *(_batch_spec(a, axis) for a in batch_axes))
    mapped = jax.shard_map(
        local_step, mesh=mesh, in_specs=in_specs, out_specs=(P(), P()), check_vma=False
    )
    return jax.jit(mapped)


def sharded_step(
    loss_fn: Callable[..., jax.Array], learning_rate: float
) -> Callable[..., tuple[PyTree, jax.Array]]:
    """The same step as :func:`data_parallel_step`, partitioned by the compiler:
    ``jax.jit`` of the plain step; given sharded batches and replicated
    parameters, XLA inserts the gradient all-reduce itself.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import parallel
      >>> mesh = parallel.make_mesh(1)
      >>> step = parallel.sharded_step(lambda w, x, y: jnp.mean((x @ w - y) ** 2), 0.1)
      >>> x = parallel.shard_batch(mesh, jnp.ones((4, 3)))
      >>> y = parallel.shard_batch(mesh, jnp.ones(4))
      >>> step(parallel.replicate(mesh, jnp.zeros(3)), x, y)
      (Array([0.2, 0.2, 0.2], dtype=float32), Array(1., dtype=float32))
    """

    def step(params, *batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
        return gradient_descent(params, grads, learning_rate), loss

    return jax.jit(step)
