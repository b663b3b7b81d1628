"""Adversarial sweep of bad and unusual inputs over dlref's public API.

The cases (``tests/sweep_cases.py``) are generated from the registry and the public
signatures: wrong ranks, shapes that do not match between arguments, integer, bool
and complex arrays, Python lists, NaN and infinities (eagerly and under jit), empty
batches and feature axes, out-of-range labels (eagerly, under jit, vmap and grad),
probabilities outside [0, 1], hyperparameters as Python, NumPy, JAX and traced
values and out of their domain, pytree mismatches in the optimizers, broken state
dicts for the converters, and the initializers' sizes.

Each case is one test; its outcome is ``clear`` (InputError naming the function
and argument), ``documented`` (the documented result), ``poor`` (another exception,
or an unnamed one), ``silent`` (a finite, plausible result for invalid input) or
``crash`` (an exception for a valid call). The test passes on ``clear`` and
``documented``; the cases that show a known dlref bug are strict xfails (see
``BUGS``). The run ends with a count per category; ``python tests/test_sweep.py``
runs every case without pytest and lists those that are not clear or documented
(``--slow`` for the slow ones too, a substring to filter by id).

The default run leaves out, as ``slow``, the cases that compile a new program each
(a new shape, dtype or hyperparameter value: valid variants, eager NaN, vmap).
"""

from __future__ import annotations

import collections
import contextlib
import re
import sys
import time

import pytest
import sweep_cases as sc

from dlref import OPS

FAMILIES = (
    sc.rank_cases,
    sc.shape_cases,
    sc.dtype_cases,
    sc.container_cases,
    sc.nonfinite_cases,
    sc.label_cases,
    sc.domain_cases,
    sc.empty_cases,
    sc.hyper_cases,
    sc.array_hyper_cases,
    sc.metrics_cases,
    sc.optim_cases,
    sc.convert_cases,
    sc.convert_flax_recurrent_cases,
    sc.convert_to_cases,
    sc.gradcheck_cases,
    sc.init_cases,
    sc.network_cases,
)
CASES = [case for family in FAMILIES for case in family()]

