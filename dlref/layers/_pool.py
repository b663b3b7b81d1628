"""Max and average pooling on NHWC inputs, each with its hand-written backward right under it."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dlref import _checks
from dlref._op import op
from dlref.layers._conv import Geometry, Padding, Pair, geometry, positive_pair


def _check_pool(fn: str, x, window, stride, padding) -> tuple[Geometry, Geometry]:
    """The geometry along H and W; pads must stay below the window, so that every
    window holds at least one cell of ``x``."""
    _checks.arrays(fn, x=x)
    _checks.floating(fn, x=x)
    _checks.rank(fn, "x", x, 4)
    window = positive_pair(fn, "window", window)
    stride = window if stride is None else positive_pair(fn, "stride", stride)
    axes = geometry(fn, x, window, stride, padding, shapes=f"x shape {x.shape}")
    for g, name in zip(axes, "HW", strict=True):
        if max(g.lo, g.hi) >= g.window:
            raise _checks.InputError(
                f"{fn}: padding ({g.lo}, {g.hi}) along {name} must be smaller than the "
                f"window ({g.window}): a window of padding alone has no value; got {padding!r}"
            )
    return axes


def _dims(h: Geometry, w: Geometry) -> tuple[tuple, tuple, list]:
    """``reduce_window``'s window, strides and padding over the four NHWC axes."""
    window, strides = (1, h.window, w.window, 1), (1, h.stride, w.stride, 1)
    return window, strides, [(0, 0), (h.lo, h.hi), (w.lo, w.hi), (0, 0)]


def _span(g: Geometry) -> int:
    """Rows from the first window's start to the last window's start, inclusive."""
    return (g.out - 1) * g.stride + 1


def _offsets(h: Geometry, w: Geometry):
    """Each cell ``(a, b)`` of a window, in row-major order."""
    return itertools.product(range(h.window), range(w.window))


def _at_offset(xp, a: int, b: int, h: Geometry, w: Geometry):
    """The cell ``(a, b)`` of every window of the padded ``xp``: ``(N, OH, OW, C)``."""
    n, _, _, c = xp.shape
    start = (0, a, b, 0)
    return lax.slice(xp, start, (n, a + _span(h), b + _span(w), c), (1, h.stride, w.stride, 1))


def _to_input(v, a: int, b: int, h: Geometry, w: Geometry):
    """Sends ``v`` (one value per window, ``(N, OH, OW, C)``) to the cell ``(a, b)``
    of its window, on the unpadded input's grid: ``v[o]`` lands on row
    ``o * stride + a - lo``. ``lax.pad``: ``stride - 1`` zeros between entries;
    ``a - lo`` rows above and ``H - (a - lo) - span`` below, negative amounts cutting
    the rows that fall in the padding."""
    row = (a - h.lo, h.size - (a - h.lo) - _span(h), h.stride - 1)
    col = (b - w.lo, w.size - (b - w.lo) - _span(w), w.stride - 1)
    return lax.pad(v, jnp.zeros((), v.dtype), [(0, 0, 0), row, col, (0, 0, 0)])


# --- max pooling ------------------------------------------------------------------


