"""A multilayer perceptron and its whole-network backpropagation, by hand.

``params`` is a list of ``(w, b)`` pairs, one per dense layer, ``w: (d_in, d_out)``.
The parameters come first (``mlp(params, x)``), as in flax's ``apply``, so that
``jax.grad(mlp_loss)`` differentiates them by default.

The hand-written backward is the chain rule through the whole network at once,
micrograd-style: from the gradient of the logits, for each layer from the last,
``dw = a_prev.T @ dz``, ``db = sum(dz)``, ``da_prev = dz @ w.T``, and
``dz_prev = da_prev * act'(z_prev)``, where ``act'`` is read off the layer's
output (relu: ``a > 0``; tanh: ``1 - a**2``; sigmoid: ``a * (1 - a)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from dlref import _checks
from dlref._checks import InputError
from dlref._numerics import bias_row
from dlref._op import op
from dlref.layers import init_dense
from dlref.losses import softmax_cross_entropy_with_integer_labels as _sce_labels

__all__ = ["init_mlp", "mlp", "mlp_loss"]

# activation: the function, and its derivative written from its output
_ACTIVATIONS = {
    "relu": (lambda z: jnp.where(z <= 0, 0, z), lambda a: (a > 0).astype(a.dtype)),  # NaN stays
    "tanh": (jnp.tanh, lambda a: 1 - a * a),
    "sigmoid": (jax.lax.logistic, lambda a: a * (1 - a)),
}


def init_mlp(key: jax.Array, sizes: Sequence[int], dtype=jnp.float32) -> list[tuple]:
    """``[(w, b), ...]`` for layer sizes ``(d_in, hidden..., d_out)`` (LeCun normal,
    zero bias); pass a tuple to make ``sizes`` a static argument under ``jit``.

    Examples:
      >>> import jax
      >>> from dlref import networks
      >>> params = networks.init_mlp(jax.random.key(0), (3, 8, 2))
      >>> [(w.shape, b.shape) for w, b in params]
      [((3, 8), (8,)), ((8, 2), (2,))]
    """
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or len(sizes) < 2:
        raise InputError(
            f"init_mlp: `sizes` must be a sequence of at least two layer sizes (d_in, ..., "
            f"d_out); got {sizes!r}"
        )
    sizes = _checks.sizes("init_mlp", **{f"sizes[{i}]": s for i, s in enumerate(sizes)})
    keys = jax.random.split(key, len(sizes) - 1)
    return [init_dense(k, a, b, dtype) for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)]


def _check_mlp(fn: str, params, x, activation: str) -> None:
    if activation not in _ACTIVATIONS:
        raise InputError(
            f"{fn}: `activation` must be one of {sorted(_ACTIVATIONS)}; got {activation!r}"
        )
    if not isinstance(params, (list, tuple)) or not params:
        raise InputError(
            f"{fn}: `params` must be a non-empty list of (w, b) layers; got "
            f"{type(params).__name__}{'' if params else ' (empty)'}"
        )
    for i, layer in enumerate(params):
        if not isinstance(layer, (list, tuple)) or len(layer) != 2:
            raise InputError(
                f"{fn}: `params[{i}]` must be a pair (w, b); got a {type(layer).__name__} "
                f"of {len(layer) if hasattr(layer, '__len__') else 'no'} entries"
            )
    _checks.floating(fn, x=x)
    _checks.rank(fn, "x", x, 2)
    width = x.shape[-1]
    for i, (w, b) in enumerate(params):
        _checks.floating(fn, **{f"params[{i}].w": w, f"params[{i}].b": b})
        _checks.same_dtype(fn, x=x, **{f"params[{i}].w": w, f"params[{i}].b": b})
        _checks.shape(fn, f"params[{i}].w", w, (width, None), f"(d_in, d_out) with d_in = {width}")
        _checks.shape(fn, f"params[{i}].b", b, (w.shape[1],), "(d_out,)")
        width = w.shape[1]


def _forward(params, x, activation):
    """Logits and the output of every hidden layer."""
    act, _ = _ACTIVATIONS[activation]
    hidden = []
    a = x
    for w, b in params[:-1]:
        a = act(a @ w + bias_row(b, 2))
        hidden.append(a)
    w, b = params[-1]
    return a @ w + bias_row(b, 2), hidden


def _backward(params, x, hidden, dz, activation):
    """The chain rule from the gradient of the logits to every parameter and ``x``."""
    _, act_grad = _ACTIVATIONS[activation]
    inputs = [x, *hidden]
    grads = []
    for i in reversed(range(len(params))):
        w, _ = params[i]
        grads.append((inputs[i].T @ dz, jnp.sum(dz, axis=0)))
        da = dz @ w.T
        if i > 0:
            dz = da * act_grad(inputs[i])
    return grads[::-1], da


@op
def mlp(params: list, x: jax.Array, *, activation: str = "relu") -> jax.Array:
    """A multilayer perceptron: dense layers with ``activation`` between them.

    ``a_0 = x``; ``a_l = act(a_{l-1} @ w_l + b_l)`` for each hidden layer; the
    last layer is linear: ``logits = a_{L-1} @ w_L + b_L``.

    Derivative: the chain rule through every layer (see the module docstring),
    returning ``[(dw, db), ...]`` and ``dx``.

    Args:
      params: ``[(w, b), ...]`` from :func:`init_mlp`.
      x: inputs ``(batch, d_in)``.
      activation: ``"relu"``, ``"tanh"`` or ``"sigmoid"``.

    Returns:
      The logits ``(batch, d_out)``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import networks
      >>> params = networks.init_mlp(jax.random.key(0), (3, 8, 2))
      >>> networks.mlp(params, jnp.ones((4, 3)), activation="tanh").shape
      (4, 2)

    References:
      Rumelhart, Hinton and Williams, Learning representations by
      back-propagating errors, Nature 323, 533-536 (1986).
    """
    _check_mlp("mlp", params, x, activation)
    logits, _ = _forward(params, x, activation)
    return logits


def _mlp_fwd(params, x, *, activation="relu"):
    _check_mlp("mlp", params, x, activation)
    logits, hidden = _forward(params, x, activation)
    return logits, (params, x, hidden)


def _mlp_bwd(res, dlogits, *, activation="relu"):
    params, x, hidden = res
    return _backward(params, x, hidden, dlogits, activation)


mlp.defvjp(_mlp_fwd, _mlp_bwd)


@op
def mlp_loss(
    params: list, x: jax.Array, labels: jax.Array, *, activation: str = "relu"
) -> jax.Array:
    """The MLP's training loss: the batch mean of softmax cross-entropy.

    ``loss = mean_n(logsumexp(z_n) - z_n[y_n])`` with ``z = mlp(params, x)``.

    Derivative: the fused ``dz = (softmax(z) - one_hot(y)) / batch * dy``, then
    the chain rule through the network (:func:`mlp`); labels get no gradient.

    Args:
      params: ``[(w, b), ...]`` from :func:`init_mlp`.
      x: inputs ``(batch, d_in)``.
      labels: integer classes ``(batch,)`` in [0, d_out).
      activation: ``"relu"``, ``"tanh"`` or ``"sigmoid"``.

    Returns:
      A scalar.

    Numerics: as :func:`~dlref.losses.softmax_cross_entropy_with_integer_labels`:
    the log-sum-exp subtracts the row max; softmax is recomputed in the backward
    from the logits and the per-example max and sum of exponentials.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import networks
      >>> params = networks.init_mlp(jax.random.key(0), (3, 8, 2))
      >>> zero = jax.tree.map(jnp.zeros_like, params)  # uniform logits: log(2)
      >>> networks.mlp_loss(zero, jnp.ones((4, 3)), jnp.array([0, 1, 0, 1]))
      Array(0.6931472, dtype=float32)
      >>> grads = jax.grad(networks.mlp_loss)(params, jnp.ones((4, 3)), jnp.array([0, 1, 0, 1]))
      >>> [(dw.shape, db.shape) for dw, db in grads]  # the structure of params
      [((3, 8), (8,)), ((8, 2), (2,))]
    """
    _check_mlp("mlp_loss", params, x, activation)
    logits, _ = _forward(params, x, activation)
    _checks.class_labels("mlp_loss", logits, labels)
    _checks.nonempty("mlp_loss", "x", x, "the batch mean of no example is undefined")
    return jnp.mean(_sce_labels.autodiff(logits, labels))


def _mlp_loss_fwd(params, x, labels, *, activation="relu"):
    _check_mlp("mlp_loss", params, x, activation)
    logits, hidden = _forward(params, x, activation)
    _checks.class_labels("mlp_loss", logits, labels)
    _checks.nonempty("mlp_loss", "x", x, "the batch mean of no example is undefined")
    per_example, ce_res = _sce_labels.fwd(logits, labels)
    return jnp.mean(per_example), (params, x, hidden, ce_res)


def _mlp_loss_bwd(res, dy, *, activation="relu"):
    params, x, hidden, ce_res = res
    n = x.shape[0]
    dlogits, _ = _sce_labels.bwd(ce_res, jnp.full((n,), dy / n))  # d mean = dy / n each
    grads, dx = _backward(params, x, hidden, dlogits, activation)
    return grads, dx, None


mlp_loss.defvjp(_mlp_loss_fwd, _mlp_loss_bwd)
