"""Sigmoid, ReLU and tanh: each with its derivative; Hinton's sum of shifted sigmoids
against softplus; tanh'(0) = 1 against sigmoid'(0) = 1/4.

Every value and derivative is dlref's (``jax.grad`` runs the hand-written backward
passes); scipy's ``expit`` and numpy's ``logaddexp`` are the independent references for
sigmoid and softplus.
"""

from __future__ import annotations

import functools
import itertools
import pathlib

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import scipy.optimize
import scipy.special

import examples
from dlref import activations as act
from dlref import layers, losses

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
USES = (
    "dlref/activations/_basic.py",
    "dlref/layers/_dense.py",
    "dlref/losses/_cross_entropy.py",
    "dlref/losses/_regression.py",
)

# Zero-centred outputs in training: sigmoid, sigmoid - 1/2 (the same derivative, centred:
# tanh(x/2)/2) and tanh, as the hidden activations of an MLP 64-64-64-10 on digits.
HIDDEN_ACTS = {
    "sigmoid": act.sigmoid,
    "sigmoid - 1/2": lambda z: act.sigmoid(z) - 0.5,
    "tanh": act.tanh,
}
TRAIN_LRS = (0.1, 0.3, 1.0, 3.0, 10.0)

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


@functools.partial(jax.jit, static_argnames=("name",))
def _train_hidden(params, lrs, x, y, batches, x_val, y_val, *, name: str):
    """Mini-batch gradient descent of an MLP with hidden activation ``name`` (dlref's dense,
    activations and cross-entropy), vmapped over stacked ``(params, lr)``: the loss curve
    and the final validation loss and accuracy."""
    f = HIDDEN_ACTS[name]

    def logits(params, x):
        a = x
        for w, b in params[:-1]:
            a = f(layers.dense(a, w, b))
        w, b = params[-1]
        return layers.dense(a, w, b)

    def loss(params, x, y):
        return jnp.mean(losses.softmax_cross_entropy_with_integer_labels(logits(params, x), y))

    def one(params, lr):
        def step(params, idx):
            value, grads = jax.value_and_grad(loss)(params, x[idx], y[idx])
            return jax.tree.map(lambda p, g: p - lr * g, params, grads), value

        params, curve = jax.lax.scan(step, params, batches)
        predicted = jnp.argmax(logits(params, x_val), axis=-1).astype(jnp.int32)
        return curve, loss(params, x_val, y_val), jnp.mean((predicted == y_val).astype(jnp.float32))

    return jax.vmap(one)(params, lrs)


def centring(seeds: int, steps: int) -> dict:
    """Does zero-centring help training? Each hidden activation of :data:`HIDDEN_ACTS` with
    its own learning rate from :data:`TRAIN_LRS`, chosen by the mean validation loss over
    the seeds (1347 training digits: 1000 to train, 347 to validate; stratified, seed 0);
    mini-batches of 100, LeCun normal weights, the same inits and batches for all."""
    from sklearn.model_selection import train_test_split

    data = examples.digits()
    x_tr, x_val, y_tr, y_val = train_test_split(
        data["x_train"], data["y_train"], train_size=1000, random_state=0, stratify=data["y_train"]
    )
    rng = np.random.default_rng(5)
    sizes = (64, 64, 64, 10)
    draws = [
        (rng.standard_normal((seeds, a, b)) / np.sqrt(a), np.zeros((seeds, b)))
        for a, b in itertools.pairwise(sizes)
    ]
    reps = len(TRAIN_LRS)
    params = [
        (
            jnp.asarray(np.tile(w, (reps, 1, 1)), jnp.float32),
            jnp.asarray(np.tile(b, (reps, 1)), jnp.float32),
        )
        for w, b in draws
    ]
    lrs = jnp.asarray(np.repeat(TRAIN_LRS, seeds), jnp.float32)
    batches = jnp.asarray(np.stack([rng.choice(1000, 100, replace=False) for _ in range(steps)]))
    arrays = [jnp.asarray(a) for a in (x_tr, y_tr)]
    out = {}
    for name in HIDDEN_ACTS:
        curve, v_loss, v_acc = _train_hidden(
            params, lrs, *arrays, batches, jnp.asarray(x_val), jnp.asarray(y_val), name=name
        )
        curve = np.asarray(curve, np.float64).reshape(reps, seeds, steps)
        v_loss = np.asarray(v_loss, np.float64).reshape(reps, seeds)
        v_acc = np.asarray(v_acc, np.float64).reshape(reps, seeds)
        mean_val = np.where(np.all(np.isfinite(v_loss), axis=1), v_loss.mean(axis=1), np.inf)
        i = int(np.argmin(mean_val))
        final = curve[i, :, -20:].mean(axis=1)  # the training loss at the end, per seed
        out[name] = {
            "lr": TRAIN_LRS[i],
            "curve": curve[i].mean(axis=0),
            "train_loss": examples.mean_interval(final, within=(0, np.inf)),
            "val_accuracy": examples.mean_interval(v_acc[i], within=(0, 1)),
            "final": final,
        }
    return {"runs": out, "seeds": seeds, "steps": steps}


