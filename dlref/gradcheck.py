"""Gradient checking: numerical gradients and comparisons of gradients.

Point these at your own functions::

    from dlref import gradcheck
    report = gradcheck.check_grad(loss, params, x)   # jax.grad vs central differences
    print(report)                                     # "close: max abs 3e-11, max rel 2e-10"

    gradcheck.check_vjp(my_fn, reference_fn, x, key=jax.random.key(0))

The default tolerances follow the dtype of the differentiated arguments
(:data:`DEFAULT_RTOL`): float64 checks are the sharp ones (central differences
to 1e-6, two backward passes to 1e-10), so prefer float64
(``jax.config.update("jax_enable_x64", True)``); in float32 central
differences are good to about 1e-4 at best, and the defaults say so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from dlref import _checks
from dlref._checks import InputError

__all__ = [
    "DEFAULT_RTOL",
    "Comparison",
    "check_grad",
    "check_vjp",
    "compare",
    "numerical_grad",
    "random_like",
    "restrict",
]

PyTree = Any

DEFAULT_RTOL: dict[str, dict[Any, float]] = {
    # Central differences: truncation ~h**2 and rounding ~eps/h with h = eps**(1/3)
    # give about eps**(2/3) relative (4e-11 in float64, 2e-5 in float32); the
    # bound allows for large third derivatives.
    "grad": {jnp.dtype(jnp.float64): 1e-6, jnp.dtype(jnp.float32): 1e-3},
    # Two exact formulas for one vector-Jacobian product: a few ulps times the
    # conditioning of the sums involved.
    "vjp": {jnp.dtype(jnp.float64): 1e-10, jnp.dtype(jnp.float32): 1e-5},
}
# float16 and bfloat16 have 11 and 8 significant bits: only coarse checks mean anything.
for _table, _low in (("grad", 1e-1), ("vjp", 2e-2)):
    DEFAULT_RTOL[_table].update({jnp.dtype(jnp.float16): _low, jnp.dtype(jnp.bfloat16): _low})


def _default_rtol(kind: str, args: Sequence[Any]) -> float:
    """The tolerance for the lowest floating precision among ``args``."""
    dtypes = [
        jnp.dtype(leaf.dtype)
        for leaf in jax.tree.leaves(list(args))
        if jnp.issubdtype(jnp.result_type(leaf), jnp.floating)
    ]
    table = DEFAULT_RTOL[kind]
    return max(
        (table.get(d, table[jnp.dtype(jnp.float32)]) for d in dtypes),
        default=table[jnp.dtype(jnp.float64)],
    )


def _argnums(fn: str, argnums: Any, count: int) -> tuple[int, ...]:
    """``argnums`` (an int or a sequence of ints) as a tuple, each in [0, count)."""
    nums = (argnums,) if isinstance(argnums, int) else argnums
    ok = isinstance(nums, (tuple, list)) and all(
        isinstance(i, int) and not isinstance(i, bool) and 0 <= i < count for i in nums
    )
    if not ok:
        raise InputError(
            f"{fn}: `argnums` must be an int or a sequence of ints in [0, {count}) (the "
            f"positions of the {count} arguments given); got {argnums!r}"
        )
    return tuple(nums)


def _positive(fn: str, name: str, value: Any) -> None:
    """None (the default), or a finite real number > 0."""
    if value is None:
        return
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not 0 < float(value) < np.inf:
        raise InputError(f"{fn}: `{name}` must be None or a finite number > 0; got {value!r}")


def restrict(fn: Callable[..., Any], args: Sequence[Any], argnums: Sequence[int]):
    """``fn`` as a function of the arguments at ``argnums`` only, the others
    fixed to ``args``: what ``jax.vjp`` and finite differences differentiate."""

    def g(*diff):
        full = list(args)
        for i, value in zip(argnums, diff, strict=True):
            full[i] = value
        return fn(*full)

    return g


@dataclasses.dataclass(frozen=True)
class Comparison:
    """How far ``actual`` is from ``expected``, over every leaf of two pytrees.

    ``max_rel`` is normwise per leaf, the worst leaf reported: the largest
    absolute difference in a leaf over the largest absolute expected value in
    that leaf, so entries near 0 do not inflate it and a large leaf does not hide
    a small one. Any NaN, or an infinity in one but not the other, makes both
    errors infinite.
    """

    max_abs: float
    max_rel: float
    exact: bool

    def __str__(self) -> str:
        if self.exact:
            return "exact"
        return f"close: max abs {self.max_abs:.3g}, max rel {self.max_rel:.3g}"

    def within(self, rtol: float) -> bool:
        return self.max_rel <= rtol


def compare(actual: PyTree, expected: PyTree) -> Comparison:
    """Compares two pytrees of arrays of the same structure and shapes."""
    a_leaves, a_def = jax.tree_util.tree_flatten(actual)
    e_leaves, e_def = jax.tree_util.tree_flatten(expected)
    if a_def != e_def:  # type: ignore[operator]  # jaxlib's PyTreeDef has no stub
        raise InputError(f"compare: structures differ: {a_def} vs {e_def}")
    max_abs, max_rel = 0.0, 0.0
    for a, e in zip(a_leaves, e_leaves, strict=True):
        # complex leaves compare as complex (an imaginary part is never dropped)
        wide = np.complex128 if np.iscomplexobj(a) or np.iscomplexobj(e) else np.float64
        a, e = np.asarray(a, dtype=wide), np.asarray(e, dtype=wide)
        if a.shape != e.shape:
            raise InputError(f"compare: shapes differ: {a.shape} vs {e.shape}")
        if np.any(np.isnan(a) | np.isnan(e)) or np.any(np.isinf(a) != np.isinf(e)):
            return Comparison(float("inf"), float("inf"), False)
        same_inf = np.isinf(a) & (a == e)
        if np.any(np.isinf(a) & ~same_inf):
            return Comparison(float("inf"), float("inf"), False)
        diff = np.abs(np.where(same_inf, 0.0, a) - np.where(same_inf, 0.0, e))
        worst = float(diff.max(initial=0.0))
        scale = float(np.abs(np.where(same_inf, 0.0, e)).max(initial=0.0))
        max_abs = max(max_abs, worst)
        if worst > 0:
            max_rel = max(max_rel, worst / scale if scale > 0 else float("inf"))
    return Comparison(max_abs, max_rel, max_abs == 0)


def numerical_grad(
    f: Callable[..., jax.Array],
    *args: Any,
    argnums: int | Sequence[int] = 0,
    step: float | None = None,
) -> PyTree:
    """Central-difference gradient of a scalar function of pytrees.

    ``d f / d x_i ~ (f(x + h_i e_i) - f(x - h_i e_i)) / (2 h_i)`` with
    ``h_i = step * max(1, |x_i|)``; ``step`` defaults to the cube root of the
    dtype's machine epsilon (6e-6 in float64), which balances truncation error
    (order h**2) against rounding (order eps / h).

    Args:
      f: a function returning a scalar.
      *args: its arguments; those at ``argnums`` are pytrees of floating arrays.
      argnums: which arguments to differentiate, like ``jax.grad``.
      step: relative step size, a finite number > 0 (None: the default above).

    Returns:
      The gradient, shaped like ``jax.grad(f, argnums)(*args)``.
    """
    single = isinstance(argnums, int)
    nums = _argnums("numerical_grad", argnums, len(args))
    _positive("numerical_grad", "step", step)
    flat, unravel = ravel_pytree([args[i] for i in nums])
    if not jnp.issubdtype(flat.dtype, jnp.floating):
        raise InputError(f"numerical_grad: arguments {nums} must be floating; got {flat.dtype}")
    if step is None:
        step = float(jnp.finfo(flat.dtype).eps) ** (1 / 3)
    h = step * jnp.maximum(1, jnp.abs(flat))
    g = restrict(f, args, nums)

    def at(x):
        return g(*unravel(x))

    out = jax.eval_shape(at, flat)
    if not (hasattr(out, "shape") and out.shape == ()):
        raise InputError(
            f"numerical_grad: `f` must return a scalar (as for jax.grad); got "
            f"{getattr(out, 'shape', type(out).__name__)}"
        )

    def partial_derivative(i):
        up, down = flat.at[i].add(h[i]), flat.at[i].add(-h[i])
        return (at(up) - at(down)) / (up[i] - down[i])

    grads = unravel(jax.lax.map(partial_derivative, jnp.arange(flat.size), batch_size=64))
    return grads[0] if single else tuple(grads)


def check_grad(
    f: Callable[..., jax.Array],
    *args: Any,
    argnums: int | Sequence[int] = 0,
    rtol: float | None = None,
) -> Comparison:
    """Compares ``jax.grad(f)`` (whatever backward ``f`` uses) with central differences.

    Returns the :class:`Comparison`; raises ``AssertionError`` naming both errors
    when the normwise relative error exceeds ``rtol`` (default: by dtype,
    :data:`DEFAULT_RTOL` ``["grad"]``: 1e-6 in float64, 1e-3 in float32).

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import activations, gradcheck
      >>> x = jnp.linspace(-2.0, 2.0, 5)
      >>> gradcheck.check_grad(lambda x: activations.tanh(x).sum(), x).within(1e-3)
      True
    """
    _positive("check_grad", "rtol", rtol)
    if rtol is None:
        nums = _argnums("check_grad", argnums, len(args))
        rtol = _default_rtol("grad", [args[i] for i in nums])
    result = compare(jax.grad(f, argnums)(*args), numerical_grad(f, *args, argnums=argnums))
    if not result.within(rtol):
        raise AssertionError(f"check_grad: gradient vs finite differences: {result} > rtol {rtol}")
    return result


def random_like(key: jax.Array, tree: PyTree) -> PyTree:
    """Standard-normal arrays shaped and typed like the (floating) leaves of ``tree``."""
    _checks.prng_key("random_like", "key", key)
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    for leaf in leaves:
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            raise InputError(
                f"random_like: every leaf of `tree` must be floating; got dtype "
                f"{jnp.result_type(leaf)}"
            )
    keys = jax.random.split(key, max(len(leaves), 1))
    return jax.tree_util.tree_unflatten(
        treedef,
        [
            jax.random.normal(k, jnp.shape(x), jnp.result_type(x))
            for k, x in zip(keys, leaves, strict=False)
        ],
    )


def check_vjp(
    f: Callable[..., Any],
    reference: Callable[..., Any],
    *args: Any,
    key: jax.Array,
    argnums: Sequence[int] | None = None,
    rtol: float | None = None,
) -> Comparison:
    """Compares the vector-Jacobian products of ``f`` and ``reference`` at ``args``.

    Both functions get the same random (standard normal) cotangent; an all-ones
    cotangent would hide errors that cancel in a sum (a wrong batch-norm
    backward, for one). Outputs must agree too.

    Args:
      f, reference: functions of the same arguments with outputs of one structure.
      *args: the point; the arguments at ``argnums`` (default all) are differentiated.
      key: PRNG key for the cotangent.
      argnums: positions of the arguments to differentiate.
      rtol: bound on the normwise relative error of outputs and cotangents
        (default: by dtype, :data:`DEFAULT_RTOL` ``["vjp"]``: 1e-10 in float64,
        1e-5 in float32).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import activations, gradcheck
      >>> x = jnp.linspace(-2.0, 2.0, 5)
      >>> key = jax.random.key(0)
      >>> result = gradcheck.check_vjp(activations.sigmoid, jax.nn.sigmoid, x, key=key)
      >>> result.max_rel < 1e-5  # float32: a few ulps apart
      True
    """
    _checks.prng_key("check_vjp", "key", key)
    _positive("check_vjp", "rtol", rtol)
    nums = tuple(range(len(args))) if argnums is None else _argnums("check_vjp", argnums, len(args))
    diff = [args[i] for i in nums]
    if rtol is None:
        rtol = _default_rtol("vjp", diff)
    out, vjp_f = jax.vjp(restrict(f, args, nums), *diff)
    ref_out, vjp_ref = jax.vjp(restrict(reference, args, nums), *diff)
    cotangent = random_like(key, out)
    result = compare((out, vjp_f(cotangent)), (ref_out, vjp_ref(cotangent)))
    if not result.within(rtol):
        raise AssertionError(f"check_vjp: outputs and cotangents differ: {result} > rtol {rtol}")
    return result
