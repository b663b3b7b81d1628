"""Bad input raises an error naming the function, the argument and the shapes or
values: eagerly, under jit (at trace time) and under grad (the manual path)."""

import jax
import jax.numpy as jnp
import pytest

from dlref import InputError, losses, regularizers
from dlref import activations as act

x34 = jnp.ones((3, 4))
x35 = jnp.ones((3, 5))
labels3 = jnp.asarray([0, 1, 2])

CASES = [
    ("sigmoid", lambda: act.sigmoid(jnp.arange(3)), r"sigmoid: `x` must be a floating array"),
    ("relu int", lambda: act.relu(jnp.arange(3)), r"relu: `x` must be a floating"),
    (
        "softmax scalar",
        lambda: act.softmax(jnp.float64(1)),
        r"softmax: `x` must have at least 1 axis",
    ),
    ("softmax list axis", lambda: act.softmax(x34, axis=[0]), r"softmax: .*hashable"),
    (
        "mse shapes",
        lambda: losses.mse(x34, x35),
        r"mse: `target` must have the shape of `pred` \(3, 4\); got \(3, 5\)",
    ),
    (
        "mse broadcast",
        lambda: losses.mse(x34, jnp.ones(4)),
        r"mse: `target` must have the shape of `pred`",
    ),
    (
        "mse dtypes",
        lambda: losses.mse(x34, x34.astype(jnp.float32)),
        r"mse: arguments must share one dtype; got `pred` float64, `target` float32",
    ),
    (
        "mse scalar",
        lambda: losses.mse(jnp.float64(1), jnp.float64(1)),
        r"mse: `pred` must have at least 1 axis",
    ),
    (
        "mae int",
        lambda: losses.mae(jnp.ones((2, 2), int), jnp.ones((2, 2), int)),
        r"mae: `pred` must be a floating",
    ),
    (
        "hinge labels",
        lambda: losses.hinge(x34, 0.5 * x34),
        r"hinge: `labels` must be -1 or \+1; got \[0.5",
    ),
    (
        "labels float",
        lambda: losses.softmax_cross_entropy_with_integer_labels(x34, jnp.zeros(3)),
        r"`labels` must hold integer labels; got shape \(3,\) and dtype float64",
    ),
    (
        "labels range",
        lambda: losses.softmax_cross_entropy_with_integer_labels(x34, jnp.asarray([0, 4, 1])),
        r"`labels` must lie in \[0, 4\); got values in \[0, 4\]",
    ),
    (
        "labels negative",
        lambda: losses.multiclass_hinge(x34, jnp.asarray([0, -1, 1])),
        r"multiclass_hinge: `labels` must lie in \[0, 4\)",
    ),
    (
        "labels shape",
        lambda: losses.softmax_cross_entropy_with_integer_labels(x34, jnp.asarray([0, 1])),
        r"`labels` must have shape \(3,\)",
    ),
    (
        "one class",
        lambda: losses.multiclass_hinge(jnp.ones((3, 1)), labels3 * 0),
        r"needs >= 2 classes",
    ),
    (
        "bce shapes",
        lambda: losses.binary_cross_entropy(x34, x35),
        r"binary_cross_entropy: `targets` must have the shape of `probs`",
    ),
    (
        "l1 int leaf",
        lambda: regularizers.l1({"w": jnp.arange(3)}),
        r"l1: `params leaf 0` must be a floating",
    ),
    (
        "prox threshold",
        lambda: regularizers.l1_prox(x34, threshold=-1.0),
        r"l1_prox: `threshold` must lie in \[0, inf\]; got -1.0",
    ),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_error(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_shape_errors_raise_under_jit_and_grad():
    with pytest.raises(InputError, match="`target` must have the shape of `pred`"):
        jax.jit(losses.mse)(x34, x35)
    with pytest.raises(InputError, match="`target` must have the shape of `pred`"):
        jax.grad(lambda p: losses.mse(p, x35).sum())(x34)


def test_label_range_checked_under_grad_when_labels_are_concrete():
    with pytest.raises(InputError, match=r"`labels` must lie in \[0, 4\)"):
        jax.grad(
            lambda z: losses.softmax_cross_entropy_with_integer_labels(
                z, jnp.asarray([0, 9, 1])
            ).sum()
        )(x34)


def test_out_of_range_labels_under_jit_give_nan_not_a_number():
    """Under jit values cannot be checked; the loss is NaN (documented), never a
    silently plausible number."""
    loss = jax.jit(losses.softmax_cross_entropy_with_integer_labels)(x34, jnp.asarray([0, 9, 1]))
    assert jnp.isnan(loss[1]) and not jnp.isnan(loss[0])
