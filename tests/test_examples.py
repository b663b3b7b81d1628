"""The experiments of examples/: each topic's quick run asserts its verdict and key numbers,
so examples/REPORT.md cannot silently go stale; figures are checked to be non-empty PNGs."""

import ast
import itertools
import json
import math
import pathlib

import pytest

import examples
from examples import __main__ as report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_result(res: dict, verdict: str) -> dict:
    assert res["verdict"] == verdict, res["summary"]
    assert res["summary"] and "\n" not in res["summary"]
    assert res["notes"]
    figure = pathlib.Path(res["figure"])
    data = figure.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, figure
    return res["measured"]


def _defines_claim(path: pathlib.Path) -> bool:
    """A topic module assigns ``CLAIM`` at its top level (read without importing it: the
    folder also holds scripts, such as data_parallel, that are not topics)."""
    tree = ast.parse(path.read_text())
    return any(
        isinstance(node, ast.Assign)
        and any(getattr(t, "id", None) == "CLAIM" for t in node.targets)
        for node in tree.body
    )


def test_every_topic_module_is_listed_and_complete():
    modules = {
        p.stem
        for p in pathlib.Path(examples.__file__).parent.glob("*.py")
        if p.stem[0] != "_" and _defines_claim(p)
    }
    assert modules == set(examples.TOPICS)
    for name in examples.TOPICS:
        module = examples.load(name)
        assert module.TITLE and module.CLAIM and callable(module.run)


def test_result_rejects_unknown_verdicts():
    with pytest.raises(ValueError, match="verdict"):
        examples.result("mostly", "x", pathlib.Path("f.png"), "")


@pytest.mark.slow  # a claim's experiment (quick mode)
def test_gradient_points_uphill(tmp_path):
    m = _check_result(examples.load("gradient").run(tmp_path, quick=True), "holds")
    assert m["positive_fraction"] == 1.0  # grad . grad > 0 at every grid point
    # float64, both sums of a few products: a few ulps; 1e-12 is the example's own verdict
    assert m["directional_rel_diff"] < 1e-12  # forward mode = |grad|^2
    assert m["steepest_fraction"] == 1.0
    assert m["finite_difference_rel"] < 1e-6  # central differences in float64: FINITE_DIFF_RTOL
    assert m["eta"] == pytest.approx(1e-2)
    assert m["lowered_fraction"] == 1.0  # a small step against the gradient lowers f
    assert m["lowered_at_largest_eta"] < 1.0  # a large one does not always


@pytest.mark.slow  # a claim's experiment (quick mode)
def test_activations_hinton_and_tanh(tmp_path):
    m = _check_result(examples.load("activations").run(tmp_path, quick=True), "holds with a caveat")
    errors = m["hinton_max_error"]
    assert set(errors) == {10, 11, 20}
    # N = 10 reaches 0.010621: within the 0.01063 tests/test_activations.py states, above 0.0106.
    assert 0.0106 < errors[10] < 0.01063
    assert 0.0105 < errors[20] < errors[11] < 0.0106
    # the worst error is at x = 0 for large N (1e-4: well inside the grid's spacing of 0.005)
    assert abs(m["hinton_argmax"][20]) < 1e-4
    assert m["hinton_error_at_n"] < -0.6  # far past x = N - 5 the sum levels off
    # rel=1e-12 here and below: float64 values at x = 0 (softplus) and x = 1 (tanh'), a few ulps
    assert m["softplus_relu_gap"] == pytest.approx(math.log(2), rel=1e-12)
    assert m["tanh_grad_0"] == 1.0 and m["sigmoid_grad_0"] == 0.25
    assert m["tanh_grad_min_unit"] == pytest.approx(1 - math.tanh(1) ** 2, rel=1e-12)
    assert m["tanh_grad_min_unit"] > 0.4199 > 0.25 == m["sigmoid_grad_max_unit"]
    assert m["relu_grad_one_fraction"] == 1.0
    assert m["positive_sigmoid"] == 1.0 and 0.49 < m["positive_tanh"] < 0.51
    # float64, absolute, on [-5, 5]: a few ulps of values below 1 (sigmoid) and 5 (softplus)
    assert m["reference_sigmoid"] < 1e-15 and m["reference_softplus"] < 1e-14
    # as output units: sigmoid fits probabilities better, ReLU positive targets above 1
    out = m["output_units"]
    assert out["sigmoid"]["prob_error"] < out["relu"]["prob_error"]
    assert out["relu"]["positive_mse"] < out["sigmoid"]["positive_mse"]
    for name in ("sigmoid", "sigmoid - 1/2", "tanh"):
        mean, lo, hi = m["centring"][name]["train_loss"]
        assert 0 <= lo <= mean <= hi and m["centring"][name]["lr"] > 0
    assert m["claims"]["tanh_centred_training"][0] in {"holds", "holds with a caveat"}


