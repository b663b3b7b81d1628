"""Parameter converters: PyTorch's state-dict layouts (checked against PyTorch's
equations and running-statistics update written in NumPy from its documentation,
with its two biases and ``(out, in)`` weights) and flax linen's parameter trees
(checked against flax)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers import assert_close

from dlref import InputError, convert, layers
from dlref import recurrent as rec

f64 = jnp.float64
H, D, B = 5, 4, 3


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def torch_state(key, rows: int):
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
    # float64, the same equations in another order (NumPy's sigmoid, tanh, matmul): tens of
    # ulps, 1e-13 = 450 eps
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
    # float64, the same equations in another order: tens of ulps
    assert_close(ours, torch_gru_step(s, x, h), 1e-13)
    back = convert.gru_to_torch(convert.gru_from_torch(s))
    for name, value in s.items():
        np.testing.assert_array_equal(back[name], value)


def test_rnn_from_torch_follows_torch_equations(key, inputs):
    s = torch_state(key, H)
    x, h, _ = inputs
    ours = rec.rnn_cell(jnp.asarray(x), jnp.asarray(h), convert.rnn_from_torch(s))
    # float64, the same equations in another order: tens of ulps
    assert_close(ours, torch_rnn_step(s, x, h), 1e-13)
    assert_close(torch_rnn_step(convert.rnn_to_torch(convert.rnn_from_torch(s)), x, h), ours, 1e-13)


def test_dense_and_batch_norm_torch_layouts(key):
    w_torch = np.asarray(jax.random.normal(key, (5, 3), f64))  # nn.Linear: (out, in)
    b = np.arange(5.0)
    w, b_ours = convert.dense_from_torch({"weight": w_torch, "bias": b})
    x = np.asarray(jax.random.normal(key, (2, 3), f64))
    # float64, sums of 3 products and a bias: a few ulps
    np.testing.assert_allclose(
        layers.dense(jnp.asarray(x), w, b_ours), x @ w_torch.T + b, rtol=1e-14
    )
    np.testing.assert_array_equal(convert.dense_to_torch(w, b_ours)["weight"], w_torch)
    state = {
        "weight": np.ones(3),
        "bias": np.zeros(3),
        "running_mean": np.arange(3.0),
        "running_var": np.full(3, 2.0),
        "num_batches_tracked": np.asarray(7, np.int64),
    }
    scale, shift, stats = convert.batch_norm_from_torch(state)
    again = convert.batch_norm_to_torch(scale, shift, stats, steps=7)
    for name in state:
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
    # float32 (flax's initialization): flax's own sigmoid and summation order, tens of ulps
    assert_close(ours, expected, 1e-5)
    again = to_flax(params)
    assert jax.tree.structure(again) == jax.tree.structure(variables["params"])
    assert_close(again, variables["params"], 0)  # a relayout: exact


def test_flax_nnx_gru_lacks_b_hn(key, inputs):
    """flax nnx's GRUCell has no bias inside r * (W_hn h + b_hn) (flax#5594):
    it equals dlref's GRU exactly when b_hn = 0, and differs otherwise."""
    x, h, _ = (jnp.asarray(a, jnp.float32) for a in inputs)
    cell = nnx.GRUCell(D, H, rngs=nnx.Rngs(0))
    w_ih, b_ih = cell.dense_i.kernel[...], cell.dense_i.bias[...]
    w_hh = cell.dense_h.kernel[...]
    zero = rec.GRUParams(w_ih, w_hh, b_ih, jnp.zeros(3 * H, jnp.float32))
    flax_h, _ = cell(h, x)
    # float32: the same equations in another order, a few ulps (1e-6 = 8 eps)
    assert_close(rec.gru_cell(x, h, zero), flax_h, 1e-6)
    # b_hn = 0.5 moves h by far more than float32 round-off
    with_b_hn = zero._replace(b_hh=zero.b_hh.at[2 * H :].set(0.5))
    assert float(jnp.max(jnp.abs(rec.gru_cell(x, h, with_b_hn) - flax_h))) > 1e-3


