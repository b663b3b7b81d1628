"""The GRU: its cell with the step backward under it, and its sequence with
backpropagation through time under that."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dlref._op import op
from dlref.recurrent._base import (
    GRUParams,
    _bptt,
    _check,
    _project,
    _segment_length,
    _sequence,
    _sequence_fwd,
    _sigmoid,
    _weights_bwd,
)

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