@pytest.mark.slow  # a claim's experiment (quick mode)
def test_softmax_cross_entropy_two_classes_and_fused_gradient(tmp_path):
    m = _check_result(
        examples.load("softmax_cross_entropy").run(tmp_path, quick=True), "holds with a caveat"
    )
    # float64, absolute: a few ulps of losses up to ~20 and of probabilities and gradients
    # below 1, with the rounding of z1 - z0
    assert m["two_class_loss_diff"] < 1e-13
    assert m["two_class_prob_diff"] < 1e-14
    assert m["two_class_grad_diff"] < 1e-14
    assert m["fused_grad_diff"] < 1e-14 and m["fused_grad_autodiff_diff"] < 1e-14
    assert m["finite_difference_rel"] < 1e-6  # central differences in float64: FINITE_DIFF_RTOL
    # scikit-learn's lbfgs stops at its tolerance, short of the optimum Newton's method reaches
    assert m["sklearn_prob_diff"] < 1e-5
    # float64, absolute, on a few nats: a few ulps and scipy's own sums
    assert m["shannon_diff"] < 1e-12  # H(t, p) = H(t) + KL(t || p)
    assert m["binary_formula_extra"] > 0.5  # the cheat sheet's formula is not the categorical CE


@pytest.mark.slow  # a claim's experiment (quick mode)
def test_l1_gives_exact_zeros_and_l2_does_not(tmp_path):
    m = _check_result(examples.load("l1_vs_l2").run(tmp_path, quick=True), "holds with a caveat")
    assert max(m["zeros_l1_prox"]) > 0
    assert m["zeros_l1_prox"] == sorted(m["zeros_l1_prox"])  # more zeros as lam grows
    assert max(m["zeros_l2"]) == 0
    assert max(m["zeros_l1_subgradient"]) <= 1  # the zeros come from the prox step
    # iterative solvers on both sides (ISTA, coordinate descent): they agree to convergence
    assert m["lasso_max_diff"] < 1e-8 and m["lasso_same_zeros"]
    assert m["ridge_max_diff"] < 1e-8
    assert m["test_mse_l1_best"] < m["test_mse_least_squares"]
    # lam sets the complexity: ridge's degrees of freedom and the lasso's non-zeros fall with it
    dof, nonzeros = m["ridge_dof"], m["nonzeros_l1"]
    assert all(a > b for a, b in itertools.pairwise(dof)) and dof[0] <= 20  # p = 20 (quick)
    assert all(a >= b for a, b in itertools.pairwise(nonzeros)) and nonzeros[-1] < nonzeros[0]


@pytest.mark.slow  # a claim's experiment (quick mode)
def test_learning_rate_boundary_is_two_over_lambda_max(tmp_path):
    m = _check_result(examples.load("learning_rate").run(tmp_path, quick=True), "holds")
    # the bisection's criterion, growth within 500 steps, puts the boundary a little above
    # 2 / lambda_max (4e-4 relative with the full run's 3000 steps)
    assert m["boundary"] == pytest.approx(m["threshold"], rel=0.01)
    assert m["boundary_scaled"] == pytest.approx(m["threshold_scaled"], rel=0.01)
    # data times 3, Gram matrix times 9: float64 eigenvalues, a few ulps of the largest
    assert m["threshold"] == pytest.approx(9 * m["threshold_scaled"], rel=1e-12)
    assert m["misclassified"] == 0
    assert m["flips_oscillating"] == 1.0 and m["flips_monotone"] == 0.0
    # the network's lr, chosen on held-out data: the lowest finite mean validation loss
    val = m["heldout_val_loss"]
    chosen = m["heldout_lrs"].index(m["heldout_best_lr"])
    assert math.isfinite(val[chosen]) and val[chosen] == min(val)
    assert val[0] > val[chosen]  # the smallest lr is too slow for the budget
    assert m["heldout_test_accuracy"][0] > 0.9
    assert not m["heldout_diverged"] or max(m["heldout_diverged"]) > m["heldout_best_lr"]


