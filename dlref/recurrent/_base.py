"""The recurrent family's shared parts: parameter and state types, initializers,
input checks, and the scan engine of sequences and backpropagation through time
(each kind's module passes its own step functions to it by name)."""

from __future__ import annotations

import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp

from dlref import _checks
from dlref._checks import InputError
from dlref._numerics import bias_row, rows

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
    d_in, hidden = _check_init("init_rnn", key, d_in, hidden, dtype)
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
    d_in, hidden = _check_init("init_lstm", key, d_in, hidden, dtype)
    _checks.real_number("init_lstm", "forget_bias", forget_bias)
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
    d_in, hidden = _check_init("init_gru", key, d_in, hidden, dtype)
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
    batch, hidden = _checks.sizes("zeros_state", batch=batch, hidden=hidden)
    _checks.float_dtype("zeros_state", dtype)
    h = jnp.zeros((batch, hidden), dtype)
    return LSTMState(h, h) if lstm else h


def _check_init(fn: str, key, d_in, hidden, dtype) -> list[int]:
    """A PRNG key, ``d_in >= 0``, ``hidden >= 1`` (the bound is 1/sqrt(hidden)), a
    floating dtype; the sizes as Python ints."""
    _checks.prng_key(fn, "key", key)
    _checks.float_dtype(fn, dtype)
    (d_in,) = _checks.sizes(fn, d_in=d_in)
    return [d_in, *_checks.sizes(fn, 1, hidden=hidden)]


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
    grads = (rows(xs).T @ rows(dxa), rows(hs_prev).T @ rows(dha), jnp.sum(rows(dxa), axis=0))
    if isinstance(da, tuple):
        grads += (jnp.sum(rows(dha), axis=0),)
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
