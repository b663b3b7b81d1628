"""Recurrent networks: RNN, LSTM and GRU cells, whole sequences with ``lax.scan``,
and backpropagation through time written by hand.

Layouts (batch first inside a step, time first over a sequence):

- a step takes ``x: (batch, d_in)`` and a state ``(batch, hidden)``;
- a sequence is **time-major**, ``xs: (time, batch, d_in)``, and the outputs
  ``hs`` are ``(time, batch, hidden)``. From batch-major data (flax's ``nn.RNN``
  default, PyTorch's ``batch_first=True``) use ``jnp.swapaxes(x, 0, 1)``.
- weights are ``(d_in, gates * hidden)`` and ``(hidden, gates * hidden)``, gates
  side by side in PyTorch's order: LSTM ``i, f, g, o``; GRU ``r, z, n``.

Each kind has its own module (``_rnn``, ``_lstm``, ``_gru``): its cell, with the
step forward and step backward right under it, then its sequence, with the
sequence's forward and
backpropagation through time right under that. The sequences share one scan
engine (``_sequence``, ``_sequence_fwd``, ``_bptt``), to which each passes its
own step functions by name. See :mod:`dlref.convert` for PyTorch and flax
parameter layouts.
"""

from dlref.recurrent._base import (
    GRUParams,
    LSTMParams,
    LSTMState,
    RNNParams,
    init_gru,
    init_lstm,
    init_rnn,
    zeros_state,
)
from dlref.recurrent._gru import gru, gru_cell
from dlref.recurrent._lstm import lstm, lstm_cell
from dlref.recurrent._rnn import rnn, rnn_cell

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
