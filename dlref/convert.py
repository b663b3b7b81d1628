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
``scale, shift, state``   running_var, num_batches_tracked``;    batch_stats ``mean, var``;
                          momentum ``a`` there is ``1 - a``      same momentum convention
                          here; running_var is unbiased
========================  =====================================  ==========================

Momentum: dlref's ``momentum`` weighs the old running statistics (flax's
convention), PyTorch's weighs the new batch. dlref's default 0.99 is PyTorch's
0.01; PyTorch's default 0.1 is dlref's 0.9.

The PyTorch layouts taken, exactly (G = 1, 4, 3 gates for RNN, LSTM, GRU; H the
hidden size, D the input size):

- ``dense_from_torch``: ``nn.Linear``: ``weight (out, in)`` and ``bias (out,)``;
  built with ``bias=False`` (no ``bias`` key), the bias is 0.
- ``rnn_from_torch``, ``lstm_from_torch``, ``gru_from_torch``: one layer in one
  direction, either a cell (``nn.RNNCell``, ``nn.LSTMCell``, ``nn.GRUCell``:
  keys ``weight_ih (G*H, D)``, ``weight_hh (G*H, H)``, ``bias_ih (G*H,)``,
  ``bias_hh (G*H,)``) or a sequence module with ``num_layers=1`` and
  ``bidirectional=False`` (``nn.RNN`` with tanh, ``nn.LSTM`` without
  ``proj_size``, ``nn.GRU``: the same keys ending in ``_l0``). Built with
  ``bias=False`` (no bias keys), the biases are 0. Keys of a second layer
  (``_l1``), of the reverse direction (``_reverse``) or of an LSTM projection
  (``weight_hr_l0``) raise: convert each layer and direction on its own, its
  keys renamed to end in ``_l0``. ``nn.RNN(nonlinearity="relu")`` has the same
  keys but another cell: dlref's RNN is tanh only.
- ``batch_norm_from_torch``: ``nn.BatchNorm1d`` (or 2d/3d) with
  ``track_running_stats=True``: ``running_mean``, ``running_var``
  (``num_batches_tracked`` is read only for its check); ``affine=False`` (no
  ``weight``, ``bias``) gives scale 1 and shift 0.

Every error is a :class:`dlref.InputError` naming the function, the key, what
was expected and what was given.

flax nnx's ``GRUCell`` has no ``b_hn`` (flax issue 5594): it equals dlref's GRU
only with ``b_hh[2 * hidden:] = 0``.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from dlref._checks import InputError
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


def _keys(tree) -> list:
    return sorted(tree) if isinstance(tree, dict) else []


def _mapping(fn: str, name: str, tree) -> dict:
    """``tree`` as a dict, or an error saying what was given."""
    if not isinstance(tree, dict):
        raise InputError(f"{fn}: `{name}` must be a dict of arrays; got {type(tree).__name__}")
    return tree


def _get(fn: str, tree: dict, key: str, what: str):
    """``tree[key]``, or an error naming the key, what holds it and the keys given."""
    if key not in tree:
        raise InputError(f"{fn}: missing key `{key}` ({what}); got keys {_keys(tree)}")
    return tree[key]


def _array(fn: str, key: str, value, shape: tuple[int | None, ...], what: str) -> np.ndarray:
    """``value`` as a floating NumPy array of ``shape`` (``None`` matches any size)."""
    a = np.asarray(value)
    _layout(fn, key, a.shape, a.dtype, shape, what)
    return a


def _layout(fn: str, key: str, got: tuple, dtype, shape: tuple[int | None, ...], what: str):
    """A floating dtype, and ``got`` matching ``shape`` (``None`` matches any size)."""
    if not jnp.issubdtype(dtype, jnp.floating):
        raise InputError(f"{fn}: `{key}` must be a floating array ({what}); got dtype {dtype}")
    if len(got) != len(shape) or any(
        s is not None and s != d for s, d in zip(shape, got, strict=True)
    ):
        expected = tuple("any" if s is None else s for s in shape)
        raise InputError(f"{fn}: `{key}` must have shape {expected} ({what}); got {tuple(got)}")


# --- dense ---------------------------------------------------------------------------


