"""Objective functions and F1: precision, recall and F1 from a confusion matrix, worked out;
F1 against its differentiable surrogate soft-F1; and a one-line check of each objective
function the cheat sheet names (MSE, MAE, hinge, categorical cross-entropy).

dlref's metrics (``confusion_matrix``, ``precision``, ``recall``, ``f1_score``) are compared
with scikit-learn's and with the cheat sheet's formulas; dlref's losses (``soft_f1``,
``mse``, ``mae``, ``hinge``, ``categorical_cross_entropy``, ``softmax_cross_entropy``) with
scikit-learn's metrics and with the minimizers that theory predicts. ``jax.grad`` runs the
hand-written backward passes.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import sklearn.metrics

import examples
from dlref import losses, metrics, optim

TITLE = "Objective functions and F1"
CLAIM = (
    "The loss/cost/optimization/objective function is the function that is computed on the "
    "prediction of your network. [...] This function then is used in back propagation to "
    "give us our gradient to allow our network to be optimized. Examples of these functions "
    "are f1/f score, categorical cross entropy, mean squared error, mean absolute error, hinge "
    "loss... etc. [F1:] F1 = 2 * (Precision * Recall) / (Precision + Recall) [...] "
    "Precision = True Positives / (True Positives + False Positives) [...] Recall = True "
    "Positives / (True Positives + False Negatives)"
)
# The dlref code the results depend on (hashed into the JSON: examples.code_files)
USES = (
    "dlref/losses",
    "dlref/metrics.py",
    "dlref/optim.py",
)

N = 40  # examples in the worked example


def _worked_example() -> dict:
    """40 examples, 15 positive, with model scores; predictions are scores >= 0.5."""
    rng = np.random.default_rng(3)
    y_true = np.array([1] * 15 + [0] * 25, np.int32)
    # Positives score higher on average; the overlap makes errors of both kinds.
    logits = np.where(y_true == 1, 0.9, -0.9) + 1.1 * rng.standard_normal(N)
    return {"y_true": y_true, "logits": logits}


def thresholded_f1(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """F1 of the predictions ``logits >= 0``, written with array ops so that JAX can
    differentiate it: ``2 tp / (2 tp + fp + fn)``."""
    pred = (logits >= 0).astype(logits.dtype)
    tp = jnp.sum(pred * targets)
    return 2 * tp / (jnp.sum(pred) + jnp.sum(targets))


def _soft(logits, targets):
    """``1 - soft_f1``: the soft F1 of ``sigmoid(logits)``, a number in [0, 1]."""
    return 1 - losses.soft_f1(jax.nn.sigmoid(logits), targets)


@functools.partial(jax.jit, static_argnames="steps")
def _train(x, y, *, steps: int):
    """A linear classifier ``sigmoid(x @ w + b)`` trained by gradient descent (lr 1) on
    soft-F1 and on the thresholded F1 (the metric itself), from the same start. Returns
    the F1 of both every step, and the norm of the metric's gradient at every step."""

    def f1_of(params):
        w, b = params
        return thresholded_f1(x @ w + b, y)

    def soft_loss(params):
        w, b = params
        return losses.soft_f1(jax.nn.sigmoid(x @ w + b), y)

    def metric_loss(params):
        return 1 - f1_of(params)

    start = (jnp.full((x.shape[1],), 0.3, x.dtype), jnp.asarray(0.0, x.dtype))

    def step(carry, _):
        soft_p, metric_p = carry
        g_metric = jax.grad(metric_loss)(metric_p)
        norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree.leaves(g_metric)))
        soft_p = optim.gradient_descent(soft_p, jax.grad(soft_loss)(soft_p), 1.0)
        metric_p = optim.gradient_descent(metric_p, g_metric, 1.0)
        return (soft_p, metric_p), (f1_of(soft_p), f1_of(metric_p), norm)

    _, (f1_soft, f1_metric, norms) = jax.lax.scan(step, (start, start), None, length=steps)
    return f1_of(start), f1_soft, f1_metric, norms


AVERAGES = ("micro", "macro", "weighted")


