"""The registry: one table of every op, iterated by the tests and the benchmark.

Each :class:`OpSpec` binds an op's name to the public function (whose gradient
is the hand-written backward), its hyperparameters, how to draw valid inputs of
a given size, the sizes to test and benchmark at, and the peer implementation
from jax.nn / optax where one exists. Adding an op is one module edit plus one
entry in ``_ENTRIES`` below.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import jax
import jax.numpy as jnp
import optax

from dlref import activations as act
from dlref import losses as los
from dlref import regularizers as reg

PyTree = Any
Size = tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Arg:
    """One array input: its domain (what valid values are) and shape.

    Domains: ``real`` (any finite float), ``unit`` (probabilities in [0, 1]),
    ``simplex`` (distributions over the last axis), ``sign`` (-1 or +1),
    ``positive`` (> 0), ``label`` (integers in [0, classes)).
    """

    domain: str
    shape: Size
    classes: int = 0

    @property
    def floating(self) -> bool:
        return self.domain != "label"


def draw(arg: Arg, key: jax.Array, dtype: Any) -> jax.Array:
    """A random valid array for ``arg``, away from kinks and clips."""
    shape = arg.shape
    if arg.domain == "real":
        return jax.random.normal(key, shape, dtype)
    if arg.domain == "unit":
        return jax.random.uniform(key, shape, dtype, 0.05, 0.95)
    if arg.domain == "positive":
        return jax.random.uniform(key, shape, dtype, 0.5, 2.0)
    if arg.domain == "simplex":
        return jax.nn.softmax(jax.random.normal(key, shape, dtype), axis=-1)
    if arg.domain == "sign":
        return jnp.where(jax.random.bernoulli(key, 0.5, shape), 1, -1).astype(dtype)
    if arg.domain == "label":
        return jax.random.randint(key, shape, 0, arg.classes)
    raise ValueError(f"draw: unknown domain {arg.domain!r}")


def _is_arg(x: Any) -> bool:
    return isinstance(x, Arg)


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """Everything tests and benchmarks need to know about one op.

    Attributes:
      name: the registry key (the function's name).
      fn: the public op; ``fn.autodiff`` is its plain forward.
      signature: size -> a tuple with one pytree of :class:`Arg` per positional input.
      sizes: ``test`` (one small size), ``quick`` and ``full`` (benchmark sizes).
      kwargs: hyperparameters bound for tests and benchmarks.
      peer: the same computation from jax.nn / optax, taking the same positional
        inputs, or None.
      peer_name: what ``peer`` is, for tables.
      degree: how fast the value grows with the inputs (2 for squares); tests use
        it to keep float16 results representable.
      flops: size -> floating-point operations of forward plus backward, when
        they matter for a roofline (matrix products); None for elementwise ops.
    """

    name: str
    fn: Callable[..., Any]
    signature: Callable[[Size], tuple[PyTree, ...]]
    sizes: Mapping[str, Any]
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    peer: Callable[..., Any] | None = None
    peer_name: str = ""
    degree: int = 1
    flops: Callable[[Size], int] | None = None

    @property
    def module(self) -> str:
        return self.fn.__module__

    @property
    def manual(self) -> Callable[..., Any]:
        """The op with its hand-written backward, hyperparameters bound."""
        return functools.partial(self.fn, **self.kwargs)

    @property
    def autodiff(self) -> Callable[..., Any]:
        """The same forward, differentiated by JAX, hyperparameters bound."""
        return functools.partial(self.fn.autodiff, **self.kwargs)

    def args(self, size: Size | None = None) -> tuple[PyTree, ...]:
        return self.signature(self.sizes["test"] if size is None else size)

    @property
    def diff_argnums(self) -> tuple[int, ...]:
        """Positions of the floating (differentiable) inputs."""
        specs = self.args()
        return tuple(
            i
            for i, spec in enumerate(specs)
            if all(a.floating for a in jax.tree.leaves(spec, is_leaf=_is_arg))
        )

    def example_args(self, key: jax.Array, dtype: Any, size: Size | None = None) -> tuple:
        """Valid, non-degenerate positional inputs of the given size."""
        specs = self.args(size)
        leaves, treedef = jax.tree.flatten(specs, is_leaf=_is_arg)
        keys = jax.random.split(key, len(leaves))
        return tuple(
            treedef.unflatten([draw(a, k, dtype) for a, k in zip(leaves, keys, strict=True)])
        )

    def bytes_moved(self, size: Size, dtype: Any) -> int:
        """Fewest bytes a fused ``value_and_grad`` must move: every input read
        once, the output's cotangent read once, every gradient written once."""
        args = jax.eval_shape(lambda: self.example_args(jax.random.key(0), dtype, size))
        out = jax.eval_shape(self.manual, *args)

        def nbytes(tree):
            return sum(
                math.prod(x.shape) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree)
            )

        grads = [args[i] for i in self.diff_argnums]
        return nbytes(args) + nbytes(out) + nbytes(grads)


