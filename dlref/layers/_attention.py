"""Scaled dot-product attention, with a blockwise hand-written backward right under it.

The plain forward materializes the ``(T_q, T_k)`` probabilities (it is the oracle
autodiff differentiates). Under ``jax.grad`` the forward runs block by block over
the keys with an online softmax and keeps only ``q, k, v``, the output and the
per-row log-sum-exp; the backward recomputes the probabilities one key block at
a time (FlashAttention-2's algebra): differentiated, no ``(T_q, T_k)`` array is formed.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from dlref import _checks
from dlref._op import op

_FN = "dot_product_attention"
_LAYOUT = "(batch, time, heads, head_dim)"


def _wide_dtype(dtype):
    """float32 for float16 and bfloat16 (the arithmetic's dtype), else ``dtype``."""
    return jnp.float32 if jnp.finfo(dtype).bits < 32 else dtype


def _check_attention(q, k, v, mask, causal, scale, block_size) -> float:
    """Checks the call; returns the scale (``1 / sqrt(head_dim)`` by default)."""
    fn = _FN
    _checks.arrays(fn, q=q, k=k, v=v)
    _checks.floating(fn, q=q, k=k, v=v)
    _checks.same_dtype(fn, q=q, k=k, v=v)
    for name, x in (("q", q), ("k", k), ("v", v)):
        if jnp.ndim(x) != 4:
            raise _checks.InputError(
                f"{fn}: `{name}` must have rank 4 {_LAYOUT}; got {_checks._describe(x)}"
            )
    batch, t_q, heads, dim = q.shape
    if (k.shape[0], k.shape[2], k.shape[3]) != (batch, heads, dim):
        raise _checks.InputError(
            f"{fn}: `k` must have shape (batch, T_k, heads, head_dim) = "
            f"({batch}, T_k, {heads}, {dim}), the batch, heads and head_dim of `q` "
            f"{q.shape}; got {k.shape}"
        )
    if v.shape != k.shape:
        raise _checks.InputError(f"{fn}: `v` must have the shape of `k` {k.shape}; got {v.shape}")
    t_k = k.shape[1]
    if causal and t_q > t_k:
        raise _checks.InputError(
            f"{fn}: causal=True needs T_q <= T_k (query i attends keys 0..i); got `q` of "
            f"shape {q.shape} (T_q = {t_q}) and `k` of shape {k.shape} (T_k = {t_k})"
        )
    if mask is not None:
        _checks.arrays(fn, mask=mask)
        target = (batch, heads, t_q, t_k)
        if jnp.result_type(mask) != jnp.bool_:
            raise _checks.InputError(
                f"{fn}: `mask` must be boolean (True = attend); got {_checks._describe(mask)}"
            )
        padded = (1,) * (4 - jnp.ndim(mask)) + tuple(jnp.shape(mask))
        if jnp.ndim(mask) > 4 or any(m not in (1, t) for m, t in zip(padded, target, strict=True)):
            raise _checks.InputError(
                f"{fn}: `mask` must broadcast to (batch, heads, T_q, T_k) = {target}; "
                f"got shape {jnp.shape(mask)}"
            )
    if not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise _checks.InputError(f"{fn}: `block_size` must be an int >= 1; got {block_size!r}")
    if scale is None:
        if dim == 0:
            raise _checks.InputError(
                f"{fn}: the default scale 1 / sqrt(head_dim) needs head_dim >= 1; "
                f"got `q` of shape {q.shape}"
            )
        return 1.0 / math.sqrt(dim)
    if not math.isfinite(scale):
        raise _checks.InputError(f"{fn}: `scale` must be finite; got {scale}")
    return float(scale)


def _heads_first(x, dtype):
    """``(batch, time, heads, d)`` -> ``(batch, heads, time, d)`` in ``dtype``."""
    return jnp.transpose(x, (0, 2, 1, 3)).astype(dtype)


def _mask4(mask):
    """The mask with leading axes of size 1 up to rank 4, or None."""
    return None if mask is None else mask.reshape((1,) * (4 - mask.ndim) + mask.shape)


def _valid(keys, t_q: int, t_k: int, mask, causal: bool):
    """Which scores take part, broadcastable to ``(batch, heads, T_q, len(keys))``:
    real keys (not padding), the causal triangle, and the user's mask."""
    valid = (keys < t_k).reshape(1, 1, 1, -1)
    if causal:  # jax.nn's convention: tril of (T_q, T_k), query i sees keys 0..i
        valid = valid & (jnp.arange(t_q)[:, None] >= keys[None, :])[None, None]
    if mask is not None:
        valid = valid & mask
    return valid


def _exp_where(s, valid, shift):
    """``exp(s - shift)`` where ``valid``, 0 elsewhere. The inner ``where`` keeps
    the exponential of a masked entry from overflowing, so that no ``inf * 0``
    reaches a derivative (grad-of-grad stays finite)."""
    return jnp.where(valid, jnp.exp(jnp.where(valid, s - shift, 0)), 0)


@op(arrays=("mask",))
def dot_product_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    *,
    mask: jax.Array | None = None,
    causal: bool = False,
    scale: float | None = None,
    block_size: int = 128,
) -> jax.Array:
    """Scaled dot-product attention, per batch entry and head:
    ``y = softmax(q @ k.T * scale, masked) @ v``.

    With ``s[i, j] = scale * q_i . k_j`` over the keys ``j`` that row ``i`` may
    attend (``mask`` True, and ``j <= i`` when ``causal``), the probabilities are
    ``p[i, j] = exp(s[i, j] - lse_i)`` with ``lse_i = log sum_j exp(s[i, j])``,
    0 at a masked entry, and ``y_i = sum_j p[i, j] v_j``.

    Derivative (FlashAttention-2's algebra): with ``D_i = dy_i . y_i``,
    ``dv_j = sum_i p[i, j] dy_i``, ``dp[i, j] = dy_i . v_j``,
    ``ds = p * (dp - D)``, ``dq_i = scale * sum_j ds[i, j] k_j`` and
    ``dk_j = scale * sum_i ds[i, j] q_i``. The backward keeps ``q, k, v``, ``y``
    and ``lse`` only and recomputes ``p`` one block of ``block_size`` keys at a
    time (a ``lax.scan``); under ``jax.grad`` the forward too runs over key
    blocks with an online softmax (a running maximum and sum per row). The
    memory held for the backward is ``O(T)`` per row, not ``O(T_q * T_k)``.
    A call that is not differentiated runs the plain forward, which forms the
    ``(T_q, T_k)`` scores (as ``jax.nn``'s XLA implementation does).

    Conventions: ``jax.nn.dot_product_attention``'s layout
    ``(batch, time, heads, head_dim)`` and mask (boolean, True = attend,
    broadcast to ``(batch, heads, T_q, T_k)``; a mask of rank < 4 gets leading
    axes, as there); ``scale`` defaults to ``1 / sqrt(head_dim)``; ``causal``
    aligns the triangle at the top left as jax.nn does (``tril`` of
    ``(T_q, T_k)``: query ``i`` attends keys ``0..i``) and needs
    ``T_q <= T_k``. A row with no key to attend (fully masked) gives output 0 and
    zero gradients; jax.nn (and flax) give the mean of all of ``v`` there (they
    mask with a large negative score, so the row's softmax is uniform). A row
    whose visible keys all score -inf (an infinite input) is not masked: its
    output and gradients are NaN, as the softmax's ``0 / 0``. Unlike
    jax.nn, ``q``, ``k`` and ``v`` must share their number of heads (no grouped
    queries) and be 4-D, and there is no bias.

    Args:
      q: queries, floating, ``(batch, T_q, heads, head_dim)``.
      k: keys, ``(batch, T_k, heads, head_dim)``.
      v: values, the shape of ``k``.
      mask: optional boolean array broadcastable to ``(batch, heads, T_q, T_k)``;
        True where a query attends a key. Not differentiated.
      causal: attend keys ``0..i`` from query ``i`` (with ``mask``: both).
      scale: multiplies the scores; ``None`` gives ``1 / sqrt(head_dim)``.
      block_size: keys per block of the blockwise forward and backward (when
        ``T_k`` is not a multiple, the last block is padded with masked keys).
        It changes only the order of the sums, not the result.

    Returns:
      ``y``, the shape and dtype of ``q``.

    Numerics: the softmax subtracts the row's maximum (a constant to autodiff).
    float16 and bfloat16 inputs are computed in float32 (scores, softmax, both
    products and every gradient sum) and the results cast back; jax.nn too
    computes the scores and softmax in float32, but it does so even for float64
    inputs, so it is float32-accurate there (flax linen's
    ``dot_product_attention`` stays in float64: dlref's test peer). Masked
    entries never see an ``exp`` of a large value, so values, gradients and
    second derivatives are finite for every finite input.

    Examples:
      >>> import jax.numpy as jnp
      >>> from dlref import layers
      >>> v = jnp.arange(3.0).reshape(1, 3, 1, 1)  # (batch, time, heads, head_dim)
      >>> q = k = jnp.zeros((1, 3, 1, 1))  # equal scores: weights uniform over the keys
      >>> layers.dot_product_attention(q, k, v, causal=True)[0, :, 0, 0]  # running means
      Array([0. , 0.5, 1. ], dtype=float32)
      >>> mask = jnp.array([[True, True, False], [False, False, False], [True, True, True]])
      >>> layers.dot_product_attention(q, k, v, mask=mask)[0, :, 0, 0]  # row 1 attends nothing
      Array([0.5, 0. , 1. ], dtype=float32)

    References:
      Vaswani et al., Attention is all you need, NeurIPS 2017.
      Milakov and Gimelshein, Online normalizer calculation for softmax,
      arXiv:1805.02867 (2018).
      Dao, FlashAttention-2: Faster attention with better parallelism and work
      partitioning, ICLR 2024 (arXiv:2307.08691).
    """
    scale = _check_attention(q, k, v, mask, causal, scale, block_size)
    dtype = q.dtype
    wide = _wide_dtype(dtype)
    qh, kh, vh = (_heads_first(x, wide) for x in (q, k, v))
    t_q, t_k = q.shape[1], k.shape[1]
    s = jnp.einsum("bhqd,bhkd->bhqk", qh, kh) * scale
    valid = _valid(jnp.arange(t_k), t_q, t_k, _mask4(mask), causal)
    top = jax.lax.stop_gradient(
        jnp.max(jnp.where(valid, s, -jnp.inf), axis=-1, keepdims=True, initial=-jnp.inf)
    )
    top = jnp.where(jnp.isneginf(top), 0, top)  # a fully masked row (NaN stays NaN)
    e = _exp_where(s, valid, top)
    total = jnp.sum(e, axis=-1, keepdims=True)
    # a fully masked row: 0; a row whose visible scores are all -inf (infinite inputs): NaN
    p = e / jnp.where(jnp.any(valid, axis=-1, keepdims=True), total, 1)
    y = jnp.einsum("bhqk,bhkd->bhqd", p, vh)
    return jnp.transpose(y, (0, 2, 1, 3)).astype(dtype)


