"""The plain RNN: its cell with the step backward under it, and its sequence with
backpropagation through time under that."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dlref._op import op
from dlref.recurrent._base import (
    RNNParams,
    _bptt,
    _check,
    _project,
    _segment_length,
    _sequence,
    _sequence_fwd,
    _weights_bwd,
)

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
