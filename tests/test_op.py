"""The op mechanism itself (dlref.op): what reaches the backward, what is
refused at definition time, named scopes, and forward mode through
``dlref.autodiff_mode``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import BACKWARD_RTOL, SECOND_ORDER_RTOL, assert_close

import dlref
from dlref import InputError, gradcheck, networks


def _scaled_softmax():
    @dlref.op
    def scaled(x, *, axis=-1, scale=1.0):
        return scale * jax.nn.softmax(x, axis=axis)

    return scaled


def test_backward_receives_the_hyperparameters_it_names():
    """A non-default axis reaches the backward: this once silently did not."""
    scaled = _scaled_softmax()

    def fwd(x, *, axis=-1, scale=1.0):
        y = scaled.autodiff(x, axis=axis, scale=scale)
        return y, (y,)

    def bwd(res, dy, *, axis, scale):
        (y,) = res
        p = y / scale
        return (scale * p * (dy - jnp.sum(dy * p, axis=axis, keepdims=True)),)

    scaled.defvjp(fwd, bwd)
    x = jax.random.normal(jax.random.key(0), (3, 4))
    gradcheck.check_vjp(
        lambda x: scaled(x, axis=0, scale=2.0),
        lambda x: scaled.autodiff(x, axis=0, scale=2.0),
        x,
        key=jax.random.key(1),
        rtol=BACKWARD_RTOL,
    )


def test_a_backward_taking_kwargs_is_refused_at_defvjp():
    scaled = _scaled_softmax()
    with pytest.raises(TypeError, match=r"op scaled: bwd may not take \*\*kwargs"):
        scaled.defvjp(lambda x, **h: (x, ()), lambda res, dy, **hyper: (dy,))


def test_a_backward_naming_an_unknown_hyperparameter_is_refused():
    scaled = _scaled_softmax()
    with pytest.raises(TypeError, match=r"bwd declares \['axes'\], which are not hyperparameters"):
        scaled.defvjp(lambda x, **h: (x, ()), lambda res, dy, *, axes: (dy,))


def test_op_is_a_typed_class_with_the_forward_signature():
    from dlref import activations

    assert isinstance(activations.softmax, dlref.Op) and dlref.is_op(activations.softmax)
    assert activations.softmax.__name__ == "softmax"
    assert "axis" in str(activations.softmax.signature)
    assert activations.softmax.hyper == {"axis"}


def test_named_scopes_reach_the_compiled_program():
    """A profiler's trace and the benchmark's HLO name dlref's ops."""
    from dlref import activations

    x = jnp.ones((2, 3))
    lowered = jax.jit(jax.grad(lambda x: activations.softmax(x).sum())).lower(x)
    text = lowered.as_text(debug_info=True)
    assert "softmax_fwd" in text and "softmax_bwd" in text


def test_a_traced_hyperparameter_is_refused_with_its_name():
    from dlref import activations

    with pytest.raises(InputError, match="softmax: `axis` is a static hyperparameter"):
        jax.jit(lambda a: activations.softmax(jnp.ones((2, 2)), axis=a))(0)


@pytest.fixture
def mlp_problem(key):
    k_params, k_x, k_y = jax.random.split(key, 3)
    params = networks.init_mlp(k_params, (4, 5, 3), jnp.float64)
    x = jax.random.normal(k_x, (6, 4), jnp.float64)
    labels = jax.random.randint(k_y, (6,), 0, 3)
    return params, x, labels


def test_forward_mode_of_the_mlp_loss_equals_autodiff(mlp_problem):
    """jax.jvp and jax.jacfwd under autodiff_mode, jax.hessian through the
    hand-written backward: each equals the same transformation of the plain forward."""
    params, x, labels = mlp_problem
    tangent = jax.tree.map(jnp.ones_like, params)

    def loss(p):
        return networks.mlp_loss(p, x, labels, activation="tanh")

    def plain(p):
        return networks.mlp_loss.autodiff(p, x, labels, activation="tanh")

    with pytest.raises(TypeError, match="can't apply forward-mode autodiff"):
        jax.jvp(loss, (params,), (tangent,))
    with dlref.autodiff_mode():
        jvp = jax.jvp(loss, (params,), (tangent,))
        jacfwd = jax.jacfwd(loss)(params)
    assert_close(jvp, jax.jvp(plain, (params,), (tangent,)), BACKWARD_RTOL)
    assert_close(jacfwd, jax.jacfwd(plain)(params), BACKWARD_RTOL)
    # Forward over reverse: the hand-written backward differentiated by jacfwd;
    # the two sides differentiate different (equal) expressions.
    assert_close(jax.hessian(loss)(params), jax.hessian(plain)(params), SECOND_ORDER_RTOL)


