"""Learning rate: gradient descent on a quadratic converges exactly when lr < 2 / lambda_max.

Least squares, ``f(w) = 0.5 * mse(X w, y)`` (dlref's ``mse``, so ``jax.grad`` runs its
hand-written backward), is a quadratic ``f(w*) + 0.5 (w - w*)^T A (w - w*)`` with Hessian
``A = X^T X / n``. Plain gradient descent ``w -= lr * grad f(w)`` multiplies the error's
component along each eigenvector of A by ``1 - lr * lambda_i`` per step, so it converges
iff ``|1 - lr * lambda_i| < 1`` for every i, i.e. ``lr < 2 / lambda_max``; for
``lr * lambda_max`` in (1, 2) the top component flips sign every step (oscillation).

We measure the boundary by bisection on lr with nothing but runs of gradient descent
(does the error grow over K steps?), and compare it with ``2 / lambda_max`` from numpy's
``eigvalsh``; for two problems whose curvatures differ ninefold.
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
from dlref import losses, networks, optim

TITLE = "Learning rate"
CLAIM = (
    "The learning rate is the magnitude at which you're adjusting your weights of the "
    "network during optimization after back propagation. The learning rate is a hyper "
    "parameter that will be different for a variety of problems. This should be cross "
    "validated on. [...] W -= learning_rate * dW"
)
# The dlref code the results depend on (hashed into the JSON: examples.code_files)
USES = (
    "dlref/losses/_regression.py",
    "dlref/networks.py",
    "dlref/layers/_dense.py",
    "dlref/losses/_cross_entropy.py",
    "dlref/optim.py",
)

# The network whose learning rate is chosen on held-out data.
NET_SIZES = (64, 32, 10)
NET_LRS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


# Learning rates shown step by step, as multiples of 1 / lambda_max.
SHOWN = ((0.5, "C2"), (1.8, "C1"), (2.05, "C3"))


TABLE_HEAD = (
    "| problem | lambda_max | lambda_min | 2 / lambda_max | measured boundary | rel. diff "
    "| sweep lrs misclassified | fastest lr (2 / (lambda_min + lambda_max)) |\n"
    "|---|---|---|---|---|---|---|---|"
)


def _problem(scale: float, n: int = 200, d: int = 10) -> dict:
    """A least-squares problem; ``scale`` multiplies the data (the curvature by scale^2)."""
    rng = np.random.default_rng(0)
    x = scale * rng.standard_normal((n, d)) * np.linspace(1.0, 0.3, d)[None, :]
    y = x @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
    w_star = np.linalg.lstsq(x, y, rcond=None)[0]
    eigvals, eigvecs = np.linalg.eigh(x.T @ x / n)  # the Hessian of 0.5 * mse
    return {"x": x, "y": y, "w_star": w_star, "lams": eigvals, "top": eigvecs[:, -1]}


def loss(w: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    return 0.5 * losses.mse(x @ w, y)


@functools.partial(jax.jit, static_argnums=3)
def descend(lr: jax.Array, x: jax.Array, y: jax.Array, steps: int) -> jax.Array:
    """``steps`` steps of ``w -= lr * grad`` from w = 0: the iterates, ``(steps + 1, d)``."""

    def step(w, _):
        w = w - lr * jax.grad(loss)(w, x, y)
        return w, w

    w0 = jnp.zeros(x.shape[1], dtype=x.dtype)
    _, ws = jax.lax.scan(step, w0, None, length=steps)
    return jnp.concatenate([w0[None, :], ws], axis=0)


@functools.partial(jax.jit, static_argnums=3)
def _sweep(lrs: jax.Array, x: jax.Array, y: jax.Array, steps: int) -> jax.Array:
    return jax.vmap(lambda lr: descend(lr, x, y, steps))(lrs)


def grows(lr: float, prob: dict, steps: int) -> bool:
    """Does gradient descent end farther from w* than it started, after ``steps`` steps?"""
    ws = descend(jnp.float64(lr), jnp.asarray(prob["x"]), jnp.asarray(prob["y"]), steps)
    with np.errstate(over="ignore", invalid="ignore"):
        errors = np.linalg.norm(np.asarray(ws)[[0, -1]] - prob["w_star"][None, :], axis=1)
    # An overflow (inf, or nan from inf - inf) counts as growth.
    return bool(not np.isfinite(errors[1]) or errors[1] > errors[0])


def measure_boundary(prob: dict, steps: int, iterations: int = 40) -> float:
    """The smallest lr at which the error grows, by bisection (lambda_max not used)."""
    lo, hi = 0.0, 1e-3
    while not grows(hi, prob, steps):
        lo, hi = hi, 2 * hi
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if grows(mid, prob, steps) else (mid, hi)
    return 0.5 * (lo + hi)


@functools.partial(jax.jit, static_argnames="steps")
def _train_nets(params, lrs, x, y, x_val, y_val, x_test, y_test, *, steps: int):
    """Full-batch gradient descent, ``W -= lr * dW`` (dlref's ``gradient_descent`` and the
    hand-written ``mlp_loss``), vmapped over stacked ``(params, lr)``: the final training,
    validation and test losses and the test accuracy."""

    def one(params, lr):
        def step(params, _):
            grads = jax.grad(networks.mlp_loss)(params, x, y)
            return optim.gradient_descent(params, grads, lr), None

        params, _ = jax.lax.scan(step, params, None, length=steps)
        predicted = jnp.argmax(networks.mlp(params, x_test), axis=-1).astype(jnp.int32)
        return (
            networks.mlp_loss(params, x, y),
            networks.mlp_loss(params, x_val, y_val),
            networks.mlp_loss(params, x_test, y_test),
            jnp.mean((predicted == y_test).astype(jnp.float32)),
        )

    return jax.vmap(one)(params, lrs)


def network_learning_rate(seeds: int, steps: int) -> dict:
    """An MLP 64-32-10 (ReLU) on digits: 1347 training images split into 1000 for training
    and 347 for validation (stratified, seed 0), the 450 test images apart. For each lr of
    :data:`NET_LRS` and each seed, ``steps`` steps of full-batch gradient descent; the lr is
    chosen by the mean validation loss over the seeds (a diverged run, non-finite, counts as
    infinite), and reported with the test loss and accuracy at that lr."""
    from sklearn.model_selection import train_test_split

    data = examples.digits()
    x_tr, x_val, y_tr, y_val = train_test_split(
        data["x_train"], data["y_train"], train_size=1000, random_state=0, stratify=data["y_train"]
    )
    rng = np.random.default_rng(0)
    count = seeds * len(NET_LRS)
    # LeCun normal weights and zero biases, as dlref's init_mlp; the same seeds at every lr
    draws = [
        (rng.standard_normal((seeds, a, b)) / np.sqrt(a), np.zeros((seeds, b)))
        for a, b in itertools.pairwise(NET_SIZES)
    ]
    params = [
        (
            jnp.asarray(np.tile(w, (len(NET_LRS), 1, 1)), jnp.float32),
            jnp.asarray(np.tile(b, (len(NET_LRS), 1)), jnp.float32),
        )
        for w, b in draws
    ]
    lrs = jnp.asarray(np.repeat(NET_LRS, seeds), jnp.float32)
    arrays = [jnp.asarray(a) for a in (x_tr, y_tr, x_val, y_val, data["x_test"], data["y_test"])]
    out = _train_nets(params, lrs, *arrays, steps=steps)
    train, val, test, acc = (np.asarray(a, np.float64).reshape(len(NET_LRS), seeds) for a in out)
    assert count == train.size

    def mean_or_inf(a):
        return np.where(np.all(np.isfinite(a), axis=1), np.mean(a, axis=1), np.inf)

    val_mean, train_mean = mean_or_inf(val), mean_or_inf(train)
    chosen = int(np.argmin(val_mean))
    by_train = int(np.argmin(train_mean))
    diverged = [
        float(lr) for lr, a in zip(NET_LRS, train, strict=True) if not np.all(np.isfinite(a))
    ]
    return {
        "lrs": list(NET_LRS),
        "seeds": seeds,
        "steps": steps,
        "val_mean": val_mean,
        "train_mean": train_mean,
        "val": val,
        "chosen": NET_LRS[chosen],
        "by_train": NET_LRS[by_train],
        "test_loss": examples.mean_interval(test[chosen]),
        "test_accuracy": examples.mean_interval(acc[chosen]),
        "diverged": diverged,
    }


def run(out_dir: pathlib.Path, quick: bool = False) -> dict:
    examples.setup()
    steps_bisect = 500 if quick else 3000
    steps_sweep = 100
    problems = {"A": _problem(1.0), "9A (data x 3)": _problem(3.0)}

    rows = {}
    for name, prob in problems.items():
        lam_max, lam_min = prob["lams"][-1], prob["lams"][0]
        threshold = 2.0 / lam_max
        boundary = measure_boundary(prob, steps_bisect)
        # A sweep of lr * lambda_max over (0, 2.5]: rates, convergence, sign flips.
        scaled = np.linspace(0.025, 2.5, 40 if quick else 200)
        lrs = scaled / lam_max
        ws = np.asarray(_sweep(jnp.asarray(lrs), prob["x"], prob["y"], steps_sweep))
        errors = ws - prob["w_star"][None, None, :]
        norms = np.linalg.norm(errors, axis=2)
        half = steps_sweep // 2
        rate = (norms[:, -1] / norms[:, half]) ** (1.0 / (steps_sweep - half))
        theory = np.maximum(np.abs(1 - lrs * lam_min), np.abs(1 - lrs * lam_max))
        converged = rate < 1
        top = errors @ prob["top"]  # the error's component along the top eigenvector
        # Sign flips, counted while the component is well above rounding (|w*| ~ 1).
        flipped = np.sign(top[:, 1:]) != np.sign(top[:, :-1])
        counted = np.abs(top[:, :-1]) > 1e-9
        flips = np.sum(flipped & counted, axis=1) / np.maximum(np.sum(counted, axis=1), 1)
        rows[name] = {
            "lam_max": lam_max,
            "lam_min": lam_min,
            "threshold": threshold,
            "boundary": boundary,
            "rel_error": boundary / threshold - 1,
            "scaled": scaled,
            "lrs": lrs,
            "rate": rate,
            "theory": theory,
            "rate_vs_theory": float(np.max(np.abs(rate - theory) / theory)),
            "misclassified": int(np.sum(converged != (scaled < 2))),
            "flips_oscillating": float(flips[(scaled > 1) & (scaled < 2)].min()),
            "flips_monotone": float(flips[scaled < 1].max()),
            "best_lr": float(lrs[np.argmin(rate)]),
            "best_theory": 2.0 / (lam_min + lam_max),
        }

    net = network_learning_rate(seeds=3 if quick else 10, steps=100 if quick else 400)

    fig, axes = plt.subplots(1, 4, figsize=(24, 5.6), layout="constrained")
    ax = axes[0]
    for (name, r), colour in zip(rows.items(), ("C0", "C3"), strict=True):
        ax.semilogx(r["lrs"], r["rate"], "o", ms=3, color=colour, label=f"{name}: measured")
        ax.semilogx(
            r["lrs"], r["theory"], "-", lw=1, color=colour, label=f"{name}: max |1 - lr lam_i|"
        )
        ax.axvline(r["threshold"], color=colour, ls="--", lw=1)
        ax.axvline(r["boundary"], color=colour, ls=":", lw=2)
        ax.text(
            r["threshold"] * 0.93,
            0.1,
            f"2 / lam_max = {r['threshold']:.3g}",
            color=colour,
            rotation=90,
            fontsize=8,
            ha="right",
        )
    ax.axhline(1, color="k", lw=0.8)
    ax.set_ylim(0, 1.6)
    ax.set_xlabel("learning rate (dashed: 2 / lam_max; dotted: measured boundary)")
    ax.set_ylabel("error shrink factor per step")
    ax.set_title("two problems, two learning-rate ranges (factor > 1: diverges)")
    ax.legend(fontsize=8, loc="upper left")

    # Paths on a 2-D quadratic 0.5 w^T A2 w, A2 with eigenvalues 1 and 4, rotated.
    ax = axes[1]
    angle = np.pi / 6
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    a2 = rot @ np.diag([1.0, 4.0]) @ rot.T
    t = np.linspace(-3, 3, 201)
    gx, gy = np.meshgrid(t, t)
    pts = np.stack([gx, gy], axis=-1)
    heights = 0.5 * np.einsum("...i,ij,...j->...", pts, a2, pts)
    ax.contour(gx, gy, heights, levels=15, colors="lightsteelblue")
    quad_grad = jax.jit(jax.grad(lambda w: 0.5 * w @ jnp.asarray(a2) @ w))
    for scaled_lr, colour in SHOWN:
        w = jnp.asarray(rot @ np.array([-2.5, 1.0]))  # (flat, steep) components
        path = [np.asarray(w)]
        for _ in range(25):
            w = w - (scaled_lr / 4.0) * quad_grad(w)
            path.append(np.asarray(w))
        path = np.array(path)
        ax.plot(
            path[:, 0], path[:, 1], "o-", ms=3, color=colour, label=f"lr * lam_max = {scaled_lr}"
        )
    ax.plot([0], [0], "k*", ms=10)
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_aspect("equal")
    ax.set_title("gradient descent on 0.5 w^T A w, eigenvalues 1 and 4")
    ax.legend(loc="lower left", fontsize=8)

    ax = axes[2]
    prob = problems["A"]
    for scaled_lr, colour in SHOWN:
        lr = scaled_lr / prob["lams"][-1]
        ws = np.asarray(descend(jnp.float64(lr), prob["x"], prob["y"], 20))
        top = (ws - prob["w_star"][None, :]) @ prob["top"]
        ax.plot(top, "o-", ms=3, color=colour, label=f"lr * lam_max = {scaled_lr}")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylim(-3 * abs(top[0]), 3 * abs(top[0]))
    ax.set_xlabel("step")
    ax.set_ylabel("error along the top eigenvector of A")
    ax.set_title("problem A: monotone, oscillating, diverging")
    ax.legend(fontsize=8)
    ax = axes[3]
    finite = np.isfinite(net["val_mean"])
    for key, colour, label in (
        ("train_mean", "C0", "training loss"),
        ("val_mean", "C1", "validation loss"),
    ):
        ax.loglog(
            np.array(net["lrs"])[finite],
            net[key][finite],
            "o-",
            color=colour,
            label=f"{label} (mean of {net['seeds']} seeds)",
        )
    ax.axvline(net["chosen"], color="C1", ls=":", lw=1.5)
    if net["diverged"]:
        ax.text(
            0.98,
            0.5,
            "diverged (not drawn):\nlr " + ", ".join(f"{lr:g}" for lr in net["diverged"]),
            transform=ax.transAxes,
            ha="right",
            fontsize=9,
        )
    ax.set_xlabel("learning rate (dotted: chosen on validation loss)")
    ax.set_ylabel(f"cross-entropy after {net['steps']} full-batch steps")
    ax.set_title("an MLP 64-32-10 on digits: lr chosen on held-out data", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    figure = examples.save(fig, out_dir, "learning_rate")

    worst = max(abs(r["rel_error"]) for r in rows.values())
    holds = (
        worst < 0.01
        and all(r["misclassified"] == 0 for r in rows.values())
        and all(r["flips_oscillating"] == 1.0 and r["flips_monotone"] == 0.0 for r in rows.values())
    )
    a, b = rows["A"], rows["9A (data x 3)"]
    t_mean, t_lo, t_hi = net["test_accuracy"]
    net_text = (
        f"an MLP 64-32-10 (ReLU, {net['seeds']} seeds, {net['steps']} steps of full-batch "
        f"`W -= lr * dW`) on 1000 digits, lr from {{{', '.join(f'{lr:g}' for lr in net['lrs'])}}}: "
        f"the mean validation loss (347 held-out images) is lowest at lr = {net['chosen']:g}, "
        f"where the test accuracy is {t_mean:.1%} (t 95% interval [{t_lo:.1%}, {t_hi:.1%}]); "
        f"the training loss alone would pick lr = {net['by_train']:g}"
        + (
            f"; lr {', '.join(f'{lr:g}' for lr in net['diverged'])} diverged (non-finite loss) "
            "for some seed"
            if net["diverged"]
            else ""
        )
        + ". A single split, not k-fold cross-validation, which is rarely affordable for "
        "networks."
    )
    summary = (
        f"gradient descent converges iff lr < 2/lambda_max: measured boundary "
        f"{a['boundary']:.5g} vs 2/lambda_max = {a['threshold']:.5g} "
        f"({a['rel_error']:+.1e}), and {b['boundary']:.5g} vs {b['threshold']:.5g} "
        f"({b['rel_error']:+.1e}) for the same data x 3; for lr * lambda_max in (1, 2) the "
        f"top component flips sign at {a['flips_oscillating']:.0%} of steps, below 1 at "
        f"{a['flips_monotone']:.0%}"
    )
    table = "\n".join(
        f"| {name} | {r['lam_max']:.4g} | {r['lam_min']:.4g} | {r['threshold']:.6g} | "
        f"{r['boundary']:.6g} | {r['rel_error']:+.1e} | {r['misclassified']} | "
        f"{r['best_lr']:.4g} ({r['best_theory']:.4g}) |"
        for name, r in rows.items()
    )
    rate_vs_theory = max(r["rate_vs_theory"] for r in rows.values())
    notes = f"""
