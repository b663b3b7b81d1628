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
BUGS: list[tuple[str, str]] = []


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