def dense_from_torch(state: dict) -> tuple:
    """``nn.Linear`` state dict ``{"weight" (out, in), "bias" (out,)}`` -> ``(w, b)``,
    ``w = weight.T``. Without a ``bias`` key (``bias=False``) the bias is 0.

    Examples:
      >>> import numpy as np
      >>> from dlref import convert
      >>> w, b = convert.dense_from_torch({"weight": np.ones((3, 2)), "bias": np.arange(3.0)})
      >>> w.shape, b.tolist()
      ((2, 3), [0.0, 1.0, 2.0])
    """
    fn = "dense_from_torch"
    state = _mapping(fn, "state", state)
    _only(fn, state, {"weight", "bias"}, "an nn.Linear state dict")
    weight = _array(fn, "weight", _get(fn, state, "weight", "nn.Linear"), (None, None), "(out, in)")
    bias = _optional_bias(fn, state, "bias", weight, weight.shape[0], "(out,)")
    return jnp.asarray(weight).T, jnp.asarray(bias)


def dense_to_torch(w, b) -> dict:
    """``(w, b)`` -> ``nn.Linear`` state dict ``{"weight": w.T, "bias": b}``.

    Examples:
      >>> import numpy as np
      >>> from dlref import convert
      >>> state = convert.dense_to_torch(np.ones((2, 3)), np.zeros(3))
      >>> {k: v.shape for k, v in state.items()}
      {'weight': (3, 2), 'bias': (3,)}
    """
    w, b = _dense_params("dense_to_torch", w, b)
    return {"weight": _np(w).T.copy(), "bias": _np(b).copy()}


def dense_from_flax(params: dict) -> tuple:
    """flax ``Dense`` params ``{"kernel" (in, out), "bias" (out,)}`` -> ``(w, b)``;
    without ``bias`` (``use_bias=False``) the bias is 0.

    Examples:
      >>> import numpy as np
      >>> from dlref import convert
      >>> w, b = convert.dense_from_flax({"kernel": np.ones((2, 3)), "bias": np.zeros(3)})
      >>> w.shape, b.shape
      ((2, 3), (3,))
    """
    fn = "dense_from_flax"
    params = _mapping(fn, "params", params)
    _only(fn, params, {"kernel", "bias"}, "flax Dense params")
    kernel = _array(
        fn, "kernel", _get(fn, params, "kernel", "flax Dense"), (None, None), "(in, out)"
    )
    bias = _optional_bias(fn, params, "bias", kernel, kernel.shape[1], "(out,)")
    return jnp.asarray(kernel), jnp.asarray(bias)


def dense_to_flax(w, b) -> dict:
    """``(w, b)`` -> flax ``Dense`` params ``{"kernel": w, "bias": b}``.

    Examples:
      >>> import numpy as np
      >>> from dlref import convert
      >>> sorted(convert.dense_to_flax(np.ones((2, 3)), np.zeros(3)))
      ['bias', 'kernel']
    """
    w, b = _dense_params("dense_to_flax", w, b)
    return {"kernel": jnp.asarray(w), "bias": jnp.asarray(b)}


def _checked(fn: str, key: str, value, shape: tuple[int | None, ...], what: str, like=None):
    """:func:`_array`'s checks (and :func:`_same_dtype`'s against ``like``) by shape and
    dtype alone, so that a traced array passes (the flax forms run under ``jit``);
    ``value`` is returned as given."""
    _layout(fn, key, jnp.shape(value), jnp.result_type(value), shape, what)
    if like is not None and jnp.result_type(value) != jnp.result_type(like):
        raise InputError(
            f"{fn}: `{key}` must have the weights' dtype {jnp.result_type(like)}; got "
            f"{jnp.result_type(value)}"
        )
    return value


def _dense_params(fn: str, w, b) -> tuple:
    """``w`` floating ``(d_in, d_out)`` and ``b`` ``(d_out,)`` of its dtype."""
    _checked(fn, "w", w, (None, None), "(d_in, d_out)")
    return w, _checked(fn, "b", b, (jnp.shape(w)[1],), "(d_out,)", like=w)


def _recurrent_params(fn: str, params, gates: int):
    """``params``, checked by shape and dtype (so traced ones pass): ``w_hh``
    ``(hidden, gates * hidden)``, ``w_ih`` ``(d_in, gates * hidden)``, every bias
    ``(gates * hidden,)``, one floating dtype."""
    fields = params._asdict()
    w_hh = _checked(fn, "params.w_hh", fields["w_hh"], (None, None), "(hidden, gates * hidden)")
    hidden = jnp.shape(w_hh)[0]
    rows = gates * hidden
    why = f"{gates} gate(s) of hidden size {hidden}, the rows of `params.w_hh`"
    for name, value in fields.items():
        shape = (None, rows) if name.startswith("w_") else (rows,)
        _checked(fn, f"params.{name}", value, shape, why, like=w_hh)
    return params


