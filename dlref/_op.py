"""The op mechanism: a plain JAX forward plus a hand-written backward.

See :func:`op` (``help(dlref.op)``) for the guide to writing an op; this module
holds the :class:`Op` class it returns and the :func:`autodiff_mode` switch.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, overload

import jax
import jax.numpy as jnp
import numpy as np

from dlref import _checks
from dlref._checks import InputError

__all__ = ["Op", "autodiff_mode", "is_op", "op"]

_AUTODIFF = contextvars.ContextVar("dlref_autodiff_mode", default=False)


@contextlib.contextmanager
def autodiff_mode() -> Iterator[None]:
    """Within this block every dlref op traces its plain forward, for JAX autodiff.

    A ``jax.custom_vjp`` supports reverse mode only, so ``jax.jvp`` and
    ``jax.jacfwd`` of a function that calls dlref ops raise. Trace such a
    function inside ``autodiff_mode()`` and every op behaves as its
    ``.autodiff`` variant: forward mode then works on an unchanged model.
    The switch is read when a function is traced, so wrap the ``jax.jit`` or
    transformation call, not the later calls of an already compiled function.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import activations, autodiff_mode
      >>> with autodiff_mode():
      ...     y, dy = jax.jvp(activations.sigmoid, (jnp.zeros(2),), (jnp.ones(2),))
      >>> dy
      Array([0.25, 0.25], dtype=float32)
    """
    token = _AUTODIFF.set(True)
    try:
        yield
    finally:
        _AUTODIFF.reset(token)


def _static_value(fn: str, name: str, value: Any) -> Any:
    """A hyperparameter as a hashable Python value: a concrete 0-d array becomes
    its Python scalar (so the output dtype follows the array inputs alone); a
    traced one cannot be static and is refused."""
    if isinstance(value, jax.core.Tracer):
        raise InputError(
            f"{fn}: `{name}` is a static hyperparameter and must be a Python value, not a "
            f"traced array ({value.aval}); pass it as a Python number, or mark it static "
            f"(jax.jit(..., static_argnames=...)) where it comes from a jitted function"
        )
    if isinstance(value, (jax.Array, np.ndarray, np.generic)):
        if np.ndim(value) != 0:
            raise InputError(
                f"{fn}: `{name}` must be a Python scalar; got an array of shape {np.shape(value)}"
            )
        return np.asarray(value).item()
    try:
        hash(value)
    except TypeError:
        raise InputError(
            f"{fn}: `{name}` must be hashable (a tuple, not a list); got {value!r}"
        ) from None
    return value


def _no_python_numbers(fn: str, name: str, value: Any) -> None:
    """An input is an array or a pytree of arrays: a list (or a list inside a named
    tuple or a list) of Python numbers is refused, naming its path. A dict of
    parameters (the regularizers') may hold Python numbers: they are leaves."""
    if not isinstance(value, (list, tuple)):
        return
    for path, leaf in jax.tree_util.tree_leaves_with_path(value):
        if isinstance(leaf, (bool, int, float, complex)):
            where = name
            for p in path:  # the named fields down to the first list index
                if not hasattr(p, "name") and not hasattr(p, "key"):
                    break
                where += f".{p.name}" if hasattr(p, "name") else f"[{p.key!r}]"
            raise InputError(
                f"{fn}: `{where}` must be a JAX or NumPy array; got Python numbers in a "
                f"{type(value).__name__} (wrap them in jnp.asarray)"
            )


# The kinds a hyperparameter's annotation names: what each accepts (NumPy and concrete
# 0-d JAX scalars count as their Python values). Other annotations are not checked.
_KINDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "bool": ("True or False", lambda v: isinstance(v, (bool, np.bool_))),
    "int": (
        "an integer",
        lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)),
    ),
    "float": (
        "a real number",
        lambda v: (
            isinstance(v, (int, float, np.integer, np.floating))
            and not isinstance(v, (bool, np.bool_))
        ),
    ),
    "str": ("a string", lambda v: isinstance(v, str)),
    "None": ("None", lambda v: v is None),
    "jax.Array": ("an array", lambda v: isinstance(v, (jax.Array, np.ndarray))),
    "Pair": (
        "a pair of integers",
        lambda v: (
            isinstance(v, tuple)
            and len(v) == 2
            and all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in v)
        ),
    ),
}