@op
def max_pool2d(
    x: jax.Array,
    *,
    window: int | Pair,
    stride: int | Pair | None = None,
    padding: Padding = "VALID",
) -> jax.Array:
    """Max pooling over ``window`` on NHWC input: ``y[n, i, j, c]`` is the maximum of
    ``xp[n, i*sh + p, j*sw + q, c]`` over ``p < KH``, ``q < KW``, with ``xp`` padded
    by ``-inf`` (a padded cell never wins over a value of ``x`` above ``-inf``).

    Layout: ``x`` is ``(N, H, W, C)``; PyTorch's ``(N, C, H, W)`` converts with
    ``x.transpose(0, 2, 3, 1)``. ``stride`` defaults to ``window`` (PyTorch's
    default; flax's ``max_pool`` defaults to stride 1). Padding: "VALID", "SAME"
    (lax's rule, as :func:`conv2d`) or ``((lo, hi), (lo, hi))`` below the window
    (PyTorch's ``padding=p`` is ``((p, p), (p, p))``).

    Derivative: each output's gradient goes, whole, to the arg-max of its window;
    an input cell that is the arg-max of several (overlapping) windows sums
    theirs, and every other cell gets 0. Ties: the first maximum in row-major
    window order (top row first, left to right) takes all of it. JAX's autodiff
    of ``lax.reduce_window`` max (XLA's ``select_and_scatter`` with ``>=``, which
    keeps the cell already selected) follows the same rule, so the two agree at
    ties too (tested on the CPU). (jax.grad of ``jnp.max`` over an axis instead
    splits the gradient equally between ties.)

    Args:
      x: ``(N, H, W, C)``, floating.
      window: an int or ``(KH, KW)``, >= 1; keyword-only (hyperparameters of a
        dlref op are keyword-only or defaulted).
      stride: an int or a pair, >= 1; None: the window.
      padding: "VALID", "SAME" or ``((lo, hi), (lo, hi))`` with each pad smaller
        than the window.

    Returns:
      ``y``, ``(N, OH, OW, C)``, ``OH = floor((H + lo + hi - KH) / stride) + 1``.

    Numerics: exact (a selection). A NaN in a window makes its maximum NaN
    (``lax.max`` propagates it); where that window's gradient then goes is not
    specified (a NaN compares false, and autodiff's choice may differ).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import layers
      >>> x = jnp.array([[1.0, 3.0], [3.0, 2.0]]).reshape(1, 2, 2, 1)
      >>> layers.max_pool2d(x, window=2)[0, :, :, 0]
      Array([[3.]], dtype=float32)
      >>> jax.grad(lambda x: layers.max_pool2d(x, window=2).sum())(x)[0, :, :, 0]  # tie: first
      Array([[0., 1.],
             [0., 0.]], dtype=float32)
    """
    h, w = _check_pool("max_pool2d", x, window, stride, padding)
    dims, strides, pads = _dims(h, w)
    # NumPy scalars: reduce_window must see a constant -inf (0) to use its max (sum)
    # primitive, which autodiff differentiates (a traced initial value would not be).
    return lax.reduce_window(x, np.array(-np.inf, x.dtype), lax.max, dims, strides, pads)


def _max_pool2d_fwd(x, *, window, stride=None, padding="VALID"):
    # Only x is kept (autodiff keeps x too); the backward finds the arg-max again.
    return max_pool2d.autodiff(x, window=window, stride=stride, padding=padding), (x,)


def _max_pool2d_bwd(res, dy, *, window, stride=None, padding="VALID"):
    (x,) = res
    h, w = _check_pool("max_pool2d", x, window, stride, padding)
    _, _, pads = _dims(h, w)
    xp = lax.pad(x, jnp.array(-jnp.inf, x.dtype), [(lo, hi, 0) for lo, hi in pads])
    # The arg-max of every window, as the index of its cell in row-major order: a
    # later cell replaces the best so far only when strictly greater (ties: the first).
    best, first = None, None
    for k, (a, b) in enumerate(_offsets(h, w)):
        cell = _at_offset(xp, a, b, h, w)
        if best is None:
            best, first = cell, jnp.zeros(cell.shape, jnp.int32)
            continue
        greater = cell > best
        best, first = jnp.where(greater, cell, best), jnp.where(greater, k, first)
    dx = sum(
        _to_input(jnp.where(first == k, dy, 0), a, b, h, w)
        for k, (a, b) in enumerate(_offsets(h, w))
    )
    return (dx,)


max_pool2d.defvjp(_max_pool2d_fwd, _max_pool2d_bwd)


# --- average pooling ----------------------------------------------------------------


def _counts(g: Geometry) -> np.ndarray:
    """Cells of ``x`` (not padding) in each window along one axis."""
    start = np.arange(g.out) * g.stride - g.lo
    return np.minimum(start + g.window, g.size) - np.maximum(start, 0)


def _divisor(x, h: Geometry, w: Geometry, count_include_pad: bool):
    """The window's area, or its cells of ``x`` per window ``(1, OH, OW, 1)``."""
    if count_include_pad:
        return jnp.asarray(h.window * w.window, x.dtype)
    counts = np.outer(_counts(h), _counts(w))
    return jnp.asarray(counts[None, :, :, None], x.dtype)