def _only(fn: str, tree: dict, allowed: set, what: str) -> None:
    extra = sorted(set(tree) - allowed)
    if extra:
        raise InputError(
            f"{fn}: unexpected keys {extra} for {what}; expected only {sorted(allowed)}"
        )


def _optional_bias(fn: str, tree: dict, key: str, like: np.ndarray, size: int, what: str):
    """``tree[key]`` of shape ``(size,)`` and the dtype of ``like`` (the weights), or
    zeros of that dtype where the module has no bias."""
    if key not in tree:
        return np.zeros(size, like.dtype)
    return _same_dtype(fn, key, _array(fn, key, tree[key], (size,), what), like)


def _same_dtype(fn: str, key: str, a: np.ndarray, like: np.ndarray) -> np.ndarray:
    if a.dtype != like.dtype:
        raise InputError(f"{fn}: `{key}` must have the weights' dtype {like.dtype}; got {a.dtype}")
    return a


# --- recurrent: PyTorch (a cell, or one layer of nn.RNN / nn.LSTM / nn.GRU) -----------------

_TORCH_MODULES = {"rnn": ("nn.RNNCell", "nn.RNN"), "lstm": ("nn.LSTMCell", "nn.LSTM")}
_TORCH_MODULES["gru"] = ("nn.GRUCell", "nn.GRU")
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _torch_recurrent(fn: str, kind: str, state: dict) -> tuple:
    """``(w_ih, w_hh, b_ih, b_hh)`` in dlref's layout from a cell's or a one-layer
    module's state dict, with every key and shape checked."""
    state = _mapping(fn, "state", state)
    cell, module = _TORCH_MODULES[kind]
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    supported = (
        f"supported: one {cell} (keys {', '.join(names)}) or one layer, one direction of "
        f"{module} (the same keys ending in _l0); without bias keys for bias=False"
    )
    suffix = "" if "weight_ih" in state else "_l0"
    unknown = sorted(set(state) - {n + suffix for n in names})
    if unknown:
        raise InputError(
            f"{fn}: unexpected keys {unknown} (a second layer `_l1`, the reverse direction "
            f"`_reverse`, a projection `weight_hr`, or a mix of cell and layer keys); "
            f"{supported}; convert each layer and direction on its own, its keys renamed "
            f"to end in _l0"
        )
    for name in names[:2]:
        _get(fn, state, name + suffix, supported)
    has = [n + suffix in state for n in names[2:]]
    if any(has) and not all(has):
        raise InputError(
            f"{fn}: `bias_ih{suffix}` and `bias_hh{suffix}` come together (bias=True) or not "
            f"at all (bias=False); got only `{names[2 + has.index(True)]}{suffix}`"
        )
    gates = _GATES[kind]
    key = f"weight_hh{suffix}"
    w_hh = _array(fn, key, state[key], (None, None), f"({gates} * hidden, hidden)")
    hidden = w_hh.shape[1]  # the hidden size, from weight_hh's columns
    rows = gates * hidden
    why = f"{gates} gate(s) of hidden size {hidden}, the columns of `{key}`"
    _array(fn, key, w_hh, (rows, hidden), why)
    w_ih = _array(fn, f"weight_ih{suffix}", state[f"weight_ih{suffix}"], (rows, None), why)
    _same_dtype(fn, f"weight_ih{suffix}", w_ih, w_hh)
    b_ih = _optional_bias(fn, state, f"bias_ih{suffix}", w_hh, rows, why)
    b_hh = _optional_bias(fn, state, f"bias_hh{suffix}", w_hh, rows, why)
    return (jnp.asarray(w_ih).T, jnp.asarray(w_hh).T, jnp.asarray(b_ih), jnp.asarray(b_hh))


def _to_torch_recurrent(w_ih, w_hh, b_ih, b_hh, cell: bool) -> dict:
    s = "" if cell else "_l0"
    return {
        "weight_ih" + s: _np(w_ih).T.copy(),
        "weight_hh" + s: _np(w_hh).T.copy(),
        "bias_ih" + s: _np(b_ih).copy(),
        "bias_hh" + s: _np(b_hh).copy(),
    }


