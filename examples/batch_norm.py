"""Batch normalization: does a deep network reach a training loss sooner with it?

A deep MLP (10 hidden layers of 64, sigmoid) on scikit-learn's digits, trained by plain
mini-batch gradient descent (dlref's ``gradient_descent``) with and without dlref's
``batch_norm`` between each hidden dense layer and its sigmoid (``training=True`` while
training: batch statistics, running statistics updated; ``training=False`` with the running
statistics for the test). Each variant gets a sweep of learning rates and is judged at its
best: the number of steps until the training loss (the mean of the last 25 mini-batch
losses) first falls below a threshold.
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
from dlref import activations, layers, losses, optim

TITLE = "Batch normalization"
CLAIM = (
    "[1] When networks have many deep layers there becomes an issue of internal covariate "
    "shift. The shift is \u201cthe change in the distribution of network activations due to "
    "the change in network parameters during training.\u201d (Szegedy). If we can reduce "
    "internal covariate shift we can train faster and better. Batch Normalization solves "
    "this problem by normalizing each batch into the network by both mean and variance."
)
# The dlref code the results depend on (hashed into the JSON: examples.code_files)
USES = (
    "dlref/activations/_basic.py",
    "dlref/layers/_dense.py",
    "dlref/layers/_norm.py",
    "dlref/losses/_cross_entropy.py",
    "dlref/optim.py",
)

DEPTH = 10
WIDTH = 64
BATCH = 64
THRESHOLD = 0.1  # training cross-entropy to reach
THRESHOLDS = (0.3, 0.1, 0.03)  # all reported
WINDOW = 25  # steps averaged for the training loss
# "sigmoid 4x": sigmoid with weights 4 times LeCun's, the factor Glorot and Bengio (2010)
# give for sigmoid (its slope at 0 is 1/4): the well-initialized sigmoid network without
# batch norm, the fair baseline for it.
ACTIVATIONS = {
    "sigmoid": activations.sigmoid,
    "sigmoid 4x": activations.sigmoid,
    "tanh": activations.tanh,
}
VARIANTS = (
    ("sigmoid", False),
    ("sigmoid", True),
    ("sigmoid 4x", False),
    ("tanh", False),
    ("tanh", True),
)
LEARNING_RATES = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
SHIFT_LRS = (0.03, 0.1, 0.3)  # where tanh trains with and without batch norm
SHIFT_SEEDS = 10
SHIFT_STEPS = 500


def init(seed: int, count: int) -> dict:
    """``count`` stacked networks: dense layers as dlref's ``init_mlp`` draws them (LeCun
    normal, zero biases; drawn with NumPy, nothing to compile) and, per hidden layer,
    dlref's ``init_batch_norm`` (scale 1, shift 0, running mean 0 and variance 1)."""
    rng = np.random.default_rng(seed)
    sizes = [64] + [WIDTH] * DEPTH + [10]
    dense = [
        (
            jnp.asarray(rng.standard_normal((count, a, b)) / np.sqrt(a), jnp.float32),
            jnp.zeros((count, b), jnp.float32),
        )
        for a, b in itertools.pairwise(sizes)
    ]
    norm, state = [], []
    for _ in range(DEPTH):
        scale, shift, running = layers.init_batch_norm(WIDTH, jnp.float32)
        norm.append(jax.tree.map(lambda a: jnp.stack([a] * count), (scale, shift)))
        state.append(jax.tree.map(lambda a: jnp.stack([a] * count), running))
    return {"dense": dense, "norm": norm, "state": state}


def forward(params, state, x, *, activation: str, use_bn: bool, training: bool):
    """Logits and the new running statistics: dense -> [batch_norm] -> activation per
    hidden layer, then a dense output layer (all dlref's ops)."""
    a, new_state = x, []
    for i, (w, b) in enumerate(params["dense"][:-1]):
        z = layers.dense(a, w, b)
        if use_bn:
            scale, shift = params["norm"][i]
            z, s = layers.batch_norm(z, scale, shift, state[i], training=training)
            new_state.append(s)
        a = ACTIVATIONS[activation](z)
    w, b = params["dense"][-1]
    return layers.dense(a, w, b), new_state if use_bn else state