@jax.jit
def _fit_outputs(x, p_true, y_binary, y_positive, x_test, p_test, yp_test):
    """Linear models with a sigmoid or a ReLU output unit, 2000 steps of gradient descent
    (lr 0.1) from zero: on 0/1 labels with the binary cross-entropy (logistic regression),
    and on positive targets with MSE. Returns, per output unit, the test error of the
    probabilities (mean |p - p_true|) and the test MSE of the positive targets."""
    d = x.shape[1]

    def fit(g, loss):
        def step(wb, _):
            grads = jax.grad(lambda wb: loss(g(x @ wb[0] + wb[1])))(wb)
            return jax.tree.map(lambda p, q: p - 0.1 * q, wb, grads), None

        start = (jnp.zeros(d, x.dtype), jnp.asarray(0.5, x.dtype))
        wb, _ = jax.lax.scan(step, start, None, length=2000)
        return lambda z: g(z @ wb[0] + wb[1])

    results = {}
    for name, g in (("sigmoid", act.sigmoid), ("relu", act.relu)):
        prob = fit(
            g, lambda p: jnp.mean(losses.binary_cross_entropy(p[:, None], y_binary[:, None]))
        )
        pos = fit(g, lambda v: losses.mse(v, y_positive))
        results[name] = (
            jnp.mean(jnp.abs(prob(x_test) - p_test)),
            losses.mse(pos(x_test), yp_test),
        )
    return results


