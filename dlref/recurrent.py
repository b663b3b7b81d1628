"""Recurrent networks: RNN, LSTM and GRU cells, whole sequences with ``lax.scan``,
and backpropagation through time written by hand.

Layouts (batch first inside a step, time first over a sequence):

- a step takes ``x: (batch, d_in)`` and a state ``(batch, hidden)``;
- a sequence is **time-major**, ``xs: (time, batch, d_in)``, and the outputs
  ``hs`` are ``(time, batch, hidden)``. From batch-major data (flax's ``nn.RNN``
  default, PyTorch's ``batch_first=True``) use ``jnp.swapaxes(x, 0, 1)``.
- weights are ``(d_in, gates * hidden)`` and ``(hidden, gates * hidden)``, gates
  side by side in PyTorch's order: LSTM ``i, f, g, o``; GRU ``r, z, n``.

Each kind has one section: its cell, with the step forward and step backward
right under it, then its sequence, with the sequence's forward and
backpropagation through time right under that. The sequences share one scan
engine (``_sequence``, ``_sequence_fwd``, ``_bptt``), to which each passes its
own step functions by name. See :mod:`dlref.convert` for PyTorch and flax
parameter layouts.
"""

from __future__ import annotations

import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp

from dlref import _checks
from dlref._checks import InputError
from dlref._numerics import bias_row
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

_sigmoid = jax.lax.logistic  # the stable primitive dlref.activations.sigmoid uses


class RNNParams(NamedTuple):
    """Parameters of a plain RNN."""

    w_ih: jax.Array  # (d_in, hidden)
    w_hh: jax.Array  # (hidden, hidden)
    b: jax.Array  # (hidden,): PyTorch's b_ih + b_hh


class LSTMParams(NamedTuple):
    """Parameters of an LSTM, gates ``i, f, g, o`` side by side."""

    w_ih: jax.Array  # (d_in, 4 * hidden)
    w_hh: jax.Array  # (hidden, 4 * hidden)
    b: jax.Array  # (4 * hidden,): PyTorch's b_ih + b_hh


class LSTMState(NamedTuple):
    """The LSTM's state: hidden ``h`` and cell ``c``, each ``(batch, hidden)``
    (flax's carry is ``(c, h)``)."""

    h: jax.Array
    c: jax.Array


class GRUParams(NamedTuple):
    """Parameters of a GRU, gates ``r, z, n`` side by side."""

    w_ih: jax.Array  # (d_in, 3 * hidden)
    w_hh: jax.Array  # (hidden, 3 * hidden)
    b_ih: jax.Array  # (3 * hidden,)
    b_hh: jax.Array  # (3 * hidden,): b_hn must stay apart, inside r * (W_hn h + b_hn)


# --- initializers ----------------------------------------------------------------


