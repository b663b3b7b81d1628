"""Gradient descent over any pytree, as the cheat sheet writes it (``W -= lr * dW``),
and its usual relatives: momentum (heavy ball and Nesterov), RMSProp, Adam and AdamW.

Each optimizer comes twice, with one rule behind both:

- a pure pair ``<name>_init(params) -> state`` and
  ``<name>_update(grads, state, params, *, learning_rate, ...) -> (params, state)``
  that returns the parameters after the step, as :func:`gradient_descent` does
  (``grads``: a pytree of the structure and shapes of ``params``, a pytree of
  floating arrays; each leaf keeps its dtype);
- ``<name>(learning_rate, ...)``, an optax ``GradientTransformation`` whose ``update``
  returns the step, ``-learning_rate * direction``, for ``optax.apply_updates``.

Both equal optax's counterpart (``optax.sgd(momentum=, nesterov=)``, ``optax.rmsprop``,
``optax.adam``, ``optax.adamw``, given the same arguments) to 1e-6 in float32 over
100 steps of an MLP on scikit-learn's digits. A state is a NamedTuple whose ``step``
is the number of steps taken. Hyperparameters are Python floats (or 0-d arrays of the
parameters' dtype); a learning rate may also be a schedule, as in optax: a callable
from ``step`` (0 on the first step) to the rate. Concrete values are checked: the
learning rate finite and >= 0, the betas in [0, 1), ``eps``, ``eps_root``,
``initial_scale`` and ``weight_decay`` finite and >= 0.

Examples:
  >>> import jax.numpy as jnp, optax
  >>> from dlref import optim
  >>> params, grads = {"w": jnp.array([1.0, -2.0])}, {"w": jnp.array([0.5, 0.5])}
  >>> ours, reference = optim.adam(0.1, b1=0.5, b2=0.75), optax.adam(0.1, b1=0.5, b2=0.75)
  >>> ours.update(grads, ours.init(params), params)[0]  # the first step: -lr * sign(g)
  {'w': Array([-0.1, -0.1], dtype=float32)}
  >>> reference.update(grads, reference.init(params), params)[0]
  {'w': Array([-0.1, -0.1], dtype=float32)}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dlref import _checks
from dlref._checks import InputError

__all__ = [
    "gradient_descent",
    "sgd",
    "SGDState",
    "momentum_init",
    "momentum_update",
    "momentum",
    "MomentumState",
    "rmsprop_init",
    "rmsprop_update",
    "rmsprop",
    "RMSPropState",
    "adam_init",
    "adam_update",
    "adam",
    "AdamState",
    "adamw_update",
    "adamw",
]

PyTree = Any
LearningRate = float | jax.Array | Callable[[jax.Array], Any]


def gradient_descent(params: PyTree, grads: PyTree, learning_rate: float | jax.Array) -> PyTree:
    """One step of vanilla gradient descent: ``w - learning_rate * dw`` for every leaf.

    Args:
      params: a pytree of floating arrays.
      grads: its gradient, a pytree of the same structure and shapes.
      learning_rate: a scalar (a Python number, or a 0-d array for a schedule);
        NaN, infinite or negative raises when concrete.

    Returns:
      The updated pytree, each leaf in its own dtype. Equal to one step of
      ``optax.sgd(learning_rate)`` (and of :func:`sgd`).

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import optim
      >>> params, grads = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([0.5, -1.0])}
      >>> optim.gradient_descent(params, grads, 0.5)
      {'w': Array([0.75, 2.5 ], dtype=float32)}
    """
    grads = _check_trees("gradient_descent", grads, params)
    learning_rate = _check_learning_rate("gradient_descent", learning_rate)
    return _descend(params, grads, learning_rate)


def _descend(params: PyTree, directions: PyTree, learning_rate) -> PyTree:
    """``w - learning_rate * d`` per leaf, in the leaf's dtype."""
    return jax.tree.map(
        lambda w, d: w - jnp.asarray(learning_rate, w.dtype) * d.astype(w.dtype),
        params,
        directions,
    )


