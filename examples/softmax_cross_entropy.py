"""Softmax with cross-entropy: two classes are logistic regression; the fused gradient
softmax(z) - y; softmax regression is scikit-learn's multinomial logistic regression;
cross-entropy is Shannon's.

Every loss and gradient is dlref's (``jax.grad`` runs the hand-written backward passes);
scikit-learn's ``LogisticRegression`` and scipy's ``entropy`` are the independent references.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import scipy.stats
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import examples
from dlref import activations as act
from dlref import gradcheck, losses, regularizers

TITLE = "Softmax with cross-entropy"
CLAIM = (
    "[Softmax:] This function does a multinomial logistic regression and is generally used "
    "for multi class classification. Usually paired with cross entropy as the loss function. "
    "[Cross entropy:] loss = - sum_i (y_i log(y_predicted_i) + (1 - y_i) log(1 - "
    "y_predicted_i)). Cross entropy is a loss function is related to the entropy of "
    "thermodynamics concept of entropy. This is used in multi class classification to find "
    "the error in the prediction."
)
# The dlref code the results depend on (hashed into the JSON: examples.code_files)
USES = (
    "dlref/activations/_basic.py",
    "dlref/gradcheck.py",
    "dlref/losses/_cross_entropy.py",
    "dlref/regularizers.py",
)

C = 1.0  # scikit-learn's inverse penalty strength


@jax.jit
def _two_class(z: jax.Array, y: jax.Array) -> dict:
    """Softmax cross-entropy over [z0, z1] against binary cross-entropy on z1 - z0.

    ``z``: (n, 2) logits; ``y``: (n,) labels 0/1 as floats.
    """
    onehot = jnp.stack([1 - y, y], axis=1)
    d = z[:, 1] - z[:, 0]
    two = losses.softmax_cross_entropy(z, onehot)
    bce = losses.binary_cross_entropy_with_logits(d[:, None], y[:, None])
    # Gradients: d/dz of the softmax loss against (-g, g), g = d/dd of the binary loss.
    dz = jax.grad(lambda z: jnp.sum(losses.softmax_cross_entropy(z, onehot)))(z)
    dd = jax.grad(
        lambda d: jnp.sum(losses.binary_cross_entropy_with_logits(d[:, None], y[:, None]))
    )(d)
    return {
        "d": d,
        "y": y,
        "softmax_loss": two,
        "bce": bce,
        "loss_diff": jnp.max(jnp.abs(two - bce)),
        "prob_diff": jnp.max(jnp.abs(act.softmax(z)[:, 1] - act.sigmoid(d))),
        "grad_diff": jnp.max(jnp.abs(dz - jnp.stack([-dd, dd], axis=1))),
    }


@jax.jit
def _fused_gradient(z: jax.Array, y: jax.Array) -> dict:
    """jax.grad of softmax cross-entropy (hand-written and autodiff) against softmax(z) - y.

    ``z``: (n, C) logits; ``y``: (n, C) one-hot targets.
    """
    hand = jax.grad(lambda z: jnp.sum(losses.softmax_cross_entropy(z, y)))(z)
    auto = jax.grad(lambda z: jnp.sum(losses.softmax_cross_entropy.autodiff(z, y)))(z)
    formula = act.softmax(z) - y
    few = slice(0, 8)  # central differences on 8 examples
    fd = gradcheck.numerical_grad(
        lambda z: jnp.sum(losses.softmax_cross_entropy(z, y[few])), z[few]
    )
    return {
        "fd": fd,
        "hand_few": hand[few],
        "hand": hand,
        "formula": formula,
        "hand_diff": jnp.max(jnp.abs(hand - formula)),
        "auto_diff": jnp.max(jnp.abs(auto - formula)),
        "z": z,
        "y": y,
    }


@functools.partial(jax.jit, static_argnums=(2, 3))
def _softmax_regression(x: jax.Array, labels: jax.Array, classes: int, steps: int) -> tuple:
    """Softmax regression fitted by Newton's method with dlref's loss; its probabilities.

    The objective is scikit-learn's: ``C * sum_i CE_i + l2(W)`` (the bias unpenalized).
    The gradient runs dlref's hand-written backward; the Hessian comes from the
    ``.autodiff`` variants (forward-over-reverse).
    """
    d, k = x.shape[1], classes
    xj = x
    y = jax.nn.one_hot(labels, k, dtype=jnp.float64)

    def objective(theta, ce, l2):
        w, b = theta[: d * k].reshape(d, k), theta[d * k :]
        logits = xj @ w + b[None, :]
        return C * jnp.sum(ce(logits, y)) + l2(w)

    grad = jax.grad(lambda t: objective(t, losses.softmax_cross_entropy, regularizers.l2))
    hessian = jax.hessian(
        lambda t: objective(t, losses.softmax_cross_entropy.autodiff, regularizers.l2.autodiff)
    )

    def newton(theta):
        # The bias is determined only up to a constant shift (the Hessian is singular
        # along it; the probabilities are not): a least-squares step.
        step = jnp.linalg.lstsq(hessian(theta), grad(theta))[0]
        return theta - step

    theta = jax.lax.fori_loop(0, steps, lambda _, t: newton(t), jnp.zeros(d * k + k))
    w, b = theta[: d * k].reshape(d, k), theta[d * k :]
    return act.softmax(xj @ w + b[None, :]), jnp.max(jnp.abs(grad(theta)))


@jax.jit
def _information_arrays(t_logits: jax.Array, z: jax.Array, onehot: jax.Array) -> dict:
    t = act.softmax(t_logits)  # soft targets
    p = act.softmax(z)
    ce = losses.categorical_cross_entropy(p, t)
    categorical = losses.categorical_cross_entropy(p, onehot)
    binary_formula = losses.binary_cross_entropy(p, onehot)  # the cheat sheet's formula
    # Gradients with respect to the logits, through dlref's softmax.
    d_binary = jax.grad(lambda z: jnp.sum(losses.binary_cross_entropy(act.softmax(z), onehot)))(z)
    d_categorical = act.softmax(z) - onehot
    return {
        "t": t,
        "p": p,
        "ce": ce,
        "categorical": categorical,
        "binary_formula": binary_formula,
        "grad_gap": jnp.max(jnp.abs(d_binary - d_categorical)),
    }


def _information(t_logits: jax.Array, z: jax.Array, onehot: jax.Array) -> dict:
    """Cross-entropy H(t, p) against Shannon's H(t) + KL(t || p) (scipy), and the cheat
    sheet's (binary) formula against the categorical cross-entropy on softmax outputs."""
    a = {name: np.asarray(v) for name, v in _information_arrays(t_logits, z, onehot).items()}
    shannon = scipy.stats.entropy(a["t"], axis=1) + scipy.stats.entropy(a["t"], a["p"], axis=1)
    return {
        "shannon_diff": float(np.max(np.abs(a["ce"] - shannon))),
        "categorical": a["categorical"],
        "binary_formula": a["binary_formula"],
        "extra_mean": float(np.mean(a["binary_formula"] - a["categorical"])),
        "grad_gap": float(a["grad_gap"]),
    }


