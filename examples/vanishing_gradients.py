"""Vanishing gradients: the first layer's gradient of a deep MLP, against depth, for sigmoid,
tanh and ReLU; and ReLU's dead units, which pass no gradient at all.

MLPs of ``depth`` hidden layers of width 64 (dlref's ``init_mlp``: LeCun normal weights,
variance 1/fan_in, zero biases) on a fixed batch of 256 digits, loss dlref's ``mlp_loss``
(``jax.grad`` runs the hand-written whole-network backprop). We measure the Frobenius norm
of the gradient of the first layer's weights, ``|dL/dW_1|``, for depth 2 to 30, three
initializations each (geometric mean), in float64 (in float32 the deep sigmoid gradients
underflow to exactly 0). ReLU is measured twice: with the same LeCun init and with He's
(variance 2/fan_in, the init made for it).

For ReLU's caveat we count dead units (never active on the data) and check that their
gradients are exactly 0: at the initialization, with a negative bias init, and after
training with a large learning rate.
"""

from __future__ import annotations

import functools
import itertools
import pathlib

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import examples
from dlref import networks, optim

TITLE = "Vanishing gradients: sigmoid, tanh and ReLU"
CLAIM = (
    "The sigmoid function has an interval of [0,1], while the ReLU has a range from "
    "[0, infinity]. [...] The ReLU does not suffer from the vanishing gradient problem."
)
# The dlref code the results depend on (hashed into the JSON: examples.code_files)
USES = (
    "dlref/networks.py",
    "dlref/optim.py",
    "dlref/layers/_dense.py",
    "dlref/losses/_cross_entropy.py",
)

WIDTH = 64
BATCH = 256
SEEDS = 3
# name: (activation, weight gain over init_mlp's LeCun normal)
CONFIGS = {
    "sigmoid": ("sigmoid", 1.0),
    "tanh": ("tanh", 1.0),
    "relu (LeCun init)": ("relu", 1.0),
    "relu (He init)": ("relu", float(np.sqrt(2.0))),
}
COLOURS = {"sigmoid": "C0", "tanh": "C1", "relu (LeCun init)": "C2", "relu (He init)": "C3"}


def init(seed: int, depth: int, gain: float = 1.0, bias: float = 0.0, seeds: int = 0) -> list:
    """An MLP's ``[(w, b), ...]`` as dlref's ``init_mlp`` draws it (LeCun normal weights,
    ``w ~ N(0, 1 / fan_in)``), times ``gain``, with hidden biases ``bias``; float64 NumPy.

    Drawn with NumPy (``default_rng(seed)``), which compiles nothing: 31 normal draws
    under ``jit`` cost seconds of XLA compilation on CPU. A network of depth d is the
    first d hidden layers and the output layer of the deepest one, so every depth shares
    its first layers. ``seeds > 0`` stacks that many draws on a leading axis (for vmap).
    """
    if seeds:
        draws = [init(seed + i, depth, gain, bias) for i in range(seeds)]
        return jax.tree.map(lambda *a: np.stack(a), *draws)
    rng = np.random.default_rng(seed)
    sizes = [WIDTH] * (depth + 1) + [10]
    return [
        (
            gain * rng.standard_normal((a, b)) / np.sqrt(a),
            np.full(b, bias if i < depth else 0.0),
        )
        for i, (a, b) in enumerate(itertools.pairwise(sizes))
    ]


def _first(params: list, depth: int) -> list:
    """The network of ``depth`` hidden layers inside a deeper one."""
    return [*params[:depth], params[-1]]


@functools.partial(jax.jit, static_argnames="activation")
def layer_grad_norms(params, x, y, *, activation: str) -> jax.Array:
    """``|dL/dW_l|`` for every layer l (hand-written backprop), per stacked init:
    ``(seeds, layers)``."""

    def one(p):
        grads = jax.grad(networks.mlp_loss)(p, x, y, activation=activation)
        return jnp.stack([jnp.linalg.norm(w) for w, _ in grads])

    return jax.vmap(one)(params)