@jax.jit
def _binary_metrics(y_true, y_pred) -> tuple:
    """dlref's confusion matrix, precision, recall and F1 (one compilation for all)."""
    scores = {
        "precision": metrics.precision(y_true, y_pred, num_classes=2),
        "recall": metrics.recall(y_true, y_pred, num_classes=2),
        "f1": metrics.f1_score(y_true, y_pred, num_classes=2),
    }
    return metrics.confusion_matrix(y_true, y_pred, num_classes=2), scores


@jax.jit
def _multiclass(y_true, y_pred) -> dict:
    return {
        average: metrics.precision_recall_fscore_support(
            y_true, y_pred, num_classes=5, average=average
        )
        for average in AVERAGES
    }


@jax.jit
def _soft_checks(z, targets, hard) -> tuple:
    """soft_f1 at the 0/1 predictions, and the gradients of the thresholded F1 and of
    soft-F1 with respect to the logits."""
    g_metric = jax.grad(thresholded_f1)(z, targets)
    g_soft = jax.grad(lambda v: losses.soft_f1(jax.nn.sigmoid(v), targets))(z)
    return losses.soft_f1(hard, targets), g_metric, g_soft


@jax.jit
def _objective_checks(sample, median, scores, signs, probs, onehot, grid) -> dict:
    """One check per objective (one compilation for all): the best constant prediction
    under MSE by gradient descent; MAE at every data point, its subgradient at the median;
    hinge on random scores and on a separable case; categorical cross-entropy, and the
    best constant prediction under it by gradient descent on softmax logits."""

    def mse_of(c):
        return losses.mse(jnp.full_like(sample, c), sample)

    def mae_of(c):
        return losses.mae(jnp.full_like(sample, c), sample)

    def mse_step(_, c):
        return optim.gradient_descent(c, jax.grad(mse_of)(c), 0.5)  # mse'' = 2: one step

    def ce_const(v):
        logits = jnp.broadcast_to(v[None, :], onehot.shape)
        return jnp.mean(losses.softmax_cross_entropy(logits, onehot))

    def ce_step(_, v):
        return optim.gradient_descent(v, jax.grad(ce_const)(v), 2.0)

    v = jax.lax.fori_loop(0, 300, ce_step, jnp.zeros(onehot.shape[1:], onehot.dtype))
    return {
        "mse_min": jax.lax.fori_loop(0, 100, mse_step, jnp.zeros((), sample.dtype)),
        "mae_at_data": jax.vmap(mae_of)(sample),
        "mae_grad_at_median": jax.grad(mae_of)(median),
        "mse_curve": jax.vmap(mse_of)(grid),
        "mae_curve": jax.vmap(mae_of)(grid),
        "hinge": losses.hinge(scores, signs),
        "hinge_separable": losses.hinge(3.0 * signs, signs),  # every margin 3 >= 1
        "ce": jnp.mean(losses.categorical_cross_entropy(probs, onehot)),
        "ce_constant": jax.nn.softmax(v),
    }