# --- the blockwise forward and backward ----------------------------------------


def _blocking(t_k: int, block_size: int) -> tuple[int, int]:
    """``(number of blocks, keys per block)``: one block of all keys when they fit."""
    size = min(block_size, max(t_k, 1))
    return -(-max(t_k, 1) // size), size


def _key_blocks(x, n: int, size: int):
    """``(batch, heads, T_k, d)`` -> ``(n, batch, heads, size, d)``, zero-padded."""
    b, h, t, d = x.shape
    x = jnp.pad(x, ((0, 0), (0, 0), (0, n * size - t), (0, 0)))
    return jnp.moveaxis(x.reshape(b, h, n, size, d), 2, 0)


def _unblock(x, t_k: int, dtype):
    """``(n, batch, heads, size, d)`` -> ``(batch, T_k, heads, d)`` in ``dtype``."""
    n, b, h, size, d = x.shape
    x = jnp.moveaxis(x, 0, 2).reshape(b, h, n * size, d)[:, :, :t_k]
    return jnp.transpose(x, (0, 2, 1, 3)).astype(dtype)


def _mask_blocks(mask, t_k: int, n: int, size: int):
    """The mask cut like the keys: ``(n, ...)`` with ``size`` keys each, padded
    with False; a mask without a key axis (size 1 there) is left whole (None)."""
    if mask is None or mask.shape[3] == 1:
        return None
    b, h, t, _ = mask.shape
    mask = jnp.pad(mask, ((0, 0), (0, 0), (0, 0), (0, n * size - t_k)))
    return jnp.moveaxis(mask.reshape(b, h, t, n, size), 3, 0)


class _Blocks:
    """The key blocks of one call, and each block's validity."""

    def __init__(self, k, v, mask, *, causal: bool, t_q: int, wide, block_size: int):
        self.t_q, self.t_k, self.causal = t_q, k.shape[1], causal
        self.n, self.size = _blocking(self.t_k, int(block_size))
        self.mask = _mask4(mask)
        self.k = _key_blocks(_heads_first(k, wide), self.n, self.size)
        self.v = _key_blocks(_heads_first(v, wide), self.n, self.size)
        self.mask_blocks = _mask_blocks(self.mask, self.t_k, self.n, self.size)

    def xs(self):
        """What ``lax.scan`` walks over: block index, keys, values, mask block."""
        return (jnp.arange(self.n), self.k, self.v, self.mask_blocks)

    def valid(self, j, mask_block):
        keys = j * self.size + jnp.arange(self.size)
        mask = self.mask if mask_block is None else mask_block
        return _valid(keys, self.t_q, self.t_k, mask, self.causal)


def _attention_fwd(q, k, v, *, mask=None, causal=False, scale=None, block_size=128):
    scale = _check_attention(q, k, v, mask, causal, scale, block_size)
    dtype = q.dtype
    wide = _wide_dtype(dtype)
    qh = _heads_first(q, wide)
    blocks = _Blocks(k, v, mask, causal=causal, t_q=q.shape[1], wide=wide, block_size=block_size)

    def step(carry, xs):
        # running maximum, sum of exp(s - top), sum of exp(s - top) v, any key visible
        top, total, acc, seen = carry
        j, kj, vj, mj = xs
        s = jnp.einsum("bhqd,bhkd->bhqk", qh, kj) * scale
        valid = blocks.valid(j, mj)
        seen = seen | jnp.any(valid, axis=-1)
        block_top = jnp.max(jnp.where(valid, s, -jnp.inf), axis=-1)
        new_top = jax.lax.stop_gradient(jnp.maximum(top, block_top))
        shift = jnp.where(jnp.isneginf(new_top), 0, new_top)  # no key seen yet: any finite shift
        e = _exp_where(s, valid, shift[..., None])
        rescale = jnp.exp(top - shift)  # 0 while top is -inf
        total = total * rescale + jnp.sum(e, axis=-1)
        acc = acc * rescale[..., None] + jnp.einsum("bhqk,bhkd->bhqd", e, vj)
        return (new_top, total, acc, seen), None

    rows = qh.shape[:3]
    init = (jnp.full(rows, -jnp.inf, wide), jnp.zeros(rows, wide), jnp.zeros(qh.shape, wide))
    (top, total, acc, seen), _ = jax.lax.scan(step, (*init, jnp.zeros(rows, bool)), blocks.xs())
    # A fully masked row: output 0, log-sum-exp 0 (any finite value). A row with visible
    # keys whose scores are all -inf (infinite inputs): total 0, so 0 / 0 = NaN, and a
    # log-sum-exp of -inf, which makes its gradients NaN too.
    empty = ~seen
    safe_total = jnp.where(empty, 1, total)
    y = jnp.transpose(acc / safe_total[..., None], (0, 2, 1, 3)).astype(dtype)
    lse = jnp.where(empty, 0, jnp.where(jnp.isneginf(top), 0, top) + jnp.log(safe_total))
    return y, (q, k, v, y, lse)


def _attention_bwd(res, dy, *, mask=None, causal=False, scale=None, block_size=128):
    q, k, v, y, lse = res
    scale = _check_attention(q, k, v, mask, causal, scale, block_size)
    dtype = q.dtype
    wide = _wide_dtype(dtype)
    qh, dyh = _heads_first(q, wide), _heads_first(dy, wide)
    d_row = jnp.sum(dyh * _heads_first(y, wide), axis=-1)  # D_i = dy_i . y_i
    blocks = _Blocks(k, v, mask, causal=causal, t_q=q.shape[1], wide=wide, block_size=block_size)

    def step(dq, xs):
        j, kj, vj, mj = xs
        s = jnp.einsum("bhqd,bhkd->bhqk", qh, kj) * scale
        p = _exp_where(s, blocks.valid(j, mj), lse[..., None])  # the forward's probabilities
        dv_j = jnp.einsum("bhqk,bhqd->bhkd", p, dyh)
        dp = jnp.einsum("bhqd,bhkd->bhqk", dyh, vj)
        ds = p * (dp - d_row[..., None])
        dq = dq + scale * jnp.einsum("bhqk,bhkd->bhqd", ds, kj)
        dk_j = scale * jnp.einsum("bhqk,bhqd->bhkd", ds, qh)
        return dq, (dk_j, dv_j)

    dq, (dk, dv) = jax.lax.scan(step, jnp.zeros(qh.shape, wide), blocks.xs())
    t_k = k.shape[1]
    dq = jnp.transpose(dq, (0, 2, 1, 3)).astype(dtype)
    return dq, _unblock(dk, t_k, dtype), _unblock(dv, t_k, dtype)


dot_product_attention.defvjp(_attention_fwd, _attention_bwd)