def output_units() -> dict:
    """Claim: "sigmoid is better for logistic regression, ReLU better at representing
    positive numbers": the two as the output unit of a linear model (5 standard normal
    features, 2000 training and 2000 test examples, seed 0): (a) 0/1 labels drawn with
    probability ``sigmoid(x w)``, fitted with the binary cross-entropy; (b) positive targets
    ``exp(x w / 2)`` (log-normal), fitted with MSE."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal(5)
    x, x_test = rng.standard_normal((2000, 5)), rng.standard_normal((2000, 5))
    p, p_test = scipy.special.expit(x @ w), scipy.special.expit(x_test @ w)
    y = (rng.random(2000) < p).astype(np.float64)
    yp, yp_test = np.exp(x @ w / 2), np.exp(x_test @ w / 2)
    out = _fit_outputs(*(jnp.asarray(a) for a in (x, p, y, yp, x_test, p_test, yp_test)))
    return {
        name: {"prob_error": float(a), "positive_mse": float(b)} for name, (a, b) in out.items()
    } | {"target_variance": float(np.var(yp_test)), "target_max": float(yp_test.max())}


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

    cent = centring(seeds=3 if quick else 10, steps=150 if quick else 400)
    outs = output_units()

    fig, axes = plt.subplots(3, 2, figsize=(13, 14), layout="constrained")
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

    ax = axes[2, 0]
    for (name, r), colour in zip(cent["runs"].items(), ("C0", "C4", "C2"), strict=True):
        smooth = np.convolve(r["curve"], np.ones(20) / 20, mode="valid")
        ax.semilogy(
            np.arange(20, cent["steps"] + 1), smooth, color=colour, label=f"{name} (lr {r['lr']:g})"
        )
    ax.set_xlabel("step (mini-batches of 100)")
    ax.set_ylabel("training loss (20-step average)")
    ax.set_title(
        f"hidden activation, each at its validation-chosen lr: mean of {cent['seeds']} seeds",
        fontsize=10,
    )
    ax.legend(loc="upper right")

    ax = axes[2, 1]
    names = ["sigmoid", "relu"]
    ax.bar(
        np.arange(2) - 0.2,
        [outs[n]["prob_error"] for n in names],
        0.4,
        color="C0",
        label="logistic regression: mean |p - p_true|",
    )
    ax.bar(
        np.arange(2) + 0.2,
        [outs[n]["positive_mse"] / outs["target_variance"] for n in names],
        0.4,
        color="C1",
        label="positive targets: test MSE / target variance",
    )
    ax.set_xticks(range(2), [f"{n} output unit" for n in names])
    ax.set_yscale("log")
    ax.set_ylim(top=10)  # room above the bars for the legend
    ax.set_title("the output unit of a linear model (one data set, seed 0)", fontsize=10)
    ax.legend(loc="upper center", fontsize=8)
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

    sig, relu_out = outs["sigmoid"], outs["relu"]
    out_ok = (
        sig["prob_error"] < relu_out["prob_error"]
        and relu_out["positive_mse"] < sig["positive_mse"]
    )
    outputs_verdict = "holds with a caveat" if out_ok else "does not hold"
    outputs_text = (
        f"a linear model's output unit, fitted by gradient descent: on labels drawn with "
        f"probability sigmoid(x w), the sigmoid unit's probabilities are off by "
        f"{sig['prob_error']:.3f} on average, the ReLU unit's by {relu_out['prob_error']:.3f} "
        f"(its output is not a probability: 0 on half the inputs, unbounded above); on "
        f"positive targets up to {outs['target_max']:.1f}, the ReLU unit's test MSE is "
        f"{relu_out['positive_mse']:.2f}, the sigmoid unit's {sig['positive_mse']:.2f} (it "
        "cannot exceed 1). The ranges decide this for an output unit only; for hidden units "
        "the next layer's weights rescale anything, and the range says nothing"
    )
    runs_c = cent["runs"]
    s_lo = runs_c["sigmoid"]["train_loss"][1]
    c_hi = runs_c["sigmoid - 1/2"]["train_loss"][2]
    centred_better = c_hi < s_lo
    centring_verdict = "holds" if centred_better else "not shown here"
    centring_text = (
        f"an MLP 64-64-64-10 on 1000 digits, {cent['seeds']} seeds, {cent['steps']} steps of "
        f"mini-batch gradient descent, each activation at its own lr from "
        f"{{{', '.join(f'{lr:g}' for lr in TRAIN_LRS)}}} chosen on 347 held-out images; the "
        "training loss at the end (mean of the last 20 steps; t 95% interval over the seeds): "
        + "; ".join(
            f"{n} {r['train_loss'][0]:.3f} [{r['train_loss'][1]:.3f}, {r['train_loss'][2]:.3f}] "
            f"(lr {r['lr']:g}, validation accuracy {r['val_accuracy'][0]:.1%})"
            for n, r in runs_c.items()
        )
        + ". `sigmoid - 1/2` has sigmoid's derivative exactly and only differs in being "
        "centred, so it isolates the centring: "
        + (
            "centred outputs train faster (the intervals do not overlap)."
            if centred_better
            else "the intervals overlap, so the centring alone is not shown to help here."
        )
    )
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
- **"Sigmoid is better for logistic regression, ReLU at representing positive numbers"
  ({outputs_verdict}, as output units)**: {outputs_text}
- **Zero-centred outputs in training ({centring_verdict})**: {centring_text}
- **"Avoids bias" (read as zero-centred outputs)**: for 100,000 standard normal
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
        output_units=outs,
        centring={
            n: {
                "lr": r["lr"],
                "train_loss": list(r["train_loss"]),
                "val_accuracy": list(r["val_accuracy"]),
            }
            for n, r in runs_c.items()
        },
        claims={
            "sigmoid_vs_relu_outputs": (outputs_verdict, outputs_text),
            "tanh_centred_training": (
                "holds" if centred_better else "holds with a caveat",
                f"tanh's outputs are zero-centred (mean {mean_tanh:+.4f}, sigmoid's "
                f"{mean_sigmoid:.3f}); in training, at each one's tuned lr, the centred sigmoid "
                f"ends at loss {runs_c['sigmoid - 1/2']['train_loss'][0]:.3f} against "
                f"sigmoid's {runs_c['sigmoid']['train_loss'][0]:.3f} ({cent['seeds']} seeds): "
                + (
                    "centring speeds training, the intervals apart"
                    if centred_better
                    else "the intervals overlap, no speed-up from centring alone is shown"
                ),
            ),
        },
    )


if __name__ == "__main__":
    examples.main_one("activations", run)
