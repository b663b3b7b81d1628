"""Recurrent networks: RNN, LSTM and GRU cells, whole sequences with ``lax.scan``,
and backpropagation through time written by hand.

Layouts (batch first inside a step, time first over a sequence):

- a step takes ``x: (batch, d_in)`` and a state ``(batch, hidden)``;
- a sequence is **time-major**, ``xs: (time, batch, d_in)``, and the outputs
  ``hs`` are ``(time, batch, hidden)``. From batch-major data (flax's ``nn.RNN``
  default, PyTorch's ``batch_first=True``) use ``jnp.swapaxes(x, 0, 1)``.
- weights are ``(d_in, gates * hidden)`` and ``(hidden, gates * hidden)``, gates
  side by side in PyTorch's order: LSTM ``i, f, g, o``; GRU ``r, z, n``.

The sequence functions' hand-written backward is one reverse ``lax.scan``
carrying the state's gradient; the weight gradients are then two large matrix
products over all time steps at once (autodiff of the forward scan instead
accumulates them step by step). See :mod:`dlref.convert` for PyTorch and flax
parameter layouts.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from dlref import _checks
from dlref._op import op

__all__ = [
    "GRUParams",
    "LSTMParams",
    "LSTMState",
    "RNNParams",
    "gru",
    "gru_cell",
    "init_gru",
    "init_lstm",
    "init_rnn",
    "lstm",
    "lstm_cell",
    "rnn",
    "rnn_cell",
    "zeros_state",
]

sigmoid = jax.lax.logistic  # the stable primitive dlref.activations.sigmoid uses


class RNNParams(NamedTuple):
    w_ih: jax.Array  # (d_in, hidden)
    w_hh: jax.Array  # (hidden, hidden)
    b: jax.Array  # (hidden,)


class LSTMParams(NamedTuple):
    w_ih: jax.Array  # (d_in, 4 * hidden), gates i, f, g, o
    w_hh: jax.Array  # (hidden, 4 * hidden)
    b: jax.Array  # (4 * hidden,): PyTorch's b_ih + b_hh


class LSTMState(NamedTuple):
    h: jax.Array  # (batch, hidden)
    c: jax.Array  # (batch, hidden)


class GRUParams(NamedTuple):
    w_ih: jax.Array  # (d_in, 3 * hidden), gates r, z, n
    w_hh: jax.Array  # (hidden, 3 * hidden)
    b_ih: jax.Array  # (3 * hidden,)
    b_hh: jax.Array  # (3 * hidden,): b_hn must stay apart, inside r * (W_hn h + b_hn)


# --- initializers ----------------------------------------------------------------


def _uniform(key, shape, bound, dtype):
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def init_rnn(key: jax.Array, d_in: int, hidden: int, dtype=jnp.float32) -> RNNParams:
    """PyTorch's initialization: every entry uniform in +-1/sqrt(hidden)."""
    k1, k2, k3 = jax.random.split(key, 3)
    bound = hidden**-0.5
    return RNNParams(
        _uniform(k1, (d_in, hidden), bound, dtype),
        _uniform(k2, (hidden, hidden), bound, dtype),
        _uniform(k3, (hidden,), bound, dtype),
    )


def init_lstm(
    key: jax.Array, d_in: int, hidden: int, *, forget_bias: float = 1.0, dtype=jnp.float32
) -> LSTMParams:
    """Weights uniform in +-1/sqrt(hidden) (PyTorch's); biases 0 except the forget
    gate's, ``forget_bias`` (1 by default, so that the cell remembers at first:
    Jozefowicz et al. 2015; PyTorch draws it at random, flax sets 0)."""
    k1, k2 = jax.random.split(key)
    bound = hidden**-0.5
    b = jnp.zeros((4, hidden), dtype).at[1].set(forget_bias).reshape(-1)
    return LSTMParams(
        _uniform(k1, (d_in, 4 * hidden), bound, dtype),
        _uniform(k2, (hidden, 4 * hidden), bound, dtype),
        b,
    )


