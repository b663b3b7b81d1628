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
SEEDS = 10  # inits per measurement of the gradient at init
# name: (activation, weight gain over init_mlp's LeCun normal)
CONFIGS = {
    "sigmoid": ("sigmoid", 1.0),
    "tanh": ("tanh", 1.0),
    "relu (LeCun init)": ("relu", 1.0),
    "relu (He init)": ("relu", float(np.sqrt(2.0))),
}
COLOURS = {"sigmoid": "C0", "tanh": "C1", "relu (LeCun init)": "C2", "relu (He init)": "C3"}
# Exploding gradients: a ReLU network whose weights are EXPLODE_GAIN times He's, so that
# each layer multiplies the backpropagated error by about that factor; trained with and
# without clipping the gradient's global norm to CLIP_NORM, at each lr of CLIP_LRS.
EXPLODE_GAIN = 1.5
EXPLODE_DEPTH = 12
CLIP_NORM = 1.0
CLIP_LRS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)
DEAD_LRS = (0.05, 0.1, 0.2, 0.3, 0.4)  # the dead-unit count after training, a small and large lr
CLIP_SEEDS = 10


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


@jax.jit
def train_clipped(params, learning_rates, clips, x, y, batches):
    """Gradient descent on a ReLU MLP, each step's gradient scaled down to global norm at
    most ``clip`` (``inf``: no clipping), vmapped over stacked ``(params, lr, clip)``.
    Returns each step's gradient norm (before clipping) and the final loss on ``x``."""

    def one(params, lr, clip):
        def step(params, idx):
            g = jax.grad(networks.mlp_loss)(params, x[idx], y[idx], activation="relu")
            norm = jnp.sqrt(sum(jnp.sum(a * a) for a in jax.tree.leaves(g)))
            scale = jnp.minimum(1.0, clip / norm)
            g = jax.tree.map(lambda a: a * scale, g)
            return optim.gradient_descent(params, g, lr), norm

        params, norms = jax.lax.scan(step, params, batches)
        return norms, networks.mlp_loss(params, x, y, activation="relu")

    return jax.vmap(one)(params, learning_rates, clips)


