"""Parameter converters: PyTorch's state-dict layouts (checked against PyTorch's
equations written in NumPy from its documentation, with its two biases and
``(out, in)`` weights) and flax linen's parameter trees (checked against flax)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers import assert_close

from dlref import convert, layers
from dlref import recurrent as rec

f64 = jnp.float64
H, D, B = 5, 4, 3


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def torch_state(key, rows: int, prefix_bias=True):
    """A random PyTorch-layout state dict for one recurrent layer."""
    k = jax.random.split(key, 4)
    return {
        "weight_ih_l0": np.asarray(jax.random.normal(k[0], (rows, D), f64)) / 2,
        "weight_hh_l0": np.asarray(jax.random.normal(k[1], (rows, H), f64)) / 2,
        "bias_ih_l0": np.asarray(jax.random.normal(k[2], (rows,), f64)),
        "bias_hh_l0": np.asarray(jax.random.normal(k[3], (rows,), f64)),
    }


def torch_lstm_step(s, x, h, c):
    gates = x @ s["weight_ih_l0"].T + s["bias_ih_l0"] + h @ s["weight_hh_l0"].T + s["bias_hh_l0"]
    i, f, g, o = np.split(gates, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def torch_gru_step(s, x, h):
    xr, xz, xn = np.split(x @ s["weight_ih_l0"].T + s["bias_ih_l0"], 3, axis=-1)
    hr, hz, hn = np.split(h @ s["weight_hh_l0"].T + s["bias_hh_l0"], 3, axis=-1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return (1 - z) * n + z * h


def torch_rnn_step(s, x, h):
    return np.tanh(
        x @ s["weight_ih_l0"].T + s["bias_ih_l0"] + h @ s["weight_hh_l0"].T + s["bias_hh_l0"]
    )


@pytest.fixture
def inputs(key):
    k = jax.random.split(key, 3)
    return tuple(
        np.asarray(jax.random.normal(ki, shape, f64))
        for ki, shape in zip(k, [(B, D), (B, H), (B, H)], strict=True)
    )


def test_lstm_from_torch_follows_torch_equations(key, inputs):
    s = torch_state(key, 4 * H)
    x, h, c = inputs
    ours = rec.lstm_cell(
        jnp.asarray(x), rec.LSTMState(jnp.asarray(h), jnp.asarray(c)), convert.lstm_from_torch(s)
    )
    h_ref, c_ref = torch_lstm_step(s, x, h, c)
    assert_close((ours.h, ours.c), (h_ref, c_ref), 1e-13)
    back = convert.lstm_to_torch(convert.lstm_from_torch(s))  # biases summed into bias_ih
    np.testing.assert_allclose(
        back["bias_ih_l0"] + back["bias_hh_l0"], s["bias_ih_l0"] + s["bias_hh_l0"]
    )
    h2, c2 = torch_lstm_step(back, x, h, c)
    assert_close((h2, c2), (h_ref, c_ref), 1e-13)


def test_gru_from_torch_follows_torch_equations(key, inputs):
    s = torch_state(key, 3 * H)
    x, h, _ = inputs
    ours = rec.gru_cell(jnp.asarray(x), jnp.asarray(h), convert.gru_from_torch(s))
    assert_close(ours, torch_gru_step(s, x, h), 1e-13)
    back = convert.gru_to_torch(convert.gru_from_torch(s))
    for name, value in s.items():
        np.testing.assert_array_equal(back[name], value)


def test_rnn_from_torch_follows_torch_equations(key, inputs):
    s = torch_state(key, H)
    x, h, _ = inputs
    ours = rec.rnn_cell(jnp.asarray(x), jnp.asarray(h), convert.rnn_from_torch(s))
    assert_close(ours, torch_rnn_step(s, x, h), 1e-13)
    assert_close(torch_rnn_step(convert.rnn_to_torch(convert.rnn_from_torch(s)), x, h), ours, 1e-13)


def test_dense_and_batch_norm_torch_layouts(key):
    w_torch = np.asarray(jax.random.normal(key, (5, 3), f64))  # nn.Linear: (out, in)
    b = np.arange(5.0)
    w, b_ours = convert.dense_from_torch({"weight": w_torch, "bias": b})
    x = np.asarray(jax.random.normal(key, (2, 3), f64))
    np.testing.assert_allclose(
        layers.dense(jnp.asarray(x), w, b_ours), x @ w_torch.T + b, rtol=1e-14
    )
    np.testing.assert_array_equal(convert.dense_to_torch(w, b_ours)["weight"], w_torch)
    state = {
        "weight": np.ones(3),
        "bias": np.zeros(3),
        "running_mean": np.arange(3.0),
        "running_var": np.full(3, 2.0),
    }
    scale, shift, stats = convert.batch_norm_from_torch(state)
    again = convert.batch_norm_to_torch(scale, shift, stats)
    for name in ("weight", "bias", "running_mean", "running_var"):
        np.testing.assert_array_equal(again[name], state[name])


@pytest.mark.parametrize(
    "kind, cell, to_flax, from_flax",
    [
        ("rnn", nn.SimpleCell, convert.rnn_to_flax, convert.rnn_from_flax),
        ("lstm", nn.LSTMCell, convert.lstm_to_flax, convert.lstm_from_flax),
        ("gru", nn.GRUCell, convert.gru_to_flax, convert.gru_from_flax),
    ],
)
def test_flax_cells_round_trip(kind, cell, to_flax, from_flax, key, inputs):
    """flax's own initialization, carried into dlref and back; flax's LSTM carry
    is (c, h) where dlref's state is (h, c)."""
    x, h, c = (jnp.asarray(a, jnp.float32) for a in inputs)  # flax initializes in float32
    module = cell(H)
    carry = (c, h) if kind == "lstm" else h
    with jax.numpy_dtype_promotion("standard"):
        variables = module.init(key, carry, x)
        flax_carry, _ = module.apply(variables, carry, x)
    params = from_flax(variables["params"])
    state = rec.LSTMState(h, c) if kind == "lstm" else h
    ours = getattr(rec, f"{kind}_cell")(x, state, params)
    expected = rec.LSTMState(flax_carry[1], flax_carry[0]) if kind == "lstm" else flax_carry
    assert_close(ours, expected, 1e-5)
    again = to_flax(params)
    assert jax.tree.structure(again) == jax.tree.structure(variables["params"])
    assert_close(again, variables["params"], 0)


