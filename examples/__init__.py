"""The cheat sheet's claims, checked: one experiment per topic, each with a figure and a verdict.

    python -m examples                          # every topic: figures/, then REPORT.md
    python -m examples --only gradient,l1_vs_l2 --quick
    python -m examples.gradient                 # one topic: its figure and verdict line

A topic is a module ``examples/<name>.py`` with ``TITLE``, ``CLAIM`` (the cheat sheet's
words), ``USES`` (the dlref source files its results depend on, see :func:`code_files`)
and ``run(out_dir, quick=False) -> dict``, which writes ``out_dir/<name>.png`` and
returns :func:`result`'s dict: ``verdict`` (one of :data:`VERDICTS`), ``summary`` (one line
with the measured numbers), ``figure`` (the PNG's path), ``notes`` (Markdown: what was
measured, and the correct statement where the cheat sheet is loose or wrong) and
``measured`` (the key numbers, which tests/test_examples.py asserts). ``quick=True`` is a
smaller run of the same measurement, for the tests.

Adding a topic: write the module (with ``TITLE``, ``CLAIM``, ``USES`` and ``run``), add its
name to :data:`TOPICS` (one line), add its test, and run ``python -m examples --only <name>``
to commit its figure and JSON. Each cheat-sheet claim it judges is a row of
``examples/claims.py`` naming the topic (a topic on something the cheat sheet does not
claim, such as a CNN, needs no row).

Never stale: each topic's JSON records :func:`code_hash` of the code it ran, and
tests/test_report.py fails, naming the topic and the command that refreshes it, when that
hash differs from the current code's, or when REPORT.md differs from the report
``python -m examples --report`` builds from the committed JSONs.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import pathlib
import subprocess
import time
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib

__all__ = [
    "FIGURES",
    "TOPICS",
    "VERDICTS",
    "ROOT",
    "adam_init",
    "adam_update",
    "code_files",
    "code_hash",
    "digits",
    "git_commit",
    "key",
    "load",
    "main_one",
    "mean_interval",
    "result",
    "save",
    "setup",
    "verdict_line",
    "wilson",
]

matplotlib.use("Agg")  # before any topic imports pyplot: no display needed

# The topics in report order; a new topic is one module and one line here.
TOPICS = [
    "gradient",
    "backprop",
    "activations",
    "vanishing_gradients",
    "memory",
    "softmax_cross_entropy",
    "l1_vs_l2",
    "dropout",
    "batch_norm",
    "objective_functions",
    "learning_rate",
    "cnn",
    "transformer",
]

VERDICTS = ("holds", "holds with a caveat", "does not hold")

FIGURES = pathlib.Path(__file__).parent / "figures"
ROOT = pathlib.Path(__file__).parent.parent  # the repository


def code_files(name: str) -> list[str]:
    """The files whose contents a topic's results depend on, relative to the repository:
    ``examples/<name>.py``, ``examples/__init__.py`` and the topic's ``USES``.

    ``USES`` lists dlref files (or folders, all their ``*.py`` files) by hand: the modules
    the experiment runs through, not all of dlref, so that a new layer or activation added
    elsewhere in dlref does not mark every topic stale. tests/test_report.py checks that it
    names every dlref module the topic imports. dlref's shared helpers (``_op``, ``_checks``,
    ``_numerics``) are left out: every op's numbers are pinned by the registry-wide tests of
    tests/test_ops.py, and hashing them would mark every topic stale at each edit there.
    """
    module = load(name)
    files = [f"examples/{name}.py", "examples/__init__.py"]
    for entry in module.USES:
        path = ROOT / entry
        if path.is_dir():
            files += sorted(str(p.relative_to(ROOT)) for p in path.rglob("*.py"))
        elif path.is_file():
            files.append(entry)
        else:
            raise ValueError(f"{name}.USES: {entry!r} is not a file or folder of the repository")
    return sorted(set(files))


def code_hash(name: str) -> str:
    """SHA-256 (hex, first 16 digits) of the :func:`code_files` of a topic: each file's
    path and bytes, in sorted order."""
    digest = hashlib.sha256()
    for rel in code_files(name):
        digest.update(rel.encode() + b"\0" + (ROOT / rel).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def git_commit() -> str:
    """The checkout's HEAD commit (``"unknown"`` outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def setup() -> None:
    """Float64 for every experiment (the measured differences are near rounding)."""
    jax.config.update("jax_enable_x64", True)


def load(name: str) -> ModuleType:
    """The topic module ``examples.<name>``."""
    if name not in TOPICS:
        raise ValueError(f"unknown topic {name!r}; topics: {', '.join(TOPICS)}")
    return importlib.import_module(f"examples.{name}")


