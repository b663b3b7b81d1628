"""Backpropagation: the chain rule written by hand, layer by layer, equals JAX's autodiff.

An MLP (64 -> 128 -> 64 -> 10, ReLU) on scikit-learn's digits, trained twice from the same
initialization on the same mini-batches with plain gradient descent (dlref's
``gradient_descent``):

- with ``jax.grad(mlp_loss)``, which runs dlref's hand-written whole-network backward
  (``dw = a_prev.T @ dz``, ``da_prev = dz @ w.T``, ``dz_prev = da_prev * act'``, from the
  fused softmax-cross-entropy gradient ``softmax(z) - one_hot(y)`` down);
- with ``jax.grad(mlp_loss.autodiff)``, JAX's autodiff of the same forward.

In float32 (the training dtype) and in float64 we record the two loss curves, the
difference of the two gradients at the same parameters at every step, and the final
parameters; a central finite difference checks the hand-written gradient independently.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import examples
from dlref import networks, optim

TITLE = "Backpropagation"
CLAIM = (
    "Also known as back prop, this is the process of back tracking errors through the "
    "weights of the network after forward propagating inputs through the network. This is "
    "used by applying the chain rule in calculus."
)
# The dlref code the results depend on (hashed into the JSON: examples.code_files)
USES = (
    "dlref/networks.py",
    "dlref/optim.py",
    "dlref/layers/_dense.py",
    "dlref/losses/_cross_entropy.py",
)

SIZES = (64, 128, 64, 10)
LEARNING_RATE = 0.1
BATCH = 64
FLOOR = 1e-18  # where exact zeros are drawn on the log plots


def _norm(tree) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(leaf * leaf) for leaf in jax.tree.leaves(tree)))


def _diff(a, b) -> jax.Array:
    return _norm(jax.tree.map(jnp.subtract, a, b))


@jax.jit
def train(params, x, y, batches, x64):
    """Both trainings in one scan: ``(final manual, final autodiff)`` and, per step, the
    two losses, the relative difference of the two gradients at the manual params, and
    each one's relative error against the float64 gradient at those params (``x64``: the
    inputs in float64)."""
    grad_autodiff = jax.grad(networks.mlp_loss.autodiff)

    def step(carry, idx):
        manual, auto = carry
        xb, yb = x[idx], y[idx]
        loss_m, g_m = jax.value_and_grad(networks.mlp_loss)(manual, xb, yb)
        loss_a, g_a = jax.value_and_grad(networks.mlp_loss.autodiff)(auto, xb, yb)
        same = grad_autodiff(manual, xb, yb)  # autodiff at the manual trajectory's params
        rel = _diff(g_m, same) / _norm(same)
        wide = jax.tree.map(lambda a: a.astype(jnp.float64), manual)
        exact = grad_autodiff(wide, x64[idx], yb)  # the same gradient, rounded far less

        def error(g):
            return _diff(jax.tree.map(lambda a: a.astype(jnp.float64), g), exact) / _norm(exact)

        manual = optim.gradient_descent(manual, g_m, LEARNING_RATE)
        auto = optim.gradient_descent(auto, g_a, LEARNING_RATE)
        return (manual, auto), (loss_m, loss_a, rel, error(g_m), error(same))

    return jax.lax.scan(step, (params, params), batches)


@jax.jit
def _accuracy(params, x, y) -> jax.Array:
    pred = jnp.argmax(networks.mlp(params, x), axis=-1).astype(jnp.int32)
    return jnp.mean((pred == y).astype(jnp.float32))


@jax.jit
def _max_abs_diff(a, b) -> jax.Array:
    return jnp.max(jnp.stack([jnp.max(jnp.abs(u - v)) for u, v in zip(a, b, strict=True)]))


@jax.jit
def _checks_at_init(params, x, y, v) -> tuple[dict, jax.Array]:
    """Float64, at the initialization: the relative difference of the hand-written and
    autodiff gradients for each activation, and the relative error of the hand-written
    ``grad . v`` against a central difference along a random ``v`` (tanh, smooth: with
    ReLU a difference step can straddle a kink)."""
    rel = {}
    for activation in ("relu", "tanh", "sigmoid"):
        g_m = jax.grad(functools.partial(networks.mlp_loss, activation=activation))(params, x, y)
        auto = functools.partial(networks.mlp_loss.autodiff, activation=activation)
        g_a = jax.grad(auto)(params, x, y)
        rel[activation] = _diff(g_m, g_a) / _norm(g_a)

    g = jax.grad(networks.mlp_loss)(params, x, y, activation="tanh")
    exact = sum(jnp.sum(a * b) for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(v), strict=True))
    h = 1e-5

    def at(t):
        moved = jax.tree.map(lambda p, d: p + t * d, params, v)
        return networks.mlp_loss(moved, x, y, activation="tanh")

    numeric = (at(h) - at(-h)) / (2 * h)
    return rel, jnp.abs(numeric - exact) / jnp.abs(exact)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _init(key, sizes: tuple, dtype) -> list:
    return networks.init_mlp(key, list(sizes), dtype)


def run(out_dir: pathlib.Path, quick: bool = False) -> dict:
    examples.setup()
    steps = 300 if quick else 1500
    data = examples.digits()
    rng = np.random.default_rng(0)
    n_train = len(data["y_train"])
    batches = np.stack([rng.choice(n_train, BATCH, replace=False) for _ in range(steps)])
    batches = jnp.asarray(batches, jnp.int32)

    init = _init(examples.key(0), SIZES, jnp.float32)
    runs = {}
    for dtype in (jnp.float32, jnp.float64):
        x = jnp.asarray(data["x_train"], dtype)
        y = jnp.asarray(data["y_train"])
        params = jax.tree.map(lambda a, dtype=dtype: a.astype(dtype), init)
        x64 = jnp.asarray(data["x_train"], jnp.float64)
        (manual, auto), (loss_m, loss_a, rel, err_m, err_a) = train(params, x, y, batches, x64)
        x_test, y_test = jnp.asarray(data["x_test"], dtype), jnp.asarray(data["y_test"])
        runs[jnp.dtype(dtype).name] = {
            "loss_manual": np.asarray(loss_m, np.float64),
            "loss_autodiff": np.asarray(loss_a, np.float64),
            "loss_diff": np.abs(np.asarray(loss_m, np.float64) - np.asarray(loss_a, np.float64)),
            "grad_rel": np.asarray(rel, np.float64),
            "err_manual": np.asarray(err_m, np.float64),
            "err_autodiff": np.asarray(err_a, np.float64),
            "param_diff": float(_max_abs_diff(jax.tree.leaves(manual), jax.tree.leaves(auto))),
            "acc_manual": float(_accuracy(manual, x_test, y_test)),
            "acc_autodiff": float(_accuracy(auto, x_test, y_test)),
            "train_acc": float(_accuracy(manual, x, y)),
        }
    f32, f64 = runs["float32"], runs["float64"]

    # Every activation, at the initialization, in float64; and a finite difference.
    x64 = jnp.asarray(data["x_train"][:256], jnp.float64)
    y64 = jnp.asarray(data["y_train"][:256])
    p64 = jax.tree.map(lambda a: a.astype(jnp.float64), init)
    direction = [(rng.standard_normal(w.shape), rng.standard_normal(b.shape)) for w, b in p64]
    rel, fd_rel = _checks_at_init(p64, x64, y64, jax.tree.map(jnp.asarray, direction))
    per_activation = {k: float(v) for k, v in rel.items()}
    fd_rel = float(fd_rel)

    # The step where the float32 trajectories first differ by more than 1e-6.
    apart = np.flatnonzero(f32["loss_diff"] > 1e-6)
    first_apart = int(apart[0]) if apart.size else steps
    identical = float(np.mean(f32["grad_rel"] == 0))
    if first_apart == steps:
        drift = "never more than 1e-6 apart"
    else:
        drift = f"first more than 1e-6 apart at step {first_apart}"
    err_m32, err_a32 = float(f32["err_manual"].max()), float(f32["err_autodiff"].max())
    med_m32, med_a32 = float(np.median(f32["err_manual"])), float(np.median(f32["err_autodiff"]))
    # The hand-written float32 gradient is as accurate as autodiff's: both are float32
    # roundings of the same sums in different orders, so their errors against the float64
    # gradient are alike: the median over the steps within a factor 2, the worst step within
    # a factor 4 (a single step's rounding error varies by about 2x with the order).
    as_accurate = med_m32 <= 2 * med_a32 and err_m32 <= 4 * err_a32
    if f32["param_diff"] == 0 and f32["loss_diff"].max() == 0:
        float32_runs = (
            f"In float32 the two runs are bit for bit the same: the loss curves and the final "
            f"parameters differ by 0 at all {steps} steps (inside the jitted loop XLA compiles "
            f"both backward passes to the same arithmetic; the two gradients are bit-identical "
            f"at {identical:.0%} of the steps)."
        )
    else:
        float32_runs = (
            f"In float32 the loss curves stay within {f32['loss_diff'].max():.1e} ({drift}) "
            f"and the final parameters differ by {f32['param_diff']:.1e}: each step's "
            "rounding difference is carried into the next step's parameters, and gradient "
            "descent slowly amplifies it (the usual non-reproducibility of float32 training), "
            "not a difference of the gradients; "
            + (
                f"the two gradients are bit-identical at {identical:.0%} of the float32 steps "
                "(right panel, points on the floor)."
                if identical > 0
                else "the two gradients are bit-identical at none of the float32 steps (XLA "
                "compiles the two backward passes to different sums)."
            )
        )

    fig, axes = plt.subplots(1, 3, figsize=(18, 5.2), layout="constrained")
    ax = axes[0]
    t = np.arange(steps)
    ax.semilogy(t, f32["loss_manual"], "-", color="C0", lw=2.5, label="hand-written backprop")
    ax.semilogy(t, f32["loss_autodiff"], "--", color="C1", lw=1.5, label="JAX autodiff")
    ax.set_xlabel("step (mini-batch of 64)")
    ax.set_ylabel("training loss (mini-batch cross-entropy)")
    ax.set_title(
        f"float32, same init and batches: test accuracy {f32['acc_manual']:.1%} "
        f"/ {f32['acc_autodiff']:.1%}",
        fontsize=10,
    )
    ax.legend()

    ax = axes[1]
    for name, colour in (("float32", "C0"), ("float64", "C3")):
        diff = np.where(runs[name]["loss_diff"] > 0, runs[name]["loss_diff"], FLOOR)
        ax.semilogy(t, diff, ".", ms=2, color=colour, label=name)
    ax.axhline(FLOOR, color="k", ls=":", lw=1)
    ax.text(steps * 0.3, FLOOR / 2, "exactly equal", fontsize=9, va="top")
    ax.set_ylim(FLOOR / 30, 1)
    ax.set_xlabel("step")
    ax.set_ylabel("|loss(hand-written) - loss(autodiff)|")
    ax.set_title("the two training runs: loss difference per step", fontsize=10)
    ax.legend(loc="upper left", markerscale=5)

    ax = axes[2]
    for name, colour in (("float32", "C0"), ("float64", "C3")):
        rel = np.where(runs[name]["grad_rel"] > 0, runs[name]["grad_rel"], FLOOR)
        ax.semilogy(t, rel, ".", ms=2, color=colour, label=name)
        eps = float(jnp.finfo(jnp.dtype(name)).eps)
        ax.axhline(eps, color=colour, ls="--", lw=1)
        ax.text(steps * 0.6, eps * 1.5, f"{name} eps", color=colour, fontsize=9)
    ax.axhline(FLOOR, color="k", ls=":", lw=1)
    ax.text(steps * 0.3, FLOOR / 2, "exactly equal (bit for bit)", fontsize=9, va="top")
    ax.set_ylim(FLOOR / 30, 1)
    ax.set_xlabel("step")
    ax.set_ylabel("|g_hand - g_autodiff| / |g_autodiff|")
    ax.set_title("the two gradients at the same parameters", fontsize=10)
    ax.legend(loc="upper left", markerscale=5)
    figure = examples.save(fig, out_dir, "backprop")

    holds = (
        as_accurate
        and f64["grad_rel"].max() < 1e-13
        and f64["loss_diff"].max() < 1e-12
        and max(per_activation.values()) < 1e-13
        and fd_rel < 1e-6
        and min(f32["acc_manual"], f32["acc_autodiff"]) > 0.9
    )
    summary = (
        f"an MLP on digits trained {steps} steps with hand-written backprop and with "
        f"autodiff from the same init: gradients at the same parameters agree to "
        f"{f32['grad_rel'].max():.1e} (float32) and {f64['grad_rel'].max():.1e} (float64) "
        f"relative, the loss curves to {f32['loss_diff'].max():.1e} (float32; "
        f"{f64['loss_diff'].max():.1e} in float64), final parameters to "
        f"{f32['param_diff']:.1e}; test accuracy {f32['acc_manual']:.1%} (hand-written) and "
        f"{f32['acc_autodiff']:.1%} (autodiff)"
    )
    rows = [
        ("max relative gradient difference, same parameters, all steps", "grad_rel", ".1e"),
        ("max \\|loss difference\\| of the two runs", "loss_diff", ".1e"),
        ("max \\|parameter difference\\| at the end", "param_diff", ".1e"),
    ]
    table = ["| | float32 | float64 |", "|---|---|---|"]
    for label, key, fmt in rows:
        table.append(f"| {label} | {np.max(f32[key]):{fmt}} | {np.max(f64[key]):{fmt}} |")
    table.append(
        "| test accuracy, hand-written / autodiff | "
        + " | ".join(f"{r['acc_manual']:.1%} / {r['acc_autodiff']:.1%}" for r in (f32, f64))
        + " |"
    )
    table = "\n".join(table)
    act_text = ", ".join(f"{k} {v:.1e}" for k, v in per_activation.items())
    notes = f"""
