"""Optimizers: gradient descent equal to optax.sgd; momentum, RMSProp, Adam and AdamW
equal to optax's counterparts over 100 steps on digits, and to their rules written
out in NumPy (with PyTorch's forms where the docstrings claim them)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_close
from sklearn.datasets import load_digits

from dlref import InputError, networks, optim

# Equal to optax in float32 over 100 steps, the claim of tests and docstrings.
OPTAX_RTOL = 1e-6
# Against the rules written out in NumPy, float64: the same formulas, a few ulps.
RULE_RTOL = 1e-12


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


# ----------------------------------------------------------------------------------
# Each optimizer three ways on a real problem: the pure pair, the optax form, optax.

_SCHEDULE = optax.exponential_decay(0.05, transition_steps=10, decay_rate=0.8)


def _matrices_only(params):
    return jax.tree.map(lambda w: w.ndim > 1, params)


# name: (dlref's init, update and optax form; optax's; dlref's hyperparameters, optax's)
CASES = {
    "momentum": (
        (optim.momentum_init, optim.momentum_update, optim.momentum), optax.sgd,
        dict(learning_rate=0.1, beta=0.9), dict(learning_rate=0.1, momentum=0.9),
    ),
    "nesterov_scheduled": (
        (optim.momentum_init, optim.momentum_update, optim.momentum), optax.sgd,
        dict(learning_rate=_SCHEDULE, beta=0.9, nesterov=True),
        dict(learning_rate=_SCHEDULE, momentum=0.9, nesterov=True),
    ),
    "rmsprop": (
        (optim.rmsprop_init, optim.rmsprop_update, optim.rmsprop), optax.rmsprop,
        dict(learning_rate=1e-2, initial_scale=0.1), dict(learning_rate=1e-2, initial_scale=0.1),
    ),
    "rmsprop_pytorch_form": (
        (optim.rmsprop_init, optim.rmsprop_update, optim.rmsprop), optax.rmsprop,
        dict(learning_rate=1e-2, decay=0.99, eps_in_sqrt=False),
        dict(learning_rate=1e-2, decay=0.99, eps_in_sqrt=False),
    ),
    "adam": (
        (optim.adam_init, optim.adam_update, optim.adam), optax.adam,
        dict(learning_rate=1e-2), dict(learning_rate=1e-2),
    ),
    "adam_scheduled_eps_root": (
        (optim.adam_init, optim.adam_update, optim.adam), optax.adam,
        dict(learning_rate=_SCHEDULE, eps_root=1e-8), dict(learning_rate=_SCHEDULE, eps_root=1e-8),
    ),
    "adamw": (
        (optim.adam_init, optim.adamw_update, optim.adamw), optax.adamw,
        dict(learning_rate=1e-2, weight_decay=0.1), dict(learning_rate=1e-2, weight_decay=0.1),
    ),
    "adamw_masked": (
        (optim.adam_init, optim.adamw_update, optim.adamw), optax.adamw,
        dict(learning_rate=1e-2, weight_decay=0.1, mask=_matrices_only),
        dict(learning_rate=1e-2, weight_decay=0.1, mask=_matrices_only),
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def digits_problem():
    """A 64-32-10 ReLU MLP on scikit-learn's digits (all 1797, full batch), float32:
    the initial parameters, the loss and its gradient (:func:`networks.mlp_loss`)."""
    x, y = load_digits(return_X_y=True)
    x, y = jnp.asarray(x / 16.0, jnp.float32), jnp.asarray(y, jnp.int32)
    params = networks.init_mlp(jax.random.key(0), (64, 32, 10), jnp.float32)
    loss = functools.partial(networks.mlp_loss, x=x, labels=y)
    return params, jax.jit(loss), jax.jit(jax.grad(loss))


def _trajectories(problem, *optimizers, steps=100):
    """For each ``(init, update)``, the parameters after each step; the step of all
    of them compiled as one function, as a user's training step would be."""
    params, _, grad = problem
    carry = [(params, init(params)) for init, _ in optimizers]
    updates = [update for _, update in optimizers]

    @jax.jit
    def step(grads, carry):
        return [u(g, s, p) for u, g, (p, s) in zip(updates, grads, carry, strict=True)]

    out = []
    for _ in range(steps):
        carry = step([grad(p) for p, _ in carry], carry)
        out.append([p for p, _ in carry])
    return list(zip(*out, strict=True))