@pytest.mark.slow  # a claim's experiment (quick mode)
def test_backprop_by_hand_equals_autodiff_in_training(tmp_path):
    m = _check_result(examples.load("backprop").run(tmp_path, quick=True), "holds")
    # float32: how close two float32 gradients are depends on the cancellation in their sums,
    # so each is compared with the float64 gradient at the same parameters: the hand-written
    # one is as accurate as autodiff's (median error within 2x, worst step within 4x)
    assert m["grad_error_float32_manual_median"] <= 2 * m["grad_error_float32_autodiff_median"]
    assert m["grad_error_float32_manual"] <= 4 * m["grad_error_float32_autodiff"]
    assert m["grad_error_float32_autodiff"] < 1e-3  # float32 rounding, not a wrong gradient
    # float64 rounding only: a few ulps per step, over the training run for the losses and
    # parameters
    assert m["grad_rel_float64"] < 1e-13
    assert m["loss_diff_float64"] < 1e-12 and m["param_diff_float64"] < 1e-12
    assert m["loss_diff_float32"] < 1e-4  # float32 rounding, grown over the training run
    assert max(m["grad_rel_per_activation"].values()) < 1e-13  # float64 rounding only
    assert m["finite_difference_rel"] < 1e-6  # central differences in float64: FINITE_DIFF_RTOL
    assert m["test_accuracy_manual"] > 0.9
    # the float32 runs drift apart by round-off, which may flip a few test predictions
    assert m["test_accuracy_manual"] == pytest.approx(m["test_accuracy_autodiff"], abs=0.01)


@pytest.mark.slow  # a claim's experiment (quick mode)
def test_vanishing_gradients_sigmoid_vanishes_relu_needs_its_init(tmp_path):
    m = _check_result(
        examples.load("vanishing_gradients").run(tmp_path, quick=True), "holds with a caveat"
    )
    r = m["ratios"]  # |dL/dW_1| at depth 30 over depth 2
    assert r["sigmoid"] < 1e-10
    assert r["relu (He init)"] > 0.1 and r["tanh"] > 0.05
    assert r["relu (LeCun init)"] < 1e-3  # halving the variance per layer
    assert 0.6 < m["per_layer_factor"]["relu (LeCun init)"] < 0.8  # ~ 1/sqrt(2)
    assert m["sigmoid_float32_zero"] == 10  # every init underflows to exactly 0 in float32
    assert m["dead_zero_grad"]  # every dead ReLU unit gets exactly zero gradient
    dead = m["dead_fraction"]
    assert dead["He init, biases -1"] > dead["He init"]
    # exploding: weights 1.5 x He's grow the gradient about 1.5x per layer, over 12 layers
    assert m["exploding_growth"] > 10
    for runs in m["clipping"].values():
        for r in runs:
            assert 0 <= r["diverged"] <= 10 and (r["loss"] is None or r["loss"][0] >= 0)


@pytest.mark.slow  # a claim's experiment (quick mode)
def test_memory_lags_gates_and_the_gradient_across_lags(tmp_path):
    res = examples.load("memory").run(tmp_path, quick=True)
    m = _check_result(res, res["verdict"])
    assert m["ks"] == [5, 10] and m["seeds"] == 3
    for v in ("rnn", "gru", "lstm b1", "lstm b3", "lstm chrono"):
        assert m["chosen_lr"][v][5] in m["learning_rates"]
        lo, hi = m["success_interval"][v]["5"]
        assert 0 <= lo <= m["success"][v]["5"] / 3 <= hi <= 1  # Wilson contains the rate
    assert m["success"]["rnn"]["5"] >= 2  # a plain RNN learns a short lag, distractors and all
    g7, far = m["gradient_7_init"], m["gradient_far_init"]
    assert g7["rnn"] < 0.1  # at init the RNN's gradient vanishes within 7 steps
    # a forget-gate bias of 3 keeps the gradient (sigmoid(3) = 0.95 per step) far above the RNN's
    assert far["lstm b3"] > 100 * far["rnn"] and far["lstm b3"] > far["lstm b1"]
    verdicts = {"holds", "holds with a caveat", "does not hold"}
    assert {m["claims"][c][0] for c in ("seven_steps", "gates_vs_vanishing")} <= verdicts