def _one_hot(rng: np.random.Generator, n: int, classes: int) -> np.ndarray:
    """``(n, classes)`` one-hot rows of uniformly drawn classes."""
    return np.eye(classes)[rng.integers(0, classes, n)]


def run(out_dir: pathlib.Path, quick: bool = False) -> dict:
    examples.setup()
    rng = np.random.default_rng(0)
    n, n_fused, classes = (200, 64, 5) if quick else (5000, 1000, 5)
    two = _two_class(4.0 * rng.standard_normal((n, 2)), rng.integers(0, 2, n).astype(np.float64))
    fused = _fused_gradient(
        3.0 * rng.standard_normal((n_fused, classes)), _one_hot(rng, n_fused, classes)
    )
    fd = gradcheck.compare(fused["hand_few"], fused["fd"])
    info = _information(
        rng.standard_normal((n, classes)),
        2.0 * rng.standard_normal((n, classes)),
        _one_hot(rng, n, classes),
    )

    # Multinomial logistic regression on iris (standardized): dlref's softmax regression
    # against scikit-learn's LogisticRegression (lbfgs, the multinomial loss).
    iris = load_iris()
    x = (iris.data - iris.data.mean(0)) / iris.data.std(0)
    labels = iris.target
    probs, grad_norm = _softmax_regression(jnp.asarray(x), jnp.asarray(labels), 3, 12)
    probs, grad_norm = np.asarray(probs), float(grad_norm)
    sk = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(x, labels)
    sk_probs = sk.predict_proba(x)
    sk_diff = float(np.max(np.abs(probs - sk_probs)))
    accuracy = float(np.mean(probs.argmax(1) == labels))

    loss_diff, prob_diff = float(two["loss_diff"]), float(two["prob_diff"])
    grad_diff = float(two["grad_diff"])
    hand_diff, auto_diff = float(fused["hand_diff"]), float(fused["auto_diff"])

    fig, axes = plt.subplots(2, 2, figsize=(12.5, 10), layout="constrained")
    ax = axes[0, 0]
    grid = jnp.linspace(-10.0, 10.0, 401, dtype=jnp.float64)
    for label, colour in ((1.0, "C0"), (0.0, "C1")):
        targets = jnp.full((grid.shape[0], 1), label, dtype=jnp.float64)
        ax.plot(
            grid,
            losses.binary_cross_entropy_with_logits(grid[:, None], targets),
            color=colour,
            label=f"binary CE with logits on z1 - z0, y = {label:g}",
        )
        keep = np.asarray(two["y"]) == label
        ax.plot(
            np.asarray(two["d"])[keep][:300],
            np.asarray(two["softmax_loss"])[keep][:300],
            "o",
            color=colour,
            ms=3,
            alpha=0.5,
            label=f"softmax CE over [z0, z1], y = {label:g}",
        )
    ax.set_xlim(-10, 10)
    ax.set_ylim(0, 10)
    ax.set_xlabel("z1 - z0")
    ax.set_ylabel("loss")
    ax.set_title(f"two classes = logistic regression (max |diff| {loss_diff:.1e})")
    ax.legend(fontsize=8)

    ax = axes[0, 1]
    ax.plot(np.ravel(fused["formula"]), np.ravel(fused["hand"]), ".", ms=3)
    ax.plot([-1, 1], [-1, 1], "k:", lw=1)
    ax.set_xlabel("softmax(z) - y")
    ax.set_ylabel("jax.grad of softmax cross-entropy (hand-written backward)")
    ax.set_title(f"the fused gradient (max |diff| {hand_diff:.1e})")

    ax = axes[1, 0]
    ax.plot(np.ravel(sk_probs), np.ravel(probs), ".", ms=4)
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set_xlabel("scikit-learn LogisticRegression: predicted probability")
    ax.set_ylabel("dlref softmax regression: predicted probability")
    ax.set_title(
        f"softmax regression = multinomial logistic regression (iris, max |diff| {sk_diff:.1e})"
    )

    ax = axes[1, 1]
    ax.plot(info["categorical"], info["binary_formula"], ".", ms=3, alpha=0.5)
    top = float(np.percentile(info["binary_formula"], 99))
    ax.plot([0, top], [0, top], "k:", lw=1, label="equal")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("categorical cross-entropy  -sum y log p")
    ax.set_ylabel("cheat sheet's formula  -sum [y log p + (1 - y) log(1 - p)]")
    ax.set_title(
        f"5 classes, softmax outputs: the formula adds {info['extra_mean']:.2f} on average"
    )
    ax.legend()
    figure = examples.save(fig, out_dir, "softmax_cross_entropy")

    holds = max(loss_diff, prob_diff, grad_diff, hand_diff, auto_diff) < 1e-12 and sk_diff < 1e-5
    summary = (
        f"two-class softmax CE = binary CE with logits on z1 - z0 (max |diff| {loss_diff:.1e} "
        f"over {n} pairs; gradients {grad_diff:.1e}); jax.grad = softmax(z) - y (max |diff| "
        f"{hand_diff:.1e}); softmax regression = scikit-learn's multinomial logistic "
        f"regression (iris probabilities, max |diff| {sk_diff:.1e}); cross-entropy is "
        "Shannon's (information theory), not thermodynamics', and the formula shown is the "
        "binary one"
    )
    notes = f"""
All losses and gradients are dlref's; `jax.grad` runs the hand-written backward passes.

- **Two classes are logistic regression**: on {n} random logit pairs (scale 4) and labels,
  softmax cross-entropy over `[z0, z1]` equals `binary_cross_entropy_with_logits` on
  `z1 - z0` to {loss_diff:.1e}, `softmax(z)[1] = sigmoid(z1 - z0)` to {prob_diff:.1e},
  and the gradients are `(-g, g)` with g the binary loss's gradient, to {grad_diff:.1e}.
- **The fused gradient** of softmax plus cross-entropy is `softmax(z) - y` (one-hot y):
  dlref's hand-written backward matches the formula to {hand_diff:.1e} and JAX's autodiff
  of the same forward to {auto_diff:.1e} (5 classes); central differences agree to a
  relative {fd.max_rel:.1e}.
- **Softmax regression is multinomial logistic regression**: fitting `softmax(x W + b)`
  with dlref's loss (Newton's method; objective `C * sum CE + l2(W)`, C = {C:g}) on the
  standardized iris data gives the probabilities of scikit-learn's `LogisticRegression`
  to {sk_diff:.1e} (training accuracy {accuracy:.1%}; final gradient norm {grad_norm:.1e}).
- **Wrong: "related to the entropy of thermodynamics"**. Cross-entropy comes from
  information theory (Shannon, 1948): `H(t, p) = -sum t log p` is the expected code
  length, in nats, of symbols drawn from `t` coded with a code optimal for `p`, and
  `H(t, p) = H(t) + KL(t || p)`; dlref's `categorical_cross_entropy` matches scipy's
  `entropy(t) + entropy(t, p)` to {info["shannon_diff"]:.1e} on {n} random soft
  targets. The formula looks like Gibbs' entropy of statistical mechanics, which is
  where Shannon borrowed the name, but the loss measures coding cost, not heat.
  Minimizing it over p is minimizing `KL(t || p)`, i.e. maximum likelihood.
- **Loose: the formula shown is binary cross-entropy**. `-sum_i [y_i log p_i + (1 - y_i)
  log(1 - p_i)]` treats each output as its own yes/no question (sigmoid outputs,
  multi-label). For softmax over C exclusive classes the loss is the categorical
  `-sum_i y_i log p_i`; applied to softmax outputs the shown formula adds
  `-sum_(i != y) log(1 - p_i)`, {info["extra_mean"]:.2f} nats on average over {n}
  random 5-class examples (bottom right), and changes the gradient with respect to the
  logits (from `softmax(z) - y` by up to {info["grad_gap"]:.2f} here). The two agree
  for a single sigmoid output (C = 2).
"""
    return examples.result(
        "holds with a caveat" if holds else "does not hold",
        summary,
        figure,
        notes,
        two_class_loss_diff=loss_diff,
        two_class_prob_diff=prob_diff,
        two_class_grad_diff=grad_diff,
        fused_grad_diff=hand_diff,
        fused_grad_autodiff_diff=auto_diff,
        finite_difference_rel=fd.max_rel,
        sklearn_prob_diff=sk_diff,
        shannon_diff=info["shannon_diff"],
        binary_formula_extra=info["extra_mean"],
    )


if __name__ == "__main__":
    examples.main_one("softmax_cross_entropy", run)