def _check_trees(fn: str, grads: PyTree, params: PyTree, what: str = "grads") -> PyTree:
    """``grads`` (or a state's tree, ``what``) has the structure and shapes of
    ``params``, whose leaves are real floating; returned cast to the leaves' dtypes
    (a float64 or integer gradient never widens float32 parameters or their state)."""
    p_def, g_def = jax.tree.structure(params), jax.tree.structure(grads)
    if p_def != g_def:  # type: ignore[operator]  # jaxlib's PyTreeDef has no stub
        raise InputError(
            f"{fn}: `{what}` must have the structure of `params`; got {g_def} vs {p_def}"
        )
    for w, dw in zip(jax.tree.leaves(params), jax.tree.leaves(grads), strict=True):
        if not jnp.issubdtype(jnp.result_type(w), jnp.floating):
            raise InputError(
                f"{fn}: every `params` leaf must be floating (an integer weight "
                f"would round the step away); got dtype {jnp.result_type(w)}"
            )
        if jnp.issubdtype(jnp.result_type(dw), jnp.complexfloating):
            raise InputError(
                f"{fn}: every `{what}` leaf must be real (an imaginary part would be "
                f"dropped); got dtype {jnp.result_type(dw)}"
            )
        if jnp.shape(w) != jnp.shape(dw):
            raise InputError(
                f"{fn}: each `{what}` leaf must have its `params` leaf's shape; "
                f"got {jnp.shape(dw)} for {jnp.shape(w)}"
            )
    return jax.tree.map(lambda dw, w: jnp.asarray(dw).astype(jnp.result_type(w)), grads, params)


def _check_state(fn: str, state: Any, params: PyTree) -> Any:
    """Each per-leaf tree of ``state`` (its fields but ``step``) matches ``params``."""
    trees = {
        k: _check_trees(fn, v, params, f"state.{k}")
        for k, v in state._asdict().items()
        if k != "step"
    }
    return state._replace(**trees)


def _real_scalar(fn: str, name: str, value) -> Any:
    """A real scalar: a Python number, or a 0-d real array (a concrete one becomes its
    Python float, weakly typed, so a NumPy float64 never widens float32 parameters)."""
    ok = isinstance(value, (int, float, np.integer, np.floating, np.ndarray, jax.Array))
    if not ok or isinstance(value, (bool, np.bool_)):
        raise InputError(
            f"{fn}: `{name}` must be a real number (a Python number or a 0-d array); got {value!r}"
        )
    if jnp.ndim(value) != 0:
        raise InputError(f"{fn}: `{name}` must be a scalar; got shape {jnp.shape(value)}")
    dtype = jnp.result_type(value)
    if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
        raise InputError(f"{fn}: `{name}` must be a real number; got dtype {dtype}")
    return float(np.asarray(value)) if _checks.is_concrete(value) else value


def _check_learning_rate(fn: str, learning_rate):
    """A scalar (a shaped one would change a leaf's shape); finite and >= 0 when
    concrete. Returned as :func:`_real_scalar` leaves it."""
    learning_rate = _real_scalar(fn, "learning_rate", learning_rate)
    if _checks.is_concrete(learning_rate):
        if not np.isfinite(learning_rate):
            raise InputError(f"{fn}: `learning_rate` must be finite; got {learning_rate}")
        if learning_rate < 0:
            raise InputError(
                f"{fn}: `learning_rate` must be >= 0 (a negative one climbs the loss); "
                f"got {learning_rate}"
            )
    return learning_rate


def _check(fn: str, learning_rate, betas=None, nonnegative=None, flags=None) -> list[Any]:
    """A learning rate or a schedule (``None``: none to check); betas in [0, 1); other
    constants finite and >= 0; flags True or False. Returns the betas then the other
    constants, each as :func:`_real_scalar` leaves it."""
    betas, nonnegative = betas or {}, nonnegative or {}
    if learning_rate is not None and not callable(learning_rate):
        _check_learning_rate(fn, learning_rate)
    for name, flag in (flags or {}).items():
        if not isinstance(flag, (bool, np.bool_)):
            raise InputError(f"{fn}: `{name}` must be True or False; got {flag!r}")
    values = []
    for name, value in {**betas, **nonnegative}.items():
        value = _real_scalar(fn, name, value)
        values.append(value)
        if not _checks.is_concrete(value):
            continue
        if name in betas and not 0 <= value < 1:  # NaN fails too
            raise InputError(f"{fn}: `{name}` must lie in [0, 1); got {value}")
        if name in nonnegative and not 0 <= value < np.inf:
            raise InputError(f"{fn}: `{name}` must be finite and >= 0; got {value}")
    return values


