"""Peer implementations from flax linen and cuDNN, taking dlref's arguments.

The registry's ``peer`` for layers and recurrent networks: the same computation
by flax, with parameters carried over by :mod:`dlref.convert`. Each is a
:class:`Peer`: calling it converts dlref's arguments to the library's layout
(``prepare``) and runs the library (``apply``); the benchmark prepares once,
outside the timed program, and times ``apply`` alone, so the layout conversion
is not charged to the library. flax is imported when a peer is first called:
it is a test and benchmark extra, not a runtime dependency.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dlref import convert
from dlref.layers import BatchNormState
from dlref.recurrent import LSTMState


class Peer:
    """A library's implementation of an op: ``peer(*args) == apply(*prepare(*args))``.

    ``prepare`` takes the op's positional arguments in dlref's layout and returns
    the library's (any number of positional arguments, each a pytree); it only
    moves numbers (transposes, splits, packing), so the gradient with respect to
    dlref's arguments is the pullback of the library's gradient through it.
    ``apply`` returns the op's output in dlref's layout.
    """

    def __init__(self, apply: Callable[..., Any], prepare: Callable[..., tuple] | None = None):
        self.apply = apply
        self.prepare = prepare or (lambda *args: args)

    def __call__(self, *args: Any) -> Any:
        return self.apply(*self.prepare(*args))


def _nn() -> Any:
    import flax.linen as nn

    return nn


def _dense_apply(x, variables):
    kernel = variables["params"]["kernel"]
    return _nn().Dense(kernel.shape[1]).apply(variables, x)


dense = Peer(_dense_apply, lambda x, w, b: (x, {"params": convert.dense_to_flax(w, b)}))


def conv2d(*, stride: Any = 1, padding: Any = "SAME", dilation: Any = 1, groups: int = 1) -> Peer:
    """flax linen's ``Conv`` (NHWC input, HWIO kernel: dlref's layout) with a bias."""

    def apply(x, variables):
        kernel = variables["params"]["kernel"]
        layer = _nn().Conv(
            kernel.shape[3],
            kernel.shape[:2],
            strides=stride,
            padding=padding,
            kernel_dilation=dilation,
            feature_group_count=groups,
        )
        return layer.apply(variables, x)

    return Peer(apply, lambda x, w, b: (x, {"params": {"kernel": w, "bias": b}}))


def _pair(value: Any) -> tuple:
    return value if isinstance(value, tuple) else (value, value)


def max_pool2d(*, window: Any, stride: Any = None, padding: Any = "VALID") -> Callable[..., Any]:
    """flax linen's ``max_pool``; its stride defaults to 1, dlref's to the window."""
    strides = _pair(window if stride is None else stride)
    return lambda x: _nn().max_pool(x, _pair(window), strides, padding)


def avg_pool2d(
    *, window: Any, stride: Any = None, padding: Any = "VALID", count_include_pad: bool = True
) -> Callable[..., Any]:
    """flax linen's ``avg_pool``; its stride defaults to 1, dlref's to the window."""
    strides = _pair(window if stride is None else stride)
    return lambda x: _nn().avg_pool(
        x, _pair(window), strides, padding, count_include_pad=count_include_pad
    )


def batch_norm(*, training: bool) -> Peer:
    """flax's ``BatchNorm`` with the two-pass variance (``use_fast_variance=False``),
    the formula dlref uses."""

    def apply(x, variables):
        layer = _nn().BatchNorm(
            use_running_average=not training,
            momentum=0.99,
            epsilon=1e-5,
            use_fast_variance=False,
        )
        y, updated = layer.apply(variables, x, mutable=["batch_stats"])
        stats = updated["batch_stats"]
        return y, BatchNormState(stats["mean"], stats["var"])

    return Peer(
        apply, lambda x, scale, shift, state: (x, convert.batch_norm_to_flax(scale, shift, state))
    )


def layer_norm() -> Peer:
    """flax's ``LayerNorm`` with the two-pass variance, over the last axis."""

    def apply(x, variables):
        layer = _nn().LayerNorm(epsilon=1e-6, use_fast_variance=False)
        return layer.apply(variables, x)

    return Peer(apply, lambda x, scale, shift: (x, {"params": {"scale": scale, "bias": shift}}))