def _uniform(key, shape, bound, dtype):
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def init_rnn(key: jax.Array, d_in: int, hidden: int, dtype=jnp.float32) -> RNNParams:
    """PyTorch's initialization: every entry uniform in +-1/sqrt(hidden).

    Examples:
      >>> import jax
      >>> from dlref import recurrent as rec
      >>> [a.shape for a in rec.init_rnn(jax.random.key(0), 3, 4)]
      [(3, 4), (4, 4), (4,)]

    References:
      PyTorch, `nn.RNN <https://pytorch.org/docs/stable/generated/torch.nn.RNN.html>`_
      (the same bound for every weight and bias).
    """
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
    gate's, ``forget_bias`` (1 by default, so that the cell remembers at first;
    PyTorch draws it at random, flax sets 0).

    Examples:
      >>> import jax
      >>> from dlref import recurrent as rec
      >>> params = rec.init_lstm(jax.random.key(0), 3, 4, forget_bias=2.0)
      >>> params.w_ih.shape, params.b.reshape(4, 4)[:, 0].tolist()  # gates i, f, g, o
      ((3, 16), [0.0, 2.0, 0.0, 0.0])

    References:
      Gers, Schmidhuber and Cummins, `Learning to forget: continual prediction
      with LSTM <https://doi.org/10.1162/089976600300015015>`_, Neural
      Computation 12(10), 2000 (the forget gate).

      Jozefowicz, Zaremba and Sutskever, `An empirical exploration of recurrent
      network architectures <https://proceedings.mlr.press/v37/jozefowicz15.html>`_,
      ICML 2015 (a forget bias of 1).
    """
    k1, k2 = jax.random.split(key)
    bound = hidden**-0.5
    b = jnp.zeros((4, hidden), dtype).at[1].set(forget_bias).reshape(-1)
    return LSTMParams(
        _uniform(k1, (d_in, 4 * hidden), bound, dtype),
        _uniform(k2, (hidden, 4 * hidden), bound, dtype),
        b,
    )


def init_gru(key: jax.Array, d_in: int, hidden: int, dtype=jnp.float32) -> GRUParams:
    """PyTorch's initialization: every entry uniform in +-1/sqrt(hidden).

    Examples:
      >>> import jax
      >>> from dlref import recurrent as rec
      >>> [a.shape for a in rec.init_gru(jax.random.key(0), 3, 4)]
      [(3, 12), (4, 12), (12,), (12,)]

    References:
      PyTorch, `nn.GRU <https://pytorch.org/docs/stable/generated/torch.nn.GRU.html>`_
      (the same bound for every weight and bias).
    """
    k1, k2, k3, k4 = jax.random.split(key, 4)
    bound = hidden**-0.5
    return GRUParams(
        _uniform(k1, (d_in, 3 * hidden), bound, dtype),
        _uniform(k2, (hidden, 3 * hidden), bound, dtype),
        _uniform(k3, (3 * hidden,), bound, dtype),
        _uniform(k4, (3 * hidden,), bound, dtype),
    )


def zeros_state(batch: int, hidden: int, dtype=jnp.float32, *, lstm: bool = False):
    """The zero initial state: ``(batch, hidden)``, or an :class:`LSTMState` of two.

    Examples:
      >>> from dlref import recurrent as rec
      >>> rec.zeros_state(2, 4).shape, rec.zeros_state(2, 4, lstm=True).c.shape
      ((2, 4), (2, 4))

    References:
      flax, ``nn.LSTMCell.initialize_carry`` (zeros too, but ordered ``(c, h)``).
    """
    h = jnp.zeros((batch, hidden), dtype)
    return LSTMState(h, h) if lstm else h


# --- checks ----------------------------------------------------------------------


def _check(fn: str, x, state, params, gates: int, x_name: str, state_name: str) -> None:
    """Floating arrays of one dtype whose shapes agree with the parameters; a
    sequence's ``xs`` (``x_name == "xs"``) is time-major."""
    if (gates == 4) != isinstance(state, LSTMState):
        expected = "an LSTMState (h, c)" if gates == 4 else "an array (batch, hidden)"
        raise InputError(f"{fn}: `{state_name}` must be {expected}; got {type(state).__name__}")
    states = state._asdict() if isinstance(state, LSTMState) else {"": state}
    state_leaves = {f"{state_name}.{k}" if k else state_name: v for k, v in states.items()}
    arrays = {x_name: x, **{f"params.{k}": v for k, v in params._asdict().items()}}
    arrays.update(state_leaves)
    _checks.floating(fn, **arrays)
    _checks.same_dtype(fn, **arrays)
    time = x_name == "xs"
    _checks.rank(fn, x_name, x, 3 if time else 2)
    d_in, batch, hidden = x.shape[-1], x.shape[-2], params.w_hh.shape[0]
    if time:
        _check_time_major(fn, x, state_leaves)
    layout = "xs is (time, batch, d_in)" if time else "x is (batch, d_in)"
    _checks.shape(fn, "params.w_ih", params.w_ih, (d_in, gates * hidden), layout)
    _checks.shape(
        fn, "params.w_hh", params.w_hh, (hidden, gates * hidden), "(hidden, gates*hidden)"
    )
    for name, value in arrays.items():
        if name.startswith("params.b"):
            _checks.shape(fn, name, value, (gates * hidden,), "(gates * hidden,)")
    for name, value in state_leaves.items():
        _checks.shape(fn, name, value, (batch, hidden), f"(batch, hidden), batch from {x_name}")


def _check_time_major(fn: str, xs, state_leaves: dict) -> None:
    """Batch-major ``xs`` is named as such, rather than blamed on the state."""
    name, h = next(iter(state_leaves.items()))
    if jnp.ndim(h) == 2 and xs.shape[1] != h.shape[0] == xs.shape[0]:
        raise InputError(
            f"{fn}: `xs` must be time-major (time, batch, d_in) with batch {h.shape[0]} "
            f"(that of `{name}`); got shape {tuple(xs.shape)}, whose first two axes look "
            "swapped: pass batch-major data as jnp.swapaxes(xs, 0, 1)"
        )


def _segment_length(fn: str, xs, every) -> int | None:
    """``checkpoint_every`` as a Python int that divides the sequence length, or None."""
    if every is None:
        return None
    try:
        k = operator.index(every)  # an int, or a concrete integer scalar (np.array(2))
    except TypeError:
        k = 0
    if isinstance(every, bool) or k < 1 or xs.shape[0] % k:
        raise InputError(
            f"{fn}: `checkpoint_every` must be None or a positive integer that divides the "
            f"sequence length {xs.shape[0]}; got {every!r}"
        )
    return k


# --- the engine: sequences over time, and backpropagation through time --------------
# Each sequence op passes its cell's step functions by name:
#   step(xa, carry, p) -> (new, residuals): one step, given its input side
#     ``xa = x @ w_ih + b`` (for a sequence, one matrix product for every step);
#   step_bwd(d_new, residuals, prev, new, p) -> (da, dprev): from the gradient of
#     the new carry, those of the pre-activations and of the previous carry. ``da``
#     is one array where the input and hidden sides share a pre-activation
#     ``xa + h @ w_hh`` (RNN, LSTM); it is the pair ``(dxa, dha)`` where they do
#     not (GRU's ``n``), and the hidden side then has a bias of its own.


def _project(xs, w_ih, b):
    """The input side of every step at once: ``xs @ w_ih + b``, one matrix product."""
    return xs @ w_ih + bias_row(b, xs.ndim)


def _hidden(carry):
    return carry.h if isinstance(carry, LSTMState) else carry


def _add_hidden(carry, dh):
    return carry._replace(h=carry.h + dh) if isinstance(carry, LSTMState) else carry + dh


def _flat(a):
    """Merge every axis but the last: (time, batch, k) -> (time * batch, k)."""
    return a.reshape(-1, a.shape[-1])


def _previous(first, seq):
    """The states before each step: ``first`` then ``seq[:-1]``."""
    return jnp.concatenate([first[None], seq[:-1]], axis=0)


