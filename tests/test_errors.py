"""Bad input raises an error naming the function, the argument and the shapes or
values: eagerly, under jit (at trace time) and under grad (the manual path)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlref import InputError, layers, losses, optim, regularizers
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
    (
        "softmax list axis",
        lambda: act.softmax(x34, axis=[0]),
        r"softmax: `axis` must be an integer",
    ),
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
    ("mse list", lambda: losses.mse([1.0, 2.0], [1.0, 2.0]), r"mse: `pred` must be a JAX or NumPy"),
    (
        "mse empty features",
        lambda: losses.mse(jnp.ones((3, 0)), jnp.ones((3, 0))),
        r"mse: `pred` has an empty last axis",
    ),
    (
        "mae empty features",
        lambda: losses.mae(jnp.ones((3, 0)), jnp.ones((3, 0))),
        r"mae: `pred` has an empty last axis",
    ),
    (
        "hinge empty features",
        lambda: losses.hinge(jnp.ones((3, 0)), jnp.ones((3, 0))),
        r"hinge: `scores` has an empty last axis",
    ),
    (
        "bce targets out of [0, 1]",
        lambda: losses.binary_cross_entropy(0.5 * x34, 2 * x34),
        r"binary_cross_entropy: `targets` must lie in \[0, 1\]; got values in \[2.0, 2.0\]",
    ),
    (
        "bce probabilities out of [0, 1]",
        lambda: losses.binary_cross_entropy(-x34, 0.5 * x34),
        r"binary_cross_entropy: `probs` must lie in \[0, 1\]",
    ),
    (
        "bce-logits targets",
        lambda: losses.binary_cross_entropy_with_logits(x34, -x34),
        r"binary_cross_entropy_with_logits: `targets` must lie in \[0, 1\]",
    ),
    (
        "categorical negative target",
        lambda: losses.categorical_cross_entropy(0.25 * x34, x34.at[0, 0].set(-0.5)),
        r"categorical_cross_entropy: `targets` must lie in \[0, 1\]",
    ),
    (
        "soft_f1 probabilities of 3",
        lambda: losses.soft_f1(3 * x34, x34),
        r"soft_f1: `probs` must lie in \[0, 1\]; got values in \[3.0, 3.0\]",
    ),
    (
        "label dtype too small",
        lambda: losses.multiclass_hinge(jnp.ones((2, 300)), jnp.asarray([0, 1], jnp.uint8)),
        r"multiclass_hinge: `labels` of dtype uint8 cannot hold the 300 classes of `scores`",
    ),
    (
        "batch norm momentum",
        lambda: layers.batch_norm(x34, *layers.init_batch_norm(4, jnp.float64), momentum=1.5),
        r"batch_norm: `momentum` must lie in \[0.0, 1.0\]; got 1.5",
    ),
    (
        "batch norm momentum NaN",
        lambda: layers.batch_norm(x34, *layers.init_batch_norm(4, jnp.float64), momentum=np.nan),
        r"batch_norm: `momentum` must lie in \[0.0, 1.0\]; got nan",
    ),
    (
        "batch norm negative eps",
        lambda: layers.batch_norm(x34, *layers.init_batch_norm(4, jnp.float64), eps=-1e-5),
        r"batch_norm: `eps` must lie in \[0.0, inf\]",
    ),
    (
        "batch norm empty batch",
        lambda: layers.batch_norm(jnp.ones((0, 4)), *layers.init_batch_norm(4, jnp.float64)),
        r"batch_norm: `x` must not be empty \(batch statistics of no example",
    ),
    (
        "batch norm negative running variance",
        lambda: layers.batch_norm(
            x34,
            jnp.ones(4),
            jnp.zeros(4),
            layers.BatchNormState(jnp.zeros(4), -jnp.ones(4)),
            training=False,
        ),
        r"batch_norm: `state.var` must be >= 0; got minimum -1.0",
    ),
    (
        "gradient descent NaN learning rate",
        lambda: optim.gradient_descent(x34, x34, np.nan),
        r"gradient_descent: `learning_rate` must be finite; got nan",
    ),
    (
        "sgd NaN learning rate",
        lambda: optim.sgd(float("nan")),
        r"sgd: `learning_rate` must be finite",
    ),
    (
        "gradient descent shaped learning rate",
        lambda: optim.gradient_descent(jnp.ones(3), jnp.ones(3), jnp.ones((3, 1))),
        r"gradient_descent: `learning_rate` must be a scalar; got shape \(3, 1\)",
    ),
    (
        "gradient descent integer params",
        lambda: optim.gradient_descent(jnp.arange(3), jnp.ones(3), 0.1),
        r"gradient_descent: every `params` leaf must be floating",
    ),
    (
        "missing argument",
        lambda: losses.mse(x34),
        r"mse\(pred.*missing a required argument: 'target'",
    ),
    (
        "too many positional",
        lambda: act.softmax(x34, -1, 0),
        r"softmax\(x.*too many positional arguments",
    ),
    (
        "misspelled keyword",
        lambda: layers.dropout(x34, rat=0.5),
        r"dropout\(x.*missing a required argument: 'rate'",
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


def test_softmax_takes_its_axis_positionally_as_jax_nn():
    x = jax.random.normal(jax.random.key(0), (3, 4))
    # float64 against jax.nn, a few ulps each: PEER_RTOL's float64 figure
    np.testing.assert_allclose(act.softmax(x, 0), jax.nn.softmax(x, axis=0), rtol=1e-12)
    np.testing.assert_array_equal(act.softmax(x, 0), act.softmax(x, axis=0))


def test_out_of_range_labels_under_jit_give_nan_gradients_too():
    """A NaN loss with a finite gradient would let training update silently."""

    def loss(z, labels):
        return losses.multiclass_hinge(z, labels).sum()

    grads = jax.jit(jax.grad(loss))(x34, jnp.asarray([0, 7, 1]))
    assert np.all(np.isnan(grads[1])) and np.all(np.isfinite(grads[jnp.array([0, 2])]))


def test_hinge_with_0_1_labels_under_jit_is_nan_not_plausible():
    labels = jnp.asarray([[0.0, 1.0, 1.0, 0.0]] * 3)
    loss = jax.jit(losses.hinge)(x34, labels)
    grads = jax.jit(jax.grad(lambda s, t: losses.hinge(s, t).sum()))(x34, labels)
    assert np.all(np.isnan(loss)) and np.all(np.isnan(grads[:, 0]))
    with pytest.raises(InputError, match=r"hinge: `labels` must be -1 or \+1; got \[0.0"):
        jax.jit(jax.grad(lambda s: losses.hinge(s, labels).sum()))(x34)  # concrete: checked


@pytest.mark.parametrize("op", [act.sigmoid, act.tanh, act.softplus])
def test_activations_propagate_nan(op):
    x = jnp.asarray([jnp.nan, 1.0, -1.0])
    assert np.isnan(op(x)[0]) and np.isnan(jax.grad(lambda v: op(v).sum())(x)[0])


def test_relu_of_nan_is_nan_with_the_identity_branch_gradient():
    """relu(NaN) = NaN (jax.nn's value); its gradient there is the upstream
    gradient (the identity branch), in both variants."""
    x = jnp.asarray([jnp.nan, 1.0, -1.0])
    assert np.isnan(act.relu(x)[0])
    for f in (act.relu, act.relu.autodiff):
        np.testing.assert_array_equal(jax.grad(lambda v, f=f: f(v).sum())(x), [1.0, 1.0, 0.0])


def test_batch_norm_empty_batch_in_evaluation_leaves_the_state_alone():
    scale, shift, state = layers.init_batch_norm(4, jnp.float64)
    y, new = layers.batch_norm(jnp.ones((0, 4)), scale, shift, state, training=False)
    assert (y.shape == (0, 4) and new is state) or np.array_equal(new.var, state.var)


def test_array_hyperparameters_do_not_change_the_output_dtype():
    """The build cache once keyed on values that compare equal across types, so
    a NumPy float64 rate made later float32 calls return float64."""
    x = jnp.ones((4, 5), jnp.float32)
    key = jax.random.key(0)
    assert layers.dropout(x, rate=np.float64(0.5), key=key).dtype == jnp.float32
    assert layers.dropout(x, rate=0.5, key=key).dtype == jnp.float32
    assert regularizers.l1_prox(x, threshold=np.array(0.1)).dtype == jnp.float32


def test_batch_norm_mode_and_momentum_as_arrays_match_python_values():
    """``training=jnp.array(False)`` and an array momentum once gave wrong
    hand-written gradients; now they are the Python values they hold."""
    x = jax.random.normal(jax.random.key(1), (6, 3))
    scale, shift, state = layers.init_batch_norm(3, jnp.float64)

    def grads(**kw):
        f = lambda x, state: layers.batch_norm(x, scale, shift, state, **kw)
        out, vjp = jax.vjp(f, x, state)
        return vjp(jax.tree.map(jnp.ones_like, out))

    for kw, same in (
        ({"training": jnp.array(False)}, {"training": False}),
        ({"momentum": jnp.array(0.5)}, {"momentum": 0.5}),
    ):
        got, want = jax.tree.leaves(grads(**kw)), jax.tree.leaves(grads(**same))
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


def test_l1_prox_takes_a_traced_threshold_and_clips_a_negative_one():
    """A threshold from a schedule is traced under jit: accepted; a negative one
    cannot be checked there and is clipped to 0 (the identity), never a push away
    from 0; the output keeps the weights' dtype."""
    w = jnp.asarray([-2.0, 0.5, 3.0], jnp.float32)
    prox = jax.jit(lambda w, t: regularizers.l1_prox(w, threshold=t))
    np.testing.assert_array_equal(prox(w, 1.0), [-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(prox(w, -1.0), w)
    assert prox(w, np.float64(1.0)).dtype == jnp.float32