def save(fig: Any, out_dir: pathlib.Path, name: str) -> pathlib.Path:
    """Writes ``fig`` to ``out_dir/<name>.png``, closes it and returns the path."""
    import matplotlib.pyplot as plt

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def result(
    verdict: str, summary: str, figure: pathlib.Path, notes: str, **measured: Any
) -> dict[str, Any]:
    """A topic's result; ``measured`` holds the key numbers the tests assert."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}; got {verdict!r}")
    if "\n" in summary:
        raise ValueError("the summary is one line")
    return {
        "verdict": verdict,
        "summary": summary,
        "figure": pathlib.Path(figure),
        "notes": notes.strip(),
        "measured": measured,
    }


def key(seed: int) -> jax.Array:
    """A PRNG key for the experiments: ``jax.random.key(seed, impl="rbg")``.

    XLA's RngBitGenerator compiles in a fraction of the time of the default threefry on
    CPU (an ``init_mlp`` under ``jit``: 0.6 s against 2.2 s), and every topic compiles
    afresh; the draws are fixed by the seed on a given backend (they may differ between
    CPU and GPU, as the report's run line says where they came from).
    """
    return jax.random.key(seed, impl="rbg")


def digits(n_train: int | None = None, seed: int = 0) -> dict[str, Any]:
    """scikit-learn's digits (1797 8x8 images, 10 classes; shipped with the package).

    A stratified split with ``random_state=seed``: 25% test (450 images), or, with
    ``n_train``, ``n_train`` training images and every other image for the test.
    Pixels are standardized with the training set's mean and standard deviation (a pixel
    that is constant there is only centred). Returns float32 ``x_train``, ``x_test`` and
    int32 ``y_train``, ``y_test`` (NumPy arrays).
    """
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x, y = data.data, data.target
    if n_train is None:
        split = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    else:
        split = train_test_split(x, y, train_size=n_train, random_state=seed, stratify=y)
    x_train, x_test, y_train, y_test = split
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return {
        "x_train": ((x_train - mean) / std).astype(np.float32),
        "x_test": ((x_test - mean) / std).astype(np.float32),
        "y_train": y_train.astype(np.int32),
        "y_test": y_test.astype(np.int32),
    }


def adam_init(params: Any) -> tuple:
    """Adam's state for ``params``: zero moments and a step count (in the params' dtype)."""
    zeros = jax.tree.map(jnp.zeros_like, params)
    dtype = jax.tree.leaves(params)[0].dtype
    return zeros, zeros, jnp.zeros((), dtype)


def adam_update(
    params: Any,
    grads: Any,
    state: tuple,
    learning_rate: float | jax.Array,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> tuple[Any, tuple]:
    """One step of Adam (Kingma and Ba 2015), as ``optax.adam``; returns ``(params, state)``.

    Written out because ``optax.adam`` raises under ``jax_numpy_dtype_promotion="strict"``
    (tests/conftest.py): its bias correction takes a Python float to the power of an int32
    step count.
    """
    m, v, count = state
    count = count + 1
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * (g * g), v, grads)
    c1, c2 = 1 - b1**count, 1 - b2**count

    def step(p, m, v):
        return p - learning_rate * (m / c1) / (jnp.sqrt(v / c2) + eps)

    return jax.tree.map(step, params, m, v), (m, v, count)


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a success rate ``successes / n``.

    ``(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)``: unlike the normal
    approximation it stays inside [0, 1] and is not empty at 0 or n successes (Wilson 1927).
    """
    if n <= 0:
        raise ValueError(f"wilson: n must be positive; got {n}")
    p = successes / n
    centre = p + z * z / (2 * n)
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def mean_interval(
    values: Any, level: float = 0.95, within: tuple[float, float] | None = None
) -> tuple[float, float, float]:
    """The mean of ``values`` and its Student-t confidence interval: ``(mean, low, high)``
    (``mean -+ t_(n-1) s / sqrt(n)``; a single value has the interval ``(mean, mean)``).
    ``within``: the range the quantity cannot leave (an accuracy's ``(0, 1)``), to which
    the interval is clipped."""
    import numpy as np
    from scipy import stats

    x = np.asarray(values, np.float64).ravel()
    mean = float(x.mean())
    if x.size < 2:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    low, high = mean - half, mean + half
    if within is not None:
        low, high = max(low, within[0]), min(high, within[1])
    return mean, low, high


def verdict_line(name: str, res: dict[str, Any]) -> str:
    return f"{name}: {res['verdict']}: {res['summary']}"


def main_one(name: str, run: Any, argv: list[str] | None = None) -> None:
    """``python -m examples.<name> [--quick] [--out DIR]``: runs one topic, prints its verdict."""
    parser = argparse.ArgumentParser(prog=f"python -m examples.{name}")
    parser.add_argument("--quick", action="store_true", help="the small, fast version")
    parser.add_argument("--out", type=pathlib.Path, default=FIGURES, help="folder for the PNG")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    res = run(args.out, quick=args.quick)
    print(verdict_line(name, res))
    print(f"figure: {res['figure']} ({time.perf_counter() - start:.1f} s)")
