"""What one benchmark row compiles and times: a :class:`Case` of programs.

For a registered op at one size, every program is ``value_and_grad`` of
``loss(c, args) = <c, op(args)>``, with the cotangent ``c`` a runtime argument
(a constant would be folded into the program by XLA: work that depends on it
alone, like batch norm's ``sum(dy)``, would vanish from the timed backward). The
programs:

- ``hand``: the hand-written backward; ``hand_again``: the same function,
  compiled a second time (the A/A control: their spread is the row's noise);
- ``autodiff``: JAX autodiff of the same forward;
- ``autodiff_abs``: for ``mae`` and ``l1``, autodiff of a forward written with
  plain ``jnp.abs`` (the registry's forward keeps the derivative 0 at the kink,
  which costs a select; this one does not);
- ``peer``: the library implementation, on arguments already converted to its
  layout (the conversion is not timed); ``cudnn``: cuDNN's LSTM, on a GPU;
- ``forward``: the forward alone, for the gradient's cost relative to it.

Each program that is compared returns, through ``check``, its value and the
gradients with respect to dlref's arguments, so every variant is held to the
``hand`` one before any timing.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dlref import OpSpec
from dlref._registry import Arg, draw

PLAIN_ABS = {
    "mae": lambda pred, target: jnp.mean(jnp.abs(pred - target), axis=-1),
    "l1": lambda params: sum(jnp.sum(jnp.abs(leaf)) for leaf in jax.tree.leaves(params)),
}
"""Autodiff of the textbook forward (``jnp.abs``: derivative +1 at 0)."""

NOTES = {
    name: "autodiff differentiates the forward that keeps the derivative 0 at the kink; "
    "autodiff(abs) is autodiff of plain jnp.abs"
    for name in PLAIN_ABS
}


@dataclasses.dataclass
class Program:
    """A function to compile and time, its arguments, and how its output reads
    as ``(value, dlref gradients)`` for the agreement check (None: not compared)."""

    fn: Callable[..., Any]
    args: tuple
    check: Callable[[Any], Any] | None = None


@dataclasses.dataclass
class Case:
    """One row's programs (``hand`` first) and what the report needs about it."""

    name: str
    kind: str  # "op" or "step"
    size: tuple[int, ...]
    dtype: Any
    programs: dict[str, Program]
    peer_name: str = ""
    cudnn_name: str = ""
    bytes: int = 0
    flops: int = 0
    extra_bytes: int = 0  # what a second or third pass over the data costs
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    note: str = ""


