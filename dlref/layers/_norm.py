"""Batch, layer and RMS normalization, each with its hand-written backward right under it."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dlref import _checks
from dlref._numerics import bias_row, nan_where_not
from dlref._op import op

# --- batch norm ----------------------------------------------------------------


class BatchNormState(NamedTuple):
    """Running statistics of batch normalization, one entry per feature.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import layers
      >>> layers.BatchNormState(mean=jnp.zeros(2), var=jnp.ones(2)).var
      Array([1., 1.], dtype=float32)
    """

    mean: jax.Array
    var: jax.Array


def init_batch_norm(features: int, dtype=jnp.float32):
    """``(scale, shift, state)``: scale 1, shift 0, running mean 0 and running variance 1.

    Examples:
      >>> from dlref import layers
      >>> scale, shift, state = layers.init_batch_norm(3)
      >>> print(scale, shift, state.mean, state.var)
      [1. 1. 1.] [0. 0. 0.] [0. 0. 0.] [1. 1. 1.]
    """
    (features,) = _checks.sizes("init_batch_norm", features=features)
    _checks.float_dtype("init_batch_norm", dtype)
    ones, zeros = jnp.ones((features,), dtype), jnp.zeros((features,), dtype)
    return ones, zeros, BatchNormState(zeros, ones)


def _wide(*trees):
    """Half-precision leaves in float32 (batch norm's arithmetic), others unchanged."""

    def wide(a):
        return a.astype(jnp.float32) if jnp.finfo(a.dtype).bits < 32 else a

    return [jax.tree.map(wide, t) for t in trees]


def _batch_stats(x, axis_name):
    """Biased mean and variance over every axis but the last (and across devices)."""
    axes = tuple(range(x.ndim - 1))
    mean = _device_mean(jnp.mean(x, axis=axes), axis_name)
    centred = x - bias_row(mean, x.ndim)
    return mean, _device_mean(jnp.mean(centred * centred, axis=axes), axis_name)


def _device_mean(a, axis_name):
    """The mean of ``a`` over the devices of the mapped axis ``axis_name`` (if any)."""
    if axis_name is None:
        return a
    try:
        return jax.lax.pmean(a, axis_name)
    except NameError:
        raise _checks.InputError(
            f"batch_norm: `axis_name` must name an axis mapped by shard_map or pmap around "
            f"the call; got {axis_name!r}, which is not bound here (axis_name=None: no "
            "synchronization)"
        ) from None


def _check_batch_norm(x, scale, shift, state, training, momentum, eps):
    fn = "batch_norm"
    _checks.in_interval(fn, "momentum", momentum, 0.0, 1.0)
    _checks.in_interval(fn, "eps", eps, 0.0, float("inf"))
    arrays = {"x": x, "scale": scale, "shift": shift, "state.mean": state.mean}
    arrays["state.var"] = state.var
    _checks.floating(fn, **arrays)
    _checks.same_dtype(fn, **arrays)
    _checks.min_rank(fn, "x", x, 2, "(batch, ..., features)")
    features = (x.shape[-1],)
    for name, value in (("scale", scale), ("shift", shift)):
        _checks.shape(fn, name, value, features, "(features,)")
    for name, value in (("state.mean", state.mean), ("state.var", state.var)):
        _checks.shape(fn, name, value, features, "(features,)")
    if training:
        why = "batch statistics of no example are undefined, and would corrupt the state"
        _checks.nonempty(fn, "x", x, why)
    if not _checks.is_concrete(state.var):
        _checks.defer(lambda: state.var < 0)
    elif np.any(np.asarray(state.var) < 0):
        raise _checks.InputError(
            f"{fn}: `state.var` must be >= 0; got minimum {np.min(np.asarray(state.var))}"
        )


@op
def batch_norm(
    x: jax.Array,
    scale: jax.Array,
    shift: jax.Array,
    state: BatchNormState,
    *,
    training: bool = True,
    momentum: float = 0.99,
    eps: float = 1e-5,
    axis_name: str | None = None,
) -> tuple[jax.Array, BatchNormState]:
    """Batch normalization over every axis but the last (the features).

    Training: with the batch mean ``mu`` and biased variance ``var`` of each
    feature, ``x_hat = (x - mu) / sqrt(var + eps)`` and
    ``y = scale * x_hat + shift``; the running statistics become
    ``r = momentum * r + (1 - momentum) * batch`` (flax's convention; PyTorch's
    momentum 0.1 means 1 - 0.9 here, and PyTorch keeps the unbiased variance).
    Evaluation (``training=False``): the running statistics replace the batch's,
    and the state is returned unchanged.

    Derivative (training, the simplified closed form): with means over the batch,
    ``dx = scale / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat))``,
    ``dscale = sum(dy * x_hat)``, ``dshift = sum(dy)``: two reductions serve
    all three. The running statistics
    are carried, not differentiated through the batch (``stop_gradient``); their
    own derivative is ``d state = momentum * d new_state``. Evaluation:
    ``dx = dy * scale / sqrt(r_var + eps)`` and the running statistics get the
    gradient of an affine map.

    Args:
      x: activations, floating, shape ``(batch, ..., features)``.
      scale: learnable scale, shape ``(features,)``.
      shift: learnable shift, shape ``(features,)``.
      state: the running statistics (:class:`BatchNormState`).
      training: use (and update) the batch statistics.
      momentum: weight of the old running statistics.
      eps: added to the variance.
      axis_name: under ``shard_map``/``pmap``, the mapped axis to average the
        statistics over (synchronized batch norm; every device must hold the
        same number of examples).

    Returns:
      ``(y, new_state)``.

    Numerics: the variance is computed from centred values (two passes), never
    as ``E[x^2] - E[x]^2``, which cancels catastrophically for large means.
    float16 and bfloat16 inputs are normalized in float32 and the results cast
    back (as flax's ``force_float32_reductions``): in float16, eps = 1e-5 is a
    subnormal that XLA flushes to 0, and a constant feature would give
    ``rsqrt(0) = inf``. A negative running variance raises when concrete; under
    ``jit`` it gives NaN: in the new running variance in training, in ``y`` in
    evaluation (where ``var + eps < 0``).

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import layers
      >>> x = jnp.array([[1.0, 10.0], [3.0, 30.0]])  # (batch, features)
      >>> scale, shift, state = layers.init_batch_norm(2)
      >>> y, state = layers.batch_norm(x, scale, shift, state, momentum=0.9)  # (y, new_state)
      >>> y.round(4)
      Array([[-1., -1.],
             [ 1.,  1.]], dtype=float32)
      >>> print(state.mean, state.var)  # 0.9 * old + 0.1 * batch
      [0.2 2. ] [ 1.  10.9]

    References:
      Ioffe and Szegedy, Batch normalization: accelerating deep network
      training by reducing internal covariate shift, ICML 2015, PMLR 37,
      448-456.
    """
    _check_batch_norm(x, scale, shift, state, training, momentum, eps)
    dtype = x.dtype
    x, scale, shift, state = _wide(x, scale, shift, state)
    if training:
        mean, var = _batch_stats(x, axis_name)
        new_state = BatchNormState(
            momentum * state.mean + (1 - momentum) * jax.lax.stop_gradient(mean),
            # a negative running variance (unchecked under jit) poisons its feature's
            nan_where_not(
                state.var >= 0, momentum * state.var + (1 - momentum) * jax.lax.stop_gradient(var)
            ),
        )
    else:
        mean, var, new_state = state.mean, state.var, state
    inv_std = jax.lax.rsqrt(var + eps)
    x_hat = (x - bias_row(mean, x.ndim)) * bias_row(inv_std, x.ndim)
    y = x_hat * bias_row(scale, x.ndim) + bias_row(shift, x.ndim)
    return y.astype(dtype), BatchNormState(*(s.astype(dtype) for s in new_state))


def _batch_norm_fwd(
    x, scale, shift, state, *, training=True, momentum=0.99, eps=1e-5, axis_name=None
):
    out = batch_norm.autodiff(
        x, scale, shift, state, training=training, momentum=momentum, eps=eps, axis_name=axis_name
    )
    x, scale, state = _wide(x, scale, state)
    mean, var = _batch_stats(x, axis_name) if training else (state.mean, state.var)
    return out, (x, scale, mean, jax.lax.rsqrt(var + eps))


def _batch_norm_bwd(res, cotangents, *, training=True, momentum=0.99, axis_name=None):
    x, scale, mean, inv_std = res
    dtype = cotangents[0].dtype
    dy, dstate = _wide(*cotangents)
    n = x.ndim
    axes = tuple(range(n - 1))
    x_hat = (x - bias_row(mean, n)) * bias_row(inv_std, n)  # the forward's x_hat
    # Two reductions serve every gradient: dshift = sum(dy), dscale = sum(dy * x_hat).
    dshift, dscale = jnp.sum(dy, axis=axes), jnp.sum(dy * x_hat, axis=axes)
    gain = scale * inv_std  # d y / d x along the normalization
    if not training:
        d_state = BatchNormState(
            dstate.mean - gain * dshift, dstate.var - 0.5 * gain * inv_std * dscale
        )
        return _narrow(dtype, dy * bias_row(gain, n), dscale, dshift, d_state)
    count = x.size // x.shape[-1]
    mean_dy, mean_dy_x_hat = dshift / count, dscale / count
    if axis_name is not None:  # the means are over the global batch
        mean_dy = jax.lax.pmean(mean_dy, axis_name)
        mean_dy_x_hat = jax.lax.pmean(mean_dy_x_hat, axis_name)
    centred = dy - bias_row(mean_dy, n) - x_hat * bias_row(mean_dy_x_hat, n)
    d_state = BatchNormState(momentum * dstate.mean, momentum * dstate.var)
    return _narrow(dtype, centred * bias_row(gain, n), dscale, dshift, d_state)


def _narrow(dtype, *trees):
    return tuple(jax.tree.map(lambda a: a.astype(dtype), t) for t in trees)


batch_norm.defvjp(_batch_norm_fwd, _batch_norm_bwd)


# --- layer norm and RMS norm -----------------------------------------------------


def _along(v, axis: int, ndim: int):
    """A ``(d,)`` vector shaped to broadcast along ``axis`` of a rank-``ndim`` array."""
    shape = [1] * ndim
    shape[axis] = v.shape[0]
    return v.reshape(shape)


def _check_norm(fn: str, x, axis: int, eps: float, **vectors) -> int:
    """Floating ``x`` with the axis; each vector ``(x.shape[axis],)``; ``eps >= 0``;
    the axis, normalized."""
    _checks.in_interval(fn, "eps", eps, 0.0, float("inf"))
    _checks.floating(fn, x=x, **vectors)
    _checks.same_dtype(fn, x=x, **vectors)
    _checks.min_rank(fn, "x", x, 1, "the axis to normalize over")
    if not -x.ndim <= axis < x.ndim:
        raise _checks.InputError(f"{fn}: `axis` must lie in [{-x.ndim}, {x.ndim}); got {axis}")
    axis %= x.ndim
    for name, v in vectors.items():
        _checks.shape(fn, name, v, (x.shape[axis],), f"one entry per position of axis {axis}")
    if x.shape[axis] == 0:
        raise _checks.InputError(
            f"{fn}: `x` has an empty axis {axis}: the mean over it is undefined; "
            f"got shape {x.shape}"
        )
    return axis


@op
def layer_norm(
    x: jax.Array, scale: jax.Array, shift: jax.Array, *, axis: int = -1, eps: float = 1e-6
) -> jax.Array:
    """Layer normalization: each slice along ``axis`` to mean 0 and variance 1,
    then scaled and shifted.

    ``x_hat = (x - mean) / sqrt(var + eps)`` with the mean and biased variance
    along ``axis``; ``y = scale * x_hat + shift`` (``scale``, ``shift``: one entry
    per position of ``axis``). Unlike batch norm, no statistic crosses examples
    and nothing is carried: training and evaluation are the same.

    Derivative: with ``g = dy * scale`` and means along ``axis``,
    ``dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps)``,
    ``dscale = sum(dy * x_hat)`` and ``dshift = sum(dy)`` over every other axis:
    two reductions per slice serve the input gradient.

    Args:
      x: floating array with at least one axis.
      scale, shift: ``(x.shape[axis],)``.
      axis: the axis to normalize over (the features).
      eps: added to the variance (flax's default 1e-6; PyTorch's is 1e-5).

    Returns:
      An array of the shape and dtype of ``x``.

    Numerics: the variance is computed from centred values (two passes), as
    flax's ``use_fast_variance=False``; float16 and bfloat16 are normalized in
    float32 and cast back, as batch norm.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import layers
      >>> x = jnp.array([[1.0, 2.0, 3.0]])
      >>> layers.layer_norm(x, jnp.ones(3), jnp.zeros(3)).round(4)
      Array([[-1.2247,  0.    ,  1.2247]], dtype=float32)

    References:
      Ba, Kiros and Hinton, Layer Normalization, arXiv:1607.06450 (2016).
    """
    axis = _check_norm("layer_norm", x, axis, eps, scale=scale, shift=shift)
    dtype = x.dtype
    x, scale, shift = _wide(x, scale, shift)
    x_hat, _ = _layer_stats(x, axis, eps)
    n = x.ndim
    return (x_hat * _along(scale, axis, n) + _along(shift, axis, n)).astype(dtype)


def _layer_stats(x, axis: int, eps: float):
    """``(x_hat, 1 / sqrt(var + eps))`` along ``axis``, kept."""
    centred = x - jnp.mean(x, axis=axis, keepdims=True)
    inv_std = jax.lax.rsqrt(jnp.mean(centred * centred, axis=axis, keepdims=True) + eps)
    return centred * inv_std, inv_std


def _layer_norm_fwd(x, scale, shift, *, axis=-1, eps=1e-6):
    y = layer_norm.autodiff(x, scale, shift, axis=axis, eps=eps)
    axis %= x.ndim
    (wide_x,) = _wide(x)
    _, inv_std = _layer_stats(wide_x, axis, eps)
    return y, (x, scale, inv_std)


def _layer_norm_bwd(res, dy, *, axis=-1):
    x, scale, inv_std = res
    dtype = dy.dtype
    x, scale, dy = _wide(x, scale, dy)
    axis %= x.ndim
    others = tuple(a for a in range(x.ndim) if a != axis)
    x_hat = (x - jnp.mean(x, axis=axis, keepdims=True)) * inv_std  # the forward's x_hat
    g = dy * _along(scale, axis, x.ndim)
    mean_g = jnp.mean(g, axis=axis, keepdims=True)
    mean_gx = jnp.mean(g * x_hat, axis=axis, keepdims=True)
    dx = (g - mean_g - x_hat * mean_gx) * inv_std
    dscale, dshift = jnp.sum(dy * x_hat, axis=others), jnp.sum(dy, axis=others)
    return _narrow(dtype, dx, dscale, dshift)


layer_norm.defvjp(_layer_norm_fwd, _layer_norm_bwd)


@op
def rms_norm(x: jax.Array, scale: jax.Array, *, axis: int = -1, eps: float = 1e-6) -> jax.Array:
    """RMS normalization: each slice along ``axis`` divided by its root mean square.

    ``x_hat = x / sqrt(mean(x**2) + eps)`` along ``axis``, ``y = scale * x_hat``;
    no mean is subtracted and there is no shift.

    Derivative: with ``g = dy * scale`` and means along ``axis``,
    ``dx = (g - x_hat * mean(g * x_hat)) / sqrt(mean(x**2) + eps)`` and
    ``dscale = sum(dy * x_hat)`` over every other axis: one reduction per slice.

    Args:
      x: floating array with at least one axis.
      scale: ``(x.shape[axis],)``.
      axis: the axis to normalize over.
      eps: added to the mean square (flax's default 1e-6).

    Returns:
      An array of the shape and dtype of ``x``.

    Numerics: float16 and bfloat16 are normalized in float32 and cast back (a
    float16 square overflows past 256).

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import layers
      >>> x = jnp.array([[2.0, -2.0, 2.0, -2.0]])  # root mean square 2
      >>> layers.rms_norm(x, jnp.array([1.0, 2.0, 3.0, 4.0]), eps=0.0)
      Array([[ 1., -2.,  3., -4.]], dtype=float32)

    References:
      Zhang and Sennrich, Root Mean Square Layer Normalization, NeurIPS (2019).
    """
    axis = _check_norm("rms_norm", x, axis, eps, scale=scale)
    dtype = x.dtype
    x, scale = _wide(x, scale)
    return (x * _inv_rms(x, axis, eps) * _along(scale, axis, x.ndim)).astype(dtype)


def _inv_rms(x, axis: int, eps: float):
    """``1 / sqrt(mean(x**2) + eps)`` along ``axis``, kept: the forward's and the
    backward's one expression."""
    return jax.lax.rsqrt(jnp.mean(x * x, axis=axis, keepdims=True) + eps)


def _rms_norm_fwd(x, scale, *, axis=-1, eps=1e-6):
    y = rms_norm.autodiff(x, scale, axis=axis, eps=eps)
    (wide_x,) = _wide(x)
    return y, (x, scale, _inv_rms(wide_x, axis % x.ndim, eps))


def _rms_norm_bwd(res, dy, *, axis=-1):
    x, scale, inv_rms = res
    dtype = dy.dtype
    x, scale, dy = _wide(x, scale, dy)
    axis %= x.ndim
    others = tuple(a for a in range(x.ndim) if a != axis)
    x_hat = x * inv_rms
    g = dy * _along(scale, axis, x.ndim)
    dx = (g - x_hat * jnp.mean(g * x_hat, axis=axis, keepdims=True)) * inv_rms
    return _narrow(dtype, dx, jnp.sum(dy * x_hat, axis=others))


rms_norm.defvjp(_rms_norm_fwd, _rms_norm_bwd)