def _kind_names(p: inspect.Parameter) -> str:
    """The annotation as text (``"float | None"``), else the default's type name."""
    if p.annotation is inspect.Parameter.empty:
        return type(p.default).__name__
    return p.annotation.__name__ if isinstance(p.annotation, type) else str(p.annotation)


def _check_kind(fn: str, name: str, value: Any, annotation: str) -> None:
    """A hyperparameter takes a value of a kind its annotation names (``float | None``:
    a real number or None): a flag is never read for its truthiness, and a string or
    None never reaches the op's arithmetic. Traced and shaped arrays are left to
    :func:`_static_value`, unless the annotation names ``jax.Array``."""
    kinds = [k.strip() for k in str(annotation).split("|")]
    if not all(k in _KINDS for k in kinds):
        return  # an annotation with a kind not listed (a padding spec) is the op's to check
    item = value
    if isinstance(value, (jax.Array, np.ndarray)) and "jax.Array" not in kinds:
        if isinstance(value, jax.core.Tracer) or np.ndim(value) != 0:
            return  # _static_value names a traced or shaped one
        item = value.item()
    if not any(_KINDS[k][1](item) for k in kinds):
        what = " or ".join(_KINDS[k][0] for k in kinds)
        raise InputError(f"{fn}: `{name}` must be {what}; got {value!r}")


def _from_numpy(x: Any) -> Any:
    return jnp.asarray(x) if isinstance(x, (np.ndarray, np.generic)) else x


# What a forward that reads its inputs' values raises when traced.
_NEEDS_VALUES = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)


