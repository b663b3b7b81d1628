"""The five checks, run on every op in the registry.

1. hand-written backward = autodiff of the forward (float64, random cotangents);
2. hand-written backward = central finite differences (float64);
3. forward (and gradient) = the peer implementation from jax.nn / optax / flax;
4. values and gradients finite for every finite input, in four float dtypes;
5. jit, vmap and grad-of-grad.

Every check runs compiled (one jitted pullback per op and variant, shared):
eager execution of a ``lax.scan`` would dominate the suite's time.
"""

import functools

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    BACKWARD_RTOL,
    FINITE_DIFF_RTOL,
    FLOAT_DTYPES,
    JIT_RTOL,
    NUMPY_DTYPES,
    PEER_RTOL,
    SECOND_ORDER_RTOL,
    assert_close,
    cotangent_loss,
    random_cotangent,
    tree_vdot,
)
from hypothesis import assume, given

import dlref
from dlref import OPS, InputError, gradcheck
from dlref._registry import REAL, SIMPLEX, UNIT, Arg, _is_arg
from dlref.gradcheck import restrict

SPECS = list(OPS.values())
WITH_PEER = [s for s in SPECS if s.peer is not None]
parametrize_ops = pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
# The transformation checks (dtypes, jit, vmap, grad of grad, forward mode) run by
# default on each op's main entry; its other configurations (an axis, a mask, a stride:
# the registry's variants) get them under -m slow, and every other check by default.
parametrize_main_ops = pytest.mark.parametrize(
    "spec",
    [
        pytest.param(s, id=s.name, marks=[pytest.mark.slow] if s.name != s.fn.__name__ else [])
        for s in SPECS
    ],
)


def _function(spec, variant):
    """The op's variant ("manual", "autodiff" or "peer"), reading ``loss_output``
    for the peer comparisons and finite differences when ``read`` is set."""
    return spec.peer if variant == "peer" else getattr(spec, variant)


def diff_args(spec, args):
    return [args[i] for i in spec.diff_argnums]


@functools.cache
def pullback(name, variant, read=False):
    """jit((args, cotangent) -> (output, gradients of the floating inputs))."""
    spec = OPS[name]
    fn = _function(spec, variant)
    if read and spec.loss_output is not None:
        fn = lambda *a, fn=fn: spec.loss_output(fn(*a))

    def run(args, cotangent):
        out, vjp = jax.vjp(restrict(fn, args, spec.diff_argnums), *diff_args(spec, args))
        return out, vjp(cotangent)

    return jax.jit(run)


def output_shape(spec, args, read=False):
    out = jax.eval_shape(spec.manual, *args)
    return spec.loss_output(out) if read and spec.loss_output else out


# 1. ------------------------------------------------------------------------------


@parametrize_ops
def test_backward_matches_autodiff(spec, key):
    for k in jax.random.split(key, 3):
        k_args, k_ct = jax.random.split(k)
        args = spec.example_args(k_args, jnp.float64)
        ct = gradcheck.random_like(k_ct, output_shape(spec, args))
        manual = pullback(spec.name, "manual")(args, ct)
        autodiff = pullback(spec.name, "autodiff")(args, ct)
        assert_close(manual, autodiff, BACKWARD_RTOL)


# 2. ------------------------------------------------------------------------------


@parametrize_ops
def test_backward_matches_finite_differences(spec, key):
    """Through the output a training loss reads: batch norm's running statistics
    depend on the batch, but are carried, not differentiated (stop_gradient)."""
    k_args, k_ct = jax.random.split(key)
    args = spec.example_args(k_args, jnp.float64)
    ct = gradcheck.random_like(k_ct, output_shape(spec, args, read=True))
    _, grads = pullback(spec.name, "manual", read=True)(args, ct)
    read = spec.loss_output or (lambda out: out)
    loss = cotangent_loss(lambda *a: read(spec.manual(*a)), ct)
    numerical = gradcheck.numerical_grad(loss, *args, argnums=spec.diff_argnums)
    assert_close(tuple(grads), numerical, FINITE_DIFF_RTOL)


# 3. ------------------------------------------------------------------------------


def _scaled(spec, args, scale):
    """Real-domain arguments multiplied by ``scale`` (large logits and scores)."""
    out = []
    for s, a in zip(spec.args(), args, strict=True):
        is_real = all(x.domain is REAL for x in jax.tree.leaves(s, is_leaf=_is_arg))
        out.append(jax.tree.map(lambda v: v * scale, a) if is_real else a)
    return tuple(out)


@functools.cache
def _forward(name, variant):
    return jax.jit(_function(OPS[name], variant))


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("spec", WITH_PEER, ids=lambda s: s.name)
def test_forward_matches_peer(spec, dtype, key):
    for scale in (1.0, 30.0):
        args = _scaled(spec, spec.example_args(key, dtype), scale)
        with jax.numpy_dtype_promotion("standard"):  # peers are not all strict-clean
            expected = _forward(spec.name, "peer")(*args)
        assert_close(_forward(spec.name, "manual")(*args), expected, PEER_RTOL[dtype], f"x{scale}")