# Known dlref bugs the sweep shows: (pattern matched against case ids, reason).
# Each matching case is a strict xfail: fixing the bug makes it XPASS, and fail,
# until its line here is removed.
BUGS: list[tuple[str, str]] = [
    # --- inputs of the ops ---
    (
        r"^dtype/batch_norm(_eval|_momentum)?/state\.(mean|var)/(int32|bool|complex128)$",
        "batch_norm's dtype check names `mean`/`var`, not `state.mean`/`state.var` "
        "(its shape check does)",
    ),
    (
        r"^numpy/(dense|batch_norm_eval)/",
        "NumPy inputs: dense computes in NumPy and returns an np.ndarray; batch_norm "
        "(training=False) returns the state's leaves as jax's internal TypedNdArray",
    ),
    (
        r"^nonfinite/dot_product_attention_causal/k/inf/",
        "causal attention: a key of +inf giving a score of -inf on a row's only visible key "
        "is taken for a fully masked row: output 0 (neither NaN nor the limit v[0])",
    ),
    (
        r"^empty/(dense/(features=0\(3,0,5\)|size2=0\(3,4,0\))"
        r"|embedding/size3=0\(4,6,5,0\)"
        r"|(rnn|lstm|gru)_cell/(features=0\(3,0,6\)|size2=0\(3,4,0\))"
        r"|(rnn|lstm|gru|lstm_checkpointed)/(features=0\(8,3,0,6\)|size3=0\(8,3,4,0\)))/run$",
        "an empty feature axis (d_in, d_out, hidden or d = 0): the forward works, the "
        "hand-written backward raises ZeroDivisionError (x.reshape(-1, 0))",
    ),
    (
        r"^domain/(binary_cross_entropy_with_logits|softmax_cross_entropy)/targets=.*/jit$"
        r"|^domain/soft_f1/.*/jit$",
        "targets (and soft_f1's probs) outside [0, 1] under jit give a finite loss; "
        "neither NaN nor documented (binary/categorical_cross_entropy document theirs)",
    ),
    (
        r"^domain/batch_norm(_momentum)?/state\.var=-1\.0/jit$",
        "batch_norm(training=True) under jit takes a negative running variance (traced, so "
        "not checked; eagerly it raises) and carries it into the new state",
    ),
    # --- hyperparameters ---
    (
        r"^optim/(momentum_update/nesterov|rmsprop_update/eps_in_sqrt)='no'$",
        "the optimizers' boolean flags are read for truthiness: 'no' means True (the ops "
        "check theirs)",
    ),
    (
        r"^hyper/l1_prox/threshold='0\.5'$"
        r"|^hyper/batch_norm/axis_name=('batch'|3)$"
        r"|^hyper/dot_product_attention/scale='0\.5'$"
        r"|^optim/\w+/(learning_rate|beta|decay|eps|eps_root|b1|b2|weight_decay)"
        r"=('0\.1'|'0\.5'|None)$",
        "a str, None or a shaped array for a numeric hyperparameter raises a raw "
        "TypeError/NameError from inside the op, not InputError",
    ),
    # --- dlref.metrics ---
    (
        r"^metrics/\w+/(num_classes|zero_division)=jnp\.array-0d$",
        "a concrete 0-d JAX array for num_classes / zero_division is refused "
        "(NumPy scalars are accepted)",
    ),
    (
        r"^metrics/\w+/probs=(1\.5|-0\.2)$",
        "a floating y_pred outside [0, 1] (logits, say) is thresholded without a word",
    ),
    (
        r"^metrics/(precision|recall|f1_score|precision_recall_fscore_support)"
        r"/sample_weight/nan$",
        "a NaN sample weight is hidden: the class's NaN score is left out of the macro mean",
    ),
    # --- dlref.optim ---
    (
        r"^optim/gradient_descent/grads/leaf-complex$"
        r"|^optim/(momentum|rmsprop|adam|adamw)_update/grads/(leaf-complex|int32|bool)$",
        "grads' dtype not checked: gradient_descent drops a complex gradient's imaginary "
        "part; the other updates raise TypePromotionError (strict promotion)",
    ),
    (
        r"^optim/(momentum|rmsprop|adam|adamw)_update/(grads-float64-for-float32-params"
        r"|\w+=np\.float64/float32-params)$",
        "float32 params with float64 grads or a NumPy float64 hyperparameter: "
        "TypePromotionError under strict promotion (the state widens to float64 under "
        "standard promotion)",
    ),
    (
        r"^optim/\w+_update/state-of-other-params$",
        "a state of another params tree: jax's pytree ValueError, not InputError",
    ),
    (r"^optim/sgd/update-grads-", "sgd().update does not check grads against params"),
    # --- dlref.convert ---
    (
        r"^convert/(dense_from_torch|dense_from_flax)/drop-bias$"
        r"|^convert/(rnn|lstm|gru)_from_torch/drop-both-biases$"
        r"|^convert/batch_norm_from_flax/drop-params/(scale|bias)$",
        "a missing optional bias/scale becomes float64 zeros/ones (np.zeros) next to "
        "float32 weights",
    ),
    (
        r"^convert/(rnn|lstm|gru|batch_norm)_from_flax/unknown-key$"
        r"|^convert/(rnn|lstm|gru)_from_flax/\w+\.kernel/size\+1$",
        "flax recurrent (and batch-norm) converters ignore unknown keys and do not check "
        "kernel shapes",
    ),
    (
        r"^convert/\w+_to_(torch|flax)/(b-size|w-int32|w_hh-shape|gates|b_hh-size|shift-size"
        r"|var-size)$",
        "the *_to_torch / *_to_flax converters check nothing: mismatched shapes or integer "
        "weights give a broken state dict",
    ),
    # --- gradcheck, initializers, networks ---
    (
        r"^gradcheck/(numerical_grad/(argnums=3|step=0\.0|step=nan|vector-valued-f)"
        r"|check_grad/rtol=|compare/complex-vs-real|random_like/int-leaf|check_vjp/key=None)",
        "gradcheck: argnums, step, rtol, key and f's output not checked; step=0 silently "
        "uses the default; compare drops imaginary parts",
    ),
    (
        r"^init/\w+/(d_in|d_out|features|hidden|batch)=(-1|2\.5|None)$"
        r"|^init/\w+/dtype=(int32|complex64)$|^init/init_(rnn|lstm|gru)/hidden=0$"
        r"|^init/init_lstm/forget_bias=|^init/init_mlp/sizes=|^init/init_dense/key=0$",
        "the initializers check nothing: raw jax/MLIR errors, ZeroDivisionError for hidden=0, "
        "integer or complex parameters, init_mlp((3,)) returns []",
    ),
    (
        r"^networks/mlp/params-(layer-of-three|dict)$",
        "mlp: a malformed params list raises 'too many values to unpack'",
    ),
]