def test_flax_dense_and_batch_norm_round_trip(key):
    w, b = layers.init_dense(key, 3, 4, f64)
    # relayouts: exact
    assert_close(convert.dense_from_flax(convert.dense_to_flax(w, b)), (w, b), 0)
    scale, shift, state = layers.init_batch_norm(4, f64)
    assert_close(
        convert.batch_norm_from_flax(convert.batch_norm_to_flax(scale, shift, state)),
        (scale, shift, state),
        0,
    )


# --- which PyTorch layouts the recurrent converters take -----------------------------------

KINDS = {"rnn": 1, "lstm": 4, "gru": 3}  # gates per kind


def _from_torch(kind):
    return getattr(convert, f"{kind}_from_torch")


def _to_torch(kind):
    return getattr(convert, f"{kind}_to_torch")


def _as_cell(state: dict) -> dict:
    """An nn.RNN/LSTM/GRU state dict as its cell's: no ``_l0`` suffix."""
    return {k.removesuffix("_l0"): v for k, v in state.items()}


@pytest.mark.parametrize("kind", KINDS)
def test_cell_and_one_layer_state_dicts_give_the_same_params(kind, key):
    layer = torch_state(key, KINDS[kind] * H)
    from_layer, from_cell = _from_torch(kind)(layer), _from_torch(kind)(_as_cell(layer))
    assert_close(from_cell, from_layer, 0)  # the same arrays under other keys: exact
    cell_keys = _to_torch(kind)(from_cell, cell=True)
    assert sorted(cell_keys) == ["bias_hh", "bias_ih", "weight_hh", "weight_ih"]
    assert sorted(_to_torch(kind)(from_cell)) == sorted(layer)
    # exact in fact (an LSTM's or RNN's summed bias comes back as bias_ih, plus a 0 bias_hh);
    # 1e-15 is a margin only
    assert_close(_from_torch(kind)(cell_keys), from_layer, 1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_modules_without_bias_convert_with_zero_biases(kind, key, inputs):
    """``bias=False``: no bias keys; the cell follows PyTorch's equations with 0 biases."""
    full = torch_state(key, KINDS[kind] * H)
    no_bias = {k: v for k, v in full.items() if k.startswith("weight")}
    zero = {**no_bias, **{k: np.zeros_like(v) for k, v in full.items() if k.startswith("bias")}}
    for state in (no_bias, _as_cell(no_bias)):
        assert_close(_from_torch(kind)(state), _from_torch(kind)(zero), 0)  # zeros: exact
    x, h, c = inputs
    params = _from_torch(kind)(no_bias)
    # float64, the same equations in another order: tens of ulps
    if kind == "lstm":
        ours = rec.lstm_cell(jnp.asarray(x), rec.LSTMState(jnp.asarray(h), jnp.asarray(c)), params)
        assert_close((ours.h, ours.c), torch_lstm_step(zero, x, h, c), 1e-13)
    else:
        step = torch_gru_step if kind == "gru" else torch_rnn_step
        ours = getattr(rec, f"{kind}_cell")(jnp.asarray(x), jnp.asarray(h), params)
        assert_close(ours, step(zero, x, h), 1e-13)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "extra",
    ["weight_ih_l1", "weight_ih_l0_reverse", "weight_hr_l0"],
    ids=["second_layer", "bidirectional", "projection"],
)
def test_more_than_one_layer_or_direction_is_refused(kind, extra, key):
    state = torch_state(key, KINDS[kind] * H)
    state[extra] = state["weight_ih_l0"]
    with pytest.raises(InputError, match=rf"{kind}_from_torch: unexpected keys \['{extra}'\]"):
        _from_torch(kind)(state)
    with pytest.raises(InputError, match="supported: one nn"):
        _from_torch(kind)(state)


