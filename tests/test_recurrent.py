"""Recurrent networks beyond the registry's five checks: sequences are repeated
cells, rematerialized backpropagation through time, sequences of no steps, what
the backward stores, the initializers, and the error messages."""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import BACKWARD_RTOL, assert_close
from jax.ad_checkpoint import print_saved_residuals

from dlref import InputError, gradcheck
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
    # float64: the scan and the eager loop run the cell as different XLA programs, which may
    # order its sums differently; a few ulps per step over 7 steps
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

    assert_close(loss(seq)(xs, state, params), loss(seq.autodiff)(xs, state, params), BACKWARD_RTOL)


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
    # float64: each example's rows are computed alike; another batch size may change the
    # matmul's blocking only, a few ulps
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
    with pytest.raises(InputError, match=r"lstm: `state0.h` must have shape \(3, 6\)"):
        rec.lstm(xs, rec.zeros_state(2, 6, lstm=True), params)
    with pytest.raises(
        InputError, match=r"lstm: `state0` must be an LSTMState \(h, c\); got tuple"
    ):
        rec.lstm(xs, (state.c, state.h), params)  # flax's carry (c, h)
    with pytest.raises(InputError, match=r"rnn: `h0` must be an array \(batch, hidden\)"):
        rec.rnn(xs, state, rec.init_rnn(key, 4, 6))
    with pytest.raises(InputError, match=r"gru: arguments must share one dtype"):
        rec.gru(xs, rec.zeros_state(3, 6, f64), rec.init_gru(key, 4, 6))


@pytest.mark.parametrize("kind", KINDS)
def test_sequence_names_batch_major_xs_as_swapped(kind, key):
    """``xs`` given batch-major ``(batch, time, d_in)``: the message says that
    ``xs`` is time-major and its axes look swapped, rather than blaming the state."""
    seq, _, init = KINDS[kind]
    params = init(key, 4, 6)
    state0 = rec.zeros_state(16, 6, lstm=kind == "lstm")
    batch_major = jnp.ones((16, 12, 4), jnp.float32)
    with pytest.raises(
        InputError,
        match=rf"{kind}: `xs` must be time-major \(time, batch, d_in\) with batch 16 .*; "
        r"got shape \(16, 12, 4\), whose first two axes look swapped",
    ):
        seq(batch_major, state0, params)
    hs, _ = seq(jnp.swapaxes(batch_major, 0, 1), state0, params)  # the fix the message names
    assert hs.shape == (12, 16, 6)


@pytest.mark.parametrize("every", [None, 3])
@pytest.mark.parametrize("variant", ["manual", "autodiff"])
@pytest.mark.parametrize("kind", KINDS)
def test_sequence_of_no_steps_returns_the_initial_state(kind, variant, every, key):
    """``T = 0``: ``hs`` is ``(0, batch, hidden)``, the last state is the first;
    the last state's gradient passes to the initial state, and those of ``xs``
    and the parameters are 0."""
    seq, _, init = KINDS[kind]
    fn = seq if variant == "manual" else seq.autodiff
    k_params, k_state, k_ct = jax.random.split(key, 3)
    params = init(k_params, 4, 6, dtype=f64)
    state0 = gradcheck.random_like(k_state, rec.zeros_state(3, 6, f64, lstm=kind == "lstm"))
    xs = jnp.zeros((0, 3, 4), f64)
    run = lambda xs, state0, params: fn(xs, state0, params, checkpoint_every=every)
    (hs, last), vjp = jax.vjp(run, xs, state0, params)
    assert hs.shape == (0, 3, 6)
    _assert_equal(last, state0)
    dlast = gradcheck.random_like(k_ct, last)
    dxs, dstate0, dparams = vjp((jnp.zeros_like(hs), dlast))
    assert dxs.shape == xs.shape
    _assert_equal(dstate0, dlast)
    _assert_equal(dparams, jax.tree.map(jnp.zeros_like, params))