def _traced(tree: Any) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def _is_floating(x: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def _check_axis(fn: str, axis: int, x: Any) -> None:
    """``axis`` indexes an axis of ``x``."""
    ndim = np.ndim(x) if isinstance(x, (jax.Array, np.ndarray, np.generic)) else 0
    if ndim > 0 and not -ndim <= axis < ndim:  # rank 0: the op's own rank check speaks
        raise InputError(
            f"{fn}: `axis` must index an axis of `x` (rank {ndim}: {-ndim} to {ndim - 1}); "
            f"got {axis}"
        )


class Op:
    """A plain JAX forward whose ``jax.grad`` runs a hand-written backward.

    Made by :func:`op`. Calling it runs the forward; reverse-mode autodiff
    (``jax.grad``, ``jax.vjp``, ``jax.hessian``) runs ``bwd``. An eager call (no
    input traced) runs the forward compiled, one program per shape, dtype and
    hyperparameters, as ``jax.nn``'s functions do; its value checks still raise
    (``dlref._checks.defer``).

    Attributes:
      autodiff: the plain forward, differentiated by JAX (forward mode works).
      fwd: ``fwd(*args, **hyper) -> (y, residuals)``.
      bwd: ``bwd(residuals, dy, **hyper) -> one cotangent per positional input``.
      hyper: names of the hyperparameters: parameters with a default or
        keyword-only; static (hashable Python values) except those in ``arrays``.
      arrays: names of hyperparameters passed through as arrays (a PRNG key).
    """

    def __init__(self, forward: Callable[..., Any], *, arrays: tuple[str, ...] = ()) -> None:
        functools.update_wrapper(self, forward)
        self.autodiff = forward
        self.name: str = forward.__name__
        self.signature = inspect.signature(forward)
        self.hyper = frozenset(
            name
            for name, p in self.signature.parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY or p.default is not inspect.Parameter.empty
        )
        self.arrays = frozenset(arrays)
        # each hyperparameter's kinds: its annotation, else its default's type
        self._kinds = {
            name: _kind_names(p)
            for name, p in self.signature.parameters.items()
            if name in self.hyper
        }
        if not self.arrays <= self.hyper:
            raise TypeError(
                f"op {self.name}: arrays {sorted(self.arrays - self.hyper)} are no "
                "keyword or defaulted parameters"
            )
        self.fwd: Callable[..., Any] | None = None
        self.bwd: Callable[..., Any] | None = None
        self._bwd_hyper: frozenset[str] = frozenset()
        self._build = functools.lru_cache(maxsize=256)(self._make)

    def __get__(self, instance: Any, owner: Any = None) -> Op:
        return self  # a plain function stored on a class stays unbound

    def __repr__(self) -> str:
        return f"<dlref op {self.__module__}.{self.name}>"

    def defvjp(self, fwd: Callable[..., Any], bwd: Callable[..., Any]) -> None:
        """Sets the hand-written pair. ``bwd`` receives, by keyword, exactly the
        hyperparameters it declares; one it declares must be the forward's, and a
        ``**kwargs`` catch-all is refused (it would silently receive nothing)."""
        params = inspect.signature(bwd).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            raise TypeError(
                f"op {self.name}: bwd may not take **kwargs; name the hyperparameters it needs "
                f"(from {sorted(self.hyper)})"
            )
        declared = frozenset(list(params)[2:])
        if not declared <= self.hyper:
            raise TypeError(
                f"op {self.name}: bwd declares {sorted(declared - self.hyper)}, which are not "
                f"hyperparameters of the forward ({sorted(self.hyper)})"
            )
        self.fwd, self.bwd, self._bwd_hyper = fwd, bwd, declared
        self._build.cache_clear()

    def _make(self, static: tuple[tuple[str, type, Any], ...], dynamic: tuple[str, ...]):
        """The ``jax.custom_vjp`` for one set of static hyperparameters."""
        fwd, bwd, forward, name = self.fwd, self.bwd, self.autodiff, self.name
        assert fwd is not None and bwd is not None
        hyper = {k: v for k, _, v in static}
        to_bwd = {k: v for k, v in hyper.items() if k in self._bwd_hyper}
        bwd_arrays = [k for k in dynamic if k in self._bwd_hyper]
        n_inputs = len(self.signature.parameters) - len(self.hyper)

        def split(flat):
            n = len(flat) - len(dynamic)
            return flat[:n], dict(zip(dynamic, flat[n:], strict=True))

        @jax.custom_vjp
        def manual(*flat):
            args, arrays = split(flat)
            return forward(*args, **hyper, **arrays)

        def manual_fwd(*flat):
            args, arrays = split(flat)
            with jax.named_scope(f"{name}_fwd"):
                y, res = fwd(*args, **hyper, **arrays)
            # kept: the arrays bwd declares, and the floating ones (for their cotangent)
            kept = {k: v for k, v in arrays.items() if k in bwd_arrays or _is_floating(v)}
            return y, (res, kept)

        def manual_bwd(saved, dy):
            res, arrays = saved
            with jax.named_scope(f"{name}_bwd"):
                given = {k: v for k, v in arrays.items() if k in bwd_arrays}
                cotangents = tuple(bwd(res, dy, **to_bwd, **given))
            # A trailing dict holds the cotangents of floating array hyperparameters (a
            # traced threshold); one it does not give is NaN, never a silent 0.
            extra = {}
            if len(cotangents) == n_inputs + 1:
                cotangents, extra = cotangents[:-1], cotangents[-1]
            return cotangents + tuple(
                extra[k]
                if k in extra
                else jnp.full_like(arrays[k], jnp.nan)
                if k in arrays
                else None
                for k in dynamic
            )

        manual.defvjp(manual_fwd, manual_bwd)

        def checked(*flat):
            """The forward for an eager call, compiled: nested ops trace their plain
            forwards, and the value checks come back as one flag (``_checks.defer``),
            None without any (the call then stays asynchronous)."""
            args, arrays = split(flat)
            token = _AUTODIFF.set(True)
            try:
                with _checks.deferring() as flags:
                    y = forward(*args, **hyper, **arrays)
            finally:
                _AUTODIFF.reset(token)
            return y, jnp.any(jnp.stack(flags)) if flags else None

        return manual, jax.jit(checked)

    def _bind(self, args: tuple, kwargs: dict) -> inspect.BoundArguments:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise InputError(f"{self.name}{self.signature}: {error}") from None
        bound.apply_defaults()
        for name, value in bound.arguments.items():
            if name in self.hyper:
                _check_kind(self.name, name, value, self._kinds[name])
            else:
                _no_python_numbers(self.name, name, value)
                # NumPy leaves become JAX arrays: the op computes in JAX and returns them
                bound.arguments[name] = jax.tree.map(_from_numpy, value)
        if isinstance(bound.arguments.get("axis"), int) and bound.args:
            _check_axis(self.name, bound.arguments["axis"], bound.args[0])
        return bound

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.bwd is None:
            raise NotImplementedError(f"{self.name}: defvjp was never called")
        bound = self._bind(args, kwargs)
        if _AUTODIFF.get():
            with jax.named_scope(self.name):
                return self.autodiff(*bound.args, **bound.kwargs)
        positional = [v for k, v in bound.arguments.items() if k not in self.hyper]
        arrays = {k: v for k, v in bound.arguments.items() if k in self.arrays and v is not None}
        static = tuple(
            (k, type(s), s)
            for k, v in bound.arguments.items()
            if k in self.hyper and k not in arrays
            for s in (_static_value(self.name, k, v),)
        )
        manual, compiled = self._build(static, tuple(arrays))
        flat = (*positional, *arrays.values())
        with jax.named_scope(self.name):
            if not _traced(flat):
                # An eager call runs compiled, as one program. A raised check flag runs
                # the uncompiled forward instead, whose checks see the values and raise
                # their full message; a call on constants inside a trace is traced as any.
                try:
                    y, bad = compiled(*flat)
                except _NEEDS_VALUES:
                    pass  # a forward that reads its values: eager, uncompiled
                else:
                    if not _traced((y, bad)) and (bad is None or not bad):
                        return y
            return manual(*flat)


@overload
def op(forward: Callable[..., Any], *, arrays: tuple[str, ...] = ()) -> Op: ...
@overload
def op(*, arrays: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Op]: ...
def op(forward=None, *, arrays=()):
    """Makes a plain JAX forward into an :class:`Op` whose gradient is hand-written.

    An op is written three times, side by side: the forward (the oracle that
    autodiff differentiates), ``fwd`` (the forward plus what the backward needs)
    and ``bwd`` (the derivative, written by hand)::

        @dlref.op
        def cube(x, *, scale=1.0):
            return scale * x**3

        def _cube_fwd(x, *, scale=1.0):
            return cube.autodiff(x, scale=scale), (x,)

        def _cube_bwd(res, dy, *, scale):     # dx = dy * 3 * scale * x**2
            (x,) = res
            return (dy * (3 * scale * x**2),)

        cube.defvjp(_cube_fwd, _cube_bwd)

    Rules (those of ``jax.custom_vjp``, extended to hyperparameters):

    - Positional parameters without a default are the inputs: arrays or pytrees
      of arrays. ``bwd`` returns one cotangent per input, of its structure
      (``None`` for an integer input such as class labels).
    - Parameters with a default, and keyword-only ones, are hyperparameters.
      They are static: Python values (a concrete 0-d array is turned into its
      Python scalar; a traced one raises :class:`~dlref.InputError`). Those
      named in ``arrays`` (a PRNG ``key``, a mask, a threshold that may be
      traced) are passed through as arrays instead. Each hyperparameter's
      value must be of a kind its annotation names (``float | None``: a real
      number or None; without one, its default's type), else InputError.
    - A floating array hyperparameter is differentiable: ``bwd`` gives its
      cotangent in a dict after the inputs' (``return dx, {"threshold": dt}``);
      one it does not give is NaN, so an unsupported derivative is never a
      silent 0.
    - ``fwd`` takes the forward's arguments and returns ``(y, residuals)``:
      residuals are any pytree of arrays (``None`` leaves allowed).
    - ``bwd(residuals, dy, **hyper)`` receives, by keyword, exactly the
      hyperparameters it names; naming one the forward lacks, or taking
      ``**kwargs``, raises at ``defvjp`` time.
    - Keep residuals to inputs, outputs and per-example reductions; recompute
      elementwise intermediates in ``bwd`` from the same subexpressions (XLA
      shares them), and write the formula ``dy * (local derivative)``.

    ``jax.grad``, ``jax.vjp``, ``jax.hessian`` (forward over reverse) and
    grad-of-grad run ``bwd``; ``op.autodiff`` is the forward for JAX's own
    autodiff, and :func:`autodiff_mode` switches every op to it for forward mode
    (``jax.jvp``, ``jax.jacfwd``). Prove the pair with :mod:`dlref.gradcheck`::

        dlref.gradcheck.check_vjp(cube, cube.autodiff, x, key=key)
        dlref.gradcheck.check_grad(cube, x)

    Examples:
      >>> import jax, jax.numpy as jnp, dlref
      >>> @dlref.op
      ... def square(x):
      ...     return x * x
      >>> square.defvjp(lambda x: (x * x, (x,)), lambda res, dy: (2 * res[0] * dy,))
      >>> jax.grad(lambda x: square(x).sum())(jnp.arange(3.0))
      Array([0., 2., 4.], dtype=float32)
    """
    if forward is None:
        return lambda f: Op(f, arrays=tuple(arrays))
    return Op(forward, arrays=tuple(arrays))


def is_op(fn: Any) -> bool:
    """True for a function made by :func:`op` (it has a hand-written backward)."""
    return isinstance(fn, Op)
