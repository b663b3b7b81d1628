"""Sigmoid, ReLU and tanh: each with its derivative; Hinton's sum of shifted sigmoids
against softplus; tanh'(0) = 1 against sigmoid'(0) = 1/4.

Every value and derivative is dlref's (``jax.grad`` runs the hand-written backward
passes); scipy's ``expit`` and numpy's ``logaddexp`` are the independent references for
sigmoid and softplus.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import scipy.optimize
import scipy.special

import examples
from dlref import activations as act

TITLE = "Sigmoid, ReLU and tanh"
CLAIM = (
    "[Sigmoid:] A function used to activate weights in our network in the interval of "
    "[0, 1]. [...] sum_{i=1}^N sigma(x - i + 0.5) ~ log(1 + e^x) [...] Formula for ReLU "
    "from Geoffrey Hinton. [ReLU:] [...] has a range from [0, infinity]. [...] The ReLU does "
    "not suffer from the vanishing gradient problem. [Tanh:] Tanh is a function used to "
    "initialize the weights of your network of [-1, 1]. Assuming your data is normalized we "
    "will have stronger gradients: since data is centered around 0, the derivatives are "
    "higher. [...] This also avoids bias in the gradients."
)
# The dlref code the results depend on (hashed into the JSON: examples.code_files)
USES = ("dlref/activations/_basic.py",)

# The largest |sum - softplus| over x in [-5, N - 5] and N >= 10 is 0.010621, at N = 10 and
# x = 0.008 (measured below); for N >= 11 it is below 0.0106, and it falls to the
# midpoint-rule error 0.010578 at x = 0 as N grows. tests/test_activations.py states this
# bound, 0.01063 for N >= 10, measured on a fine grid.
HINTON_BOUND = 0.01063


def _derivative(f):
    """Elementwise derivative of an elementwise op, through its hand-written backward."""
    return jax.vmap(jax.grad(f))


def hinton_sum(x: jax.Array, n: int) -> jax.Array:
    """``sum_{i=1..n} sigmoid(x - i + 0.5)`` for each entry of a vector ``x``."""
    shifts = jnp.arange(1, n + 1, dtype=x.dtype) - 0.5
    return jnp.sum(act.sigmoid(x[:, None] - shifts[None, :]), axis=1)


def _refine(n: int, x0: float) -> tuple[float, float]:
    """The worst |sum - softplus| for N = n near the grid point x0: (x, |error|)."""
    found = scipy.optimize.minimize_scalar(
        lambda x: -abs(float(_hinton_error(jnp.full((1,), x, dtype=jnp.float64), n)[0])),
        bounds=(x0 - 0.005, x0 + 0.005),
        method="bounded",
        options={"xatol": 1e-8},
    )
    return round(float(found.x), 9) + 0.0, float(-found.fun)


@functools.partial(jax.jit, static_argnums=1)
def _hinton_error(x: jax.Array, n: int) -> jax.Array:
    return hinton_sum(x, n) - act.softplus(x)


def _hinton_errors(n: int, per_unit: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """``x`` on [-5, n - 5] (``per_unit`` points a unit, x = 0 included) and the error."""
    x = jnp.linspace(-5.0, n - 5.0, per_unit * n + 1, dtype=jnp.float64)
    error = _hinton_error(x, n)
    return np.asarray(x), np.asarray(error)


N_SHOW = 20  # N of the top-right panel


@jax.jit
def _curves(z: jax.Array) -> dict:
    """Every curve and number of the experiment but the per-N errors, in one compiled call;
    ``z`` are standard normal samples."""
    names = ("sigmoid", "relu", "tanh")
    x = jnp.linspace(-5.0, 5.0, 1001, dtype=jnp.float64)
    zero = jnp.zeros((1,), dtype=jnp.float64)
    unit = jnp.linspace(-1.0, 1.0, 2001, dtype=jnp.float64)
    near = jnp.linspace(-3.0, 3.0, 601, dtype=jnp.float64)
    wide = jnp.linspace(-6.0, N_SHOW + 6.0, 1201, dtype=jnp.float64)
    at_n = jnp.full((1,), float(N_SHOW), dtype=jnp.float64)
    return {
        "x": x,
        "values": {name: getattr(act, name)(x) for name in names},
        "slopes": {name: _derivative(getattr(act, name))(x) for name in names},
        "softplus": act.softplus(x),
        "hinton_at_n": hinton_sum(at_n, N_SHOW)[0] - act.softplus(at_n)[0],
        "wide": wide,
        "wide_sum": hinton_sum(wide, N_SHOW),
        "wide_softplus": act.softplus(wide),
        "wide_relu": act.relu(wide),
        "tanh0": _derivative(act.tanh)(zero)[0],
        "sigmoid0": _derivative(act.sigmoid)(zero)[0],
        "tanh_min": jnp.min(_derivative(act.tanh)(unit)),
        "sigmoid_max": jnp.max(_derivative(act.sigmoid)(unit)),
        "near": near,
        "near_tanh": _derivative(act.tanh)(near),
        "near_sigmoid": _derivative(act.sigmoid)(near),
        "mean_tanh": jnp.mean(act.tanh(z)),
        "mean_sigmoid": jnp.mean(act.sigmoid(z)),
        "pos_tanh": jnp.mean(act.tanh(z) > 0),
        "pos_sigmoid": jnp.mean(act.sigmoid(z) > 0),
    }


def run(out_dir: pathlib.Path, quick: bool = False) -> dict:
    examples.setup()
    ns = (10, 11, 20) if quick else (10, 11, 20, 50, 100)
    c = _curves(np.random.default_rng(0).standard_normal(100_000))
    x, values, slopes = c["x"], c["values"], c["slopes"]

    # References: scipy's expit for sigmoid, numpy's logaddexp for softplus.
    xs = np.asarray(x)
    ref_sigmoid = float(np.max(np.abs(np.asarray(values["sigmoid"]) - scipy.special.expit(xs))))
    ref_softplus = float(np.max(np.abs(np.asarray(c["softplus"]) - np.logaddexp(0.0, xs))))

    # Hinton: the sum of N shifted sigmoids against softplus on [-5, N - 5].
    hinton = {n: _hinton_errors(n) for n in ns}
    worst, worst_at = {}, {}
    for n, (xs_n, err) in hinton.items():  # the grid's worst, refined by scipy
        worst_at[n], worst[n] = _refine(n, float(xs_n[np.argmax(np.abs(err))]))
    tail = float(act.softplus(jnp.float64(-ns[0])))  # softplus(x - N) at x = 0, N = 10
    at_n = float(c["hinton_at_n"])
    relu_gap = float(jnp.max(c["softplus"] - values["relu"]))  # log 2, at x = 0

    # Derivatives at 0 and on the normalized range [-1, 1].
    tanh0, sigmoid0 = float(c["tanh0"]), float(c["sigmoid0"])
    tanh_min, sigmoid_max = float(c["tanh_min"]), float(c["sigmoid_max"])
    tanh_argmax = round(float(x[jnp.argmax(slopes["tanh"])]), 9) + 0.0
    relu_pos = float(jnp.mean(slopes["relu"][x > 0] == 1.0))

    # "Avoids bias": outputs for normalized (standard normal) inputs.
    mean_tanh, mean_sigmoid = float(c["mean_tanh"]), float(c["mean_sigmoid"])
    pos_tanh, pos_sigmoid = float(c["pos_tanh"]), float(c["pos_sigmoid"])

    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5), layout="constrained")
    ax = axes[0, 0]
    colours = {"sigmoid": "C0", "relu": "C1", "tanh": "C2"}
    for name, colour in colours.items():
        ax.plot(xs, np.asarray(values[name]), color=colour, label=name)
        ax.plot(xs, np.asarray(slopes[name]), color=colour, ls="--", label=f"{name}'")
    ax.set_ylim(-1.2, 2.2)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_title("sigmoid, ReLU, tanh (solid) and their derivatives (dashed)")
    ax.set_xlabel("x")
    ax.legend(ncol=3, loc="upper left")

    ax = axes[0, 1]
    wide = c["wide"]
    ax.plot(wide, c["wide_sum"], label=rf"$\sum_{{i=1}}^{{{N_SHOW}}}\sigma(x-i+0.5)$")
    ax.plot(wide, c["wide_softplus"], ls="--", label="softplus = log(1 + e^x)")
    ax.plot(wide, c["wide_relu"], ls=":", color="grey", label="relu")
    ax.axvspan(-5, N_SHOW - 5, color="C2", alpha=0.08, label=f"x in [-5, N - 5], N = {N_SHOW}")
    ax.set_title(f"Hinton's sum of N = {N_SHOW} shifted sigmoids against softplus")
    ax.set_xlabel("x")
    ax.legend(loc="upper left")

    ax = axes[1, 0]
    for n, (hx, err) in hinton.items():
        ax.plot(hx, err, label=f"N = {n}: max |error| {worst[n]:.5f}")
    ax.axhline(-HINTON_BOUND, color="k", ls=":", lw=1, label=f"-{HINTON_BOUND} (dlref's tests)")
    ax.set_xlim(-5, max(ns) - 5)
    ax.set_title("error of the sum against softplus on [-5, N - 5]")
    ax.set_xlabel("x")
    ax.set_ylabel("sum - softplus")
    ax.legend(loc="lower right")
    inset = ax.inset_axes([0.55, 0.45, 0.4, 0.3])
    for hx, err in hinton.values():
        keep = np.abs(hx) <= 0.1
        inset.plot(hx[keep], err[keep])
    inset.axhline(-HINTON_BOUND, color="k", ls=":", lw=1)
    inset.set_title("near x = 0", fontsize=9)
    inset.tick_params(labelsize=7)

    ax = axes[1, 1]
    ax.plot(c["near"], c["near_tanh"], color="C2", label="tanh'")
    ax.plot(c["near"], c["near_sigmoid"], color="C0", label="sigmoid'")
    ax.axvspan(-1, 1, color="grey", alpha=0.12, label="normalized inputs, [-1, 1]")
    ax.axhline(tanh_min, color="C2", ls=":", lw=1, label=f"min tanh' on [-1, 1] = {tanh_min:.3f}")
    ax.annotate(f"tanh'(0) = {tanh0:g}", (0, tanh0), (0.6, 0.95))
    ax.annotate(f"sigmoid'(0) = {sigmoid0:g}", (0, sigmoid0), (0.6, 0.3))
    ax.set_title("tanh' against sigmoid': tanh's gradients are stronger near 0")
    ax.set_xlabel("x")
    ax.legend(loc="upper left")
    figure = examples.save(fig, out_dir, "activations")

    worst_all = max(worst.values())
    holds = (
        worst_all <= HINTON_BOUND
        and tanh0 == 1.0
        and sigmoid0 == 0.25
        and tanh_min > sigmoid_max
        and relu_pos == 1.0
    )
    ns_text = ", ".join(str(n) for n in ns)
    summary = (
        f"sum of N shifted sigmoids ~ softplus: max error {worst_all:.6f} on [-5, N - 5] "
        f"(N = {ns_text}; the worst at N = {ns[0]}, x = {worst_at[ns[0]]:.3f}, within the "
        f"{HINTON_BOUND} dlref's tests state), but softplus is a smooth ReLU, not ReLU (gap up to "
        f"{relu_gap:.3f}); tanh'(0) = {tanh0:g} vs sigmoid'(0) = {sigmoid0:g}, on [-1, 1] "
        f"tanh' >= {tanh_min:.3f} > sigmoid' <= {sigmoid_max:.3f}; "
        "tanh is an activation, not a weight initializer"
    )
    per_n = ", ".join(f"N = {n}: {worst[n]:.6f} at x = {worst_at[n]:.3f}" for n in ns)
    notes = f"""