def _loss(params, state, x, y, activation, use_bn):
    logits, new_state = forward(
        params, state, x, activation=activation, use_bn=use_bn, training=True
    )
    loss = jnp.mean(losses.softmax_cross_entropy_with_integer_labels(logits, y))
    return loss, new_state


@functools.partial(jax.jit, static_argnames=("activation", "use_bn"))
def train(nets, learning_rates, x, y, batches, x_test, y_test, *, activation: str, use_bn: bool):
    """Gradient descent on the given mini-batches, vmapped over (net, learning rate).
    Returns the mini-batch loss of every step and the final test accuracy (running stats)."""

    def one(net, lr):
        params = {"dense": net["dense"], "norm": net["norm"]}

        def step(carry, idx):
            params, state = carry
            (value, state), grads = jax.value_and_grad(_loss, has_aux=True)(
                params, state, x[idx], y[idx], activation, use_bn
            )
            params = optim.gradient_descent(params, grads, lr)
            return (params, state), value

        (params, state), curve = jax.lax.scan(step, (params, net["state"]), batches)
        logits, _ = forward(
            params, state, x_test, activation=activation, use_bn=use_bn, training=False
        )
        predicted = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        return curve, jnp.mean((predicted == y_test).astype(jnp.float32))

    return jax.vmap(one)(nets, learning_rates)


@functools.partial(jax.jit, static_argnames=("activation", "use_bn"))
def shift_trace(nets, learning_rates, x, y, batches, probe, *, activation: str, use_bn: bool):
    """Internal covariate shift, measured directly: while training as :func:`train` does,
    the distribution of every hidden layer's output (the next dense layer's input) on a
    fixed ``probe`` batch, before each step; per step and layer, the change of each unit's
    mean and standard deviation over the probe, averaged over the units. With batch norm,
    the probe is normalized with its own statistics (``training=True``; the running
    statistics are left alone). Vmapped over (net, learning rate): ``(models, steps, DEPTH)``
    for the mean's and the standard deviation's change, and the loss curve."""

    def layer_inputs(params, state):
        a, outs = probe, []
        for i, (w, b) in enumerate(params["dense"][:-1]):
            z = layers.dense(a, w, b)
            if use_bn:
                scale, shift = params["norm"][i]
                z, _ = layers.batch_norm(z, scale, shift, state[i], training=True)
            a = ACTIVATIONS[activation](z)
            outs.append(a)
        stacked = jnp.stack(outs)  # (DEPTH, probe, WIDTH)
        return jnp.mean(stacked, axis=1), jnp.std(stacked, axis=1)

    def one(net, lr):
        params = {"dense": net["dense"], "norm": net["norm"]}

        def step(carry, idx):
            params, state, before = carry
            (value, state), grads = jax.value_and_grad(_loss, has_aux=True)(
                params, state, x[idx], y[idx], activation, use_bn
            )
            params = optim.gradient_descent(params, grads, lr)
            after = layer_inputs(params, state)
            d_mean = jnp.mean(jnp.abs(after[0] - before[0]), axis=-1)
            d_std = jnp.mean(jnp.abs(after[1] - before[1]), axis=-1)
            return (params, state, after), (d_mean, d_std, value)

        start = layer_inputs(params, net["state"])
        _, (d_mean, d_std, curve) = jax.lax.scan(step, (params, net["state"], start), batches)
        return d_mean, d_std, curve

    return jax.vmap(one)(nets, learning_rates)


def steps_to(curve: np.ndarray, threshold: float) -> int | None:
    """The first step at which the mean of the last WINDOW losses is below ``threshold``."""
    smooth = np.convolve(curve, np.ones(WINDOW) / WINDOW, mode="valid")
    below = np.flatnonzero(np.isfinite(smooth) & (smooth < threshold))
    return int(below[0]) + WINDOW if below.size else None