@pytest.mark.parametrize("spec", WITH_PEER, ids=lambda s: s.name)
def test_gradient_matches_peer(spec, key):
    """Away from kinks (random inputs), the peer's autodiff gradient is the same."""
    k_args, k_ct = jax.random.split(key)
    args = spec.example_args(k_args, jnp.float64)
    ct = gradcheck.random_like(k_ct, output_shape(spec, args, read=True))
    _, mine = pullback(spec.name, "manual", read=True)(args, ct)
    with jax.numpy_dtype_promotion("standard"):
        _, peer = pullback(spec.name, "peer", read=True)(args, ct)
    assert_close(mine, peer, PEER_RTOL[jnp.float64])


# 4. ------------------------------------------------------------------------------


def _limit(spec, dtype):
    """Largest input magnitude drawn: 1e4, or less where the exact result of a
    product of ``degree`` inputs summed over the arguments would not fit in the
    dtype (float16 only), so that most draws are representable."""
    leaves = jax.tree.leaves(spec.args(), is_leaf=_is_arg)
    n = max(int(np.prod(a.shape)) for a in leaves)
    return min(1e4, (float(jnp.finfo(dtype).max) / (8 * n)) ** (1 / spec.degree))


def _float_elements(dtype, low, high):
    """Finite floats in [low, high], with the extremes: the bounds, zeros,
    the smallest subnormal and the smallest normal number of ``dtype``."""
    info = jnp.finfo(dtype)
    tiny, sub = float(info.tiny), float(info.smallest_subnormal)
    special = [
        v for v in (0.0, -0.0, sub, -sub, tiny, -tiny, 1.0, -1.0, low, high) if low <= v <= high
    ]
    return st.one_of(st.sampled_from(special), st.floats(low, high, allow_nan=False, width=64))


def _draw_arg(data, arg: Arg, dtype, limit):
    """Hypothesis values over the whole of ``arg.domain``, extremes included."""
    n, domain = int(np.prod(arg.shape)), arg.domain
    if domain.integer:
        values = data.draw(st.lists(st.integers(0, arg.classes - 1), min_size=n, max_size=n))
        return jnp.asarray(np.array(values, dtype=np.int32).reshape(arg.shape))
    if domain.values:
        elements = st.sampled_from(domain.values)
    else:
        low = -limit if domain.low is None else domain.low
        if domain.low_open:
            low = float(jnp.finfo(dtype).tiny)
        elements = _float_elements(dtype, low, limit if domain.high is None else domain.high)
    values = np.array(data.draw(st.lists(elements, min_size=n, max_size=n)), dtype=np.float64)
    values = values.reshape(arg.shape)
    if domain.rows_sum_to_one:
        values[values.sum(-1) == 0, 0] = 1.0
        values = values / values.sum(-1, keepdims=True)
    return jnp.asarray(values.astype(NUMPY_DTYPES[dtype]))


def _reference_inputs(spec, args, dtype):
    """The inputs in float64, probabilities clipped to [eps, 1 - eps] of ``dtype``
    as the op clips them: the reference is then the dtype's own function, exactly."""
    eps = float(jnp.finfo(dtype).eps)
    out = []
    for s, a in zip(spec.args(), args, strict=True):
        clip = all(x.domain in (UNIT, SIMPLEX) for x in jax.tree.leaves(s, is_leaf=_is_arg))
        wide = jax.tree.map(lambda v: v.astype(jnp.float64) if v.dtype == dtype else v, a)
        out.append(jax.tree.map(lambda v: jnp.clip(v, eps, 1 - eps), wide) if clip else wide)
    return tuple(out)


def _representable(tree, dtype) -> bool:
    """Every value finite and within the dtype's range (with 2x headroom)."""
    bound = float(jnp.finfo(dtype).max) / 2
    return all(
        np.all(np.abs(np.asarray(leaf, np.float64)) < bound) for leaf in jax.tree.leaves(tree)
    )


