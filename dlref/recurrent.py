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

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from dlref import _checks
from dlref._checks import InputError
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
# ``step(xa, carry, p) -> (new_carry, residuals)`` takes the input projection
# ``xa = x @ w_ih + b`` (computed for all time steps at once in a sequence).
# ``step_bwd(dh, dcarry, residuals, prev, new) -> (dxa, dha, dprev)`` takes the
# gradient of the step's output h and of its new carry, and returns the gradients
# of the input-side and hidden-side pre-activations and the part of the previous
# carry's gradient that does not go through ``w_hh`` (the engine adds ``dha @ w_hh.T``).


def _rnn_step(xa, h, p: RNNParams):
    return jnp.tanh(xa + h @ p.w_hh), ()


def _rnn_step_bwd(dh, dcarry, res, prev, new):
    da = (dh + dcarry) * (1 - new * new)
    return da, da, jnp.zeros_like(prev)


def _lstm_step(xa, state: LSTMState, p: LSTMParams):
    a = xa + state.h @ p.w_hh
    i, f, g, o = jnp.split(a, 4, axis=-1)
    i, f, g, o = sigmoid(i), sigmoid(f), jnp.tanh(g), sigmoid(o)
    c = f * state.c + i * g
    return LSTMState(o * jnp.tanh(c), c), jnp.concatenate([i, f, g, o], axis=-1)


def _lstm_step_bwd(dh, dcarry, gates, prev, new):
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    dh = dh + dcarry.h
    tc = jnp.tanh(new.c)
    dc = dcarry.c + dh * (o * (1 - tc * tc))
    da = jnp.concatenate(
        [
            dc * (g * i * (1 - i)),
            dc * (prev.c * f * (1 - f)),
            dc * (i * (1 - g * g)),
            dh * (tc * o * (1 - o)),
        ],
        axis=-1,
    )
    return da, da, LSTMState(jnp.zeros_like(prev.h), dc * f)