def _rate(fn: str, learning_rate: LearningRate, step: jax.Array):
    """This step's learning rate: a schedule is called with the steps taken."""
    rate = learning_rate(step) if callable(learning_rate) else learning_rate
    return _check_learning_rate(fn, rate)


def _increment(step: jax.Array) -> jax.Array:
    """``step + 1``, saturating at int32's maximum instead of wrapping (as optax)."""
    return jnp.minimum(step, jnp.iinfo(jnp.int32).max - 1) + 1


# A rule maps (grads, state, params) to (directions, new state): the step is -lr * direction.
_Rule = Callable[[PyTree, Any, PyTree], tuple[PyTree, Any]]


def _update(fn: str, rule: _Rule, grads, state, params, learning_rate) -> tuple[PyTree, Any]:
    """The pure form: the parameters after the step."""
    grads = _check_trees(fn, grads, params)
    directions, new_state = rule(grads, _check_state(fn, state, params), params)
    return _descend(params, directions, _rate(fn, learning_rate, state.step)), new_state


def _transformation(
    fn: str, init: Callable, rule: _Rule, learning_rate, needs_params: bool = False
) -> optax.GradientTransformation:
    """The optax form: ``update`` returns the step."""

    def update(grads, state, params=None):
        if params is not None:
            grads, state = _check_trees(fn, grads, params), _check_state(fn, state, params)
        elif needs_params:
            raise InputError(f"{fn}: `update` needs `params` (for the weight decay); got None")
        directions, new_state = rule(grads, state, params)
        rate = _rate(fn, learning_rate, state.step)
        return jax.tree.map(lambda d: -jnp.asarray(rate, d.dtype) * d, directions), new_state

    return optax.GradientTransformation(init, update)


class SGDState(NamedTuple):
    """:func:`sgd` keeps no state.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import optim
      >>> optim.sgd(0.1).init({"w": jnp.zeros(2)})
      SGDState()
    """


def sgd(learning_rate: float) -> optax.GradientTransformation:
    """:func:`gradient_descent` as an optax ``GradientTransformation``:
    ``updates = -learning_rate * grads``, to use with ``optax.apply_updates``.

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from dlref import optim
      >>> params, grads = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([0.5, -1.0])}
      >>> tx = optim.sgd(0.5)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> optax.apply_updates(params, updates)  # as gradient_descent(params, grads, 0.5)
      {'w': Array([0.75, 2.5 ], dtype=float32)}
    """
    learning_rate = _check_learning_rate("sgd", learning_rate)

    def init(params):
        del params
        return SGDState()

    def update(grads, state, params=None):
        if params is not None:
            grads = _check_trees("sgd", grads, params)
        return jax.tree.map(lambda g: -jnp.asarray(learning_rate, g.dtype) * g, grads), state

    return optax.GradientTransformation(init, update)


class MomentumState(NamedTuple):
    """``step``: steps taken (int32); ``velocity``: ``v`` per leaf."""

    step: jax.Array
    velocity: PyTree


def momentum_init(params: PyTree) -> MomentumState:
    """The state before the first step: ``v = 0``."""
    return MomentumState(jnp.zeros([], jnp.int32), jax.tree.map(jnp.zeros_like, params))


