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
# A convolution kernel (KH, KW, C_in, C_out): scaled by its fan-in KH * KW * C_in.
KERNEL = Domain(
    "kernel",
    lambda k, s, d, c: jax.random.normal(k, s, d) * max(1, math.prod(s[:-1])) ** -0.5,
)
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
      sizes: ``test`` (one small size), ``quick`` and ``full`` (benchmark sizes),
        optionally ``sweep``: ``{"cpu": [...], "gpu": [...]}``, the sizes of a
        ``--sweep`` where the generic ones of the op's rank do not fit it.
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
        there beside ``peer``; ``gpu_peer_dtypes``: the dtypes it accepts.
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
    gpu_peer_dtypes: tuple[str, ...] = ("float32", "float64")

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
    _entry(
        "log_sigmoid",
        act.log_sigmoid,
        _elementwise,
        peer=jax.nn.log_sigmoid,
        peer_name="jax.nn.log_sigmoid",
    ),
    _entry(
        "leaky_relu",
        act.leaky_relu,
        _elementwise,
        peer=jax.nn.leaky_relu,
        peer_name="jax.nn.leaky_relu",
    ),
    # a non-default slope reaches the backward
    _entry(
        "leaky_relu_slope",
        act.leaky_relu,
        _elementwise,
        sizes=_TESTED_ONLY,
        kwargs={"negative_slope": 0.2},
        peer=functools.partial(jax.nn.leaky_relu, negative_slope=0.2),
        peer_name="jax.nn.leaky_relu(negative_slope=0.2)",
    ),
    _entry("elu", act.elu, _elementwise, peer=jax.nn.elu, peer_name="jax.nn.elu"),
    _entry(
        "elu_alpha",
        act.elu,
        _elementwise,
        sizes=_TESTED_ONLY,
        kwargs={"alpha": 0.5},
        peer=functools.partial(jax.nn.elu, alpha=0.5),
        peer_name="jax.nn.elu(alpha=0.5)",
    ),
    _entry("silu", act.silu, _elementwise, peer=jax.nn.silu, peer_name="jax.nn.silu"),
    # dlref's default is the exact (erf) form; jax.nn.gelu's is the tanh form
    _entry(
        "gelu",
        act.gelu,
        _elementwise,
        peer=functools.partial(jax.nn.gelu, approximate=False),
        peer_name="jax.nn.gelu(approximate=False)",
    ),
    _entry(
        "gelu_tanh",
        act.gelu,
        _elementwise,
        kwargs={"approximate": True},
        peer=functools.partial(jax.nn.gelu, approximate=True),
        peer_name="jax.nn.gelu(approximate=True)",
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


def _embedding_args(size: Size) -> tuple:
    batch, time, vocab, d = size
    return (Arg(LABEL, (batch, time), classes=vocab), Arg(REAL, (vocab, d)))


def _attention_shapes(size: Size) -> tuple[Size, Size]:
    """``(batch, T_q, heads, head_dim[, T_k])``: the shapes of ``q`` and of ``k``, ``v``."""
    batch, t_q, heads, dim, *t_k = size
    return (batch, t_q, heads, dim), (batch, *(t_k or [t_q]), heads, dim)


def _attention_args(size: Size) -> tuple:
    q, kv = _attention_shapes(size)
    return (Arg(REAL, q), Arg(REAL, kv), Arg(REAL, kv))


def _attention_flops(size: Size) -> int:
    """Forward ``4 B H T_q T_k D`` (two products); the backward's five products
    (scores recomputed, dv, dp, dq, dk) are 2.5 times that."""
    (batch, t_q, heads, dim), (_, t_k, _, _) = _attention_shapes(size)
    return 14 * batch * heads * t_q * t_k * dim


def _attention_mask() -> np.ndarray:
    """A fixed mask for sizes ``(batch, 5, 2, head_dim, 7)``: random, row 1 of
    head 0 fully masked, key 0 attended from query 0 in every head."""
    mask = np.random.default_rng(0).random((1, 2, 5, 7)) < 0.6
    mask[0, 0, 1] = False
    mask[0, :, 0, 0] = True
    return mask


_ATTENTION_TESTED_ONLY = {"test": (2, 5, 2, 4, 7), "quick": [], "full": []}


def _conv_args(size: Size) -> tuple:
    """Sizes ``(batch, height, width, in_channels, out_channels, kernel[, groups])``."""
    batch, height, width, c_in, c_out, k, *groups = size
    kernel = (k, k, c_in // (groups[0] if groups else 1), c_out)
    return (Arg(REAL, (batch, height, width, c_in)), Arg(KERNEL, kernel), Arg(REAL, (c_out,)))


def _conv_flops(size: Size) -> int:
    """Stride 1, "SAME": forward ``2 N H W K^2 C O``; dx and dw as much again each."""
    batch, height, width, c_in, c_out, k = size
    return 6 * batch * height * width * k * k * c_in * c_out


_POOL_SIZES = {
    "test": (2, 6, 6, 3),
    "quick": [(32, 32, 32, 32), (32, 64, 64, 64)],
    "full": [(128, 112, 112, 64), (128, 56, 56, 256)],
    "sweep": {
        "cpu": [(8, 16, 16, 16), (16, 32, 32, 32), (32, 64, 64, 64)],
        "gpu": [(32, 56, 56, 64), (128, 56, 56, 64), (128, 112, 112, 64), (128, 112, 112, 128)],
    },
}
# Odd sizes where the stride leaves cells past the last window.
_POOL_TESTED_ONLY = {"test": (2, 7, 8, 3), "quick": [], "full": []}
_CONV_STRIDED: dict[str, Any] = {
    "stride": (2, 3),
    "padding": ((1, 0), (2, 1)),
    "dilation": (1, 2),
    "groups": 2,
}
_POOL_SAME: dict[str, Any] = {"window": 3, "stride": 2, "padding": "SAME"}


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
        "embedding",
        lay.embedding,
        _embedding_args,
        sizes={
            "test": (4, 6, 5, 3),
            "quick": [(64, 128, 8192, 256), (256, 512, 32768, 512)],
            "full": [(256, 512, 32768, 1024), (256, 1024, 50304, 1024)],
        },
        peer=_peers.embedding,
        peer_name="flax linen Embed",
    ),
    _entry(
        "dot_product_attention",
        lay.dot_product_attention,
        _attention_args,
        sizes={
            "test": (2, 5, 2, 4),
            "quick": [(2, 256, 4, 64), (2, 1024, 4, 64)],
            "full": [(2, 256, 4, 64), (2, 1024, 4, 64), (2, 4096, 4, 64)],
            "sweep": {
                "cpu": [(2, t, 4, 64) for t in (128, 256, 512, 1024)],
                "gpu": [(2, t, 4, 64) for t in (256, 512, 1024, 2048, 4096, 8192)],
            },
        },
        peer=_peers.attention(),
        peer_name="flax linen dot_product_attention",
        gpu_peer=_peers.cudnn_attention,
        gpu_peer_name="cuDNN (jax.nn.dot_product_attention)",
        gpu_peer_dtypes=("float16", "bfloat16"),
        degree=2,
        flops=_attention_flops,
    ),
    # causal with T_q < T_k, and a mask with a fully masked row; blocks of 3
    # and 4 keys: several blocks, the last one padded
    _entry(
        "dot_product_attention_causal",
        lay.dot_product_attention,
        _attention_args,
        sizes=_ATTENTION_TESTED_ONLY,
        kwargs={"causal": True, "block_size": 3},
        peer=_peers.attention(causal=True),
        peer_name="flax linen dot_product_attention, causal mask",
        degree=2,
    ),
    _entry(
        "dot_product_attention_masked",
        lay.dot_product_attention,
        _attention_args,
        sizes=_ATTENTION_TESTED_ONLY,
        kwargs={"mask": _attention_mask(), "block_size": 4},
        peer=_peers.attention(mask=_attention_mask()),
        peer_name="flax linen dot_product_attention, mask",
        degree=2,
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
    _entry(
        "conv2d",
        lay.conv2d,
        _conv_args,
        sizes={
            "test": (2, 5, 5, 3, 4, 3),
            "quick": [(8, 32, 32, 16, 32, 3), (32, 32, 32, 32, 64, 3)],
            "full": [(128, 56, 56, 64, 64, 3), (64, 28, 28, 256, 256, 3)],
            "sweep": {
                "cpu": [(8, 16, 16, 16, 16, 3), (8, 32, 32, 32, 32, 3), (16, 32, 32, 64, 64, 3)],
                "gpu": [
                    (32, 56, 56, 64, 64, 3),
                    (128, 56, 56, 64, 64, 3),
                    (128, 56, 56, 128, 128, 3),
                    (128, 28, 28, 256, 256, 3),
                ],
            },
        },
        peer=_peers.conv2d(),
        peer_name="flax linen Conv",
        degree=2,
        flops=_conv_flops,
    ),
    # stride (2, 3), asymmetric padding, kernel dilation and 2 groups, on odd
    # sizes where the strides leave rows and columns past the last window
    _entry(
        "conv2d_strided_grouped",
        lay.conv2d,
        _conv_args,
        sizes={"test": (2, 7, 9, 4, 6, 3, 2), "quick": [], "full": []},
        kwargs=_CONV_STRIDED,
        peer=_peers.conv2d(**_CONV_STRIDED),
        peer_name="flax linen Conv",
        degree=2,
    ),
    _entry(
        "max_pool2d",
        lay.max_pool2d,
        _elementwise,
        sizes=_POOL_SIZES,
        kwargs={"window": 2},
        peer=_peers.max_pool2d(window=2),
        peer_name="flax linen max_pool",
    ),
    _entry(
        "max_pool2d_same",
        lay.max_pool2d,
        _elementwise,
        sizes=_POOL_TESTED_ONLY,
        kwargs=_POOL_SAME,
        peer=_peers.max_pool2d(**_POOL_SAME),
        peer_name="flax linen max_pool",
    ),
    _entry(
        "avg_pool2d",
        lay.avg_pool2d,
        _elementwise,
        sizes=_POOL_SIZES,
        kwargs={"window": 2},
        peer=_peers.avg_pool2d(window=2),
        peer_name="flax linen avg_pool",
    ),
    # padded cells in the divisor (the default) and not
    *(
        _entry(
            name,
            lay.avg_pool2d,
            _elementwise,
            sizes=_POOL_TESTED_ONLY,
            kwargs={**_POOL_SAME, "count_include_pad": include},
            peer=_peers.avg_pool2d(**_POOL_SAME, count_include_pad=include),
            peer_name="flax linen avg_pool",
        )
        for name, include in (("avg_pool2d_same", True), ("avg_pool2d_same_exclude_pad", False))
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