@functools.partial(jax.jit, static_argnames="activation")
def error_norms(params, x, y, *, activation: str) -> jax.Array:
    """The backpropagated error ``dL/dz_l`` of every layer (the gradient of its
    pre-activations: the bias gradient of a one-example batch), RMS over the examples, per
    stacked init: ``(seeds, layers)``."""

    def one(p):
        def example(xi, yi):
            grads = jax.grad(networks.mlp_loss)(p, xi[None, :], yi[None], activation=activation)
            return jnp.stack([jnp.sum(db * db) for _, db in grads])

        return jnp.sqrt(jnp.mean(jax.vmap(example)(x, y), axis=0))

    return jax.vmap(one)(params)


def _hidden(params, x) -> list:
    """The ReLU network's hidden outputs (forward only)."""
    out, a = [], x
    for w, b in params[:-1]:
        z = a @ w + b[None, :]
        a = jnp.where(z > 0, z, 0)
        out.append(a)
    return out


@jax.jit
def dead_units(params, x, y) -> dict:
    """Per layer: which units are dead on ``x`` (never positive), and whether the gradient
    of each unit's incoming weights, bias and outgoing weights is exactly 0."""
    hidden = _hidden(params, x)
    grads = jax.grad(networks.mlp_loss)(params, x, y, activation="relu")
    dead = jnp.stack([jnp.all(h <= 0, axis=0) for h in hidden])  # (layers, width)
    zero = jnp.stack(
        [
            jnp.all(grads[i][0] == 0, axis=0)
            & (grads[i][1] == 0)
            & jnp.all(grads[i + 1][0] == 0, axis=1)
            for i in range(len(hidden))
        ]
    )
    loss = networks.mlp_loss(params, x, y, activation="relu")
    return {"dead": dead, "zero_grad": zero, "loss": loss}


@jax.jit
def train_relu(params, x, y, batches, learning_rate) -> list:
    """A ReLU MLP trained by gradient descent on the given mini-batches."""

    def step(params, idx):
        g = jax.grad(networks.mlp_loss)(params, x[idx], y[idx], activation="relu")
        return optim.gradient_descent(params, g, learning_rate), None

    return jax.lax.scan(step, params, batches)[0]


def _dead_summary(res) -> dict:
    dead, zero = np.asarray(res["dead"]), np.asarray(res["zero_grad"])
    active = ~dead
    return {
        "per_layer": dead.mean(axis=1),
        "fraction": float(dead.mean()),
        "count": int(dead.sum()),
        "dead_zero_grad": bool(np.all(zero[dead])),  # every dead unit: gradient exactly 0
        # active units whose gradient is not exactly 0
        "active_nonzero": f"{int(np.sum(~zero & active))} of {int(np.sum(active))}",
        "loss": float(res["loss"]),
    }