def _as_pure(transformation):
    def update(grads, state, params):
        updates, state = transformation.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return transformation.init, update


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_optimizers_equal_optax_over_100_steps_on_digits(digits_problem, case):
    """Pure pair, optax form and optax itself, parameters compared after every step.
    Measured on CPU: all three bitwise equal at every step (a max relative difference
    of 0). The problem amplifies round-off: with optax's apply_updates run apart from
    its compiled update, the pure pair and optax differ by 2e-7 to 4e-6 after 100
    steps, and masked AdamW by 3e-4, so each step is compiled whole on both sides."""
    (init, update, ours), theirs, hyper, their_hyper = CASES[case]
    update_hyper = {k: v for k, v in hyper.items() if k != "initial_scale"}  # init's
    init = functools.partial(init, **{k: v for k, v in hyper.items() if k not in update_hyper})
    pure = (init, functools.partial(update, **update_hyper))
    pure_run, optax_form_run = _trajectories(digits_problem, pure, _as_pure(ours(**hyper)))
    # optax's bias correction raises a float ** int32 under strict promotion
    with jax.numpy_dtype_promotion("standard"):
        (reference,) = _trajectories(digits_problem, _as_pure(theirs(**their_hyper)))
    for step, (a, b, c) in enumerate(zip(pure_run, optax_form_run, reference, strict=True)):
        assert_close(a, c, OPTAX_RTOL, f"{case} pure pair, step {step + 1}")
        assert_close(b, c, OPTAX_RTOL, f"{case} optax form, step {step + 1}")
    params, loss, _ = digits_problem
    assert loss(reference[-1]) < 0.5 * loss(params), "a real problem: the loss falls"


# ----------------------------------------------------------------------------------
# Each rule against the docstring's formula written out in NumPy, float64, on random
# gradients; where a docstring claims PyTorch's form, PyTorch's algorithm as documented.


def _ours(init, update, transformation, hyper, w0, grads):
    """Final parameters from the pure pair and from the optax form."""
    pure = jax.jit(functools.partial(update, **hyper))
    optax_form = jax.jit(_as_pure(transformation)[1])
    params = {"w": jnp.asarray(w0)}
    a, state, b, tx_state = params, init(params), params, transformation.init(params)
    for g in grads:
        a, state = pure({"w": jnp.asarray(g)}, state, a)
        b, tx_state = optax_form({"w": jnp.asarray(g)}, tx_state, b)
    return a["w"], b["w"]


@pytest.fixture
def w0_and_grads(key):
    """Parameters ``(3, 4)`` and six steps of gradients, float64."""
    draws = np.asarray(jax.random.normal(key, (7, 3, 4)))
    return draws[0], draws[1:]


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_is_pytorch_sgd_without_dampening(w0_and_grads, nesterov):
    w, grads = w0_and_grads
    lr, beta, buf = 0.1, 0.8, None
    for g in grads:  # torch.optim.SGD, dampening 0: the first step sets buf = g
        buf = g if buf is None else beta * buf + g
        w = w - lr * (g + beta * buf if nesterov else buf)
    hyper = dict(learning_rate=lr, beta=beta, nesterov=nesterov)
    for ours in _ours(
        optim.momentum_init, optim.momentum_update, optim.momentum(**hyper), hyper, *w0_and_grads
    ):
        assert_close(ours, w, RULE_RTOL, "momentum")


