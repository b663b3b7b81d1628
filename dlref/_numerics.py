"""Numerics shared by several op families: kinks written with ``jnp.where`` (so
autodiff follows dlref's convention), the stable log-normalizer of softmax, and
explicit bias broadcasting. Private: the ops that use them are public."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def neg_abs(x):
    """-|x| with dlref's kink convention (slope +1 at 0)."""
    return jnp.where(x > 0, -x, x)


def abs0(x):
    """|x| whose autodiff derivative is 0 at 0 (``jnp.abs`` gives +1 there)."""
    return jnp.abs(jnp.where(x != 0, x, 0))


def sigmoid_from_exp(x):
    """sigmoid(x) from ``exp(-|x|)``, the same subexpression the softplus forms
    compute, so that XLA computes the exponential once for value and gradient."""
    e = jnp.exp(neg_abs(x))
    return jnp.where(x > 0, 1, e) / (1 + e)


def exp_sum(x, top, axis: int):
    """``sum(exp(x - top))`` along ``axis``, kept: a backward that needs
    ``softmax(x) = exp(x - top) / exp_sum(...)`` writes the same expression, so
    XLA can share the exponentials with the forward."""
    return jnp.sum(jnp.exp(x - top), axis=axis, keepdims=True)


def log_normalizer(x, axis: int):
    """``(top, log_sum)`` with ``logsumexp(x) = top + log_sum`` along ``axis``, kept.

    ``top`` is the maximum, a constant to autodiff (``stop_gradient``), so every
    ``x - top <= 0`` and ``log_sum`` is the log of a number in [1, n]. Keep the
    two apart: ``(x - top) - log_sum`` is exact where ``x - (top + log_sum)``
    would round ``log_sum`` to the spacing of ``top`` (1e-3 at 1e4 in float32).
    """
    top = row_max(x, axis)
    return top, jnp.log(exp_sum(x, top, axis))


def row_max(x, axis: int):
    """The maximum along ``axis``, kept, as a constant to autodiff
    (``stop_gradient``); ``-inf`` over an empty axis (so an empty slice gives an
    empty result, not an error)."""
    return jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True, initial=-jnp.inf))


def valid_labels(labels, classes: int):
    """True where an integer label lies in [0, classes)."""
    return (labels >= 0) & (labels < classes)


def nan_where_not(valid, x):
    """``x`` where ``valid``, NaN elsewhere: an input that cannot be checked
    under ``jit`` (a label out of range) poisons its own result visibly."""
    return jnp.where(valid, x, jnp.nan)


def bias_row(b, ndim: int):
    """``b`` shaped ``(1, ..., 1, d)`` to add to an array of rank ``ndim``: the
    broadcast is explicit, and so is the axis a backward sums over."""
    return b.reshape((1,) * (ndim - 1) + b.shape)
