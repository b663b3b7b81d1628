"""Residual contracts, tested: what each hand-written backward keeps from its
forward, read with ``saved_residuals`` (as jax's own ``nn_test.py`` does).

Residuals that are the function's own arguments cost nothing extra (the caller
holds them anyway); every other residual is memory the forward pins until the
backward runs. The hand-written backward of every op pins at most what
autodiff pins, and the docstrings' particular promises hold.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# The public name is print_saved_residuals; jax's tests use this function.
from jax._src.ad_checkpoint import saved_residuals

from dlref import OPS, activations, losses
from dlref.gradcheck import restrict

SPECS = list(OPS.values())


def _pinned(fn, args):
    """The residuals of ``fn`` at ``args`` that are not its arguments or constants."""
    return [
        (aval, where)
        for aval, where in saved_residuals(fn, *args)
        if not where.startswith(("from the argument", "from a constant"))
    ]


def _bytes(residuals):
    return sum(int(np.prod(a.shape)) * a.dtype.itemsize for a, _ in residuals)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_hand_written_backward_pins_no_more_than_autodiff(spec):
    args = spec.example_args(jax.random.key(0), jnp.float32)
    diff = [args[i] for i in spec.diff_argnums]
    manual = _pinned(restrict(spec.manual, args, spec.diff_argnums), diff)
    autodiff = _pinned(restrict(spec.autodiff, args, spec.diff_argnums), diff)
    assert _bytes(manual) <= _bytes(autodiff), (manual, autodiff)


@pytest.mark.parametrize("op", [activations.sigmoid, activations.tanh, activations.softplus])
def test_elementwise_activations_pin_one_array_at_most(op):
    """The backward recomputes from one kept array (the input or the output)."""
    x = jnp.linspace(-3.0, 3.0, 7)
    kept = saved_residuals(op, x)
    assert len(kept) == 1 and kept[0][0].shape == x.shape, kept


@pytest.mark.parametrize(
    "op, second",
    [
        (losses.softmax_cross_entropy, "simplex"),
        (losses.softmax_cross_entropy_with_integer_labels, "labels"),
        (losses.binary_cross_entropy_with_logits, "unit"),
    ],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_cross_entropies_store_no_array_of_log_probabilities(op, second):
    """The docstrings promise per-example reductions only: no (batch, C) array
    besides the inputs is kept for the backward."""
    key1, key2 = jax.random.split(jax.random.key(0))
    logits = jax.random.normal(key1, (4, 7))
    if second == "labels":
        other = jax.random.randint(key2, (4,), 0, 7)
    elif second == "simplex":
        other = jax.nn.softmax(jax.random.normal(key2, (4, 7)))
    else:
        other = jax.random.uniform(key2, (4, 7))
    pinned = _pinned(lambda z: op(z, other), [logits])
    assert all(a.shape != logits.shape for a, _ in pinned), pinned