@pytest.mark.slow  # a claim's experiment (quick mode)
def test_dropout_narrows_the_gap_a_little(tmp_path):
    m = _check_result(examples.load("dropout").run(tmp_path, quick=True), "holds with a caveat")
    assert m["gap_dropout"] < m["gap_no_dropout"]
    assert m["test_dropout"] > m["test_no_dropout"]
    assert m["train_dropout"] == 1.0 and m["train_no_dropout"] == 1.0  # both memorize
    assert m["ensemble_agreement"] > 0.95  # the scaled network ~ the average of sub-networks
    base = m["baselines"]
    assert set(base) == {"none", "weight decay", "dropout", "early stopping"}
    for r in base.values():
        mean, lo, hi = r["test"]
        assert lo <= mean <= hi and mean > 0.8  # every method learns digits from 200 images


@pytest.mark.slow  # a claim's experiment (quick mode)
def test_batch_norm_trains_deep_sigmoid_and_widens_the_learning_rates(tmp_path):
    m = _check_result(examples.load("batch_norm").run(tmp_path, quick=True), "holds with a caveat")
    reach = m["best_reach"]
    assert math.isinf(reach["sigmoid plain"]) and reach["sigmoid bn"] < m["steps"]
    # learning nothing, it predicts the class frequencies: log 10 up to the digits' imbalance
    assert m["sigmoid_plain_final_loss"] == pytest.approx(math.log(10), abs=0.05)
    usable = m["usable_learning_rates"]
    assert usable["tanh bn"] > usable["tanh plain"]
    assert math.isfinite(reach["tanh plain"]) and math.isfinite(reach["tanh bn"])
    # the fair baseline: a sigmoid network without batch norm, initialized for sigmoid (4x)
    assert "sigmoid 4x plain" in reach and m["best_lr"]["sigmoid 4x plain"] in m["learning_rates"]
    # internal covariate shift, measured: it grows with depth without batch norm
    assert m["shift_depth_ratio"] > 1
    for plain, bn in zip(m["shift_deep_plain"], m["shift_deep_bn"], strict=True):
        assert plain[1] <= plain[0] <= plain[2] and bn[1] <= bn[0] <= bn[2] and bn[0] > 0


@pytest.mark.slow  # a claim's experiment (quick mode)
def test_objective_functions_f1_and_the_losses(tmp_path):
    m = _check_result(
        examples.load("objective_functions").run(tmp_path, quick=True), "holds with a caveat"
    )
    assert m["confusion_matrix"] == [[19, 6], [4, 11]] and m["confusion_matrix_equal"]
    # float64 ratios of counts, a few ulps (the example's own verdict uses 1e-12)
    assert m["f1"] == pytest.approx(2 * 11 / (2 * 11 + 6 + 4), abs=1e-12)
    assert m["vs_sklearn"] < 1e-12 and m["vs_formula"] < 1e-12 and m["multiclass_diff"] < 1e-12
    assert m["soft_f1_at_01_diff"] < 1e-12  # soft_f1 = 1 - F1 at 0/1 probabilities
    # at s = 316, sigmoid(s z) is within exp(-316 |z|) of 0 or 1; the smallest |z| sets the gap
    assert m["soft_f1_sharp_gap"] < 1e-6
    assert m["metric_grad_zero"] and m["metric_grad_norm_max"] == 0
    assert m["f1_trained_metric"] == m["f1_start"] < m["f1_trained_soft"] - 0.3
    assert m["soft_grad_signs_ok"]
    # float64 sums, a few ulps (the verdict's 1e-12); the frequencies come from gradient
    # descent on the cross-entropy, good to its convergence
    assert m["mse_vs_mean"] < 1e-12 and m["mae_vs_median"] == 0
    assert m["hinge_vs_sklearn"] < 1e-12 and m["hinge_separable"] == 0
    assert m["ce_vs_sklearn"] < 1e-12 and m["ce_vs_frequencies"] < 1e-6


@pytest.mark.slow  # a claim's experiment (quick mode)
def test_report_builds_from_the_topics_run(tmp_path, capsys):
    assert report.main(["--quick", "--only", "learning_rate", "--out", str(tmp_path)]) == 0
    assert "learning_rate: holds:" in capsys.readouterr().out
    text = (tmp_path / "REPORT.md").read_text()
    assert "## 1. Learning rate" in text
    assert "**Verdict: holds.**" in text
    assert "![Learning rate](figures/learning_rate.png)" in text
    assert (tmp_path / "figures" / "learning_rate.png").read_bytes().startswith(PNG_SIGNATURE)
    record = json.loads((tmp_path / "figures" / "learning_rate.json").read_text())
    assert record["mode"] == "quick" and record["verdict"] == "holds"


def test_report_rejects_unknown_topics(tmp_path):
    with pytest.raises(SystemExit):
        report.main(["--only", "nonsense", "--out", str(tmp_path)])
