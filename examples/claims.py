"""Every claim of the cheat sheet (examples/cheatsheet.md), one row each, with its verdict.

The claims are listed from the text, not from the experiments: each :class:`Claim` quotes
a piece of the cheat sheet word for word, and tests/test_report.py checks that the quotes
and :data:`NOT_CLAIMS` (captions, notation, the introduction) together cover the whole text.

A claim judged by an experiment names its ``topic`` and a ``judge``: a function of that
topic's ``measured`` numbers (the JSON under examples/figures/) that returns the verdict and
a one-line evidence with the numbers, so the table is rebuilt from the JSONs and cannot
contradict them. A claim that no experiment can decide (a definition, a name, a statement
about common practice) has a fixed ``verdict`` and its ``reason``.
"""

from __future__ import annotations

import dataclasses
import itertools
import pathlib
from collections.abc import Callable
from typing import Any

import examples

__all__ = ["CLAIMS", "CLAIM_VERDICTS", "CHEATSHEET", "NOT_CLAIMS", "Claim", "judge", "uncovered"]

CHEATSHEET = pathlib.Path(__file__).parent / "cheatsheet.md"
# "untested": testable, but no experiment here measures it yet (the report counts them)
CLAIM_VERDICTS = (*examples.VERDICTS, "not testable", "untested")
HOLDS, CAVEAT, FAILS, UNTESTABLE, UNTESTED = CLAIM_VERDICTS

