"""The MLP: whole-network backprop by hand trains exactly like autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from dlref import InputError, gradcheck, networks, optim

f32 = jnp.float32


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's digits (ships with the package): 1797 8x8 images, 10 classes."""
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        (x / 16.0).astype(np.float32), y.astype(np.int32), test_size=0.25, random_state=0
    )
    return tuple(jnp.asarray(a) for a in (x_train, x_test, y_train, y_test))


def test_hand_written_backprop_trains_like_autodiff_on_digits(digits):
    """100 steps of full-batch gradient descent (lr 1, tanh, 64-64-10), float32:
    the two runs stay equal to float32 round-off (measured: parameters 5.6e-7
    relative, losses 1.2e-7) and reach 96.4% test accuracy."""
    x_train, x_test, y_train, y_test = digits
    params0 = networks.init_mlp(jax.random.key(0), [64, 64, 10], f32)

    def train(loss):
        @jax.jit
        def step(params, _):
            value, grads = jax.value_and_grad(loss)(params, x_train, y_train)
            return optim.gradient_descent(params, grads, 1.0), value

        return jax.lax.scan(step, params0, None, length=100)

    hand, hand_losses = train(lambda p, x, y: networks.mlp_loss(p, x, y, activation="tanh"))
    auto, auto_losses = train(
        lambda p, x, y: networks.mlp_loss.autodiff(p, x, y, activation="tanh")
    )
    # float32 round-off grown over 100 steps (measured above: 5.6e-7 and 1.2e-7), with room;
    # the losses, of order 1, absolutely
    assert gradcheck.compare(hand, auto).max_rel < 1e-5
    np.testing.assert_allclose(hand_losses, auto_losses, atol=1e-5)
    assert hand_losses[-1] < 0.15 * hand_losses[0]
    predicted = jnp.argmax(networks.mlp(hand, x_test, activation="tanh"), -1)
    accuracy = jnp.mean(predicted.astype(y_test.dtype) == y_test)
    assert accuracy >= 0.95


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_mlp_backward_matches_autodiff_for_every_activation(activation, key):
    params = networks.init_mlp(key, [5, 7, 7, 3], jnp.float64)
    params = [(w, b + 0.1) for w, b in params]
    x = jax.random.normal(key, (6, 5), jnp.float64)
    labels = jnp.asarray([0, 1, 2, 0, 1, 2])
    gradcheck.check_vjp(
        lambda p, x: networks.mlp(p, x, activation=activation),
        lambda p, x: networks.mlp.autodiff(p, x, activation=activation),
        params,
        x,
        key=key,
    )
    gradcheck.check_vjp(
        lambda p, x: networks.mlp_loss(p, x, labels, activation=activation),
        lambda p, x: networks.mlp_loss.autodiff(p, x, labels, activation=activation),
        params,
        x,
        key=key,
    )


def test_mlp_errors_name_the_argument(key):
    params = networks.init_mlp(key, [4, 5, 3])
    x = jnp.ones((2, 4), f32)
    with pytest.raises(InputError, match=r"mlp: `activation` must be one of"):
        networks.mlp(params, x, activation="gelu")
    with pytest.raises(InputError, match=r"mlp: `params\[1\].w` must have shape \(5, None\)"):
        networks.mlp([params[0], (jnp.ones((4, 3), f32), jnp.ones(3, f32))], x)
    with pytest.raises(InputError, match=r"mlp_loss: `labels` must lie in \[0, 3\)"):
        networks.mlp_loss(params, x, jnp.asarray([0, 3]))
