"""The cases of the adversarial input sweep (``tests/test_sweep.py``) and how an
outcome is classified.

Each :class:`Case` is one call of dlref's public API with a bad or unusual input,
generated from the registry (``dlref.OPS``: every op's inputs, their domains and
how their shapes tie together) and from the public signatures, plus what the
project documents for it (README "Conventions": bad input, NaN and empty input;
the docstrings). :func:`classify` runs a case and files the outcome as

- ``clear``: ``dlref.InputError`` naming the function (and, where the case says
  which, one of the arguments);
- ``documented``: the documented result (NaN from a NaN input, an empty result
  for an empty batch, a NaN loss and gradient for an out-of-range label under
  jit, the Python value's result for a NumPy hyperparameter ...);
- ``poor``: another exception, or an InputError that names neither the
  function nor the argument, for an invalid call;
- ``silent``: a finite, plausible result for an invalid input (or a wrong
  result for a valid one);
- ``crash``: an exception (InputError included) for a valid call.

Generating the cases draws no arrays (collection stays fast: a few JAX scalars
are made); each case draws its arrays when it runs, with NumPy, from per-op
caches, and the value cases of one op share one compiled function.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import re
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dlref import OPS, InputError
from dlref._registry import Arg, _is_arg
from dlref.gradcheck import restrict

CATEGORIES = ("clear", "documented", "poor", "silent", "crash")
OK = ("clear", "documented")

# What a case expects: an InputError, a result (checked by ``check``), or either.
ERROR, RESULT, EITHER = "error", "result", "either"
NAN, INF = float("nan"), float("inf")


@dataclasses.dataclass(frozen=True)
class Case:
    """One call and what it should give.

    Attributes:
      id: the test id, ``family/function/detail``.
      run: the call; returns its result.
      expect: ERROR (an InputError), RESULT (a result passing ``check``) or EITHER
        (an InputError naming the function, or a result passing ``check``).
      fn: the function an error message must name.
      names: the arguments one of which an error message must name (empty: any).
      check: ``result -> None`` if the result is the documented one, else what is wrong.
      valid: the call is valid (an exception is a ``crash``, not ``poor``).
      slow: left out of the default run (``-m slow``).
    """

    id: str
    run: Callable[[], Any]
    expect: str
    fn: str
    names: tuple[str, ...] = ()
    check: Callable[[Any], str | None] | None = None
    valid: bool = False
    slow: bool = False

    def __post_init__(self) -> None:  # no spaces in a test id: ((1, 0), (2, 1)) -> ((1,0),(2,1))
        object.__setattr__(self, "id", self.id.replace(" ", "").replace("\n", ""))


@dataclasses.dataclass(frozen=True)
class Outcome:
    category: str
    detail: str


# --- classification ------------------------------------------------------------------


def names_function(message: str, fn: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(fn)}(?!\w)", message) is not None


def names_argument(message: str, names: tuple[str, ...]) -> bool:
    """One of ``names`` appears as dlref's messages write an argument: in backticks
    (```state.var```), as ``name=``, or (names of four letters or more) as a word."""
    if not names:
        return True
    for n in names:
        word = rf"(?<![\w.]){re.escape(n)}(?!\w)"
        if re.search(rf"`[^`]*{word}[^`]*`|{word}=", message):
            return True
        if len(n) >= 4 and re.search(word, message):  # prose: "the window (7 along H)"
            return True
    return False


@contextlib.contextmanager
def _unfiltered_tracebacks() -> Iterator[None]:
    """JAX filters the traceback of every exception through its API, checking each
    frame's file (10 ms an error); the sweep reads only the messages."""
    old = jax.config.jax_traceback_filtering
    jax.config.update("jax_traceback_filtering", "off")
    try:
        yield
    finally:
        jax.config.update("jax_traceback_filtering", old)


def classify(case: Case) -> Outcome:
    try:
        with _unfiltered_tracebacks():
            result = jax.block_until_ready(case.run())
    except InputError as error:
        message = " ".join(str(error).split())
        named = names_function(message, case.fn) and names_argument(message, case.names)
        if case.valid and case.expect != EITHER:
            return Outcome("crash", f"valid call refused: {message}")
        if named:
            return Outcome("clear", message)
        return Outcome("poor", f"InputError not naming {case.fn} / {case.names}: {message}")
    except Exception as error:
        what = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
        return Outcome("crash" if case.valid else "poor", what)
    if case.expect == ERROR:
        if any_nan(result):
            return Outcome("poor", f"NaN result instead of InputError: {short(result)}")
        return Outcome("silent", f"returned {short(result)}")
    problem = case.check(result) if case.check is not None else None
    if problem is None:
        return Outcome("documented", "")
    return Outcome("silent", problem)


def short(result: Any) -> str:
    text = " ".join(repr(result).split())
    return text if len(text) < 300 else text[:297] + "..."


def array_leaves(tree: Any) -> list[np.ndarray]:
    leaves = []
    for leaf in jax.tree.leaves(tree):
        if isinstance(leaf, (jax.Array, np.ndarray, np.generic, float, int)):
            a = np.asarray(leaf)
            if a.dtype.kind in "fc":
                leaves.append(a)
    return leaves


def any_nan(tree: Any) -> bool:
    return any(np.isnan(a).any() for a in array_leaves(tree))


def all_finite(tree: Any) -> bool:
    return all(np.isfinite(a).all() for a in array_leaves(tree))


def finite_check(result: Any) -> str | None:
    return None if all_finite(result) else f"non-finite result for a valid input: {short(result)}"


def nan_check(result: Any) -> str | None:
    return None if any_nan(result) else f"no NaN in the result: {short(result)}"


def same_tree(expected: Any, exact: bool = True) -> Callable[[Any], str | None]:
    """The result equals ``expected`` (leaf by leaf, NaN equal to NaN), in its dtypes."""

    def check(result: Any) -> str | None:
        got, want = jax.tree.leaves(result), jax.tree.leaves(expected)
        if jax.tree.structure(result) != jax.tree.structure(expected):
            return f"structure {jax.tree.structure(result)} != {jax.tree.structure(expected)}"
        for g, w in zip(got, want, strict=True):
            g, w = np.asarray(g), np.asarray(w)
            if g.dtype != w.dtype:
                return f"dtype {g.dtype}, expected {w.dtype}"
            if g.shape != w.shape:
                return f"shape {g.shape}, expected {w.shape}"
            if exact and not np.array_equal(g, w, equal_nan=g.dtype.kind in "fc"):
                return f"value {short(g)}, expected {short(w)}"
            if not exact and not np.allclose(g, w, rtol=1e-6, atol=1e-12, equal_nan=True):
                return f"value {short(g)}, expected {short(w)}"
        return None

    return check


# --- the registry's ops: inputs drawn with NumPy ----------------------------------------

SPECS = list(OPS.values())


def _seed(*parts: Any) -> int:
    return zlib.crc32(repr(parts).encode())