def test_momentum_velocity_form_is_the_same_at_a_constant_rate_only(w0_and_grads):
    """``v = beta * v - lr * g; w = w + v`` against dlref's ``v = beta * v + g;
    w = w - lr * v``: equal at a constant rate, not under a schedule."""
    w0, grads = w0_and_grads
    for rates, same in [(np.full(6, 0.1), True), (0.1 * 0.5 ** np.arange(6), False)]:
        w, v = w0, np.zeros_like(w0)
        for lr, g in zip(rates, grads, strict=True):
            v = 0.9 * v - lr * g
            w = w + v
        schedule = jnp.asarray(rates).__getitem__  # step -> rate
        hyper = dict(learning_rate=schedule, beta=0.9)
        pure, _ = _ours(
            optim.momentum_init, optim.momentum_update, optim.momentum(**hyper), hyper, w0, grads
        )
        # atol=0: relative only, as RULE_RTOL means (np.allclose adds 1e-8 absolutely otherwise)
        assert np.allclose(pure, w, rtol=RULE_RTOL, atol=0) == same


@pytest.mark.parametrize("eps_in_sqrt", [True, False])
def test_rmsprop_follows_its_rule_and_pytorch_puts_eps_outside(w0_and_grads, eps_in_sqrt):
    w, grads = w0_and_grads
    lr, decay, eps, nu = 0.01, 0.99, 0.1, np.full_like(w, 0.5)
    for g in grads:  # eps_in_sqrt=False: torch.optim.RMSprop(alpha=decay, eps=eps)
        nu = decay * nu + (1 - decay) * g**2
        w = w - lr * g / (np.sqrt(nu + eps) if eps_in_sqrt else np.sqrt(nu) + eps)
    hyper = dict(learning_rate=lr, decay=decay, eps=eps, eps_in_sqrt=eps_in_sqrt)
    init = functools.partial(optim.rmsprop_init, initial_scale=0.5)
    tx = optim.rmsprop(**hyper, initial_scale=0.5)
    for ours in _ours(init, optim.rmsprop_update, tx, hyper, *w0_and_grads):
        assert_close(ours, w, RULE_RTOL, "rmsprop")


def _adam_numpy(w, grads, lr, b1, b2, eps, eps_root=0.0, weight_decay=0.0):
    """torch.optim.Adam (eps_root 0) and torch.optim.AdamW as PyTorch documents them."""
    mu, nu = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        w = w * (1 - lr * weight_decay)  # AdamW's decay first, times the learning rate
        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * g**2
        mu_hat, nu_hat = mu / (1 - b1**t), nu / (1 - b2**t)
        w = w - lr * mu_hat / (np.sqrt(nu_hat + eps_root) + eps)
    return w


@pytest.mark.parametrize("eps_root", [0.0, 1e-3])
def test_adam_follows_its_rule_as_pytorch_adam(w0_and_grads, eps_root):
    hyper = dict(learning_rate=0.01, b1=0.8, b2=0.9, eps=1e-3, eps_root=eps_root)
    expected = _adam_numpy(*w0_and_grads, 0.01, 0.8, 0.9, 1e-3, eps_root)
    for ours in _ours(
        optim.adam_init, optim.adam_update, optim.adam(**hyper), hyper, *w0_and_grads
    ):
        assert_close(ours, expected, RULE_RTOL, "adam")


def test_adamw_is_pytorch_adamw_decay_times_learning_rate(w0_and_grads):
    hyper = dict(learning_rate=0.01, b1=0.8, b2=0.9, eps=1e-3, weight_decay=0.5)
    expected = _adam_numpy(*w0_and_grads, 0.01, 0.8, 0.9, 1e-3, weight_decay=0.5)
    for ours in _ours(
        optim.adam_init, optim.adamw_update, optim.adamw(**hyper), hyper, *w0_and_grads
    ):
        assert_close(ours, expected, RULE_RTOL, "adamw")