def test_gradcheck_defaults_follow_the_dtype():
    """A correct op passes both checks in float32 with the default tolerances
    (1e-6 and 1e-10 are float64 bounds, which a float32 check cannot meet)."""
    from dlref import activations

    x = jax.random.normal(jax.random.key(0), (8,), jnp.float32)
    result = gradcheck.check_grad(lambda x: activations.tanh(x).sum(), x)
    assert result.max_rel > 1e-7  # float32 differences are not float64-sharp
    gradcheck.check_vjp(activations.softplus, jax.nn.softplus, x, key=jax.random.key(1))
    assert gradcheck.DEFAULT_RTOL["grad"][jnp.dtype(jnp.float64)] == 1e-6
    np.testing.assert_equal(gradcheck.DEFAULT_RTOL["vjp"][jnp.dtype(jnp.float64)], 1e-10)


def test_array_hyperparameter_cotangent_given_or_nan():
    """A floating array hyperparameter gets the cotangent bwd gives in its trailing
    dict; one bwd does not give is NaN, never a silent 0."""

    def make(with_cotangent):
        @dlref.op(arrays=("scale",))
        def scaled(x, *, scale: float | jax.Array):
            return scale * x

        def bwd(res, dy, *, scale):
            (x,) = res
            return (scale * dy, {"scale": jnp.sum(x * dy)}) if with_cotangent else (scale * dy,)

        scaled.defvjp(lambda x, *, scale: (scale * x, (x,)), bwd)
        return scaled

    x = jnp.arange(3.0, dtype=jnp.float64)
    for with_cotangent in (True, False):
        scaled = make(with_cotangent)
        loss = lambda s, x, f=scaled: jnp.sum(f(x, scale=s) ** 2)
        ds, dx = jax.grad(loss, argnums=(0, 1))(jnp.float64(2.0), x)
        assert_close(dx, jax.grad(loss, argnums=1)(jnp.float64(2.0), x), 0)  # x's, either way
        assert_close(dx, 8.0 * x, 0)
        if with_cotangent:
            assert_close(ds, 2 * 2.0 * jnp.sum(x * x), 0)
        else:
            assert np.isnan(ds)


def test_hyperparameter_kinds_follow_the_annotation():
    """``float | None`` takes a real number or None; a flag takes True or False; an
    unannotated hyperparameter takes its default's kind."""

    @dlref.op
    def f(x, *, scale: float | None = None, flag: bool = False, count=1):
        return x

    f.defvjp(lambda x, **kw: (x, ()), lambda res, dy: (dy,))
    x = jnp.ones(2)
    for ok in ({"scale": 2}, {"scale": np.float32(0.5)}, {"scale": None}, {"flag": np.bool_(True)}):
        f(x, **ok)
    for bad, said in (
        ({"scale": "0.5"}, "`scale` must be a real number or None; got '0.5'"),
        ({"flag": "no"}, "`flag` must be True or False; got 'no'"),
        ({"count": 2.5}, "`count` must be an integer; got 2.5"),
    ):
        with pytest.raises(InputError, match=f"^f: {said}"):
            f(x, **bad)


# --- an eager call runs compiled ---------------------------------------------------------


def _counted_op(check=None):
    """An op whose forward counts its traces and runs ``check(x)`` first."""
    traces = []

    @dlref.op
    def twice(x):
        traces.append(type(x).__name__)
        if check is not None:
            check(x)
        return 2 * x

    twice.defvjp(lambda x: (twice.autodiff(x), ()), lambda res, dy: (2 * dy,))
    return twice, traces


def test_an_eager_call_runs_one_compiled_program():
    """Eager calls trace the forward once per shape and dtype, then reuse the program."""
    twice, traces = _counted_op()
    x = jnp.arange(3.0)
    for _ in range(3):
        np.testing.assert_array_equal(twice(x), 2 * x)
    assert len(traces) == 1 and "Tracer" in traces[0], traces
    twice(jnp.arange(4.0))
    assert len(traces) == 2, traces
    # a transformation traces the custom_vjp as before, and the backward is the hand-written one
    assert jax.grad(lambda x: twice(x).sum())(x).tolist() == [2.0, 2.0, 2.0]


def test_a_value_check_raises_in_an_eager_call_with_its_full_message():
    """A value check that meets the compiled trace is deferred; a failed one reruns the
    call uncompiled, where it raises as before. Under a user's jit it checks nothing."""
    twice, _ = _counted_op(lambda x: dlref._checks.in_unit_interval("twice", x=x))
    np.testing.assert_array_equal(twice(jnp.array([0.0, 0.5])), [0.0, 1.0])
    with pytest.raises(InputError, match=r"twice: `x` must lie in \[0, 1\]; got values in"):
        twice(jnp.array([0.5, 2.0]))
    assert jax.jit(twice)(jnp.array([0.5, 2.0])).tolist() == [1.0, 4.0]
    # on constants inside a user's trace: the op as traced before (the custom_vjp)
    assert jax.jit(lambda y: twice(jnp.array([3.0])) + y)(1.0).tolist() == [7.0]


def test_a_forward_that_reads_its_values_runs_uncompiled():
    """A forward needing concrete values (``float(x)``) still works eagerly."""
    twice, traces = _counted_op(lambda x: float(x.sum()))
    np.testing.assert_array_equal(twice(jnp.ones(2)), [2.0, 2.0])
    assert traces[-1] == "ArrayImpl", traces