An MLP 64 -> 128 -> 64 -> 10 with ReLU (dlref's `init_mlp`: LeCun normal, zero biases,
seed 0) on scikit-learn's digits (1347 training and 450 test images, stratified split
with seed 0, pixels standardized), trained for {steps} steps of `gradient_descent` with
learning rate {LEARNING_RATE} on the same {steps} mini-batches of {BATCH}: once with
`jax.grad(mlp_loss)` (dlref's backward, written by hand: the chain rule from the
fused `softmax(z) - one_hot(y)` back through every layer) and once with
`jax.grad(mlp_loss.autodiff)`.

{table}

- **The chain rule, by hand, is autodiff's gradient**: at the same parameters the two
  gradients differ by at most {f32["grad_rel"].max():.1e} relative in float32 and
  {f64["grad_rel"].max():.1e} in float64 (eps 2.2e-16). How close two float32 gradients
  must be depends on the cancellation in their sums (late in training, when the gradient
  is small, a sum of many terms of both signs loses digits), not on eps alone; so each is
  compared with the float64 gradient at the same parameters: the hand-written one is off
  by {med_m32:.1e} relative (median over the steps; at most {err_m32:.1e}), autodiff's by
  {med_a32:.1e} (at most {err_a32:.1e}): {"as accurate" if as_accurate else "less accurate"}
  (the criterion: median within a factor 2, worst step within a factor 4). At the
  initialization the same
  holds for tanh and sigmoid (float64: {act_text}), and a central finite difference
  along a random direction agrees with the hand-written gradient to {fd_rel:.1e}
  (tanh network, float64; with ReLU a difference step may straddle a kink).
