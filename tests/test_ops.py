"""The five checks, run on every op in the registry.

1. hand-written backward = autodiff of the forward (float64, random cotangents);
2. hand-written backward = central finite differences (float64);
3. forward (and gradient) = the peer implementation from jax.nn / optax;
4. values and gradients finite for every finite input, in four float dtypes;
5. jit, vmap and grad-of-grad.
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
from hypothesis import given

from dlref import OPS, gradcheck
from dlref._registry import Arg, _is_arg

SPECS = list(OPS.values())
WITH_PEER = [s for s in SPECS if s.peer is not None]
parametrize_ops = pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)


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


# 1. ------------------------------------------------------------------------------


@parametrize_ops
def test_backward_matches_autodiff(spec, key):
    for k in jax.random.split(key, 3):
        k_args, k_ct = jax.random.split(k)
        args = spec.example_args(k_args, jnp.float64)
        gradcheck.check_vjp(
            spec.manual,
            spec.autodiff,
            *args,
            key=k_ct,
            argnums=spec.diff_argnums,
            rtol=BACKWARD_RTOL,
        )


# 2. ------------------------------------------------------------------------------


@parametrize_ops
def test_backward_matches_finite_differences(spec, key):
    k_args, k_ct = jax.random.split(key)
    args = spec.example_args(k_args, jnp.float64)
    loss = cotangent_loss(spec.manual, random_cotangent(k_ct, spec.manual, args))
    gradcheck.check_grad(loss, *args, argnums=spec.diff_argnums, rtol=FINITE_DIFF_RTOL)


# 3. ------------------------------------------------------------------------------


def _scaled(spec, args, scale):
    """Real-domain arguments multiplied by ``scale`` (large logits and scores)."""
    specs = spec.args()
    out = []
    for s, a in zip(specs, args, strict=True):
        is_real = all(x.domain == "real" for x in jax.tree.leaves(s, is_leaf=_is_arg))
        out.append(jax.tree.map(lambda v: v * scale, a) if is_real else a)
    return tuple(out)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("spec", WITH_PEER, ids=lambda s: s.name)
def test_forward_matches_peer(spec, dtype, key):
    for scale in (1.0, 30.0):
        args = _scaled(spec, spec.example_args(key, dtype), scale)
        with jax.numpy_dtype_promotion("standard"):  # peers are not all strict-clean
            expected = spec.peer(*args)
        assert_close(spec.manual(*args), expected, PEER_RTOL[dtype], f"scale {scale}")


@pytest.mark.parametrize("spec", WITH_PEER, ids=lambda s: s.name)
def test_gradient_matches_peer(spec, key):
    """Away from kinks (random inputs), the peer's autodiff gradient is the same."""
    k_args, k_ct = jax.random.split(key)
    args = spec.example_args(k_args, jnp.float64)
    ct = random_cotangent(k_ct, spec.manual, args)
    mine = jax.grad(cotangent_loss(spec.manual, ct), spec.diff_argnums)(*args)
    with jax.numpy_dtype_promotion("standard"):
        peer = jax.grad(cotangent_loss(spec.peer, ct), spec.diff_argnums)(*args)
    assert_close(mine, peer, PEER_RTOL[jnp.float64])


# 4. ------------------------------------------------------------------------------


def _limit(spec, dtype):
    """Largest input magnitude drawn: 1e4, or less where the exact result of a
    sum of squares (degree 2) or of many terms would not fit in the dtype."""
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
    elif arg.domain == "real":
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


@functools.cache
def _value_and_vjp(name, variant):
    spec = OPS[name]
    fn = getattr(spec, variant)

    def run(*args):
        out, vjp = jax.vjp(restrict(fn, args, spec.diff_argnums), *diff_args(spec, args))
        return out, vjp(jax.tree.map(jnp.ones_like, out))

    return jax.jit(run)


@pytest.mark.parametrize("variant", ["manual", "autodiff"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: jnp.dtype(d).name)
@parametrize_ops
def test_values_and_gradients_finite(spec, dtype, variant):
    """Both variants: ``fn.autodiff`` is public too (the forward-mode path)."""
    limit = _limit(spec, dtype)

    @given(st.data())
    def check(data):
        specs = spec.args()
        leaves, treedef = jax.tree.flatten(specs, is_leaf=_is_arg)
        args = treedef.unflatten([_draw_arg(data, a, dtype, limit) for a in leaves])
        out, grads = _value_and_vjp(spec.name, variant)(*args)
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
    loss = cotangent_loss(spec.manual, random_cotangent(k_ct, spec.manual, args))
    grad = jax.grad(loss, spec.diff_argnums)
    assert_close(jax.jit(spec.manual)(*args), spec.manual(*args), JIT_RTOL, "value")
    assert_close(jax.jit(grad)(*args), grad(*args), JIT_RTOL, "gradient")


def _stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


@parametrize_ops
def test_vmap_matches_loop(spec, key):
    keys = jax.random.split(key, 3)
    examples = [spec.example_args(k, jnp.float64) for k in keys]
    ct = random_cotangent(keys[0], spec.manual, examples[0])
    grad = jax.grad(cotangent_loss(spec.manual, ct), spec.diff_argnums)
    batched = _stack(examples)
    assert_close(
        jax.vmap(spec.manual)(*batched), _stack([spec.manual(*a) for a in examples]), JIT_RTOL
    )
    assert_close(jax.vmap(grad)(*batched), _stack([grad(*a) for a in examples]), JIT_RTOL)


@parametrize_ops
def test_grad_of_grad_matches_autodiff(spec, key):
    """Second derivatives: differentiate the hand-written backward itself."""
    k_args, k_ct, k_w = jax.random.split(key, 3)
    args = spec.example_args(k_args, jnp.float64)
    ct = random_cotangent(k_ct, spec.manual, args)
    weights = gradcheck.random_like(k_w, diff_args(spec, args))

    def second(fn):
        grad = jax.grad(cotangent_loss(fn, ct), spec.diff_argnums)
        return jax.grad(cotangent_loss(grad, weights), spec.diff_argnums)(*args)

    assert_close(second(spec.manual), second(spec.autodiff), SECOND_ORDER_RTOL)


@parametrize_ops
def test_forward_mode_through_autodiff(spec, key):
    """custom_vjp refuses forward mode; ``fn.autodiff`` is the way to reach it."""
    args = spec.example_args(key, jnp.float64)
    tangents = gradcheck.random_like(key, diff_args(spec, args))
    f = restrict(spec.autodiff, args, spec.diff_argnums)
    _, jvp_out = jax.jvp(f, tuple(diff_args(spec, args)), tuple(tangents))
    ct = random_cotangent(key, spec.manual, args)
    # <ct, J t> from forward mode equals <J^T ct, t> from the hand-written backward.
    _, vjp = jax.vjp(restrict(spec.manual, args, spec.diff_argnums), *diff_args(spec, args))
    np.testing.assert_allclose(
        tree_vdot(ct, jvp_out), tree_vdot(vjp(ct), tangents), rtol=BACKWARD_RTOL
    )
