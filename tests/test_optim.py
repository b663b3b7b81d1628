"""Gradient descent: the cheat sheet's W -= lr * dW, equal to optax.sgd."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dlref import InputError, optim


def test_gradient_descent_and_sgd_equal_optax_step_for_step(key):
    params = {"w": jax.random.normal(key, (3, 4)), "b": jnp.zeros(4), "nested": [jnp.ones(2)]}
    target = jax.tree.map(lambda a: a + 1.0, params)

    def loss(p):
        return sum(
            jnp.sum((a - t) ** 2)
            for a, t in zip(jax.tree.leaves(p), jax.tree.leaves(target), strict=True)
        )

    ours = mine = theirs = params
    sgd, reference = optim.sgd(0.1), optax.sgd(0.1)
    state, ref_state = sgd.init(params), reference.init(params)
    for _ in range(5):
        ours = optim.gradient_descent(ours, jax.grad(loss)(ours), 0.1)
        updates, state = sgd.update(jax.grad(loss)(mine), state, mine)
        mine = optax.apply_updates(mine, updates)
        ref_updates, ref_state = reference.update(jax.grad(loss)(theirs), ref_state, theirs)
        theirs = optax.apply_updates(theirs, ref_updates)
        for a, b, c in zip(
            jax.tree.leaves(ours), jax.tree.leaves(mine), jax.tree.leaves(theirs), strict=True
        ):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, c)


def test_gradient_descent_keeps_each_leaf_dtype():
    params = {"a": jnp.ones(2, jnp.bfloat16), "b": jnp.ones(2, jnp.float32)}
    out = optim.gradient_descent(params, params, jnp.asarray(0.5, jnp.float64))
    assert out["a"].dtype == jnp.bfloat16 and out["b"].dtype == jnp.float32
    np.testing.assert_array_equal(out["b"], 0.5)


def test_gradient_descent_structure_mismatch_is_an_error():
    with pytest.raises(
        InputError, match=r"gradient_descent: `grads` must have the structure of `params`"
    ):
        optim.gradient_descent({"w": jnp.ones(2)}, {"v": jnp.ones(2)}, 0.1)
    with pytest.raises(InputError, match=r"each `grads` leaf must have its `params` leaf's shape"):
        optim.gradient_descent({"w": jnp.ones(2)}, {"w": jnp.ones(3)}, 0.1)
