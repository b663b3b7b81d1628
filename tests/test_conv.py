"""conv2d, max_pool2d and avg_pool2d beyond the registry's one configuration each:
the hand-written backward against autodiff over strides, dilations, paddings and
groups; forwards against loops written out in NumPy, flax and PyTorch's layout; the
max-pooling tie rule; the average-pooling divisor; batch norm on NHWC input; and
bad input."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import BACKWARD_RTOL, PEER_RTOL, assert_close

from dlref import InputError, gradcheck, layers

f64 = jnp.float64


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


def _pads(size, window, stride, padding):
    """(lo, hi) per spatial axis, by lax's rule for "SAME"."""
    if padding == "VALID":
        return [(0, 0), (0, 0)]
    if padding == "SAME":
        pads = []
        for n, k, s in zip(size, window, stride, strict=True):
            out = -(-n // s)
            total = max((out - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
        return pads
    return list(padding)


def conv_loop(x, w, b, stride, padding, dilation, groups):
    """The docstring's formula, one output cell at a time, in NumPy float64."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    kh, kw, cg, o = w.shape
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    eff = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    (lh, hh), (lw, hw) = _pads(x.shape[1:3], eff, (sh, sw), padding)
    xp = np.pad(x, [(0, 0), (lh, hh), (lw, hw), (0, 0)])
    oh, ow = (xp.shape[1] - eff[0]) // sh + 1, (xp.shape[2] - eff[1]) // sw + 1
    og = o // groups
    y = np.zeros((x.shape[0], oh, ow, o))
    for i, j, out in itertools.product(range(oh), range(ow), range(o)):
        g = out // og
        patch = xp[:, i * sh : i * sh + eff[0] : dh, j * sw : j * sw + eff[1] : dw]
        patch = patch[..., g * cg : (g + 1) * cg]
        y[:, i, j, out] = np.einsum("npqc,pqc->n", patch, w[..., out])
    return y if b is None else y + np.asarray(b)


@pytest.fixture
def rng(request):
    """NumPy draws, seeded by the test's name: no PRNG program to compile per shape."""
    return np.random.default_rng(sum(ord(c) * (i + 1) for i, c in enumerate(request.node.nodeid)))


def _normal(rng, shape):
    return jnp.asarray(rng.standard_normal(shape))


def _conv_inputs(rng, shape, kernel, c_out, groups, bias=True):
    x = _normal(rng, shape)
    w = _normal(rng, (*kernel, shape[3] // groups, c_out))
    return x, w, _normal(rng, (c_out,)) if bias else None


def _out_shape(op, *args, **hyper):
    return jax.eval_shape(functools.partial(op, **hyper), *args).shape


def _vjp_pair(fn, args, ct):
    """(output, gradients) of ``fn`` at ``args``, jitted."""

    def run(args, ct):
        out, vjp = jax.vjp(fn, *args)
        return out, vjp(ct)

    return jax.jit(run)(args, ct)


def _check_backward(op, args, ct, **hyper):
    """The hand-written pullback of ``op`` equals autodiff's (float64), both in one
    jitted program; returns the hand-written ``(output, gradients)``."""

    def run(args, ct):
        pullbacks = []
        for fn in (op, op.autodiff):
            out, vjp = jax.vjp(functools.partial(fn, **hyper), *args)
            pullbacks.append((out, vjp(ct)))
        return pullbacks

    manual, autodiff = jax.jit(run)(args, ct)
    assert_close(manual, autodiff, BACKWARD_RTOL, str(hyper))
    return manual


# --- conv2d: hand-written backward = autodiff ------------------------------------

# Every stride (1, 2, 3 and a mixed pair) with every padding ("SAME", "VALID", and
# explicit asymmetric pads, one wider than the kernel reaches) and every grouping
# (1, 2, depthwise: groups = C with two outputs per channel); dilations 1 and 2
# alternate. H = 9 and W = 8 leave cells past the last window for strides 2 and 3.
STRIDES = [1, 2, 3, (2, 3)]
PADDINGS = ["SAME", "VALID", ((2, 0), (1, 3))]
GROUPS = [1, 2, "depthwise"]
CONV_CASES = [
    (stride, padding, groups, 1 + (i % 2))
    for i, (stride, padding, groups) in enumerate(itertools.product(STRIDES, PADDINGS, GROUPS))
]


def _case_id(case):
    stride, padding, groups, dilation = case
    pad = padding if isinstance(padding, str) else "explicit"
    return f"s{stride}-{pad}-g{groups}-d{dilation}".replace(" ", "")


def _sampled(cases, every: int) -> list:
    """Every ``every``-th case in the default run, all of them under ``-m slow`` (the
    default run stays under 10 minutes on 2 cores; the sampled ones span each axis)."""
    return [
        c if i % every == 0 else pytest.param(c, marks=pytest.mark.slow)
        for i, c in enumerate(cases)
    ]


@pytest.mark.parametrize("case", _sampled(CONV_CASES, every=5), ids=_case_id)
def test_conv2d_backward_matches_autodiff(case, rng):
    stride, padding, groups, dilation = case
    c_in = 4
    groups, c_out = (c_in, 2 * c_in) if groups == "depthwise" else (groups, 6)
    args = _conv_inputs(rng, (2, 9, 8, c_in), (3, 2), c_out, groups)
    hyper = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    ct = _normal(rng, _out_shape(layers.conv2d, *args, **hyper))
    y, _ = _check_backward(layers.conv2d, args, ct, **hyper)
    # and the forward is the formula, written out
    expected = conv_loop(*args, stride, padding, dilation, groups)
    assert_close(y, expected, PEER_RTOL[f64])


@pytest.mark.parametrize("kernel, dilation", [((1, 1), 1), ((5, 4), 1), ((3, 3), 3)])
def test_conv2d_backward_matches_autodiff_for_other_kernels(kernel, dilation, rng):
    """1x1, a kernel about as large as the input, and a dilation that spreads a 3x3
    kernel over 7x7, at stride 2 with "SAME" padding."""
    args = _conv_inputs(rng, (2, 7, 6, 3), kernel, 5, 1)
    hyper = {"stride": 2, "dilation": dilation}
    ct = _normal(rng, _out_shape(layers.conv2d, *args, **hyper))
    _check_backward(layers.conv2d, args, ct, **hyper)


def test_conv2d_rows_past_the_last_window_get_zero_gradient(rng):
    """6 rows, kernel 3, stride 2, "VALID": windows start at rows 0 and 2, so row 5
    is read by none; the transposed convolution's extra padding (``rest``) gives it 0."""
    x, w, b = _conv_inputs(rng, (1, 6, 6, 1), (3, 3), 1, 1)
    dx = jax.grad(lambda x: jnp.sum(layers.conv2d(x, w, b, stride=2, padding="VALID") ** 2))(x)
    assert np.all(dx[:, 5] == 0) and np.all(dx[:, :, 5] == 0)
    assert np.all(dx[:, 4, :5] != 0) and np.all(dx[:, :5, 4] != 0)


def test_conv2d_without_bias(rng):
    """b = None: no bias is added, and its gradient is None; x's and w's are those
    of a zero bias."""
    x, w, _ = _conv_inputs(rng, (2, 5, 5, 3), (3, 3), 4, 1)
    zero = jnp.zeros(4, f64)
    assert_close(layers.conv2d(x, w, None), layers.conv2d(x, w, zero), 0.0)
    ct = _normal(rng, (2, 5, 5, 4))
    _, (dx, dw, db) = _vjp_pair(layers.conv2d, (x, w, None), ct)
    assert db is None
    _, expected = _vjp_pair(layers.conv2d.autodiff, (x, w, zero), ct)
    assert_close((dx, dw), expected[:2], BACKWARD_RTOL)


def test_conv2d_from_pytorch_layout_by_the_docstring_transposes(rng):
    """PyTorch's NCHW input and OIHW kernel (here through lax in that layout),
    transposed as the docstring says, give conv2d's NHWC result transposed."""
    x, w, _ = _conv_inputs(rng, (2, 7, 6, 4), (3, 2), 6, 2, bias=False)
    x_nchw, w_oihw = jnp.transpose(x, (0, 3, 1, 2)), jnp.transpose(w, (3, 2, 0, 1))
    torch_like = jax.lax.conv_general_dilated(
        x_nchw,
        w_oihw,
        window_strides=(2, 1),
        padding=[(1, 1), (0, 0)],
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        feature_group_count=2,
    )
    mine = layers.conv2d(
        x_nchw.transpose(0, 2, 3, 1),
        w_oihw.transpose(2, 3, 1, 0),
        None,
        stride=(2, 1),
        padding=((1, 1), (0, 0)),
        groups=2,
    )
    assert_close(mine.transpose(0, 3, 1, 2), torch_like, PEER_RTOL[f64])


@pytest.mark.parametrize("padding", ["SAME", "VALID", ((0, 2), (1, 1))])
def test_conv2d_matches_flax_conv(padding, rng):
    """flax linen Conv, values and gradients, depthwise at stride 2 and dilation 2."""
    from dlref import _peers

    hyper = {"stride": 2, "padding": padding, "dilation": 2, "groups": 3}
    args = _conv_inputs(rng, (2, 9, 7, 3), (3, 3), 6, 3)
    peer = _peers.conv2d(**hyper)
    ct = _normal(rng, _out_shape(layers.conv2d, *args, **hyper))
    with jax.numpy_dtype_promotion("standard"):
        expected = _vjp_pair(peer, args, ct)
    assert_close(_vjp_pair(lambda *a: layers.conv2d(*a, **hyper), args, ct), expected, 1e-12)


# --- pooling --------------------------------------------------------------------


def pool_loop(x, window, stride, padding, kind, count_include_pad=True):
    """Max or average pooling written out in NumPy float64, with the arg-max (first
    maximum in row-major window order) of every window for max pooling."""
    x = np.asarray(x, np.float64)
    (kh, kw) = _pair(window)
    (sh, sw) = _pair(window if stride is None else stride)
    (lh, hh), (lw, hw) = _pads(x.shape[1:3], (kh, kw), (sh, sw), padding)
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, [(0, 0), (lh, hh), (lw, hw), (0, 0)], constant_values=fill)
    real = np.pad(np.ones(x.shape[1:3]), [(lh, hh), (lw, hw)])
    oh, ow = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
    y = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    argmax = np.zeros(y.shape, int)
    for i, j in itertools.product(range(oh), range(ow)):
        rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
        cells = xp[:, rows, cols].reshape(x.shape[0], kh * kw, x.shape[3])
        if kind == "max":
            y[:, i, j] = cells.max(axis=1)
            argmax[:, i, j] = cells.argmax(axis=1)  # NumPy's argmax: the first maximum
        else:
            divisor = kh * kw if count_include_pad else real[rows, cols].sum()
            y[:, i, j] = cells.sum(axis=1) / divisor
    return y, argmax, (lh, lw), (sh, sw), (kh, kw)


def max_pool_grad_by_rule(x, dy, window, stride, padding):
    """The tie rule: each window's gradient, whole, to its first maximum."""
    _, argmax, (lh, lw), (sh, sw), (_, kw) = pool_loop(x, window, stride, padding, "max")
    dx = np.zeros(x.shape)
    for n, i, j, c in itertools.product(*map(range, argmax.shape)):
        p, q = divmod(argmax[n, i, j, c], kw)
        dx[n, i * sh + p - lh, j * sw + q - lw, c] += dy[n, i, j, c]
    return dx


# Each window with each stride and each padding at least once (pairwise).
POOL_CASES = [
    (2, None, "VALID"),
    (2, 1, "SAME"),
    (2, (3, 1), ((1, 0), (0, 1))),
    (2, 2, "SAME"),
    (3, None, "SAME"),
    (3, 1, ((1, 0), (0, 1))),
    (3, 2, "VALID"),
    (3, (3, 1), "SAME"),
    ((2, 3), None, ((1, 0), (0, 1))),
    ((2, 3), 1, "VALID"),
    ((2, 3), 2, ((1, 0), (0, 1))),
    ((2, 3), (3, 1), "VALID"),
]


def _pool_id(case):
    window, stride, padding = case
    pad = padding if isinstance(padding, str) else "explicit"
    return f"w{window}-s{stride}-{pad}".replace(" ", "")


@pytest.mark.parametrize("case", _sampled(POOL_CASES, every=2), ids=_pool_id)
def test_pool_backward_matches_autodiff_and_the_loop(case, rng):
    """x of 7x8 (windows past the edge, cells past the last window), float64; for
    max pooling, also on integer values, where windows hold ties."""
    window, stride, padding = case
    x = _normal(rng, (2, 7, 8, 3))
    hyper = {"window": window, "stride": stride, "padding": padding}
    for op, kind, extra in (
        (layers.max_pool2d, "max", {}),
        (layers.avg_pool2d, "avg", {"count_include_pad": True}),
        (layers.avg_pool2d, "avg", {"count_include_pad": False}),
    ):
        expected, *_ = pool_loop(x, window, stride, padding, kind, **extra)
        ct = _normal(rng, expected.shape)
        inputs = (x, jnp.round(2 * x)) if kind == "max" else (x,)
        for point in inputs:
            manual = _check_backward(op, (point,), ct, **hyper, **extra)
        value, *_ = pool_loop(inputs[-1], window, stride, padding, kind, **extra)
        assert_close(manual[0], value, PEER_RTOL[f64], f"{kind} {extra}")
        if kind == "max":
            rule = max_pool_grad_by_rule(inputs[-1], np.asarray(ct), window, stride, padding)
            assert_close(manual[1][0], rule, BACKWARD_RTOL, "tie rule")


def test_max_pool_ties_go_to_the_first_maximum_in_row_major_order():
    """Windows of 2x2 at stride 1 over a grid of equal values with one larger:
    each window's gradient goes to its top-left-most maximum; a cell that is the
    first maximum of two windows gets both. Autodiff (select_and_scatter) does the
    same; jax.grad of jnp.max over the window's cells would split it instead."""
    x = jnp.asarray([[1.0, 3.0, 3.0], [3.0, 0.0, 3.0], [2.0, 3.0, 1.0]], f64).reshape(1, 3, 3, 1)
    dy = jnp.asarray([[1.0, 10.0], [100.0, 1000.0]], f64).reshape(1, 2, 2, 1)
    # window (0,0) = [1 3; 3 0]: first max (0,1); (0,1) = [3 3; 0 3]: (0,1) again;
    # (1,0) = [3 0; 2 3]: (1,0); (1,1) = [0 3; 3 1]: (1,2)
    expected = np.array([[0.0, 11.0, 0.0], [100.0, 0.0, 1000.0], [0.0, 0.0, 0.0]])
    for fn in (layers.max_pool2d, layers.max_pool2d.autodiff):
        _, vjp = jax.vjp(lambda x, fn=fn: fn(x, window=2, stride=1), x)
        np.testing.assert_array_equal(vjp(dy)[0][0, :, :, 0], expected)
    equal = jnp.ones((1, 2, 2, 1), f64)
    np.testing.assert_array_equal(
        jax.grad(lambda x: layers.max_pool2d(x, window=2).sum())(equal)[0, :, :, 0],
        [[1.0, 0.0], [0.0, 0.0]],
    )
    split = jax.grad(lambda x: jnp.max(x))(equal)
    np.testing.assert_array_equal(split[0, :, :, 0], [[0.25, 0.25], [0.25, 0.25]])


def test_max_pool_padding_never_wins(rng):
    """Padded cells are -inf: with all-negative input, "SAME" padding changes no maximum."""
    x = jnp.asarray(-1.0 - rng.uniform(size=(1, 5, 5, 2)))
    y = layers.max_pool2d(x, window=3, stride=2, padding="SAME")
    assert np.all(y < -1.0)
    expected, *_ = pool_loop(x, 3, 2, "SAME", "max")
    assert_close(y, expected, 0.0)


def test_avg_pool_divisor_counts_padding_by_default():
    """Ones, 3x3, window 2 stride 2 "SAME" (one padded row and column below/right):
    the default divides by 4 everywhere (flax's and PyTorch's default); with
    count_include_pad=False every mean of ones is 1."""
    x = jnp.ones((1, 3, 3, 1), f64)
    with_pad = layers.avg_pool2d(x, window=2, padding="SAME")
    np.testing.assert_array_equal(with_pad[0, :, :, 0], [[1.0, 0.5], [0.5, 0.25]])
    without = layers.avg_pool2d(x, window=2, padding="SAME", count_include_pad=False)
    np.testing.assert_array_equal(without[0, :, :, 0], np.ones((2, 2)))
    # the gradient: each cell gets dy / divisor from each window holding it
    g = jax.grad(lambda x: layers.avg_pool2d(x, window=2, padding="SAME").sum())(x)
    np.testing.assert_array_equal(g, jnp.full(x.shape, 0.25))
    g = jax.grad(
        lambda x: layers.avg_pool2d(x, window=2, padding="SAME", count_include_pad=False).sum()
    )(x)
    np.testing.assert_array_equal(
        g[0, :, :, 0], [[0.25, 0.25, 0.5], [0.25, 0.25, 0.5], [0.5, 0.5, 1.0]]
    )


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("padding", ["SAME", ((1, 1), (2, 0))])
def test_pools_match_flax(padding, count_include_pad, rng):
    from dlref import _peers

    x = _normal(rng, (2, 7, 6, 3))
    hyper = {"window": 3, "stride": 2, "padding": padding}
    with jax.numpy_dtype_promotion("standard"):  # flax's divisor is an int64 count
        avg = _peers.avg_pool2d(**hyper, count_include_pad=count_include_pad)(x)
    assert_close(layers.avg_pool2d(x, **hyper, count_include_pad=count_include_pad), avg, 1e-12)
    assert_close(layers.max_pool2d(x, **hyper), _peers.max_pool2d(**hyper)(x), 0.0)


# --- batch norm on NHWC input ------------------------------------------------------


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_on_nhwc_matches_flax(training, rng):
    """Statistics over N, H and W per channel (every axis but the last): flax's
    BatchNorm on the same (N, H, W, C) input gives the same y, running statistics
    and gradients (x, scale, shift) for a random cotangent."""
    from dlref import _peers

    x = 3.0 + 2.0 * _normal(rng, (4, 5, 6, 3))
    scale = jnp.asarray(rng.uniform(0.5, 2.0, 3))
    shift = _normal(rng, (3,))
    state = layers.BatchNormState(_normal(rng, (3,)), jnp.asarray(rng.uniform(0.5, 2.0, 3)))
    ct = _normal(rng, x.shape)
    peer = _peers.batch_norm(training=training)

    def run(fn):
        def f(x, scale, shift):
            y, new_state = fn(x, scale, shift, state)
            return jnp.vdot(ct, y), (y, new_state)

        return jax.jit(jax.grad(f, argnums=(0, 1, 2), has_aux=True))(x, scale, shift)

    mine = run(lambda *a: layers.batch_norm(*a, training=training))
    with jax.numpy_dtype_promotion("standard"):
        theirs = run(peer)
    assert_close(mine, theirs, 1e-10)
    if training:  # per channel, over N, H and W
        mean = jnp.mean(x, axis=(0, 1, 2))
        assert_close(mine[1][1].mean, 0.99 * state.mean + 0.01 * mean, 1e-12)


# --- bad input ------------------------------------------------------------------

x4 = jnp.ones((2, 5, 5, 3), f64)
w4 = jnp.ones((3, 3, 3, 4), f64)
b4 = jnp.ones((4,), f64)

ERROR_CASES = [
    (
        "conv channels",
        lambda: layers.conv2d(jnp.ones((2, 5, 5, 5), f64), w4, b4),
        r"conv2d: `x` has 5 channels but `w` \(HWIO, shape \(3, 3, 3, 4\)\) takes "
        r"in_channels \* groups = 3 \* 1 = 3",
    ),
    (
        "conv channels grouped",
        lambda: layers.conv2d(
            jnp.ones((2, 5, 5, 4), f64), jnp.ones((3, 3, 4, 4), f64), b4, groups=2
        ),
        r"conv2d: `x` has 4 channels but `w` .* takes in_channels \* groups = 4 \* 2 = 8",
    ),
    (
        "conv groups divide",
        lambda: layers.conv2d(x4, jnp.ones((3, 3, 1, 4), f64), b4, groups=2),
        r"conv2d: `groups` 2 must divide the input channels .* 3.* got x shape \(2, 5, 5, 3\)",
    ),
    (
        "conv groups outputs",
        lambda: layers.conv2d(
            jnp.ones((2, 5, 5, 4), f64), jnp.ones((3, 3, 2, 3), f64), jnp.ones(3, f64), groups=2
        ),
        r"conv2d: `groups` 2 must divide .* the output channels \(w's last axis, 3\)",
    ),
    ("conv groups zero", lambda: layers.conv2d(x4, w4, b4, groups=0), r"`groups` must be a pos"),
    (
        "conv rank",
        lambda: layers.conv2d(jnp.ones((5, 5, 3), f64), w4, b4),
        r"conv2d: `x` must have rank 4; got shape \(5, 5, 3\)",
    ),
    (
        "conv kernel rank",
        lambda: layers.conv2d(x4, jnp.ones((3, 3, 4), f64), b4),
        r"conv2d: `w` must have rank 4; got shape \(3, 3, 4\)",
    ),
    (
        "conv bias shape",
        lambda: layers.conv2d(x4, w4, jnp.ones(3, f64)),
        r"conv2d: `b` must have shape \(4,\) .*; got \(3,\)",
    ),
    (
        "conv padding string",
        lambda: layers.conv2d(x4, w4, b4, padding="FULL"),
        r'conv2d: `padding` must be "SAME", "VALID" or \(\(lo, hi\), \(lo, hi\)\).*got \'FULL\'',
    ),
    (
        "conv padding int",
        lambda: layers.conv2d(x4, w4, b4, padding=1),
        r"conv2d: `padding` must be .*; got 1",
    ),
    (
        "conv padding negative",
        lambda: layers.conv2d(x4, w4, b4, padding=((1, -1), (0, 0))),
        r"conv2d: `padding` must be .* ints >= 0",
    ),
    (
        "conv padding list",
        lambda: layers.conv2d(x4, w4, b4, padding=[(1, 1), (1, 1)]),
        r"conv2d: `padding` must be hashable \(a tuple, not a list\)",
    ),
    (
        "conv stride 0",
        lambda: layers.conv2d(x4, w4, b4, stride=0),
        r"conv2d: `stride` must be a pos.*got 0",
    ),
    (
        "conv stride negative pair",
        lambda: layers.conv2d(x4, w4, b4, stride=(1, -2)),
        r"conv2d: `stride` must be a positive int or a pair of positive ints .*got \(1, -2\)",
    ),
    ("conv dilation 0", lambda: layers.conv2d(x4, w4, b4, dilation=0), r"`dilation` must be a pos"),
    (
        "conv kernel too large",
        lambda: layers.conv2d(x4, jnp.ones((3, 3, 3, 4), f64), b4, padding="VALID", dilation=3),
        r"conv2d: the window \(7 along H\) is larger than the padded input \(5 \+ 0 \+ 0 = 5\); "
        r"x shape \(2, 5, 5, 3\), w shape \(3, 3, 3, 4\)",
    ),
    (
        "conv dtypes",
        lambda: layers.conv2d(x4, w4.astype(jnp.float32), b4),
        r"conv2d: arguments must share one dtype",
    ),
    (
        "conv integer",
        lambda: layers.conv2d(jnp.ones((2, 5, 5, 3), int), w4, b4),
        r"conv2d: `x` must be a floating array",
    ),
    (
        "max pool rank",
        lambda: layers.max_pool2d(jnp.ones((5, 5, 3), f64), window=2),
        r"max_pool2d: `x` must have rank 4; got shape \(5, 5, 3\)",
    ),
    (
        "avg pool rank",
        lambda: layers.avg_pool2d(jnp.ones((1, 2, 5, 5, 3), f64), window=2),
        r"avg_pool2d: `x` must have rank 4",
    ),
    (
        "pool window too large",
        lambda: layers.max_pool2d(x4, window=(2, 6)),
        r"max_pool2d: the window \(6 along W\) is larger than the padded input "
        r"\(5 \+ 0 \+ 0 = 5\); x shape \(2, 5, 5, 3\)",
    ),
    (
        "pool window 0",
        lambda: layers.avg_pool2d(x4, window=0),
        r"avg_pool2d: `window` must be a positive int",
    ),
    (
        "pool stride 0",
        lambda: layers.max_pool2d(x4, window=2, stride=(0, 1)),
        r"max_pool2d: `stride` must be a positive int or a pair .*got \(0, 1\)",
    ),
    (
        "pool padding string",
        lambda: layers.avg_pool2d(x4, window=2, padding="CIRCULAR"),
        r'avg_pool2d: `padding` must be "SAME", "VALID"',
    ),
    (
        "pool padding wide",
        lambda: layers.max_pool2d(x4, window=2, padding=((2, 0), (0, 0))),
        r"max_pool2d: padding \(2, 0\) along H must be smaller than the window \(2\)",
    ),
    ("pool window missing", lambda: layers.max_pool2d(x4), r"max_pool2d.*window"),
]


@pytest.mark.parametrize(
    "call, match", [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_bad_input_raises_a_clear_error(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_bad_input_raises_under_jit_and_grad():
    """The checks are on shapes and hyperparameters: at trace time, on every path."""
    bad = jnp.ones((2, 5, 5, 5), f64)
    with pytest.raises(InputError, match="conv2d: `x` has 5 channels"):
        jax.jit(lambda x: layers.conv2d(x, w4, b4))(bad)
    with pytest.raises(InputError, match="conv2d: `x` has 5 channels"):
        jax.grad(lambda x: layers.conv2d(x, w4, b4).sum())(bad)
    with pytest.raises(InputError, match="max_pool2d: the window"):
        jax.grad(lambda x: layers.max_pool2d(x, window=6).sum())(x4)


def test_lowercase_padding_names_are_accepted(rng):
    x, w, b = _conv_inputs(rng, (1, 5, 5, 3), (3, 3), 2, 1)
    assert_close(
        layers.conv2d(x, w, b, padding="valid"), layers.conv2d(x, w, b, padding="VALID"), 0.0
    )


def test_check_vjp_on_a_jitted_conv_net(rng, key):
    """conv -> max pool -> avg pool -> conv composed, under jit: the hand-written
    pullbacks chain as autodiff's do."""
    x, w1, w2 = (_normal(rng, s) for s in [(2, 9, 9, 3), (3, 3, 3, 4), (2, 2, 4, 2)])

    def net(conv, maxp, avgp):
        def f(x, w1, w2):
            h = maxp(conv(x, w1, None, stride=1), window=3, stride=2, padding="SAME")
            return conv(avgp(h, window=2, stride=1), w2, None, padding="VALID")

        return jax.jit(f)

    manual = net(layers.conv2d, layers.max_pool2d, layers.avg_pool2d)
    autodiff = net(layers.conv2d.autodiff, layers.max_pool2d.autodiff, layers.avg_pool2d.autodiff)
    gradcheck.check_vjp(manual, autodiff, x, w1, w2, key=key)