- **The loss curves coincide**: in float64 the two runs stay within
  {f64["loss_diff"].max():.1e} of each other for all {steps} steps. {float32_runs}
- **Loose: "back tracking errors through the weights"**. Backprop propagates the
  gradient of the loss (`dL/dz` per layer, the "error" of each unit), multiplying by the
  transposed weights `w.T` and by the activation's derivative at every layer; it is
  reverse-mode differentiation, and the weights are then updated by an optimizer
  (here `W -= lr * dW`), a separate step.
"""
    return examples.result(
        "holds" if holds else "does not hold",
        summary,
        figure,
        notes,
        steps=steps,
        grad_rel_float32=float(f32["grad_rel"].max()),
        grad_error_float32_manual=err_m32,
        grad_error_float32_autodiff=err_a32,
        grad_error_float32_manual_median=med_m32,
        grad_error_float32_autodiff_median=med_a32,
        grad_rel_float64=float(f64["grad_rel"].max()),
        loss_diff_float32=float(f32["loss_diff"].max()),
        loss_diff_float64=float(f64["loss_diff"].max()),
        param_diff_float32=f32["param_diff"],
        param_diff_float64=f64["param_diff"],
        first_apart_float32=first_apart,
        identical_fraction_float32=identical,
        test_accuracy_manual=f32["acc_manual"],
        test_accuracy_autodiff=f32["acc_autodiff"],
        train_accuracy=f32["train_acc"],
        grad_rel_per_activation=per_activation,
        finite_difference_rel=fd_rel,
        final_loss=float(f32["loss_manual"][-20:].mean()),
    )


if __name__ == "__main__":
    examples.main_one("backprop", run)
