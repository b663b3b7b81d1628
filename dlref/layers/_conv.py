"""2-D convolution on NHWC inputs with HWIO kernels, its hand-written backward right
under it, and the window geometry (stride, dilation, padding) that pooling shares."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dlref import _checks
from dlref._numerics import bias_row
from dlref._op import op

Pair = tuple[int, int]
Padding = str | tuple[Pair, Pair]

# --- window geometry, shared with pooling ----------------------------------------


def positive_pair(fn: str, name: str, value: Any) -> Pair:
    """An int or a pair of ints, each >= 1, as ``(along H, along W)``."""
    values = value if isinstance(value, tuple) else (value,) * 2
    ok = len(values) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in values
    )
    if not ok:
        raise _checks.InputError(
            f"{fn}: `{name}` must be a positive int or a pair of positive ints "
            f"(along H, along W); got {value!r}"
        )
    return int(values[0]), int(values[1])


class Geometry(NamedTuple):
    """One spatial axis of a sliding window: input ``size``, ``window`` (dilated,
    for a convolution: ``(k - 1) * dilation + 1``), ``stride``, padding ``lo`` and
    ``hi``, the output size, and ``rest``: the padded cells past the last window,
    ``(size + lo + hi - window) % stride``, which no window reads."""

    size: int
    window: int
    stride: int
    lo: int
    hi: int
    out: int
    rest: int


def geometry(
    fn: str, x: Any, window: Pair, stride: Pair, padding: Any, *, shapes: str
) -> tuple[Geometry, Geometry]:
    """The geometry along H and W of ``x`` (NHWC) for ``padding`` "SAME", "VALID"
    or ``((lo, hi), (lo, hi))``; raises where the window is larger than the
    padded input (there would be no output). ``shapes`` describes the call's
    arrays for that message."""
    spatial = (int(x.shape[1]), int(x.shape[2]))
    if isinstance(padding, str) and padding.upper() in ("SAME", "VALID"):
        # lax's rule: "VALID" pads nothing; "SAME" pads (out - 1) * stride + window - size
        # in total, out = ceil(size / stride), half below (rounded down) and the rest above.
        pads = lax.padtype_to_pads(spatial, window, stride, padding.upper())
    elif (
        isinstance(padding, tuple)
        and len(padding) == 2
        and all(isinstance(p, tuple) and len(p) == 2 for p in padding)
        and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0
            for p in padding
            for v in p
        )
    ):
        pads = [(int(lo), int(hi)) for lo, hi in padding]
    else:
        raise _checks.InputError(
            f'{fn}: `padding` must be "SAME", "VALID" or ((lo, hi), (lo, hi)) of ints >= 0 '
            f"(along H, along W); got {padding!r}"
        )
    axes = []
    for size, k, s, (lo, hi), name in zip(spatial, window, stride, pads, "HW", strict=True):
        padded = size + lo + hi
        if padded < k:
            raise _checks.InputError(
                f"{fn}: the window ({k} along {name}) is larger than the padded input "
                f"({size} + {lo} + {hi} = {padded}); {shapes}, padding {padding!r}"
            )
        axes.append(Geometry(size, k, s, lo, hi, (padded - k) // s + 1, (padded - k) % s))
    return axes[0], axes[1]


# --- conv2d ----------------------------------------------------------------------

_NHWC = ("NHWC", "HWIO", "NHWC")


class _Conv(NamedTuple):
    """A checked call: strides, dilations, groups and the geometry along H and W."""

    stride: Pair
    dilation: Pair
    groups: int
    h: Geometry
    w: Geometry


def _check_conv2d(x, w, b, stride, padding, dilation, groups) -> _Conv:
    fn = "conv2d"
    named = {"x": x, "w": w} if b is None else {"x": x, "w": w, "b": b}
    _checks.arrays(fn, **named)
    _checks.floating(fn, **named)
    _checks.same_dtype(fn, **named)
    _checks.rank(fn, "x", x, 4)
    _checks.rank(fn, "w", w, 4)
    stride, dilation = positive_pair(fn, "stride", stride), positive_pair(fn, "dilation", dilation)
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise _checks.InputError(f"{fn}: `groups` must be a positive int; got {groups!r}")
    groups = int(groups)
    channels, (kh, kw, per_group, out) = x.shape[3], w.shape
    if channels % groups or out % groups:
        raise _checks.InputError(
            f"{fn}: `groups` {groups} must divide the input channels (x's last axis, "
            f"{channels}) and the output channels (w's last axis, {out}); "
            f"got x shape {x.shape}, w shape {w.shape}"
        )
    if per_group * groups != channels:
        raise _checks.InputError(
            f"{fn}: `x` has {channels} channels but `w` (HWIO, shape {w.shape}) takes "
            f"in_channels * groups = {per_group} * {groups} = {per_group * groups}; "
            f"w's third axis must be x.shape[3] // groups = {channels // groups}"
        )
    if b is not None:
        _checks.shape(fn, "b", b, (out,), "(out_channels,) = (w.shape[3],)")
    if kh == 0 or kw == 0:
        raise _checks.InputError(f"{fn}: `w` must have a non-empty window; got shape {w.shape}")
    window = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    shapes = f"x shape {x.shape}, w shape {w.shape}, dilated kernel {window}"
    h, wg = geometry(fn, x, window, stride, padding, shapes=shapes)
    return _Conv(stride, dilation, groups, h, wg)


@op
def conv2d(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None,
    *,
    stride: int | Pair = 1,
    padding: Padding = "SAME",
    dilation: int | Pair = 1,
    groups: int = 1,
) -> jax.Array:
    """2-D convolution (cross-correlation, as in every framework): NHWC in, HWIO kernel.

    With ``x`` padded by zeros (``xp``), ``G = groups``, ``Cg = C // G``,
    ``Og = O // G``, and output channel ``o`` in group ``g = o // Og``::

        y[n, i, j, o] = b[o] + sum_{p, q, c < Cg} xp[n, i*sh + p*dh, j*sw + q*dw, g*Cg + c]
                                                  * w[p, q, c, o]

    Layout: ``x`` is ``(N, H, W, C)`` and ``w`` is ``(KH, KW, C // groups, O)``,
    flax's and TensorFlow's layout. PyTorch stores ``x`` as ``(N, C, H, W)`` and
    ``w`` as ``(O, C // groups, KH, KW)``: convert with
    ``x.transpose(0, 2, 3, 1)`` and ``w.transpose(2, 3, 1, 0)``, and the output
    back with ``y.transpose(0, 3, 1, 2)``; the group of a channel is the same in
    both (contiguous blocks of ``C // groups`` inputs and ``O // groups`` outputs).
    ``groups = C`` with ``O = m * C`` is the depthwise convolution.

    Padding: "SAME" gives ``ceil(H / stride)`` rows, padding
    ``(out - 1) * stride + (KH - 1) * dilation + 1 - H`` rows in total, half
    (rounded down) above and the rest below (lax's and flax's rule; PyTorch's
    ``padding="same"``, stride 1 only, is the same); "VALID" pads nothing;
    ``((lo, hi), (lo, hi))`` pads rows and columns explicitly (PyTorch's
    ``padding=p`` is ``((p, p), (p, p))``). Output rows
    ``floor((H + lo + hi - (KH - 1) * dilation - 1) / stride) + 1``; rows of the
    padded input past the last window are read by none.

    Derivative (``ek = (KH - 1) * dilation + 1``, and likewise along W):

    - ``dx``: a transposed convolution: ``dy`` dilated by the stride (``stride - 1``
      zeros between entries), convolved with the kernel flipped in H and W with its
      input and output channels swapped (per group), at the kernel's dilation,
      padded by ``ek - 1 - lo`` above and ``ek - 1 - hi + rest`` below, where
      ``rest = (H + lo + hi - ek) % stride`` are the rows no window reads (their
      gradient is 0).
    - ``dw``: the convolution of ``xp`` with ``dy`` (dilated by the stride) as the
      kernel, at window stride ``dilation``, summed over the batch: the batch axis
      is contracted as the channel axis is in the forward; for ``groups > 1`` the
      input channels are split into the groups as the output channels are
      (``batch_group_count``).
    - ``db = sum(dy)`` over N, H and W.

    Args:
      x: ``(N, H, W, C)``, floating.
      w: ``(KH, KW, C // groups, O)``, the dtype of ``x``.
      b: ``(O,)``, or None for no bias (as before a batch norm, whose shift
        takes its place); its gradient is then None.
      stride: an int or ``(along H, along W)``, >= 1.
      padding: "SAME", "VALID" or ``((lo, hi), (lo, hi))`` of ints >= 0.
      dilation: the kernel's (rhs) dilation, an int or a pair, >= 1.
      groups: divides C and O (``feature_group_count``).

    Returns:
      ``y``, ``(N, OH, OW, O)``.

    Numerics: sums of products only; the forward is ``lax.conv_general_dilated``
    at the default precision (on GPUs float32 may use TF32, as every JAX
    matrix product does; set ``jax.default_matmul_precision`` to change it).

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import layers
      >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
      >>> w = jnp.ones((2, 2, 1, 1))  # the sum over each 2x2 window
      >>> layers.conv2d(x, w, None, padding="VALID", stride=2)[0, :, :, 0]
      Array([[10., 18.],
             [42., 50.]], dtype=float32)

    References:
      Dumoulin and Visin, A guide to convolution arithmetic for deep learning,
      arXiv:1603.07285 (2016): output sizes, and the transposed convolution as
      the gradient of a convolution.
    """
    c = _check_conv2d(x, w, b, stride, padding, dilation, groups)
    y = lax.conv_general_dilated(
        x,
        w,
        window_strides=c.stride,
        padding=[(c.h.lo, c.h.hi), (c.w.lo, c.w.hi)],
        rhs_dilation=c.dilation,
        dimension_numbers=_NHWC,
        feature_group_count=c.groups,
    )
    return y if b is None else y + bias_row(b, 4)


def _conv2d_fwd(x, w, b, *, stride=1, padding="SAME", dilation=1, groups=1):
    y = conv2d.autodiff(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return y, (x, w, b)


def _conv2d_bwd(res, dy, *, stride=1, padding="SAME", dilation=1, groups=1):
    x, w, b = res
    c = _check_conv2d(x, w, None, stride, padding, dilation, groups)
    kh, kw, per_group, out = w.shape
    # dx: a convolution of the stride-dilated dy with the flipped kernel, its
    # channels swapped per group: w[p, q, c, g*Og + j] becomes w_t[KH-1-p, KW-1-q, j, g*Cg + c].
    w_t = w.reshape(kh, kw, per_group, groups, out // groups)
    w_t = w_t.transpose(0, 1, 4, 3, 2).reshape(kh, kw, out // groups, groups * per_group)
    w_t = w_t[::-1, ::-1]
    # x's row i receives dy[o] * w[p] wherever i = o*s + p*d - lo. In the dilated dy
    # (dy[o] at row o*s), padded by lo_t above, the flipped kernel's tap KH-1-p at row
    # i + (KH-1-p)*d reaches o*s + lo_t = i + (ek-1) - p*d, so lo_t = ek - 1 - lo. The
    # output must have H rows: lo_t + (OH-1)*s + 1 + hi_t - ek + 1 = H, and with
    # (OH-1)*s = H + lo + hi - ek - rest this gives hi_t = ek - 1 - hi + rest (either may
    # be negative, a crop: padding wider than the kernel reaches, or rows past the last
    # window).
    dx = lax.conv_general_dilated(
        dy,
        w_t,
        window_strides=(1, 1),
        padding=[(g.window - 1 - g.lo, g.window - 1 - g.hi + g.rest) for g in (c.h, c.w)],
        lhs_dilation=c.stride,
        rhs_dilation=c.dilation,
        dimension_numbers=_NHWC,
        feature_group_count=groups,
    )
    # dw[p, q, c, o] = sum_{n, i, j} xp[n, i*s + p*d, ., c'] dy[n, i, j, o]: a convolution
    # of xp (N as its channel axis, C as its batch) by dy (N in, O out) as the kernel,
    # dilated by s, at window stride d; the padding above is the forward's, below it is
    # cut by ``rest`` so that exactly KH taps come out.
    dw = lax.conv_general_dilated(
        x,
        dy,
        window_strides=c.dilation,
        padding=[(g.lo, g.hi - g.rest) for g in (c.h, c.w)],
        rhs_dilation=c.stride,
        dimension_numbers=("CHWN", "IHWO", "HWNC"),
        batch_group_count=groups,
    )
    db = None if b is None else jnp.sum(dy, axis=(0, 1, 2))
    return dx, dw, db


conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)