def momentum_update(
    grads: PyTree,
    state: MomentumState,
    params: PyTree,
    *,
    learning_rate: LearningRate,
    beta: float = 0.9,
    nesterov: bool = False,
) -> tuple[PyTree, MomentumState]:
    """One step of gradient descent with momentum, per leaf:

    - heavy ball (Polyak): ``v = beta * v + g``, then ``w = w - lr * v``;
    - Nesterov: the same ``v``, then ``w = w - lr * (g + beta * v)``: Sutskever et
      al.'s Nesterov momentum rewritten (Bengio et al.) so that ``g`` is taken at ``w``
      rather than at the look-ahead point.

    Conventions: as ``optax.sgd(lr, momentum=beta, nesterov=...)``, and PyTorch's
    ``SGD(momentum=beta, nesterov=...)`` with its default ``dampening=0`` (PyTorch
    scales ``g`` by ``1 - dampening`` from the second step on; neither that nor its
    coupled ``weight_decay`` is here). ``v`` sums gradients, not steps: the other
    common form, ``v = beta * v - lr * g; w = w + v``, is the same at a constant rate,
    but under a schedule this one rescales all past gradients by the current rate.

    Args:
      learning_rate: ``lr``, a scalar >= 0 or a schedule of ``state.step``.
      beta: the momentum coefficient, in [0, 1); 0 is :func:`gradient_descent`.
      nesterov: Nesterov's momentum instead of the heavy ball.

    Returns:
      ``(params, state)`` after the step.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import optim
      >>> w, g = jnp.array([1.0]), jnp.array([1.0])
      >>> state = optim.momentum_init(w)
      >>> w, state = optim.momentum_update(g, state, w, learning_rate=0.1, beta=0.5)
      >>> w, state = optim.momentum_update(g, state, w, learning_rate=0.1, beta=0.5)
      >>> w, state.velocity  # v = 1, then 1.5; w = 1 - 0.1 - 0.15
      (Array([0.75], dtype=float32), Array([1.5], dtype=float32))

    References:
      Polyak, Some methods of speeding up the convergence of iteration methods, 1964.
      Sutskever, Martens, Dahl and Hinton, On the importance of initialization and
      momentum in deep learning, ICML 2013.
      Bengio, Boulanger-Lewandowski and Pascanu, Advances in optimizing recurrent
      networks, ICASSP 2013.
    """
    (beta,) = _check("momentum_update", learning_rate, {"beta": beta}, flags={"nesterov": nesterov})
    rule = _momentum_rule(beta, nesterov)
    return _update("momentum_update", rule, grads, state, params, learning_rate)


def _momentum_rule(beta, nesterov: bool) -> _Rule:
    def rule(grads, state, params):
        v = jax.tree.map(lambda g, v: g + beta * v, grads, state.velocity)
        directions = jax.tree.map(lambda g, v: g + beta * v, grads, v) if nesterov else v
        return directions, MomentumState(_increment(state.step), v)

    return rule


def momentum(
    learning_rate: LearningRate, *, beta: float = 0.9, nesterov: bool = False
) -> optax.GradientTransformation:
    """:func:`momentum_update` as an optax ``GradientTransformation``, equal to
    ``optax.sgd(learning_rate, momentum=beta, nesterov=nesterov)``."""
    (beta,) = _check("momentum", learning_rate, {"beta": beta}, flags={"nesterov": nesterov})
    return _transformation("momentum", momentum_init, _momentum_rule(beta, nesterov), learning_rate)


class RMSPropState(NamedTuple):
    """``step``: steps taken (int32); ``nu``: the mean of squared gradients per leaf."""

    step: jax.Array
    nu: PyTree


def rmsprop_init(params: PyTree, *, initial_scale: float = 0.0) -> RMSPropState:
    """The state before the first step: ``nu = initial_scale`` (0 as in optax and
    PyTorch; TensorFlow 1 used 1)."""
    (initial_scale,) = _check("rmsprop_init", None, nonnegative={"initial_scale": initial_scale})
    nu = jax.tree.map(lambda w: jnp.full_like(w, initial_scale), params)
    return RMSPropState(jnp.zeros([], jnp.int32), nu)