Least squares `f(w) = 0.5 * mse(X w, y)` (dlref's `mse`; X is 200 x 10 with column
scales from 1 to 0.3), whose Hessian is `A = X^T X / n`, and the same with the data
multiplied by 3 (Hessian 9A). Gradient descent `w -= lr * grad f(w)` from w = 0.

{TABLE_HEAD}
{table}

- **The boundary**: bisection on lr, with the criterion "after {steps_bisect} steps the
  error is larger than at the start" (no eigenvalue used), lands within
  {worst:.1e} (relative) of `2 / lambda_max` from numpy's `eigvalsh`. Of
  {len(a["scaled"])} learning rates per problem from 0.025 to 2.5 times `1 / lambda_max`,
  every one below `2 / lambda_max` shrank the error (its measured shrink factor per step,
  over steps {steps_sweep // 2} to {steps_sweep}, is below 1) and every one above grew it
  (misclassified: the table).
- **Monotone, oscillating, diverging**: below `lr * lambda_max = 1` the error along the
  top eigenvector keeps its sign ({a["flips_monotone"]:.0%} of steps flip); between 1 and 2
  it flips sign at {a["flips_oscillating"]:.0%} of steps while shrinking (the zig-zag across
  the valley, middle panel); above 2 it flips and grows. The measured shrink factor per
  step matches `max_i |1 - lr * lambda_i|` to a relative {rate_vs_theory:.1e}
  (left panel).
- **"Different for a variety of problems" (holds)**: multiplying the data by 3
  multiplies the curvature by 9 and divides the usable range of learning rates by 9;
  a learning rate that is fast on one problem diverges on the other.
- **Loose: "the magnitude at which you're adjusting your weights"**. The step is
  `lr * dW`: its size is `lr * |dW|`, which changes every step; the learning rate is the
  factor. **Loose: "cross validated"**: the learning rate is tuned on the training loss
  or a held-out validation set; k-fold cross-validation is rarely affordable for
  networks. For a quadratic the best constant rate is known: `2 / (lambda_min +
  lambda_max)`, which the sweep finds (last column).
- **"Cross validated" on a network (holds, with held-out data)**: {net_text}
"""
    return examples.result(
        "holds" if holds else "does not hold",
        summary,
        figure,
        notes,
        lambda_max=float(a["lam_max"]),
        threshold=float(a["threshold"]),
        boundary=float(a["boundary"]),
        boundary_rel_error=float(a["rel_error"]),
        threshold_scaled=float(b["threshold"]),
        boundary_scaled=float(b["boundary"]),
        boundary_scaled_rel_error=float(b["rel_error"]),
        misclassified=sum(r["misclassified"] for r in rows.values()),
        flips_oscillating=min(r["flips_oscillating"] for r in rows.values()),
        flips_monotone=max(r["flips_monotone"] for r in rows.values()),
        rate_vs_theory=max(r["rate_vs_theory"] for r in rows.values()),
        heldout_lrs=net["lrs"],
        heldout_seeds=net["seeds"],
        heldout_best_lr=net["chosen"],
        heldout_train_best_lr=net["by_train"],
        heldout_val_loss=net["val_mean"].tolist(),
        heldout_test_accuracy=list(net["test_accuracy"]),
        heldout_diverged=net["diverged"],
        heldout_text=net_text,
    )


if __name__ == "__main__":
    examples.main_one("learning_rate", run)