def rnn_from_torch(state: dict) -> RNNParams:
    """``nn.RNNCell`` or one-layer ``nn.RNN`` (tanh) state dict -> :class:`RNNParams`
    (biases summed). See the module docstring for the keys taken.

    Examples:
      >>> import numpy as np
      >>> from dlref import convert
      >>> cell = {"weight_ih": np.ones((3, 2)), "weight_hh": np.ones((3, 3)),
      ...         "bias_ih": np.ones(3), "bias_hh": np.ones(3)}  # nn.RNNCell(2, 3)
      >>> params = convert.rnn_from_torch(cell)
      >>> params.w_ih.shape, params.b.tolist()
      ((2, 3), [2.0, 2.0, 2.0])
      >>> layer = {"weight_ih_l0": np.ones((3, 2)), "weight_hh_l0": np.ones((3, 3))}
      >>> convert.rnn_from_torch(layer).b.tolist()  # nn.RNN(2, 3, bias=False)
      [0.0, 0.0, 0.0]
    """
    w_ih, w_hh, b_ih, b_hh = _torch_recurrent("rnn_from_torch", "rnn", state)
    return RNNParams(w_ih, w_hh, b_ih + b_hh)


def rnn_to_torch(params: RNNParams, *, cell: bool = False) -> dict:
    """:class:`RNNParams` -> ``nn.RNN`` state dict (keys ending in ``_l0``), or
    ``nn.RNNCell``'s with ``cell=True``; ``bias_ih = b`` and ``bias_hh = 0``.

    Examples:
      >>> import numpy as np
      >>> from dlref import convert, recurrent
      >>> params = recurrent.RNNParams(np.ones((2, 3)), np.ones((3, 3)), np.ones(3))
      >>> sorted(convert.rnn_to_torch(params, cell=True))
      ['bias_hh', 'bias_ih', 'weight_hh', 'weight_ih']
    """
    params = _recurrent_params("rnn_to_torch", params, 1)
    return _to_torch_recurrent(*params, np.zeros_like(params.b), cell)


def lstm_from_torch(state: dict) -> LSTMParams:
    """``nn.LSTMCell`` or one-layer ``nn.LSTM`` state dict -> :class:`LSTMParams`
    (same gate order; biases summed). See the module docstring for the keys taken.

    Examples:
      >>> import numpy as np
      >>> from dlref import convert
      >>> state = {"weight_ih_l0": np.ones((12, 2)), "weight_hh_l0": np.ones((12, 3)),
      ...          "bias_ih_l0": np.ones(12), "bias_hh_l0": np.ones(12)}  # nn.LSTM(2, 3)
      >>> params = convert.lstm_from_torch(state)
      >>> params.w_ih.shape, params.w_hh.shape, params.b.shape
      ((2, 12), (3, 12), (12,))
    """
    w_ih, w_hh, b_ih, b_hh = _torch_recurrent("lstm_from_torch", "lstm", state)
    return LSTMParams(w_ih, w_hh, b_ih + b_hh)


def lstm_to_torch(params: LSTMParams, *, cell: bool = False) -> dict:
    """:class:`LSTMParams` -> ``nn.LSTM`` state dict (keys ending in ``_l0``), or
    ``nn.LSTMCell``'s with ``cell=True``; ``bias_ih = b`` and ``bias_hh = 0``.

    Examples:
      >>> import numpy as np
      >>> from dlref import convert, recurrent
      >>> params = recurrent.LSTMParams(np.ones((2, 12)), np.ones((3, 12)), np.ones(12))
      >>> {k: v.shape for k, v in convert.lstm_to_torch(params).items()}
      {'weight_ih_l0': (12, 2), 'weight_hh_l0': (12, 3), 'bias_ih_l0': (12,), 'bias_hh_l0': (12,)}
    """
    params = _recurrent_params("lstm_to_torch", params, 4)
    return _to_torch_recurrent(*params, np.zeros_like(params.b), cell)


def gru_from_torch(state: dict) -> GRUParams:
    """``nn.GRUCell`` or one-layer ``nn.GRU`` state dict -> :class:`GRUParams` (same
    gate order, both biases). See the module docstring for the keys taken.

    Examples:
      >>> import numpy as np
      >>> from dlref import convert
      >>> state = {"weight_ih": np.ones((9, 2)), "weight_hh": np.ones((9, 3))}  # bias=False
      >>> params = convert.gru_from_torch(state)
      >>> params.w_hh.shape, params.b_hh.tolist() == [0.0] * 9
      ((3, 9), True)
    """
    return GRUParams(*_torch_recurrent("gru_from_torch", "gru", state))