def init_gru(key: jax.Array, d_in: int, hidden: int, dtype=jnp.float32) -> GRUParams:
    """PyTorch's initialization: every entry uniform in +-1/sqrt(hidden)."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    bound = hidden**-0.5
    return GRUParams(
        _uniform(k1, (d_in, 3 * hidden), bound, dtype),
        _uniform(k2, (hidden, 3 * hidden), bound, dtype),
        _uniform(k3, (3 * hidden,), bound, dtype),
        _uniform(k4, (3 * hidden,), bound, dtype),
    )


def zeros_state(batch: int, hidden: int, dtype=jnp.float32, *, lstm: bool = False):
    """The zero initial state: ``(batch, hidden)``, or an :class:`LSTMState` of two."""
    h = jnp.zeros((batch, hidden), dtype)
    return LSTMState(h, h) if lstm else h


# --- checks ----------------------------------------------------------------------


def _check(fn: str, xs, state, params, gates: int, time: bool) -> None:
    """Floating arrays of one dtype whose shapes agree with the parameters."""
    leaves = {f"params.{k}": v for k, v in params._asdict().items()}
    states = state._asdict() if isinstance(state, LSTMState) else {"h": state}
    leaves.update({f"state.{k}" if len(states) > 1 else k: v for k, v in states.items()})
    x_name = "xs" if time else "x"
    _checks.floating(fn, **{x_name: xs}, **leaves)
    _checks.same_dtype(fn, **{x_name: xs}, **leaves)
    layout = "(time, batch, d_in)" if time else "(batch, d_in)"
    _checks.rank(fn, x_name, xs, 3 if time else 2)
    d_in, hidden = xs.shape[-1], params.w_hh.shape[0]
    batch = xs.shape[-2]
    _checks.shape(fn, "params.w_ih", params.w_ih, (d_in, gates * hidden), f"xs is {layout}")
    _checks.shape(
        fn, "params.w_hh", params.w_hh, (hidden, gates * hidden), "(hidden, gates*hidden)"
    )
    for name, value in leaves.items():
        if name.startswith("params.b"):
            _checks.shape(fn, name, value, (gates * hidden,), "(gates * hidden,)")
        elif not name.startswith("params."):
            _checks.shape(fn, name, value, (batch, hidden), "(batch, hidden)")


def _flat(a):
    """Merge every axis but the last: (time, batch, k) -> (time * batch, k)."""
    return a.reshape(-1, a.shape[-1])


def _previous(first, seq):
    """The states before each step: ``first`` then ``seq[:-1]``."""
    return jnp.concatenate([first[None], seq[:-1]], axis=0)


# --- one step: forward and backward, shared by the cells and the sequences -------
# Each *_step takes the input projection ``xa = x @ w_ih + b`` (computed for all
# time steps at once in a sequence) and returns the new state and what its
# backward needs; each *_step_bwd returns the gradient of the step's
# pre-activations and of the previous state.


def _rnn_step(xa, h, p: RNNParams):
    return jnp.tanh(xa + h @ p.w_hh)


def _rnn_step_bwd(dh, h_new):
    return dh * (1 - h_new * h_new)  # d pre-activation


def _lstm_step(xa, state: LSTMState, p: LSTMParams):
    a = xa + state.h @ p.w_hh
    i, f, g, o = jnp.split(a, 4, axis=-1)
    i, f, g, o = sigmoid(i), sigmoid(f), jnp.tanh(g), sigmoid(o)
    c = f * state.c + i * g
    return LSTMState(o * jnp.tanh(c), c), jnp.concatenate([i, f, g, o], axis=-1)


def _lstm_step_bwd(dh, dc, gates, c, c_prev):
    """Pre-activation gradient ``(batch, 4 hidden)`` and the gradient of ``c_prev``."""
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    tc = jnp.tanh(c)
    dc = dc + dh * (o * (1 - tc * tc))
    da = jnp.concatenate(
        [
            dc * (g * i * (1 - i)),
            dc * (c_prev * f * (1 - f)),
            dc * (i * (1 - g * g)),
            dh * (tc * o * (1 - o)),
        ],
        axis=-1,
    )
    return da, dc * f


def _gru_step(xa, h, p: GRUParams):
    xr, xz, xn = jnp.split(xa, 3, axis=-1)
    hr, hz, hn = jnp.split(h @ p.w_hh + p.b_hh[None, :], 3, axis=-1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    return (1 - z) * n + z * h, (r, z, n, hn)


def _gru_step_bwd(dh, h_prev, parts):
    """Gradients of the input and hidden pre-activations ``(batch, 3 hidden)``
    each, and the direct part of the gradient of ``h_prev``."""
    r, z, n, hn = parts
    dan = dh * ((1 - z) * (1 - n * n))
    dar = dan * (hn * r * (1 - r))
    daz = dh * ((h_prev - n) * z * (1 - z))
    return jnp.concatenate([dar, daz, dan], -1), jnp.concatenate([dar, daz, dan * r], -1), dh * z


def _input_projection(xs, w_ih, b):
    return xs @ w_ih + b.reshape((1,) * (xs.ndim - 1) + b.shape)


# --- cells -------------------------------------------------------------------------


@op
def rnn_cell(x: jax.Array, h: jax.Array, params: RNNParams) -> jax.Array:
    """One step of a plain (Elman) RNN: ``h' = tanh(x @ w_ih + h @ w_hh + b)``.

    Derivative: with ``da = dh' * (1 - h'**2)``: ``dx = da @ w_ih.T``,
    ``dh = da @ w_hh.T``, ``dw_ih = x.T @ da``, ``dw_hh = h.T @ da``, ``db = sum(da)``.

    Args:
      x: input, ``(batch, d_in)``.
      h: state, ``(batch, hidden)``.
      params: :class:`RNNParams`.

    Returns:
      The new state ``h'``, ``(batch, hidden)``.
    """
    _check("rnn_cell", x, h, params, 1, time=False)
    return _rnn_step(_input_projection(x, params.w_ih, params.b), h, params)


def _rnn_cell_fwd(x, h, params):
    h_new = rnn_cell.autodiff(x, h, params)
    return h_new, (x, h, params, h_new)


def _rnn_cell_bwd(res, dh_new):
    x, h, p, h_new = res
    da = _rnn_step_bwd(dh_new, h_new)
    return da @ p.w_ih.T, da @ p.w_hh.T, RNNParams(x.T @ da, h.T @ da, jnp.sum(da, axis=0))


rnn_cell.defvjp(_rnn_cell_fwd, _rnn_cell_bwd)


@op
def lstm_cell(x: jax.Array, state: LSTMState, params: LSTMParams) -> LSTMState:
    """One LSTM step (gates i, f, g, o, as PyTorch and flax):

    ``[i, f, g, o] = x @ w_ih + h @ w_hh + b``; ``i, f, o = sigmoid(.)``,
    ``g = tanh(.)``; ``c' = f * c + i * g``; ``h' = o * tanh(c')``.

    Derivative: with ``dc_total = dc' + dh' * o * (1 - tanh(c')**2)``: the
    pre-activation gradients are ``dc_total * g * i(1 - i)``,
    ``dc_total * c * f(1 - f)``, ``dc_total * i * (1 - g**2)`` and
    ``dh' * tanh(c') * o(1 - o)``; ``dc = dc_total * f``; then, as in a dense
    layer, ``dx = da @ w_ih.T``, ``dh = da @ w_hh.T``, ``dw_ih = x.T @ da``,
    ``dw_hh = h.T @ da``, ``db = sum(da)``.

    Args:
      x: input, ``(batch, d_in)``.
      state: :class:`LSTMState` ``(h, c)``, each ``(batch, hidden)`` (flax's
        carry is ``(c, h)``).
      params: :class:`LSTMParams`.

    Returns:
      The new state ``LSTMState(h', c')``.
    """
    _check("lstm_cell", x, state, params, 4, time=False)
    new, _ = _lstm_step(_input_projection(x, params.w_ih, params.b), state, params)
    return new


def _lstm_cell_fwd(x, state, params):
    _check("lstm_cell", x, state, params, 4, time=False)
    new, gates = _lstm_step(_input_projection(x, params.w_ih, params.b), state, params)
    return new, (x, state, params, gates, new.c)


def _lstm_cell_bwd(res, d_new):
    x, state, p, gates, c = res
    da, dc = _lstm_step_bwd(d_new.h, d_new.c, gates, c, state.c)
    d_params = LSTMParams(x.T @ da, state.h.T @ da, jnp.sum(da, axis=0))
    return da @ p.w_ih.T, LSTMState(da @ p.w_hh.T, dc), d_params


lstm_cell.defvjp(_lstm_cell_fwd, _lstm_cell_bwd)


@op
def gru_cell(x: jax.Array, h: jax.Array, params: GRUParams) -> jax.Array:
    """One GRU step, PyTorch's form (also flax linen's and equinox's):

    ``r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)``,
    ``z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)``,
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``,
    ``h' = (1 - z) * n + z * h``.

    Derivative: ``dn = dh' (1 - z)``, ``dz = dh' (h - n)``; the n pre-activation
    gradient ``dan = dn (1 - n**2)`` reaches the input side whole and the hidden
    side as ``dan * r``; ``dr = dan * (W_hn h + b_hn)``; r and z pre-activations
    get ``d * s(1 - s)``; ``dh = dh' * z + d_hidden @ w_hh.T``.

    Args:
      x: input, ``(batch, d_in)``.
      h: state, ``(batch, hidden)``.
      params: :class:`GRUParams`.

    Returns:
      The new state ``h'``, ``(batch, hidden)``.
    """
    _check("gru_cell", x, h, params, 3, time=False)
    new, _ = _gru_step(_input_projection(x, params.w_ih, params.b_ih), h, params)
    return new


def _gru_cell_fwd(x, h, params):
    _check("gru_cell", x, h, params, 3, time=False)
    new, parts = _gru_step(_input_projection(x, params.w_ih, params.b_ih), h, params)
    return new, (x, h, params, parts)


def _gru_cell_bwd(res, dh_new):
    x, h, p, parts = res
    dxa, dha, dh = _gru_step_bwd(dh_new, h, parts)
    d_params = GRUParams(x.T @ dxa, h.T @ dha, jnp.sum(dxa, axis=0), jnp.sum(dha, axis=0))
    return dxa @ p.w_ih.T, dh + dha @ p.w_hh.T, d_params


gru_cell.defvjp(_gru_cell_fwd, _gru_cell_bwd)


# --- sequences -----------------------------------------------------------------------


def _rnn_scan(xs, h0, p: RNNParams):
    def step(h, xa):
        h = _rnn_step(xa, h, p)
        return h, h

    h_last, hs = jax.lax.scan(step, h0, _input_projection(xs, p.w_ih, p.b))
    return hs, h_last


@op
def rnn(xs: jax.Array, h0: jax.Array, params: RNNParams) -> tuple[jax.Array, jax.Array]:
    """A plain RNN over a sequence: ``h_t = tanh(x_t @ w_ih + h_{t-1} @ w_hh + b)``.

    Derivative: backpropagation through time in one reverse scan carrying
    ``dh``: at each step ``da_t = (dhs_t + dh) * (1 - h_t**2)`` and
    ``dh <- da_t @ w_hh.T``; then ``dxs = da @ w_ih.T``, ``dw_ih = sum_t x_t.T da_t``,
    ``dw_hh = sum_t h_{t-1}.T da_t``, ``db = sum(da)`` as single matrix products.

    Args:
      xs: inputs, time-major ``(time, batch, d_in)``.
      h0: initial state ``(batch, hidden)``.
      params: :class:`RNNParams`.

    Returns:
      ``(hs, h_last)``: every state ``(time, batch, hidden)`` and the last one.
    """
    _check("rnn", xs, h0, params, 1, time=True)
    return _rnn_scan(xs, h0, params)


def _rnn_fwd(xs, h0, params):
    _check("rnn", xs, h0, params, 1, time=True)
    hs, h_last = _rnn_scan(xs, h0, params)
    return (hs, h_last), (xs, h0, params, hs)


def _rnn_bwd(res, cotangents):
    xs, h0, p, hs = res
    dhs, dh_last = cotangents

    def step(dh, inputs):
        dh_t, h_t = inputs
        da = _rnn_step_bwd(dh_t + dh, h_t)
        return da @ p.w_hh.T, da

    dh0, das = jax.lax.scan(step, dh_last, (dhs, hs), reverse=True)
    d_params = RNNParams(
        _flat(xs).T @ _flat(das), _flat(_previous(h0, hs)).T @ _flat(das), jnp.sum(_flat(das), 0)
    )
    return das @ p.w_ih.T, dh0, d_params


rnn.defvjp(_rnn_fwd, _rnn_bwd)


def _lstm_scan(xs, state0, p: LSTMParams):
    def step(state, xa):
        new, gates = _lstm_step(xa, state, p)
        return new, (new.h, new.c, gates)

    last, (hs, cs, gates) = jax.lax.scan(step, state0, _input_projection(xs, p.w_ih, p.b))
    return hs, last, (cs, gates)


@op
def lstm(xs: jax.Array, state0: LSTMState, params: LSTMParams) -> tuple[jax.Array, LSTMState]:
    """An LSTM over a sequence: :func:`lstm_cell` at every time step.

    Derivative: backpropagation through time in one reverse scan carrying
    ``(dh, dc)``, each step the cell's backward without its matrix products for
    the weights; ``dxs``, ``dw_ih``, ``dw_hh`` and ``db`` are then single matrix
    products over all steps. It stores the gate activations and cell states of
    every step (``5 * time * batch * hidden`` numbers).

    Args:
      xs: inputs, time-major ``(time, batch, d_in)``.
      state0: initial :class:`LSTMState`, each ``(batch, hidden)``.
      params: :class:`LSTMParams`.

    Returns:
      ``(hs, last_state)``: every ``h_t`` ``(time, batch, hidden)`` and the final state.
    """
    _check("lstm", xs, state0, params, 4, time=True)
    hs, last, _ = _lstm_scan(xs, state0, params)
    return hs, last


def _lstm_fwd(xs, state0, params):
    _check("lstm", xs, state0, params, 4, time=True)
    hs, last, (cs, gates) = _lstm_scan(xs, state0, params)
    return (hs, last), (xs, state0, params, hs, cs, gates)


def _lstm_bwd(res, cotangents):
    xs, state0, p, hs, cs, gates = res
    dhs, d_last = cotangents

    def step(carry, inputs):
        dh, dc = carry
        dh_t, gates_t, c_t, c_prev = inputs
        da, dc = _lstm_step_bwd(dh_t + dh, dc, gates_t, c_t, c_prev)
        return (da @ p.w_hh.T, dc), da

    carry = (d_last.h, d_last.c)
    (dh0, dc0), das = jax.lax.scan(
        step, carry, (dhs, gates, cs, _previous(state0.c, cs)), reverse=True
    )
    d_params = LSTMParams(
        _flat(xs).T @ _flat(das),
        _flat(_previous(state0.h, hs)).T @ _flat(das),
        jnp.sum(_flat(das), axis=0),
    )
    return das @ p.w_ih.T, LSTMState(dh0, dc0), d_params


lstm.defvjp(_lstm_fwd, _lstm_bwd)


def _gru_scan(xs, h0, p: GRUParams):
    def step(h, xa):
        h, parts = _gru_step(xa, h, p)
        return h, (h, parts)

    h_last, (hs, parts) = jax.lax.scan(step, h0, _input_projection(xs, p.w_ih, p.b_ih))
    return hs, h_last, parts


@op
def gru(xs: jax.Array, h0: jax.Array, params: GRUParams) -> tuple[jax.Array, jax.Array]:
    """A GRU over a sequence: :func:`gru_cell` at every time step.

    Derivative: backpropagation through time in one reverse scan carrying
    ``dh``, each step the cell's backward without its weight products; the
    weight and input gradients are then single matrix products over all steps.

    Args:
      xs: inputs, time-major ``(time, batch, d_in)``.
      h0: initial state ``(batch, hidden)``.
      params: :class:`GRUParams`.

    Returns:
      ``(hs, h_last)``: every state ``(time, batch, hidden)`` and the last one.
    """
    _check("gru", xs, h0, params, 3, time=True)
    hs, h_last, _ = _gru_scan(xs, h0, params)
    return hs, h_last


def _gru_fwd(xs, h0, params):
    _check("gru", xs, h0, params, 3, time=True)
    hs, h_last, parts = _gru_scan(xs, h0, params)
    return (hs, h_last), (xs, h0, params, hs, parts)


def _gru_bwd(res, cotangents):
    xs, h0, p, hs, parts = res
    dhs, dh_last = cotangents

    def step(dh, inputs):
        dh_t, h_prev, parts_t = inputs
        dxa, dha, dh_direct = _gru_step_bwd(dh_t + dh, h_prev, parts_t)
        return dh_direct + dha @ p.w_hh.T, (dxa, dha)

    dh0, (dxas, dhas) = jax.lax.scan(step, dh_last, (dhs, _previous(h0, hs), parts), reverse=True)
    d_params = GRUParams(
        _flat(xs).T @ _flat(dxas),
        _flat(_previous(h0, hs)).T @ _flat(dhas),
        jnp.sum(_flat(dxas), axis=0),
        jnp.sum(_flat(dhas), axis=0),
    )
    return dxas @ p.w_ih.T, dh0, d_params


gru.defvjp(_gru_fwd, _gru_bwd)