def _assert_equal(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(a, e)


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
def test_checkpoint_every_takes_a_concrete_integer_scalar_as_its_value(kind, key):
    """``checkpoint_every=np.array(2)`` acts exactly as ``2``, in both variants:
    the traced gradient is the same program (whose values
    test_rematerialized_bptt_gradients_equal_plain_ones checks)."""
    seq, _, init = KINDS[kind]
    params = init(key, 3, 5, dtype=f64)
    xs = jax.random.normal(key, (4, 2, 3), f64)
    state0 = rec.zeros_state(2, 5, f64, lstm=kind == "lstm")

    def grad(fn, every):
        loss = lambda xs, state0, params: jnp.sum(fn(xs, state0, params, checkpoint_every=every)[0])
        return jax.grad(loss, argnums=(0, 1, 2))

    for fn in (seq, seq.autodiff):
        expected = str(jax.make_jaxpr(grad(fn, 2))(xs, state0, params))
        for every in (np.array(2), jnp.array(2), np.int32(2)):
            assert str(jax.make_jaxpr(grad(fn, every))(xs, state0, params)) == expected


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
                # the kind (an int or None) is checked first where the op is called
                match=rf"{kind}: `checkpoint_every` must be (None or a positive integer that "
                rf"divides the sequence length 10|an integer or None); got {shown}",
            ):
                fn(xs, state0, params, checkpoint_every=every)
    with pytest.raises(InputError, match=r"`checkpoint_every` is a static hyperparameter"):
        jax.jit(lambda k: seq(xs, state0, params, checkpoint_every=k))(jnp.asarray(2))


# Per example and step, the numbers the hand-written backward stores besides its
# arguments, in units of ``hidden``, as the sequence docstrings state: RNN h_t;
# LSTM h_t, c_t and four gates; GRU h_t, r, z, n and W_hn h_{t-1} + b_hn. With
# ``checkpoint_every=k``, only the state at the start of each segment.
STORED_PER_STEP = {"rnn": 1, "lstm": 6, "gru": 5}
STATE_SIZE = {"rnn": 1, "lstm": 2, "gru": 1}


def _saved(fn, args, capsys):
    """``(sizes of the saved arguments, total size of the saved intermediates)``."""
    print_saved_residuals(fn, *args)
    lines = capsys.readouterr().out.splitlines()

    def size(line):
        dims = re.match(r"\w+\[([\d,]*)\]", line).group(1)
        return math.prod(int(d) for d in dims.split(",") if d)

    arguments = sorted(size(line) for line in lines if "from the argument" in line)
    return arguments, sum(size(line) for line in lines if "from the argument" not in line)


@pytest.mark.parametrize("every", [None, 4])
@pytest.mark.parametrize("kind", KINDS)
def test_sequence_backward_stores_what_the_docstring_states(kind, every, key, capsys):
    seq, _, init = KINDS[kind]
    steps, batch, d_in, hidden = 8, 3, 4, 6
    params = init(key, d_in, hidden, dtype=f64)
    state0 = rec.zeros_state(batch, hidden, f64, lstm=kind == "lstm")
    xs = jax.random.normal(key, (steps, batch, d_in), f64)
    fn = lambda xs, state0, params: seq(xs, state0, params, checkpoint_every=every)
    arguments, intermediates = _saved(fn, (xs, state0, params), capsys)
    # The backward keeps its three arguments whole: xs, the initial state, the parameters.
    expected_arguments = [a.size for a in jax.tree.leaves((xs, state0, params))]
    assert arguments == sorted(expected_arguments)
    if every is None:
        assert intermediates == steps * batch * hidden * STORED_PER_STEP[kind]
    else:
        assert intermediates == steps // every * batch * hidden * STATE_SIZE[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_backward_is_one_hop_from_the_op(kind):
    """Each cell's and sequence's backward is defined in this module and calls
    its own step backward by name."""
    seq, cell, _ = KINDS[kind]
    for fn in (cell, seq):
        assert fn.bwd.__module__ == fn.__module__ == f"{rec.__name__}._{kind}"
        assert f"_{kind}_step_bwd" in fn.bwd.__code__.co_names, fn.bwd.__name__


@pytest.mark.slow  # compiles T = 4096 twice
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
    # float64, an independent LSTM (its own gate sums) over 7 steps: tens of ulps
    assert_close((jnp.swapaxes(y, 0, 1), h[0], c[0]), (hs, last.h, last.c), 1e-13)