def gru_to_torch(params: GRUParams, *, cell: bool = False) -> dict:
    """:class:`GRUParams` -> ``nn.GRU`` state dict (keys ending in ``_l0``), or
    ``nn.GRUCell``'s with ``cell=True``; both biases as they are.

    Examples:
      >>> import numpy as np
      >>> from dlref import convert, recurrent
      >>> params = recurrent.GRUParams(np.ones((2, 9)), np.ones((3, 9)), np.ones(9), np.ones(9))
      >>> convert.gru_to_torch(params, cell=True)["weight_hh"].shape
      (9, 3)
    """
    w_ih, w_hh, b_ih, b_hh = _recurrent_params("gru_to_torch", params, 3)
    return _to_torch_recurrent(w_ih, w_hh, b_ih, b_hh, cell)


# --- recurrent: flax linen cells ---------------------------------------------------------


def _flax_cell(fn: str, params: dict, layout: dict[str, tuple[str, ...]], what: str) -> dict:
    """A flax cell's params, each Dense (``layout``: its name -> its leaves) checked:
    no key missing or unknown, input kernels ``(d_in, hidden)``, hidden kernels
    ``(hidden, hidden)`` (``hidden`` from the first), biases ``(hidden,)``, one dtype.
    Returns ``{module: {leaf: array}}``."""
    params = _mapping(fn, "params", params)
    _only(fn, params, set(layout), what)
    for module in layout:  # the first missing one, in the layout's order
        _get(fn, params, module, what)
    first_h = next(m for m in layout if m.startswith("h"))
    hidden = _array(
        fn,
        f"{first_h}.kernel",
        _get(fn, _sub(fn, params, first_h, what), "kernel", what),
        (None, None),
        "(hidden, hidden)",
    )
    d_in: int | None = None
    out: dict[str, dict[str, Any]] = {}
    for module, leaves in layout.items():
        sub = _sub(fn, params, module, what)
        _only(fn, sub, set(leaves), f"{what}, inside `{module}`")
        out[module] = {}
        for leaf in leaves:
            key = f"{module}.{leaf}"
            value = _get(fn, sub, leaf, f"{what}, inside `{module}`")
            shape: tuple[int | None, ...]
            if leaf == "bias":
                shape, why = (hidden.shape[1],), "(hidden,)"
            elif module.startswith("h"):
                shape, why = (hidden.shape[1],) * 2, "(hidden, hidden)"
            else:
                shape, why = (d_in, hidden.shape[1]), "(d_in, hidden), d_in alike in every gate"
            a = _same_dtype(fn, key, _array(fn, key, value, shape, why), hidden)
            d_in = a.shape[0] if leaf == "kernel" and module.startswith("i") else d_in
            out[module][leaf] = jnp.asarray(a)
    return out


def _sub(fn: str, params: dict, module: str, what: str) -> dict:
    sub = _get(fn, params, module, what)
    if not isinstance(sub, dict):
        raise InputError(f"{fn}: `{module}` must be a dict of arrays ({what}); got {type(sub)}")
    return sub


def rnn_from_flax(params: dict) -> RNNParams:
    """``nn.SimpleCell`` params ``{"i": {kernel, bias}, "h": {kernel}}`` -> :class:`RNNParams`.

    Examples:
      >>> import numpy as np
      >>> from dlref import convert
      >>> flax_params = {"i": {"kernel": np.ones((2, 3)), "bias": np.zeros(3)},
      ...                "h": {"kernel": np.ones((3, 3))}}
      >>> convert.rnn_from_flax(flax_params).w_hh.shape
      (3, 3)
    """
    cell = _flax_cell(
        "rnn_from_flax", params, {"i": ("kernel", "bias"), "h": ("kernel",)}, "flax SimpleCell"
    )
    return RNNParams(cell["i"]["kernel"], cell["h"]["kernel"], cell["i"]["bias"])


def rnn_to_flax(params: RNNParams) -> dict:
    """:class:`RNNParams` -> ``nn.SimpleCell`` params.

    Examples:
      >>> import numpy as np
      >>> from dlref import convert, recurrent
      >>> params = recurrent.RNNParams(np.ones((2, 3)), np.ones((3, 3)), np.zeros(3))
      >>> {k: sorted(v) for k, v in convert.rnn_to_flax(params).items()}
      {'i': ['bias', 'kernel'], 'h': ['kernel']}
    """
    params = _recurrent_params("rnn_to_flax", params, 1)
    return {"i": {"kernel": params.w_ih, "bias": params.b}, "h": {"kernel": params.w_hh}}


_LSTM_GATES = ("i", "f", "g", "o")