def rmsprop_update(
    grads: PyTree,
    state: RMSPropState,
    params: PyTree,
    *,
    learning_rate: LearningRate,
    decay: float = 0.9,
    eps: float = 1e-8,
    eps_in_sqrt: bool = True,
) -> tuple[PyTree, RMSPropState]:
    """One step of RMSProp, per leaf: ``nu = decay * nu + (1 - decay) * g**2``, then
    ``w = w - lr * g / sqrt(nu + eps)`` (``eps_in_sqrt=True``, optax's default) or
    ``w = w - lr * g / (sqrt(nu) + eps)`` (``eps_in_sqrt=False``, PyTorch's).

    Conventions: as ``optax.rmsprop`` with ``centered=False``, ``momentum=None`` and
    ``bias_correction=False``, its defaults and the only forms here. PyTorch's
    ``RMSprop(alpha=decay, eps=eps)`` puts ``eps`` outside the root, as
    ``eps_in_sqrt=False``, and defaults to ``alpha=0.99`` where optax has ``decay=0.9``.

    Args:
      learning_rate: ``lr``, a scalar >= 0 or a schedule of ``state.step``.
      decay: the share of ``nu`` each step keeps, in [0, 1).
      eps: >= 0, added to ``nu``, or to its square root.
      eps_in_sqrt: where ``eps`` goes.

    Returns:
      ``(params, state)`` after the step.

    Numerics: ``eps > 0`` keeps the step finite where every gradient so far was 0
    (with ``eps = 0`` that is ``0 / 0 = NaN``).

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import optim
      >>> w, g = jnp.array([1.0, 1.0]), jnp.array([1.0, 7.0])
      >>> state = optim.rmsprop_init(w, initial_scale=1.0)
      >>> w, state = optim.rmsprop_update(g, state, w, learning_rate=0.1, decay=0.5, eps=0.0)
      >>> state.nu, w  # nu = 0.5 * 1 + 0.5 * g**2; w = 1 - 0.1 * g / sqrt(nu)
      (Array([ 1., 25.], dtype=float32), Array([0.9 , 0.86], dtype=float32))

    References:
      Tieleman and Hinton, Neural Networks for Machine Learning, lecture 6.5, 2012.
    """
    decay, eps = _check(
        "rmsprop_update",
        learning_rate,
        {"decay": decay},
        {"eps": eps},
        {"eps_in_sqrt": eps_in_sqrt},
    )
    rule = _rmsprop_rule(decay, eps, eps_in_sqrt)
    return _update("rmsprop_update", rule, grads, state, params, learning_rate)


def _rmsprop_rule(decay, eps, eps_in_sqrt: bool) -> _Rule:
    def rule(grads, state, params):
        nu = jax.tree.map(lambda g, n: (1 - decay) * g**2 + decay * n, grads, state.nu)
        # Written as optax writes it (a scale, then times g), so both round alike.
        if eps_in_sqrt:
            directions = jax.tree.map(lambda g, n: jax.lax.rsqrt(n + eps) * g, grads, nu)
        else:
            directions = jax.tree.map(lambda g, n: 1 / (jnp.sqrt(n) + eps) * g, grads, nu)
        return directions, RMSPropState(_increment(state.step), nu)

    return rule


def rmsprop(
    learning_rate: LearningRate,
    *,
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
) -> optax.GradientTransformation:
    """:func:`rmsprop_init` and :func:`rmsprop_update` as an optax
    ``GradientTransformation``, equal to ``optax.rmsprop`` with the same arguments."""
    decay, eps, initial_scale = _check(
        "rmsprop",
        learning_rate,
        {"decay": decay},
        {"eps": eps, "initial_scale": initial_scale},
        {"eps_in_sqrt": eps_in_sqrt},
    )
    init = lambda params: rmsprop_init(params, initial_scale=initial_scale)
    return _transformation("rmsprop", init, _rmsprop_rule(decay, eps, eps_in_sqrt), learning_rate)


class AdamState(NamedTuple):
    """``step``: steps taken (int32); ``mu``, ``nu``: the running means of the
    gradient and of its square, per leaf. Adam's and AdamW's."""

    step: jax.Array
    mu: PyTree
    nu: PyTree


def adam_init(params: PyTree) -> AdamState:
    """The state of Adam and AdamW before the first step: ``mu = nu = 0``."""
    zeros = jax.tree.map(jnp.zeros_like, params)
    return AdamState(jnp.zeros([], jnp.int32), zeros, zeros)