@pytest.mark.parametrize("kind", KINDS)
def test_a_bias_of_the_wrong_shape_is_refused_not_broadcast(kind, key):
    """A bias of shape (1,) would broadcast over every gate."""
    state = torch_state(key, KINDS[kind] * H)
    for name in ("bias_ih_l0", "bias_hh_l0"):
        bad = {**state, name: np.ones(1)}
        rows = KINDS[kind] * H
        with pytest.raises(InputError, match=rf"`{name}` must have shape \({rows},\).*got \(1,\)"):
            _from_torch(kind)(bad)
        cell_name = name.removesuffix("_l0")
        with pytest.raises(InputError, match=rf"`{cell_name}` must have shape \({rows},\)"):
            _from_torch(kind)(_as_cell(bad))


@pytest.mark.parametrize("kind", KINDS)
def test_recurrent_state_dict_errors_name_the_key(kind, key):
    fn = f"{kind}_from_torch"
    state = torch_state(key, KINDS[kind] * H)
    rows = KINDS[kind] * H
    cases = {
        "missing key `weight_hh_l0`": {k: v for k, v in state.items() if k != "weight_hh_l0"},
        "`bias_ih_l0` and `bias_hh_l0` come together": {
            k: v for k, v in state.items() if k != "bias_hh_l0"
        },
        rf"`weight_ih_l0` must have shape \({rows}, 'any'\)": {
            **state,
            "weight_ih_l0": state["weight_ih_l0"][:-1],
        },
        r"`weight_hh_l0` must have shape": {**state, "weight_hh_l0": state["weight_hh_l0"][:, :-1]},
        "`weight_ih_l0` must be a floating array": {
            **state,
            "weight_ih_l0": state["weight_ih_l0"].astype(np.int32),
        },
        "unexpected keys": {**state, **_as_cell(state)},  # cell and layer keys mixed
    }
    for message, bad in cases.items():
        with pytest.raises(InputError, match=f"{fn}: {message}"):
            _from_torch(kind)(bad)
    with pytest.raises(InputError, match=f"{fn}: `state` must be a dict"):
        _from_torch(kind)([state])


def test_dense_without_bias_and_its_errors(key):
    w_torch = np.asarray(jax.random.normal(key, (5, 3), f64))
    w, b = convert.dense_from_torch({"weight": w_torch})  # nn.Linear(3, 5, bias=False)
    assert_close((w, b), (w_torch.T, np.zeros(5)), 0)
    with pytest.raises(InputError, match=r"dense_from_torch: `bias` must have shape \(5,\)"):
        convert.dense_from_torch({"weight": w_torch, "bias": np.ones(1)})
    with pytest.raises(InputError, match="dense_from_torch: missing key `weight`"):
        convert.dense_from_torch({"bias": np.ones(5)})
    w, b = convert.dense_from_flax({"kernel": w_torch.T})  # flax Dense(use_bias=False)
    assert_close((w, b), (w_torch.T, np.zeros(5)), 0)


# --- batch norm: PyTorch's running statistics, simulated in NumPy ----------------------------


def torch_batch_norm_update(state: dict, x: np.ndarray, momentum: float | None) -> dict:
    """One training step of nn.BatchNorm1d's running statistics, as PyTorch documents
    them: ``num_batches_tracked += 1``; with ``momentum=None`` the factor is
    ``1 / num_batches_tracked`` (a cumulative average); ``r = (1 - a) * r + a * batch``,
    the variance term the unbiased batch variance."""
    count = int(state["num_batches_tracked"]) + 1
    a = 1 / count if momentum is None else momentum
    return {
        **state,
        "running_mean": (1 - a) * state["running_mean"] + a * x.mean(0),
        "running_var": (1 - a) * state["running_var"] + a * x.var(0, ddof=1),
        "num_batches_tracked": np.asarray(count, np.int64),
    }


