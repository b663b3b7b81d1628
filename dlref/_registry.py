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
import itertools
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dlref import _peers
from dlref import activations as act
from dlref import layers as lay
from dlref import losses as los
from dlref import networks as net
from dlref import recurrent as rec
from dlref import regularizers as reg
from dlref._op import Op

PyTree = Any
Size = tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Domain:
    """What valid values of an input are, and how to draw them.

    Attributes:
      name: for messages and test ids.
      sample: ``(key, shape, dtype, classes) -> array``: random valid values,
        away from kinks and clips (what tests and benchmarks feed the op).
      low, high: the bounds of every valid value (``None``: unbounded; tests
        then draw up to a magnitude of their choosing); ``low_open``: ``low``
        itself is not valid.
      values: the only valid values, where they are a finite set.
      integer: integer class labels in [0, classes).
      rows_sum_to_one: distributions over the last axis.
    """

    name: str
    sample: Callable[[jax.Array, Size, Any, int], jax.Array]
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    values: tuple[float, ...] = ()
    integer: bool = False
    rows_sum_to_one: bool = False

    def __repr__(self) -> str:
        return self.name


REAL = Domain("real", lambda k, s, d, c: jax.random.normal(k, s, d))
WEIGHT = Domain("weight", lambda k, s, d, c: jax.random.normal(k, s, d) * s[0] ** -0.5)
UNIT = Domain("unit", lambda k, s, d, c: jax.random.uniform(k, s, d, 0.05, 0.95), 0.0, 1.0)
POSITIVE = Domain(
    "positive", lambda k, s, d, c: jax.random.uniform(k, s, d, 0.5, 2.0), 0.0, low_open=True
)
SIMPLEX = Domain(
    "simplex",
    lambda k, s, d, c: jax.nn.softmax(jax.random.normal(k, s, d), axis=-1),
    0.0,
    1.0,
    rows_sum_to_one=True,
)
SIGN = Domain(
    "sign",
    lambda k, s, d, c: jnp.where(jax.random.bernoulli(k, 0.5, s), 1, -1).astype(d),
    values=(-1.0, 1.0),
)
LABEL = Domain("label", lambda k, s, d, c: jax.random.randint(k, s, 0, c), integer=True)


@dataclasses.dataclass(frozen=True)
class Arg:
    """One array input: its :class:`Domain` and shape (``classes`` for labels)."""

    domain: Domain
    shape: Size
    classes: int = 0

    @property
    def floating(self) -> bool:
        return not self.domain.integer


def draw(arg: Arg, key: jax.Array, dtype: Any) -> jax.Array:
    """A random valid array for ``arg``, away from kinks and clips."""
    return arg.domain.sample(key, arg.shape, dtype, arg.classes)