def test_adamw_mask_prefix_decays_only_chosen_leaves():
    params = [(jnp.ones((2, 2)), jnp.ones(2)), (jnp.ones((2, 2)), jnp.ones(2))]
    grads = jax.tree.map(jnp.zeros_like, params)  # the Adam part is 0: only decay moves
    hyper = dict(learning_rate=0.1, weight_decay=0.5, mask=[True, (False, True)])
    out, _ = optim.adamw_update(grads, optim.adam_init(params), params, **hyper)
    expected = [
        (0.95 * jnp.ones((2, 2)), 0.95 * jnp.ones(2)),
        (jnp.ones((2, 2)), 0.95 * jnp.ones(2)),
    ]
    jax.tree.map(np.testing.assert_allclose, out, expected)
    reference = optax.adamw(**hyper)
    with jax.numpy_dtype_promotion("standard"):  # optax needs it (see above)
        updates, _ = reference.update(grads, reference.init(params), params)
    jax.tree.map(np.testing.assert_allclose, out, optax.apply_updates(params, updates))


# ----------------------------------------------------------------------------------
# States, dtypes, transformations.


def test_states_are_namedtuples_that_count_steps():
    params = {"w": jnp.ones(3, jnp.float32)}
    for init, update, fields in [
        (optim.momentum_init, optim.momentum_update, ("step", "velocity")),
        (optim.rmsprop_init, optim.rmsprop_update, ("step", "nu")),
        (optim.adam_init, optim.adam_update, ("step", "mu", "nu")),
        (optim.adam_init, optim.adamw_update, ("step", "mu", "nu")),
    ]:
        state = init(params)
        assert state._fields == fields and state.step.dtype == jnp.int32
        for _ in range(3):
            params, state = update(params, state, params, learning_rate=0.1)
        assert int(state.step) == 3
        assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state[1:]))


def test_adam_bias_correction_stays_finite_in_bfloat16():
    """0.999 rounds to 1 in bfloat16, so ``1 - b2**t`` would be 0 there: the
    correction is computed in the default float type and only then cast."""
    assert jnp.asarray(1, jnp.bfloat16) - jnp.asarray(0.999, jnp.bfloat16) == 0
    params = {"w": jnp.linspace(-1, 1, 8, dtype=jnp.bfloat16)}
    state = optim.adam_init(params)
    with jax.numpy_dtype_promotion("standard"):  # optax needs it (see above)
        reference = optax.adam(0.1)
        ref_params, ref_state = params, reference.init(params)
        for _ in range(5):
            params, state = optim.adam_update(params, state, params, learning_rate=0.1)
            updates, ref_state = reference.update(ref_params, ref_state, ref_params)
            ref_params = optax.apply_updates(ref_params, updates)
    assert params["w"].dtype == state.mu["w"].dtype == state.nu["w"].dtype == jnp.bfloat16
    assert np.all(np.isfinite(np.asarray(params["w"], np.float32)))
    np.testing.assert_array_equal(np.asarray(params["w"], np.float32), ref_params["w"])


def test_updates_take_a_traced_learning_rate_under_jit():
    params = {"w": jnp.ones(3)}
    step = jax.jit(lambda lr, p, s: optim.adamw_update(p, s, p, learning_rate=lr, b1=0.5, b2=0.75))
    out, _ = step(jnp.asarray(0.1), params, optim.adam_init(params))
    np.testing.assert_allclose(out["w"], 1 - 0.1 * (1 / (1 + 1e-8) + 1e-4), rtol=RULE_RTOL)


# ----------------------------------------------------------------------------------
# Bad input: each names the function, the argument, what was expected and given.

_P = {"w": jnp.ones(3)}
_ADAM = optim.adam_init(_P)