def run(out_dir: pathlib.Path, quick: bool = False) -> dict:
    examples.setup()
    depths = [2, 30] if quick else list(range(2, 31, 2))
    data = examples.digits()
    x = jnp.asarray(data["x_train"][:BATCH], jnp.float64)
    y = jnp.asarray(data["y_train"][:BATCH])
    deepest = init(0, depths[-1], seeds=SEEDS)

    norms = {name: [] for name in CONFIGS}  # geometric mean over seeds, first layer
    profiles = {}  # every layer's error in the deepest network (geometric mean)
    for name, (activation, gain) in CONFIGS.items():
        stacked = jax.tree.map(lambda a, gain=gain: jnp.asarray(a * gain, jnp.float64), deepest)
        for depth in depths:
            params = _first(stacked, depth)
            per_layer = np.asarray(layer_grad_norms(params, x, y, activation=activation))
            log_mean = np.exp(np.mean(np.log(per_layer), axis=0))
            norms[name].append(float(log_mean[0]))
            if depth == depths[-1]:
                errors = np.asarray(error_norms(params, x, y, activation=activation))
                profiles[name] = np.exp(np.mean(np.log(errors), axis=0))
    norms = {name: np.array(v) for name, v in norms.items()}
    ratios = {name: float(v[-1] / v[0]) for name, v in norms.items()}
    error_span = {name: float(p[0] / p[-1]) for name, p in profiles.items()}
    per_layer_factor = {
        name: float(ratios[name] ** (1 / (depths[-1] - depths[0]))) for name in CONFIGS
    }

    # float32: the deepest sigmoid network's first-layer gradient underflows.
    f32 = np.asarray(
        layer_grad_norms(
            jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), deepest),
            jnp.asarray(x, jnp.float32),
            y,
            activation="sigmoid",
        )
    )
    sigmoid_f32_zero = int(np.sum(f32[:, 0] == 0))

    # Dead ReLU units (He init, depth 10) on the whole training set.
    dead_depth = 10
    x_all = jnp.asarray(data["x_train"], jnp.float64)
    y_all = jnp.asarray(data["y_train"])
    he = float(np.sqrt(2.0))
    init_params = jax.tree.map(jnp.asarray, init(100, dead_depth, he))
    negative = jax.tree.map(jnp.asarray, init(100, dead_depth, he, bias=-1.0))
    rng = np.random.default_rng(0)
    steps = 200
    batches = jnp.asarray(
        np.stack([rng.choice(len(data["y_train"]), 64, replace=False) for _ in range(steps)]),
        jnp.int32,
    )
    dead = {
        "He init": _dead_summary(dead_units(init_params, x_all, y_all)),
        "He init, biases -1": _dead_summary(dead_units(negative, x_all, y_all)),
    }
    for lr in (0.05, 0.4):
        trained = train_relu(init_params, x_all, y_all, batches, jnp.asarray(lr, jnp.float64))
        dead[f"after {steps} steps, lr {lr}"] = _dead_summary(dead_units(trained, x_all, y_all))
    # A run whose loss is NaN diverged: its units are not "dead" but NaN (dlref's relu
    # propagates NaN; one that maps NaN to 0 would show this as a dead network with the
    # loss ln 10 of a constant output). Its gradients say nothing about dead units.
    diverged = {name for name, d in dead.items() if not np.isfinite(d["loss"])}
    all_dead_zero = all(d["dead_zero_grad"] for n, d in dead.items() if n not in diverged)
    high = dead[f"after {steps} steps, lr 0.4"]
    if f"after {steps} steps, lr 0.4" in diverged:
        died = ": training diverged (the loss is NaN), which no unit count describes"
    elif high["fraction"] > 0.9:
        died = (
            f": the network died (ln 10 = {np.log(10):.3f} is the loss of a constant output; "
            "nothing reaches the lower layers, so it stays there)"
        )
    else:
        died = ""
    total_dead = sum(d["count"] for d in dead.values())

    # Figure.
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.4), layout="constrained")
    ax = axes[0]
    for name in CONFIGS:
        ax.semilogy(depths, norms[name], "o-", ms=4, color=COLOURS[name], label=name)
    theory = norms["relu (LeCun init)"][0] * 2.0 ** (-(np.array(depths) - depths[0]) / 2)
    ax.semilogy(depths, theory, ":", color="C2", label="2^(-depth/2) (ReLU, variance 1/fan_in)")
    ax.set_xlabel("depth (hidden layers of 64)")
    ax.set_ylabel("|dL/dW_1| (first layer; geometric mean of 3 inits)")
    ax.set_title("the first layer's gradient against depth (float64)")
    ax.legend(fontsize=9)

    ax = axes[1]
    for name in CONFIGS:
        layers = np.arange(1, len(profiles[name]) + 1)
        ax.semilogy(layers, profiles[name], "o-", ms=3, color=COLOURS[name], label=name)
    ax.set_xlabel(f"layer (1 = first; {depths[-1] + 1} = output)")
    ax.set_ylabel("|dL/dz_l| per example (RMS over the batch)")
    ax.set_title(f"the error backpropagated through the depth-{depths[-1]} networks")
    ax.legend(fontsize=9)

    ax = axes[2]
    styles = ["o-", "s-", "^-", "v-"]
    for (name, d), style in zip(dead.items(), styles, strict=True):
        layers = np.arange(1, dead_depth + 1)
        ax.plot(layers, d["per_layer"], style, ms=4, label=f"{name}: {d['fraction']:.1%} dead")
    ax.legend(fontsize=9, loc="center left")
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel(f"hidden layer (ReLU, depth {dead_depth}, He init)")
    ax.set_ylabel("fraction of units never active on the 1347 training images")
    ax.set_title(
        f"dead units: all {total_dead} (4 networks) have gradient exactly 0"
        if all_dead_zero
        else "dead units: some have a non-zero gradient"
    )
    figure = examples.save(fig, out_dir, "vanishing_gradients")

    he_name, lecun_name = "relu (He init)", "relu (LeCun init)"
    holds = (
        ratios["sigmoid"] < 1e-6
        and ratios[he_name] > 1e-2
        and ratios[lecun_name] < 1e-3
        and all_dead_zero
        and dead["He init, biases -1"]["fraction"] > dead["He init"]["fraction"]
    )
    verdict = "holds with a caveat" if holds else "does not hold"
    d0, dneg = dead["He init"], dead["He init, biases -1"]
    d_hi = dead[f"after {steps} steps, lr 0.4"]
    d_lo = dead[f"after {steps} steps, lr 0.05"]
    summary = (
        f"|dL/dW_1| at depth {depths[-1]} over depth {depths[0]}: sigmoid "
        f"{ratios['sigmoid']:.1e}, tanh {ratios['tanh']:.2g}, ReLU {ratios[he_name]:.2g} with He "
        f"init but {ratios[lecun_name]:.1e} with the same LeCun init as the others; dead ReLU "
        f"units ({d0['fraction']:.1%} at init, {dneg['fraction']:.0%} with biases -1"
        + (
            "; training at lr 0.4 diverged to NaN) get a gradient of exactly 0"
            if not np.isfinite(d_hi["loss"])
            else f", {d_hi['fraction']:.1%} after training at lr 0.4) get a gradient of exactly 0"
        )
    )
    head = (
        f"| activation | \\|dL/dW_1\\| at depth {depths[0]} | at depth {depths[-1]} | ratio "
        "| factor per layer |\n|---|---|---|---|---|\n"
    )
    table = head + "\n".join(
        f"| {name} | {norms[name][0]:.3g} | {norms[name][-1]:.3g} | {ratios[name]:.2g} | "
        f"{per_layer_factor[name]:.3f} |"
        for name in CONFIGS
    )
    dead_head = (
        f"| ReLU network | dead units (of {dead_depth * WIDTH}) | their gradients all exactly 0 "
        "| active units with a non-zero gradient | training loss |\n|---|---|---|---|---|\n"
    )
    dead_table = dead_head + "\n".join(
        f"| {name} | {d['count']} ({d['fraction']:.1%}) | "
        f"{'yes' if d['dead_zero_grad'] else 'NO'} | {d['active_nonzero']} | {d['loss']:.3f} |"
        for name, d in dead.items()
    )
    notes = f"""
MLPs with `depth` hidden layers of 64 units (weights LeCun normal, of variance 1/fan_in,
as dlref's `init_mlp` draws them, here with NumPy; zero biases; three inits, and a network
of depth d is the first d hidden layers of the deepest one) on a fixed batch of {BATCH}
standardized digits; `jax.grad(mlp_loss)` (the hand-written backprop), in float64.

{table}

- **Sigmoid vanishes**: its derivative is at most 1/4, and every layer multiplies the
  gradient by `w.T` and by `sigmoid'(z)`: a factor {per_layer_factor["sigmoid"]:.2f} per
  layer here, {ratios["sigmoid"]:.0e} over {depths[-1] - depths[0]} layers. In float32 the
  depth-{depths[-1]} sigmoid network's first-layer gradient is exactly 0.0 for
  {sigmoid_f32_zero} of {SEEDS} inits (it underflows): no learning at all there.
- **Where it vanishes** (middle panel): the error `dL/dz_l` backpropagated through the
  depth-{depths[-1]} networks is, at the first layer, {error_span["sigmoid"]:.0e} of its
  size at the output layer for sigmoid, {error_span["tanh"]:.2g} for tanh,
  {error_span[lecun_name]:.1e} for ReLU with LeCun init and {error_span[he_name]:.2g} with He
  init. (The weight gradients `dW_l = a_(l-1).T dz_l` of the deep layers are no larger
  for ReLU with LeCun init: its forward signal `a` shrinks by the same factor per layer.)
- **ReLU keeps the gradient, with the right init**: on an active unit ReLU's derivative
  is exactly 1, so nothing saturates; with He's init (variance 2/fan_in) the gradient at
  depth {depths[-1]} is {ratios[he_name]:.2g} of that at depth {depths[0]}.
- **Caveat 1, the init**: with the LeCun init the other two activations get, ReLU's
  gradient vanishes too, by {ratios[lecun_name]:.1e} (a factor
  {per_layer_factor[lecun_name]:.2f} per layer, close to `1/sqrt(2) = 0.71`: ReLU zeroes
  half of each layer's pre-activations, halving the variance of the signal forward and of
  the gradient backward, which the dotted line in the left panel draws). Tanh, whose
  derivative is 1 at 0, keeps {ratios["tanh"]:.2g} with the same init: better than ReLU
  here. "Does not suffer" is a property of ReLU together with its init (He et al. 2015),
  not of ReLU alone.
- **Caveat 2, dead units**: a ReLU unit that is negative on every input passes no
  gradient: its incoming weights, its bias and its outgoing weights all get exactly 0,
  so gradient descent can never revive it through its own weights (table below; depth
  {dead_depth}, He init, all 1347 training images). Negative biases and large learning
  rates make more of them.

{dead_table}

- Training ({steps} steps of gradient descent, mini-batches of 64) at lr 0.05 leaves
  {d_lo["fraction"]:.1%} of the units dead (loss {d_lo["loss"]:.3f}); at lr 0.4
  {d_hi["fraction"]:.1%} are dead and the loss is {d_hi["loss"]:.3f}{died}. The gradient
  flows only through active units, so a dead unit is a vanished gradient of its own
  ("dying ReLU"); leaky ReLU, a small positive bias init or a smaller learning rate are
  the usual remedies.
- Some active units get no gradient either ({dneg["active_nonzero"]} have one with
  biases -1): wherever they are active, every unit they feed is inactive, so the zeros
  of the layers above reach them too.
- The vanishing gradient of recurrent networks (the cheat sheet's LSTM/GRU entry) is the
  memory topic's.
"""
    return examples.result(
        verdict,
        summary,
        figure,
        notes,
        depths=depths,
        norms={name: v.tolist() for name, v in norms.items()},
        ratios=ratios,
        per_layer_factor=per_layer_factor,
        error_first_over_last=error_span,
        sigmoid_float32_zero=sigmoid_f32_zero,
        dead_fraction={name: d["fraction"] for name, d in dead.items()},
        dead_zero_grad=all_dead_zero,
        active_nonzero={name: d["active_nonzero"] for name, d in dead.items()},
    )


if __name__ == "__main__":
    examples.main_one("vanishing_gradients", run)
