"""Numerics shared by several op families: kinks written with ``jnp.where`` (so
autodiff follows dlref's convention), the stable log-normalizer of softmax, and
explicit bias broadcasting. Private: the ops that use them are public."""

from __future__ import annotations

import math

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


def two_sum(a, b):
    """``(s, err)`` with ``s = fl(a + b)`` and ``a + b = s + err`` exactly (Knuth's
    TwoSum: six additions, no branch, any order of magnitudes). ``err`` is 0
    where ``s`` is not finite. Under autodiff ``err`` has derivative 0, so
    ``s + err`` differentiates as ``a + b``."""
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)
    return s, jnp.where(jnp.isfinite(s), err, 0)


def log1p(x):
    """``log(1 + x)`` to about 1 ulp (XLA's ``log1p`` on the CPU is off by up to
    2.3 ulp in float32 and 128 ulp in float64 on [-0.6, -0.3]).

    The log of the rounded ``u = 1 + x``, corrected by the rounding error
    ``(u - 1) - x`` (exact for ``|x| <= 1``; negligible beyond): ``log(1 + x) =
    log(u) - ((u - 1) - x) / u`` to second order. For ``|x|`` below half an ulp
    of 1, ``u = 1`` and the result is ``x``. ``x = -1`` gives ``-inf``. The
    correction is a constant to autodiff: the derivative is ``1 / u`` (its own
    derivative, of second order, would overflow ``1 / u**2`` in float16).
    """
    u = 1 + x
    ok = jnp.isfinite(u) & (u > 0)
    safe = jnp.where(ok, u, 1)
    correction = jnp.where(ok, ((safe - 1) - x) / safe, 0)
    return jnp.log(u) - jax.lax.stop_gradient(correction)


def shifted_exp(x, top):
    """``exp(x - top)`` to about 1 ulp: ``x - top`` rounds (where ``x`` and
    ``top`` differ in magnitude), and exp multiplies that rounding error by
    ``|x - top|`` (up to 2**9 ulp in float64); the exact remainder of the
    subtraction (:func:`two_sum`) restores it, ``exp(d + r) = e + e * r``."""
    d, r = two_sum(x, -top)
    e = jnp.exp(d)
    return e + e * r


def exp_sum(x, top, axis: int):
    """``sum(exp(x - top))`` along ``axis``, kept: a backward that needs
    ``softmax(x) = shifted_exp(x, top) / exp_sum(...)`` writes the same
    expression, so XLA can share the exponentials with the forward."""
    return jnp.sum(shifted_exp(x, top), axis=axis, keepdims=True)


def log_normalizer(x, axis: int):
    """``(top, log_sum)`` with ``logsumexp(x) = top + log_sum`` along ``axis``, kept.

    ``top`` is the maximum, a constant to autodiff (``stop_gradient``), so every
    ``x - top <= 0`` and ``log_sum`` is the log of a number in [1, n]. Keep the
    two apart: ``(x - top) - log_sum`` is exact where ``x - (top + log_sum)``
    would round ``log_sum`` to the spacing of ``top`` (1e-3 at 1e4 in float32).
    The sum is ``1 + rest``, ``rest`` the terms after one maximal entry, and
    ``log_sum = log1p(rest)``: ``log`` of the rounded sum would lose every digit
    of a small ``rest`` (log_softmax of a confident maximum, -4e-8 in float32,
    would come out 0).
    """
    top = row_max(x, axis)
    at_top = x == top
    e = shifted_exp(x, top)
    # A maximal entry's term is 1: it enters as e - 1, which is 0 but keeps its
    # derivative e for autodiff (top itself is a constant).
    rest = jnp.sum(jnp.where(at_top, e - 1, e), axis=axis, keepdims=True)
    ties = jnp.sum(at_top, axis=axis, keepdims=True, dtype=x.dtype)
    return top, log1p(rest + (ties - 1))


def row_max(x, axis: int):
    """The maximum along ``axis``, kept, as a constant to autodiff
    (``stop_gradient``); ``-inf`` over an empty axis (so an empty slice gives an
    empty result, not an error)."""
    return jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True, initial=-jnp.inf))


def valid_labels(labels, classes: int):
    """True where an integer label lies in [0, classes)."""
    return (labels >= 0) & (labels < classes)


def in_unit(x):
    """True where an entry lies in [0, 1] (NaN does not): a target or probability
    that cannot be checked under ``jit`` makes its loss and gradient NaN."""
    return (x >= 0) & (x <= 1)


def nan_where_not(valid, x):
    """``x`` where ``valid``, NaN elsewhere: an input that cannot be checked
    under ``jit`` (a label out of range) poisons its own result visibly."""
    return jnp.where(valid, x, jnp.nan)


def rows(a):
    """``a`` as a matrix: every axis but the last merged, ``(..., k) -> (n, k)``;
    ``n`` is computed, so an empty last axis (k = 0) works, where ``reshape(-1, 0)``
    cannot infer it."""
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


def bias_row(b, ndim: int):
    """``b`` shaped ``(1, ..., 1, d)`` to add to an array of rank ``ndim``: the
    broadcast is explicit, and so is the axis a backward sums over."""
    return b.reshape((1,) * (ndim - 1) + b.shape)