def adam_update(
    grads: PyTree,
    state: AdamState,
    params: PyTree,
    *,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
) -> tuple[PyTree, AdamState]:
    """One step of Adam, per leaf, at step ``t = state.step + 1``:
    ``mu = b1 * mu + (1 - b1) * g``, ``nu = b2 * nu + (1 - b2) * g**2``; the bias
    corrections ``mu_hat = mu / (1 - b1**t)``, ``nu_hat = nu / (1 - b2**t)``; then
    ``w = w - lr * mu_hat / (sqrt(nu_hat + eps_root) + eps)``.

    Conventions: as ``optax.adam`` (without its ``mu_dtype`` and ``nesterov``).
    PyTorch's ``Adam(betas=(b1, b2), eps=eps)`` takes the same step (``eps`` outside
    the root, added to ``sqrt(nu_hat)``); it has no ``eps_root``, and its
    ``weight_decay`` adds ``weight_decay * w`` to ``g`` (L2 in the loss, which Adam
    then rescales), unlike :func:`adamw_update`'s decoupled decay.

    Args:
      learning_rate: ``lr``, a scalar >= 0 or a schedule of ``state.step``.
      b1, b2: the decays of ``mu`` and ``nu``, in [0, 1).
      eps: >= 0, added to ``sqrt(nu_hat)``.
      eps_root: >= 0, added to ``nu_hat`` under the root (optax's; it keeps the
        derivative finite when differentiating through the optimizer).

    Returns:
      ``(params, state)`` after the step.

    Numerics: ``1 - b**t`` is computed in the default float type and then cast to
    the moment's dtype, as in optax: in bfloat16, ``b2 = 0.999`` itself rounds to 1
    and the correction would divide by 0. ``eps > 0`` keeps the step finite where every
    gradient so far was 0 (``eps = eps_root = 0`` gives ``0 / 0 = NaN`` there).

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import optim
      >>> w, g = jnp.array([1.0]), jnp.array([-3.0])
      >>> state = optim.adam_init(w)
      >>> w, state = optim.adam_update(g, state, w, learning_rate=0.1, b1=0.5, b2=0.75)
      >>> w  # mu_hat = g and nu_hat = g**2 at t = 1: the step is lr * sign(-g)
      Array([1.1], dtype=float32)

    References:
      Kingma and Ba, Adam: A Method for Stochastic Optimization, ICLR 2015.
    """
    b1, b2, eps, eps_root = _check(
        "adam_update", learning_rate, {"b1": b1, "b2": b2}, {"eps": eps, "eps_root": eps_root}
    )
    rule = _adam_rule("adam_update", b1, b2, eps, eps_root)
    return _update("adam_update", rule, grads, state, params, learning_rate)


def _adam_rule(fn: str, b1, b2, eps, eps_root, weight_decay=0.0, mask=None) -> _Rule:
    def rule(grads, state, params):
        t = _increment(state.step)
        mu = jax.tree.map(lambda g, m: (1 - b1) * g + b1 * m, grads, state.mu)
        nu = jax.tree.map(lambda g, n: (1 - b2) * g**2 + b2 * n, grads, state.nu)
        # 1 - b**t in the default float type (as optax), then cast to each moment's dtype.
        t_float = t.astype(jnp.result_type(float))
        c1, c2 = 1 - b1**t_float, 1 - b2**t_float

        def direction(m, n):
            return (m / c1.astype(m.dtype)) / (jnp.sqrt(n / c2.astype(n.dtype) + eps_root) + eps)

        directions = jax.tree.map(direction, mu, nu)
        if params is not None and not (
            isinstance(weight_decay, (int, float)) and weight_decay == 0
        ):
            keep = _decay_mask(fn, mask, params)
            directions = jax.tree.map(
                lambda d, w, k: d + weight_decay * w if k else d, directions, params, keep
            )
        return directions, AdamState(t, mu, nu)

    return rule


def _decay_mask(fn: str, mask, params: PyTree) -> PyTree:
    """One Python bool per leaf of ``params``, from a prefix tree or a callable."""
    if mask is None:
        return jax.tree.map(lambda _: True, params)
    prefix = mask(params) if callable(mask) else mask
    try:
        return jax.tree.map(lambda k, sub: jax.tree.map(lambda _: bool(k), sub), prefix, params)
    except ValueError as error:
        raise InputError(
            f"{fn}: `mask` must be a tree of bools with the structure of `params` or a "
            f"prefix of it; got {jax.tree.structure(prefix)} for {jax.tree.structure(params)}"
        ) from error