def _batches(key, steps: int, n: int, features: int = 3) -> list:
    keys = jax.random.split(key, steps)
    return [
        np.asarray(2 + 3 * jax.random.normal(k, (n, features), f64)) for k in keys
    ]  # mean 2, variance 9: far from the initial 0 and 1


def test_batch_norm_running_variance_relation_to_torch(key):
    """After t steps from variance 1 with batches of n rows, exactly
    ``torch - (1 - a)**t = n / (n - 1) * (dlref - m**t)``, ``m = 1 - a``; the means agree."""
    a, n, steps = 0.1, 6, 5
    m = 1 - a
    scale, shift, ours = layers.init_batch_norm(3, f64)
    torch = convert.batch_norm_to_torch(scale, shift, ours, steps=0)
    for x in _batches(key, steps, n):
        _, ours = layers.batch_norm(jnp.asarray(x), scale, shift, ours, momentum=m)
        torch = torch_batch_norm_update(torch, x, a)
    t = int(torch["num_batches_tracked"])
    assert t == steps
    # float64: five moving-average steps computed in another order, a few ulps each
    np.testing.assert_allclose(ours.mean, torch["running_mean"], rtol=1e-12)
    # both sides subtract m**t ~ 0.59 from variances ~ 4: a few ulps, mildly amplified
    np.testing.assert_allclose(
        torch["running_var"] - (1 - a) ** t, n / (n - 1) * (ours.var - m**t), rtol=1e-10
    )
    # The plain ratio n / (n - 1) does not hold while m**t is not negligible.
    naive = np.max(np.abs(torch["running_var"] / (n / (n - 1) * ours.var) - 1))
    assert naive > 0.01
    # The converter's docstring inverts it: dlref's variance from torch's.
    _, _, converted = convert.batch_norm_from_torch(torch)
    recovered = m**t + (n - 1) / n * (converted.var - m**t)
    np.testing.assert_allclose(recovered, ours.var, rtol=1e-10)  # as above


def test_batch_norm_to_torch_count_lets_a_cumulative_average_continue(key):
    """With ``momentum=None`` PyTorch's running statistics are the average over the
    batches, weighted by ``num_batches_tracked``: a state carried through dlref with
    its step count continues exactly as if it had never left."""
    batches = _batches(key, 7, 5)
    scale, shift, stats = layers.init_batch_norm(3, f64)
    start = convert.batch_norm_to_torch(scale, shift, stats, steps=0)
    straight = start
    for x in batches:
        straight = torch_batch_norm_update(straight, x, None)
    part = start
    for x in batches[:4]:
        part = torch_batch_norm_update(part, x, None)
    carried = convert.batch_norm_to_torch(*convert.batch_norm_from_torch(part), steps=4)
    for x in batches[4:]:
        carried = torch_batch_norm_update(carried, x, None)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        # the statistics pass through dlref's state as copies; the same updates follow:
        # float64, a few ulps at most
        np.testing.assert_allclose(carried[name], straight[name], rtol=1e-14)
    np.testing.assert_allclose(straight["running_mean"], np.mean([x.mean(0) for x in batches], 0))


def test_batch_norm_to_torch_needs_a_valid_step_count():
    scale, shift, stats = layers.init_batch_norm(2)
    with pytest.raises(TypeError, match="steps"):
        convert.batch_norm_to_torch(scale, shift, stats)  # the count is required
    for bad in (-1, 2.5, True, np.ones(2, np.int64)):
        with pytest.raises(InputError, match="batch_norm_to_torch: `steps` must be a non-negative"):
            convert.batch_norm_to_torch(scale, shift, stats, steps=bad)
    state = convert.batch_norm_to_torch(scale, shift, stats, steps=np.int64(3))
    assert state["num_batches_tracked"].dtype == np.int64 and int(state["num_batches_tracked"]) == 3


