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

from dlref import OPS, gradcheck
from dlref._registry import Arg, _is_arg

SPECS = list(OPS.values())
WITH_PEER = [s for s in SPECS if s.peer is not None]
parametrize_ops = pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)


def _function(spec, variant):
    """The op's variant ("manual", "autodiff" or "peer"), reading ``loss_output``
    for the peer comparisons and finite differences when ``read`` is set."""
    return spec.peer if variant == "peer" else getattr(spec, variant)


def restrict(fn, args, argnums):
    """``fn`` as a function of the arguments at ``argnums`` only."""

    def g(*diff):
        full = list(args)
        for i, value in zip(argnums, diff, strict=True):
            full[i] = value
        return fn(*full)

    return g


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
        is_real = all(x.domain == "real" for x in jax.tree.leaves(s, is_leaf=_is_arg))
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
    n = int(np.prod(arg.shape))
    if arg.domain == "label":
        values = data.draw(st.lists(st.integers(0, arg.classes - 1), min_size=n, max_size=n))
        return jnp.asarray(np.array(values, dtype=np.int32).reshape(arg.shape))
    if arg.domain == "sign":
        values = data.draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n, max_size=n))
    elif arg.domain in ("real", "weight"):
        values = data.draw(st.lists(_float_elements(dtype, -limit, limit), min_size=n, max_size=n))
    elif arg.domain == "positive":
        elems = _float_elements(dtype, float(jnp.finfo(dtype).tiny), limit)
        values = data.draw(st.lists(elems, min_size=n, max_size=n))
    else:  # unit, simplex
        values = data.draw(st.lists(_float_elements(dtype, 0.0, 1.0), min_size=n, max_size=n))
    values = np.array(values, dtype=np.float64).reshape(arg.shape)
    if arg.domain == "simplex":
        values[values.sum(-1) == 0, 0] = 1.0
        values = values / values.sum(-1, keepdims=True)
    return jnp.asarray(values.astype(NUMPY_DTYPES[dtype]))


def _reference_inputs(spec, args, dtype):
    """The inputs in float64, probabilities clipped to [eps, 1 - eps] of ``dtype``
    as the op clips them: the reference is then the dtype's own function, exactly."""
    eps = float(jnp.finfo(dtype).eps)
    out = []
    for s, a in zip(spec.args(), args, strict=True):
        clip = all(x.domain in ("unit", "simplex") for x in jax.tree.leaves(s, is_leaf=_is_arg))
        wide = jax.tree.map(lambda v: v.astype(jnp.float64) if v.dtype == dtype else v, a)
        out.append(jax.tree.map(lambda v: jnp.clip(v, eps, 1 - eps), wide) if clip else wide)
    return tuple(out)


def _representable(tree, dtype) -> bool:
    """Every value finite and within the dtype's range (with 2x headroom)."""
    bound = float(jnp.finfo(dtype).max) / 2
    return all(
        np.all(np.abs(np.asarray(leaf, np.float64)) < bound) for leaf in jax.tree.leaves(tree)
    )


@pytest.mark.parametrize("variant", ["manual", "autodiff"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: jnp.dtype(d).name)
@parametrize_ops
def test_values_and_gradients_finite(spec, dtype, variant):
    """Values and gradients (cotangent 1) are finite wherever the exact values
    and gradients (float64, same inputs) are representable in the dtype; draws
    whose exact result overflows the dtype are skipped. Both variants:
    ``fn.autodiff`` is public too (the forward-mode path)."""
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


@parametrize_ops
def test_jit_matches_eager(spec, key):
    k_args, k_ct = jax.random.split(key)
    args = spec.example_args(k_args, jnp.float64)
    ct = gradcheck.random_like(k_ct, output_shape(spec, args))
    _, vjp = jax.vjp(restrict(spec.manual, args, spec.diff_argnums), *diff_args(spec, args))
    eager = (spec.manual(*args), vjp(ct))
    assert_close(pullback(spec.name, "manual")(args, ct), eager, JIT_RTOL)


def _stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


@parametrize_ops
def test_vmap_matches_loop(spec, key):
    keys = jax.random.split(key, 3)
    examples = [spec.example_args(k, jnp.float64) for k in keys]
    cts = [gradcheck.random_like(k, output_shape(spec, examples[0])) for k in keys]
    run = pullback(spec.name, "manual")
    batched = jax.jit(jax.vmap(run.__wrapped__ if hasattr(run, "__wrapped__") else run))
    looped = _stack([run(a, c) for a, c in zip(examples, cts, strict=True)])
    assert_close(batched(_stack(examples), _stack(cts)), looped, JIT_RTOL)


@parametrize_ops
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


@parametrize_ops
def test_forward_mode_through_autodiff(spec, key):
    """custom_vjp refuses forward mode; ``fn.autodiff`` is the way to reach it."""
    args = spec.example_args(key, jnp.float64)
    tangents = gradcheck.random_like(key, diff_args(spec, args))
    f = restrict(spec.autodiff, args, spec.diff_argnums)
    jvp = jax.jit(lambda primals, tangents: jax.jvp(f, primals, tangents)[1])
    jvp_out = jvp(tuple(diff_args(spec, args)), tuple(tangents))
    ct = gradcheck.random_like(key, output_shape(spec, args))
    _, grads = pullback(spec.name, "manual")(args, ct)
    # <ct, J t> from forward mode equals <J^T ct, t> from the hand-written backward.
    np.testing.assert_allclose(
        tree_vdot(ct, jvp_out), tree_vdot(grads, tangents), rtol=BACKWARD_RTOL
    )