def adam(
    learning_rate: LearningRate,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
) -> optax.GradientTransformation:
    """:func:`adam_update` as an optax ``GradientTransformation``, equal to
    ``optax.adam`` with the same arguments."""
    b1, b2, eps, eps_root = _check(
        "adam", learning_rate, {"b1": b1, "b2": b2}, {"eps": eps, "eps_root": eps_root}
    )
    return _transformation(
        "adam", adam_init, _adam_rule("adam", b1, b2, eps, eps_root), learning_rate
    )


def adamw_update(
    grads: PyTree,
    state: AdamState,
    params: PyTree,
    *,
    learning_rate: LearningRate,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: float = 1e-4,
    mask: PyTree | Callable[[PyTree], PyTree] | None = None,
) -> tuple[PyTree, AdamState]:
    """One step of AdamW, Adam with decoupled weight decay: with ``mu_hat`` and
    ``nu_hat`` from :func:`adam_update` (and the state from :func:`adam_init`),
    ``w = w - lr * (mu_hat / (sqrt(nu_hat + eps_root) + eps) + weight_decay * w)``.
    The decay bypasses ``mu`` and ``nu``, so Adam does not rescale it per weight as it
    would an L2 term in the loss.

    Conventions: as ``optax.adamw``. The decay is multiplied by the learning rate in
    optax and PyTorch alike: PyTorch's ``AdamW`` sets ``w = w * (1 - lr * weight_decay)``
    and then takes the Adam step, the same step in two parts (the Adam part does not
    depend on ``w``). Loshchilov and Hutter's paper multiplies the decay by the
    schedule's factor only, not by the base rate. ``weight_decay`` defaults to 1e-4
    here and in optax, 1e-2 in PyTorch; it is a number, not a schedule.

    Args:
      learning_rate, b1, b2, eps, eps_root: as :func:`adam_update`.
      weight_decay: >= 0.
      mask: which leaves decay (commonly not biases or norm scales): a tree of bools
        with the structure of ``params`` or a prefix of it, or a callable that returns
        one given ``params``; ``None`` decays every leaf. As optax's ``mask``.

    Returns:
      ``(params, state)`` after the step.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import optim
      >>> params = {"w": jnp.array([2.0]), "b": jnp.array([2.0])}
      >>> grads = {"w": jnp.zeros(1), "b": jnp.zeros(1)}  # the Adam part is 0
      >>> params, state = optim.adamw_update(grads, optim.adam_init(params), params,
      ...     learning_rate=0.1, weight_decay=0.5, mask={"w": True, "b": False})
      >>> params  # w = w * (1 - lr * weight_decay); b is masked out
      {'b': Array([2.], dtype=float32), 'w': Array([1.9], dtype=float32)}

    References:
      Loshchilov and Hutter, Decoupled Weight Decay Regularization, ICLR 2019.
    """
    fn = "adamw_update"
    b1, b2, eps, eps_root, weight_decay = _check(
        fn, learning_rate, {"b1": b1, "b2": b2}, _adamw_nonnegative(eps, eps_root, weight_decay)
    )
    rule = _adam_rule(fn, b1, b2, eps, eps_root, weight_decay, mask)
    return _update(fn, rule, grads, state, params, learning_rate)


def _adamw_nonnegative(eps, eps_root, weight_decay) -> dict[str, Any]:
    return {"eps": eps, "eps_root": eps_root, "weight_decay": weight_decay}


def adamw(
    learning_rate: LearningRate,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: float = 1e-4,
    mask: PyTree | Callable[[PyTree], PyTree] | None = None,
) -> optax.GradientTransformation:
    """:func:`adamw_update` as an optax ``GradientTransformation``, equal to
    ``optax.adamw`` with the same arguments; its ``update`` needs ``params``."""
    b1, b2, eps, eps_root, weight_decay = _check(
        "adamw",
        learning_rate,
        {"b1": b1, "b2": b2},
        _adamw_nonnegative(eps, eps_root, weight_decay),
    )
    rule = _adam_rule("adamw", b1, b2, eps, eps_root, weight_decay, mask)
    return _transformation("adamw", adam_init, rule, learning_rate, needs_params=True)
