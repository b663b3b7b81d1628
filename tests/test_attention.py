"""dot_product_attention beyond the registry's checks: masks of every broadcast
shape, the causal alignment, fully masked rows, key blocks, jax.nn's
conventions, bad input and memory; and embedding, the transformer's other
input layer: its out-of-range ids, eagerly and under jit."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import BACKWARD_RTOL, assert_close

# The public name is print_saved_residuals; jax's tests use this function.
from jax._src.ad_checkpoint import saved_residuals

from dlref import InputError, gradcheck
from dlref.layers import dot_product_attention, embedding

attention = dot_product_attention


def _qkv(key, batch=2, t_q=5, t_k=7, heads=2, dim=4, dtype=jnp.float64):
    kq, kk, kv = jax.random.split(key, 3)
    return (
        jax.random.normal(kq, (batch, t_q, heads, dim), dtype),
        jax.random.normal(kk, (batch, t_k, heads, dim), dtype),
        jax.random.normal(kv, (batch, t_k, heads, dim), dtype),
    )


@functools.cache
def _pullback(hand: bool, causal: bool, block_size: int, scale):
    """jit((q, k, v, mask, cotangent) -> (y, dq, dk, dv)), hand-written or autodiff."""
    fn = attention if hand else attention.autodiff

    def run(q, k, v, mask, ct):
        f = lambda q, k, v: fn(
            q, k, v, mask=mask, causal=causal, scale=scale, block_size=block_size
        )
        y, vjp = jax.vjp(f, q, k, v)
        return y, vjp(ct)

    return jax.jit(run)


def _both(q, k, v, mask=None, *, causal=False, block_size=128, scale=None, key=None):
    ct = gradcheck.random_like(key if key is not None else jax.random.key(9), q)
    hand = _pullback(True, causal, block_size, scale)(q, k, v, mask, ct)
    auto = _pullback(False, causal, block_size, scale)(q, k, v, mask, ct)
    return hand, auto


def _mask(key, shape, p=0.6):
    return jax.random.bernoulli(key, p, shape)


# --- hand-written backward = autodiff, everywhere -------------------------------


CASES = {
    # name: (t_q, t_k, mask shape or None, causal, block_size)
    "plain one block": (5, 5, None, False, 128),
    "T_q < T_k, blocks of 3, last padded": (5, 7, None, False, 3),
    "causal T_q = T_k": (6, 6, None, True, 4),
    "causal T_q < T_k, blocks of 2": (5, 9, None, True, 2),
    "full mask (B, H, T_q, T_k)": (5, 7, (2, 2, 5, 7), False, 3),
    "mask (T_q, T_k), rank 2": (5, 7, (5, 7), False, 4),
    "key padding mask (B, 1, 1, T_k)": (6, 7, (2, 1, 1, 7), False, 2),
    "query mask (1, H, T_q, 1)": (5, 7, (1, 2, 5, 1), True, 3),
    "blocks of 1 key": (4, 5, (1, 1, 4, 5), True, 1),
    "T_q > T_k without causal": (9, 4, (2, 1, 9, 4), False, 3),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_attention_backward_matches_autodiff(case, key):
    t_q, t_k, mask_shape, causal, block_size = CASES[case]
    k_qkv, k_mask, k_ct = jax.random.split(key, 3)
    q, k, v = _qkv(k_qkv, t_q=t_q, t_k=t_k)
    mask = None if mask_shape is None else _mask(k_mask, mask_shape)
    hand, auto = _both(q, k, v, mask, causal=causal, block_size=block_size, key=k_ct)
    assert_close(hand, auto, BACKWARD_RTOL, case)


def test_attention_custom_scale_reaches_the_backward(key):
    q, k, v = _qkv(key)
    hand, auto = _both(q, k, v, scale=0.3, block_size=3)
    assert_close(hand, auto, BACKWARD_RTOL)
    default, _ = _both(q, k, v, block_size=3)
    assert not np.allclose(hand[0], default[0])  # the scale is applied


def test_attention_block_size_does_not_change_the_result(key):
    """Only the order of the sums changes: float64 results agree to rounding."""
    k_qkv, k_mask = jax.random.split(key)
    q, k, v = _qkv(k_qkv, t_q=11, t_k=13)
    mask = _mask(k_mask, (2, 2, 11, 13))
    ct = gradcheck.random_like(jax.random.key(9), q)
    reference = _pullback(True, True, 128, None)(q, k, v, mask, ct)
    for block_size in (1, 5, 16):
        got = _pullback(True, True, block_size, None)(q, k, v, mask, ct)
        # 1e-13: sums of 13 terms regrouped, relative to the largest gradient
        assert_close(got, reference, 1e-13, f"block_size={block_size}")


# --- fully masked rows ------------------------------------------------------------


def test_fully_masked_rows_give_zero_output_and_zero_gradients(key):
    q, k, v = _qkv(key, t_q=4, t_k=6)
    mask = jnp.ones((2, 2, 4, 6), bool).at[0, 1, 2].set(False).at[1, :, 0].set(False)
    hand, auto = _both(q, k, v, mask, block_size=4)
    assert_close(hand, auto, BACKWARD_RTOL)
    y, (dq, _, _) = hand
    assert np.all(np.asarray(y[0, 2, 1]) == 0) and np.all(np.asarray(y[1, 0]) == 0)
    assert np.all(np.asarray(dq[0, 2, 1]) == 0) and np.all(np.asarray(dq[1, 0]) == 0)
    # the masked rows take nothing from any key: k and v's gradients ignore them
    ct = gradcheck.random_like(jax.random.key(9), q)
    ct_without = ct.at[0, 2, 1].set(0).at[1, 0].set(0)
    _, (_, dk, dv) = _pullback(True, False, 4, None)(q, k, v, mask, ct_without)
    assert_close(hand[1][1:], (dk, dv), 0.0)


def test_fully_masked_rows_differ_from_jax_nn_as_documented(key):
    """jax.nn masks with a large negative score: a fully masked row's softmax is
    uniform and its output the mean of all values; dlref gives 0."""
    q, k, v = _qkv(key, t_q=3, t_k=4, dtype=jnp.float32)
    mask = jnp.ones((1, 1, 3, 4), bool).at[0, 0, 1].set(False)
    ours = attention(q, k, v, mask=mask)
    theirs = jax.nn.dot_product_attention(q, k, v, mask=mask, implementation="xla")
    np.testing.assert_allclose(theirs[:, 1], jnp.mean(v, axis=1), rtol=1e-5)  # float32 sums
    assert np.all(np.asarray(ours[:, 1]) == 0)
    rows = np.array([0, 2])
    np.testing.assert_allclose(ours[:, rows], theirs[:, rows], rtol=1e-5, atol=1e-6)


def test_no_key_at_all_gives_zeros(key):
    q, _, _ = _qkv(key, t_k=0)
    k = v = jnp.zeros((2, 0, 2, 4))
    hand, auto = _both(q, k, v)
    assert_close(hand, auto, 0.0)
    assert np.all(np.asarray(hand[0]) == 0) and np.all(np.asarray(hand[1][0]) == 0)


# --- jax.nn's conventions --------------------------------------------------------


@pytest.mark.parametrize(
    "t_q, t_k, causal, mask_shape",
    [(6, 6, False, None), (5, 8, True, None), (6, 6, True, (2, 2, 6, 6)), (4, 7, False, (4, 7))],
)
def test_attention_matches_jax_nn_in_float32(t_q, t_k, causal, mask_shape, key):
    """Layout, scale, mask and causal alignment (tril of (T_q, T_k)) as jax.nn's
    XLA implementation: values and gradients, float32, masks without empty rows."""
    k_qkv, k_mask, k_ct = jax.random.split(key, 3)
    q, k, v = _qkv(k_qkv, t_q=t_q, t_k=t_k, dtype=jnp.float32)
    mask = None
    if mask_shape is not None:
        mask = _mask(k_mask, mask_shape).at[..., 0].set(True)  # every row attends key 0
    ct = gradcheck.random_like(k_ct, q)

    def pull(fn):
        y, vjp = jax.vjp(fn, q, k, v)
        return y, vjp(ct)

    ours = jax.jit(pull, static_argnums=0)(
        lambda q, k, v: attention(q, k, v, mask=mask, causal=causal, block_size=3)
    )
    theirs = jax.jit(pull, static_argnums=0)(
        lambda q, k, v: jax.nn.dot_product_attention(
            q, k, v, mask=mask, is_causal=causal, implementation="xla"
        )
    )
    assert_close(ours, theirs, 2e-5)  # float32: a few ulps of sums over T and head_dim


def test_jax_nn_is_float32_accurate_in_float64_as_documented(key):
    """jax.nn casts the scores to float32 for its softmax even for float64
    inputs, which is why dlref's registry peer is flax's attention."""
    q, k, v = _qkv(key)
    exact = attention(q, k, v)
    with jax.numpy_dtype_promotion("standard"):  # jax.nn mixes float32 and float64
        theirs = jax.nn.dot_product_attention(q, k, v)
    error = gradcheck.compare(theirs, exact)
    assert 1e-10 < error.max_rel < 1e-5, error


def test_default_scale_is_one_over_sqrt_head_dim(key):
    q, k, v = _qkv(key, dim=9)
    run = jax.jit(attention, static_argnames="scale")
    assert_close(run(q, k, v), run(q, k, v, scale=1 / 3), 0.0)


# --- half precision ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=["float16", "bfloat16"])
def test_attention_half_precision_is_close_to_float64(dtype, key):
    """Computed in float32 and rounded once: values and gradients within a few
    ulps of the half dtype from the float64 result, masks and blocks included."""
    k_qkv, k_mask, k_ct = jax.random.split(key, 3)
    q, k, v = _qkv(k_qkv, t_q=9, t_k=11)
    mask = _mask(k_mask, (2, 1, 9, 11)).at[0, 0, 3].set(False)
    ct = gradcheck.random_like(k_ct, q)

    def pull(args, ct):
        f = lambda q, k, v: attention(q, k, v, mask=mask, causal=True, block_size=4)
        y, vjp = jax.vjp(f, *args)
        return y, vjp(ct)

    half = pull(tuple(x.astype(dtype) for x in (q, k, v)), ct.astype(dtype))
    for leaf in jax.tree.leaves(half):
        assert leaf.dtype == dtype and np.all(np.isfinite(np.asarray(leaf, np.float64)))
    rounded = tuple(x.astype(dtype).astype(jnp.float64) for x in (q, k, v))
    exact = pull(rounded, ct.astype(dtype).astype(jnp.float64))
    eps = float(jnp.finfo(dtype).eps)
    assert_close(jax.tree.map(lambda a: a.astype(jnp.float64), half), exact, 4 * eps)


# --- bad input ---------------------------------------------------------------------


def _bad(**change):
    q, k, v = _qkv(jax.random.key(0), dtype=jnp.float32)
    args = {"q": q, "k": k, "v": v, **change}
    return args.pop("q"), args.pop("k"), args.pop("v"), args


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"q": jnp.zeros((5, 2, 4), jnp.float32)},
            r"`q` must have rank 4 \(batch, time, heads, head_dim\)",
        ),
        ({"v": jnp.zeros((2, 7, 2, 4, 1), jnp.float32)}, r"`v` must have rank 4"),
        (
            {"k": jnp.zeros((3, 7, 2, 4), jnp.float32)},
            r"`k` must have shape .*\(2, T_k, 2, 4\).*got \(3, 7",
        ),
        ({"k": jnp.zeros((2, 7, 3, 4), jnp.float32)}, r"`k` must have shape .*got \(2, 7, 3, 4\)"),
        ({"k": jnp.zeros((2, 7, 2, 5), jnp.float32)}, r"`k` must have shape .*got \(2, 7, 2, 5\)"),
        (
            {"v": jnp.zeros((2, 6, 2, 4), jnp.float32)},
            r"`v` must have the shape of `k` \(2, 7, 2, 4\)",
        ),
        (
            {"v": jnp.zeros((2, 7, 2, 4), jnp.float64)},
            r"arguments must share one dtype; got `q` float32, `k` float32, `v` float64",
        ),
        ({"q": jnp.zeros((2, 5, 2, 4), jnp.int32)}, r"`q` must be a floating array"),
        ({"mask": jnp.ones((2, 2, 5, 6), bool)}, r"`mask` must broadcast to .* \(2, 2, 5, 7\)"),
        ({"mask": jnp.ones((3, 1, 1, 7), bool)}, r"`mask` must broadcast to"),
        ({"mask": jnp.ones((1, 2, 2, 5, 7), bool)}, r"`mask` must broadcast to"),
        ({"mask": jnp.ones((5, 7), jnp.float32)}, r"`mask` must be boolean"),
        (
            {"q": jnp.zeros((2, 8, 2, 4), jnp.float32), "causal": True},
            r"causal=True needs T_q <= T_k",
        ),
        ({"block_size": 0}, r"`block_size` must be an int >= 1"),
        ({"scale": float("nan")}, r"`scale` must be finite"),
    ],
)
def test_attention_bad_input_raises(change, message):
    q, k, v, kwargs = _bad(**change)
    with pytest.raises(InputError, match=rf"dot_product_attention: {message}"):
        attention(q, k, v, **kwargs)


def test_attention_bad_shapes_raise_under_jit():
    """Shape checks are static: they raise at trace time under jit too."""
    q, k, _, _ = _bad()
    with pytest.raises(InputError, match="`v` must have the shape of `k`"):
        jax.jit(attention)(q, k, k[:, :3])


# --- memory ------------------------------------------------------------------------


def test_attention_keeps_no_square_array_for_the_backward(key):
    """The residuals are q, k, v (arguments), the output and the per-row
    log-sum-exp: nothing of T_q x T_k entries, where autodiff keeps several."""
    q, k, v = _qkv(key, t_q=48, t_k=64, dtype=jnp.float32)
    mask = _mask(key, (2, 1, 48, 64))

    def residuals(fn):
        return saved_residuals(lambda q, k, v: fn(q, k, v, mask=mask, causal=True), q, k, v)

    square = 2 * 2 * 48 * 64  # (batch, heads, T_q, T_k) entries
    hand = residuals(functools.partial(attention, block_size=16))
    assert all(np.prod(a.shape) < square for a, _ in hand), hand
    given = ("from the argument", "from a constant")  # q, k, v and the mask
    kept = sorted(tuple(a.shape) for a, where in hand if not where.startswith(given))
    assert kept == [(2, 2, 48), (2, 48, 2, 4)], kept  # lse and the output
    assert any(np.prod(a.shape) >= square for a, _ in residuals(attention.autodiff))


def test_attention_compiled_memory_at_t4096_is_under_an_eighth_of_autodiff():
    """``jit(value_and_grad)`` at batch 2, 4 heads, T = 4096, head_dim 64, float32:
    compiled (not run) temporary memory, hand-written at most 1/8 of autodiff's
    (measured on a CPU: 88.5 MiB against 1560.5 MiB, 1/17.6)."""
    shape = jax.ShapeDtypeStruct((2, 4096, 4, 64), jnp.float32)

    def temp_bytes(fn):
        loss = lambda q, k, v: jnp.sum(fn(q, k, v) ** 2)
        compiled = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
        return compiled.lower(shape, shape, shape).compile().memory_analysis().temp_size_in_bytes

    hand, autodiff = temp_bytes(attention), temp_bytes(attention.autodiff)
    square = 2 * 4 * 4096 * 4096 * 4  # one (batch, heads, T, T) float32 array
    assert autodiff >= square  # autodiff holds the probabilities
    assert hand * 8 <= autodiff, (hand, autodiff)


# --- embedding ---------------------------------------------------------------------


def test_embedding_gradient_is_a_scatter_add_of_repeated_ids():
    table = jnp.arange(12.0).reshape(4, 3)
    ids = jnp.array([[3, 1], [3, 3]])
    dy = jnp.arange(12.0).reshape(2, 2, 3) + 1
    _, vjp = jax.vjp(lambda t: embedding(ids, t), table)
    (dtable,) = vjp(dy)
    expected = np.zeros((4, 3))
    for i, row in np.ndenumerate(np.asarray(ids)):
        expected[row] += np.asarray(dy[i])
    np.testing.assert_array_equal(dtable, expected)  # exact: integer-valued sums


@pytest.mark.parametrize("bad_id", [-1, 4, 1000])
def test_embedding_out_of_range_id_raises_eagerly(bad_id):
    ids = jnp.array([[0, 1], [2, bad_id]])
    expected = rf"embedding: `ids` must lie in \[0, 4\) .*vocab size 4.*got id {bad_id} at index"
    with pytest.raises(InputError, match=rf"{expected} \(1, 1\)"):
        embedding(ids, jnp.ones((4, 3)))


@pytest.mark.parametrize("bad_id", [-1, 4])
def test_embedding_out_of_range_id_under_jit_gives_nan_row_and_nan_gradient_row(bad_id):
    """As dlref's losses with an out-of-range label: that position's output row
    is NaN, and the hand-written gradient of the row the id is clipped to is NaN;
    every other row is untouched."""
    table = jnp.arange(12.0).reshape(4, 3)
    ids = jnp.array([0, bad_id, 2])
    y, vjp = jax.jit(lambda i, t: jax.vjp(lambda t: embedding(i, t), t))(ids, table)
    assert np.all(np.isnan(np.asarray(y[1]))) and np.all(np.isfinite(np.asarray(y)[[0, 2]]))
    (dtable,) = vjp(jnp.ones_like(y))
    clipped = 0 if bad_id < 0 else 3
    nan_rows = np.where(np.isnan(np.asarray(dtable)).any(axis=1))[0]
    assert nan_rows.tolist() == [clipped]
    np.testing.assert_array_equal(dtable[2], np.ones(3))


@pytest.mark.parametrize(
    "ids, table, message",
    [
        (jnp.array([0.0]), jnp.ones((4, 3)), r"`ids` must hold integer token ids"),
        (jnp.array([0]), jnp.ones((4, 3), jnp.int32), r"`table` must be a floating array"),
        (jnp.array([0]), jnp.ones((4,)), r"`table` must have rank 2"),
        (jnp.array([0]), jnp.ones((0, 3)), r"`table` must have at least one row"),
        ([0, 1], jnp.ones((4, 3)), r"`ids` must be a JAX or NumPy array"),
    ],
)
def test_embedding_bad_input_raises(ids, table, message):
    with pytest.raises(InputError, match=rf"embedding: {message}"):
        embedding(ids, table)


@pytest.mark.parametrize("dtype", [jnp.int8, jnp.uint8, jnp.int16, jnp.int64])
def test_embedding_accepts_every_integer_dtype(dtype):
    table = jax.random.normal(jax.random.key(0), (300, 2))
    ids = jnp.array([0, 5, 100, 5], dtype)
    assert_close(embedding(ids, table), table[np.array([0, 5, 100, 5])], 0.0)