def rms_norm() -> Peer:
    """flax's ``RMSNorm`` over the last axis."""

    def apply(x, variables):
        return _nn().RMSNorm(epsilon=1e-6).apply(variables, x)

    return Peer(apply, lambda x, scale: (x, {"params": {"scale": scale}}))


def _embed_apply(ids, variables):
    table = variables["params"]["embedding"]
    return _nn().Embed(table.shape[0], table.shape[1]).apply(variables, ids)


embedding = Peer(_embed_apply, lambda ids, table: (ids, {"params": {"embedding": table}}))


def attention(*, mask: Any = None, causal: bool = False) -> Callable[..., Any]:
    """flax linen's ``dot_product_attention`` with dlref's mask and causal
    triangle (top-left aligned, as jax.nn's). flax computes its softmax in the
    inputs' dtype (float64-exact; jax.nn's runs in float32 even for float64). Rows
    with no key to attend are set to 0, dlref's convention: flax (and jax.nn) give
    the mean of all values there, from a uniform softmax over large negative scores."""

    def apply(q, k, v):
        import jax.numpy as jnp

        t_q, t_k = q.shape[1], k.shape[1]
        full = jnp.ones((1, 1, t_q, t_k), bool)
        if causal:
            full = full & jnp.tril(jnp.ones((t_q, t_k), bool))[None, None]
        if mask is not None:
            full = full & jnp.reshape(mask, (1,) * (4 - jnp.ndim(mask)) + jnp.shape(mask))
        masked = causal or mask is not None
        y = _nn().dot_product_attention(q, k, v, mask=full if masked else None)
        attends = jnp.transpose(jnp.any(full, axis=-1), (0, 2, 1))[..., None]
        return jnp.where(attends, y, 0)

    return apply


def cudnn_attention(q, k, v):
    """cuDNN's fused attention through ``jax.nn.dot_product_attention`` (GPU only;
    float16 and bfloat16 only)."""
    import jax

    return jax.nn.dot_product_attention(q, k, v, implementation="cudnn")


def _cell(kind: str, hidden: int, **name):
    nn = _nn()
    return {"rnn": nn.SimpleCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind](hidden, **name)


_TO_FLAX: dict[str, Callable[[Any], dict]] = {
    "rnn": convert.rnn_to_flax,
    "lstm": convert.lstm_to_flax,
    "gru": convert.gru_to_flax,
}


def _carry(kind, state):
    return (state.c, state.h) if kind == "lstm" else state


def _state(kind, carry):
    return LSTMState(carry[1], carry[0]) if kind == "lstm" else carry


def _hidden(kind: str, variables) -> int:
    params = variables["params"]
    if kind == "lstm":
        return params["hi"]["kernel"].shape[0]
    return params["hn" if kind == "gru" else "h"]["kernel"].shape[0]


def _recurrent_prepare(kind: str, wrap: Callable[[dict], dict]):
    return lambda x, state, params: (x, _carry(kind, state), wrap(_TO_FLAX[kind](params)))


def cell(kind: str) -> Peer:
    """flax's ``SimpleCell`` / ``LSTMCell`` / ``GRUCell`` as ``(x, state, params) -> state``."""

    def apply(x, carry, variables):
        carry, _ = _cell(kind, _hidden(kind, variables)).apply(variables, carry, x)
        return _state(kind, carry)

    return Peer(apply, _recurrent_prepare(kind, lambda p: {"params": p}))