# the autodiff variant under -m slow: it keeps the default run under 10 minutes on 2 cores
@pytest.mark.parametrize("variant", ["manual", pytest.param("autodiff", marks=pytest.mark.slow)])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: jnp.dtype(d).name)
@parametrize_main_ops
def test_values_and_gradients_finite(spec, dtype, variant):
    """Values and gradients (cotangent 1) are finite wherever the exact values
    and gradients (float64, same inputs) are representable in the dtype; draws
    whose exact result overflows the dtype are skipped. Both variants:
    ``fn.autodiff`` is public too (the forward-mode path; run with ``-m slow``)."""
    limit = _limit(spec, dtype)

    @given(st.data())
    def check(data):
        leaves, treedef = jax.tree.flatten(spec.args(), is_leaf=_is_arg)
        args = treedef.unflatten([_draw_arg(data, a, dtype, limit) for a in leaves])
        wide = _reference_inputs(spec, args, dtype)
        ones = jax.tree.map(jnp.ones_like, output_shape(spec, wide))
        assume(_representable(pullback(spec.name, "autodiff")(wide, ones), dtype))
        out, grads = pullback(spec.name, variant)(
            args, jax.tree.map(lambda o: o.astype(dtype), ones)
        )
        for name, tree in (("value", out), ("gradient", grads)):
            for leaf in jax.tree.leaves(tree):
                assert leaf.dtype == dtype, f"{name} dtype {leaf.dtype}"
                assert np.all(np.isfinite(np.asarray(leaf, np.float64))), f"{name}: {leaf}"

    check()


# 5. ------------------------------------------------------------------------------


@parametrize_main_ops
def test_jit_matches_eager(spec, key):
    k_args, k_ct = jax.random.split(key)
    args = spec.example_args(k_args, jnp.float64)
    ct = gradcheck.random_like(k_ct, output_shape(spec, args))
    _, vjp = jax.vjp(restrict(spec.manual, args, spec.diff_argnums), *diff_args(spec, args))
    eager = (spec.manual(*args), vjp(ct))
    assert_close(pullback(spec.name, "manual")(args, ct), eager, JIT_RTOL)


def _stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


@parametrize_main_ops
def test_vmap_matches_loop(spec, key):
    keys = jax.random.split(key, 3)
    examples = [spec.example_args(k, jnp.float64) for k in keys]
    cts = [gradcheck.random_like(k, output_shape(spec, examples[0])) for k in keys]
    run = pullback(spec.name, "manual")
    batched = jax.jit(jax.vmap(run.__wrapped__ if hasattr(run, "__wrapped__") else run))
    looped = _stack([run(a, c) for a, c in zip(examples, cts, strict=True)])
    assert_close(batched(_stack(examples), _stack(cts)), looped, JIT_RTOL)


@parametrize_main_ops
def test_grad_of_grad_matches_autodiff(spec, key):
    """Second derivatives: differentiate the hand-written backward itself."""
    k_args, k_ct, k_w = jax.random.split(key, 3)
    args = spec.example_args(k_args, jnp.float64)
    ct = random_cotangent(k_ct, spec.manual, args)
    weights = gradcheck.random_like(k_w, diff_args(spec, args))

    def second(fn):
        grad = jax.grad(cotangent_loss(fn, ct), spec.diff_argnums)
        return jax.jit(jax.grad(cotangent_loss(grad, weights), spec.diff_argnums))(*args)

    assert_close(second(spec.manual), second(spec.autodiff), SECOND_ORDER_RTOL)


@parametrize_main_ops
def test_forward_mode_in_autodiff_mode(spec, key):
    """custom_vjp refuses forward mode; under ``dlref.autodiff_mode()`` the same
    public op traces its plain forward, and jvp agrees with the hand-written
    backward: ``<ct, J t>`` from forward mode equals ``<J^T ct, t>``."""
    k_args, k_t, k_ct = jax.random.split(key, 3)
    args = spec.example_args(k_args, jnp.float64)
    tangents = gradcheck.random_like(k_t, diff_args(spec, args))
    f = restrict(spec.manual, args, spec.diff_argnums)
    with pytest.raises(TypeError, match="can't apply forward-mode autodiff"):
        jax.jvp(f, tuple(diff_args(spec, args)), tuple(tangents))
    with dlref.autodiff_mode():
        jvp = jax.jit(lambda primals, tangents: jax.jvp(f, primals, tangents)[1])
        jvp_out = jvp(tuple(diff_args(spec, args)), tuple(tangents))
    ct = gradcheck.random_like(k_ct, output_shape(spec, args))
    _, grads = pullback(spec.name, "manual")(args, ct)
    np.testing.assert_allclose(
        tree_vdot(ct, jvp_out), tree_vdot(grads, tangents), rtol=BACKWARD_RTOL
    )


# 6. Documented results for empty, NaN and out-of-range input ---------------------

# Ops that refuse an empty leading axis (a batch, or a sequence of no steps) with
# InputError, and why; every other op returns an empty (or, for a sum, exact) result.
EMPTY_RAISES = {
    "batch_norm": "batch statistics of no example are undefined (and would corrupt the state)",
    "batch_norm_momentum": "as batch_norm",
    "mlp_loss": "the batch mean of no example is undefined",
    "layer_norm_axis0": "it normalizes over the leading axis: a mean over no entry",
}


def _with_size(spec, size):
    return spec.example_args(jax.random.key(0), jnp.float64, size)