BAD = [
    (
        "negative learning rate",
        lambda: optim.momentum(-0.1),
        r"momentum: `learning_rate` must be >= 0 \(a negative one climbs the loss\); got -0.1",
    ),
    (
        "negative learning rate, pure",
        lambda: optim.adam_update(_P, _ADAM, _P, learning_rate=-1e-3),
        r"adam_update: `learning_rate` must be >= 0 .*; got -0.001",
    ),
    (
        "negative learning rate, gradient descent",
        lambda: optim.gradient_descent(_P, _P, -1.0),
        r"gradient_descent: `learning_rate` must be >= 0",
    ),
    ("negative learning rate, sgd", lambda: optim.sgd(-1.0), r"sgd: `learning_rate` must be >= 0"),
    (
        "negative scheduled rate",
        lambda: optim.adam(lambda t: -0.1).update(_P, _ADAM, _P),
        r"adam: `learning_rate` must be >= 0 .*; got -0.1",
    ),
    (
        "NaN learning rate",
        lambda: optim.rmsprop(float("nan")),
        r"rmsprop: `learning_rate` must be finite; got nan",
    ),
    (
        "shaped learning rate",
        lambda: optim.adamw(jnp.ones(2)),
        r"adamw: `learning_rate` must be a scalar; got shape \(2,\)",
    ),
    (
        "beta 1",
        lambda: optim.momentum(0.1, beta=1.0),
        r"momentum: `beta` must lie in \[0, 1\); got 1.0",
    ),
    (
        "beta negative",
        lambda: optim.momentum_update(
            _P, optim.momentum_init(_P), _P, learning_rate=0.1, beta=-0.5
        ),
        r"momentum_update: `beta` must lie in \[0, 1\); got -0.5",
    ),
    (
        "decay 1",
        lambda: optim.rmsprop(0.1, decay=1.0),
        r"rmsprop: `decay` must lie in \[0, 1\); got 1.0",
    ),
    ("b1 above 1", lambda: optim.adam(0.1, b1=1.5), r"adam: `b1` must lie in \[0, 1\); got 1.5"),
    (
        "b2 1",
        lambda: optim.adamw_update(_P, _ADAM, _P, learning_rate=0.1, b2=1.0),
        r"adamw_update: `b2` must lie in \[0, 1\); got 1.0",
    ),
    (
        "b2 NaN",
        lambda: optim.adam(0.1, b2=float("nan")),
        r"adam: `b2` must lie in \[0, 1\); got nan",
    ),
    (
        "shaped beta",
        lambda: optim.adam(0.1, b1=jnp.ones(2)),
        r"adam: `b1` must be a scalar; got shape \(2,\)",
    ),
    (
        "negative eps",
        lambda: optim.adam(0.1, eps=-1e-8),
        r"adam: `eps` must be finite and >= 0; got -1e-08",
    ),
    (
        "infinite eps_root",
        lambda: optim.adam(0.1, eps_root=float("inf")),
        r"adam: `eps_root` must be finite and >= 0; got inf",
    ),
    (
        "negative weight decay",
        lambda: optim.adamw(0.1, weight_decay=-0.1),
        r"adamw: `weight_decay` must be finite and >= 0; got -0.1",
    ),
    (
        "negative initial scale",
        lambda: optim.rmsprop_init(_P, initial_scale=-1.0),
        r"rmsprop_init: `initial_scale` must be finite and >= 0; got -1.0",
    ),
    (
        "adamw without params",
        lambda: optim.adamw(0.1).update(_P, _ADAM),
        r"adamw: `update` needs `params` \(for the weight decay\); got None",
    ),
    (
        "mask structure",
        lambda: optim.adamw_update(_P, _ADAM, _P, learning_rate=0.1, mask={"v": True}),
        r"adamw_update: `mask` must be a tree of bools with the structure of `params`",
    ),
    (
        "grads structure",
        lambda: optim.adam(0.1).update({"v": jnp.ones(3)}, _ADAM, _P),
        r"adam: `grads` must have the structure of `params`",
    ),
    (
        "grads shape",
        lambda: optim.rmsprop_update(
            {"w": jnp.ones(2)}, optim.rmsprop_init(_P), _P, learning_rate=0.1
        ),
        r"rmsprop_update: each `grads` leaf must have its `params` leaf's shape; "
        r"got \(2,\) for \(3,\)",
    ),
    (
        "integer params",
        lambda: optim.momentum_update(
            {"w": jnp.ones(3)}, optim.momentum_init(_P), {"w": jnp.arange(3)}, learning_rate=0.1
        ),
        r"momentum_update: every `params` leaf must be floating",
    ),
]


@pytest.mark.parametrize("make, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_optimizers_bad_input_is_an_error(make, message):
    with pytest.raises(InputError, match=message):
        make()
