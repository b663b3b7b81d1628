"""The registry is complete: every public differentiable function is in it."""

import importlib
import pkgutil

import jax
import jax.numpy as jnp
import pytest

import dlref
from dlref import OPS, is_op

PUBLIC_MODULES = [
    importlib.import_module(f"dlref.{m.name}")
    for m in pkgutil.iter_modules(dlref.__path__)
    if not m.name.startswith("_")
]


def test_every_public_op_is_registered():
    missing = []
    for module in PUBLIC_MODULES:
        assert hasattr(module, "__all__"), f"{module.__name__} has no __all__"
        for name in module.__all__:
            fn = getattr(module, name)
            if is_op(fn) and not any(spec.fn is fn for spec in OPS.values()):
                missing.append(f"{module.__name__}.{name}")
    assert not missing, f"public ops missing from dlref.OPS: {missing}"


def test_every_registered_op_is_public():
    for spec in OPS.values():
        module = importlib.import_module(spec.module)
        name = spec.fn.__name__
        assert name in module.__all__ and getattr(module, name) is spec.fn


@pytest.mark.parametrize("spec", OPS.values(), ids=lambda s: s.name)
def test_docstring_states_formula_derivative_args_returns(spec):
    doc = spec.fn.__doc__
    for section in ("Derivative", "Args:", "Returns:"):
        assert section in doc, f"{spec.name}: docstring lacks {section!r}"


@pytest.mark.parametrize("spec", OPS.values(), ids=lambda s: s.name)
def test_example_args_are_valid_and_typed(spec, key):
    args = spec.example_args(key, jnp.float32)
    for i in spec.diff_argnums:
        for leaf in jax.tree.leaves(args[i]):
            assert leaf.dtype == jnp.float32
    out = spec.manual(*args)
    assert all(jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(out))
    assert spec.bytes_moved(spec.sizes["test"], jnp.float32) > 0


def test_op_requires_defvjp():
    @dlref.op
    def half(x):
        return x / 2

    with pytest.raises(NotImplementedError, match="half: defvjp was never called"):
        half(jnp.ones(2))
    half.defvjp(lambda x: (half.autodiff(x), ()), lambda res, dy: (dy / 2,))
    assert jax.grad(lambda x: half(x).sum())(jnp.ones(2)).tolist() == [0.5, 0.5]