def run(out_dir: pathlib.Path, quick: bool = False) -> dict:
    examples.setup()
    ex = _worked_example()
    y_true = ex["y_true"]
    logits = ex["logits"]
    y_pred = (logits >= 0).astype(np.int32)  # probability sigmoid(logit) >= 0.5
    yt, yp = jnp.asarray(y_true), jnp.asarray(y_pred)

    # --- precision, recall, F1 from the confusion matrix --------------------------------
    cm, scores_ = _binary_metrics(yt, yp)
    cm = np.asarray(cm)
    (tn, fp), (fn, tp) = cm.tolist()
    ours = {k: float(v) for k, v in scores_.items()}
    sk = {
        "precision": sklearn.metrics.precision_score(y_true, y_pred),
        "recall": sklearn.metrics.recall_score(y_true, y_pred),
        "f1": sklearn.metrics.f1_score(y_true, y_pred),
    }
    p_formula = tp / (tp + fp)
    r_formula = tp / (tp + fn)
    formula = {
        "precision": p_formula,
        "recall": r_formula,
        "f1": 2 * (p_formula * r_formula) / (p_formula + r_formula),
    }
    cm_equal = bool(np.array_equal(cm, sklearn.metrics.confusion_matrix(y_true, y_pred)))
    vs_sklearn = max(abs(ours[k] - sk[k]) for k in ours)
    vs_formula = max(abs(ours[k] - formula[k]) for k in ours)

    # A multiclass check of the averages (5 classes, 200 labels).
    rng = np.random.default_rng(0)
    mc_true = rng.integers(0, 5, 200).astype(np.int32)
    mc_pred = np.where(rng.random(200) < 0.6, mc_true, rng.integers(0, 5, 200)).astype(np.int32)
    multiclass_diff = 0.0
    mine_all = _multiclass(jnp.asarray(mc_true), jnp.asarray(mc_pred))
    for average in AVERAGES:
        mine = mine_all[average]
        theirs = sklearn.metrics.precision_recall_fscore_support(mc_true, mc_pred, average=average)
        for a, b in zip(mine[:3], theirs[:3], strict=True):
            multiclass_diff = max(multiclass_diff, abs(float(a) - float(b)))

    # --- soft-F1 against F1 -----------------------------------------------------------
    targets = jnp.asarray(y_true, jnp.float64)
    z = jnp.asarray(logits, jnp.float64)
    hard = jnp.asarray(y_pred, jnp.float64)
    soft_at_01, g_metric, g_soft = (np.asarray(a) for a in _soft_checks(z, targets, hard))
    soft_at_01 = float(soft_at_01)
    at_01_diff = abs(soft_at_01 - (1 - ours["f1"]))
    sharpness = np.logspace(-1, 2.5, 36)
    sharp = jnp.asarray(sharpness)
    soft_sharp = np.asarray(jax.jit(jax.vmap(lambda s: _soft(s * z, targets)))(sharp))
    f1_sharp = np.asarray(jax.jit(jax.vmap(lambda s: thresholded_f1(s * z, targets)))(sharp))
    sharp_gap = float(abs(soft_sharp[-1] - ours["f1"]))

    # Gradients: the metric's is zero, the surrogate's is not.
    metric_grad_zero = bool(np.all(g_metric == 0))
    soft_signs_ok = bool(np.all(g_soft[y_true == 1] < 0) and np.all(g_soft[y_true == 0] > 0))

    # One example's logit swept: F1 is a step, soft F1 is smooth.
    j = int(np.flatnonzero(y_true == 1)[np.argmin(np.abs(logits[y_true == 1]))])
    sweep = jnp.linspace(-4.0, 4.0, 161, dtype=jnp.float64)

    def with_j(v):
        return z.at[j].set(v)

    f1_j = np.asarray(jax.jit(jax.vmap(lambda v: thresholded_f1(with_j(v), targets)))(sweep))
    soft_j = np.asarray(jax.jit(jax.vmap(lambda v: _soft(4.0 * with_j(v), targets)))(sweep))

    # Training a linear classifier on soft-F1, and on F1 itself.
    steps = 100 if quick else 300
    x_cls = rng.standard_normal((400, 2))
    y_cls = (x_cls @ np.array([1.5, -1.0]) + 0.5 * rng.standard_normal(400) > 1.8).astype(float)
    f1_start, f1_soft_run, f1_metric_run, metric_norms = _train(
        jnp.asarray(x_cls), jnp.asarray(y_cls), steps=steps
    )
    f1_start = float(f1_start)
    f1_soft_run, f1_metric_run = np.asarray(f1_soft_run), np.asarray(f1_metric_run)
    metric_norm_max = float(np.max(np.asarray(metric_norms)))

    # --- the objective functions the cheat sheet names ---------------------------------
    sample = rng.exponential(1.0, 101)  # skewed: mean and median differ

    scores = rng.standard_normal(50) * 2
    signs = np.where(rng.random(50) < 0.5, -1.0, 1.0)
    labels = rng.choice(3, 300, p=[0.6, 0.3, 0.1]).astype(np.int32)
    onehot = np.eye(3)[labels]
    probs = rng.dirichlet(np.ones(3), 300)
    grid = jnp.linspace(0.0, 3.0, 301, dtype=jnp.float64)
    checks = _objective_checks(
        *(jnp.asarray(a) for a in (sample, np.median(sample), scores, signs, probs, onehot, grid))
    )
    checks = {k: np.asarray(v) for k, v in checks.items()}
    mse_vs_mean = abs(float(checks["mse_min"]) - sample.mean())
    # MAE is piecewise linear with kinks at the data: its minimum is at a data point.
    mae_min = float(sample[np.argmin(checks["mae_at_data"])])
    mae_vs_median = abs(mae_min - np.median(sample))
    mae_grad_at_median = float(checks["mae_grad_at_median"])
    hinge_sk = sklearn.metrics.hinge_loss(signs, scores)
    hinge_diff = abs(float(checks["hinge"]) - hinge_sk)
    separable = float(checks["hinge_separable"])
    ce_sk = sklearn.metrics.log_loss(labels, probs)
    ce_diff = abs(float(checks["ce"]) - ce_sk)
    freq = np.bincount(labels, minlength=3) / len(labels)
    learned = checks["ce_constant"]
    ce_vs_freq = float(np.max(np.abs(learned - freq)))

    # --- figure -------------------------------------------------------------------------
    fig, axes = plt.subplots(2, 3, figsize=(18, 10.5), layout="constrained")
    ax = axes[0, 0]
    ax.imshow(cm, cmap="Blues")
    names = [["TN", "FP"], ["FN", "TP"]]
    for a in range(2):
        for b in range(2):
            colour = "white" if cm[a, b] > cm.max() / 2 else "black"
            ax.text(
                b,
                a,
                f"{names[a][b]}\n{cm[a, b]}",
                ha="center",
                va="center",
                fontsize=16,
                color=colour,
            )
    ax.set_xticks([0, 1], ["predicted 0", "predicted 1"])
    ax.set_yticks([0, 1], ["true 0", "true 1"])
    ax.set_title(
        f"confusion matrix (rows = true): precision {tp}/({tp}+{fp}) = {ours['precision']:.3f},\n"
        f"recall {tp}/({tp}+{fn}) = {ours['recall']:.3f}, F1 = {ours['f1']:.3f} "
        f"(= scikit-learn to {vs_sklearn:.0e})",
        fontsize=10,
    )

    ax = axes[0, 1]
    ax.semilogx(sharpness, soft_sharp, "o-", ms=3, color="C0", label="soft F1 of sigmoid(s * z)")
    ax.semilogx(sharpness, f1_sharp, "-", color="C3", lw=2, label="F1 of (s * z >= 0): constant")
    ax.set_xlabel("sharpness s (probabilities sigmoid(s * z) go to 0 and 1)")
    ax.set_ylabel("score")
    ax.set_title(
        f"soft F1 -> F1 as predictions sharpen (gap {sharp_gap:.1e} at s = {sharpness[-1]:.0f})"
    )
    ax.legend(loc="lower right")

    ax = axes[0, 2]
    ax.plot(sweep, f1_j, "-", color="C3", lw=2, label="F1 (thresholded): a step, gradient 0")
    ax.plot(sweep, soft_j, "-", color="C0", label="soft F1 of sigmoid(4 z): smooth")
    ax.axvline(0, color="grey", ls=":", lw=1)
    ax.set_xlabel(f"logit of one positive example (#{j}), the others fixed")
    ax.set_ylabel("score")
    ax.set_title("one prediction moved across the threshold")
    ax.legend(loc="center right")

    ax = axes[1, 0]
    t = np.arange(1, steps + 1)
    ax.plot(t, f1_soft_run, "-", color="C0", label="gradient descent on soft-F1")
    ax.plot(t, f1_metric_run, "--", color="C3", label="gradient descent on 1 - F1: never moves")
    ax.set_xlabel("step (learning rate 1)")
    ax.set_ylabel("F1 on the training set")
    ax.set_ylim(0, 1)
    ax.set_title("a linear classifier (400 points, 2 features) trained on each")
    ax.legend(loc="lower right")

    ax = axes[1, 1]
    ax.plot(grid, checks["mse_curve"], color="C0", label="MSE(c)")
    ax.plot(grid, checks["mae_curve"], color="C1", label="MAE(c)")
    ax.axvline(sample.mean(), color="C0", ls="--", label=f"mean {sample.mean():.3f}")
    ax.axvline(np.median(sample), color="C1", ls="--", label=f"median {np.median(sample):.3f}")
    ax.set_xlabel("a constant prediction c for 101 exponential samples")
    ax.set_ylabel("loss")
    ax.set_title("MSE is minimized by the mean, MAE by the median")
    ax.legend()

    ax = axes[1, 2]
    xs = np.arange(3)
    ax.bar(xs - 0.2, freq, 0.4, label="class frequencies", color="C7")
    ax.bar(xs + 0.2, learned, 0.4, label="softmax of the best constant logits", color="C2")
    ax.set_xticks(xs, ["class 0", "class 1", "class 2"])
    ax.set_ylabel("probability")
    ax.set_title("cross-entropy over a constant prediction: the class frequencies")
    ax.legend()
    figure = examples.save(fig, out_dir, "objective_functions")

    holds = (
        cm_equal
        and vs_sklearn < 1e-12
        and vs_formula < 1e-12
        and multiclass_diff < 1e-12
        and at_01_diff < 1e-12
        and metric_grad_zero
        and soft_signs_ok
        and metric_norm_max == 0
        and f1_soft_run[-1] > f1_start + 0.1
        and mse_vs_mean < 1e-12
        and mae_vs_median == 0
        and hinge_diff < 1e-12
        and ce_diff < 1e-12
        and ce_vs_freq < 1e-6
    )
    verdict = "holds with a caveat" if holds else "does not hold"
    summary = (
        f"on {N} examples (TP {tp}, FP {fp}, FN {fn}, TN {tn}) dlref's precision "
        f"{ours['precision']:.4f}, recall {ours['recall']:.4f} and F1 {ours['f1']:.4f} equal "
        f"scikit-learn's and the cheat sheet's formulas (to {max(vs_sklearn, vs_formula):.0e}); "
        f"soft_f1 at 0/1 probabilities is 1 - F1 (to {at_01_diff:.0e}); F1 has gradient 0 "
        f"(gradient descent on it stays at F1 = {f1_metric_run[-1]:.3f}, on soft-F1 it reaches "
        f"{f1_soft_run[-1]:.3f}); MSE's constant minimizer is the mean, MAE's the median, and "
        f"hinge and cross-entropy equal scikit-learn's (to {max(hinge_diff, ce_diff):.0e})"
    )
    metric_rows = [
        "| | dlref | scikit-learn | the cheat sheet's formula |",
        "|---|---|---|---|",
    ]
    for key, text in (
        ("precision", f"precision = TP / (TP + FP) = {tp} / {tp + fp}"),
        ("recall", f"recall = TP / (TP + FN) = {tp} / {tp + fn}"),
        ("f1", "F1 = 2 P R / (P + R) = 2 TP / (2 TP + FP + FN)"),
    ):
        metric_rows.append(f"| {text} | {ours[key]:.6f} | {sk[key]:.6f} | {formula[key]:.6f} |")
    metric_table = "\n".join(metric_rows)
    objective_rows = [
        "| objective | dlref | check | measured |",
        "|---|---|---|---|",
        "| mean squared error | `losses.mse` | the best constant prediction is the mean "
        f"(gradient descent) | \\|c - mean\\| = {mse_vs_mean:.0e} |",
        "| mean absolute error | `losses.mae` | the best constant prediction is the median "
        f"(101 skewed samples; mean {sample.mean():.3f}) | \\|c - median\\| = "
        f"{mae_vs_median:g}; subgradient at the median {mae_grad_at_median:.0e} "
        "(0 up to rounding) |",
        "| hinge loss | `losses.hinge` (labels +-1) | equals `sklearn.metrics.hinge_loss`; 0 once "
        f"every margin `y s >= 1` | diff {hinge_diff:.0e}; separable case {separable:g} |",
        "| categorical cross-entropy | `losses.categorical_cross_entropy` (probabilities), "
        "`losses.softmax_cross_entropy` (logits) | equals `sklearn.metrics.log_loss`; the best "
        "constant prediction is the class frequencies | "
        f"diff {ce_diff:.0e}; \\|softmax - frequencies\\| = {ce_vs_freq:.0e} |",
    ]
    objective_table = "\n".join(objective_rows)
    notes = f"""
**The worked example**: {N} examples, 15 positive, with logits `z` (positives centred at
+0.9, negatives at -0.9, noise 1.1; seed 3); prediction: `sigmoid(z) >= 0.5`.

{metric_table}

The confusion matrix (`dlref.metrics.confusion_matrix`, rows = true class) is
scikit-learn's {"exactly" if cm_equal else "NOT"}; on a 5-class problem the micro, macro
and weighted averages agree with scikit-learn to {multiclass_diff:.0e}.

- **The formulas hold**: precision, recall and F1 are as the cheat sheet writes them.
  Its wording is loose: precision is "of the examples *predicted* positive, the fraction
  that are positive", and recall is "of the examples that *are* positive, the fraction
  predicted positive" (the cheat sheet's "of all that actually have positive predictions
  what fraction actually were positive" describes precision again). F1 is the harmonic
  mean of the two, `2 TP / (2 TP + FP + FN)`, which is defined even when one of them is not.
- **Caveat: F1 is a metric, not an objective you can train on**. F1 of thresholded
  predictions is piecewise constant in the model's scores: its gradient is exactly 0
  wherever it exists ({"all" if metric_grad_zero else "NOT all"} {N} entries of
  `jax.grad` of the thresholded F1 are 0; top right: it jumps when a prediction crosses
  the threshold). Gradient descent on `1 - F1` for a linear classifier never moves (the
  gradient's largest norm over {steps} steps: {metric_norm_max:g}; F1 stays at
  {f1_metric_run[-1]:.3f}), while on dlref's `soft_f1` it raises the training F1 from
  {f1_start:.3f} to {f1_soft_run[-1]:.3f} (bottom left).
- **Soft F1 is the differentiable surrogate**: `soft_f1(p, t) = 1 - 2 sum(p t) / (sum(p)
  + sum(t))`, the counts replaced by probabilities. At 0/1 probabilities it is exactly
  `1 - F1` ({soft_at_01:.6f} against 1 - {ours["f1"]:.6f}; difference {at_01_diff:.0e});
  as the predictions sharpen (`sigmoid(s z)`, s from 0.1 to {sharpness[-1]:.0f}) it
  tends to F1 (gap {sharp_gap:.1e} at the sharpest), while F1 itself does not change with
  s (top middle). Its gradient raises every positive's probability and lowers every
  negative's ({"checked" if soft_signs_ok else "NOT so"} on all {N} examples).
- **The other objective functions the cheat sheet names**, one check each:

{objective_table}

- **Loose: "the goal of a network is to minimize the loss to maximize the accuracy"**:
  the loss is a differentiable stand-in for what we care about (accuracy, F1), and the two
  can disagree: the minimizer of MSE is the mean, of MAE the median, of cross-entropy the
  calibrated probabilities, none of which is "the most accurate prediction" in general;
  and a lower training loss need not mean a higher test accuracy (the dropout topic).
"""
    return examples.result(
        verdict,
        summary,
        figure,
        notes,
        confusion_matrix=cm.tolist(),
        precision=ours["precision"],
        recall=ours["recall"],
        f1=ours["f1"],
        vs_sklearn=vs_sklearn,
        vs_formula=vs_formula,
        confusion_matrix_equal=cm_equal,
        multiclass_diff=multiclass_diff,
        soft_f1_at_01_diff=at_01_diff,
        soft_f1_sharp_gap=sharp_gap,
        metric_grad_zero=metric_grad_zero,
        soft_grad_signs_ok=soft_signs_ok,
        metric_grad_norm_max=metric_norm_max,
        f1_start=f1_start,
        f1_trained_soft=float(f1_soft_run[-1]),
        f1_trained_metric=float(f1_metric_run[-1]),
        mse_vs_mean=mse_vs_mean,
        mae_vs_median=mae_vs_median,
        hinge_vs_sklearn=hinge_diff,
        hinge_separable=separable,
        ce_vs_sklearn=ce_diff,
        ce_vs_frequencies=ce_vs_freq,
    )


if __name__ == "__main__":
    examples.main_one("objective_functions", run)
