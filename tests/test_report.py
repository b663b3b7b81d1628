"""The claims report cannot go stale: each topic's stored result (examples/figures/*.json)
was computed by the code as it is now (its recorded code hash is the current one), and
examples/REPORT.md is exactly the report those results build. Cheap: no experiment runs.

When a test here fails, it names the topic and the command that refreshes it."""

import ast
import json
import pathlib

import pytest

import examples
from examples import __main__ as report
from examples import claims

HERE = pathlib.Path(examples.__file__).parent


def _record(name: str) -> dict:
    path = HERE / "figures" / f"{name}.json"
    if not path.exists():
        pytest.fail(f"{name}: no stored result; run `python -m examples --only {name}`")
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", examples.TOPICS)
def test_stored_result_was_computed_by_the_current_code(name):
    record = _record(name)
    refresh = f"run `python -m examples --only {name}` and commit examples/figures/{name}.*"
    assert record["mode"] == "full", f"{name}: the stored result is a quick run; {refresh}"
    current = examples.code_hash(name)
    assert record.get("code_hash") == current, (
        f"{name} is stale: its result was computed by code hashed {record.get('code_hash')} "
        f"(commit {record.get('commit', '?')[:10]}), the code is now {current} (files: "
        f"{', '.join(examples.code_files(name))}); {refresh}"
    )
    assert record["code_files"] == examples.code_files(name)
    assert (HERE / "figures" / record["figure"]).read_bytes().startswith(b"\x89PNG")
    assert isinstance(record["seconds"], float) and record["environment"]


def test_report_is_the_one_the_stored_results_build():
    built = report.build_report(HERE)
    committed = (HERE / "REPORT.md").read_text()
    assert committed == built, (
        "examples/REPORT.md differs from the report the stored results build: run "
        "`python -m examples --report` (no experiment runs) and commit examples/REPORT.md"
    )


def test_every_sentence_of_the_cheat_sheet_is_a_claim_or_declared_not_one():
    assert claims.uncovered(claims.CHEATSHEET.read_text()) == ""


def test_uncovered_finds_a_sentence_no_claim_quotes():
    text = claims.CHEATSHEET.read_text() + "\nDropout makes networks twice as fast.\n"
    assert claims.uncovered(text) == "Dropoutmakesnetworkstwiceasfast"


def test_claims_name_topics_and_valid_verdicts():
    for claim in claims.CLAIMS:
        assert claim.topic is None or claim.topic in examples.TOPICS, claim.quote
        if claim.judge is None:
            assert claim.verdict in claims.CLAIM_VERDICTS and claim.reason, claim.quote
        else:
            assert claim.verdict is None and claim.topic, claim.quote
            verdict, evidence = claims.judge(claim, _record(claim.topic)["measured"])
            assert verdict in claims.CLAIM_VERDICTS and evidence, claim.quote


def test_the_outright_errors_have_rows_of_their_own():
    rows = {
        c.quote: claims.judge(c, None if c.judge is None else _record(c.topic)["measured"])
        for c in claims.CLAIMS
    }
    for start in (
        "Tanh is a function used to initialize",
        "Cross entropy is a loss function is",
        "Examples of these functions are f1/f score",
    ):
        (verdict,) = [v for q, (v, _) in rows.items() if q.startswith(start)]
        assert verdict == "does not hold", start


def _dlref_imports(path: pathlib.Path) -> set[str]:
    """The dlref modules a file imports: 'dlref/losses', 'dlref/optim.py', ..."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dlref"):
            if node.module == "dlref":
                names = [f"dlref.{a.name}" for a in node.names]
            else:
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("dlref.")]
        for name in names:
            rel = name.replace(".", "/")
            if (examples.ROOT / rel).is_dir():
                found.add(rel)
            elif (examples.ROOT / f"{rel}.py").is_file():
                found.add(f"{rel}.py")
    return found


@pytest.mark.parametrize("name", examples.TOPICS)
def test_uses_names_every_dlref_module_the_topic_imports(name):
    files = examples.code_files(name)
    for module in _dlref_imports(HERE / f"{name}.py"):
        assert any(f == module or f.startswith(module + "/") for f in files), (
            f"{name}.USES lacks {module}, which the topic imports"
        )


def test_code_hash_changes_with_the_code(tmp_path, monkeypatch):
    before = examples.code_hash("learning_rate")
    original = examples.ROOT
    root = tmp_path / "repo"
    for rel in examples.code_files("learning_rate"):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((original / rel).read_bytes())
    monkeypatch.setattr(examples, "ROOT", root)
    assert examples.code_hash("learning_rate") == before
    path = root / "dlref/losses/_regression.py"
    path.write_text(path.read_text() + "\n# changed\n")
    assert examples.code_hash("learning_rate") != before


def test_no_claim_is_left_untested():
    """Every claim has a verdict or a reason it is not testable: none waits for a
    measurement the stored results lack."""
    untested = []
    for claim in claims.CLAIMS:
        measured = None if claim.judge is None else _record(claim.topic)["measured"]
        verdict, evidence = claims.judge(claim, measured)
        if verdict == "untested":
            untested.append(f"{claim.quote[:50]!r} ({claim.topic}: {evidence})")
    assert not untested, "claims without a measurement: " + "; ".join(untested)
