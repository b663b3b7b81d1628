"""Gradient: it points uphill, and a small step against it lowers the value.

Two functions of two variables: the classic ``f(x, y) = x exp(-x^2 - y^2)`` (one hill, one
valley) and a real cost, the loss of a two-weight logistic regression (dlref's
``binary_cross_entropy_with_logits`` plus ``1e-2 * l2``, so ``jax.grad`` runs the
hand-written backward passes). On a grid of points we measure:

- the gradient against central differences (``dlref.gradcheck.numerical_grad``);
- the directional derivative along the gradient g, in forward mode (``jax.jvp`` through
  the ``.autodiff`` variants), against g . g = |g|^2, and that it is > 0 everywhere;
- that g is the steepest direction: of 72 unit directions, the one with the largest
  finite-difference slope is the one nearest to g;
- the fraction of points where a step of ``eta`` against g lowers f, over a sweep of eta.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import examples
from dlref import gradcheck, losses, regularizers

TITLE = "Gradient"
CLAIM = (
    "The gradient is the partial derivative of a function that takes in multiple vectors "
    "and outputs a single value (i.e. our cost functions in Neural Networks). The gradient "
    "tells us which direction to go on the graph to increase our output if we increase our "
    "variable input. We use the gradient and go in the opposite direction since we want to "
    "decrease our loss."
)
# The dlref code the results depend on (hashed into the JSON: examples.code_files)
USES = (
    "dlref/gradcheck.py",
    "dlref/losses/_cross_entropy.py",
    "dlref/regularizers.py",
)

ETA = 1e-2  # the "small step" of the verdict
N_DIRECTIONS = 72  # directions compared for steepest ascent (5 degrees apart)


def bump(p: jax.Array) -> jax.Array:
    """``f(x, y) = x exp(-x^2 - y^2)``: a hill at (0.71, 0), a valley at (-0.71, 0)."""
    return p[0] * jnp.exp(-(p[0] ** 2) - p[1] ** 2)


@functools.cache
def _logistic_data() -> tuple[jax.Array, jax.Array]:
    """Two overlapping Gaussian blobs in the plane, 40 points each, labels 0/1."""
    centres = np.array([[-1.0, -0.5], [1.0, 0.5]])
    labels = np.repeat(np.arange(2), 40)
    x = centres[labels] + 1.2 * np.random.default_rng(0).standard_normal((80, 2))
    return jnp.asarray(x), jnp.asarray(labels, dtype=jnp.float64)


def make_logistic_loss(autodiff: bool = False):
    """The mean logistic-regression loss of two weights (no bias) plus ``1e-2 * l2(w)``.

    ``autodiff=True`` builds it from the ``.autodiff`` variants (for forward mode).
    """
    x, labels = _logistic_data()
    bce = losses.binary_cross_entropy_with_logits
    l2 = regularizers.l2
    if autodiff:
        bce, l2 = bce.autodiff, l2.autodiff

    def loss(w: jax.Array) -> jax.Array:
        logits = x @ w
        return jnp.mean(bce(logits[:, None], labels[:, None])) + 1e-2 * l2(w)

    return loss


def _grid(lo: float, hi: float, n: int) -> jax.Array:
    """``(n * n, 2)`` points of a square grid."""
    t = jnp.linspace(lo, hi, n, dtype=jnp.float64)
    gx, gy = jnp.meshgrid(t, t)
    return jnp.stack([gx.ravel(), gy.ravel()], axis=1)


def _measure(f, f_forward_mode, points: jax.Array, etas: jax.Array) -> dict:
    """The gradient's properties at every point (see the module docstring)."""
    angles = jnp.arange(N_DIRECTIONS, dtype=jnp.float64) * (2 * jnp.pi / N_DIRECTIONS)
    units = jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=1)
    every = max(1, points.shape[0] // 50)  # finite differences at about 50 points
    every_dir = max(1, points.shape[0] // 400)  # directions compared at about 400 points

    @jax.jit
    def arrays(points, etas):
        grads = jax.vmap(jax.grad(f))(points)
        values = jax.vmap(f)(points)
        # Directional derivative along g in forward mode, against |g|^2.
        directional = jax.vmap(lambda p, g: jax.jvp(f_forward_mode, (p,), (g,))[1])(points, grads)
        squared = jnp.sum(grads * grads, axis=1)
        # Steepest ascent: central-difference slopes along N_DIRECTIONS unit vectors.
        h = 1e-6

        def slopes(p):
            up = jax.vmap(f)(p[None, :] + h * units)
            down = jax.vmap(f)(p[None, :] - h * units)
            return (up - down) / (2 * h)

        best = jnp.argmax(jax.vmap(slopes)(points[::every_dir]), axis=1)
        nearest = jnp.argmax(grads[::every_dir] @ units.T, axis=1)

        # A step of eta against g: does f go down?
        def lowered(eta):
            return jnp.mean(jax.vmap(f)(points - eta * grads) < values)

        fd = jax.vmap(lambda p: gradcheck.numerical_grad(f_forward_mode, p))(points[::every])
        return {
            "grads": grads,
            "directional": directional,
            "squared": squared,
            "steepest": jnp.mean(best == nearest),
            "fractions": jax.vmap(lowered)(etas),
            "fd": fd,
        }

    a = arrays(points, etas)
    directional, squared = a["directional"], a["squared"]
    return {
        "min_directional": float(jnp.min(directional)),
        "positive": float(jnp.mean(directional > 0)),
        "rel_dir": float(jnp.max(jnp.abs(directional - squared) / squared)),
        "steepest_agree": float(a["steepest"]),
        "steepest_points": int(points[::every_dir].shape[0]),
        "fractions": np.asarray(a["fractions"]),
        "fd_rel": gradcheck.compare(a["grads"][::every], a["fd"]).max_rel,
    }


def _largest_all_lowered(fractions: np.ndarray, etas: jax.Array) -> float:
    """The largest eta below which every step lowered f at every point (0 if none)."""
    failed = np.flatnonzero(fractions < 1.0)
    if failed.size == 0:
        return float(etas[-1])
    return float(etas[failed[0] - 1]) if failed[0] > 0 else 0.0


def _panel(ax, f, lo, hi, title, arrows=15):
    t = np.linspace(lo, hi, 121)
    gx, gy = np.meshgrid(t, t)
    pts = jnp.stack([jnp.asarray(gx.ravel()), jnp.asarray(gy.ravel())], axis=1)
    coarse = _grid(lo, hi, arrows)
    z, g = jax.jit(lambda a, b: (jax.vmap(f)(a), jax.vmap(jax.grad(f))(b)))(pts, coarse)
    z = np.asarray(z).reshape(gx.shape)
    filled = ax.contourf(gx, gy, z, levels=20, cmap="Blues")
    ax.contour(gx, gy, z, levels=20, colors="navy", linewidths=0.4)
    plt.colorbar(filled, ax=ax, shrink=0.85)
    g, c = np.asarray(g), np.asarray(coarse)
    ax.quiver(c[:, 0], c[:, 1], g[:, 0], g[:, 1], color="red", angles="xy", width=0.004)
    ax.set_title(title)
    ax.set_aspect("equal")
    ax.set_xlabel("$w_1$" if "logistic" in title else "x")
    ax.set_ylabel("$w_2$" if "logistic" in title else "y")


def run(out_dir: pathlib.Path, quick: bool = False) -> dict:
    examples.setup()
    n = 31 if quick else 101
    etas = jnp.logspace(-4, 1, 11 if quick else 41, dtype=jnp.float64)
    eta_index = int(jnp.argmin(jnp.abs(jnp.log10(etas) - np.log10(ETA))))
    functions = {
        "x exp(-x^2 - y^2)": (bump, bump, (-2.0, 2.0)),
        "logistic-regression loss": (
            make_logistic_loss(),
            make_logistic_loss(autodiff=True),
            (-3.0, 3.0),
        ),
    }
    measured = {
        name: _measure(f, f_fm, _grid(lo, hi, n), etas)
        for name, (f, f_fm, (lo, hi)) in functions.items()
    }

    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2), layout="constrained")
    for ax, (name, (f, _, (lo, hi))) in zip(axes[:2], functions.items(), strict=True):
        _panel(ax, f, lo, hi, f"{name}\ncontours (blue), gradient (red arrows)")
    ax = axes[2]
    for name, m in measured.items():
        ax.semilogx(np.asarray(etas), 100 * m["fractions"], "o-", ms=3, label=name)
    ax.axvline(float(etas[eta_index]), color="grey", ls="--", label=rf"$\eta$ = {ETA:g}")
    ax.set_xlabel(r"step size $\eta$")
    ax.set_ylabel(r"% of grid points where $f(p - \eta \nabla f(p)) < f(p)$")
    ax.set_title(f"a step against the gradient lowers f\n({n}x{n} grid per function)")
    ax.set_ylim(0, 105)
    ax.legend(loc="lower left")
    figure = examples.save(fig, out_dir, "gradient")

    points = len(measured) * n * n
    positive = min(m["positive"] for m in measured.values())
    steepest = min(m["steepest_agree"] for m in measured.values())
    steepest_points = sum(m["steepest_points"] for m in measured.values())
    rel_dir = max(m["rel_dir"] for m in measured.values())
    fd_rel = max(m["fd_rel"] for m in measured.values())
    lowered = min(float(m["fractions"][eta_index]) for m in measured.values())
    largest_ok = min(_largest_all_lowered(m["fractions"], etas) for m in measured.values())
    at_largest = min(float(m["fractions"][-1]) for m in measured.values())
    holds = positive == 1.0 and steepest == 1.0 and lowered == 1.0 and rel_dir < 1e-12
    verdict = "holds" if holds else "does not hold"
    summary = (
        f"grad . grad = |grad|^2 > 0 at {positive:.0%} of {points} grid points "
        f"(forward-mode vs |grad|^2: max rel diff {rel_dir:.1e}); the steepest of "
        f"{N_DIRECTIONS} directions is the gradient's at {steepest:.0%} of {steepest_points} "
        "points; a step of "
        f"eta = {float(etas[eta_index]):g} against it lowers f at {lowered:.0%} of points "
        f"(100% up to eta = {largest_ok:.2g}, {at_largest:.0%} at eta = {float(etas[-1]):g})"
    )
    notes = f"""
Two functions on a {n}x{n} grid each: `x exp(-x^2 - y^2)` on [-2, 2]^2 (the left panel,
drawn as in the cheat sheet's figure: contours in blue, the gradient as red arrows) and
the loss of a two-weight logistic regression (dlref's `binary_cross_entropy_with_logits`
with `1e-2 * l2`, so `jax.grad` runs the hand-written backward passes) on [-3, 3]^2.

- **The gradient is right**: `jax.grad` against central differences
  (`dlref.gradcheck.numerical_grad`): max relative error {fd_rel:.1e}.
- **It points uphill**: the directional derivative along the gradient g, computed in
  forward mode (`jax.jvp`, independent of the reverse-mode g), equals g . g = |g|^2 to a
  relative {rel_dir:.1e} and is > 0 at {positive:.0%} of the {points} points.
- **It is the steepest way up**: among {N_DIRECTIONS} unit directions 5 degrees apart,
  the largest central-difference slope is along the direction nearest to g at
  {steepest:.0%} of {steepest_points} points (an evenly spaced subset of the grids).
- **A small step against it lowers the value**: `f(p - eta g) < f(p)` at {lowered:.0%}
  of the points for eta = {float(etas[eta_index]):g}, and at every point for each eta up
  to {largest_ok:.2g}; at eta = {float(etas[-1]):g} only at {at_largest:.0%} (right
  panel). How small is small enough is set by the curvature: see *Learning rate*.

**Loose wording.** The gradient is not "the partial derivative": it is the vector of all
the partial derivatives of a scalar function of several variables (one vector, or many
weight arrays flattened into one), `grad f = (df/dx_1, ..., df/dx_n)`. It points in the
direction of steepest ascent and its length is that steepest slope, so `-grad f` is the
steepest way down, for a small enough step.
"""
    return examples.result(
        verdict,
        summary,
        figure,
        notes,
        positive_fraction=positive,
        steepest_fraction=steepest,
        directional_rel_diff=rel_dir,
        finite_difference_rel=fd_rel,
        lowered_fraction=lowered,
        eta=float(etas[eta_index]),
        largest_eta_all_lowered=largest_ok,
        lowered_at_largest_eta=at_largest,
    )


if __name__ == "__main__":
    examples.main_one("gradient", run)