def lstm_from_flax(params: dict) -> LSTMParams:
    """``nn.LSTMCell`` params -> :class:`LSTMParams`. The carry maps too:
    flax ``(c, h)`` is ``LSTMState(h, c)``.

    Examples:
      >>> import numpy as np
      >>> from dlref import convert
      >>> flax_params = {"i" + g: {"kernel": np.ones((2, 3))} for g in "ifgo"}
      >>> hidden = {"kernel": np.ones((3, 3)), "bias": np.zeros(3)}
      >>> flax_params |= {"h" + g: hidden for g in "ifgo"}
      >>> convert.lstm_from_flax(flax_params).w_ih.shape
      (2, 12)
    """
    layout: dict[str, tuple[str, ...]] = {"i" + g: ("kernel",) for g in _LSTM_GATES}
    layout |= {"h" + g: ("kernel", "bias") for g in _LSTM_GATES}
    cell = _flax_cell("lstm_from_flax", params, layout, "flax linen LSTMCell params")

    def cat(prefix, leaf):
        return jnp.concatenate([cell[prefix + g][leaf] for g in _LSTM_GATES], -1)

    return LSTMParams(cat("i", "kernel"), cat("h", "kernel"), cat("h", "bias"))


def lstm_to_flax(params: LSTMParams) -> dict:
    """:class:`LSTMParams` -> ``nn.LSTMCell`` params (one Dense per gate).

    Examples:
      >>> import numpy as np
      >>> from dlref import convert, recurrent
      >>> params = recurrent.LSTMParams(np.ones((2, 12)), np.ones((3, 12)), np.zeros(12))
      >>> sorted(convert.lstm_to_flax(params))
      ['hf', 'hg', 'hi', 'ho', 'if', 'ig', 'ii', 'io']
    """
    params = _recurrent_params("lstm_to_flax", params, 4)
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
    they come back as 0, and ``b_ir``, ``b_iz`` carry their sums).

    Examples:
      >>> import numpy as np
      >>> from dlref import convert
      >>> flax_params = {k: {"kernel": np.ones((2, 3)), "bias": np.ones(3)} for k in ("ir", "iz")}
      >>> flax_params["in"] = {"kernel": np.ones((2, 3)), "bias": np.ones(3)}
      >>> flax_params |= {k: {"kernel": np.ones((3, 3))} for k in ("hr", "hz")}
      >>> flax_params["hn"] = {"kernel": np.ones((3, 3)), "bias": np.ones(3)}
      >>> convert.gru_from_flax(flax_params).b_hh.tolist()
      [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    """
    layout: dict[str, tuple[str, ...]] = {k: ("kernel", "bias") for k in ("ir", "iz", "in")}
    layout |= {"hr": ("kernel",), "hz": ("kernel",), "hn": ("kernel", "bias")}
    cell = _flax_cell("gru_from_flax", params, layout, "flax linen GRUCell params")

    def cat(keys, leaf):
        return jnp.concatenate([cell[k][leaf] for k in keys], -1)

    w_ih, w_hh = cat(("ir", "iz", "in"), "kernel"), cat(("hr", "hz", "hn"), "kernel")
    b_ih = cat(("ir", "iz", "in"), "bias")
    b_hn = cell["hn"]["bias"]
    b_hh = jnp.concatenate([jnp.zeros_like(b_hn), jnp.zeros_like(b_hn), b_hn], -1)
    return GRUParams(w_ih, w_hh, b_ih, b_hh)


def gru_to_flax(params: GRUParams) -> dict:
    """:class:`GRUParams` -> ``nn.GRUCell`` params (``b_hr``, ``b_hz`` summed into
    the input biases).

    Examples:
      >>> import numpy as np
      >>> from dlref import convert, recurrent
      >>> params = recurrent.GRUParams(np.ones((2, 9)), np.ones((3, 9)), np.ones(9), np.ones(9))
      >>> convert.gru_to_flax(params)["ir"]["bias"].tolist()
      [2.0, 2.0, 2.0]
    """
    params = _recurrent_params("gru_to_flax", params, 3)
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


def _features(fn: str, tree: dict, keys: tuple[str, ...], what: str) -> list:
    """The arrays at ``keys``, each 1-D and all of one size."""
    arrays = [
        _array(fn, k, _get(fn, tree, k, what), (None,), "one entry per feature") for k in keys
    ]
    for k, a in zip(keys[1:], arrays[1:], strict=True):
        _same_dtype(fn, k, a, arrays[0])
        if a.shape != arrays[0].shape:
            raise InputError(
                f"{fn}: `{k}` must have the shape of `{keys[0]}` {arrays[0].shape}; got {a.shape}"
            )
    return arrays


def _scale_shift(fn: str, tree: dict, keys: tuple[str, str], size: int, dtype) -> tuple:
    """The affine parameters, or 1 and 0 where the layer has none."""
    present = [k in tree for k in keys]
    if any(present) and not all(present):
        raise InputError(
            f"{fn}: `{keys[0]}` and `{keys[1]}` come together (an affine layer) or not at all; "
            f"got only `{keys[present.index(True)]}`"
        )
    if not any(present):
        return np.ones(size, dtype), np.zeros(size, dtype)
    return tuple(_features(fn, tree, keys, "the affine parameters"))


def batch_norm_from_torch(state: dict) -> tuple:
    """``nn.BatchNorm1d`` state dict -> ``(scale, shift, BatchNormState)``.

    The running statistics are carried over as they are. Two conventions differ:
    PyTorch's momentum ``a`` weighs the new batch (dlref's ``momentum = 1 - a``:
    PyTorch's default 0.1 is dlref's 0.9, dlref's default 0.99 is PyTorch's 0.01),
    and PyTorch's running variance averages the *unbiased* batch variances
    (``n / (n - 1)`` times the biased one dlref uses, n the batch size). Starting
    both from variance 1 and feeding the same batches of one size n, after t
    steps, exactly::

        torch_var - (1 - a)**t = n / (n - 1) * (dlref_var - m**t),   m = 1 - a

    (the initial variance 1 decays as ``m**t`` in both; only the batch terms are
    scaled), and the running means are equal. So ``dlref_var = m**t + (n - 1) / n
    * (torch_var - m**t)`` gives dlref's statistics for the same batches, and the
    plain ratio ``n / (n - 1)`` holds only once ``m**t`` is negligible.
    PyTorch's count ``t`` is the state's ``num_batches_tracked``.

    Takes ``running_mean``, ``running_var`` (both required: a layer built with
    ``track_running_stats=False`` has none, and raises), ``weight`` and ``bias``
    (absent with ``affine=False``: scale 1 and shift 0) and an optional
    ``num_batches_tracked``.

    Examples:
      >>> import numpy as np
      >>> from dlref import convert
      >>> state = {"weight": np.ones(2), "bias": np.zeros(2), "running_mean": np.zeros(2),
      ...          "running_var": np.ones(2), "num_batches_tracked": np.asarray(0)}
      >>> scale, shift, stats = convert.batch_norm_from_torch(state)
      >>> stats.var.tolist()
      [1.0, 1.0]
    """
    fn = "batch_norm_from_torch"
    state = _mapping(fn, "state", state)
    allowed = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    _only(fn, state, allowed, "an nn.BatchNorm state dict")
    for key in ("running_mean", "running_var"):
        if key not in state:
            raise InputError(
                f"{fn}: missing key `{key}`: the layer keeps no running statistics "
                f"(built with track_running_stats=False?); dlref's batch norm needs them "
                f"for evaluation; got keys {_keys(state)}"
            )
    mean, var = _features(fn, state, ("running_mean", "running_var"), "running statistics")
    if "num_batches_tracked" in state:
        _steps(fn, "num_batches_tracked", state["num_batches_tracked"])
    scale, shift = _scale_shift(fn, state, ("weight", "bias"), mean.shape[0], mean.dtype)
    return (
        jnp.asarray(scale),
        jnp.asarray(shift),
        BatchNormState(jnp.asarray(mean), jnp.asarray(var)),
    )


def _steps(fn: str, name: str, value) -> int:
    """A count of training steps: a non-negative integer (a 0-d integer array too)."""
    a = np.asarray(value)
    if a.ndim != 0 or not np.issubdtype(a.dtype, np.integer) or int(a) < 0:
        raise InputError(
            f"{fn}: `{name}` must be a non-negative integer count of training steps; got {value!r}"
        )
    return int(a)


def batch_norm_to_torch(scale, shift, state: BatchNormState, *, steps: int) -> dict:
    """``(scale, shift, state)`` -> ``nn.BatchNorm1d`` state dict.

    Args:
      scale, shift: the affine parameters, shape ``(features,)``.
      state: the running statistics, carried over as they are (see
        :func:`batch_norm_from_torch` for how PyTorch's differ).
      steps: the number of training steps (batches) that produced ``state``,
        written as ``num_batches_tracked``. PyTorch reads it where
        ``momentum=None``: its running statistics are then the cumulative average
        over the batches, updated with weight ``1 / (num_batches_tracked + 1)``,
        so a wrong count (0 would make the next batch replace the statistics)
        breaks the continuation. Give 0 for fresh statistics.

    Examples:
      >>> import numpy as np
      >>> from dlref import convert, layers
      >>> scale, shift, stats = layers.init_batch_norm(2)
      >>> state = convert.batch_norm_to_torch(scale, shift, stats, steps=5)
      >>> int(state["num_batches_tracked"]), sorted(state)
      (5, ['bias', 'num_batches_tracked', 'running_mean', 'running_var', 'weight'])
    """
    scale, shift, mean, var = _batch_norm_params("batch_norm_to_torch", scale, shift, state)
    count = _steps("batch_norm_to_torch", "steps", steps)
    return {
        "weight": _np(scale).copy(),
        "bias": _np(shift).copy(),
        "running_mean": _np(mean).copy(),
        "running_var": _np(var).copy(),
        "num_batches_tracked": np.asarray(count, np.int64),
    }


def batch_norm_from_flax(variables: dict) -> tuple:
    """flax ``BatchNorm`` variables ``{"params": {scale, bias}, "batch_stats":
    {mean, var}}`` -> ``(scale, shift, state)``; the momentum convention is the
    same. Without ``params["scale"]`` (``use_scale=False``) the scale is 1,
    without ``params["bias"]`` (``use_bias=False``) the shift is 0; without
    ``batch_stats`` (the parameters alone) it raises.

    Examples:
      >>> import numpy as np
      >>> from dlref import convert
      >>> variables = {"params": {"scale": np.ones(2), "bias": np.zeros(2)},
      ...              "batch_stats": {"mean": np.zeros(2), "var": np.ones(2)}}
      >>> scale, shift, stats = convert.batch_norm_from_flax(variables)
      >>> stats.mean.shape
      (2,)
    """
    fn = "batch_norm_from_flax"
    variables = _mapping(fn, "variables", variables)
    if "batch_stats" not in variables:
        raise InputError(
            f"{fn}: missing collection `batch_stats` (the running mean and variance); "
            f"pass every collection of the module's variables (what `init` returns, "
            f"not only variables['params']); got keys {_keys(variables)}"
        )
    stats = _mapping(fn, "variables['batch_stats']", variables["batch_stats"])
    mean, var = _features(fn, stats, ("mean", "var"), "flax batch_stats")
    params = _mapping(fn, "variables['params']", variables.get("params", {}))
    _only(fn, variables, {"params", "batch_stats"}, "flax BatchNorm variables")
    _only(fn, stats, {"mean", "var"}, "flax BatchNorm batch_stats")
    _only(fn, params, {"scale", "bias"}, "flax BatchNorm params")
    scale = _optional_bias(fn, params, "scale", mean, mean.shape[0], "one entry per feature")
    shift = _optional_bias(fn, params, "bias", mean, mean.shape[0], "one entry per feature")
    if "scale" not in params:
        scale = np.ones_like(scale)  # use_scale=False
    return (
        jnp.asarray(scale),
        jnp.asarray(shift),
        BatchNormState(jnp.asarray(mean), jnp.asarray(var)),
    )


def batch_norm_to_flax(scale, shift, state: BatchNormState) -> dict:
    """``(scale, shift, state)`` -> flax ``BatchNorm`` variables.

    Examples:
      >>> from dlref import convert, layers
      >>> variables = convert.batch_norm_to_flax(*layers.init_batch_norm(2))
      >>> {k: sorted(v) for k, v in variables.items()}
      {'params': ['bias', 'scale'], 'batch_stats': ['mean', 'var']}
    """
    scale, shift, mean, var = _batch_norm_params("batch_norm_to_flax", scale, shift, state)
    return {
        "params": {"scale": scale, "bias": shift},
        "batch_stats": {"mean": mean, "var": var},
    }


def _batch_norm_params(fn: str, scale, shift, state: BatchNormState) -> list:
    """``scale``, ``shift`` and the running statistics, checked by shape and dtype (so
    traced ones pass): each ``(features,)``, one floating dtype."""
    arrays = {"scale": scale, "shift": shift, "state.mean": state.mean, "state.var": state.var}
    size = (jnp.shape(scale)[0] if jnp.ndim(scale) == 1 else None,)
    what = "one entry per feature, as many as `scale`"
    return [_checked(fn, k, v, size, what, like=scale) for k, v in arrays.items()]