def bug(case_id: str) -> str | None:
    for pattern, reason in BUGS:
        if re.search(pattern, case_id):
            return reason
    return None


def _param(case: sc.Case):
    marks = [pytest.mark.slow] if case.slow else []
    reason = bug(case.id)
    if reason:
        marks.append(pytest.mark.xfail(strict=True, reason=reason))
    return pytest.param(case, id=case.id, marks=marks)


OUTCOMES: dict[str, tuple[sc.Outcome, bool]] = {}


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    """After the module: the count per category (and the known bugs among them)."""
    yield
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if OUTCOMES and reporter is not None:
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write_line("")
            reporter.write_line(f"sweep: {summary(OUTCOMES.values())}")


def summary(outcomes) -> str:
    outcomes = list(outcomes)
    counts = collections.Counter(o.category for o, _ in outcomes)
    known = collections.Counter(o.category for o, xfail in outcomes if xfail)
    parts = ", ".join(f"{counts[c]} {c}" for c in sc.CATEGORIES)
    bugs = ", ".join(f"{known[c]} {c}" for c in sc.CATEGORIES if known[c])
    return f"{len(outcomes)} cases: {parts}" + (f" (known bugs, xfail: {bugs})" if bugs else "")


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_sweep(case):
    outcome = sc.classify(case)
    OUTCOMES[case.id] = (outcome, bug(case.id) is not None)
    assert outcome.category in sc.OK, f"{outcome.category}: {outcome.detail}"


def test_case_ids_are_unique():
    counts = collections.Counter(case.id for case in CASES)
    assert not [i for i, n in counts.items() if n > 1]


def test_every_hyperparameter_is_swept():
    """A hyperparameter added to an op must get its valid and invalid values in
    ``sweep_cases.HYPERS``."""
    swept = {(OPS[name].fn.__name__, hyper) for name, hyper in sc.HYPERS}
    missing = sorted(
        (spec.fn.__name__, hyper)
        for spec in OPS.values()
        for hyper in spec.fn.hyper
        if (spec.fn.__name__, hyper) not in swept
    )
    assert not missing


def test_every_bug_pattern_matches_a_case():
    """A stale pattern (a renamed case) would silently stop marking its bug."""
    assert not [p for p, _ in BUGS if not any(re.search(p, c.id) for c in CASES)]


def main(argv: list[str]) -> None:
    """Runs the cases without pytest (with tests/conftest.py's JAX settings)."""
    import conftest  # noqa: F401 - x64, strict promotion, rank promotion raise

    slow = "--slow" in argv
    words = [a for a in argv if not a.startswith("--")]
    # made again: the scalars in the cases must be made with conftest's settings (x64)
    every = [case for family in FAMILIES for case in family()]
    cases = [c for c in every if (slow or not c.slow) and all(w in c.id for w in words)]
    outcomes = []
    start = time.perf_counter()
    for case in cases:
        outcome = sc.classify(case)
        known = bug(case.id)
        outcomes.append((outcome, bool(known)))
        if outcome.category not in sc.OK:
            mark = " [known bug]" if known else ""
            print(f"{outcome.category:6} {case.id}{mark}: {outcome.detail[:300]}")
        elif known:
            print(f"FIXED? {case.id} is {outcome.category}, marked as a known bug")
    print(f"{summary(outcomes)} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