def sequence(kind: str, *, checkpoint_every: int | None = None) -> Peer:
    """flax's ``nn.RNN`` over a cell, time-major, as ``(xs, state0, params) -> (hs, last)``.

    With ``checkpoint_every=k``, the sequence runs as an outer ``nn.scan`` over
    segments of ``k`` steps, each segment an ``nn.RNN`` under ``nn.remat``: the
    backward pass stores the carry at segment boundaries only and recomputes
    each segment, the work dlref's ``checkpoint_every`` does.
    """

    def apply(xs, carry, variables):
        nn = _nn()
        hidden = _hidden(kind, variables)
        if checkpoint_every is None:
            module = nn.RNN(_cell(kind, hidden), time_major=True, return_carry=True)
            carry, hs = module.apply(
                {"params": {"cell": variables["params"]}}, xs, initial_carry=carry
            )
            return hs, _state(kind, carry)
        steps = xs.shape[0]
        segments = xs.reshape(steps // checkpoint_every, checkpoint_every, *xs.shape[1:])
        params = {"segment": {"cell": variables["params"]}}
        carry, hs = _remat_scan(kind, hidden).apply({"params": params}, carry, segments)
        return hs.reshape(steps, *hs.shape[2:]), _state(kind, carry)

    return Peer(apply, _recurrent_prepare(kind, lambda p: {"params": p}))


def _remat_scan(kind: str, hidden: int):
    """An ``nn.scan`` over segments of an ``nn.remat``-ed ``nn.RNN`` (shared params)."""
    nn = _nn()
    module: Any = nn.Module  # flax's base class, imported late

    class Segment(module):
        @nn.compact
        def __call__(self, carry, xs):
            cell = _cell(kind, hidden, name="cell")
            return nn.RNN(cell, time_major=True, return_carry=True)(xs, initial_carry=carry)

    class Segments(module):
        @nn.compact
        def __call__(self, carry, segments):
            scan = nn.scan(
                nn.remat(Segment),
                variable_broadcast="params",
                split_rngs={"params": False},
                in_axes=0,
                out_axes=0,
            )
            return scan(name="segment")(carry, segments)

    return Segments()


def _mlp_prepare(params, x, *rest):
    layers = [{"params": convert.dense_to_flax(w, b)} for w, b in params]
    return (layers, x, *rest)


def _mlp_apply(activation: str):
    def apply(layers, x):
        nn = _nn()
        act = {"relu": nn.relu, "tanh": nn.tanh, "sigmoid": nn.sigmoid}[activation]
        for i, variables in enumerate(layers):
            x = _dense_apply(x, variables)
            if i < len(layers) - 1:
                x = act(x)
        return x

    return apply


def mlp(*, activation: str) -> Peer:
    """A flax MLP: ``nn.Dense`` layers with the activation between them."""
    return Peer(_mlp_apply(activation), _mlp_prepare)


def mlp_loss(*, activation: str) -> Peer:
    """The flax MLP with optax's softmax cross-entropy, averaged over the batch."""
    logits = _mlp_apply(activation)

    def apply(layers, x, labels):
        import optax

        z = logits(layers, x)
        return optax.losses.softmax_cross_entropy_with_integer_labels(z, labels).mean()

    return Peer(apply, _mlp_prepare)


def cudnn_weights(params):
    """LSTMParams as cuDNN's flat weight vector (PyTorch's layout: W_ih (4H, d_in),
    W_hh (4H, H), b_ih, b_hh), as ``jax.experimental.rnn`` expects."""
    import jax.numpy as jnp

    w_ih, w_hh, b = params
    return jnp.concatenate([w_ih.T.ravel(), w_hh.T.ravel(), b, jnp.zeros_like(b)])


def _cudnn_prepare(xs, state0, params):
    return xs, state0.h[None], state0.c[None], cudnn_weights(params)


def _flat_lstm(run):
    """``run(x_batch_major, h0, c0, weights, lengths, d_in, hidden)`` as a
    time-major ``(xs, h0, c0, weights) -> (hs, LSTMState)``."""

    def apply(xs, h0, c0, weights):
        import jax.numpy as jnp

        steps, batch, d_in = xs.shape
        lengths = jnp.full((batch,), steps, jnp.int32)
        y, h, c = run(jnp.swapaxes(xs, 0, 1), h0, c0, weights, lengths, d_in, h0.shape[-1])
        return jnp.swapaxes(y, 0, 1), LSTMState(h[0], c[0])

    return apply


def _cudnn_run(x, h0, c0, weights, lengths, d_in, hidden):
    from jax.experimental import rnn

    return rnn.lstm(x, h0, c0, weights, lengths, d_in, hidden, 1, 0.0, False)


def _reference_run(x, h0, c0, weights, lengths, d_in, hidden):
    from jax.experimental import rnn

    w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(weights, d_in, hidden, 1, False)
    return rnn.lstm_ref(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, d_in, hidden, 1, 0.0, False)


cudnn_lstm = Peer(_flat_lstm(_cudnn_run), _cudnn_prepare)
"""cuDNN's LSTM through ``jax.experimental.rnn`` (GPU only; float32 and float64
only), time-major; ``prepare`` packs the weights."""

cudnn_lstm_reference = Peer(_flat_lstm(_reference_run), _cudnn_prepare)
"""The same call with ``jax.experimental.rnn.lstm_ref`` (pure JAX, any device)
reading cuDNN's packed weights: cuDNN's stand-in where there is none."""