def _tree_vdot(a, b):
    return sum(
        jnp.vdot(x, y).astype(jnp.float32)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def example_args(spec: OpSpec, seed: int, dtype: Any, size: tuple[int, ...]) -> tuple:
    """The registry's example inputs (``spec.example_args``), drawn by one
    compiled program from XLA's own generator (``rbg``, whose programs compile
    several times faster than threefry's); ops whose inputs look alike (the same
    domains and shapes) share that program."""
    key = jax.random.key(seed, impl="rbg")
    leaves, treedef = jax.tree.flatten(spec.args(size), is_leaf=lambda x: isinstance(x, Arg))
    try:
        drawn = _drawer(tuple(leaves), jnp.dtype(dtype).name)(key)
    except TypeError:  # inputs described otherwise: the registry draws them
        return jax.jit(lambda key: spec.example_args(key, dtype, size))(key)
    return tuple(jax.tree.unflatten(treedef, drawn))


@functools.cache
def _drawer(leaves: tuple[Arg, ...], dtype: str):
    """What :meth:`OpSpec.example_args` does, as one compiled program per inputs' look."""

    def draw_all(key):
        keys = jax.random.split(key, len(leaves))
        return [draw(arg, k, dtype) for arg, k in zip(leaves, keys, strict=True)]

    return jax.jit(draw_all)


def random_like(seed: int, tree: Any) -> Any:
    """Standard normal arrays shaped like the leaves of ``tree`` (a random
    cotangent: an all-ones one hides wrong backward passes); drawn by NumPy, so
    that no program is compiled for it."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda x: jnp.asarray(rng.standard_normal(x.shape, np.float32), x.dtype), tree
    )


def floating_argnums(args: tuple) -> tuple[int, ...]:
    """Positions of the arguments whose leaves are all floating arrays."""
    return tuple(
        i
        for i, arg in enumerate(args)
        if all(jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) for x in jax.tree.leaves(arg))
    )


def value_and_grad(fn: Callable[..., Any], argnums: tuple[int, ...], read=None):
    """``(c, *args) -> (<c, read(fn(*args))>, grads at argnums)``."""
    read = read or (lambda out: out)
    shifted = tuple(i + 1 for i in argnums)
    return jax.value_and_grad(lambda c, *a: _tree_vdot(c, read(fn(*a))), shifted)


def _pullback(prepare, args: tuple, argnums: tuple[int, ...], peer_args: tuple, peer_argnums):
    """Maps gradients with respect to the peer's arguments to dlref's: the
    vector-Jacobian product of ``prepare`` (a pure re-layout)."""

    def restricted(*diff):
        full = list(args)
        for i, d in zip(argnums, diff, strict=True):
            full[i] = d
        return prepare(*full)

    @jax.jit
    def pull(diff, cotangents):
        return jax.vjp(restricted, *diff)[1](cotangents)

    def check(out):
        value, grads = out
        by_position = dict(zip(peer_argnums, grads, strict=True))
        cotangents = tuple(
            by_position[i]
            if i in by_position
            else jax.tree.map(lambda x: np.zeros(np.shape(x), jax.dtypes.float0), arg)
            for i, arg in enumerate(peer_args)
        )
        return value, pull(tuple(args[i] for i in argnums), cotangents)

    return check


def op_case(
    spec: OpSpec,
    size: tuple[int, ...],
    dtype: Any,
    *,
    variants: frozenset[str],
    cudnn: Callable[..., Any] | None = None,
) -> Case:
    """The programs of ``spec`` at ``size``; ``variants`` names those wanted
    (``hand`` always runs); ``cudnn`` is the GPU peer where it is available."""
    seed = sum(map(ord, spec.name))
    args = example_args(spec, seed, dtype, size)
    read = spec.loss_output
    argnums = spec.diff_argnums
    out_shape = jax.eval_shape(lambda *a: (read or (lambda o: o))(spec.manual(*a)), *args)
    cotangent = random_like(seed, out_shape)
    same = lambda out: out
    programs = {
        "hand": Program(value_and_grad(spec.manual, argnums, read), (cotangent, *args), same)
    }
    if "hand_again" in variants:
        programs["hand_again"] = Program(programs["hand"].fn, programs["hand"].args)
    if "autodiff" in variants:
        programs["autodiff"] = Program(
            value_and_grad(spec.autodiff, argnums, read), (cotangent, *args), same
        )
    if "autodiff_abs" in variants and spec.name in PLAIN_ABS:
        plain = PLAIN_ABS[spec.name]
        programs["autodiff_abs"] = Program(
            value_and_grad(plain, argnums, read), (cotangent, *args), same
        )
    peers = {}
    if "peer" in variants and spec.peer is not None:
        peers["peer"] = spec.peer
    if "cudnn" in variants and cudnn is not None:
        peers["cudnn"] = cudnn
    for name, peer in peers.items():
        programs[name] = _peer_program(peer, args, argnums, cotangent, read)
    if "forward" in variants:
        programs["forward"] = Program(spec.manual, args)
    return Case(
        name=spec.name,
        kind="op",
        size=tuple(size),
        dtype=jnp.dtype(dtype),
        programs=programs,
        peer_name=spec.peer_name if "peer" in programs else "",
        cudnn_name=spec.gpu_peer_name if "cudnn" in programs else "",
        bytes=spec.bytes_moved(size, dtype),
        flops=spec.flops(size) if spec.flops else 0,
        extra_bytes=extra_pass_bytes(spec.name, size, dtype),
        note=NOTES.get(spec.name, ""),
    )


def _peer_program(peer, args, argnums, cotangent, read) -> Program:
    prepare = getattr(peer, "prepare", None)
    if prepare is None:  # a plain function of dlref's arguments (jax.nn, optax)
        return Program(value_and_grad(peer, argnums, read), (cotangent, *args), lambda out: out)
    peer_args = jax.jit(prepare)(*args)  # converted once, outside the timed program
    peer_argnums = floating_argnums(peer_args)
    check = _pullback(prepare, args, argnums, peer_args, peer_argnums)
    return Program(value_and_grad(peer.apply, peer_argnums, read), (cotangent, *peer_args), check)


def extra_pass_bytes(name: str, size: tuple[int, ...], dtype: Any) -> int:
    """Bytes beyond one pass that the op's value and gradient need at least.

    Training-mode batch norm reduces over the batch, so no kernel can finish a
    row before it has read every row: the statistics take a pass over ``x``,
    ``sum(dy)`` and ``sum(dy * x_hat)`` a second over ``x`` and ``dy``, and
    ``dx`` a third over both; two more reads of ``x`` and one more of ``dy``
    than :meth:`OpSpec.bytes_moved` counts. Every other op without matrix
    products can be done in one pass (its reductions run over rows that fit on
    chip), so its ceiling is the copy bandwidth itself.
    """
    if name != "batch_norm":
        return 0
    return 3 * int(np.prod(size)) * jnp.dtype(dtype).itemsize
