"""The LSTM: its cell with the step backward under it, and its sequence with
backpropagation through time under that."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dlref._op import op
from dlref.recurrent._base import (
    LSTMParams,
    LSTMState,
    _bptt,
    _check,
    _project,
    _segment_length,
    _sequence,
    _sequence_fwd,
    _sigmoid,
    _weights_bwd,
)

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
