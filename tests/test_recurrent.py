"""Recurrent networks beyond the registry's five checks: sequences are repeated
cells, rematerialized backpropagation through time, the initializers, and the
error messages."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close

from dlref import InputError
from dlref import recurrent as rec

f64 = jnp.float64
KINDS = {
    "rnn": (rec.rnn, rec.rnn_cell, rec.init_rnn),
    "lstm": (rec.lstm, rec.lstm_cell, rec.init_lstm),
    "gru": (rec.gru, rec.gru_cell, rec.init_gru),
}


@pytest.mark.parametrize("kind", KINDS)
def test_sequence_is_the_cell_repeated(kind, key):
    seq, cell, init = KINDS[kind]
    params = init(key, 4, 6, dtype=f64)
    xs = jax.random.normal(key, (7, 3, 4), f64)
    state = rec.zeros_state(3, 6, f64, lstm=kind == "lstm")
    hs, last = seq(xs, state, params)
    outputs = []
    for x in xs:
        state = cell(x, state, params)
        outputs.append(state.h if kind == "lstm" else state)
    assert_close(hs, jnp.stack(outputs), 1e-13)
    assert_close(last, state, 1e-13)


@pytest.mark.parametrize("kind", KINDS)
def test_bptt_gradient_equals_grad_of_the_forward_scan(kind, key):
    """The hand-written reverse scan against jax.grad of the same forward scan,
    through a loss on every output and the last state, at a longer sequence."""
    seq, _, init = KINDS[kind]
    params = init(jax.random.key(1), 4, 6, dtype=f64)
    xs = jax.random.normal(key, (40, 2, 4), f64)
    state = jax.tree.map(lambda a: a + 0.1, rec.zeros_state(2, 6, f64, lstm=kind == "lstm"))
    weights = jax.random.normal(jax.random.key(2), (40, 2, 6), f64)

    def loss(fn):
        def f(xs, state, params):
            hs, last = fn(xs, state, params)
            return jnp.vdot(weights, hs) + sum(jnp.sum(jnp.sin(x)) for x in jax.tree.leaves(last))

        return jax.jit(jax.grad(f, argnums=(0, 1, 2)))

    assert_close(loss(seq)(xs, state, params), loss(seq.autodiff)(xs, state, params), 1e-10)


def test_lstm_forget_bias_initialization(key):
    params = rec.init_lstm(key, 3, 5, forget_bias=2.0)
    i, f, g, o = np.split(np.asarray(params.b), 4)
    np.testing.assert_array_equal(f, 2.0)
    for gate in (i, g, o):
        np.testing.assert_array_equal(gate, 0.0)
    assert params.w_ih.shape == (3, 20) and params.w_hh.shape == (5, 20)
    assert float(jnp.max(jnp.abs(params.w_hh))) <= 5**-0.5


def test_batch_major_data_is_transposed(key):
    """The sequences are time-major; batch-major data is one swapaxes away."""
    params = rec.init_gru(key, 4, 5, dtype=f64)
    batch_major = jax.random.normal(key, (3, 8, 4), f64)  # (batch, time, d_in)
    hs, _ = rec.gru(jnp.swapaxes(batch_major, 0, 1), rec.zeros_state(3, 5, f64), params)
    first = rec.gru(batch_major[:1].swapaxes(0, 1), rec.zeros_state(1, 5, f64), params)[0]
    assert_close(hs[:, :1], first, 1e-14)


def test_recurrent_errors_name_the_argument(key):
    params = rec.init_lstm(key, 4, 6)
    state = rec.zeros_state(3, 6, lstm=True)
    xs = jnp.ones((5, 3, 4), jnp.float32)
    with pytest.raises(InputError, match=r"lstm: `xs` must have rank 3"):
        rec.lstm(xs[0], state, params)
    with pytest.raises(InputError, match=r"lstm: `params.w_ih` must have shape \(5, 24\)"):
        rec.lstm(jnp.ones((5, 3, 5), jnp.float32), state, params)
    with pytest.raises(InputError, match=r"lstm_cell: `state.c` must have shape \(3, 6\)"):
        rec.lstm_cell(xs[0], rec.LSTMState(state.h, jnp.ones((3, 7), jnp.float32)), params)
    with pytest.raises(InputError, match=r"gru: arguments must share one dtype"):
        rec.gru(xs, rec.zeros_state(3, 6, f64), rec.init_gru(key, 4, 6))


def _sequence_grads(fn, every, kind, key):
    """Jitted gradients of a loss on every output and the last state, at T = 12."""
    params = KINDS[kind][2](key, 3, 5, dtype=f64)
    xs = jax.random.normal(key, (12, 2, 3), f64)
    state0 = jax.tree.map(lambda a: a + 0.2, rec.zeros_state(2, 5, f64, lstm=kind == "lstm"))

    def loss(xs, state0, params):
        hs, last = fn(xs, state0, params, checkpoint_every=every)
        return jnp.sum(jnp.sin(hs)) + sum(jnp.sum(a**2) for a in jax.tree.leaves(last))

    return jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(xs, state0, params)


@pytest.mark.parametrize("variant", ["manual", "autodiff"])
@pytest.mark.parametrize("kind", KINDS)
def test_rematerialized_bptt_gradients_equal_plain_ones(kind, variant, key):
    seq = KINDS[kind][0]
    fn = seq if variant == "manual" else seq.autodiff
    plain = _sequence_grads(fn, None, kind, key)
    for every in (1, 4, 12):
        # float64: the segments only regroup the sums over time of the weight gradients.
        assert_close(_sequence_grads(fn, every, kind, key), plain, 1e-13, f"every={every}")


@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_every_must_divide_the_sequence_length(kind, key):
    seq, _, init = KINDS[kind]
    params = init(key, 3, 4)
    state0 = rec.zeros_state(2, 4, lstm=kind == "lstm")
    xs = jnp.ones((10, 2, 3), jnp.float32)
    given = [(4, "4"), (0, "0"), (-2, "-2"), (2.0, "2.0"), (True, "True"), ("2", "'2'")]
    # The op takes a concrete array as its Python value; .autodiff shows it as given.
    given += [(np.array(2.5), r"(2\.5|array\(2\.5\))")]
    for fn in (seq, seq.autodiff):
        for every, shown in given:
            with pytest.raises(
                InputError,
                match=rf"{kind}: `checkpoint_every` must be None or a positive integer that "
                rf"divides the sequence length 10; got {shown}",
            ):
                fn(xs, state0, params, checkpoint_every=every)
    with pytest.raises(InputError, match=r"`checkpoint_every` is a static hyperparameter"):
        jax.jit(lambda k: seq(xs, state0, params, checkpoint_every=k))(jnp.asarray(2))


def test_lstm_rematerialization_bounds_memory():
    """T = 4096 (batch 16, hidden 128, float32), a loss on the last state: the
    compiled temporary memory of jit(value_and_grad) with checkpoint_every=64
    (~sqrt(T)) against storing every step. Measured: 576 MiB -> 10.7 MiB (54x)
    for the hand-written backward, 768 -> 13.4 MiB for autodiff."""
    batch, d_in, hidden, steps = 16, 32, 128, 4096
    params = rec.init_lstm(jax.random.key(0), d_in, hidden)
    state0 = rec.zeros_state(batch, hidden, lstm=True)
    xs = jnp.ones((steps, batch, d_in), jnp.float32)

    def temp_bytes(fn, every):
        loss = lambda p, xs: jnp.sum(fn(xs, state0, p, checkpoint_every=every)[1].h)
        compiled = jax.jit(jax.value_and_grad(loss)).lower(params, xs).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    for fn in (rec.lstm, rec.lstm.autodiff):
        full, remat = temp_bytes(fn, None), temp_bytes(fn, 64)
        assert full / remat > 20, (full, remat)
        assert remat < 32 * 2**20


def test_cudnn_weight_packing_matches_jax_reference_lstm(key):
    """The benchmark's cuDNN peer packs LSTMParams into cuDNN's flat weights; on
    the CPU, jax.experimental.rnn's reference LSTM reads the same layout."""
    from jax.experimental import rnn

    from dlref import _peers

    params = rec.init_lstm(key, 4, 6, dtype=f64)
    params = params._replace(b=jax.random.normal(key, params.b.shape, f64))
    xs = jax.random.normal(jax.random.key(1), (7, 3, 4), f64)
    state = rec.LSTMState(*jax.random.normal(jax.random.key(2), (2, 3, 6), f64))
    w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(_peers.cudnn_weights(params), 4, 6, 1, False)
    lengths = jnp.full((3,), 7, jnp.int32)
    y, h, c = rnn.lstm_ref(
        jnp.swapaxes(xs, 0, 1),
        state.h[None],
        state.c[None],
        w_ih,
        w_hh,
        b_ih,
        b_hh,
        lengths,
        4,
        6,
        1,
        0.0,
        False,
    )
    hs, last = rec.lstm(xs, state, params)
    assert_close((jnp.swapaxes(y, 0, 1), h[0], c[0]), (hs, last.h, last.c), 1e-13)