Judge = Callable[[dict[str, Any]], tuple[str, str]]


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim: the cheat sheet's ``section``, its words (``quote``), the ``topic`` whose
    experiment is the evidence, and either a ``judge`` of that topic's measured numbers or a
    fixed ``verdict`` with its ``reason``."""

    section: str
    quote: str
    topic: str | None = None
    judge: Judge | None = None
    verdict: str | None = None
    reason: str = ""


def judge(claim: Claim, measured: dict[str, Any] | None) -> tuple[str, str]:
    """The claim's verdict and evidence: from its judge and the topic's measured numbers, or
    its fixed verdict and reason. A judged claim whose topic has no results yet is
    "not testable" with that reason."""
    if claim.judge is None:
        assert claim.verdict is not None
        return claim.verdict, claim.reason
    if measured is None:
        return UNTESTED, f"no results of the {claim.topic} topic yet"
    verdict, evidence = claim.judge(measured)
    if verdict not in CLAIM_VERDICTS:
        raise ValueError(f"{claim.quote[:40]!r}: verdict {verdict!r}")
    return verdict, evidence


def _pct(x: float) -> str:
    return f"{x:.0%}"


# ---- judges: each reads one topic's measured numbers -------------------------------------


def _grad_is_partials(m):
    ok = m["finite_difference_rel"] < 1e-6
    return (CAVEAT if ok else FAILS), (
        "it is the vector of all the partial derivatives, not one partial derivative; "
        f"`jax.grad` = central differences to {m['finite_difference_rel']:.1e}"
    )


def _grad_uphill(m):
    ok = m["positive_fraction"] == 1 and m["steepest_fraction"] == 1
    return (HOLDS if ok else FAILS), (
        f"directional derivative along it > 0 at {_pct(m['positive_fraction'])} of points; the "
        f"steepest of 72 directions at {_pct(m['steepest_fraction'])}"
    )


def _grad_descend(m):
    ok = m["lowered_fraction"] == 1
    caveat = m["lowered_at_largest_eta"] < 1
    return (CAVEAT if ok and caveat else HOLDS if ok else FAILS), (
        f"a step eta = {m['eta']:g} against it lowers the loss at {_pct(m['lowered_fraction'])} "
        f"of points, a large one (eta = 10) at {_pct(m['lowered_at_largest_eta'])}: only a small "
        "enough step descends"
    )


def _backprop_errors(m):
    ok = m["grad_rel_float64"] < 1e-13
    return (CAVEAT if ok else FAILS), (
        "it propagates the loss's gradient dL/dz (times the transposed weights and the "
        "activation's derivative), and updating the weights is a separate step; hand-written = "
        f"autodiff to {m['grad_rel_float64']:.1e} (float64)"
    )


def _backprop_chain(m):
    ok = m["grad_rel_float64"] < 1e-13 and m["finite_difference_rel"] < 1e-6
    return (HOLDS if ok else FAILS), (
        f"the chain rule by hand = autodiff to {m['grad_rel_float64']:.1e} (float64) over "
        f"{m['steps']} training steps; = finite differences to {m['finite_difference_rel']:.1e}"
    )


def _sigmoid_range(m):
    ok = m["positive_sigmoid"] == 1
    return (CAVEAT if ok else FAILS), (
        "it is applied to a unit's pre-activation `x = v w^T + b`, not to weights; its range is "
        "the open (0, 1)"
    )


def _logistic(m):
    ok = m["reference_sigmoid"] < 1e-15
    return (HOLDS if ok else FAILS), (
        f"dlref's sigmoid = `scipy.special.expit` (the logistic function) to "
        f"{m['reference_sigmoid']:.1e}"
    )


def _hinton_sum(m):
    worst = max(m["hinton_max_error"].values())
    return CAVEAT, (
        f"max error {worst:.4f} on [-5, N - 5] for N = 10 to 100, but {m['hinton_error_at_n']:.2f} "
        "at x = N: only for x well below N"
    )


def _formula_for_relu(m):
    return CAVEAT, (
        "the sum approximates softplus, a smooth ReLU, not ReLU: they differ by up to "
        f"{m['softplus_relu_gap']:.3f} (log 2, at 0)"
    )


def _ranges(m):
    return CAVEAT, (
        "sigmoid's range is the open (0, 1), ReLU's [0, inf): the endpoints 0 and 1 are reached "
        f"only by rounding; relu' = 1 at {_pct(m['relu_grad_one_fraction'])} of x > 0"
    )


def _relu_vanishing(m):
    r = m["ratios"]
    ok = r["relu (He init)"] > 0.1
    caveat = r["relu (LeCun init)"] < 1e-3 or any(v > 0.5 for v in m["dead_fraction"].values())
    return (CAVEAT if ok and caveat else HOLDS if ok else FAILS), (
        f"|dL/dW_1| at depth 30 / depth 2: ReLU {r['relu (He init)']:.2g} with He init but "
        f"{r['relu (LeCun init)']:.1e} with LeCun init (sigmoid {r['sigmoid']:.0e}); dead units "
        "pass exactly 0"
    )


def _tanh_stronger(m):
    ok = m["tanh_grad_0"] > m["sigmoid_grad_0"] and m["tanh_grad_min_unit"] > 0.25
    return (HOLDS if ok else FAILS), (
        f"tanh'(0) = {m['tanh_grad_0']:g} vs sigmoid'(0) = {m['sigmoid_grad_0']:g}; on [-1, 1] "
        f"tanh' >= {m['tanh_grad_min_unit']:.3f} > sigmoid' <= {m['sigmoid_grad_max_unit']:.2f}"
    )


def _tanh_unit_inputs(m):
    return CAVEAT, (
        f"on [0, 1] too tanh' >= {m['tanh_grad_min_unit']:.3f} > sigmoid' <= 0.25 (by symmetry), "
        "but inputs in [0, 1] contradict the data 'centered around 0' of the sentence before"
    )


def _tanh_ranges(m):
    return CAVEAT, (
        "the ranges are the open (-1, 1) and (0, 1); tanh(x) = 2 sigmoid(2x) - 1; the endpoints "
        "are reached only by rounding"
    )


def _tanh_bias(m):
    if "tanh_centred_training" in m.get("claims", {}):
        return tuple(m["claims"]["tanh_centred_training"])
    return CAVEAT, (
        f"tanh's outputs are zero-centred (mean {m['mean_tanh']:.4f}, positive "
        f"{_pct(m['positive_tanh'])}; sigmoid: mean {m['mean_sigmoid']:.3f}, positive "
        f"{_pct(m['positive_sigmoid'])}), so a next layer's weight gradients are not all of one "
        "sign; the speed-up in training is not measured in this run"
    )


def _softmax_logreg(m):
    ok = m["sklearn_prob_diff"] < 1e-5
    return (CAVEAT if ok else FAILS), (
        "softmax is the link; softmax of a linear layer trained with cross-entropy is multinomial "
        f"logistic regression: = scikit-learn's to {m['sklearn_prob_diff']:.0e}"
    )


def _l1_l2_prevent(m):
    ok = m["test_mse_l1_best"] < m["test_mse_least_squares"]
    return (CAVEAT if ok else FAILS), (
        f"at the best lam, test MSE {m['test_mse_l1_best']:.2f} (L1) and "
        f"{m['test_mse_l2_best']:.2f} (L2) against {m['test_mse_least_squares']:.2f} "
        "unregularized: they reduce overfitting, at a tuned strength; they do not prevent it"
    )


def _l1_sparse(m):
    ok = max(m["zeros_l1_prox"]) > 0 and max(m["zeros_l2"]) == 0
    caveat = max(m["zeros_l1_subgradient"]) <= 1
    return (CAVEAT if ok and caveat else HOLDS if ok else FAILS), (
        f"L1 (proximal step) gives up to {max(m['zeros_l1_prox'])} exact zeros, L2 "
        f"{max(m['zeros_l2'])}; plain subgradient descent on L1 gives "
        f"{max(m['zeros_l1_subgradient'])}: sparsity needs the prox or an exact solver"
    )


def _l1_l2_complexity(m):
    if "ridge_dof" not in m:
        return UNTESTED, "no measurement of complexity in this run"
    dof, nz = m["ridge_dof"], m["nonzeros_l1"]
    monotone = all(a >= b for a, b in itertools.pairwise(dof)) and all(
        a >= b for a, b in itertools.pairwise(nz)
    )
    return (CAVEAT if monotone else FAILS), (
        f"the strength lam sets a continuous complexity: L2's effective degrees of freedom fall "
        f"from {dof[0]:.1f} to {dof[-1]:.1f}, L1's non-zero weights from {nz[0]} to {nz[-1]} "
        "as lam grows; it tunes complexity, it does not fix it"
    )


def _l1_l2_generalize(m):
    ok = m["test_mse_l1_best"] < m["test_mse_least_squares"]
    return (CAVEAT if ok else FAILS), (
        f"test MSE falls from {m['test_mse_least_squares']:.2f} to {m['test_mse_l1_best']:.2f} at "
        f"the best lam ({m['best_lam']:g}); a too large lam underfits"
    )


def _dropout_prevents(m):
    gain = m["test_dropout"] - m["test_no_dropout"]
    ok = gain > 0
    base = m.get("baselines")
    versus = ""
    if base:
        versus = "; against baselines (each at its tuned strength and lr): " + ", ".join(
            f"{name} {r['test'][0]:.1%}" for name, r in base.items()
        )
    return (CAVEAT if ok else FAILS), (
        f"test accuracy {m['test_no_dropout']:.1%} -> {m['test_dropout']:.1%}, both still fit "
        f"{m['train_dropout']:.0%} of the training set: it reduces overfitting, it does not "
        f"prevent it{versus}; the quote is Srivastava, Hinton et al. 2014"
    )


def _dropout_ensemble(m):
    ok = m["ensemble_agreement"] > 0.95
    return (HOLDS if ok else FAILS), (
        f"the scaled full network predicts as the average of 64 sampled sub-networks on "
        f"{m['ensemble_agreement']:.1%} of test images"
    )


def _bn_faster(m):
    reach = m["best_reach"]
    shift = m.get("claims", {}).get("bn_solves_shift")
    why = (
        "; and batch norm trains faster without reducing the measured shift, so the 'if' is "
        "not the mechanism"
        if shift and shift[0] == FAILS
        else "; whether by reducing the shift is "
        + ("measured: " + shift[1] if shift else "not measured")
    )
    four = reach.get("sigmoid 4x plain")
    if four is None:
        fair = ""
    elif four == float("inf"):
        fair = ", nor with weights 4x LeCun's (well-initialized)"
    else:
        fair = f"; {four:.0f} steps with weights 4x LeCun's (well-initialized)"
    return CAVEAT, (
        f"10 sigmoid layers: never below loss 0.1 without batch norm at LeCun init{fair}; "
        f"{reach['sigmoid bn']:.0f} steps with batch norm; tanh {reach['tanh plain']:.0f} vs "
        f"{reach['tanh bn']:.0f} steps, each at its best lr (mean of {m.get('seeds', 2)} "
        f"seeds){why}"
    )


def _bn_solves(m):
    shift = m.get("claims", {}).get("bn_solves_shift")
    usable = m["usable_learning_rates"]
    text = (
        "it normalizes each layer's pre-activations over the batch (then a learned scale and "
        f"shift), not the network's input batch; it widens the usable learning rates (tanh: "
        f"{usable['tanh bn']} of 6 vs {usable['tanh plain']})"
    )
    if shift is None:
        return UNTESTED, text + "; the shift itself is not measured in this run"
    return shift[0], f"measured per step at the deepest layer: {shift[1]}; {text}"


def _f1_objective(m):
    ok = m["metric_grad_zero"]
    return (FAILS if ok else CAVEAT), (
        f"F1 of predictions has gradient exactly 0: gradient descent on it stays at F1 = "
        f"{m['f1_trained_metric']:.2f}, on soft-F1 reaches {m['f1_trained_soft']:.2f}; F1 is a "
        "metric"
    )


def _other_losses(m):
    ok = max(m["mse_vs_mean"], m["hinge_vs_sklearn"], m["ce_vs_sklearn"]) < 1e-12
    return (HOLDS if ok else FAILS), (
        "dlref's MSE (minimizer: the mean), MAE (the median), hinge and categorical cross-entropy "
        f"= scikit-learn's to {max(m['hinge_vs_sklearn'], m['ce_vs_sklearn']):.0e}"
    )


def _f1_formula(m):
    ok = m["vs_sklearn"] < 1e-12 and m["vs_formula"] < 1e-12
    return (HOLDS if ok else FAILS), (
        f"dlref's F1 = scikit-learn's = 2PR/(P+R) to {max(m['vs_sklearn'], m['vs_formula']):.0e} "
        f"(F1 = {m['f1']:.4f} on the worked example)"
    )


def _precision_formula(m):
    ok = m["vs_sklearn"] < 1e-12
    return (HOLDS if ok else FAILS), f"precision = {m['precision']:.4f} = scikit-learn's"


def _recall_formula(m):
    ok = m["vs_sklearn"] < 1e-12
    return (HOLDS if ok else FAILS), f"recall = {m['recall']:.4f} = scikit-learn's"


def _ce_formula(m):
    return CAVEAT, (
        "this is the binary cross-entropy; summed over the classes of a one-hot target it adds "
        f"{m['binary_formula_extra']:.2f} nats to the categorical `-sum_i y_i log p_i`"
    )


def _ce_thermo(m):
    ok = m["shannon_diff"] < 1e-12
    return (FAILS if ok else CAVEAT), (
        "cross-entropy is Shannon's (information theory): H(t, p) = H(t) + KL(t || p) to "
        f"{m['shannon_diff']:.0e}; thermodynamic entropy is a different quantity (same form, "
        "Boltzmann's constant, physical states)"
    )


def _ce_multiclass(m):
    return CAVEAT, (
        "the multi-class loss is the categorical `-sum_i y_i log p_i`, not the formula above "
        f"(which adds {m['binary_formula_extra']:.2f} nats here)"
    )


def _lr_magnitude(m):
    return CAVEAT, (
        "the step is lr * dW: its size changes with |dW| at every step; the learning rate is the "
        "factor"
    )


def _lr_problem(m):
    ok = m["misclassified"] == 0 and m["boundary_rel_error"] < 0.01
    return (HOLDS if ok else FAILS), (
        f"the largest stable lr is 2/lambda_max: {m['boundary']:.3f} on a problem, "
        f"{m['boundary_scaled']:.3f} on the same data x 3"
    )


def _lr_cross_validated(m):
    if "heldout_best_lr" not in m:
        return UNTESTED, "a quadratic only so far: no network's lr chosen on held-out data"
    return CAVEAT, m["heldout_text"]


def _gd_update(m):
    ok = m["misclassified"] == 0
    return (HOLDS if ok else FAILS), (
        "the vanilla update, run as written: it converges exactly when lr < 2/lambda_max "
        f"({m['boundary']:.4f} measured vs {m['threshold']:.4f})"
    )


def _memory(key: str) -> Judge:
    def j(m):
        if key not in m.get("claims", {}):
            return UNTESTED, "not measured in this run"
        verdict, text = m["claims"][key]
        return verdict, text

    return j


def _measured(key: str) -> Judge:
    """A claim the topic judges itself: ``measured["claims"][key] = (verdict, evidence)``."""
    return _memory(key)


# ---- the claims, in the cheat sheet's order -----------------------------------------------

_DEF = "a definition or a name, not an empirical statement; checked against the literature: "
_PRACTICE = "a statement about common practice, not a property an experiment can decide"

CLAIMS: tuple[Claim, ...] = (
    # Gradient
    Claim(
        "Gradient",
        "The gradient is the partial derivative of a function that takes in multiple vectors and "
        "outputs a single value (i.e. our cost functions in Neural Networks).",
        "gradient",
        _grad_is_partials,
    ),
    Claim(
        "Gradient",
        "The gradient tells us which direction to go on the graph to increase our output if we "
        "increase our variable input.",
        "gradient",
        _grad_uphill,
    ),
    Claim(
        "Gradient",
        "We use the gradient and go in the opposite direction since we want to decrease our loss.",
        "gradient",
        _grad_descend,
    ),
    # Back propagation
    Claim(
        "Back Propagation",
        "Also known as back prop, this is the process of back tracking errors through the weights "
        "of the network after forward propagating inputs through the network.",
        "backprop",
        _backprop_errors,
    ),
    Claim(
        "Back Propagation",
        "This is used by applying the chain rule in calculus.",
        "backprop",
        _backprop_chain,
    ),
    # Sigmoid
    Claim(
        "Sigmoid",
        "A function used to activate weights in our network in the interval of $[0, 1]$ .",
        "activations",
        _sigmoid_range,
    ),
    Claim(
        "Sigmoid",
        "This function graphed out looks like an 'S' which is where this function gets its name, "
        "the s is sigma in greek.",
        "activations",
        verdict=HOLDS,
        reason=_DEF + "'sigmoid' is Greek for sigma-shaped (S-shaped); the curve is in the figure",
    ),
    Claim("Sigmoid", "Also known as the logistic function", "activations", _logistic),
    Claim(
        "Sigmoid",
        r"$$\sum_{i=1}^N \sigma(x - i + 0.5) \approx \log(1 + e^x),$$",
        "activations",
        _hinton_sum,
    ),
    Claim("Sigmoid", "Formula for ReLU from Geoffrey Hinton", "activations", _formula_for_relu),
    # ReLU
    Claim(
        "ReLU",
        r"The sigmoid function has an interval of $[0,1]$ , while the ReLU has a range from "
        r"$[0, \text{infinity}]$ .",
        "activations",
        _ranges,
    ),
    Claim(
        "ReLU",
        "This means that the sigmoid is better for logistic regression and the ReLU is better at "
        "representing positive numbers.",
        "activations",
        _measured("sigmoid_vs_relu_outputs"),
    ),
    Claim(
        "ReLU",
        "The ReLU does not suffer from the vanishing gradient problem.",
        "vanishing_gradients",
        _relu_vanishing,
    ),
    # Tanh
    Claim(
        "Tanh",
        "Tanh is a function used to initialize the weights of your network of $[-1, 1]$ .",
        "activations",
        verdict=FAILS,
        reason="tanh is an activation function (`tanh(x) = 2 sigmoid(2x) - 1`), applied to "
        "pre-activations; weights are initialized by random draws (Glorot, He), not by tanh",
    ),
    Claim(
        "Tanh",
        "Assuming your data is normalized we will have stronger gradients: since data is centered "
        "around 0, the derivatives are higher.",
        "activations",
        _tanh_stronger,
    ),
    Claim(
        "Tanh",
        "To see this, calculate the derivative of the tanh function and notice that input values "
        "are in the range $[0, 1]$ .",
        "activations",
        _tanh_unit_inputs,
    ),
    Claim(
        "Tanh",
        "The range of the tanh function is $[-1, 1]$ and that of the sigmoid function is "
        "$[0, 1]$ .",
        "activations",
        _tanh_ranges,
    ),
    Claim("Tanh", "This also avoids bias in the gradients.", "activations", _tanh_bias),
    # LSTM/GRU
    Claim(
        "LSTM/GRU",
        "Typically found in Recurrent Neural Networks but are expanding to use in others",
        verdict=UNTESTABLE,
        reason="a statement about where the field uses LSTM and GRU cells, not a property an "
        "experiment can decide",
    ),
    Claim(
        "LSTM/GRU",
        "these are little “memory units” that keep state between inputs for training",
        "memory",
        verdict=HOLDS,
        reason=_DEF + "an LSTM carries (h, c) and a GRU h from one input to the next, as dlref's "
        "`lstm` and `gru` do",
    ),
    Claim(
        "LSTM/GRU",
        "and help solve the vanishing gradient problem",
        "memory",
        _memory("gates_vs_vanishing"),
    ),
    Claim(
        "LSTM/GRU",
        "where after around 7 time steps an RNN loses context of the input prior.",
        "memory",
        _memory("seven_steps"),
    ),
    # Softmax
    Claim(
        "Softmax",
        "Softmax is a function usually used at the end of a Neural Network for classification.",
        "softmax_cross_entropy",
        verdict=UNTESTABLE,
        reason=_PRACTICE,
    ),
    Claim(
        "Softmax",
        "This function does a multinomial logistic regression",
        "softmax_cross_entropy",
        _softmax_logreg,
    ),
    Claim(
        "Softmax",
        "and is generally used for multi class classification.",
        "softmax_cross_entropy",
        verdict=UNTESTABLE,
        reason=_PRACTICE,
    ),
    Claim(
        "Softmax",
        "Usually paired with cross entropy as the loss function.",
        "softmax_cross_entropy",
        verdict=UNTESTABLE,
        reason=_PRACTICE + " (why the pair is natural, its gradient softmax(z) - y, is checked "
        "in the topic)",
    ),
    # L1 and L2
    Claim(
        "L1 and L2 Regularization",
        "These regularization methods prevent overfitting by imposing a penalty on the "
        "coefficients.",
        "l1_vs_l2",
        _l1_l2_prevent,
    ),
    Claim(
        "L1 and L2 Regularization",
        "L1 can yield sparse models while L2 cannot.",
        "l1_vs_l2",
        _l1_sparse,
    ),
    Claim(
        "L1 and L2 Regularization",
        "Regularization is used to specify model complexity.",
        "l1_vs_l2",
        _l1_l2_complexity,
    ),
    Claim(
        "L1 and L2 Regularization",
        "This is important because it allows your model to generalize better and not overfit to "
        "the training data.",
        "l1_vs_l2",
        _l1_l2_generalize,
    ),
    # Dropout
    Claim("Drop out", "“It prevents overfitting", "dropout", _dropout_prevents),
    Claim(
        "Drop out",
        "and provides a way of approximately combining exponentially many different neural "
        "network architectures efficiently”(Hinton).",
        "dropout",
        _dropout_ensemble,
    ),
    Claim(
        "Drop out",
        "This method randomly picks visible and hidden units to drop from the network.",
        "dropout",
        verdict=HOLDS,
        reason=_DEF + "dlref's `dropout` zeroes each unit independently with probability `rate` "
        "(input and hidden layers in the experiment)",
    ),
    Claim(
        "Drop out",
        "This is usually determined by picking a layer percentage dropout.",
        "dropout",
        verdict=CAVEAT,
        reason="the rate is a per-unit probability (the fraction dropped varies around it); "
        "dlref's `rate`, like PyTorch's `p`, is the probability of dropping, the paper's `p` of "
        "keeping",
    ),
    # Batch normalization
    Claim(
        "Batch Normalization",
        "When networks have many deep layers there becomes an issue of internal covariate shift.",
        "batch_norm",
        _measured("shift_exists"),
    ),
    Claim(
        "Batch Normalization",
        "The shift is “the change in the distribution of network activations due to the change in "
        "network parameters during training.” (Szegedy).",
        "batch_norm",
        verdict=CAVEAT,
        reason=_DEF + "the definition of Ioffe and Szegedy 2015, quoted correctly; the paper's "
        "first author is Ioffe",
    ),
    Claim(
        "Batch Normalization",
        "If we can reduce internal covariate shift we can train faster and better.",
        "batch_norm",
        _bn_faster,
    ),
    Claim(
        "Batch Normalization",
        "Batch Normalization solves this problem by normalizing each batch into the network by "
        "both mean and variance.",
        "batch_norm",
        _bn_solves,
    ),
    # Objective functions
    Claim(
        "Objective Functions",
        "Also known as **loss function**, **cost function** or **optimization score function**.",
        "objective_functions",
        verdict=HOLDS,
        reason=_DEF + "the usual synonyms ('optimization score function' is Keras's wording)",
    ),
    Claim(
        "Objective Functions",
        "The goal of a network is to minimize the loss to maximize the accuracy of the network.",
        "objective_functions",
        verdict=CAVEAT,
        reason="the loss is a differentiable stand-in for accuracy and can disagree with it: "
        "MSE's minimizer is the mean, MAE's the median (checked in the topic)",
    ),
    Claim(
        "Objective Functions",
        "The loss/cost/optimization/objective function is the function that is computed on the "
        "prediction of your network.",
        "objective_functions",
        verdict=HOLDS,
        reason=_DEF + "a loss is a function of the prediction and the target",
    ),
    Claim(
        "Objective Functions",
        r"Your network will output a prediction, $\hat{y}$ which we will compare to the desired "
        "output of $y$ .",
        "objective_functions",
        verdict=HOLDS,
        reason=_DEF + "supervised learning's setting",
    ),
    Claim(
        "Objective Functions",
        "This function then is used in back propagation to give us our gradient to allow our "
        "network to be optimized.",
        "backprop",
        _backprop_chain,
    ),
    Claim(
        "Objective Functions",
        "Examples of these functions are f1/f score,",
        "objective_functions",
        _f1_objective,
    ),
    Claim(
        "Objective Functions",
        "categorical cross entropy, mean squared error, mean absolute error, hinge loss... etc.",
        "objective_functions",
        _other_losses,
    ),
    # F1
    Claim(
        "F1/F Score",
        "A measure of how accurate a model is by using precision and recall following a formula "
        "of: $$F1 = 2 * (Precision * Recall) / (Precision + Recall)$$",
        "objective_functions",
        _f1_formula,
    ),
    Claim(
        "F1/F Score",
        "Precise: of every prediction which ones are actually positive?",
        "objective_functions",
        verdict=CAVEAT,
        reason="precision is: of the examples *predicted* positive, the fraction that are "
        "positive (not 'of every prediction')",
    ),
    Claim(
        "F1/F Score",
        r"$$Precision = \text{True Positives} / (\text{True Positives} + \text{False Positives})$$",
        "objective_functions",
        _precision_formula,
    ),
    Claim(
        "F1/F Score",
        "Recall: of all that actually have positive predictions what fraction actually were "
        "positive?",
        "objective_functions",
        verdict=FAILS,
        reason="that describes precision again; recall is: of the examples that *are* positive, "
        "the fraction predicted positive, TP / (TP + FN)",
    ),
    Claim(
        "F1/F Score",
        r"$$Recall = \text{True Positives} / (\text{True Positives} + \text{False Negatives})$$",
        "objective_functions",
        _recall_formula,
    ),
    # Cross entropy
    Claim(
        "Cross Entropy",
        "Used to calculate how far off your label prediction is.",
        "objective_functions",
        verdict=HOLDS,
        reason=_DEF + "a loss of the predicted probabilities against the labels, 0 only at the "
        "labels",
    ),
    Claim(
        "Cross Entropy",
        r"$$loss = - \sum_i (y_i \cdot \log(y\_predicted_i) + (1 - y_i) \cdot "
        r"\log(1 - y\_predicted_i))$$",
        "softmax_cross_entropy",
        _ce_formula,
    ),
    Claim(
        "Cross Entropy",
        "Cross entropy is a loss function is related to the entropy of thermodynamics concept of "
        "entropy.",
        "softmax_cross_entropy",
        _ce_thermo,
    ),
    Claim(
        "Cross Entropy",
        "This is used in multi class classification to find the error in the prediction.",
        "softmax_cross_entropy",
        _ce_multiclass,
    ),
    # Learning rate
    Claim(
        "Learning Rate",
        "The learning rate is the magnitude at which you're adjusting your weights of the network "
        "during optimization after back propagation.",
        "learning_rate",
        _lr_magnitude,
    ),
    Claim(
        "Learning Rate",
        "The learning rate is a hyper parameter that will be different for a variety of problems.",
        "learning_rate",
        _lr_problem,
    ),
    Claim(
        "Learning Rate", "This should be cross validated on.", "learning_rate", _lr_cross_validated
    ),
    Claim(
        "Learning Rate",
        "# Adjust the weights of our layer by multiplying our # gradient times our learning_rate "
        "(which is a scalar value) W -= learning_rate * dW",
        "learning_rate",
        _gd_update,
    ),
)

# The rest of the text: headings (any line starting with '#' outside the code block are
# removed by the check), captions, notation and the introduction; none of them claims
# anything an experiment or the literature could contradict.
NOT_CLAIMS: tuple[str, ...] = (
    'Source: "Deep Learning Cheat Sheet", Camron Godbout, Dec 6, 2016 (a public blog post). This '
    "is the document the project was created from; every concept in it is a part of dlref, and "
    "every claim in it is something dlref checks (see DESIGN.md, 'Claims').",
    "In this article we will go over common concepts found in Deep Learning to help get started "
    "on this amazing subject.",
    "Visualization of gradient. The red arrows are the gradient of the blue plotted function.",
    r"where $x = \mathbf{vw}^T + b$ .",
    "Tanh function",
    "Figure 1: Illustration of (a) LSTM and (b) gated recurrent units. (a) $i$ , $f$ and $o$ are "
    r"the input, forget and output gates, respectively. $c$ and $\tilde{c}$ denote the memory "
    "cell and the new memory cell content. (b) $r$ and $z$ are the reset and update gates, and "
    r"$h$ and $\tilde{h}$ are the activation and the candidate activation.",
    "[1]",
    "A more technical explanation [3]:",
    "Some times denoted by CE.",
    "# ---- Vanilla Gradient Descent ----",
    "# W is your matrix of weights",
    "# dW is the gradient of W",
)


def uncovered(text: str) -> str:
    """What of the cheat sheet's ``text`` neither a claim's quote nor :data:`NOT_CLAIMS`
    covers (whitespace and punctuation dropped): empty when every sentence is accounted for.

    Markdown headings (lines starting with '#' outside the code block) and the code fences
    are dropped first; whitespace is collapsed, as in the quotes. Raises ``ValueError`` for a
    quote that is not in the text word for word.
    """
    kept, in_code = [], False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
            continue
        if not in_code and line.lstrip().startswith("#"):
            continue
        kept.append(line)
    rest = " ".join(" ".join(kept).split())
    for piece in sorted((c.quote for c in CLAIMS), key=len, reverse=True) + list(NOT_CLAIMS):
        if piece not in rest:
            raise ValueError(f"not in the cheat sheet word for word: {piece!r}")
        rest = rest.replace(piece, " ")
    return "".join(ch for ch in rest if ch.isalnum())