def test_flax_nnx_gru_lacks_b_hn(key, inputs):
    """flax nnx's GRUCell has no bias inside r * (W_hn h + b_hn) (flax#5594):
    it equals dlref's GRU exactly when b_hn = 0, and differs otherwise."""
    x, h, _ = (jnp.asarray(a, jnp.float32) for a in inputs)
    cell = nnx.GRUCell(D, H, rngs=nnx.Rngs(0))
    w_ih, b_ih = cell.dense_i.kernel[...], cell.dense_i.bias[...]
    w_hh = cell.dense_h.kernel[...]
    zero = rec.GRUParams(w_ih, w_hh, b_ih, jnp.zeros(3 * H, jnp.float32))
    flax_h, _ = cell(h, x)
    assert_close(rec.gru_cell(x, h, zero), flax_h, 1e-6)
    with_b_hn = zero._replace(b_hh=zero.b_hh.at[2 * H :].set(0.5))
    assert float(jnp.max(jnp.abs(rec.gru_cell(x, h, with_b_hn) - flax_h))) > 1e-3


def test_flax_dense_and_batch_norm_round_trip(key):
    w, b = layers.init_dense(key, 3, 4, f64)
    assert_close(convert.dense_from_flax(convert.dense_to_flax(w, b)), (w, b), 0)
    scale, shift, state = layers.init_batch_norm(4, f64)
    assert_close(
        convert.batch_norm_from_flax(convert.batch_norm_to_flax(scale, shift, state)),
        (scale, shift, state),
        0,
    )