def test_batch_norm_without_running_statistics_is_refused():
    """``track_running_stats=False`` (torch) and parameters without ``batch_stats``
    (flax) name what is missing instead of a KeyError."""
    with pytest.raises(
        InputError,
        match=r"batch_norm_from_torch: missing key `running_mean`.*"
        r"track_running_stats=False",
    ):
        convert.batch_norm_from_torch({"weight": np.ones(3), "bias": np.zeros(3)})
    with pytest.raises(InputError, match="batch_norm_from_flax: missing collection `batch_stats`"):
        convert.batch_norm_from_flax({"params": {"scale": np.ones(3), "bias": np.zeros(3)}})
    with pytest.raises(
        InputError, match=r"batch_norm_from_torch: `running_var` must have the shape"
    ):
        convert.batch_norm_from_torch({"running_mean": np.zeros(3), "running_var": np.ones(2)})
    with pytest.raises(
        InputError, match="batch_norm_from_torch: `weight` and `bias` come together"
    ):
        convert.batch_norm_from_torch(
            {"weight": np.ones(3), "running_mean": np.zeros(3), "running_var": np.ones(3)}
        )
    with pytest.raises(InputError, match="batch_norm_from_torch: `num_batches_tracked` must be"):
        convert.batch_norm_from_torch(
            {"running_mean": np.zeros(3), "running_var": np.ones(3), "num_batches_tracked": -1}
        )


def test_batch_norm_without_affine_parameters():
    """``affine=False`` (torch) and ``use_scale=use_bias=False`` (flax): scale 1, shift 0."""
    stats = {"running_mean": np.arange(3.0), "running_var": np.full(3, 2.0)}
    scale, shift, state = convert.batch_norm_from_torch(stats)
    # ones, zeros and copies: exact
    assert_close((scale, shift), (np.ones(3), np.zeros(3)), 0)
    assert_close(state, layers.BatchNormState(stats["running_mean"], stats["running_var"]), 0)
    flax_stats = {"batch_stats": {"mean": np.zeros(3), "var": np.ones(3)}}
    scale, shift, _ = convert.batch_norm_from_flax(flax_stats)
    assert_close((scale, shift), (np.ones(3), np.zeros(3)), 0)
    scale, shift, _ = convert.batch_norm_from_flax({**flax_stats, "params": {"bias": np.ones(3)}})
    assert_close((scale, shift), (np.ones(3), np.ones(3)), 0)


def test_flax_converters_name_missing_keys():
    with pytest.raises(InputError, match=r"lstm_from_flax: missing key `if`"):
        convert.lstm_from_flax({"ii": {"kernel": np.ones((2, 3))}})
    with pytest.raises(InputError, match=r"gru_from_flax: missing key `bias` .*inside `hn`"):
        params = {k: {"kernel": np.ones((2, 3)), "bias": np.ones(3)} for k in ("ir", "iz", "in")}
        params |= {k: {"kernel": np.ones((3, 3))} for k in ("hr", "hz", "hn")}
        convert.gru_from_flax(params)
    with pytest.raises(InputError, match=r"rnn_from_flax: missing key `h`"):
        convert.rnn_from_flax({"i": {"kernel": np.ones((2, 3)), "bias": np.ones(3)}})


def test_to_torch_converters_return_numpy_arrays_from_jax_parameters(key):
    """A PyTorch state dict holds NumPy arrays (torch.from_numpy), whatever the
    parameters were: JAX arrays, from dlref's initializers."""
    k1, k2 = jax.random.split(key)
    dicts = [
        convert.dense_to_torch(*layers.init_dense(k1, 2, 3)),
        convert.batch_norm_to_torch(*layers.init_batch_norm(3), steps=2),
        convert.lstm_to_torch(rec.init_lstm(k2, 2, 3)),
        convert.gru_to_torch(rec.init_gru(k2, 2, 3), cell=True),
    ]
    for state in dicts:
        for name, value in state.items():
            assert type(value) is np.ndarray, (name, type(value))