@parametrize_ops
def test_empty_leading_axis_gives_the_documented_result(spec):
    size = (0, *spec.sizes["test"][1:])
    args = _with_size(spec, size)
    if spec.name in EMPTY_RAISES:
        with pytest.raises(InputError, match=spec.fn.__name__):
            spec.manual(*args)
        return
    ct = gradcheck.random_like(jax.random.key(1), output_shape(spec, args))
    for variant in ("manual", "autodiff"):
        out, grads = pullback(spec.name, variant)(args, ct)
        for leaf in jax.tree.leaves((out, grads)):
            assert np.all(np.isfinite(np.asarray(leaf))), f"{variant}: {leaf}"


def _poison(args, argnum, value):
    """``args`` with the first entry of every leaf of argument ``argnum`` set to ``value``."""
    out = list(args)
    out[argnum] = jax.tree.map(
        lambda x: x.reshape(-1).at[0].set(value).reshape(x.shape), args[argnum]
    )
    return tuple(out)


# Ops whose output may legitimately hide a NaN input, and why.
NAN_HIDDEN = {"dropout": "a dropped entry is 0 whatever its value (the mask decides)"}


@parametrize_ops
def test_nan_input_is_not_hidden(spec, key):
    """A NaN in any floating input gives a NaN in the output or InputError (for
    a label-like input checked eagerly): a NaN never turns into a finite loss."""
    args = spec.example_args(key, jnp.float64)
    for i in spec.diff_argnums:
        poisoned = _poison(args, i, jnp.nan)
        try:
            out = jax.jit(spec.manual)(*poisoned)
        except InputError:
            continue
        has_nan = any(np.any(np.isnan(np.asarray(leaf))) for leaf in jax.tree.leaves(out))
        assert has_nan or spec.name in NAN_HIDDEN, f"argument {i}: NaN hidden in {out}"


def _label_positions(spec):
    return [
        i
        for i, s in enumerate(spec.args())
        if all(a.domain.integer for a in jax.tree.leaves(s, is_leaf=_is_arg))
    ]


@pytest.mark.parametrize("spec", [s for s in SPECS if _label_positions(s)], ids=lambda s: s.name)
@pytest.mark.parametrize("bad", ["negative", "too_large"])
def test_out_of_range_label_under_jit_gives_nan_loss_and_gradient(spec, bad, key):
    """Labels cannot be checked under jit: an out-of-range label makes that
    example's loss NaN and its gradient NaN, so training cannot go on silently."""
    args = list(spec.example_args(key, jnp.float64))
    (i,) = _label_positions(spec)
    classes = spec.args()[i].classes
    args[i] = args[i].at[0].set(-1 if bad == "negative" else classes)
    args = tuple(args)
    ct = gradcheck.random_like(key, output_shape(spec, args))
    out, grads = pullback(spec.name, "manual")(args, ct)
    assert np.any(np.isnan(np.asarray(out)))
    assert all(np.any(np.isnan(np.asarray(g))) for g in jax.tree.leaves(grads))
    name = list(spec.fn.signature.parameters)[i]  # labels, or an embedding's ids
    with pytest.raises(InputError, match=rf"`{name}` must lie in"):
        spec.manual(*args)


def _static_kwargs(spec):
    return {
        k: v
        for k, v in spec.kwargs.items()
        if isinstance(v, (bool, int, float)) and k not in spec.fn.arrays
    }


@pytest.mark.parametrize("spec", [s for s in SPECS if _static_kwargs(s)], ids=lambda s: s.name)
def test_array_hyperparameters_act_as_python_values(spec, key):
    """A hyperparameter given as a concrete NumPy or JAX scalar acts exactly as
    the Python value: same output, same dtype (float32 inputs stay float32),
    same gradient; a traced one raises InputError naming it."""
    args = spec.example_args(key, jnp.float32)
    ct = gradcheck.random_like(key, output_shape(spec, args))

    def run(**kwargs):
        fn = functools.partial(spec.fn, **{**spec.kwargs, **kwargs})
        out, vjp = jax.vjp(restrict(fn, args, spec.diff_argnums), *diff_args(spec, args))
        return out, vjp(ct)

    expected = run()
    for name, value in _static_kwargs(spec).items():
        for wrap in (
            np.asarray,
            jnp.asarray,
            np.float64 if isinstance(value, float) else np.asarray,
        ):
            got = run(**{name: wrap(value)})
            assert jax.tree.map(lambda x: x.dtype, got) == jax.tree.map(lambda x: x.dtype, expected)
            assert_close(got, expected, 0.0, f"{name}={wrap.__name__}")  # exact: one program
        traced = jax.jit(lambda v, name=name: spec.fn(*args, **{**spec.kwargs, name: v}))
        with pytest.raises(InputError, match=f"`{name}` is a static hyperparameter"):
            traced(jnp.asarray(value))