def _draw(arg: Arg, rng: np.random.Generator, dtype: Any, shape=None) -> np.ndarray:
    """Valid values of ``arg`` (its registry domain) at ``shape``, drawn with NumPy (no
    compilation: jax.random would compile for every shape)."""
    s = arg.shape if shape is None else tuple(shape)
    name = arg.domain.name
    if name == "label":
        return rng.integers(0, max(arg.classes, 1), s).astype(np.int32)
    if name == "unit":
        v = rng.uniform(0.05, 0.95, s)
    elif name == "positive":
        v = rng.uniform(0.5, 2.0, s)
    elif name == "sign":
        v = rng.choice([-1.0, 1.0], s)
    elif name == "simplex":
        e = np.exp(rng.standard_normal(s))
        v = e / np.maximum(e.sum(-1, keepdims=True), 1e-300)
    elif name == "weight":
        v = rng.standard_normal(s) * max(1, s[0]) ** -0.5
    elif name == "kernel":
        v = rng.standard_normal(s) * max(1, math.prod(s[:-1])) ** -0.5
    elif name == "real":
        v = rng.standard_normal(s)
    else:  # a domain added to the registry later: its own sampler
        key = jax.random.key(int(rng.integers(2**31)))
        return np.asarray(arg.domain.sample(key, s, dtype, arg.classes))
    return np.asarray(v, dtype)


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One array input of an op: positional argument, index among its leaves, name."""

    argnum: int
    index: int
    param: str  # the positional parameter (``state``)
    name: str  # the leaf (``state.var``)
    arg: Arg

    @property
    def floating(self) -> bool:
        return not self.arg.domain.integer


def _path_name(path) -> str:
    text = jax.tree_util.keystr(path)
    return re.sub(r"\['(\w+)'\]|\[(\d+)\]", lambda m: "." + (m.group(1) or m.group(2)), text)


@functools.cache
def leaves_of(name: str, size: tuple | None = None) -> tuple[Leaf, ...]:
    spec = OPS[name]
    params = list(spec.fn.signature.parameters)
    out = []
    for argnum, tree in enumerate(spec.args(size)):
        flat = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_arg)[0]
        for index, (path, arg) in enumerate(flat):
            param = params[argnum]
            out.append(Leaf(argnum, index, param, param + _path_name(path), arg))
    return tuple(out)


@functools.cache
def example(name: str, size: tuple | None = None, dtype: Any = np.float64) -> tuple:
    """Valid positional inputs of op ``name`` (cached: the same arrays every time)."""
    spec = OPS[name]
    rng = np.random.default_rng(_seed(name, size, np.dtype(dtype).name))
    out = []
    for tree in spec.args(size):
        flat, treedef = jax.tree.flatten(tree, is_leaf=_is_arg)
        drawn = [put(_draw(a, rng, dtype)) for a in flat]
        out.append(jax.tree.unflatten(treedef, drawn))
    return tuple(out)


def with_leaf(args: tuple, leaf: Leaf, value: Any) -> tuple:
    out = list(args)
    flat, treedef = jax.tree.flatten(out[leaf.argnum])
    flat[leaf.index] = value
    out[leaf.argnum] = jax.tree.unflatten(treedef, flat)
    return tuple(out)


def put(x: np.ndarray) -> jax.Array:
    """A NumPy array on the device: ``jax.device_put`` (``jnp.asarray`` compiles a
    program for every new shape, 30 ms each)."""
    return jax.device_put(np.asarray(x))


def leaf_value(args: tuple, leaf: Leaf) -> np.ndarray:
    """The leaf as a NumPy array: changes are made in NumPy, which compiles nothing."""
    return np.asarray(jax.tree.leaves(args[leaf.argnum])[leaf.index])


def set_first(x: Any, value: Any, dtype: Any = None) -> jax.Array:
    """``x`` (in ``dtype``) with its first entry (row-major) set to ``value``."""
    x = np.array(x, dtype=dtype)
    x.reshape(-1)[0] = value
    return put(x)


@functools.cache
def jitted(name: str) -> Callable[..., Any]:
    return jax.jit(OPS[name].manual)


def call(name: str, args: tuple, mode: str = "eager", **kwargs) -> Any:
    """Op ``name`` on ``args`` with its registry hyperparameters (and ``kwargs``).

    ``mode``: "eager", "jit", or "static": a shape, rank or dtype error is raised
    when the op is traced (README: "at trace time ... (chex)"), so the call is
    first traced abstractly (``jax.eval_shape``, nothing compiled); an InputError
    there is the answer, and otherwise the call runs eagerly."""
    spec = OPS[name]
    if mode == "jit" and not kwargs:
        return jitted(name)(*args)
    fn = functools.partial(spec.fn, **{**spec.kwargs, **kwargs})
    if mode == "static":
        try:
            jax.eval_shape(fn, *args)
        except InputError:
            raise
        except Exception:
            pass
    return jax.jit(fn)(*args) if mode == "jit" else fn(*args)


@functools.cache
def pullback(name: str) -> Callable[..., Any]:
    """jit((args, cotangent) -> (output, gradients of the floating inputs))."""
    spec = OPS[name]

    def run(args, cotangent):
        diff = [args[i] for i in spec.diff_argnums]
        out, vjp = jax.vjp(restrict(spec.manual, args, spec.diff_argnums), *diff)
        return out, vjp(cotangent)

    return jax.jit(run)


def cotangent(name: str, args: tuple) -> Any:
    shapes = jax.eval_shape(OPS[name].manual, *args)
    rng = np.random.default_rng(_seed("cotangent", name))
    return jax.tree.map(lambda s: put(rng.standard_normal(s.shape).astype(s.dtype)), shapes)


# Which leaves may change rank, by function: any rank (elementwise ops and pytree
# regularizers), or the listed axis changes of one argument (``+1``: a leading axis
# added, ``-1``: the leading axis dropped) where the docstring allows ``(..., d)``.
ANY_RANK = {
    "sigmoid",
    "relu",
    "tanh",
    "softplus",
    "log_sigmoid",
    "leaky_relu",
    "elu",
    "silu",
    "gelu",
    "dropout",
    "l1",
    "l2",
    "l1_prox",
}
RANK_FREE = {
    ("softmax", "x"): (1, -1),  # rank >= 1; axis 0 and -1 exist at rank 1
    ("log_softmax", "x"): (1, -1),
    ("dense", "x"): (1, -1),  # x (..., d_in)
    ("embedding", "ids"): (1, -1),  # ids of any shape
    ("batch_norm", "x"): (1,),  # (batch, ..., features)
    ("layer_norm", "x"): (1, -1),  # axis -1: any leading axes
    ("rms_norm", "x"): (1, -1),
}


def _rank_valid(name: str, leaf: Leaf, delta: int) -> bool:
    spec = OPS[name]
    fn = spec.fn.__name__
    if fn in ANY_RANK:
        return True
    if fn in ("layer_norm", "rms_norm") and spec.kwargs.get("axis", -1) != -1:
        return False  # the normalized axis moves, and no longer matches `scale`
    return delta in RANK_FREE.get((fn, leaf.param), ())


def partners(name: str, leaf: Leaf) -> tuple[str, ...]:
    """The positional parameters with an axis that follows a size one of ``leaf``'s
    axes follows: a mismatch between them may be reported on either."""
    leaves = leaves_of(name)
    i = leaves.index(leaf)
    deps = axis_components(name)
    mine = frozenset().union(*[v for (j, _), v in deps.items() if j == i])
    return tuple(sorted({leaves[j].param for (j, _), v in deps.items() if j != i and v & mine}))


def _op_case(family: str, name: str, detail: str, run, expect, **fields) -> Case:
    spec = OPS[name]
    return Case(f"{family}/{name}/{detail}", run, expect, spec.fn.__name__, **fields)


def rank_cases() -> Iterator[Case]:
    """Every array input with one axis more (a leading copy) and one fewer."""
    for spec in SPECS:
        for leaf in leaves_of(spec.name):
            for delta in (1, -1):
                if delta == -1 and len(leaf.arg.shape) == 0:
                    continue

                def run(name=spec.name, leaf=leaf, delta=delta):
                    args = example(name)
                    x = leaf_value(args, leaf)
                    x = np.stack([x, x]) if delta == 1 else x[0]
                    return call(name, with_leaf(args, leaf, put(x)), "static")

                detail = f"{leaf.name}/rank{delta:+d}"
                if _rank_valid(spec.name, leaf, delta):
                    # valid: a new shape compiles (seconds for some ops): slow
                    yield _op_case(
                        "rank",
                        spec.name,
                        detail,
                        run,
                        RESULT,
                        check=finite_check,
                        valid=True,
                        slow=True,
                    )
                else:
                    names = (leaf.param, *partners(spec.name, leaf))
                    yield _op_case("rank", spec.name, detail, run, ERROR, names=names)


@functools.cache
def axis_components(name: str) -> dict[tuple[int, int], frozenset[int]]:
    """``(leaf position, axis) -> the components of the registry size it follows``,
    found by changing each component (``c -> 2c + 1``) and seeing which axes change;
    components that change the number of leaves (an MLP's depth) are left out."""
    spec = OPS[name]
    size = spec.sizes["test"]
    base = leaves_of(name)
    deps: dict[tuple[int, int], set[int]] = {
        (i, a): set() for i, leaf in enumerate(base) for a in range(len(leaf.arg.shape))
    }
    for c in range(len(size)):
        bumped = tuple(2 * v + 1 if j == c else v for j, v in enumerate(size))
        try:
            other = leaves_of(name, bumped)
        except Exception:
            continue
        if [len(leaf.arg.shape) for leaf in other] != [len(leaf.arg.shape) for leaf in base]:
            continue
        for i, (a, b) in enumerate(zip(base, other, strict=True)):
            for axis, (m, n) in enumerate(zip(a.arg.shape, b.arg.shape, strict=True)):
                if m != n:
                    deps[(i, axis)].add(c)
    return {k: frozenset(v) for k, v in deps.items()}


# Shape changes the tie analysis gets wrong, with the reason: ``True`` valid, ``False`` not.
SHAPE_OVERRIDES = {
    # T_q and T_k are one size in the registry entry but need not be equal
    ("dot_product_attention", "q", 1): True,
    # the fixed mask is (1, 2, T_q, T_k): the times must stay as they are
    ("dot_product_attention_masked", "q", 1): False,
    # checkpoint_every=4 must divide the number of steps
    ("lstm_checkpointed", "xs", 0): False,
}


def shape_cases() -> Iterator[Case]:
    """Mismatched shapes between arguments: one axis of one input changed (+1, and
    to 1, which would broadcast) where another input follows the same size."""
    for spec in SPECS:
        leaves = leaves_of(spec.name)
        if len(leaves) < 2 or spec.fn.__name__ in ANY_RANK:
            continue  # one input, or a pytree of independent leaves
        deps = axis_components(spec.name)
        # a mismatch may be reported on a hyperparameter it involves (`groups`, `mask`)
        hyper = tuple(spec.kwargs)
        for i, leaf in enumerate(leaves):
            for axis, n in enumerate(leaf.arg.shape):
                comps = deps[(i, axis)]
                partners = {
                    leaves[j].param for (j, _), other in deps.items() if j != i and comps & other
                }
                valid = SHAPE_OVERRIDES.get((spec.name, leaf.param, axis), not partners)
                for new in (n + 1, 1):
                    if new == n or (new == 1 and valid):
                        continue

                    def run(name=spec.name, leaf=leaf, axis=axis, new=new):
                        args = example(name)
                        shape = list(leaf.arg.shape)
                        shape[axis] = new
                        rng = np.random.default_rng(_seed(name, leaf.name, axis, new))
                        x = put(_draw(leaf.arg, rng, np.float64, shape))
                        return call(name, with_leaf(args, leaf, x), "static")

                    detail = f"{leaf.name}/axis{axis}={new}"
                    if valid:
                        yield _op_case(
                            "shape",
                            spec.name,
                            detail,
                            run,
                            RESULT,
                            check=finite_check,
                            valid=True,
                            slow=True,
                        )
                    else:
                        names = (leaf.param, *sorted(partners), *hyper)
                        yield _op_case("shape", spec.name, detail, run, ERROR, names=names)


def dtype_cases() -> Iterator[Case]:
    """Integer, bool and complex arrays where floats are needed; floating and bool
    labels; uint8 labels that hold every class; one input in float32 among float64."""
    for spec in SPECS:
        leaves = leaves_of(spec.name)
        floating = [leaf for leaf in leaves if leaf.floating]
        for leaf in leaves:
            kinds = ("int32", "bool", "complex128") if leaf.floating else ("float64", "bool")
            if leaf.floating and len(floating) > 1 and spec.fn.__name__ not in PYTREE_OPS:
                kinds += ("float32",)  # among float64 inputs: no silent promotion
            for kind in kinds:

                def run(name=spec.name, leaf=leaf, kind=kind):
                    args = example(name)
                    x = leaf_value(args, leaf)
                    if kind == "bool":
                        x = x > 0
                    elif kind == "complex128":
                        x = x.astype(kind) * (1 + 1j)
                    else:
                        x = x.astype(kind)
                    return call(name, with_leaf(args, leaf, put(x)), "static")

                names = (leaf.param,) if kind != "float32" else ()
                yield _op_case(
                    "dtype",
                    spec.name,
                    f"{leaf.name}/{kind}",
                    run,
                    ERROR,
                    names=names,
                    # bool where a float is needed takes int32's path: with -m slow
                    slow=kind == "bool" and leaf.floating,
                )
            if not leaf.floating:

                def run_u8(name=spec.name, leaf=leaf):
                    args = example(name)
                    x = leaf_value(args, leaf).astype(np.uint8)
                    return call(name, with_leaf(args, leaf, put(x)))

                yield _op_case(
                    "dtype",
                    spec.name,
                    f"{leaf.name}/uint8-holding-every-class",
                    run_u8,
                    RESULT,
                    check=_same_as_example(spec.name),
                    valid=True,
                    slow=True,  # a new program to compile
                )


# Ops on a pytree of parameters: a Python list in it is a list of scalar leaves.
PYTREE_OPS = {"l1", "l2", "l1_prox"}


def _same_as_example(name: str, exact: bool = True) -> Callable[[Any], str | None]:
    """The result equals the op's on its example arrays (computed when checked)."""
    return lambda result: same_tree(call(name, example(name)), exact)(result)


def _same_values(name: str) -> Callable[[Any], str | None]:
    """The leaves, flattened and joined, equal the op's on its example arrays (a
    pytree op on a list gives a list of scalars)."""

    def check(result: Any) -> str | None:
        def joined(tree):
            return np.concatenate([np.ravel(a) for a in jax.tree.leaves(tree)])

        got, want = joined(result), joined(call(name, example(name)))
        return None if np.allclose(got, want, rtol=1e-12) else f"{short(got)} != {short(want)}"

    return check


def jax_arrays(check: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    """``check``, and every leaf a ``jax.Array`` (not a NumPy array computed by NumPy)."""

    def checked(result: Any) -> str | None:
        other = [type(a).__name__ for a in jax.tree.leaves(result) if not isinstance(a, jax.Array)]
        return f"a {other[0]} leaf, not a jax.Array" if other else check(result)

    return checked


def container_cases() -> Iterator[Case]:
    """A Python list for the first array of each argument (InputError, or the
    array's result: dlref takes arrays); every input a NumPy array (valid: the same
    result, as jax.Array)."""
    for spec in SPECS:
        seen = set()
        for leaf in leaves_of(spec.name):
            if leaf.argnum in seen:
                continue
            seen.add(leaf.argnum)

            def run_list(name=spec.name, leaf=leaf):
                args = example(name)
                value = leaf_value(args, leaf).tolist()
                return call(name, with_leaf(args, leaf, value), "static")

            pytree = spec.fn.__name__ in PYTREE_OPS
            yield _op_case(
                "list",
                spec.name,
                leaf.name,
                run_list,
                RESULT if pytree else EITHER,
                names=(leaf.param,),
                check=_same_values(spec.name) if pytree else _same_as_example(spec.name),
                valid=pytree,
                slow=pytree,  # valid: a list of scalar leaves, compiled anew
            )

        def run_numpy(name=spec.name):
            return call(name, jax.tree.map(np.asarray, example(name)))

        yield _op_case(
            "numpy",
            spec.name,
            "all-inputs",
            run_numpy,
            RESULT,
            check=jax_arrays(_same_as_example(spec.name, exact=False)),
            valid=True,
            slow=True,  # a new program to compile for every op
        )


# --- NaN and infinities ---------------------------------------------------------------


def _other_value(arg: Arg, v: float) -> float:
    """Another valid value for one entry of ``arg`` (to see whether the op reads it)."""
    if arg.domain.name == "sign":
        return -v
    if arg.domain.name in ("unit", "simplex"):
        return (v + 0.5) / 2
    return v + 1.0


def reads_entry(name: str, leaf: Leaf, mode: str) -> bool:
    """Whether the output of op ``name`` depends on the first entry of ``leaf`` (a
    dropped dropout entry, an embedding row no id names, do not)."""
    args = example(name)
    x = leaf_value(args, leaf)
    other = with_leaf(args, leaf, set_first(x, _other_value(leaf.arg, float(x.reshape(-1)[0]))))
    try:
        return same_tree(call(name, args, mode))(call(name, other, mode)) is not None
    except InputError:
        return True


def _nonfinite_check(name: str, leaf: Leaf, value: float, mode: str):
    def check(result: Any) -> str | None:
        if math.isnan(value):
            if any_nan(result) or not reads_entry(name, leaf, mode):
                return None
            return f"NaN in `{leaf.name}` hidden: {short(result)}"
        if not all_finite(result):
            return None  # the infinity shows
        # a finite result must be the limit: the result for a huge finite entry
        args = example(name)
        x = leaf_value(args, leaf)
        for big in (1e150, 1e30):
            try:
                ref = call(
                    name, with_leaf(args, leaf, set_first(x, math.copysign(big, value))), mode
                )
            except InputError:
                continue
            if same_tree(ref, exact=False)(result) is None:
                return None
        if not reads_entry(name, leaf, mode):
            return None
        return (
            f"{value} in `{leaf.name}` gave a finite result that is not the limit: {short(result)}"
        )

    return check


# Registry entries that run their base entry's code with another hyperparameter
# value (each its own program to compile): their NaN cases are slow.
_VARIANTS = {
    "leaky_relu_slope",
    "elu_alpha",
    "softmax_axis0",
    "log_softmax_axis0",
    "layer_norm_axis0",
    "batch_norm_momentum",
    "lstm_checkpointed",
    "max_pool2d_same",
    "avg_pool2d_same",
    "avg_pool2d_same_exclude_pad",
}


def nonfinite_cases() -> Iterator[Case]:
    """NaN, +inf and -inf in the first entry of every floating input, under jit and
    eagerly. NaN must show in the output (unless the output does not read that
    entry: dropout's dropped entries); an infinity must show, or give the limit."""
    for spec in SPECS:
        for leaf in leaves_of(spec.name):
            if not leaf.floating:
                continue
            for value in (NAN, INF, -INF):
                for mode in ("jit", "eager"):

                    def run(name=spec.name, leaf=leaf, value=value, mode=mode):
                        args = example(name)
                        x = set_first(leaf_value(args, leaf), value)
                        return call(name, with_leaf(args, leaf, x), mode)

                    yield _op_case(
                        "nonfinite",
                        spec.name,
                        f"{leaf.name}/{value}/{mode}",
                        run,
                        EITHER,
                        names=(leaf.param,),
                        check=_nonfinite_check(spec.name, leaf, value, mode),
                        # eager: a second program; a variant: the base entry's code path
                        slow=mode == "eager" or spec.name in _VARIANTS,
                    )


# --- out-of-range labels ----------------------------------------------------------------


def _label_value(leaf: Leaf, bad: str) -> tuple[Any, int]:
    """(dtype, value) of an out-of-range label."""
    return {
        "-1": (np.int32, -1),
        "C": (np.int32, leaf.arg.classes),
        "int32-max": (np.int32, 2**31 - 1),
        "int64-2**40": (np.int64, 2**40),
        "uint32-max": (np.uint32, 2**32 - 1),
    }[bad]


def _bad_labels(name: str, leaf: Leaf, bad: str) -> tuple:
    args = example(name)
    dtype, value = _label_value(leaf, bad)
    return with_leaf(args, leaf, set_first(leaf_value(args, leaf), value, dtype))


def nan_loss_and_gradient(result: Any) -> str | None:
    out, grads = result
    if not any_nan(out):
        return f"finite output: {short(out)}"
    finite = [g for g in jax.tree.leaves(grads) if not any_nan(g)]
    if finite:
        return f"a finite gradient: {short(finite[0])}"
    return None


def _vmapped(name: str, args: tuple) -> tuple:
    """Output and gradient of op ``name`` under vmap (without jit) over two stacked
    copies of ``args``."""
    spec = OPS[name]
    stacked = jax.tree.map(lambda x: jnp.stack([x, x]), args)

    def total(*diff):
        full = list(stacked)
        for i, d in zip(spec.diff_argnums, diff, strict=True):
            full[i] = d
        return sum(jnp.sum(y) for y in jax.tree.leaves(jax.vmap(spec.manual)(*full)))

    diff = [stacked[i] for i in spec.diff_argnums]
    grads = jax.grad(total, argnums=tuple(range(len(diff))))(*diff)
    return jax.vmap(spec.manual)(*stacked), grads


def _classes_component(name: str, leaf: Leaf) -> int | None:
    size = OPS[name].sizes["test"]
    for c in range(len(size)):
        bumped = tuple(2 * v + 1 if j == c else v for j, v in enumerate(size))
        try:
            other = leaves_of(name, bumped)
        except Exception:
            continue
        if len(other) == len(leaves_of(name)):
            mine = other[leaves_of(name).index(leaf)]
            if mine.arg.classes != leaf.arg.classes:
                return c
    return None


def label_cases() -> Iterator[Case]:
    """Labels (and embedding ids) -1, C, huge, eagerly (InputError), under jit and
    vmap (NaN output and NaN gradient), under grad with concrete labels (InputError);
    a label dtype too narrow for the class count."""
    for spec in SPECS:
        for leaf in leaves_of(spec.name):
            if leaf.floating:
                continue
            name = spec.name
            for bad in ("-1", "C", "int32-max", "int64-2**40", "uint32-max"):

                def eager(name=name, leaf=leaf, bad=bad):
                    return call(name, _bad_labels(name, leaf, bad))

                def jit(name=name, leaf=leaf, bad=bad):
                    args = _bad_labels(name, leaf, bad)
                    return pullback(name)(args, cotangent(name, args))

                detail = f"{leaf.name}={bad}"
                if bad != "uint32-max":  # unsigned: cannot be -1, checked like the others
                    yield _op_case(
                        "label", name, detail + "/eager", eager, ERROR, names=(leaf.param,)
                    )
                yield _op_case(
                    "label",
                    name,
                    detail + "/jit",
                    jit,
                    RESULT,
                    check=nan_loss_and_gradient,
                    slow=bad in ("int64-2**40", "uint32-max"),  # another dtype: another program
                )
                if bad in ("-1", "C"):

                    def vmap(name=name, leaf=leaf, bad=bad):
                        return _vmapped(name, _bad_labels(name, leaf, bad))

                    def grad(name=name, leaf=leaf, bad=bad):
                        spec = OPS[name]
                        args = _bad_labels(name, leaf, bad)
                        f = restrict(spec.manual, args, spec.diff_argnums)
                        diff = [args[i] for i in spec.diff_argnums]
                        loss = lambda *d: sum(jnp.sum(y) for y in jax.tree.leaves(f(*d)))
                        return jax.grad(loss, argnums=tuple(range(len(diff))))(*diff)

                    yield _op_case(
                        "label",
                        name,
                        detail + "/vmap",
                        vmap,
                        RESULT,
                        check=nan_loss_and_gradient,
                        slow=True,  # vmap without jit runs op by op: seconds
                    )
                    yield _op_case(
                        "label", name, detail + "/grad", grad, ERROR, names=(leaf.param,)
                    )
            c = _classes_component(name, leaf)
            if c is None:
                continue
            size = tuple(300 if j == c else v for j, v in enumerate(spec.sizes["test"]))

            def narrow(name=name, leaf=leaf, size=size, mode="eager"):
                args = example(name, size)
                x = (leaf_value(args, leaf) % 100).astype(np.int8)
                return call(name, with_leaf(args, leaf, put(x)), mode)

            # ids need only hold the ids used; class labels must hold every class
            ids = spec.fn.__name__ == "embedding"
            for mode in ("eager", "jit"):
                yield _op_case(
                    "label",
                    name,
                    f"{leaf.name}/int8-for-300-classes/{mode}",
                    functools.partial(narrow, mode=mode),
                    EITHER if ids else ERROR,
                    names=(leaf.param,),
                    check=finite_check,
                    valid=ids,
                    slow=ids,  # computes, at a new size
                )


# --- values outside an input's domain ---------------------------------------------------

# Inputs whose registry domain is a real constraint (probabilities, +-1 labels);
# a positive scale is only how the registry draws it.
CONSTRAINED = {"unit": (-0.5, 1.5), "simplex": (-0.5, 1.5), "sign": (0.0, 0.5, 2.0)}
# (function, argument, value or None for any): what the docstring says happens under
# jit, where the value cannot be checked.
JIT_UNCHECKED = {
    ("binary_cross_entropy", "probs", None): "clipped to [eps, 1 - eps] (docstring)",
    ("binary_cross_entropy", "targets", None): "a meaningless loss (docstring)",
    ("categorical_cross_entropy", "probs", None): "not checked under jit (docstring)",
    ("categorical_cross_entropy", "targets", None): "not checked under jit (docstring)",
    ("hinge", "labels", 0.5): "left to the eager check (docstring)",
    ("hinge", "labels", 2.0): "left to the eager check (docstring)",
}


def _documented_under_jit(fn: str, param: str, value: float) -> bool:
    return (fn, param, value) in JIT_UNCHECKED or (fn, param, None) in JIT_UNCHECKED


def domain_cases() -> Iterator[Case]:
    """Probabilities and targets outside [0, 1], hinge labels other than +-1, a
    negative running variance: InputError eagerly; under jit NaN, or what the
    docstring says."""
    for spec in SPECS:
        fn = spec.fn.__name__
        for leaf in leaves_of(spec.name):
            values = CONSTRAINED.get(leaf.arg.domain.name, ())
            if leaf.name == "state.var":
                values = (-1.0,)
            for value in values:
                for mode in ("eager", "jit"):

                    def run(name=spec.name, leaf=leaf, value=value, mode=mode):
                        args = example(name)
                        x = set_first(leaf_value(args, leaf), value)
                        return call(name, with_leaf(args, leaf, x), mode)

                    detail = f"{leaf.name}={value}/{mode}"
                    if mode == "eager":
                        yield _op_case("domain", spec.name, detail, run, ERROR, names=(leaf.param,))
                    elif _documented_under_jit(fn, leaf.param, value):
                        yield _op_case("domain", spec.name, detail, run, RESULT)
                    else:
                        yield _op_case("domain", spec.name, detail, run, RESULT, check=nan_check)


# --- empty axes ---------------------------------------------------------------------------

# Ops that refuse an empty batch (README, "NaN and empty input"; tests/test_ops.py).
EMPTY_RAISES = {"batch_norm", "batch_norm_momentum", "mlp_loss", "layer_norm_axis0"}
# A mean over an empty feature axis raises (README).
EMPTY_FEATURES_RAISE = {"mse", "mae", "hinge"}
SEQUENCES = {"rnn", "lstm", "gru"}
# Losses whose sum over an empty feature axis is 0 (the others raise).
_SUMMING_LOSSES = {
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "categorical_cross_entropy",
    "softmax_cross_entropy",
    "soft_f1",
}


def _empty_run(name: str, zero: tuple, full: bool) -> Any:
    """Op ``name`` at size ``zero``. Not ``full``: traced first, and run only where
    some output is not empty (an empty output has no value to check)."""
    args = example(name, zero)
    if not full:
        shapes = jax.eval_shape(OPS[name].manual, *args)
        if all(math.prod(leaf.shape) == 0 for leaf in jax.tree.leaves(shapes)):
            return shapes
        return call(name, args)
    out = call(name, args)
    _, grads = pullback(name)(args, cotangent(name, args))
    return out, grads


def empty_cases() -> Iterator[Case]:
    """Each size of an op's inputs set to 0, one at a time: the batch (an empty
    result, or InputError for the documented few), the features (InputError for a
    mean over them, else a finite result) and every other size (either). By
    default the batch and the features, traced (run where an output is not
    empty); with ``-m slow`` every size, run eagerly and differentiated under jit."""
    for spec in SPECS:
        fn = spec.fn.__name__
        size = spec.sizes["test"]
        deps = axis_components(spec.name)
        leaves = leaves_of(spec.name)
        # the data: the first input that is not the parameters (an MLP's `x`)
        data = next((i for i, leaf in enumerate(leaves) if leaf.param != "params"), 0)
        last = len(leaves[data].arg.shape) - 1
        for c in range(len(size)):
            zero = tuple(0 if j == c else v for j, v in enumerate(size))
            if not any(c in comps for comps in deps.values()):
                continue  # a size that changes the structure (an MLP's depth)
            try:
                leaves_of(spec.name, zero)
            except ZeroDivisionError:
                continue  # not a size: conv2d's groups
            batch = c in deps.get((data, 0), ()) or (fn in SEQUENCES and c == 1)
            feature = c in deps.get((data, last), ())
            shapes = ",".join(str(v) for v in zero)
            if batch:
                detail = f"batch=0({shapes})"
                expect = ERROR if spec.name in EMPTY_RAISES else RESULT
            elif feature:
                detail = f"features=0({shapes})"
                expect = ERROR if fn in EMPTY_FEATURES_RAISE else EITHER
            else:
                detail, expect = f"size{c}=0({shapes})", EITHER
            # outputs that are not empty are computed, a program each: by default the
            # recurrent ops' and the summing losses' empty features only with -m slow
            computed = spec.module == "dlref.recurrent" or (
                spec.module == "dlref.losses" and fn in _SUMMING_LOSSES
            )
            for full in (False, True):
                if not full and not (batch or feature):
                    continue
                yield _op_case(
                    "empty",
                    spec.name,
                    detail + ("/run" if full else "/traced"),
                    functools.partial(_empty_run, spec.name, zero, full),
                    expect,
                    check=finite_check,
                    valid=expect != ERROR,
                    slow=full or (computed and not batch),
                )


# --- hyperparameters -----------------------------------------------------------------------

_PADDINGS = (["same", ((1, 0), (0, 1))], ["FULL", ((-1, 0), (0, 0)), 1, None])
# (registry entry, hyperparameter): (a valid value, more valid values, invalid values), from
# the docstrings; every hyperparameter of every op is listed (test_every_hyperparameter_swept).
HYPERS: dict[tuple[str, str], tuple[Any, list, list]] = {
    ("leaky_relu", "negative_slope"): (
        0.2,
        [-1.0, 0.0, 5.0, 2],
        [NAN, INF, -INF, "0.1", True, None],
    ),
    ("elu", "alpha"): (0.5, [0.0, 3], [-0.5, NAN, INF, "1", True, None]),
    ("gelu", "approximate"): (True, [False], ["yes", 1, 0.0, None]),
    # (axis=None is left out: jax.nn takes it, the signature says int)
    ("softmax", "axis"): (0, [-1, 1, -2], [2, -3, 1.5, "0", True]),
    ("log_softmax", "axis"): (0, [-1, 1, -2], [2, -3, 1.5, "0", True]),
    ("l1_prox", "threshold"): (0.25, [0.0, INF], [-1.0, NAN, "0.5", None]),
    ("dropout", "rate"): (0.5, [0.0, 1.0], [-0.1, 1.1, NAN, INF, "0.5", None]),
    ("dropout", "training"): (False, [True], ["no", 0.5, None]),
    ("dropout", "key"): (None, [], []),  # an array: see array_hyper_cases
    ("batch_norm", "training"): (False, [True], ["no", None]),
    ("batch_norm", "momentum"): (0.9, [0.0, 1.0], [-0.1, 1.5, NAN, INF, "0.9", None]),
    ("batch_norm", "eps"): (1e-3, [0.0, INF], [-1e-5, NAN, "1e-5", None]),
    ("batch_norm", "axis_name"): (None, [], ["batch", 3]),  # no mapped axis of that name
    ("layer_norm", "axis"): (1, [-1], [2, -3, 1.5, "1", True, None]),
    ("layer_norm", "eps"): (1e-3, [0.0, INF], [-1.0, NAN, "1e-6", None]),
    ("rms_norm", "axis"): (1, [-1], [2, -3, 1.5, "1", True, None]),
    ("rms_norm", "eps"): (1e-3, [0.0, INF], [-1.0, NAN, "1e-6", None]),
    ("conv2d", "stride"): (2, [(2, 1)], [0, -1, (1,), (1, 2, 3), 1.5, "1", True, None]),
    ("conv2d", "padding"): ("VALID", _PADDINGS[0], _PADDINGS[1]),
    ("conv2d", "dilation"): (2, [(1, 2)], [0, -1, 1.5, True, None]),
    ("conv2d_strided_grouped", "groups"): (2, [], [0, -1, 3, 1.5, True, None]),
    ("max_pool2d", "window"): (3, [(2, 3), 6], [0, -1, 7, (2,), 1.5, True, None]),
    ("max_pool2d", "stride"): (1, [(1, 2), None], [0, -1, 1.5, True]),
    ("max_pool2d", "padding"): (
        "SAME",
        ["VALID", *_PADDINGS[0]],
        [*_PADDINGS[1], ((2, 2), (0, 0))],
    ),
    ("avg_pool2d", "window"): (3, [(2, 3), 6], [0, -1, 7, (2,), 1.5, True, None]),
    ("avg_pool2d", "stride"): (1, [(1, 2), None], [0, -1, 1.5, True]),
    ("avg_pool2d", "padding"): (
        "SAME",
        ["VALID", *_PADDINGS[0]],
        [*_PADDINGS[1], ((2, 2), (0, 0))],
    ),
    ("avg_pool2d", "count_include_pad"): (False, [True], ["no", None]),
    ("dot_product_attention", "causal"): (True, [False], ["yes", 1, None]),
    ("dot_product_attention", "scale"): (0.5, [None, -1.0, 0.0], [NAN, INF, "0.5"]),
    ("dot_product_attention", "block_size"): (3, [1, 1000], [0, -1, 2.5, True, None]),
    ("dot_product_attention", "mask"): (None, [], []),  # an array: see array_hyper_cases
    ("rnn", "checkpoint_every"): (4, [None, 1, 8], [0, -1, 3, 2.5, True, "4"]),
    ("lstm", "checkpoint_every"): (4, [None, 1, 8], [0, -1, 3, 2.5, True, "4"]),
    ("gru", "checkpoint_every"): (4, [None, 1, 8], [0, -1, 3, 2.5, True, "4"]),
    ("mlp", "activation"): ("tanh", ["relu", "sigmoid"], ["gelu", "RELU", 1, None]),
    ("mlp_loss", "activation"): ("tanh", ["relu", "sigmoid"], ["gelu", "RELU", 1, None]),
}
# Hyperparameters that may be arrays (a traced one is accepted).
ARRAY_HYPERS = {("l1_prox", "threshold")}


_SLOW_TO_COMPILE = {"softmax", "log_softmax", "dot_product_attention"}


def _wrappers(value: Any) -> dict[str, tuple[Any, Any]]:
    """``name -> (the value as a NumPy or JAX scalar, the Python value it stands for)``."""
    if isinstance(value, bool):
        kinds = {"np.bool_": np.bool_(value)}
    elif isinstance(value, int):
        kinds = {"np.int64": np.int64(value), "np.int32": np.int32(value)}
    elif isinstance(value, float):
        kinds = {"np.float64": np.float64(value), "np.float32": np.float32(value)}
    elif isinstance(value, str):
        return {"np.str_": (np.str_(value), value)}
    else:
        return {}
    kinds.update({"np.array-0d": np.array(value), "jnp.array-0d": jnp.asarray(value)})
    return {k: (v, np.asarray(v).item()) for k, v in kinds.items()}


def _hyper_call(name: str, hyper: str, value: Any, mode: str = "eager") -> Any:
    """Op ``name`` with ``hyper=value`` on float32 inputs (a NumPy float64 must not
    widen them); ``mode`` "traced": ``value`` traced under jit; "abstract": only
    traced (``jax.eval_shape``: the output's shapes and dtypes, nothing compiled)."""
    args = example(name, None, np.float32)
    if mode == "traced":
        return jax.jit(lambda v: call(name, args, **{hyper: v}))(jnp.asarray(value))
    if mode == "abstract":
        spec = OPS[name]
        return jax.eval_shape(functools.partial(spec.fn, **{**spec.kwargs, hyper: value}), *args)
    return call(name, args, **{hyper: value})


def same_shapes(expected: Any) -> Callable[[Any], str | None]:
    """The abstract result has the structure, shapes and dtypes of ``expected``."""

    def check(result: Any) -> str | None:
        if jax.tree.structure(result) != jax.tree.structure(expected):
            return f"structure {jax.tree.structure(result)} != {jax.tree.structure(expected)}"
        for g, w in zip(jax.tree.leaves(result), jax.tree.leaves(expected), strict=True):
            if (g.shape, g.dtype) != (w.shape, w.dtype):
                return f"{g.dtype}{list(g.shape)}, expected {w.dtype}{list(w.shape)}"
        return None

    return check


@functools.cache
def _hyper_reference(name: str, hyper: str, value: Any) -> Any:
    """The result for a Python value (hashable), computed once."""
    return _hyper_call(name, hyper, value)


def hyper_cases() -> Iterator[Case]:
    """Each hyperparameter as a Python value, as NumPy and JAX scalars (the Python
    value's result, dtype included), traced under jit (InputError naming it, or
    accepted where it may be an array), at other valid values and at invalid ones
    (negative rates, NaN, infinities, strings, bools, None)."""
    for (name, hyper), (base, more, bad) in HYPERS.items():
        if base is None and not more and not bad:
            continue
        fn = OPS[name].fn.__name__
        reference = functools.partial(_hyper_reference, name, hyper, base)
        if base is not None:
            # by default traced only (each value is its own program to compile): the
            # call is accepted, with the Python value's output dtypes; run with -m slow
            abstract = functools.partial(_hyper_call, name, hyper, base, "abstract")
            yield _op_case("hyper", name, f"{hyper}={base!r}", abstract, RESULT, valid=True)
            yield _op_case(
                "hyper",
                name,
                f"{hyper}={base!r}/run",
                reference,
                RESULT,
                check=finite_check,
                valid=True,
                slow=True,
            )
            for kind, (value, python) in _wrappers(base).items():

                def expected(result, python=python, name=name, hyper=hyper):
                    return same_tree(_hyper_reference(name, hyper, python))(result)

                def expected_shapes(result, python=python, name=name, hyper=hyper):
                    return same_shapes(_hyper_call(name, hyper, python, "abstract"))(result)

                yield _op_case(
                    "hyper",
                    name,
                    f"{hyper}={kind}({base!r})",
                    functools.partial(_hyper_call, name, hyper, value, "abstract"),
                    RESULT,
                    check=expected_shapes,
                    valid=True,
                )
                yield _op_case(
                    "hyper",
                    name,
                    f"{hyper}={kind}({base!r})/run",
                    functools.partial(_hyper_call, name, hyper, value),
                    RESULT,
                    check=expected,
                    valid=True,
                    slow=True,
                )
            if not isinstance(base, str):
                traced = functools.partial(_hyper_call, name, hyper, base, "traced")
                if (fn, hyper) in ARRAY_HYPERS:
                    yield _op_case(
                        "hyper",
                        name,
                        f"{hyper}=traced",
                        traced,
                        RESULT,
                        check=lambda r, ref=reference: same_tree(ref(), exact=False)(r),
                        valid=True,
                    )
                else:
                    yield _op_case("hyper", name, f"{hyper}=traced", traced, ERROR, names=(hyper,))
        for value in more:
            yield _op_case(
                "hyper",
                name,
                f"{hyper}={value!r}",
                functools.partial(_hyper_call, name, hyper, value),
                RESULT,
                check=finite_check,
                valid=True,
                slow=True,  # another program to compile
            )
        for value in [*bad, np.array([base if base is not None else 1])]:
            yield _op_case(
                "hyper",
                name,
                f"{hyper}={value!r}".replace("\n", ""),
                functools.partial(_hyper_call, name, hyper, value),
                ERROR,
                names=(hyper,),
                # a value dlref accepts today is computed: seconds for these ops
                slow=fn in _SLOW_TO_COMPILE and (value is True or isinstance(value, str)),
            )


def array_hyper_cases() -> Iterator[Case]:
    """The array hyperparameters: dropout's key, attention's mask."""
    x = functools.partial(example, "dropout", None, np.float32)

    def drop(key, **kw):
        return OPS["dropout"].fn(*x(), **{"rate": 0.5, "key": key, **kw})

    ok = {"jax.random.key": jax.random.key(0), "PRNGKey": jax.random.PRNGKey(0)}
    for label, key in ok.items():
        yield Case(
            f"hyper/dropout/key={label}",
            functools.partial(drop, key),
            RESULT,
            "dropout",
            check=finite_check,
            valid=True,
        )
    bad = {
        "None": None,
        "int": 0,
        "float-array": np.ones(2),
        "list": [0, 42],
        "shape-(3,)": np.zeros(3, np.uint32),
    }
    for label, key in bad.items():
        yield Case(
            f"hyper/dropout/key={label}", functools.partial(drop, key), ERROR, "dropout", ("key",)
        )
    yield Case(
        "hyper/dropout/key=traced",
        lambda: jax.jit(drop)(jax.random.key(0)),
        RESULT,
        "dropout",
        check=finite_check,
        valid=True,
    )

    def attend(mask, **kw):
        q, k, v = example("dot_product_attention_masked", None, np.float32)
        return OPS["dot_product_attention"].fn(q, k, v, mask=mask, **kw)

    mask = np.asarray(OPS["dot_product_attention_masked"].kwargs["mask"])
    for label, m in {
        "jnp": jnp.asarray(mask),
        "rank-2": mask[0, 0],
        "all-false": np.zeros_like(mask),  # every row fully masked: output 0
    }.items():
        yield Case(
            f"hyper/dot_product_attention/mask={label}",
            functools.partial(attend, m),
            RESULT,
            "dot_product_attention",
            check=finite_check,
            valid=True,
            slow=label != "jnp",  # a program each
        )
    yield Case(
        "hyper/dot_product_attention/mask=traced",
        lambda: jax.jit(attend)(jnp.asarray(mask)),
        RESULT,
        "dot_product_attention",
        check=finite_check,
        valid=True,
        slow=True,
    )
    bad_masks = {
        "float": mask.astype(np.float32),
        "int": mask.astype(np.int32),
        "list": mask.tolist(),
        "shape": mask[..., :-1],
        "rank-5": mask[None],
    }
    for label, m in bad_masks.items():
        yield Case(
            f"hyper/dot_product_attention/mask={label}",
            functools.partial(attend, m),
            ERROR,
            "dot_product_attention",
            ("mask",),
        )


# --- dlref.metrics ----------------------------------------------------------------------------

_Y_TRUE = np.array([0, 1, 2, 2, 1, 0], np.int32)
_Y_PRED = np.array([0, 2, 2, 1, 1, 0], np.int32)
_PROBS = np.array([0.1, 0.8, 0.6, 0.3, 0.9, 0.2])
_Y_BINARY = np.array([0, 1, 1, 0, 1, 0], np.int32)
_SCORES = ("precision", "recall", "f1_score", "precision_recall_fscore_support")


def _metric(fn: str, mode: str = "eager", /, **overrides) -> Any:
    """``dlref.metrics.<fn>`` on three-class labels (or ``overrides``), its other
    arguments at valid values; ``mode`` "jit" traces ``y_true``, ``y_pred`` and
    ``sample_weight``; "vmap" maps them over a stacked pair."""
    from dlref import metrics

    kwargs: dict[str, Any] = {"y_true": put(_Y_TRUE), "y_pred": put(_Y_PRED), "num_classes": 3}
    if fn in _SCORES:
        kwargs["average"] = "macro"
    kwargs.update(overrides)
    f = getattr(metrics, fn)
    arrays = {k: v for k, v in kwargs.items() if k in ("y_true", "y_pred", "sample_weight")}
    static = {k: v for k, v in kwargs.items() if k not in arrays}
    if mode == "jit":
        return jax.jit(lambda a: f(**a, **static))(arrays)
    if mode == "vmap":
        stacked = jax.tree.map(lambda x: jnp.stack([x, x]), arrays)
        return jax.vmap(lambda a: f(**a, **static))(stacked)
    return f(**kwargs)


def _scores_nan(result: Any) -> str | None:
    """Every score NaN (a label out of range under jit: module docstring)."""
    leaves = [a for a in array_leaves(result)]
    if leaves and all(np.isnan(a).all() for a in leaves[:3]):
        return None
    return f"scores not NaN: {short(result)}"


def _left_out(total: float) -> Callable[[Any], str | None]:
    """The confusion matrix counts ``total`` samples (the bad one left out)."""

    def check(result: Any) -> str | None:
        got = float(np.asarray(result).sum())
        return None if got == total else f"counts {got} samples, expected {total}: {short(result)}"

    return check


def _empty_metric(fn: str) -> Callable[[Any], str | None]:
    """Empty input (module docstring): zeros; accuracy NaN; macro averages NaN."""

    def check(result: Any) -> str | None:
        a = array_leaves(result)
        if fn == "confusion_matrix":
            ok = not np.asarray(result).any()
        else:
            ok = all(np.isnan(x).all() for x in a[:3])
        return None if ok else f"not the documented empty result: {short(result)}"

    return check


# Every metric counts through the confusion matrix, and the scores through f1_score's
# path (_scores): by default the others' errors only (no compilation) are swept,
# and the confusion matrix's own documented result (a bad label left out, under jit).
_COMPUTED_BY_DEFAULT = ("f1_score",)


def _mcase(detail: str, fn: str, run, expect: str, *, keep: bool = False, **fields) -> Case:
    if expect != ERROR and fn not in _COMPUTED_BY_DEFAULT and not keep:
        fields["slow"] = True
    return Case(f"metrics/{fn}/{detail}", run, expect, fn, **fields)


def metrics_cases() -> Iterator[Case]:
    fns = ("confusion_matrix", "accuracy", *_SCORES)
    n = len(_Y_TRUE)
    for fn in fns:
        m = functools.partial(_metric, fn)
        reference = functools.partial(_metric, fn)
        same = lambda r, ref=reference: same_tree(ref())(r)
        for arg, base in (("y_true", _Y_TRUE), ("y_pred", _Y_PRED)):
            bad = {
                "rank+1": np.stack([base, base]),
                "rank-1": base[0],
                "length+1": np.append(base, 0),
                "bool": base > 0,
                "complex128": base.astype(np.complex128),
                "int8-for-300-classes": base.astype(np.int8),
            }
            if arg == "y_true":
                bad["float64"] = base.astype(np.float64)
            else:  # floats are probabilities of class 1, for two classes only
                bad["float64-with-3-classes"] = base.astype(np.float64)
            for label, value in bad.items():
                extra = {"num_classes": 300} if label.startswith("int8") else {}
                yield _mcase(
                    f"{arg}/{label}",
                    fn,
                    functools.partial(m, **{arg: put(value)}, **extra),
                    ERROR,
                    names=(arg, "num_classes"),
                )
            yield _mcase(
                f"{arg}/list",
                fn,
                functools.partial(m, **{arg: base.tolist()}),
                EITHER,
                names=(arg,),
                check=same,
                slow=True,  # accepted (jnp.asarray): compiles for the list's dtype
            )
            for label, value in (("-1", -1), ("C", 3), ("int32-max", 2**31 - 1)):
                bad_labels = put(set_first(base, value))
                yield _mcase(
                    f"{arg}={label}/eager",
                    fn,
                    functools.partial(m, **{arg: bad_labels}),
                    ERROR,
                    names=(arg,),
                )
                for mode, copies in (("jit", 1), ("vmap", 2)):
                    check = _left_out(copies * (n - 1)) if fn == "confusion_matrix" else _scores_nan
                    yield _mcase(
                        f"{arg}={label}/{mode}",
                        fn,
                        functools.partial(m, mode, **{arg: bad_labels}),
                        RESULT,
                        check=check,
                        slow=mode == "vmap" or label != "-1",  # compiles
                        keep=fn == "confusion_matrix",
                    )
        empty = {"y_true": put(_Y_TRUE[:0]), "y_pred": put(_Y_PRED[:0])}
        yield _mcase(
            "empty", fn, functools.partial(m, **empty), RESULT, check=_empty_metric(fn), valid=True
        )
        # num_classes: static; NumPy and JAX scalars are its Python value
        for label, value in (("np.int64", np.int64(3)), ("jnp.array-0d", jnp.asarray(3))):
            yield _mcase(
                f"num_classes={label}",
                fn,
                functools.partial(m, num_classes=value),
                RESULT,
                check=same,
                valid=True,
            )
        yield _mcase(
            "num_classes=traced",
            fn,
            lambda fn=fn: jax.jit(lambda c: _metric(fn, num_classes=c))(jnp.asarray(3)),
            ERROR,
            names=("num_classes",),
        )
        for value in (0, -1, 2, 2.5, "3", True):
            yield _mcase(
                f"num_classes={value!r}",
                fn,
                functools.partial(m, num_classes=value),
                ERROR,
                names=("num_classes", "y_true", "y_pred"),  # 2: the labels are out of range
            )
        if fn != "accuracy":
            yield _mcase(
                "num_classes=None",
                fn,
                functools.partial(m, num_classes=None),
                ERROR,
                names=("num_classes",),
            )
        # sample_weight
        w = np.linspace(0.5, 1.5, n)
        for label, value in {
            "length+1": np.append(w, 1.0),
            "rank+1": np.stack([w, w]),
            "complex128": w.astype(np.complex128),
        }.items():
            yield _mcase(
                f"sample_weight/{label}",
                fn,
                functools.partial(m, sample_weight=put(value)),
                ERROR,
                names=("sample_weight",),
            )
        yield _mcase(
            "sample_weight/nan",
            fn,
            functools.partial(m, sample_weight=put(set_first(w, NAN))),
            EITHER,
            names=("sample_weight",),
            check=nan_check,
        )
        yield _mcase(
            "sample_weight/list",
            fn,
            functools.partial(m, sample_weight=w.tolist()),
            EITHER,
            names=("sample_weight",),
            check=lambda r, fn=fn, w=w: same_tree(_metric(fn, sample_weight=put(w)))(r),
            slow=True,
        )
        # binary probabilities and the threshold
        binary = {"y_true": put(_Y_BINARY), "y_pred": put(_PROBS), "num_classes": 2}
        if fn in _SCORES:
            binary["average"] = "binary"
        b = functools.partial(m, **binary)
        yield _mcase(
            "probs=nan/eager",
            fn,
            functools.partial(b, y_pred=put(set_first(_PROBS, NAN))),
            ERROR,
            names=("y_pred",),
        )
        check = _left_out(n - 1) if fn == "confusion_matrix" else _scores_nan
        yield _mcase(
            "probs=nan/jit",
            fn,
            functools.partial(m, "jit", **{**binary, "y_pred": put(set_first(_PROBS, NAN))}),
            RESULT,
            check=check,
        )
        for value in (1.5, -0.2):
            yield _mcase(
                f"probs={value}",
                fn,
                functools.partial(b, y_pred=put(set_first(_PROBS, value))),
                ERROR,
                names=("y_pred",),
                slow=fn not in _COMPUTED_BY_DEFAULT,  # accepted today: computed
            )
        for value in (NAN, "0.5", None, np.array([0.5])):
            yield _mcase(
                f"threshold={value!r}",
                fn,
                functools.partial(b, threshold=value),
                ERROR,
                names=("threshold",),
            )
        for label, value in (("np.float32", np.float32(0.7)), ("jnp.array-0d", jnp.asarray(0.7))):
            yield _mcase(
                f"threshold={label}",
                fn,
                functools.partial(b, threshold=value),
                RESULT,
                check=lambda r, b=b: same_tree(b(threshold=0.7))(r),
                valid=True,
            )
        yield _mcase(
            "threshold=traced",
            fn,
            lambda b=b, fn=fn, binary=binary: jax.jit(lambda t: _metric(fn, **binary, threshold=t))(
                jnp.asarray(0.7)
            ),
            RESULT,
            check=lambda r, b=b: same_tree(b(threshold=0.7), exact=False)(r),
            valid=True,
        )
        if fn in _SCORES:
            for value in ("samples", "MACRO", 1, "binary"):
                yield _mcase(
                    f"average={value!r}",
                    fn,
                    functools.partial(m, average=value),
                    ERROR,
                    names=("average",),
                )
            yield _mcase(
                "average=np.str_",
                fn,
                functools.partial(m, average=np.str_("macro")),
                RESULT,
                check=same,
                valid=True,
            )
            for value in (2, -1, 1.0, True):
                yield _mcase(
                    f"pos_label={value!r}",
                    fn,
                    functools.partial(b, pos_label=value),
                    ERROR,
                    names=("pos_label",),
                )
            yield _mcase(
                "pos_label=np.int64",
                fn,
                functools.partial(b, pos_label=np.int64(0)),
                RESULT,
                check=lambda r, b=b: same_tree(b(pos_label=0))(r),
                valid=True,
            )
            for value in (0.5, -1, "warn", None):
                yield _mcase(
                    f"zero_division={value!r}",
                    fn,
                    functools.partial(m, zero_division=value),
                    ERROR,
                    names=("zero_division",),
                )
            for label, value in (
                ("np.float64", np.float64(1.0)),
                ("jnp.array-0d", jnp.asarray(1.0)),
            ):
                yield _mcase(
                    f"zero_division={label}",
                    fn,
                    functools.partial(m, zero_division=value),
                    RESULT,
                    check=lambda r, m=m: same_tree(m(zero_division=1.0))(r),
                    valid=True,
                )
        if fn == "accuracy":
            yield _mcase(
                "normalize='no'",
                fn,
                functools.partial(m, normalize="no"),
                ERROR,
                names=("normalize",),
            )
            yield _mcase(
                "normalize=np.bool_",
                fn,
                functools.partial(m, normalize=np.bool_(False)),
                RESULT,
                check=lambda r, m=m: same_tree(m(normalize=False))(r),
                valid=True,
            )
            yield _mcase(
                "num_classes=None/jit",
                fn,
                functools.partial(m, "jit", num_classes=None),
                ERROR,
                names=("num_classes",),
            )


# --- dlref.optim ---------------------------------------------------------------------------------

_OPTIMIZERS = {  # function -> its hyperparameters: (kind, a valid value)
    "gradient_descent": {},
    "momentum_update": {"beta": ("beta", 0.9), "nesterov": ("flag", True)},
    "rmsprop_update": {
        "decay": ("beta", 0.9),
        "eps": ("nonneg", 1e-8),
        "eps_in_sqrt": ("flag", False),
    },
    "adam_update": {
        "b1": ("beta", 0.9),
        "b2": ("beta", 0.999),
        "eps": ("nonneg", 1e-8),
        "eps_root": ("nonneg", 0.0),
    },
    "adamw_update": {
        "b1": ("beta", 0.9),
        "weight_decay": ("nonneg", 1e-4),
        "eps": ("nonneg", 1e-8),
    },
}
_INITS = {
    "momentum_update": "momentum_init",
    "rmsprop_update": "rmsprop_init",
    "adam_update": "adam_init",
    "adamw_update": "adam_init",
}


def _params(dtype: Any = np.float64) -> dict:
    rng = np.random.default_rng(7)
    return {
        "w": put(rng.standard_normal((3, 2)).astype(dtype)),
        "b": put(rng.standard_normal(2).astype(dtype)),
    }


def _step(
    fn: str,
    grads: Any = None,
    params: Any = None,
    *,
    state: Any = None,
    mode: str = "eager",
    lr: Any = 0.1,
    **hyper,
) -> Any:
    """One step of ``dlref.optim.<fn>``; float64 parameters unless given."""
    from dlref import optim

    params = _params() if params is None else params
    grads = jax.tree.map(lambda w: w * 0.5 + 0.25, params) if grads is None else grads
    f = getattr(optim, fn)
    if fn == "gradient_descent":
        run = lambda g, p, r: f(p, g, r)
    else:
        if state is None:
            state = getattr(optim, _INITS[fn])(params)
        run = lambda g, p, r: f(g, state, p, learning_rate=r, **hyper)
    if mode == "jit":
        return jax.jit(run)(grads, params, jnp.asarray(lr))
    return run(grads, params, lr)


def _dtypes_kept(dtype: Any) -> Callable[[Any], str | None]:
    """Every floating leaf of the result (new parameters and state) in ``dtype``."""

    def check(result: Any) -> str | None:
        wrong = {str(a.dtype) for a in array_leaves(result) if a.dtype != dtype}
        return (
            f"leaves of dtype {sorted(wrong)} in a {np.dtype(dtype).name} step" if wrong else None
        )

    return check


def _grads(params: dict) -> dict:
    return jax.tree.map(lambda w: put(np.asarray(w) * 0.5 + 0.25), params)


def _with(tree: dict, key: str, f: Callable[[np.ndarray], Any]) -> dict:
    """``tree`` with leaf ``key`` replaced by ``f`` of it (in NumPy; arrays put back)."""
    value = f(np.asarray(tree[key]))
    return {**tree, key: put(value) if isinstance(value, np.ndarray) else value}


# Bad gradients for float64 parameters {"w": (3, 2), "b": (2,)}: made when the case runs.
_BAD_GRADS = {
    "missing-leaf": lambda g: {"w": g["w"]},
    "extra-leaf": lambda g: {**g, "c": g["b"]},
    "list-not-dict": lambda g: [g["b"], g["w"]],
    "leaf-shape": lambda g: _with(g, "w", lambda w: np.ones((3, 3))),
    "leaf-broadcast": lambda g: _with(g, "w", lambda w: w[:1]),
    "leaf-transposed": lambda g: _with(g, "w", lambda w: w.T.copy()),
    "leaf-None": lambda g: {**g, "w": None},
    "leaf-complex": lambda g: _with(g, "w", lambda w: w * (1 + 1j)),
}


def optim_cases() -> Iterator[Case]:
    """Gradient descent and the optimizers: pytree mismatches between grads, params
    and state; dtypes; NaN; the learning rate and every hyperparameter as Python,
    NumPy, JAX and traced scalars and out of their domains; the optax forms."""

    def case(detail, fn, run, expect, **fields):
        if expect != ERROR and fn in ("momentum_update", "rmsprop_update", "adamw_update"):
            fields["slow"] = True  # computed (a program each): their errors by default
        return Case(f"optim/{fn}/{detail}", run, expect, fn, **fields)

    def run(fn, grads=None, params=None, dtype=np.float64, **kw):
        """``_step`` with ``grads``/``params`` functions of the valid ones."""
        p = _params(dtype)
        g = _grads(p)
        return _step(fn, grads(g) if grads else g, params(p) if params else p, **kw)

    for fn, hypers in _OPTIMIZERS.items():
        step = functools.partial(run, fn)
        for label, bad in _BAD_GRADS.items():
            yield case(f"grads/{label}", fn, functools.partial(step, bad), ERROR, names=("grads",))
        for label, f in (("int32", lambda w: w.astype(np.int32)), ("bool", lambda w: w > 0)):
            yield case(
                f"grads/{label}",
                fn,
                functools.partial(step, lambda g, f=f: _with(g, "w", f)),
                EITHER,
                names=("grads",),
                check=finite_check,
            )
        for label, f in (
            ("int32", lambda w: w.astype(np.int32)),
            ("complex128", lambda w: w * (1 + 1j)),
        ):
            yield case(
                f"params/{label}",
                fn,
                functools.partial(step, lambda g: g, lambda p, f=f: _with(p, "w", f)),
                ERROR,
                names=("params",),
            )
        nan = lambda t: _with(t, "w", lambda w: set_first(w, NAN))
        yield case("grads/nan", fn, functools.partial(step, nan), RESULT, check=nan_check)
        yield case("params/nan", fn, functools.partial(step, None, nan), RESULT, check=nan_check)
        yield case(
            "params/empty-tree",
            fn,
            functools.partial(step, lambda g: {}, lambda p: {}),
            EITHER,
            check=finite_check,
            valid=True,
        )
        yield case(
            "grads-float64-for-float32-params",
            fn,
            functools.partial(
                step, lambda g: jax.tree.map(lambda w: w.astype(jnp.float64), g), dtype=np.float32
            ),
            EITHER,
            check=_dtypes_kept(np.float32),
            valid=True,
        )
        if fn != "gradient_descent":

            def other_state(fn=fn):
                from dlref import optim

                p = _params()
                return _step(fn, _grads(p), p, state=getattr(optim, _INITS[fn])({"w": p["w"]}))

            yield case("state-of-other-params", fn, other_state, ERROR, names=("state",))
        # the learning rate: a scalar (NumPy, JAX or traced: the Python value's step)
        ref32 = functools.partial(step, dtype=np.float32, lr=0.5)
        for label, lr in (
            ("np.float64", np.float64(0.5)),
            ("np.float32", np.float32(0.5)),
            ("jnp.array-0d", jnp.asarray(0.5)),
        ):
            yield case(
                f"learning_rate={label}",
                fn,
                functools.partial(step, dtype=np.float32, lr=lr),
                RESULT,
                check=lambda r, ref=ref32: same_tree(ref())(r),
                valid=True,
            )
        yield case(
            "learning_rate=traced",
            fn,
            functools.partial(step, dtype=np.float32, lr=0.5, mode="jit"),
            RESULT,
            check=lambda r, ref=ref32: same_tree(ref(), exact=False)(r),
            valid=True,
        )
        yield case(
            "learning_rate=nan/jit",
            fn,
            functools.partial(step, lr=NAN, mode="jit"),
            RESULT,
            check=nan_check,
        )
        for lr in (NAN, INF, -0.1, "0.1", None, np.array([0.1])):
            yield case(
                f"learning_rate={lr!r}",
                fn,
                functools.partial(step, lr=lr),
                ERROR,
                names=("learning_rate",),
            )
        if fn != "gradient_descent":
            yield case(
                "learning_rate=schedule-giving-nan",
                fn,
                functools.partial(step, lr=lambda count: jnp.asarray(NAN)),
                ERROR,
                names=("learning_rate",),
            )
        for hyper, (kind, base) in hypers.items():
            if kind == "flag":
                yield case(
                    f"{hyper}='no'",
                    fn,
                    functools.partial(step, **{hyper: "no"}),
                    ERROR,
                    names=(hyper,),
                )
                yield case(
                    f"{hyper}=np.bool_",
                    fn,
                    functools.partial(step, **{hyper: np.bool_(base)}),
                    RESULT,
                    check=lambda r, step=step, hyper=hyper, base=base: same_tree(
                        step(**{hyper: base})
                    )(r),
                    valid=True,
                )
                continue
            bad = [NAN, INF, -0.1, "0.5", None, np.array([base])] + (
                [1.0, 1.5] if kind == "beta" else []
            )
            for value in bad:
                yield case(
                    f"{hyper}={value!r}",
                    fn,
                    functools.partial(step, **{hyper: value}),
                    ERROR,
                    names=(hyper,),
                )
            ref = functools.partial(step, dtype=np.float32, **{hyper: base})
            for label, value in (
                ("np.float64", np.float64(base)),
                ("jnp.array-0d", jnp.asarray(base)),
            ):
                # a float64 scalar must not widen float32 parameters or state
                yield case(
                    f"{hyper}={label}/float32-params",
                    fn,
                    functools.partial(step, dtype=np.float32, **{hyper: value}),
                    RESULT,
                    # the value is used in arithmetic, not made a Python float: an ulp apart
                    check=lambda r, ref=ref: same_tree(ref(), exact=False)(r),
                    valid=True,
                )

            def traced(fn=fn, hyper=hyper, base=base):
                p = _params()
                g = _grads(p)
                return jax.jit(lambda v: _step(fn, g, p, **{hyper: v}))(jnp.asarray(base))

            yield case(
                f"{hyper}=traced",
                fn,
                traced,
                RESULT,
                check=lambda r, step=step, hyper=hyper, base=base: same_tree(
                    step(**{hyper: base}), exact=False
                )(r),
                valid=True,  # module docstring: concrete values are checked
                slow=hyper != next(iter(hypers)),  # one compilation each: the first by default
            )
    # the optax forms: init/update pairs with the same checks
    for name in ("sgd", "momentum", "rmsprop", "adam", "adamw"):

        def update(bad, name=name, lr=0.1):
            from dlref import optim

            p = _params()
            tx = getattr(optim, name)(lr)
            return tx.update(bad(_grads(p)), tx.init(p), p)

        for label in ("missing-leaf", "leaf-shape"):
            yield Case(
                f"optim/{name}/update-grads-{label}",
                functools.partial(update, _BAD_GRADS[label]),
                ERROR,
                name,
                ("grads",),
            )
        for lr in (NAN, -0.1, "0.1"):
            yield Case(
                f"optim/{name}/learning_rate={lr!r}",
                functools.partial(update, lambda g: g, lr=lr),
                ERROR,
                name,
                ("learning_rate",),
            )
    yield Case(
        "optim/adamw_update/mask-structure",
        lambda: run("adamw_update", mask={"w": {"x": True}}),
        ERROR,
        "adamw_update",
        ("mask",),
    )

    def rmsprop_init(scale):
        from dlref import optim

        return optim.rmsprop_init(_params(), initial_scale=scale)

    for value in (-1.0, NAN):
        yield Case(
            f"optim/rmsprop_init/initial_scale={value}",
            functools.partial(rmsprop_init, value),
            ERROR,
            "rmsprop_init",
            ("initial_scale",),
        )


# --- dlref.convert --------------------------------------------------------------------------------


def _convert_inputs(kind: str) -> tuple[Callable[[], Any], Callable[..., Any]]:
    """(a valid source, the converter) for ``kind`` ``"<layer>_from_<lib>"``, float32."""
    from dlref import convert, layers, recurrent

    rng = np.random.default_rng(3)

    def arr(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    layer, lib = kind.split("_from_")
    params = {
        "dense": lambda: (arr(2, 3), arr(3)),
        "rnn": lambda: recurrent.RNNParams(arr(2, 3), arr(3, 3), arr(3)),
        "lstm": lambda: recurrent.LSTMParams(arr(2, 12), arr(3, 12), arr(12)),
        "gru": lambda: recurrent.GRUParams(arr(2, 9), arr(3, 9), arr(9), arr(9)),
        "batch_norm": lambda: (arr(3), arr(3), layers.BatchNormState(arr(3), np.abs(arr(3)))),
    }[layer]()
    to = getattr(convert, f"{layer}_to_{lib}")
    args = params if isinstance(params, tuple) and layer in ("dense", "batch_norm") else (params,)
    extra = {"steps": 5} if (layer, lib) == ("batch_norm", "torch") else {}

    def source():
        return jax.tree.map(np.asarray, to(*args, **extra))

    return source, getattr(convert, kind)


def _dict_paths(tree: dict, prefix=()) -> list[tuple]:
    out = []
    for k, v in tree.items():
        if isinstance(v, dict):
            out += _dict_paths(v, (*prefix, k))
        else:
            out.append((*prefix, k))
    return out


def _edit(tree: dict, path: tuple, value: Any = None, drop: bool = False) -> dict:
    tree = dict(tree)
    if len(path) > 1:
        tree[path[0]] = _edit(tree[path[0]], path[1:], value, drop)
    elif drop:
        del tree[path[0]]
    else:
        tree[path[0]] = value
    return tree


def _get(tree: dict, path: tuple) -> Any:
    for k in path:
        tree = tree[k]
    return tree


def one_dtype(result: Any) -> str | None:
    """Every floating leaf of a conversion in the source's dtype (float32)."""
    wrong = sorted({str(a.dtype) for a in array_leaves(result) if a.dtype != np.float32})
    return f"float32 source converted to {wrong}: {short(result)}" if wrong else None


_CONVERTERS = [
    f"{layer}_from_{lib}"
    for layer in ("dense", "rnn", "lstm", "gru", "batch_norm")
    for lib in ("torch", "flax")
]


def convert_cases() -> Iterator[Case]:
    """Converters from PyTorch / flax layouts (float32 sources): each key dropped
    (InputError, or an optional key's default in the source's dtype), an unknown
    key, each array with an extra axis, a wrong size, an integer or complex dtype,
    NaN; not a dict."""
    for kind in _CONVERTERS:
        names = ("state", "params", "variables")

        def convert(edit, kind=kind):
            source, f = _convert_inputs(kind)
            return f(edit(source()))

        yield Case(
            f"convert/{kind}/valid-float32",
            functools.partial(convert, lambda s: s),
            RESULT,
            kind,
            check=one_dtype,
            valid=True,
        )
        yield Case(
            f"convert/{kind}/not-a-dict",
            functools.partial(convert, lambda s: list(s.values())),
            ERROR,
            kind,
            names,
        )
        yield Case(
            f"convert/{kind}/unknown-key",
            functools.partial(
                convert,
                lambda s, kind=kind: (
                    {**s, "weight_hr_l0": np.ones(3, np.float32)}
                    if "torch" in kind
                    else {**s, "extra": {"kernel": np.ones(3, np.float32)}}
                ),
            ),
            ERROR,
            kind,
        )
        # the keys are known only when the source is made: derive them from a
        # description of the converter's output layout (computed once, lazily)
        for path in _convert_paths(kind):
            p = "/".join(path)
            yield Case(
                f"convert/{kind}/drop-{p}",
                functools.partial(convert, lambda s, path=path: _edit(s, path, drop=True)),
                EITHER,
                kind,
                check=one_dtype,
                valid=True,  # an optional key (a bias) is valid
            )
            if path[-1] == "num_batches_tracked":
                continue
            # one more row along the axis every other array follows: PyTorch's
            # (out, in) rows, flax's (in, out) columns
            axis = 0 if kind.endswith("torch") else -1
            for label, f in (
                ("rank+1", lambda a: np.stack([a, a])),
                ("size+1", lambda a, axis=axis: np.concatenate([a, np.take(a, [0], axis)], axis)),
                ("int32", lambda a: a.astype(np.int32)),
                ("complex64", lambda a: a.astype(np.complex64) * (1 + 1j)),
            ):
                yield Case(
                    f"convert/{kind}/{p}/{label}",
                    functools.partial(
                        convert,
                        lambda s, path=path, f=f: _edit(s, path, f(np.asarray(_get(s, path)))),
                    ),
                    ERROR,
                    kind,
                    () if label == "size+1" else (path[-1],),  # a mismatch: either key
                )
            yield Case(
                f"convert/{kind}/{p}/nan",
                functools.partial(
                    convert,
                    lambda s, path=path: _edit(s, path, set_first(np.asarray(_get(s, path)), NAN)),
                ),
                RESULT,
                kind,
                check=nan_check,
            )
        if kind.endswith("torch") and kind.split("_")[0] in ("rnn", "lstm", "gru"):
            yield Case(
                f"convert/{kind}/drop-both-biases",
                functools.partial(
                    convert, lambda s: {k: v for k, v in s.items() if "bias" not in k}
                ),
                RESULT,
                kind,
                check=one_dtype,
                valid=True,  # bias=False
            )


@functools.cache
def _convert_paths(kind: str) -> tuple[tuple, ...]:
    """The keys of a valid source of ``kind`` (NumPy only: nothing compiled)."""
    layer, lib = kind.split("_from_")
    torch = {
        "dense": ["weight", "bias"],
        "batch_norm": ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"],
    }
    recurrent = [f"{w}_l0" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    if lib == "torch":
        return tuple((k,) for k in torch.get(layer, recurrent))
    flax = {
        "dense": [("kernel",), ("bias",)],
        "batch_norm": [
            ("params", "scale"),
            ("params", "bias"),
            ("batch_stats", "mean"),
            ("batch_stats", "var"),
        ],
    }
    if layer in flax:
        return tuple(flax[layer])
    return ()  # recurrent flax trees: their keys are read from a real source below


def convert_flax_recurrent_cases() -> Iterator[Case]:
    """The recurrent flax trees, whose keys (one Dense per gate) are many: each
    module dropped, and each kernel with a wrong size."""
    for layer, modules in (
        ("rnn", ("i", "h")),
        ("lstm", ("ii", "if", "ig", "io", "hi", "hf", "hg", "ho")),
        ("gru", ("ir", "iz", "in", "hr", "hz", "hn")),
    ):
        kind = f"{layer}_from_flax"

        def convert(edit, kind=kind):
            source, f = _convert_inputs(kind)
            return f(edit(source()))

        for m in modules:
            yield Case(
                f"convert/{kind}/drop-{m}",
                functools.partial(convert, lambda s, m=m: {k: v for k, v in s.items() if k != m}),
                ERROR,
                kind,
                (m,),
            )

            def wider(s, m=m):  # one more output column: the gates' sizes differ
                kernel = np.asarray(s[m]["kernel"])
                return {**s, m: {**s[m], "kernel": np.concatenate([kernel, kernel[:, :1]], 1)}}

            yield Case(
                f"convert/{kind}/{m}.kernel/size+1", functools.partial(convert, wider), ERROR, kind
            )


def convert_to_cases() -> Iterator[Case]:
    from dlref import convert, layers, recurrent

    rng = np.random.default_rng(4)

    def arr(*shape, dtype=np.float32):
        return rng.standard_normal(shape).astype(dtype)

    cases = {
        "dense_to_torch/b-size": lambda: convert.dense_to_torch(arr(2, 3), arr(4)),
        "dense_to_flax/b-size": lambda: convert.dense_to_flax(arr(2, 3), arr(4)),
        "dense_to_torch/w-int32": lambda: convert.dense_to_torch(
            arr(2, 3).astype(np.int32), arr(3)
        ),
        "rnn_to_torch/w_hh-shape": lambda: convert.rnn_to_torch(
            recurrent.RNNParams(arr(2, 3), arr(4, 3), arr(3))
        ),
        "rnn_to_flax/b-size": lambda: convert.rnn_to_flax(
            recurrent.RNNParams(arr(2, 3), arr(3, 3), arr(5))
        ),
        "lstm_to_torch/gates": lambda: convert.lstm_to_torch(
            recurrent.LSTMParams(arr(2, 9), arr(3, 9), arr(9))
        ),
        "lstm_to_flax/gates": lambda: convert.lstm_to_flax(
            recurrent.LSTMParams(arr(2, 9), arr(3, 9), arr(9))
        ),
        "gru_to_torch/b_hh-size": lambda: convert.gru_to_torch(
            recurrent.GRUParams(arr(2, 9), arr(3, 9), arr(9), arr(6))
        ),
        "gru_to_flax/gates": lambda: convert.gru_to_flax(
            recurrent.GRUParams(arr(2, 8), arr(3, 8), arr(8), arr(8))
        ),
        "batch_norm_to_torch/shift-size": lambda: convert.batch_norm_to_torch(
            arr(3), arr(4), layers.BatchNormState(arr(3), arr(3)), steps=1
        ),
        "batch_norm_to_flax/var-size": lambda: convert.batch_norm_to_flax(
            arr(3), arr(3), layers.BatchNormState(arr(3), arr(2))
        ),
    }
    for label, run in cases.items():
        fn = label.split("/")[0]
        yield Case(f"convert/{label}", run, ERROR, fn)

    def steps(value):
        return convert.batch_norm_to_torch(*layers.init_batch_norm(3), steps=value)

    for value in (-1, 2.5, True, "3", None):
        yield Case(
            f"convert/batch_norm_to_torch/steps={value!r}",
            functools.partial(steps, value),
            ERROR,
            "batch_norm_to_torch",
            ("steps",),
        )
    for label, value in (("np.int64", np.int64(3)), ("jnp.array-0d", jnp.asarray(3))):
        yield Case(
            f"convert/batch_norm_to_torch/steps={label}",
            functools.partial(steps, value),
            RESULT,
            "batch_norm_to_torch",
            check=lambda r: (
                None if int(r["num_batches_tracked"]) == 3 else f"steps {r['num_batches_tracked']}"
            ),
            valid=True,
        )


# --- dlref.gradcheck -----------------------------------------------------------------------------


def gradcheck_cases() -> Iterator[Case]:
    from dlref import gradcheck

    x = lambda: put(np.linspace(-1.0, 1.0, 4))

    def f(v):
        return jnp.sum(jnp.sin(v))

    def ng(arg=None, **kw):
        return gradcheck.numerical_grad(f, x() if arg is None else arg(), **kw)

    for label, arg in {
        "int32": lambda: put(np.arange(4, dtype=np.int32)),
        "bool": lambda: put(np.ones(4, bool)),
        "complex128": lambda: put(np.ones(4) * (1 + 1j)),
    }.items():
        yield Case(
            f"gradcheck/numerical_grad/x-{label}",
            functools.partial(ng, arg),
            ERROR,
            "numerical_grad",
        )
    yield Case(
        "gradcheck/numerical_grad/x-nan",
        functools.partial(ng, lambda: put(set_first(np.linspace(-1, 1, 4), NAN))),
        RESULT,
        "numerical_grad",
        check=nan_check,
        slow=True,  # compiles a lax.map over the entries
    )
    yield Case(
        "gradcheck/numerical_grad/argnums=3",
        functools.partial(ng, argnums=3),
        ERROR,
        "numerical_grad",
        ("argnums",),
    )
    for value in (0.0, NAN):  # (a negative step is a valid central difference)
        yield Case(
            f"gradcheck/numerical_grad/step={value}",
            functools.partial(ng, step=value),
            ERROR,
            "numerical_grad",
            ("step",),
            slow=True,  # accepted today: compiles a lax.map over the entries
        )
    yield Case(
        "gradcheck/numerical_grad/vector-valued-f",
        lambda: gradcheck.numerical_grad(jnp.sin, x()),
        ERROR,
        "numerical_grad",
    )
    for value in (-1.0, NAN):
        yield Case(
            f"gradcheck/check_grad/rtol={value}",
            lambda value=value: gradcheck.check_grad(f, x(), rtol=value),
            ERROR,
            "check_grad",
            ("rtol",),
        )
    pairs = {
        "structure": (lambda: {"a": x()}, lambda: [x()], ERROR, None),
        "shape": (lambda: x(), lambda: x()[:3], ERROR, None),
        # the imaginary part of a complex leaf must not be dropped
        "complex-vs-real": (
            lambda: put(np.linspace(-1, 1, 4) * (1 + 1j)),
            x,
            EITHER,
            lambda r: None if not r.within(0.1) else f"complex vs its real part within 0.1: {r}",
        ),
        "nan-vs-finite": (
            lambda: set_first(np.linspace(-1, 1, 4), NAN),
            lambda: x(),
            RESULT,
            lambda r: None if not r.within(1e300) else f"{r}",
        ),
        "inf-vs-finite": (
            lambda: set_first(np.linspace(-1, 1, 4), INF),
            lambda: x(),
            RESULT,
            lambda r: None if not r.within(1e300) else f"{r}",
        ),
    }
    for label, (a, b, expect, check) in pairs.items():
        yield Case(
            f"gradcheck/compare/{label}",
            lambda a=a, b=b: gradcheck.compare(a(), b()),
            expect,
            "compare",
            check=check,
        )
    yield Case(
        "gradcheck/random_like/int-leaf",
        lambda: gradcheck.random_like(jax.random.key(0), {"a": put(np.arange(3, dtype=np.int32))}),
        EITHER,
        "random_like",
        check=finite_check,
    )
    yield Case(
        "gradcheck/check_vjp/key=None",
        lambda: gradcheck.check_vjp(jnp.sin, jnp.sin, x(), key=None),
        ERROR,
        "check_vjp",
        ("key",),
    )


# --- initializers -------------------------------------------------------------------------------


def init_cases() -> Iterator[Case]:
    """The initializers' sizes (negative, fractional, strings, None; NumPy and JAX
    integers; zero), dtypes (integer, complex) and keys."""
    from dlref import layers, networks, recurrent

    key = jax.random.key(0)
    inits = {
        "init_dense": (
            lambda d_in=3, d_out=2, **kw: layers.init_dense(key, d_in, d_out, **kw),
            ("d_in", "d_out"),
        ),
        "init_batch_norm": (
            lambda features=3, **kw: layers.init_batch_norm(features, **kw),
            ("features",),
        ),
        "init_rnn": (
            lambda d_in=3, hidden=2, **kw: recurrent.init_rnn(key, d_in, hidden, **kw),
            ("d_in", "hidden"),
        ),
        "init_lstm": (
            lambda d_in=3, hidden=2, **kw: recurrent.init_lstm(key, d_in, hidden, **kw),
            ("d_in", "hidden"),
        ),
        "init_gru": (
            lambda d_in=3, hidden=2, **kw: recurrent.init_gru(key, d_in, hidden, **kw),
            ("d_in", "hidden"),
        ),
        "zeros_state": (
            lambda batch=3, hidden=2, **kw: recurrent.zeros_state(batch, hidden, **kw),
            ("batch", "hidden"),
        ),
    }
    for fn, (init, sizes) in inits.items():
        for size in sizes:
            for value in (-1, 2.5, None):
                yield Case(
                    f"init/{fn}/{size}={value!r}",
                    functools.partial(init, **{size: value}),
                    ERROR,
                    fn,
                    (size,),
                )
            for label, value in (("np.int64", np.int64(2)), ("jnp.array-0d", jnp.asarray(2))):
                yield Case(
                    f"init/{fn}/{size}={label}",
                    functools.partial(init, **{size: value}),
                    RESULT,
                    fn,
                    check=lambda r, init=init, size=size: same_tree(init(**{size: 2}))(r),
                    valid=True,
                    slow=True,  # new shapes: compiles the random draws
                )
            yield Case(
                f"init/{fn}/{size}=0",
                functools.partial(init, **{size: 0}),
                EITHER,  # empty parameters, or InputError
                fn,
                (size,),
                check=finite_check,
                slow=size != "hidden",
            )
        for label, dtype in (("int32", jnp.int32), ("complex64", jnp.complex64)):
            yield Case(
                f"init/{fn}/dtype={label}",
                functools.partial(init, dtype=dtype),
                ERROR,
                fn,
                ("dtype",),
                slow=label == "complex64",  # drawn (accepted today): compiles
            )
    for value in (NAN, "1"):
        yield Case(
            f"init/init_lstm/forget_bias={value!r}",
            lambda value=value: recurrent.init_lstm(key, 3, 2, forget_bias=value),
            ERROR,
            "init_lstm",
            ("forget_bias",),
            slow=value != "1",  # NaN is accepted today: the draws compile
        )
    for label, sizes in {
        "empty": (),
        "one-size": (3,),
        "negative": (3, -1),
        "fractional": (3, 2.5),
    }.items():
        yield Case(
            f"init/init_mlp/sizes={label}",
            lambda sizes=sizes: networks.init_mlp(key, sizes),
            ERROR,
            "init_mlp",
            ("sizes",),
        )
    yield Case(
        "init/init_dense/key=0", lambda: layers.init_dense(0, 3, 2), ERROR, "init_dense", ("key",)
    )
    yield Case(
        "init/init_dense/key=PRNGKey",
        lambda: layers.init_dense(jax.random.PRNGKey(0), 3, 2),
        RESULT,
        "init_dense",
        check=finite_check,
        valid=True,
    )


# --- dlref.networks beyond the registry: the activation and the params list -----------------------


def network_cases() -> Iterator[Case]:
    def mlp(edit):
        args = example("mlp")
        params, x = args
        return OPS["mlp"].fn(edit(params), x)

    cases = {
        "params=[]": (lambda p: [], ERROR),
        "params-layer-of-three": (lambda p: [(*p[0], p[0][1]), *p[1:]], ERROR),
        "params-layer-as-list": (lambda p: [list(layer) for layer in p], EITHER),
        "params-dict": (lambda p: {"layer0": p[0]}, ERROR),
    }
    for label, (edit, expect) in cases.items():
        yield Case(
            f"networks/mlp/{label}",
            functools.partial(mlp, edit),
            expect,
            "mlp",
            ("params",),
            check=finite_check,
        )
