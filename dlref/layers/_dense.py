"""Dense and dropout, each with its hand-written backward right under it."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dlref import _checks
from dlref._numerics import bias_row, rows
from dlref._op import op

# --- dense ---------------------------------------------------------------------


def init_dense(key: jax.Array, d_in: int, d_out: int, dtype=jnp.float32):
    """``(w, b)`` with ``w ~ N(0, 1 / d_in)`` (LeCun normal, flax's default) and ``b = 0``.

    Examples:
      >>> import jax
      >>> from dlref import layers
      >>> w, b = layers.init_dense(jax.random.key(0), 3, 2)
      >>> w.shape, b
      ((3, 2), Array([0., 0.], dtype=float32))

    References:
      LeCun, Bottou, Orr and Mueller, Efficient BackProp, in Neural Networks:
      Tricks of the Trade, Springer (1998): weights of variance 1 / fan-in.
    """
    _checks.prng_key("init_dense", "key", key)
    d_in, d_out = _checks.sizes("init_dense", d_in=d_in, d_out=d_out)
    _checks.float_dtype("init_dense", dtype)
    w = jax.random.normal(key, (d_in, d_out), dtype) / jnp.sqrt(jnp.asarray(d_in, dtype))
    return w, jnp.zeros((d_out,), dtype)


@op
def dense(x: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
    """Fully connected layer: ``y = x @ w + b``.

    Derivative: ``dx = dy @ w.T``, ``dw = x.T @ dy`` and ``db = sum(dy)``, the
    sums over every batch axis (the axes ``b`` is broadcast along).

    Args:
      x: inputs, floating, shape ``(..., d_in)``.
      w: weights, shape ``(d_in, d_out)``.
      b: bias, shape ``(d_out,)``.

    Returns:
      ``y``, shape ``(..., d_out)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import layers
      >>> layers.dense(jnp.array([[1.0, 2.0]]), jnp.eye(2), jnp.array([0.5, -0.5]))
      Array([[1.5, 1.5]], dtype=float32)
    """
    fn = "dense"
    _checks.floating(fn, x=x, w=w, b=b)
    _checks.same_dtype(fn, x=x, w=w, b=b)
    _checks.min_rank(fn, "x", x, 1, "the last axis holds the input features")
    _checks.shape(fn, "w", w, (x.shape[-1], None), "(d_in, d_out) with d_in = x.shape[-1]")
    _checks.shape(fn, "b", b, (w.shape[1],), "(d_out,)")
    return x @ w + bias_row(b, x.ndim)


def _dense_fwd(x, w, b):
    return dense.autodiff(x, w, b), (x, w)


def _dense_bwd(res, dy):
    x, w = res
    rows_x, rows_dy = rows(x), rows(dy)
    return dy @ w.T, rows_x.T @ rows_dy, jnp.sum(rows_dy, axis=0)


dense.defvjp(_dense_fwd, _dense_bwd)


# --- dropout -------------------------------------------------------------------


@op(arrays=("key",))
def dropout(
    x: jax.Array, *, rate: float, key: jax.Array | None = None, training: bool = True
) -> jax.Array:
    """Inverted dropout: zero each entry with probability ``rate``, scale the rest
    by ``1 / (1 - rate)`` so that the expectation is unchanged.

    ``y = x * mask / (1 - rate)``, ``mask ~ Bernoulli(1 - rate)`` drawn from
    ``key``; the same key gives the same mask. Not training, or ``rate = 0``:
    the identity. ``rate = 1``: zeros, with zero gradients (never ``0 / 0``).

    Derivative: ``dx = dy * mask / (1 - rate)``, with the forward's mask (kept,
    never drawn again).

    Args:
      x: floating array of any shape.
      rate: the probability of zeroing an entry, in [0, 1].
      key: a PRNG key (``jax.random.key``); pass a fresh one every step. Not
        needed where dropout is the identity (not training, or rate 0).
      training: when False, dropout is the identity.

    Returns:
      An array of the shape and dtype of ``x``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import layers
      >>> x = jnp.ones((2, 4))
      >>> jnp.unique(layers.dropout(x, rate=0.5, key=jax.random.key(0)))  # kept: 1 / (1 - rate)
      Array([0., 2.], dtype=float32)
      >>> bool(jnp.all(layers.dropout(x, rate=0.0) == x))  # rate 0: the identity, no key
      True

    References:
      Srivastava, Hinton, Krizhevsky, Sutskever and Salakhutdinov, Dropout: a
      simple way to prevent neural networks from overfitting, JMLR 15,
      1929-1958 (2014). The paper scales the weights by the keep probability
      at test time; the inverted form here scales the kept units by
      ``1 / (1 - rate)`` in training instead, the same expectation, so that
      evaluation is the identity.
    """
    _checks.floating("dropout", x=x)
    _checks.in_interval("dropout", "rate", rate, 0.0, 1.0)
    if not training or rate == 0:
        return x
    if rate == 1:
        return jnp.zeros_like(x)
    if key is None:
        raise _checks.InputError(
            f"dropout: `key` is needed to draw the mask when training at rate {rate}"
        )
    _checks.prng_key("dropout", "key", key)
    keep = jax.random.bernoulli(key, 1 - rate, x.shape)
    return jnp.where(keep, x * (1 / (1 - rate)), 0)


def _dropout_fwd(x, *, rate, key=None, training=True):
    y = dropout.autodiff(x, rate=rate, key=key, training=training)
    if not training or rate in (0, 1):
        return y, (None,)
    return y, (jax.random.bernoulli(key, 1 - rate, x.shape),)  # the forward's mask


def _dropout_bwd(res, dy, *, rate, training=True):
    (keep,) = res
    if not training or rate == 0:
        return (dy,)
    if rate == 1:
        return (jnp.zeros_like(dy),)
    return (jnp.where(keep, dy * (1 / (1 - rate)), 0),)


dropout.defvjp(_dropout_fwd, _dropout_bwd)
