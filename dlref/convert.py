"""Parameter converters between dlref and PyTorch / flax linen layouts.

PyTorch state dicts are taken and given as dicts of NumPy arrays (``{k:
v.numpy() for k, v in module.state_dict().items()}``), so PyTorch need not be
installed. The mappings:

========================  =====================================  ==========================
dlref                     PyTorch                                flax linen
========================  =====================================  ==========================
dense ``w (in, out)``     ``nn.Linear.weight (out, in)`` = w.T   ``Dense.kernel (in, out)``
LSTM gates i, f, g, o     same order, stacked on rows;           one Dense per gate: input
``b = b_ih + b_hh``       two biases (we sum them; give back     ``ii if ig io`` (no bias),
                          ``bias_ih = b``, ``bias_hh = 0``)      hidden ``hi hf hg ho`` (bias);
                                                                 carry ``(c, h)`` not ``(h, c)``
GRU gates r, z, n         same order and both biases             input ``ir iz in`` (bias),
``b_ih``, ``b_hh``                                               hidden ``hr hz`` (no bias)
                                                                 and ``hn`` (bias = b_hn);
                                                                 r, z biases summed
RNN ``b = b_ih + b_hh``   ``nn.RNN`` (tanh), two biases          ``SimpleCell``: ``i`` (bias),
                                                                 ``h`` (no bias)
batch norm                ``weight, bias, running_mean,          params ``scale, bias``;
``scale, shift, state``   running_var``; momentum 0.1 there is   batch_stats ``mean, var``;
                          0.9 here; running_var is unbiased      same momentum convention
========================  =====================================  ==========================

flax nnx's ``GRUCell`` has no ``b_hn`` (flax issue 5594): it equals dlref's GRU
only with ``b_hh[2 * hidden:] = 0``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from dlref.layers import BatchNormState
from dlref.recurrent import GRUParams, LSTMParams, RNNParams

__all__ = [
    "batch_norm_from_flax",
    "batch_norm_from_torch",
    "batch_norm_to_flax",
    "batch_norm_to_torch",
    "dense_from_flax",
    "dense_from_torch",
    "dense_to_flax",
    "dense_to_torch",
    "gru_from_flax",
    "gru_from_torch",
    "gru_to_flax",
    "gru_to_torch",
    "lstm_from_flax",
    "lstm_from_torch",
    "lstm_to_flax",
    "lstm_to_torch",
    "rnn_from_flax",
    "rnn_from_torch",
    "rnn_to_flax",
    "rnn_to_torch",
]


def _np(x) -> np.ndarray:
    return np.asarray(x)


def _split(a, n: int):
    return jnp.split(jnp.asarray(a), n, axis=-1)


# --- dense ---------------------------------------------------------------------------


def dense_from_torch(state: dict) -> tuple:
    """``nn.Linear`` state dict -> ``(w, b)``."""
    return jnp.asarray(state["weight"]).T, jnp.asarray(state["bias"])


def dense_to_torch(w, b) -> dict:
    return {"weight": _np(w).T.copy(), "bias": _np(b).copy()}


def dense_from_flax(params: dict) -> tuple:
    """flax ``Dense`` params ``{"kernel", "bias"}`` -> ``(w, b)``."""
    return jnp.asarray(params["kernel"]), jnp.asarray(params["bias"])


def dense_to_flax(w, b) -> dict:
    return {"kernel": jnp.asarray(w), "bias": jnp.asarray(b)}


# --- recurrent: PyTorch (layer 0 of nn.RNN / nn.LSTM / nn.GRU) -------------------------


def _torch_recurrent(state: dict, layer: int):
    s = f"_l{layer}"
    return (
        jnp.asarray(state["weight_ih" + s]).T,
        jnp.asarray(state["weight_hh" + s]).T,
        jnp.asarray(state["bias_ih" + s]),
        jnp.asarray(state["bias_hh" + s]),
    )


def _to_torch_recurrent(w_ih, w_hh, b_ih, b_hh, layer: int) -> dict:
    s = f"_l{layer}"
    return {
        "weight_ih" + s: _np(w_ih).T.copy(),
        "weight_hh" + s: _np(w_hh).T.copy(),
        "bias_ih" + s: _np(b_ih).copy(),
        "bias_hh" + s: _np(b_hh).copy(),
    }


def rnn_from_torch(state: dict, layer: int = 0) -> RNNParams:
    """``nn.RNN(nonlinearity="tanh")`` state dict -> :class:`RNNParams` (biases summed)."""
    w_ih, w_hh, b_ih, b_hh = _torch_recurrent(state, layer)
    return RNNParams(w_ih, w_hh, b_ih + b_hh)


def rnn_to_torch(params: RNNParams, layer: int = 0) -> dict:
    return _to_torch_recurrent(*params, jnp.zeros_like(params.b), layer)


def lstm_from_torch(state: dict, layer: int = 0) -> LSTMParams:
    """``nn.LSTM`` state dict -> :class:`LSTMParams` (same gate order; biases summed)."""
    w_ih, w_hh, b_ih, b_hh = _torch_recurrent(state, layer)
    return LSTMParams(w_ih, w_hh, b_ih + b_hh)


def lstm_to_torch(params: LSTMParams, layer: int = 0) -> dict:
    return _to_torch_recurrent(*params, jnp.zeros_like(params.b), layer)


def gru_from_torch(state: dict, layer: int = 0) -> GRUParams:
    """``nn.GRU`` state dict -> :class:`GRUParams` (same gate order, both biases)."""
    return GRUParams(*_torch_recurrent(state, layer))


def gru_to_torch(params: GRUParams, layer: int = 0) -> dict:
    return _to_torch_recurrent(*params, layer)


# --- recurrent: flax linen cells ---------------------------------------------------------


def rnn_from_flax(params: dict) -> RNNParams:
    """``nn.SimpleCell`` params -> :class:`RNNParams`."""
    return RNNParams(
        jnp.asarray(params["i"]["kernel"]),
        jnp.asarray(params["h"]["kernel"]),
        jnp.asarray(params["i"]["bias"]),
    )


def rnn_to_flax(params: RNNParams) -> dict:
    return {"i": {"kernel": params.w_ih, "bias": params.b}, "h": {"kernel": params.w_hh}}


_LSTM_GATES = ("i", "f", "g", "o")


def lstm_from_flax(params: dict) -> LSTMParams:
    """``nn.LSTMCell`` params -> :class:`LSTMParams`. The carry maps too:
    flax ``(c, h)`` is ``LSTMState(h, c)``."""

    def cat(prefix, leaf):
        return jnp.concatenate([jnp.asarray(params[prefix + g][leaf]) for g in _LSTM_GATES], -1)

    return LSTMParams(cat("i", "kernel"), cat("h", "kernel"), cat("h", "bias"))


def lstm_to_flax(params: LSTMParams) -> dict:
    out = {}
    for g, w_i, w_h, b in zip(
        _LSTM_GATES,
        _split(params.w_ih, 4),
        _split(params.w_hh, 4),
        _split(params.b, 4),
        strict=True,
    ):
        out["i" + g] = {"kernel": w_i}
        out["h" + g] = {"kernel": w_h, "bias": b}
    return out


def gru_from_flax(params: dict) -> GRUParams:
    """``nn.GRUCell`` params -> :class:`GRUParams` (flax has no ``b_hr``, ``b_hz``:
    they come back as 0, and ``b_ir``, ``b_iz`` carry their sums)."""
    w_ih = jnp.concatenate([jnp.asarray(params[k]["kernel"]) for k in ("ir", "iz", "in")], -1)
    w_hh = jnp.concatenate([jnp.asarray(params[k]["kernel"]) for k in ("hr", "hz", "hn")], -1)
    b_ih = jnp.concatenate([jnp.asarray(params[k]["bias"]) for k in ("ir", "iz", "in")], -1)
    b_hn = jnp.asarray(params["hn"]["bias"])
    b_hh = jnp.concatenate([jnp.zeros_like(b_hn), jnp.zeros_like(b_hn), b_hn], -1)
    return GRUParams(w_ih, w_hh, b_ih, b_hh)


def gru_to_flax(params: GRUParams) -> dict:
    (w_ir, w_iz, w_in), (w_hr, w_hz, w_hn) = _split(params.w_ih, 3), _split(params.w_hh, 3)
    (b_ir, b_iz, b_in), (b_hr, b_hz, b_hn) = _split(params.b_ih, 3), _split(params.b_hh, 3)
    return {
        "ir": {"kernel": w_ir, "bias": b_ir + b_hr},
        "iz": {"kernel": w_iz, "bias": b_iz + b_hz},
        "in": {"kernel": w_in, "bias": b_in},
        "hr": {"kernel": w_hr},
        "hz": {"kernel": w_hz},
        "hn": {"kernel": w_hn, "bias": b_hn},
    }


# --- batch norm ----------------------------------------------------------------------------


def batch_norm_from_torch(state: dict) -> tuple:
    """``nn.BatchNorm1d`` state dict -> ``(scale, shift, BatchNormState)``.

    PyTorch's running variance is the unbiased one (n / (n - 1) times dlref's
    for the same batches) and its ``momentum=0.1`` is dlref's ``momentum=0.9``;
    the numbers are carried over as they are.
    """
    return (
        jnp.asarray(state["weight"]),
        jnp.asarray(state["bias"]),
        BatchNormState(jnp.asarray(state["running_mean"]), jnp.asarray(state["running_var"])),
    )


def batch_norm_to_torch(scale, shift, state: BatchNormState) -> dict:
    return {
        "weight": _np(scale).copy(),
        "bias": _np(shift).copy(),
        "running_mean": _np(state.mean).copy(),
        "running_var": _np(state.var).copy(),
        "num_batches_tracked": np.asarray(0, np.int64),
    }


def batch_norm_from_flax(variables: dict) -> tuple:
    """flax ``BatchNorm`` variables ``{"params", "batch_stats"}`` -> ``(scale, shift, state)``."""
    p, s = variables["params"], variables["batch_stats"]
    return p["scale"], p["bias"], BatchNormState(s["mean"], s["var"])


def batch_norm_to_flax(scale, shift, state: BatchNormState) -> dict:
    return {
        "params": {"scale": scale, "bias": shift},
        "batch_stats": {"mean": state.mean, "var": state.var},
    }