@op
def avg_pool2d(
    x: jax.Array,
    *,
    window: int | Pair,
    stride: int | Pair | None = None,
    padding: Padding = "VALID",
    count_include_pad: bool = True,
) -> jax.Array:
    """Average pooling over ``window`` on NHWC input: ``y[n, i, j, c]`` is the sum of
    ``xp[n, i*sh + p, j*sw + q, c]`` over ``p < KH``, ``q < KW`` (``xp``: ``x``
    padded by zeros), divided by ``KH * KW`` (``count_include_pad=True``, the
    default of flax's ``avg_pool`` and PyTorch's ``AvgPool2d``: padded cells count)
    or by the number of cells of ``x`` in the window (``count_include_pad=False``,
    TensorFlow's "SAME" average pooling). With "VALID" padding the two agree.

    Layout, stride and padding as :func:`max_pool2d` (``stride`` defaults to the
    window, as in PyTorch; flax's ``avg_pool`` defaults to stride 1).

    Derivative: every cell of a window receives the window's ``dy`` divided by its
    divisor: ``dx`` is the transposed window sum of ``dy / divisor``, i.e.
    ``dy / divisor`` dilated by the stride, padded by ``KH - 1 - lo`` above, and
    summed over windows of ``KH x KW`` at stride 1 (cells of the padding dropped).

    Args:
      x: ``(N, H, W, C)``, floating.
      window: an int or ``(KH, KW)``, >= 1; keyword-only.
      stride: an int or a pair, >= 1; None: the window.
      padding: "VALID", "SAME" or ``((lo, hi), (lo, hi))`` with each pad smaller
        than the window.
      count_include_pad: divide by the window's area (True) or by the number of
        cells of ``x`` it covers (False).

    Returns:
      ``y``, ``(N, OH, OW, C)``.

    Numerics: the sum is taken in the dtype of ``x`` (float16 sums of large values
    can overflow where the mean would not); the divisor is exact.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import layers
      >>> x = jnp.ones((1, 3, 3, 1))
      >>> layers.avg_pool2d(x, window=2, padding="SAME")[0, :, :, 0]  # padded cells count
      Array([[1.  , 0.5 ],
             [0.5 , 0.25]], dtype=float32)
      >>> layers.avg_pool2d(x, window=2, padding="SAME", count_include_pad=False)[0, :, :, 0]
      Array([[1., 1.],
             [1., 1.]], dtype=float32)
    """
    h, w = _check_pool("avg_pool2d", x, window, stride, padding)
    dims, strides, pads = _dims(h, w)
    total = lax.reduce_window(x, np.zeros((), x.dtype), lax.add, dims, strides, pads)
    return total / _divisor(x, h, w, count_include_pad)


def _avg_pool2d_fwd(x, *, window, stride=None, padding="VALID", count_include_pad=True):
    y = avg_pool2d.autodiff(
        x, window=window, stride=stride, padding=padding, count_include_pad=count_include_pad
    )
    # The backward needs x's height and width only: an empty array of shape
    # (0, H, W, 0) carries them, and no memory.
    return y, (jnp.zeros((0, *x.shape[1:3], 0), x.dtype),)


def _avg_pool2d_bwd(res, dy, *, window, stride=None, padding="VALID", count_include_pad=True):
    (x_shape,) = res
    h, w = _check_pool("avg_pool2d", x_shape, window, stride, padding)
    g = dy / _divisor(dy, h, w, count_include_pad)
    # x's row i gets g[o] for every window o * s - lo <= i < o * s - lo + KH. With g
    # dilated by the stride (g[o] at row o * s) and padded by KH - 1 - lo above, the
    # stride-1 window sum at row i covers rows i .. i + KH - 1 of that array, i.e. the
    # dilated rows i + lo - KH + 1 .. i + lo: exactly the windows holding i. Below,
    # H + lo - span rows make H outputs (negative: the rows only padding reaches).
    spread = (
        [(0, 0, 0)]
        + [(g_.window - 1 - g_.lo, g_.size + g_.lo - _span(g_), g_.stride - 1) for g_ in (h, w)]
        + [(0, 0, 0)]
    )
    dilated = lax.pad(g, jnp.zeros((), g.dtype), spread)
    dims = (1, h.window, w.window, 1)
    return (
        lax.reduce_window(dilated, np.zeros((), g.dtype), lax.add, dims, (1, 1, 1, 1), "VALID"),
    )


avg_pool2d.defvjp(_avg_pool2d_fwd, _avg_pool2d_bwd)