def _of_args(cls: Any, *fields: Arg) -> Any:
    """A NamedTuple (``LSTMState``...) holding :class:`Arg` leaves instead of arrays."""
    return cls(*fields)


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
      loss_output: the part of the output a training loss reads (batch norm's
        new running statistics are carried, not differentiated); None: all.
      gpu_peer: a second peer that runs on GPUs only (cuDNN's LSTM), benchmarked
        there beside ``peer``.
    """

    name: str
    fn: Op
    signature: Callable[[Size], tuple[PyTree, ...]]
    sizes: Mapping[str, Any]
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    peer: Callable[..., Any] | None = None
    peer_name: str = ""
    degree: int = 1
    flops: Callable[[Size], int] | None = None
    loss_output: Callable[[Any], Any] | None = None
    gpu_peer: Callable[..., Any] | None = None
    gpu_peer_name: str = ""

    @property
    def module(self) -> str:
        """The public module the op belongs to (``dlref.losses``, not its private
        ``dlref.losses._regression``)."""
        parts = self.fn.__module__.split(".")
        return ".".join(itertools.takewhile(lambda part: not part.startswith("_"), parts))

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
        drawn = [draw(a, k, dtype) for a, k in zip(leaves, keys, strict=True)]
        return tuple(jax.tree_util.tree_unflatten(treedef, drawn))

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

# Entries that check a non-default hyperparameter: tested, not benchmarked.
_TESTED_ONLY = {"test": (3, 5), "quick": [], "full": []}
_ROWS = {"test": (3, 5), "quick": [(256, 512), (2048, 1024)], "full": [(1024, 1024), (8192, 8192)]}


def _elementwise(size: Size) -> tuple:
    return (Arg(REAL, size),)


def _pair(first: Domain, second: Domain) -> Callable[[Size], tuple]:
    return lambda size: (Arg(first, size), Arg(second, size))


def _with_labels(size: Size) -> tuple:
    return (Arg(REAL, size), Arg(LABEL, size[:-1], classes=size[-1]))


def _params(size: Size) -> tuple:
    return ({"w": Arg(REAL, size), "b": Arg(REAL, size[-1:])},)


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
    # a non-default axis: the backward must reduce over the same axis
    _entry(
        "softmax_axis0",
        act.softmax,
        _elementwise,
        sizes=_TESTED_ONLY,
        kwargs={"axis": 0},
        peer=functools.partial(jax.nn.softmax, axis=0),
        peer_name="jax.nn.softmax(axis=0)",
    ),
    _entry(
        "log_softmax",
        act.log_softmax,
        _elementwise,
        peer=jax.nn.log_softmax,
        peer_name="jax.nn.log_softmax",
    ),
    _entry(
        "log_softmax_axis0",
        act.log_softmax,
        _elementwise,
        sizes=_TESTED_ONLY,
        kwargs={"axis": 0},
        peer=functools.partial(jax.nn.log_softmax, axis=0),
        peer_name="jax.nn.log_softmax(axis=0)",
    ),
    # losses
    _entry(
        "mse",
        los.mse,
        _pair(REAL, REAL),
        peer=_mean(optax.losses.squared_error),
        peer_name="optax squared_error",
        degree=2,
    ),
    _entry("mae", los.mae, _pair(REAL, REAL)),
    _entry(
        "hinge",
        los.hinge,
        _pair(REAL, SIGN),
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
    _entry("binary_cross_entropy", los.binary_cross_entropy, _pair(UNIT, UNIT)),
    _entry(
        "binary_cross_entropy_with_logits",
        los.binary_cross_entropy_with_logits,
        _pair(REAL, UNIT),
        peer=_sum(optax.losses.sigmoid_binary_cross_entropy),
        peer_name="optax sigmoid_binary_cross_entropy",
    ),
    _entry("categorical_cross_entropy", los.categorical_cross_entropy, _pair(SIMPLEX, SIMPLEX)),
    _entry(
        "softmax_cross_entropy",
        los.softmax_cross_entropy,
        _pair(REAL, SIMPLEX),
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
    _entry("soft_f1", los.soft_f1, _pair(UNIT, UNIT)),
]


# --- layers, recurrent networks and the MLP --------------------------------------


def _dense_args(size: Size) -> tuple:
    batch, d_in, d_out = size
    return (Arg(REAL, (batch, d_in)), Arg(WEIGHT, (d_in, d_out)), Arg(REAL, (d_out,)))


def _batch_norm_args(size: Size) -> tuple:
    features = size[-1:]
    state = _of_args(lay.BatchNormState, Arg(REAL, features), Arg(POSITIVE, features))
    return (Arg(REAL, size), Arg(POSITIVE, features), Arg(REAL, features), state)


def _norm_args(*, shift: bool, axis: int = -1):
    """``(x, scale[, shift])``: the vectors have one entry per position of ``axis``."""

    def signature(size: Size) -> tuple:
        features = (size[axis],)
        vectors = (Arg(POSITIVE, features),) + ((Arg(REAL, features),) if shift else ())
        return (Arg(REAL, size), *vectors)

    return signature


def _recurrent_args(params: Any, gates: int, *, time: bool):
    """``(x or xs, state, params)`` for sizes ``(batch, d_in, hidden)``, with
    ``time`` first for a sequence; the LSTM's state is ``LSTMState(h, c)``."""

    def signature(size: Size) -> tuple:
        steps, (batch, d_in, hidden) = (size[0], size[1:]) if time else (0, size)
        x = Arg(REAL, (steps, batch, d_in) if time else (batch, d_in))
        h = Arg(REAL, (batch, hidden))
        state = _of_args(rec.LSTMState, h, h) if params is rec.LSTMParams else h
        biases = [Arg(REAL, (gates * hidden,))] * (len(params._fields) - 2)
        weights = Arg(WEIGHT, (d_in, gates * hidden)), Arg(WEIGHT, (hidden, gates * hidden))
        return (x, state, params(*weights, *biases))

    return signature


def _recurrent_flops(gates: int, time: bool):
    """Forward plus backward: three matrix products of each weight per step."""

    def flops(size: Size) -> int:
        steps, (batch, d_in, hidden) = (size[0], size[1:]) if time else (1, size)
        return 6 * steps * batch * (d_in + hidden) * gates * hidden

    return flops


def _mlp_layers(size: Size) -> list[int]:
    _, d_in, width, depth, d_out = size
    return [d_in] + [width] * depth + [d_out]


def _mlp_args(with_labels: bool):
    def signature(size: Size) -> tuple:
        sizes = _mlp_layers(size)
        params = [(Arg(WEIGHT, (a, b)), Arg(REAL, (b,))) for a, b in itertools.pairwise(sizes)]
        x = Arg(REAL, (size[0], sizes[0]))
        labels = Arg(LABEL, (size[0],), classes=sizes[-1])
        return (params, x, labels) if with_labels else (params, x)

    return signature


def _mlp_flops(size: Size) -> int:
    sizes = _mlp_layers(size)
    return 6 * size[0] * sum(a * b for a, b in itertools.pairwise(sizes))


_CELL_SIZES = {
    "test": (3, 4, 6),
    "quick": [(256, 256, 256), (1024, 512, 512)],
    "full": [(4096, 1024, 1024), (8192, 2048, 2048)],
}
_SEQUENCE_SIZES = {
    "test": (8, 3, 4, 6),
    "quick": [(32, 16, 64, 128), (128, 32, 128, 256)],
    "full": [(128, 64, 512, 512), (256, 128, 1024, 1024)],
}
_MLP_SIZES = {
    "test": (4, 5, 6, 2, 3),
    "quick": [(256, 784, 256, 2, 10), (1024, 784, 1024, 2, 10)],
    "full": [(8192, 784, 2048, 4, 10), (16384, 1024, 4096, 4, 1000)],
}


def _recurrent(name, fn, params, gates, *, time, peer, peer_name, **fields) -> OpSpec:
    return _entry(
        name,
        fn,
        _recurrent_args(params, gates, time=time),
        sizes=_SEQUENCE_SIZES if time else _CELL_SIZES,
        peer=peer,
        peer_name=peer_name,
        degree=2,
        flops=_recurrent_flops(gates, time=time),
        **fields,
    )


_RECURRENT_ENTRIES = [
    _recurrent(
        "rnn_cell",
        rec.rnn_cell,
        rec.RNNParams,
        1,
        time=False,
        peer=_peers.cell("rnn"),
        peer_name="flax linen SimpleCell",
    ),
    _recurrent(
        "rnn",
        rec.rnn,
        rec.RNNParams,
        1,
        time=True,
        peer=_peers.sequence("rnn"),
        peer_name="flax linen nn.RNN",
    ),
    _recurrent(
        "lstm_cell",
        rec.lstm_cell,
        rec.LSTMParams,
        4,
        time=False,
        peer=_peers.cell("lstm"),
        peer_name="flax linen LSTMCell",
    ),
    _recurrent(
        "lstm",
        rec.lstm,
        rec.LSTMParams,
        4,
        time=True,
        peer=_peers.sequence("lstm"),
        peer_name="flax linen nn.RNN",
        gpu_peer=_peers.cudnn_lstm,
        gpu_peer_name="cuDNN (jax.experimental.rnn)",
    ),
    _recurrent(
        "gru_cell",
        rec.gru_cell,
        rec.GRUParams,
        3,
        time=False,
        peer=_peers.cell("gru"),
        peer_name="flax linen GRUCell",
    ),
    _recurrent(
        "gru",
        rec.gru,
        rec.GRUParams,
        3,
        time=True,
        peer=_peers.sequence("gru"),
        peer_name="flax linen nn.RNN",
    ),
    _recurrent(
        "lstm_checkpointed",
        rec.lstm,
        rec.LSTMParams,
        4,
        time=True,
        kwargs={"checkpoint_every": 4},
        peer=_peers.sequence("lstm", checkpoint_every=4),
        peer_name="flax linen nn.RNN, nn.remat every 4 steps",
    ),
]


_LAYER_ENTRIES = [
    _entry(
        "dense",
        lay.dense,
        _dense_args,
        sizes={
            "test": (3, 4, 5),
            "quick": [(256, 512, 512), (2048, 1024, 1024)],
            "full": [(4096, 4096, 4096), (8192, 8192, 8192)],
        },
        peer=_peers.dense,
        peer_name="flax linen Dense",
        degree=2,
        flops=lambda s: 6 * s[0] * s[1] * s[2],
    ),
    _entry(
        "dropout",
        lay.dropout,
        _elementwise,
        kwargs={"rate": 0.3, "key": np.array([0, 42], np.uint32)},
    ),
    *(
        _entry(
            name,
            lay.batch_norm,
            _batch_norm_args,
            kwargs={"training": training},
            peer=_peers.batch_norm(training=training),
            peer_name="flax linen BatchNorm",
            degree=2,
            loss_output=lambda out: out[0],  # y; the running statistics are carried
        )
        for name, training in (("batch_norm", True), ("batch_norm_eval", False))
    ),
    _entry(
        "layer_norm",
        lay.layer_norm,
        _norm_args(shift=True),
        peer=_peers.layer_norm(),
        peer_name="flax linen LayerNorm",
        degree=2,
    ),
    _entry(
        "layer_norm_axis0",
        lay.layer_norm,
        _norm_args(shift=True, axis=0),
        sizes=_TESTED_ONLY,
        kwargs={"axis": 0, "eps": 1e-3},
        degree=2,
    ),
    _entry(
        "rms_norm",
        lay.rms_norm,
        _norm_args(shift=False),
        peer=_peers.rms_norm(),
        peer_name="flax linen RMSNorm",
        degree=2,
    ),
    # non-default momentum and eps reach the backward (the running-state gradient)
    _entry(
        "batch_norm_momentum",
        lay.batch_norm,
        _batch_norm_args,
        sizes=_TESTED_ONLY,
        kwargs={"training": True, "momentum": 0.9, "eps": 1e-3},
        degree=2,
        loss_output=lambda out: out[0],
    ),
    *_RECURRENT_ENTRIES,
    _entry(
        "mlp",
        net.mlp,
        _mlp_args(with_labels=False),
        sizes=_MLP_SIZES,
        kwargs={"activation": "relu"},
        peer=_peers.mlp(activation="relu"),
        peer_name="flax linen Dense x L",
        degree=4,
        flops=_mlp_flops,
    ),
    _entry(
        "mlp_loss",
        net.mlp_loss,
        _mlp_args(with_labels=True),
        sizes=_MLP_SIZES,
        kwargs={"activation": "tanh"},
        peer=_peers.mlp_loss(activation="tanh"),
        peer_name="flax linen Dense x L + optax",
        degree=4,
        flops=_mlp_flops,
    ),
]

OPS: Mapping[str, OpSpec] = MappingProxyType(
    {spec.name: spec for spec in _ENTRIES + _LAYER_ENTRIES}
)
