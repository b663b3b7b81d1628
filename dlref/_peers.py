"""Peer implementations from flax linen, taking dlref's arguments.

The registry's ``peer`` for layers and recurrent networks: the same computation
by flax, with parameters carried over by :mod:`dlref.convert`. flax is imported
when a peer is first called: it is a test and benchmark extra, not a runtime
dependency.
"""

from __future__ import annotations

from dlref import convert
from dlref.layers import BatchNormState
from dlref.recurrent import LSTMState


def _nn():
    import flax.linen as nn

    return nn


def dense(x, w, b):
    return _nn().Dense(w.shape[1]).apply({"params": convert.dense_to_flax(w, b)}, x)


def batch_norm(*, training: bool):
    def peer(x, scale, shift, state):
        layer = _nn().BatchNorm(use_running_average=not training, momentum=0.99, epsilon=1e-5)
        variables = convert.batch_norm_to_flax(scale, shift, state)
        y, updated = layer.apply(variables, x, mutable=["batch_stats"])
        stats = updated["batch_stats"]
        return y, BatchNormState(stats["mean"], stats["var"])

    return peer


def _cell(kind: str, hidden: int):
    nn = _nn()
    return {"rnn": nn.SimpleCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind](hidden)


_TO_FLAX = {"rnn": convert.rnn_to_flax, "lstm": convert.lstm_to_flax, "gru": convert.gru_to_flax}


def _carry(kind, state):
    return (state.c, state.h) if kind == "lstm" else state


def _state(kind, carry):
    return LSTMState(carry[1], carry[0]) if kind == "lstm" else carry


def cell(kind: str):
    """flax's ``SimpleCell`` / ``LSTMCell`` / ``GRUCell`` as ``(x, state, params) -> state``."""

    def peer(x, state, params):
        module = _cell(kind, params.w_hh.shape[0])
        carry, _ = module.apply({"params": _TO_FLAX[kind](params)}, _carry(kind, state), x)
        return _state(kind, carry)

    return peer


def sequence(kind: str):
    """flax's ``nn.RNN`` over a cell, time-major, as ``(xs, state0, params) -> (hs, last)``."""

    def peer(xs, state0, params):
        nn = _nn()
        module = nn.RNN(_cell(kind, params.w_hh.shape[0]), time_major=True, return_carry=True)
        variables = {"params": {"cell": _TO_FLAX[kind](params)}}
        carry, hs = module.apply(variables, xs, initial_carry=_carry(kind, state0))
        return hs, _state(kind, carry)

    return peer


def mlp(*, activation: str):
    """A flax MLP: ``nn.Dense`` layers with the activation between them."""

    def peer(params, x):
        nn = _nn()
        act = {"relu": nn.relu, "tanh": nn.tanh, "sigmoid": nn.sigmoid}[activation]
        for i, (w, b) in enumerate(params):
            x = dense(x, w, b)
            if i < len(params) - 1:
                x = act(x)
        return x

    return peer


def mlp_loss(*, activation: str):
    """The flax MLP with optax's softmax cross-entropy, averaged over the batch."""

    def peer(params, x, labels):
        import optax

        logits = mlp(activation=activation)(params, x)
        return optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    return peer


def cudnn_weights(params):
    """LSTMParams as cuDNN's flat weight vector (PyTorch's layout: W_ih (4H, d_in),
    W_hh (4H, H), b_ih, b_hh), as ``jax.experimental.rnn`` expects."""
    import jax.numpy as jnp

    w_ih, w_hh, b = params
    return jnp.concatenate([w_ih.T.ravel(), w_hh.T.ravel(), b, jnp.zeros_like(b)])


def cudnn_lstm(xs, state0, params):
    """cuDNN's LSTM through ``jax.experimental.rnn`` (GPU only), time-major."""
    import jax.numpy as jnp
    from jax.experimental import rnn

    steps, batch, d_in = xs.shape
    hidden = params.w_hh.shape[0]
    lengths = jnp.full((batch,), steps, jnp.int32)
    y, h, c = rnn.lstm(
        jnp.swapaxes(xs, 0, 1),
        state0.h[None],
        state0.c[None],
        cudnn_weights(params),
        lengths,
        d_in,
        hidden,
        1,
        0.0,
        False,
    )
    return jnp.swapaxes(y, 0, 1), LSTMState(h[0], c[0])
