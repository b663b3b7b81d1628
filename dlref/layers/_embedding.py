"""Embedding lookup, with its hand-written backward (a scatter-add) right under it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dlref import _checks
from dlref._numerics import nan_where_not, rows, valid_labels
from dlref._op import op


def _wide_dtype(dtype):
    """float32 for float16 and bfloat16 (the arithmetic's dtype), else ``dtype``."""
    return jnp.float32 if jnp.finfo(dtype).bits < 32 else dtype


def _check_embedding(ids, table) -> None:
    fn = "embedding"
    _checks.arrays(fn, ids=ids, table=table)
    message = f"{fn}: `ids` must hold integer token ids; got {_checks._describe(ids)}"
    if not jnp.issubdtype(jnp.result_type(ids), jnp.integer):
        raise _checks.InputError(message)
    _checks.floating(fn, table=table)
    _checks.rank(fn, "table", table, 2)
    vocab = table.shape[0]
    if vocab == 0:
        raise _checks.InputError(f"{fn}: `table` must have at least one row; got shape (0, ...)")
    if not _checks.is_concrete(ids):
        _checks.defer(lambda: _checks.outside(ids, 0, vocab - 1))
        return
    if np.size(ids) == 0:
        return
    values = np.asarray(ids)
    bad = (values < 0) | (values >= vocab)
    if np.any(bad):
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise _checks.InputError(
            f"{fn}: `ids` must lie in [0, {vocab}) (the rows of `table`, vocab size {vocab}); "
            f"got id {values[where]} at index {where}"
        )


@op
def embedding(ids: jax.Array, table: jax.Array) -> jax.Array:
    """Embedding lookup: row ``ids[...]`` of ``table``, ``y[..., :] = table[ids[...], :]``.

    Derivative: ``dtable[r] = sum of dy[i] over every position i with ids[i] = r``
    (a scatter-add of the cotangent's rows into a zero table, ``.at[ids].add``);
    a row no id names gets 0. ``ids`` are integers: they get no gradient.

    Out-of-range ids: with concrete ``ids`` (outside ``jit``), an id outside
    ``[0, vocab)`` raises :class:`~dlref.InputError` naming the id and the vocab
    size. Under ``jit`` they cannot be checked: as dlref's losses do with an
    out-of-range label, the output row of such an id is NaN, and the hand-written
    backward adds NaN to the gradient row the id is clipped to (row 0 for a
    negative id, row ``vocab - 1`` above), so training cannot go on silently.
    Negative ids never wrap around (NumPy's ``table[-1]`` would).
    ``jax.grad`` of ``embedding.autodiff`` gives that position no gradient (the
    NaN comes from a ``where``), as autodiff of the losses does.

    Args:
      ids: integer token ids, any shape, each in ``[0, vocab)``.
      table: the embedding table, floating, shape ``(vocab, d)``.

    Returns:
      ``y``, shape ``ids.shape + (d,)``, the dtype of ``table``.

    Numerics: float16 and bfloat16 gradients are summed in float32 and cast back
    (a token repeated many times would otherwise lose its later terms to rounding).
    flax linen's ``Embed`` is the same lookup (its ``jnp.take`` fills an
    out-of-range id's row with NaN, but wraps a negative id of ``[-vocab, 0)``).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from dlref import layers
      >>> table = jnp.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
      >>> layers.embedding(jnp.array([2, 0, 2]), table)
      Array([[4., 5.],
             [0., 1.],
             [4., 5.]], dtype=float32)
      >>> jax.grad(lambda t: layers.embedding(jnp.array([2, 0, 2]), t).sum())(table)
      Array([[1., 1.],
             [0., 0.],
             [2., 2.]], dtype=float32)
    """
    _check_embedding(ids, table)
    vocab = table.shape[0]
    rows = jnp.take(table, ids, axis=0, mode="clip")
    return nan_where_not(valid_labels(_signed(ids), vocab)[..., None], rows)


def _signed(ids):
    """Narrow integer ids as int32, so that comparing them with the vocab size is exact."""
    return ids.astype(jnp.int32) if jnp.dtype(ids.dtype).itemsize < 4 else ids


def _embedding_fwd(ids, table):
    # Only the ids are kept, and an empty (vocab, 0) array for the table's shape and dtype.
    return embedding.autodiff(ids, table), (ids, jnp.zeros((table.shape[0], 0), table.dtype))


def _embedding_bwd(res, dy):
    ids, shape_of_table = res
    vocab, dtype = shape_of_table.shape[0], shape_of_table.dtype
    wide = _wide_dtype(dtype)
    dy = nan_where_not(valid_labels(_signed(ids), vocab)[..., None], dy.astype(wide))
    ids_flat = jnp.clip(ids, 0, vocab - 1).reshape(-1)
    dtable = jnp.zeros((vocab, dy.shape[-1]), wide).at[ids_flat].add(rows(dy))
    return None, dtable.astype(dtype)


embedding.defvjp(_embedding_fwd, _embedding_bwd)