def _gru_step(xa, h, p: GRUParams):
    xr, xz, xn = jnp.split(xa, 3, axis=-1)
    hr, hz, hn = jnp.split(h @ p.w_hh + p.b_hh[None, :], 3, axis=-1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    return (1 - z) * n + z * h, (r, z, n, hn)


def _gru_step_bwd(dh, dcarry, parts, prev, new):
    r, z, n, hn = parts
    dh = dh + dcarry
    dan = dh * ((1 - z) * (1 - n * n))
    dar = dan * (hn * r * (1 - r))
    daz = dh * ((prev - n) * z * (1 - z))
    return jnp.concatenate([dar, daz, dan], -1), jnp.concatenate([dar, daz, dan * r], -1), dh * z


class _Kind(NamedTuple):
    name: str
    gates: int
    step: Callable
    step_bwd: Callable
    input_bias: Callable  # params -> the bias added to the input projection
    grads: Callable  # (dw_ih, dw_hh, db_ih, db_hh) -> the params' gradient


_RNN = _Kind(
    "rnn", 1, _rnn_step, _rnn_step_bwd, lambda p: p.b, lambda wi, wh, bi, bh: RNNParams(wi, wh, bi)
)
_LSTM = _Kind(
    "lstm",
    4,
    _lstm_step,
    _lstm_step_bwd,
    lambda p: p.b,
    lambda wi, wh, bi, bh: LSTMParams(wi, wh, bi),
)
_GRU = _Kind("gru", 3, _gru_step, _gru_step_bwd, lambda p: p.b_ih, GRUParams)


def _input_projection(xs, w_ih, b):
    return xs @ w_ih + b.reshape((1,) * (xs.ndim - 1) + b.shape)


def _project(kind: _Kind, xs, p):
    """The input side of every step at once: ``xs @ w_ih + b``, one matrix product."""
    return _input_projection(xs, p.w_ih, kind.input_bias(p))


def _hidden(carry):
    return carry.h if isinstance(carry, LSTMState) else carry


def _add_hidden(carry, dh):
    return carry._replace(h=carry.h + dh) if isinstance(carry, LSTMState) else carry + dh


# --- the engine: forward scans and backpropagation through time ---------------------


def _run(kind: _Kind, xa, carry0, p):
    """Scan the step over ``xa``: the last carry, every carry, every step's residuals."""

    def step(carry, xa_t):
        new, res = kind.step(xa_t, carry, p)
        return new, (new, res)

    last, (carries, res) = jax.lax.scan(step, carry0, xa)
    return last, carries, res


def _segments(a, every: int):
    return a.reshape((a.shape[0] // every, every, *a.shape[1:]))


def _joined(a):
    return a.reshape((a.shape[0] * a.shape[1], *a.shape[2:]))


def _check_every(fn: str, xs, every) -> None:
    if every is not None and (every < 1 or xs.shape[0] % every):
        raise InputError(
            f"{fn}: `checkpoint_every` must divide the sequence length {xs.shape[0]}; got {every}"
        )


def _sequence(kind: _Kind, xs, carry0, p, every):
    """``(hs, last)``. With ``every``, the scan runs in segments of ``every`` steps,
    each under ``jax.checkpoint`` and each projecting its own inputs: autodiff then
    keeps only the segments' first carries and recomputes the rest."""
    if every is None:
        last, carries, _ = _run(kind, _project(kind, xs, p), carry0, p)
        return _hidden(carries), last

    @jax.checkpoint
    def segment(carry, xs_s):
        last, carries, _ = _run(kind, _project(kind, xs_s, p), carry, p)
        return last, _hidden(carries)

    last, hs = jax.lax.scan(segment, carry0, _segments(xs, every))
    return _joined(hs), last


def _sequence_fwd(kind: _Kind, xs, carry0, p, every):
    """The forward and what BPTT needs: every carry and residual, or with
    ``every`` only the first carry of each segment."""
    if every is None:
        last, carries, res = _run(kind, _project(kind, xs, p), carry0, p)
        return (_hidden(carries), last), (carries, res)

    def segment(carry, xs_s):
        last, carries, _ = _run(kind, _project(kind, xs_s, p), carry, p)
        return last, (carry, _hidden(carries))

    last, (starts, hs) = jax.lax.scan(segment, carry0, _segments(xs, every))
    return (_joined(hs), last), starts


def _stretch_bwd(kind: _Kind, p, xs, carry0, carries, res, dhs, dcarry):
    """Backpropagation through a stretch of steps whose carries and residuals are
    known: one reverse scan carrying the state's gradient; then the weight and
    input gradients as matrix products over the whole stretch."""
    prev = jax.tree.map(_previous, carry0, carries)

    def step(dcarry, inputs):
        dh, res_t, prev_t, new_t = inputs
        dxa, dha, dprev = kind.step_bwd(dh, dcarry, res_t, prev_t, new_t)
        return _add_hidden(dprev, dha @ p.w_hh.T), (dxa, dha)

    dcarry0, (dxa, dha) = jax.lax.scan(step, dcarry, (dhs, res, prev, carries), reverse=True)
    grads = kind.grads(
        _flat(xs).T @ _flat(dxa),
        _flat(_hidden(prev)).T @ _flat(dha),
        jnp.sum(_flat(dxa), axis=0),
        jnp.sum(_flat(dha), axis=0),
    )
    return dcarry0, dxa @ p.w_ih.T, grads


def _sequence_bwd(kind: _Kind, p, xs, carry0, saved, dhs, dlast, every):
    if every is None:
        carries, res = saved
        dcarry0, dxs, grads = _stretch_bwd(kind, p, xs, carry0, carries, res, dhs, dlast)
        return dxs, dcarry0, grads

    def segment(acc, inputs):
        dcarry, grads = acc
        xs_s, start, dhs_s = inputs
        _, carries, res = _run(kind, _project(kind, xs_s, p), start, p)  # recompute the segment
        dcarry, dxs_s, grads_s = _stretch_bwd(kind, p, xs_s, start, carries, res, dhs_s, dcarry)
        return (dcarry, jax.tree.map(jnp.add, grads, grads_s)), dxs_s

    inputs = (_segments(xs, every), saved, _segments(dhs, every))
    zeros = jax.tree.map(jnp.zeros_like, p)
    (dcarry0, grads), dxs = jax.lax.scan(segment, (dlast, zeros), inputs, reverse=True)
    return _joined(dxs), dcarry0, grads


def _cell_fwd(kind: _Kind):
    def fwd(x, state, params):
        _check(f"{kind.name}_cell", x, state, params, kind.gates, time=False)
        xa = _input_projection(x, params.w_ih, kind.input_bias(params))
        new, res = kind.step(xa, state, params)
        stack = lambda t: jax.tree.map(lambda a: a[None], t)  # a sequence of one step
        return new, (x[None], state, params, stack(new), stack(res))

    return fwd


def _cell_bwd(kind: _Kind):
    def bwd(res, d_new):
        xs, state, p, carries, step_res = res
        dhs = jnp.zeros_like(_hidden(carries))
        dstate, dxs, grads = _stretch_bwd(kind, p, xs, state, carries, step_res, dhs, d_new)
        return dxs[0], dstate, grads

    return bwd


def _sequence_op_fwd(kind: _Kind):
    def fwd(xs, state0, params, *, checkpoint_every=None):
        _check(kind.name, xs, state0, params, kind.gates, time=True)
        _check_every(kind.name, xs, checkpoint_every)
        out, saved = _sequence_fwd(kind, xs, state0, params, checkpoint_every)
        return out, (xs, state0, params, saved)

    return fwd


def _sequence_op_bwd(kind: _Kind):
    def bwd(res, cotangents, *, checkpoint_every=None):
        xs, state0, p, saved = res
        dhs, dlast = cotangents
        return _sequence_bwd(kind, p, xs, state0, saved, dhs, dlast, checkpoint_every)

    return bwd


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
    return _rnn_step(_input_projection(x, params.w_ih, params.b), h, params)[0]


rnn_cell.defvjp(_cell_fwd(_RNN), _cell_bwd(_RNN))


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
    return _lstm_step(_input_projection(x, params.w_ih, params.b), state, params)[0]


lstm_cell.defvjp(_cell_fwd(_LSTM), _cell_bwd(_LSTM))


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
    return _gru_step(_input_projection(x, params.w_ih, params.b_ih), h, params)[0]


gru_cell.defvjp(_cell_fwd(_GRU), _cell_bwd(_GRU))


# --- sequences -----------------------------------------------------------------------

_SEQUENCE_DOC = """

    Derivative: backpropagation through time in one reverse ``lax.scan``
    carrying the state's gradient, each step the cell's backward without its
    weight products; the gradients of ``xs`` and of the weights are then single
    matrix products over all steps (autodiff of the forward scan instead
    accumulates them step by step). It stores every step's carry and gate
    activations. With ``checkpoint_every=k`` it stores only the carry at the
    start of each segment of ``k`` steps and, segment by segment from the last,
    recomputes the segment's forward and runs its reverse scan: memory for the
    backward grows as ``T / k + k`` steps instead of ``T`` (``k ~ sqrt(T)`` is
    best), for one more forward pass of compute. ``f.autodiff`` with the same
    option wraps each segment in ``jax.checkpoint``.

    Args:
      xs: inputs, time-major ``(time, batch, d_in)``.
      {state}
      params: {params}.
      checkpoint_every: ``None``, or a segment length dividing ``time``.

    Returns:
      ``(hs, last)``: every hidden state ``(time, batch, hidden)`` and the final {last}.
    """


def _sequence_doc(summary: str, state: str, params: str, last: str) -> str:
    return summary + _SEQUENCE_DOC.format(state=state, params=params, last=last)


@op
def rnn(xs: jax.Array, h0: jax.Array, params: RNNParams, *, checkpoint_every: int | None = None):
    _check("rnn", xs, h0, params, 1, time=True)
    _check_every("rnn", xs, checkpoint_every)
    return _sequence(_RNN, xs, h0, params, checkpoint_every)


rnn.__doc__ = _sequence_doc(
    "A plain RNN over a sequence: ``h_t = tanh(x_t @ w_ih + h_{t-1} @ w_hh + b)``.",
    "h0: initial state ``(batch, hidden)``.",
    ":class:`RNNParams`",
    "state",
)
rnn.defvjp(_sequence_op_fwd(_RNN), _sequence_op_bwd(_RNN))


@op
def lstm(
    xs: jax.Array, state0: LSTMState, params: LSTMParams, *, checkpoint_every: int | None = None
):
    _check("lstm", xs, state0, params, 4, time=True)
    _check_every("lstm", xs, checkpoint_every)
    return _sequence(_LSTM, xs, state0, params, checkpoint_every)


lstm.__doc__ = _sequence_doc(
    "An LSTM over a sequence: :func:`lstm_cell` at every time step.",
    "state0: initial :class:`LSTMState`, each ``(batch, hidden)``.",
    ":class:`LSTMParams`",
    ":class:`LSTMState`",
)
lstm.defvjp(_sequence_op_fwd(_LSTM), _sequence_op_bwd(_LSTM))


@op
def gru(xs: jax.Array, h0: jax.Array, params: GRUParams, *, checkpoint_every: int | None = None):
    _check("gru", xs, h0, params, 3, time=True)
    _check_every("gru", xs, checkpoint_every)
    return _sequence(_GRU, xs, h0, params, checkpoint_every)


gru.__doc__ = _sequence_doc(
    "A GRU over a sequence: :func:`gru_cell` at every time step.",
    "h0: initial state ``(batch, hidden)``.",
    ":class:`GRUParams`",
    "state",
)
gru.defvjp(_sequence_op_fwd(_GRU), _sequence_op_bwd(_GRU))