def run(out_dir: pathlib.Path, quick: bool = False) -> dict:
    examples.setup()
    steps = 500 if quick else 2000
    seeds = 2 if quick else 10
    lrs = LEARNING_RATES
    data = examples.digits()
    x, y = jnp.asarray(data["x_train"]), jnp.asarray(data["y_train"])
    x_test, y_test = jnp.asarray(data["x_test"]), jnp.asarray(data["y_test"])
    rng = np.random.default_rng(0)
    batches = np.stack(
        [rng.choice(len(data["y_train"]), BATCH, replace=False) for _ in range(steps)]
    )
    batches = jnp.asarray(batches, jnp.int32)

    # Every (seed, lr) pair: seed-major; the same init for every variant.
    nets = init(0, seeds)
    grid = jax.tree.map(lambda a: jnp.repeat(a, len(lrs), axis=0), nets)
    lr_grid = jnp.asarray(np.tile(lrs, seeds), jnp.float32)
    grid4 = dict(grid, dense=[(4 * w, b) for w, b in grid["dense"]])
    runs = {}
    for activation, use_bn in VARIANTS:
        nets_used = grid4 if activation == "sigmoid 4x" else grid
        curve, acc = train(
            nets_used,
            lr_grid,
            x,
            y,
            batches,
            x_test,
            y_test,
            activation=activation,
            use_bn=use_bn,
        )
        curve = np.asarray(curve, np.float64).reshape(seeds, len(lrs), steps)
        acc = np.asarray(acc, np.float64).reshape(seeds, len(lrs))
        reach = np.array(
            [
                [steps_to(curve[s, i], THRESHOLD) or np.inf for i in range(len(lrs))]
                for s in range(seeds)
            ]
        )
        mean_reach = reach.mean(axis=0)  # inf if any seed never got there
        final = np.where(np.isfinite(curve[:, :, -WINDOW:]), curve[:, :, -WINDOW:], np.inf)
        final = final.mean(axis=(0, 2))
        best = (
            int(np.argmin(mean_reach)) if np.isfinite(mean_reach).any() else int(np.argmin(final))
        )
        at = {}
        for th in THRESHOLDS:
            per = np.array(
                [
                    [steps_to(curve[s, i], th) or np.inf for i in range(len(lrs))]
                    for s in range(seeds)
                ]
            ).mean(axis=0)
            i = int(np.argmin(per))
            at[th] = (float(per[i]), lrs[i])
        runs[(activation, use_bn)] = {
            "at": at,
            "curve": curve,
            "acc": acc,
            "reach": mean_reach,
            "final": final,
            "best": best,
            "best_lr": lrs[best],
            "best_reach": float(mean_reach[best]),
            "best_acc": float(acc[:, best].mean()),
        }

    # Internal covariate shift, measured: tanh with and without batch norm at the learning
    # rates where both train, SHIFT_SEEDS seeds, the first SHIFT_STEPS steps.
    shift_seeds = 2 if quick else SHIFT_SEEDS
    shift_steps = 200 if quick else SHIFT_STEPS
    probe = x[:256]
    shift_nets = jax.tree.map(
        lambda a: jnp.repeat(a[:shift_seeds], len(SHIFT_LRS), axis=0), init(1, shift_seeds)
    )
    shift_lr = jnp.asarray(np.tile(SHIFT_LRS, shift_seeds), jnp.float32)
    shift = {}
    for use_bn in (False, True):
        d_mean, d_std, s_curve = shift_trace(
            shift_nets,
            shift_lr,
            x,
            y,
            batches[:shift_steps],
            probe,
            activation="tanh",
            use_bn=use_bn,
        )
        total = np.asarray(d_mean, np.float64) + np.asarray(d_std, np.float64)
        total = total.reshape(shift_seeds, len(SHIFT_LRS), shift_steps, DEPTH)
        shift[use_bn] = {
            "per_step": total,  # (seeds, lrs, steps, layers)
            "mean": total.mean(axis=2),  # per seed, lr, layer: the mean change per step
            "curve": np.asarray(s_curve, np.float64).reshape(shift_seeds, len(SHIFT_LRS), -1),
        }
    deep, shallow = DEPTH - 1, 0
    shift_ci = {
        (bn, j): examples.mean_interval(shift[bn]["mean"][:, j, deep])
        for bn in (False, True)
        for j in range(len(SHIFT_LRS))
    }
    depth_ratio = float(
        np.mean(shift[False]["mean"][:, :, deep] / shift[False]["mean"][:, :, shallow])
    )
    bn_less = [j for j in range(len(SHIFT_LRS)) if shift_ci[(True, j)][2] < shift_ci[(False, j)][1]]
    bn_more = [j for j in range(len(SHIFT_LRS)) if shift_ci[(True, j)][1] > shift_ci[(False, j)][2]]
    shift_rows = "\n".join(
        f"| {lr:g} | "
        + " | ".join(
            f"{shift_ci[(bn, j)][0]:.2e} [{shift_ci[(bn, j)][1]:.2e}, {shift_ci[(bn, j)][2]:.2e}]"
            for bn in (False, True)
        )
        + " |"
        for j, lr in enumerate(SHIFT_LRS)
    )
    if len(bn_less) == len(SHIFT_LRS):
        shift_finding = "batch norm reduces it at every learning rate"
        solves = "holds with a caveat"
    elif bn_more:
        shift_finding = (
            "batch norm does not reduce it: the normalized network's layer inputs shift more "
            "per step at lr " + ", ".join(f"{SHIFT_LRS[j]:g}" for j in bn_more)
        )
        solves = "does not hold"
    else:
        shift_finding = "batch norm does not reduce it consistently (the intervals overlap)"
        solves = "does not hold"
    exists = "holds with a caveat" if depth_ratio > 1 else "does not hold"
    grows = "a shift that grows with depth" if depth_ratio > 1 else "no growth with depth"

    def fmt(r) -> str:
        steps_text = (
            f"{r['best_reach']:.0f} steps"
            if np.isfinite(r["best_reach"])
            else f"never in {steps} steps"
        )
        return f"{steps_text} (lr {r['best_lr']:g})"

    speedup = {}  # at each threshold: steps without / steps with batch norm
    for activation in ("sigmoid", "tanh"):
        plain, bn = runs[(activation, False)], runs[(activation, True)]
        speedup[activation] = {
            th: (np.nan if np.isinf(a) and np.isinf(b) else a / b)
            for th in THRESHOLDS
            for a, b in [(plain["at"][th][0], bn["at"][th][0])]
        }
    # Judged at the thresholds that at least one variant reached (inf / finite = inf).
    judged = {a: [v for v in sp.values() if not np.isnan(v)] for a, sp in speedup.items()}
    faster = {a: bool(v) and all(x > 1.05 for x in v) for a, v in judged.items()}
    slower = {a: bool(v) and all(x < 0.95 for x in v) for a, v in judged.items()}
    usable = {key: int(np.sum(np.isfinite(r["reach"]))) for key, r in runs.items()}

    # Figure.
    fig, axes = plt.subplots(1, 4, figsize=(24, 5.4), layout="constrained")
    t = np.arange(WINDOW, steps + 1)
    for ax, activation in zip(axes[:2], ("sigmoid", "tanh"), strict=True):
        shown = [(activation, False, "C3"), (activation, True, "C0")]
        if activation == "sigmoid":
            shown.append(("sigmoid 4x", False, "C1"))
        for name, use_bn, colour in shown:
            r = runs[(name, use_bn)]
            for i in range(len(lrs)):
                # the mean over the seeds of the smoothed curves
                smooth = np.convolve(
                    r["curve"][:, i].mean(axis=0), np.ones(WINDOW) / WINDOW, mode="valid"
                )
                if i == r["best"]:
                    init_text = ", weights 4x" if name == "sigmoid 4x" else ""
                    label = f"{'with' if use_bn else 'without'} batch norm{init_text}: {fmt(r)}"
                    ax.semilogy(t, smooth, "-", color=colour, lw=2.2, label=label)
                else:
                    ax.semilogy(t, smooth, "-", color=colour, lw=0.6, alpha=0.35)
        ax.axhline(THRESHOLD, color="k", ls=":", lw=1)
        ax.set_ylim(1e-3, 20)
        ax.set_xlabel(f"step (mini-batches of {BATCH}, gradient descent)")
        ax.set_ylabel(f"training loss (mean of the last {WINDOW} mini-batches)")
        ax.set_title(
            f"{DEPTH} hidden layers of {WIDTH}, {activation}: mean of {seeds} seeds "
            "(thin: other lrs)",
            fontsize=10,
        )
        ax.legend(fontsize=9, loc="upper right")

    ax = axes[2]
    styles = {
        ("sigmoid", False): ("C3", "o--"),
        ("sigmoid", True): ("C0", "o-"),
        ("sigmoid 4x", False): ("C4", "^--"),
        ("tanh", False): ("C1", "s--"),
        ("tanh", True): ("C2", "s-"),
    }
    never = []
    for key, (colour, style) in styles.items():
        r = runs[key]
        finite = np.isfinite(r["reach"])
        label = f"{key[0]}, {'with' if key[1] else 'without'} batch norm"
        ax.semilogx(np.array(lrs)[finite], r["reach"][finite], style, color=colour, label=label)
        if not finite.all():
            missing = ", ".join(f"{lr:g}" for lr, ok in zip(lrs, finite, strict=True) if not ok)
            never.append(f"{label}: lr {missing}")
    if never:
        ax.text(
            0.02,
            0.98,
            f"not reached in {steps} steps by some seed (not drawn):\n" + "\n".join(never),
            transform=ax.transAxes,
            fontsize=8,
            va="top",
        )
    ax.set_ylim(0, steps * 1.6)
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"steps until the training loss < {THRESHOLD} (mean of {seeds} seeds)")
    ax.set_title("the learning-rate sweep")
    ax.legend(fontsize=8, loc="lower right")

    ax = axes[3]
    for bn, colour in ((False, "C1"), (True, "C2")):
        for j, lr in enumerate(SHIFT_LRS):
            per_step = shift[bn]["per_step"][:, j, :, deep].mean(axis=0)
            smooth = np.convolve(per_step, np.ones(10) / 10, mode="valid")
            ax.semilogy(
                np.arange(10, shift_steps + 1),
                smooth,
                "-",
                color=colour,
                lw=0.8 + j,
                label=f"tanh, {'with' if bn else 'without'} batch norm, lr {lr:g}",
            )
    ax.set_xlabel("step")
    ax.set_ylabel(f"change per step of layer {deep + 1}'s output mean and std")
    ax.set_title(
        f"internal covariate shift, measured (mean of {shift_seeds} seeds, 10-step average)",
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="upper right")
    figure = examples.save(fig, out_dir, "batch_norm")

    if all(faster.values()):
        verdict = "holds"
    elif any(faster.values()):
        verdict = "holds with a caveat"  # faster for one activation, not for the other
    else:
        verdict = "does not hold"

    def ratio(v: float) -> str:
        if np.isnan(v):
            return "neither reached it"
        return f"{v:.1f}x" if np.isfinite(v) else "never -> reached"

    tanh_ratios = ", ".join(f"{ratio(speedup['tanh'][th])} at {th:g}" for th in THRESHOLDS)
    summary = (
        f"steps until the training loss < {THRESHOLD}, {DEPTH} hidden layers, each at its best "
        f"of {len(lrs)} learning rates: sigmoid {fmt(runs[('sigmoid', False)])} without batch "
        f"norm, {fmt(runs[('sigmoid', True)])} with it; tanh {fmt(runs[('tanh', False)])} "
        f"without, {fmt(runs[('tanh', True)])} with it (speed-up for tanh, by loss threshold: "
        f"{tanh_ratios})"
    )
    rows = []
    for (activation, use_bn), r in runs.items():
        reach_text = ", ".join(f"{v:.0f}" if np.isfinite(v) else "-" for v in r["reach"])
        rows.append(
            f"| {activation} | {'yes' if use_bn else 'no'} | {reach_text} | {fmt(r)} "
            f"| {r['best_acc']:.1%} |"
        )
    head = (
        "| activation | batch norm | steps to loss < "
        + f"{THRESHOLD} at lr "
        + ", ".join(f"{lr:g}" for lr in lrs)
        + " | best | test accuracy at the best lr |\n|---|---|---|---|---|"
    )
    table = head + "\n" + "\n".join(rows)
    head2 = (
        "| activation | batch norm | "
        + " | ".join(f"loss < {th:g}" for th in THRESHOLDS)
        + " |\n|---|---|"
        + "---|" * len(THRESHOLDS)
    )
    rows2 = [
        f"| {a} | {'yes' if b else 'no'} | "
        + " | ".join(
            (
                f"{r['at'][th][0]:.0f} (lr {r['at'][th][1]:g})"
                if np.isfinite(r["at"][th][0])
                else "never"
            )
            for th in THRESHOLDS
        )
        + " |"
        for (a, b), r in runs.items()
    ]
    table2 = head2 + "\n" + "\n".join(rows2)
    sig_plain = runs[("sigmoid", False)]
    sig_bn = runs[("sigmoid", True)]
    if not np.isfinite(sig_plain["best_reach"]):
        sigmoid_text = (
            f"without batch norm the network does not learn at any of the {len(lrs)} learning "
            f"rates (its loss stays at {sig_plain['final'][sig_plain['best']]:.2f}; ln 10 = "
            "2.30 is the loss of a constant output: the gradient vanishes through 10 sigmoid "
            "layers, see the vanishing-gradients topic); with batch norm it gets below "
            f"{THRESHOLD} in {sig_bn['best_reach']:.0f} steps (lr {sig_bn['best_lr']:g})."
        )
    else:
        sigmoid_text = (
            f"{sig_plain['best_reach']:.0f} steps without batch norm (lr "
            f"{sig_plain['best_lr']:g}) against {sig_bn['best_reach']:.0f} with it (lr "
            f"{sig_bn['best_lr']:g})."
        )
    sig4 = runs[("sigmoid 4x", False)]
    if np.isfinite(sig4["best_reach"]) and np.isfinite(sig_bn["best_reach"]):
        fair_ratio = sig4["best_reach"] / sig_bn["best_reach"]
        fair_text = (
            "Against the fair baseline, a well-initialized sigmoid network without batch norm "
            "(weights 4 times LeCun's, the factor Glorot and Bengio 2010 give for sigmoid, "
            f"whose slope at 0 is 1/4): {fmt(sig4)}, {fair_ratio:.1f} times the steps of the "
            "normalized network: "
            + (
                "batch norm is still faster."
                if fair_ratio > 1.05
                else "most of batch norm's advantage was the init."
            )
        )
    else:
        fair_text = (
            "A well-initialized sigmoid network without batch norm (weights 4 times LeCun's, "
            f"the factor Glorot and Bengio 2010 give for sigmoid): {fmt(sig4)}."
        )
    if faster["tanh"]:
        tanh_verdict = "batch norm is faster at every threshold"
    elif slower["tanh"]:
        tanh_verdict = "batch norm is slower at every threshold"
    else:
        tanh_verdict = "no consistent speed-up (the ratio moves around 1 with the threshold)"
    notes = f"""
An MLP with {DEPTH} hidden layers of {WIDTH} units (LeCun normal init, as dlref's
`init_mlp`; {seeds} init{"s" if seeds > 1 else ""}) on scikit-learn's digits (1347
training images, standardized), trained by `gradient_descent` on the same {steps}
mini-batches of {BATCH} for every run; with batch norm, dlref's `batch_norm`
(`training=True`, momentum 0.99) sits between each hidden dense layer and its
activation, and the test accuracy uses the running statistics (`training=False`).
"Steps" is the first step at which the mean of the last {WINDOW} mini-batch losses is
below {THRESHOLD} (averaged over the inits; "-": never within {steps} steps).

{table}

At each variant's best learning rate, for three thresholds (steps, and the learning rate
that got there first):

{table2}

- **Faster for sigmoid**: {sigmoid_text} {fair_text}
- **Not for tanh**: tanh trains without batch norm, and at the best learning rate of each
  the ratio of steps (without / with) is {tanh_ratios}: {tanh_verdict}.
  What batch norm does give tanh is a wider range of learning rates: it reaches
  {THRESHOLD} at {usable[("tanh", True)]} of the {len(lrs)} learning rates, against
  {usable[("tanh", False)]} without it (the larger steps diverge without it). Compared at
  one learning rate that suits only the normalized network, batch norm would look far
  faster: the comparison has to be at the best learning rate of each. Late in training
  the normalized network's mini-batch loss is also noisier (each batch normalizes with
  its own statistics), which is why it is slower to the lowest threshold.
- **Internal covariate shift, measured directly**: the change, per gradient step, of the
  distribution of a layer's inputs (each unit's mean and standard deviation over a fixed
  probe batch of 256 images; the mean absolute change of both, averaged over the units),
  for the tanh network with and without batch norm, {shift_seeds} new inits, the first
  {shift_steps} steps, at the learning rates where both train. At the deepest hidden layer
  (mean over the steps; t 95% interval over the seeds):

| lr | without batch norm | with batch norm |
|---|---|---|
{shift_rows}

  Without batch norm the deepest layer's inputs shift {depth_ratio:.1f} times as much per
  step as the first layer's ({grows});
  {shift_finding}. (Batch norm fixes the mean and variance of the *pre-activations* over
  each batch, but the learned scale and shift, and the batch-to-batch statistics, still
  move the layer's outputs.)
- **Caveat: the mechanism is disputed**. The cheat sheet's explanation, reducing
  "internal covariate shift" (Ioffe and Szegedy 2015), was tested by Santurkar et al.
  2018 ("How Does Batch Normalization Help Optimization?"): networks with batch norm
  plus injected, deliberately shifting noise train as fast as with batch norm alone, and
  batch norm does not reduce covariate shift by their measures; what it does is make the
  loss smoother (better-conditioned gradients), which allows larger learning rates, as the
  sweep here shows. The measured claim is "trains faster"; "by reducing internal
  covariate shift" is a hypothesis, not a measured fact.
- **Loose: "normalizing each batch into the network"**: batch norm normalizes each
  layer's pre-activations (per feature, over the batch), not the network's input batch,
  and then applies a learned scale and shift; at test time it uses running averages of
  the statistics (a different function from the one trained on each batch). "Better"
  (generalization) is not measured by the threshold: the test accuracies are in the
  table.
"""
    return examples.result(
        verdict,
        summary,
        figure,
        notes,
        steps=steps,
        learning_rates=list(lrs),
        reach={f"{a} {'bn' if b else 'plain'}": r["reach"].tolist() for (a, b), r in runs.items()},
        best_lr={f"{a} {'bn' if b else 'plain'}": r["best_lr"] for (a, b), r in runs.items()},
        best_reach={f"{a} {'bn' if b else 'plain'}": r["best_reach"] for (a, b), r in runs.items()},
        test_accuracy={
            f"{a} {'bn' if b else 'plain'}": r["best_acc"] for (a, b), r in runs.items()
        },
        usable_learning_rates={f"{a} {'bn' if b else 'plain'}": n for (a, b), n in usable.items()},
        sigmoid_plain_final_loss=float(sig_plain["final"][sig_plain["best"]]),
        speedup={
            a: {str(th): (None if np.isnan(v) else float(v)) for th, v in sp.items()}
            for a, sp in speedup.items()
        },
        seeds=seeds,
        shift_learning_rates=list(SHIFT_LRS),
        shift_deep_plain=[list(shift_ci[(False, j)]) for j in range(len(SHIFT_LRS))],
        shift_deep_bn=[list(shift_ci[(True, j)]) for j in range(len(SHIFT_LRS))],
        shift_depth_ratio=depth_ratio,
        claims={
            "shift_exists": (
                exists,
                f"without batch norm the deepest of {DEPTH} tanh layers' inputs shift "
                f"{depth_ratio:.1f}x as much per step as the first layer's; whether that is "
                "an 'issue' is what batch norm's effect tests",
            ),
            "bn_solves_shift": (solves, shift_finding),
        },
    )


if __name__ == "__main__":
    examples.main_one("batch_norm", run)