def _segments(a, every: int):
    return a.reshape((a.shape[0] // every, every, *a.shape[1:]))


def _joined(a):
    return a.reshape((a.shape[0] * a.shape[1], *a.shape[2:]))


def _scan(step, xa, carry0, p):
    """``step`` over every ``xa``: the last carry, every carry, every step's residuals."""

    def body(carry, xa_t):
        new, res = step(xa_t, carry, p)
        return new, (new, res)

    last, (carries, res) = jax.lax.scan(body, carry0, xa)
    return last, carries, res


def _sequence(step, xs, carry0, p, bias, every: int | None):
    """``(hs, last)``: the forward that autodiff differentiates. With ``every``,
    the scan runs in segments of ``every`` steps, each under ``jax.checkpoint`` and
    each projecting its own inputs: autodiff then keeps only the segments' first
    carries and recomputes the rest."""
    if every is None:
        last, carries, _ = _scan(step, _project(xs, p.w_ih, bias), carry0, p)
        return _hidden(carries), last

    @jax.checkpoint
    def segment(carry, xs_s):
        last, carries, _ = _scan(step, _project(xs_s, p.w_ih, bias), carry, p)
        return last, _hidden(carries)

    last, hs = jax.lax.scan(segment, carry0, _segments(xs, every))
    return _joined(hs), last


def _sequence_fwd(step, xs, carry0, p, bias, every: int | None):
    """``(hs, last)`` and what BPTT needs: ``(xs, carry0, p, saved)``, where
    ``saved`` is every carry and every step's residuals or, with ``every``, only
    the first carry of each segment."""
    if every is None:
        last, carries, res = _scan(step, _project(xs, p.w_ih, bias), carry0, p)
        return (_hidden(carries), last), (xs, carry0, p, (carries, res))

    def segment(carry, xs_s):
        last, carries, _ = _scan(step, _project(xs_s, p.w_ih, bias), carry, p)
        return last, (carry, _hidden(carries))

    last, (starts, hs) = jax.lax.scan(segment, carry0, _segments(xs, every))
    return (_joined(hs), last), (xs, carry0, p, starts)


def _weights_bwd(xs, hs_prev, w_ih, da):
    """Through the weights, as matrix products over every step and example at
    once: ``dxs = dxa @ w_ih.T`` and ``(dw_ih, dw_hh, db)`` with
    ``dw_ih = xs.T @ dxa``, ``dw_hh = hs_prev.T @ dha``, ``db = sum(dxa)``, and,
    for a pair ``(dxa, dha)``, the hidden bias's ``sum(dha)`` last."""
    dxa, dha = da if isinstance(da, tuple) else (da, da)
    grads = (_flat(xs).T @ _flat(dxa), _flat(hs_prev).T @ _flat(dha), jnp.sum(_flat(dxa), axis=0))
    if isinstance(da, tuple):
        grads += (jnp.sum(_flat(dha), axis=0),)
    return dxa @ w_ih.T, grads


def _stretch_bwd(step_bwd, xs, carry0, carries, res, p, dhs, dlast):
    """BPTT through steps whose carries and residuals are known: one reverse scan
    of ``step_bwd`` carrying the state's gradient (the output's ``dhs[t]`` added
    to its ``h`` at each step), then :func:`_weights_bwd` over the whole stretch."""
    prev = jax.tree.map(_previous, carry0, carries)

    def body(dcarry, inputs):
        dh, res_t, prev_t, new_t = inputs
        da, dprev = step_bwd(_add_hidden(dcarry, dh), res_t, prev_t, new_t, p)
        return dprev, da

    dcarry0, da = jax.lax.scan(body, dlast, (dhs, res, prev, carries), reverse=True)
    dxs, grads = _weights_bwd(xs, _hidden(prev), p.w_ih, da)
    return dcarry0, dxs, grads


def _bptt(step, step_bwd, xs, carry0, p, bias, saved, dy, every: int | None):
    """Backpropagation through time, given the gradients ``dy = (dhs, dlast)`` of
    the outputs: ``(dxs, dcarry0, (dw_ih, dw_hh, db...))``.
    With ``every``, segment by segment from the last: recompute the segment's
    forward from its saved first carry, then run its reverse scan."""
    dhs, dlast = dy
    if xs.shape[0] == 0:  # no step: the last state is the first, and nothing else counts
        return jnp.zeros_like(xs), dlast, tuple(jnp.zeros_like(a) for a in p)
    if every is None:
        carries, res = saved
        dcarry0, dxs, grads = _stretch_bwd(step_bwd, xs, carry0, carries, res, p, dhs, dlast)
        return dxs, dcarry0, grads

    def segment(acc, inputs):
        dcarry, grads = acc
        xs_s, start, dhs_s = inputs
        _, carries, res = _scan(step, _project(xs_s, p.w_ih, bias), start, p)
        dcarry, dxs_s, grads_s = _stretch_bwd(step_bwd, xs_s, start, carries, res, p, dhs_s, dcarry)
        return (dcarry, jax.tree.map(jnp.add, grads, grads_s)), dxs_s

    inputs = (_segments(xs, every), saved, _segments(dhs, every))
    zeros = tuple(jnp.zeros_like(a) for a in p)
    (dcarry0, grads), dxs = jax.lax.scan(segment, (dlast, zeros), inputs, reverse=True)
    return _joined(dxs), dcarry0, grads


# --- RNN ---------------------------------------------------------------------------


@op
def rnn_cell(x: jax.Array, h: jax.Array, params: RNNParams) -> jax.Array:
    """One step of a plain (Elman) RNN: ``h' = tanh(x @ w_ih + h @ w_hh + b)``.

    Derivative: with ``da = dh' * (1 - h'**2)``: ``dx = da @ w_ih.T``,
    ``dh = da @ w_hh.T``, ``dw_ih = x.T @ da``, ``dw_hh = h.T @ da``,
    ``db = sum(da)`` over the batch.

    Args:
      x: input, ``(batch, d_in)``.
      h: state, ``(batch, hidden)``.
      params: :class:`RNNParams`.

    Returns:
      The new state ``h'``, ``(batch, hidden)``.

    Numerics: ``tanh'`` is taken from the output, ``1 - h'**2`` (as autodiff
    does), exactly 0 where ``h'`` rounds to +-1.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import recurrent as rec
      >>> params = rec.init_rnn(jax.random.key(0), 3, 4)
      >>> rec.rnn_cell(jnp.ones((2, 3), jnp.float32), rec.zeros_state(2, 4), params).shape
      (2, 4)

    References:
      Elman, `Finding structure in time
      <https://doi.org/10.1207/s15516709cog1402_1>`_, Cognitive Science 14(2), 1990.
    """
    _check("rnn_cell", x, h, params, 1, "x", "h")
    return _rnn_step(_project(x, params.w_ih, params.b), h, params)[0]


def _rnn_step(xa, h, p: RNNParams):
    return jnp.tanh(xa + h @ p.w_hh), ()


def _rnn_step_bwd(d_new, res, prev, new, p: RNNParams):
    da = d_new * (1 - new * new)
    return da, da @ p.w_hh.T


def _rnn_cell_fwd(x, h, params):
    _check("rnn_cell", x, h, params, 1, "x", "h")
    new, res = _rnn_step(_project(x, params.w_ih, params.b), h, params)
    return new, (x, h, params, new, res)


def _rnn_cell_bwd(res, d_new):
    x, h, params, new, step_res = res
    da, dh = _rnn_step_bwd(d_new, step_res, h, new, params)
    dx, dparams = _weights_bwd(x, h, params.w_ih, da)
    return dx, dh, RNNParams(*dparams)


rnn_cell.defvjp(_rnn_cell_fwd, _rnn_cell_bwd)


@op
def rnn(xs: jax.Array, h0: jax.Array, params: RNNParams, *, checkpoint_every: int | None = None):
    """A plain RNN over a sequence: :func:`rnn_cell` at every time step.

    For ``t = 1..T``: ``h_t = tanh(x_t @ w_ih + h_{t-1} @ w_hh + b)``. The input
    side ``xs @ w_ih + b`` is one matrix product for every step; the scan runs
    the rest.

    Layout: time-major. ``xs`` is ``(time, batch, d_in)``, ``hs`` is
    ``(time, batch, hidden)``. Batch-major data ``(batch, time, d_in)`` (flax's
    ``nn.RNN``, PyTorch's ``batch_first=True``) goes in as
    ``jnp.swapaxes(xs, 0, 1)``, and ``hs`` comes back the same way.

    Derivative (backpropagation through time): one reverse ``lax.scan`` from the
    last step, carrying ``dh``, the gradient of the state. At step ``t``, with
    ``dh`` the carried gradient plus the output's ``dhs[t]``:
    ``da_t = dh * (1 - h_t**2)`` and the carry becomes ``dh = da_t @ w_hh.T``;
    what is left at the first step is the gradient of ``h0``. Then, as single
    matrix products over every step (autodiff of the forward scan accumulates
    them step by step): ``dxs = da @ w_ih.T``, ``dw_ih = sum_t x_t.T @ da_t``,
    ``dw_hh = sum_t h_{t-1}.T @ da_t``, ``db = sum(da)``. The backward stores
    every ``h_t`` (``hidden`` numbers per example and step).

    Rematerialization: with ``checkpoint_every=k``, the forward keeps only the
    state at the start of each segment of ``k`` steps; the backward, segment by
    segment from the last, recomputes the segment's forward and runs its reverse
    scan. Memory grows as ``T / k + k`` steps instead of ``T`` (``k ~ sqrt(T)``
    is best), for one more forward pass of compute. ``rnn.autodiff`` with the
    same option wraps each segment in ``jax.checkpoint``.

    No steps (``T = 0``): ``hs`` is ``(0, batch, hidden)`` and the last state is
    ``h0``; the gradient of ``h0`` is the last state's, those of ``xs`` and
    ``params`` are 0.

    Args:
      xs: inputs, time-major ``(time, batch, d_in)``.
      h0: initial state, ``(batch, hidden)`` (:func:`zeros_state`).
      params: :class:`RNNParams`.
      checkpoint_every: ``None`` (store every step), or a segment length that
        divides ``time``: a Python int (a concrete NumPy or JAX integer scalar is
        taken as its value).

    Returns:
      ``(hs, last)``: every ``h_t``, ``(time, batch, hidden)``, and the last state.

    Raises:
      InputError: a wrong rank, shape or dtype; batch-major ``xs`` (named as
        such); a ``checkpoint_every`` that does not divide ``time``.

    Numerics: ``tanh'`` is taken from the outputs, ``1 - h**2`` (as autodiff
    does). The gradient reaching ``h0`` is a product of ``T`` Jacobians
    ``diag(1 - h_t**2) @ w_hh.T``: it vanishes (or explodes) geometrically with
    ``T``, the plain RNN's known failure (see ``examples/``).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import recurrent as rec
      >>> params = rec.init_rnn(jax.random.key(0), 3, 4)
      >>> batch_major = jnp.ones((2, 6, 3), jnp.float32)  # (batch, time, d_in)
      >>> hs, last = rec.rnn(jnp.swapaxes(batch_major, 0, 1), rec.zeros_state(2, 4), params)
      >>> hs.shape, bool(jnp.all(hs[-1] == last))
      ((6, 2, 4), True)

    References:
      Elman, `Finding structure in time
      <https://doi.org/10.1207/s15516709cog1402_1>`_, Cognitive Science 14(2), 1990.

      Werbos, `Backpropagation through time: what it does and how to do it
      <https://doi.org/10.1109/5.58337>`_, Proceedings of the IEEE 78(10), 1990.

      Chen, Xu, Zhang and Guestrin, `Training deep nets with sublinear memory
      cost <https://arxiv.org/abs/1604.06174>`_, 2016.
    """
    _check("rnn", xs, h0, params, 1, "xs", "h0")
    every = _segment_length("rnn", xs, checkpoint_every)
    return _sequence(_rnn_step, xs, h0, params, params.b, every)


def _rnn_fwd(xs, h0, params, *, checkpoint_every=None):
    _check("rnn", xs, h0, params, 1, "xs", "h0")
    every = _segment_length("rnn", xs, checkpoint_every)
    return _sequence_fwd(_rnn_step, xs, h0, params, params.b, every)


def _rnn_bwd(res, dy, *, checkpoint_every=None):
    """BPTT: :func:`_rnn_step_bwd` in one reverse scan (``_bptt``)."""
    xs, h0, params, saved = res
    dxs, dh0, dparams = _bptt(
        _rnn_step, _rnn_step_bwd, xs, h0, params, params.b, saved, dy, checkpoint_every
    )
    return dxs, dh0, RNNParams(*dparams)


rnn.defvjp(_rnn_fwd, _rnn_bwd)


# --- LSTM --------------------------------------------------------------------------


@op
def lstm_cell(x: jax.Array, state: LSTMState, params: LSTMParams) -> LSTMState:
    """One LSTM step (gates i, f, g, o, as PyTorch and flax):

    ``[i, f, g, o] = x @ w_ih + h @ w_hh + b``; ``i, f, o = sigmoid(.)``,
    ``g = tanh(.)``; ``c' = f * c + i * g``; ``h' = o * tanh(c')``.

    Derivative: with ``dc_total = dc' + dh' * o * (1 - tanh(c')**2)``, the
    pre-activation gradient ``da`` is ``[dc_total * g * i(1 - i),
    dc_total * c * f(1 - f), dc_total * i * (1 - g**2), dh' * tanh(c') * o(1 - o)]``;
    ``dc = dc_total * f``; then, as in a dense layer, ``dx = da @ w_ih.T``,
    ``dh = da @ w_hh.T``, ``dw_ih = x.T @ da``, ``dw_hh = h.T @ da``,
    ``db = sum(da)`` over the batch.

    Args:
      x: input, ``(batch, d_in)``.
      state: :class:`LSTMState` ``(h, c)``, each ``(batch, hidden)`` (flax's
        carry is ``(c, h)``).
      params: :class:`LSTMParams`.

    Returns:
      The new state ``LSTMState(h', c')``.

    Numerics: sigmoid is ``jax.lax.logistic``, stable in both tails; the
    derivatives are taken from the activations, ``s(1 - s)`` and
    ``1 - tanh**2`` (as autodiff does), exactly 0 for a saturated gate.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import recurrent as rec
      >>> params = rec.init_lstm(jax.random.key(0), 3, 4)
      >>> x, state = jnp.ones((2, 3), jnp.float32), rec.zeros_state(2, 4, lstm=True)
      >>> state = rec.lstm_cell(x, state, params)
      >>> state.h.shape, state.c.shape
      ((2, 4), (2, 4))

    References:
      Hochreiter and Schmidhuber, `Long short-term memory
      <https://doi.org/10.1162/neco.1997.9.8.1735>`_, Neural Computation 9(8), 1997.

      Gers, Schmidhuber and Cummins, `Learning to forget: continual prediction
      with LSTM <https://doi.org/10.1162/089976600300015015>`_, Neural
      Computation 12(10), 2000 (the forget gate ``f``).
    """
    _check("lstm_cell", x, state, params, 4, "x", "state")
    return _lstm_step(_project(x, params.w_ih, params.b), state, params)[0]


def _lstm_step(xa, state: LSTMState, p: LSTMParams):
    a = xa + state.h @ p.w_hh
    i, f, g, o = jnp.split(a, 4, axis=-1)
    i, f, g, o = _sigmoid(i), _sigmoid(f), jnp.tanh(g), _sigmoid(o)
    c = f * state.c + i * g
    return LSTMState(o * jnp.tanh(c), c), jnp.concatenate([i, f, g, o], axis=-1)


def _lstm_step_bwd(d_new: LSTMState, gates, prev: LSTMState, new: LSTMState, p: LSTMParams):
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    dh = d_new.h
    tc = jnp.tanh(new.c)
    dc = d_new.c + dh * (o * (1 - tc * tc))
    da = jnp.concatenate(
        [
            dc * (g * i * (1 - i)),
            dc * (prev.c * f * (1 - f)),
            dc * (i * (1 - g * g)),
            dh * (tc * o * (1 - o)),
        ],
        axis=-1,
    )
    return da, LSTMState(da @ p.w_hh.T, dc * f)


def _lstm_cell_fwd(x, state, params):
    _check("lstm_cell", x, state, params, 4, "x", "state")
    new, gates = _lstm_step(_project(x, params.w_ih, params.b), state, params)
    return new, (x, state, params, new, gates)


def _lstm_cell_bwd(res, d_new):
    x, state, params, new, gates = res
    da, dstate = _lstm_step_bwd(d_new, gates, state, new, params)
    dx, dparams = _weights_bwd(x, state.h, params.w_ih, da)
    return dx, dstate, LSTMParams(*dparams)


lstm_cell.defvjp(_lstm_cell_fwd, _lstm_cell_bwd)


@op
def lstm(
    xs: jax.Array, state0: LSTMState, params: LSTMParams, *, checkpoint_every: int | None = None
):
    """An LSTM over a sequence: :func:`lstm_cell` at every time step.

    For ``t = 1..T``: ``[i, f, g, o] = x_t @ w_ih + h_{t-1} @ w_hh + b``;
    ``i, f, o = sigmoid(.)``, ``g = tanh(.)``; ``c_t = f * c_{t-1} + i * g``;
    ``h_t = o * tanh(c_t)``. The input side ``xs @ w_ih + b`` is one matrix
    product for every step; the scan runs the rest.

    Layout: time-major. ``xs`` is ``(time, batch, d_in)``, ``hs`` is
    ``(time, batch, hidden)``. Batch-major data ``(batch, time, d_in)`` (flax's
    ``nn.RNN``, PyTorch's ``batch_first=True``) goes in as
    ``jnp.swapaxes(xs, 0, 1)``, and ``hs`` comes back the same way.

    Derivative (backpropagation through time): one reverse ``lax.scan`` from the
    last step, carrying ``(dh, dc)``, the gradient of the state. At step ``t``,
    with ``dh`` the carried gradient plus the output's ``dhs[t]``:
    ``dc_total = dc + dh * o * (1 - tanh(c_t)**2)``; the pre-activation gradient
    is ``da_t = [dc_total * g * i(1 - i), dc_total * c_{t-1} * f(1 - f),
    dc_total * i * (1 - g**2), dh * tanh(c_t) * o(1 - o)]``; the carry becomes
    ``dh = da_t @ w_hh.T`` and ``dc = dc_total * f``. What is left at the first
    step is the gradient of ``state0``. Then, as single matrix products over
    every step (autodiff of the forward scan accumulates them step by step):
    ``dxs = da @ w_ih.T``, ``dw_ih = sum_t x_t.T @ da_t``,
    ``dw_hh = sum_t h_{t-1}.T @ da_t``, ``db = sum(da)``. The backward stores,
    per step, ``h_t``, ``c_t`` and the four gate activations (``6 * hidden``
    numbers per example).

    Rematerialization: with ``checkpoint_every=k``, the forward keeps only the
    state at the start of each segment of ``k`` steps; the backward, segment by
    segment from the last, recomputes the segment's forward and runs its reverse
    scan. Memory grows as ``T / k + k`` steps instead of ``T`` (``k ~ sqrt(T)``
    is best), for one more forward pass of compute. ``lstm.autodiff`` with the
    same option wraps each segment in ``jax.checkpoint``.

    No steps (``T = 0``): ``hs`` is ``(0, batch, hidden)`` and the last state is
    ``state0``; the gradient of ``state0`` is the last state's, those of ``xs``
    and ``params`` are 0.

    Args:
      xs: inputs, time-major ``(time, batch, d_in)``.
      state0: initial :class:`LSTMState`, each ``(batch, hidden)``
        (:func:`zeros_state` with ``lstm=True``).
      params: :class:`LSTMParams`.
      checkpoint_every: ``None`` (store every step), or a segment length that
        divides ``time``: a Python int (a concrete NumPy or JAX integer scalar is
        taken as its value).

    Returns:
      ``(hs, last)``: every ``h_t``, ``(time, batch, hidden)``, and the last
      :class:`LSTMState`.

    Raises:
      InputError: a wrong rank, shape or dtype; batch-major ``xs`` (named as
        such); a ``checkpoint_every`` that does not divide ``time``.

    Numerics: sigmoid is ``jax.lax.logistic``, stable in both tails; the
    derivatives are taken from the activations, ``s(1 - s)`` and
    ``1 - tanh**2`` (as autodiff does), exactly 0 for a saturated gate. Along
    the cell state the gradient is multiplied by ``f`` at each step, not by a
    weight matrix: with the forget gates open it reaches far back, where a
    plain RNN's vanishes (see ``examples/``).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import recurrent as rec
      >>> params = rec.init_lstm(jax.random.key(0), 3, 4)
      >>> xs = jnp.ones((6, 2, 3), jnp.float32)  # (time, batch, d_in)
      >>> state0 = rec.zeros_state(2, 4, lstm=True)
      >>> hs, last = rec.lstm(xs, state0, params)
      >>> hs.shape, last.c.shape
      ((6, 2, 4), (2, 4))
      >>> loss = lambda p: rec.lstm(xs, state0, p, checkpoint_every=3)[1].h.sum()
      >>> jax.grad(loss)(params).w_hh.shape
      (4, 16)

    References:
      Hochreiter and Schmidhuber, `Long short-term memory
      <https://doi.org/10.1162/neco.1997.9.8.1735>`_, Neural Computation 9(8), 1997.

      Gers, Schmidhuber and Cummins, `Learning to forget: continual prediction
      with LSTM <https://doi.org/10.1162/089976600300015015>`_, Neural
      Computation 12(10), 2000 (the forget gate ``f``).

      Werbos, `Backpropagation through time: what it does and how to do it
      <https://doi.org/10.1109/5.58337>`_, Proceedings of the IEEE 78(10), 1990.

      Chen, Xu, Zhang and Guestrin, `Training deep nets with sublinear memory
      cost <https://arxiv.org/abs/1604.06174>`_, 2016.
    """
    _check("lstm", xs, state0, params, 4, "xs", "state0")
    every = _segment_length("lstm", xs, checkpoint_every)
    return _sequence(_lstm_step, xs, state0, params, params.b, every)


def _lstm_fwd(xs, state0, params, *, checkpoint_every=None):
    _check("lstm", xs, state0, params, 4, "xs", "state0")
    every = _segment_length("lstm", xs, checkpoint_every)
    return _sequence_fwd(_lstm_step, xs, state0, params, params.b, every)


def _lstm_bwd(res, dy, *, checkpoint_every=None):
    """BPTT: :func:`_lstm_step_bwd` in one reverse scan (``_bptt``)."""
    xs, state0, params, saved = res
    dxs, dstate0, dparams = _bptt(
        _lstm_step, _lstm_step_bwd, xs, state0, params, params.b, saved, dy, checkpoint_every
    )
    return dxs, dstate0, LSTMParams(*dparams)


lstm.defvjp(_lstm_fwd, _lstm_bwd)


# --- GRU ---------------------------------------------------------------------------


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
    get ``d * s(1 - s)``. With ``dxa`` and ``dha`` the input- and hidden-side
    gradients: ``dx = dxa @ w_ih.T``, ``dh = dh' * z + dha @ w_hh.T``,
    ``dw_ih = x.T @ dxa``, ``dw_hh = h.T @ dha``, ``db_ih = sum(dxa)``,
    ``db_hh = sum(dha)``.

    Args:
      x: input, ``(batch, d_in)``.
      h: state, ``(batch, hidden)``.
      params: :class:`GRUParams`.

    Returns:
      The new state ``h'``, ``(batch, hidden)``.

    Numerics: sigmoid is ``jax.lax.logistic``, stable in both tails; the
    derivatives are taken from the activations, ``s(1 - s)`` and
    ``1 - tanh**2`` (as autodiff does), exactly 0 for a saturated gate.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import recurrent as rec
      >>> params = rec.init_gru(jax.random.key(0), 3, 4)
      >>> rec.gru_cell(jnp.ones((2, 3), jnp.float32), rec.zeros_state(2, 4), params).shape
      (2, 4)

    References:
      Cho et al., `Learning phrase representations using RNN encoder-decoder for
      statistical machine translation <https://arxiv.org/abs/1406.1078>`_,
      EMNLP 2014.
    """
    _check("gru_cell", x, h, params, 3, "x", "h")
    return _gru_step(_project(x, params.w_ih, params.b_ih), h, params)[0]


def _gru_step(xa, h, p: GRUParams):
    xr, xz, xn = jnp.split(xa, 3, axis=-1)
    hr, hz, hn = jnp.split(h @ p.w_hh + p.b_hh[None, :], 3, axis=-1)
    r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    return (1 - z) * n + z * h, (r, z, n, hn)


def _gru_step_bwd(d_new, parts, prev, new, p: GRUParams):
    r, z, n, hn = parts
    dh = d_new
    dan = dh * ((1 - z) * (1 - n * n))
    dar = dan * (hn * r * (1 - r))
    daz = dh * ((prev - n) * z * (1 - z))
    dha = jnp.concatenate([dar, daz, dan * r], -1)
    return (jnp.concatenate([dar, daz, dan], -1), dha), dh * z + dha @ p.w_hh.T


def _gru_cell_fwd(x, h, params):
    _check("gru_cell", x, h, params, 3, "x", "h")
    new, parts = _gru_step(_project(x, params.w_ih, params.b_ih), h, params)
    return new, (x, h, params, new, parts)


def _gru_cell_bwd(res, d_new):
    x, h, params, new, parts = res
    da, dh = _gru_step_bwd(d_new, parts, h, new, params)
    dx, dparams = _weights_bwd(x, h, params.w_ih, da)
    return dx, dh, GRUParams(*dparams)


gru_cell.defvjp(_gru_cell_fwd, _gru_cell_bwd)


@op
def gru(xs: jax.Array, h0: jax.Array, params: GRUParams, *, checkpoint_every: int | None = None):
    """A GRU over a sequence: :func:`gru_cell` at every time step.

    For ``t = 1..T``: ``r = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)``,
    ``z = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)``,
    ``n = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn))``,
    ``h_t = (1 - z) * n + z * h_{t-1}``. The input side ``xs @ w_ih + b_ih`` is
    one matrix product for every step; the scan runs the rest.

    Layout: time-major. ``xs`` is ``(time, batch, d_in)``, ``hs`` is
    ``(time, batch, hidden)``. Batch-major data ``(batch, time, d_in)`` (flax's
    ``nn.RNN``, PyTorch's ``batch_first=True``) goes in as
    ``jnp.swapaxes(xs, 0, 1)``, and ``hs`` comes back the same way.

    Derivative (backpropagation through time): one reverse ``lax.scan`` from the
    last step, carrying ``dh``, the gradient of the state. At step ``t``, with
    ``dh`` the carried gradient plus the output's ``dhs[t]``:
    ``dan = dh * (1 - z)(1 - n**2)``, ``dar = dan * (W_hn h_{t-1} + b_hn) * r(1 - r)``,
    ``daz = dh * (h_{t-1} - n) * z(1 - z)``; the input side gets
    ``dxa_t = [dar, daz, dan]``, the hidden side ``dha_t = [dar, daz, dan * r]``,
    and the carry becomes ``dh = dh * z + dha_t @ w_hh.T``. What is left at the
    first step is the gradient of ``h0``. Then, as single matrix products over
    every step (autodiff of the forward scan accumulates them step by step):
    ``dxs = dxa @ w_ih.T``, ``dw_ih = sum_t x_t.T @ dxa_t``,
    ``dw_hh = sum_t h_{t-1}.T @ dha_t``, ``db_ih = sum(dxa)``,
    ``db_hh = sum(dha)``. The backward stores, per step, ``h_t``, ``r``, ``z``,
    ``n`` and ``W_hn h_{t-1} + b_hn`` (``5 * hidden`` numbers per example).

    Rematerialization: with ``checkpoint_every=k``, the forward keeps only the
    state at the start of each segment of ``k`` steps; the backward, segment by
    segment from the last, recomputes the segment's forward and runs its reverse
    scan. Memory grows as ``T / k + k`` steps instead of ``T`` (``k ~ sqrt(T)``
    is best), for one more forward pass of compute. ``gru.autodiff`` with the
    same option wraps each segment in ``jax.checkpoint``.

    No steps (``T = 0``): ``hs`` is ``(0, batch, hidden)`` and the last state is
    ``h0``; the gradient of ``h0`` is the last state's, those of ``xs`` and
    ``params`` are 0.

    Args:
      xs: inputs, time-major ``(time, batch, d_in)``.
      h0: initial state, ``(batch, hidden)`` (:func:`zeros_state`).
      params: :class:`GRUParams`.
      checkpoint_every: ``None`` (store every step), or a segment length that
        divides ``time``: a Python int (a concrete NumPy or JAX integer scalar is
        taken as its value).

    Returns:
      ``(hs, last)``: every ``h_t``, ``(time, batch, hidden)``, and the last state.

    Raises:
      InputError: a wrong rank, shape or dtype; batch-major ``xs`` (named as
        such); a ``checkpoint_every`` that does not divide ``time``.

    Numerics: sigmoid is ``jax.lax.logistic``, stable in both tails; the
    derivatives are taken from the activations, ``s(1 - s)`` and
    ``1 - tanh**2`` (as autodiff does), exactly 0 for a saturated gate. Through
    ``z * h_{t-1}`` the state's gradient is multiplied by ``z`` at each step, not
    only by a weight matrix: with ``z`` near 1 it reaches far back, where a plain
    RNN's vanishes (see ``examples/``).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import recurrent as rec
      >>> params = rec.init_gru(jax.random.key(0), 3, 4)
      >>> xs, h0 = jnp.ones((6, 2, 3), jnp.float32), rec.zeros_state(2, 4)
      >>> rec.gru(xs, h0, params)[0].shape
      (6, 2, 4)
      >>> hs, last = rec.gru(xs[:0], h0, params)  # no steps: the last state is h0
      >>> hs.shape, bool(jnp.all(last == h0))
      ((0, 2, 4), True)

    References:
      Cho et al., `Learning phrase representations using RNN encoder-decoder for
      statistical machine translation <https://arxiv.org/abs/1406.1078>`_,
      EMNLP 2014.

      Werbos, `Backpropagation through time: what it does and how to do it
      <https://doi.org/10.1109/5.58337>`_, Proceedings of the IEEE 78(10), 1990.

      Chen, Xu, Zhang and Guestrin, `Training deep nets with sublinear memory
      cost <https://arxiv.org/abs/1604.06174>`_, 2016.
    """
    _check("gru", xs, h0, params, 3, "xs", "h0")
    every = _segment_length("gru", xs, checkpoint_every)
    return _sequence(_gru_step, xs, h0, params, params.b_ih, every)


def _gru_fwd(xs, h0, params, *, checkpoint_every=None):
    _check("gru", xs, h0, params, 3, "xs", "h0")
    every = _segment_length("gru", xs, checkpoint_every)
    return _sequence_fwd(_gru_step, xs, h0, params, params.b_ih, every)


def _gru_bwd(res, dy, *, checkpoint_every=None):
    """BPTT: :func:`_gru_step_bwd` in one reverse scan (``_bptt``)."""
    xs, h0, params, saved = res
    dxs, dh0, dparams = _bptt(
        _gru_step, _gru_step_bwd, xs, h0, params, params.b_ih, saved, dy, checkpoint_every
    )
    return dxs, dh0, GRUParams(*dparams)


gru.defvjp(_gru_fwd, _gru_bwd)