def exploding(x_all, y_all, batches) -> dict:
    """The exploding gradient and clipping: the per-layer gradient growth of a ReLU MLP
    with weights EXPLODE_GAIN x He's, and its training with and without clipping."""
    gain = EXPLODE_GAIN * float(np.sqrt(2.0))
    seeds = CLIP_SEEDS
    base = init(200, EXPLODE_DEPTH, gain, seeds=seeds)
    errors = np.asarray(
        error_norms(
            jax.tree.map(jnp.asarray, base), x_all[:BATCH], y_all[:BATCH], activation="relu"
        )
    )  # |dL/dz_l| per layer: the backpropagated error, first layer over the last hidden one
    growth = float(np.exp(np.mean(np.log(errors[:, 0] / errors[:, -2]))))
    n_lr = len(CLIP_LRS)
    stacked = jax.tree.map(
        lambda a: jnp.asarray(np.tile(a, (2 * n_lr,) + (1,) * (a.ndim - 1))), base
    )
    lrs = np.repeat(np.tile(CLIP_LRS, 2), seeds)
    clips = np.repeat([np.inf, CLIP_NORM], n_lr * seeds)
    norms, final = train_clipped(
        stacked, jnp.asarray(lrs), jnp.asarray(clips), x_all, y_all, batches
    )
    final = np.asarray(final, np.float64).reshape(2, n_lr, seeds)
    first_norm = float(np.median(np.asarray(norms)[:, 0]))
    start = float(
        np.median(
            np.asarray(
                jax.vmap(lambda p: networks.mlp_loss(p, x_all, y_all, activation="relu"))(
                    jax.tree.map(jnp.asarray, base)
                )
            )
        )
    )
    out = {}
    for i, name in enumerate(("no clipping", f"clipped to norm {CLIP_NORM:g}")):
        diverged = ~np.isfinite(final[i]) | (final[i] > start)
        rows = []
        for j, lr in enumerate(CLIP_LRS):
            n_div = int(diverged[j].sum())
            ok = final[i, j][~diverged[j]]
            rows.append(
                {
                    "lr": lr,
                    "diverged": n_div,
                    "diverged_interval": examples.wilson(n_div, seeds),
                    "loss": examples.mean_interval(ok, within=(0, np.inf)) if ok.size else None,
                }
            )
        usable = [r for r in rows if r["diverged"] == 0]
        best = min(usable, key=lambda r: r["loss"][0]) if usable else None
        out[name] = {"rows": rows, "best": best}
    return {
        "growth": growth,
        "depth": EXPLODE_DEPTH,
        "seeds": seeds,
        "start_loss": start,
        "first_norm": first_norm,
        "runs": out,
    }


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
    # A small lr, and the largest of a grid at which training stays finite: a run that
    # diverges to NaN has no dead units to count (dlref's relu propagates NaN).
    trials = {}
    for lr in DEAD_LRS:
        trained = train_relu(init_params, x_all, y_all, batches, jnp.asarray(lr, jnp.float64))
        trials[lr] = _dead_summary(dead_units(trained, x_all, y_all))
    finite = [lr for lr in DEAD_LRS if np.isfinite(trials[lr]["loss"])]
    lr_lo, lr_hi = DEAD_LRS[0], max(finite) if finite else DEAD_LRS[-1]
    too_large = [lr for lr in DEAD_LRS if lr not in finite]
    dead[f"after {steps} steps, lr {lr_lo:g}"] = trials[lr_lo]
    dead[f"after {steps} steps, lr {lr_hi:g}"] = trials[lr_hi]
    # A run whose loss is NaN diverged: its units are not "dead" but NaN (dlref's relu
    # propagates NaN; one that maps NaN to 0 would show this as a dead network with the
    # loss ln 10 of a constant output). Its gradients say nothing about dead units.
    diverged = {name for name, d in dead.items() if not np.isfinite(d["loss"])}
    all_dead_zero = all(d["dead_zero_grad"] for n, d in dead.items() if n not in diverged)
    high = dead[f"after {steps} steps, lr {lr_hi:g}"]
    if f"after {steps} steps, lr {lr_hi:g}" in diverged:
        died = ": training diverged (the loss is NaN), which no unit count describes"
    elif high["fraction"] > 0.9:
        died = (
            f": the network died (ln 10 = {np.log(10):.3f} is the loss of a constant output; "
            "nothing reaches the lower layers, so it stays there)"
        )
    else:
        died = ""
    total_dead = sum(d["count"] for d in dead.values())
    boom = exploding(x_all, y_all, batches)
    plain_runs, clip_runs = (
        boom["runs"]["no clipping"],
        boom["runs"][f"clipped to norm {CLIP_NORM:g}"],
    )

    def best_text(r) -> str:
        b = r["best"]
        if b is None:
            return "no learning rate trains every seed"
        return (
            f"best lr {b['lr']:g}: loss {b['loss'][0]:.3f} [{b['loss'][1]:.3f}, {b['loss'][2]:.3f}]"
        )

    clip_rows = "\n".join(
        f"| {a['lr']:g} | {a['diverged']}/{boom['seeds']} | {c['diverged']}/{boom['seeds']} | "
        + " | ".join(
            "-"
            if r["loss"] is None
            else f"{r['loss'][0]:.3f} [{r['loss'][1]:.3f}, {r['loss'][2]:.3f}]"
            for r in (a, c)
        )
        + " |"
        for a, c in zip(plain_runs["rows"], clip_runs["rows"], strict=True)
    )
    more_usable = sum(r["diverged"] == 0 for r in clip_runs["rows"]) > sum(
        r["diverged"] == 0 for r in plain_runs["rows"]
    )
    boom_text = (
        f"with weights {EXPLODE_GAIN:g} times He's, each layer multiplies the backpropagated "
        f"error by about {EXPLODE_GAIN:g}: at the first layer the error `dL/dz` is "
        f"{boom['growth']:.0f} times that at the last hidden layer (depth {boom['depth']}, "
        f"{boom['seeds']} inits), and the "
        f"first step's gradient norm is {boom['first_norm']:.2g}. Trained {steps} steps "
        f"(mini-batches of 64) from those inits, a run diverges (final loss non-finite or above "
        f"the initial {boom['start_loss']:.2f}) at the larger rates without clipping; clipping "
        f"the gradient's global norm to {CLIP_NORM:g} "
        + ("trains at more of the rates" if more_usable else "does not widen the usable rates here")
        + f" (without: {best_text(plain_runs)}; with: {best_text(clip_runs)}; intervals: t 95%)"
    )

    # Figure.
    fig, axes = plt.subplots(1, 4, figsize=(24, 5.4), layout="constrained")
    ax = axes[0]
    for name in CONFIGS:
        ax.semilogy(depths, norms[name], "o-", ms=4, color=COLOURS[name], label=name)
    theory = norms["relu (LeCun init)"][0] * 2.0 ** (-(np.array(depths) - depths[0]) / 2)
    ax.semilogy(depths, theory, ":", color="C2", label="2^(-depth/2) (ReLU, variance 1/fan_in)")
    ax.set_xlabel("depth (hidden layers of 64)")
    ax.set_ylabel(f"|dL/dW_1| (first layer; geometric mean of {SEEDS} inits)")
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
    ax = axes[3]
    notes_div = []
    for (name, run), colour in zip(boom["runs"].items(), ("C3", "C0"), strict=True):
        lr_ok = [r["lr"] for r in run["rows"] if r["loss"] is not None]
        mean = [r["loss"][0] for r in run["rows"] if r["loss"] is not None]
        low = [r["loss"][0] - r["loss"][1] for r in run["rows"] if r["loss"] is not None]
        high = [r["loss"][2] - r["loss"][0] for r in run["rows"] if r["loss"] is not None]
        ax.errorbar(
            lr_ok,
            mean,
            yerr=[low, high],
            fmt="o-",
            color=colour,
            capsize=3,
            label=f"{name} (mean of the runs that did not diverge)",
        )
        div = [f"{r['lr']:g}: {r['diverged']}" for r in run["rows"] if r["diverged"]]
        if div:
            notes_div.append(f"{name}, diverged of {boom['seeds']} at lr " + ", ".join(div))
    if notes_div:
        ax.text(
            0.98,
            0.8,
            "\n".join(notes_div) + "\n(not drawn)",
            transform=ax.transAxes,
            fontsize=8,
            va="top",
            ha="right",
        )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"training loss after {steps} steps")
    ax.set_title(
        f"exploding gradients (ReLU, {EXPLODE_GAIN:g} x He init, depth {EXPLODE_DEPTH}): clipping",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper right")
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
    d_hi = dead[f"after {steps} steps, lr {lr_hi:g}"]
    d_lo = dead[f"after {steps} steps, lr {lr_lo:g}"]
    diverged_text = (
        f" (lr {', '.join(f'{lr:g}' for lr in too_large)} diverged to a non-finite loss, so "
        "no unit count describes them)"
        if too_large
        else ""
    )
    summary = (
        f"|dL/dW_1| at depth {depths[-1]} over depth {depths[0]}: sigmoid "
        f"{ratios['sigmoid']:.1e}, tanh {ratios['tanh']:.2g}, ReLU {ratios[he_name]:.2g} with He "
        f"init but {ratios[lecun_name]:.1e} with the same LeCun init as the others; dead ReLU "
        f"units ({d0['fraction']:.1%} at init, {dneg['fraction']:.0%} with biases -1"
        + (
            f"; training at lr {lr_hi:g} diverged to NaN) get a gradient of exactly 0"
            if not np.isfinite(d_hi["loss"])
            else f", {d_hi['fraction']:.1%} after training at lr {lr_hi:g}) get a gradient of "
            "exactly 0"
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
as dlref's `init_mlp` draws them, here with NumPy; zero biases; {SEEDS} inits, and a network
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

- Training ({steps} steps of gradient descent, mini-batches of 64) at lr {lr_lo:g} leaves
  {d_lo["fraction"]:.1%} of the units dead (loss {d_lo["loss"]:.3f}); at lr {lr_hi:g}, the
  largest of {{{", ".join(f"{lr:g}" for lr in DEAD_LRS)}}} that stays finite{diverged_text},
  {d_hi["fraction"]:.1%} are dead and the loss is {d_hi["loss"]:.3f}{died}. The gradient
  flows only through active units, so a dead unit is a vanished gradient of its own
  ("dying ReLU"); leaky ReLU, a small positive bias init or a smaller learning rate are
  the usual remedies.
- Some active units get no gradient either ({dneg["active_nonzero"]} have one with
  biases -1): wherever they are active, every unit they feed is inactive, so the zeros
  of the layers above reach them too.
- **The opposite, exploding gradients, and clipping** (not in the cheat sheet): {boom_text}.

| lr | diverged, no clipping | diverged, clipped | final loss, no clipping | final loss, clipped |
|---|---|---|---|---|
{clip_rows}

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
        exploding_growth=boom["growth"],
        clipping={
            name: [
                {
                    "lr": r["lr"],
                    "diverged": r["diverged"],
                    "loss": None if r["loss"] is None else list(r["loss"]),
                }
                for r in run["rows"]
            ]
            for name, run in boom["runs"].items()
        },
        clipping_widens=more_usable,
    )


if __name__ == "__main__":
    examples.main_one("vanishing_gradients", run)