All values and derivatives are dlref's (`jax.grad` through the hand-written backward
passes); sigmoid matches `scipy.special.expit` to {ref_sigmoid:.1e} and softplus matches
`numpy.logaddexp(0, x)` to {ref_softplus:.1e} on [-5, 5].

- **Hinton's sum of shifted sigmoids approximates softplus**: the largest
  `|sum_{{i=1..N}} sigmoid(x - i + 0.5) - log(1 + e^x)|` over x in [-5, N - 5]
  ({per_n}; a grid of step 0.005, the worst point refined by scipy's `minimize_scalar`)
  is at most {worst_all:.6f}, within the bound dlref's tests state, {HINTON_BOUND} for
  N >= 10. The worst case is N = 10 ({worst[ns[0]]:.6f} at x = {worst_at[ns[0]]:.4f}),
  where the tail term `softplus(x - N)` adds {tail:.1e}: a bound of 0.0106 would be
  exceeded there, though it holds from N = 11 ({worst[11]:.6f}); the error falls with N to
  the midpoint-rule error {worst[ns[-1]]:.6f} at x = 0.
  The sum is the midpoint rule for the integral of `sigmoid(x - t)` over t in [0, N],
  which is `softplus(x) - softplus(x - N)`; so the approximation needs x well below N:
  at x = N = {N_SHOW} the error is already {at_n:.3f} (about -log 2), and past N the
  sum levels off at N while softplus keeps growing (top right panel).
- **Loose: "Formula for ReLU"**. The sum approximates softplus, a smooth version of
  ReLU; softplus and ReLU differ by up to log 2 = {relu_gap:.3f} (at x = 0). Nair and
  Hinton (2010) then approximate the sum by `max(0, x)` (plus noise): that is where
  ReLU comes from.
- **Loose: "activate weights"**. An activation is applied to a unit's pre-activation
  `x = v w^T + b` (the cheat sheet's own formula), not to the weights. Sigmoid's range is
  (0, 1) (0 and 1 are reached only in floating point, in the tails); ReLU's is [0, inf).
- **ReLU's gradient**: relu'(x) = 1 at {relu_pos:.0%} of the sampled x > 0 (and 0 for
  x < 0), so it does not shrink a gradient passing through an active unit, while
  sigmoid' <= 1/4 always does. Whether that keeps gradients alive through depth is an
  experiment with layers (to come); a unit with x < 0 passes no gradient at all
  ("dead ReLU").
- **Wrong: "Tanh is a function used to initialize the weights"**. tanh is an
  activation function, like sigmoid: `tanh(x) = 2 sigmoid(2x) - 1`, with range (-1, 1).
  Weights are initialized by random draws (Glorot/Xavier, He), not by tanh.
- **Stronger gradients near 0 (holds)**: tanh'(0) = {tanh0:g} is four times
  sigmoid'(0) = {sigmoid0:g}; tanh' is largest at x = {tanh_argmax:g}, and on the
  normalized range [-1, 1] tanh' >= {tanh_min:.4f} (= 1 - tanh(1)^2) while
  sigmoid' <= {sigmoid_max:.4f}. (The cheat sheet says inputs are in [0, 1] right after
  saying they are centred on 0; on [0, 1] the numbers are the same, by symmetry.)
- **"Avoids bias" (holds, read as zero-centred outputs)**: for 100,000 standard normal
  inputs the mean output of tanh is {mean_tanh:+.4f} (positive {pos_tanh:.1%} of the time)
  and of sigmoid {mean_sigmoid:.4f} (positive {pos_sigmoid:.0%} of the time). With
  all-positive inputs, the gradients of a next-layer unit's weights, `delta * input`,
  all share the sign of its error `delta`: the weights can only all rise or all fall
  together in one step, which zig-zags; tanh's outputs of both signs avoid that.
"""
    return examples.result(
        "holds with a caveat" if holds else "does not hold",
        summary,
        figure,
        notes,
        hinton_max_error=worst,
        hinton_argmax=worst_at,
        hinton_error_at_n=at_n,
        softplus_relu_gap=relu_gap,
        tanh_grad_0=tanh0,
        sigmoid_grad_0=sigmoid0,
        tanh_grad_min_unit=tanh_min,
        sigmoid_grad_max_unit=sigmoid_max,
        relu_grad_one_fraction=relu_pos,
        mean_tanh=mean_tanh,
        mean_sigmoid=mean_sigmoid,
        positive_tanh=pos_tanh,
        positive_sigmoid=pos_sigmoid,
        reference_sigmoid=ref_sigmoid,
        reference_softplus=ref_softplus,
    )


if __name__ == "__main__":
    examples.main_one("activations", run)