# --- how inputs look, per family ----------------------------------------------

_ROWS = {"test": (3, 5), "quick": [(256, 512), (2048, 1024)], "full": [(1024, 1024), (8192, 8192)]}


def _elementwise(size: Size) -> tuple:
    return (Arg("real", size),)


def _pair(first: str, second: str) -> Callable[[Size], tuple]:
    return lambda size: (Arg(first, size), Arg(second, size))


def _with_labels(size: Size) -> tuple:
    return (Arg("real", size), Arg("label", size[:-1], classes=size[-1]))


def _params(size: Size) -> tuple:
    return ({"w": Arg("real", size), "b": Arg("real", size[-1:])},)


def _last_axis(reduce):
    """A peer computing per element, reduced over the last axis like dlref."""
    return lambda fn: lambda *args: reduce(fn(*args), axis=-1)


_mean, _sum = _last_axis(jnp.mean), _last_axis(jnp.sum)


def _entry(name: str, fn, signature, *, sizes=_ROWS, **fields) -> OpSpec:
    return OpSpec(name=name, fn=fn, signature=signature, sizes=sizes, **fields)


_ENTRIES = [
    # activations
    _entry("sigmoid", act.sigmoid, _elementwise, peer=jax.nn.sigmoid, peer_name="jax.nn.sigmoid"),
    _entry("relu", act.relu, _elementwise, peer=jax.nn.relu, peer_name="jax.nn.relu"),
    _entry("tanh", act.tanh, _elementwise, peer=jnp.tanh, peer_name="jnp.tanh"),
    _entry(
        "softplus", act.softplus, _elementwise, peer=jax.nn.softplus, peer_name="jax.nn.softplus"
    ),
    _entry("softmax", act.softmax, _elementwise, peer=jax.nn.softmax, peer_name="jax.nn.softmax"),
    _entry(
        "log_softmax",
        act.log_softmax,
        _elementwise,
        peer=jax.nn.log_softmax,
        peer_name="jax.nn.log_softmax",
    ),
    # losses
    _entry(
        "mse",
        los.mse,
        _pair("real", "real"),
        peer=_mean(optax.losses.squared_error),
        peer_name="optax squared_error",
        degree=2,
    ),
    _entry("mae", los.mae, _pair("real", "real")),
    _entry(
        "hinge",
        los.hinge,
        _pair("real", "sign"),
        peer=_mean(optax.losses.hinge_loss),
        peer_name="optax hinge_loss",
    ),
    _entry(
        "multiclass_hinge",
        los.multiclass_hinge,
        _with_labels,
        peer=optax.losses.multiclass_hinge_loss,
        peer_name="optax multiclass_hinge_loss",
    ),
    _entry("binary_cross_entropy", los.binary_cross_entropy, _pair("unit", "unit")),
    _entry(
        "binary_cross_entropy_with_logits",
        los.binary_cross_entropy_with_logits,
        _pair("real", "unit"),
        peer=_sum(optax.losses.sigmoid_binary_cross_entropy),
        peer_name="optax sigmoid_binary_cross_entropy",
    ),
    _entry("categorical_cross_entropy", los.categorical_cross_entropy, _pair("simplex", "simplex")),
    _entry(
        "softmax_cross_entropy",
        los.softmax_cross_entropy,
        _pair("real", "simplex"),
        peer=optax.losses.softmax_cross_entropy,
        peer_name="optax softmax_cross_entropy",
    ),
    _entry(
        "softmax_cross_entropy_with_integer_labels",
        los.softmax_cross_entropy_with_integer_labels,
        _with_labels,
        peer=optax.losses.softmax_cross_entropy_with_integer_labels,
        peer_name="optax softmax_cross_entropy_with_integer_labels",
    ),
    # regularizers
    _entry(
        "l1",
        reg.l1,
        _params,
        peer=lambda p: optax.tree.norm(p, ord=1),
        peer_name="optax.tree.norm(ord=1)",
    ),
    _entry(
        "l2",
        reg.l2,
        _params,
        peer=lambda p: 0.5 * optax.tree.norm(p, squared=True),
        peer_name="0.5 * optax.tree.norm(squared=True)",
        degree=2,
    ),
    _entry("l1_prox", reg.l1_prox, _params, kwargs={"threshold": 0.5}),
]

OPS: Mapping[str, OpSpec] = MappingProxyType({spec.name: spec for spec in _ENTRIES})
