"""Dropout: does it narrow the gap between training and test accuracy?

An over-parameterized MLP (64 -> 512 -> 512 -> 10, ReLU; 300k weights) on 200 training
images of scikit-learn's digits (the other 1597 are the test set), trained with and
without dropout on its hidden layers: dlref's ``dense``, ``relu`` and ``dropout`` (inverted
dropout, a fresh key every step, ``training=False`` at evaluation), full-batch Adam, the
same initializations (several seeds) and the same number of steps. We compare the
train/test accuracy gap and the test accuracy, and follow both during training.
"""

from __future__ import annotations

import functools
import itertools
import pathlib

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import examples
from dlref import activations, layers, losses, regularizers

TITLE = "Dropout"
CLAIM = (
    "[1] \u201cIt prevents overfitting and provides a way of approximately combining "
    "exponentially many different neural network architectures efficiently\u201d(Hinton). "
    "This method randomly picks visible and hidden units to drop from the network. This is "
    "usually determined by picking a layer percentage dropout."
)
# The dlref code the results depend on (hashed into the JSON: examples.code_files)
USES = (
    "dlref/activations/_basic.py",
    "dlref/layers/_dense.py",
    "dlref/losses/_cross_entropy.py",
    "dlref/regularizers.py",
)

SIZES = (64, 256, 256, 10)
N_TRAIN = 200
LEARNING_RATE = 1e-3
RATE = 0.5  # the probability of dropping a hidden unit
INPUT_RATE = 0.2  # and an input pixel
EVAL_EVERY = 25
# The baselines: a smaller MLP, each regularizer at several strengths, each with its own lr.
BASE_SIZES = (64, 128, 128, 10)
BASE_LRS = (1e-3, 3e-3)
BASE_DROPOUT = (0.1, 0.3, 0.5)  # hidden layers
BASE_DECAY = (1e-4, 1e-3, 1e-2)
SETTING = {
    "none": "no regularizer",
    "early stopping": "each seed at its best validation step",
}  # lam of lam * l2(w), l2 = 0.5 |w|^2 over the weights


def init(seed: int, count: int) -> list:
    """``count`` stacked MLPs as dlref's ``init_mlp`` draws them (LeCun normal weights, zero
    biases), drawn with NumPy (nothing to compile)."""
    rng = np.random.default_rng(seed)
    return [
        (
            jnp.asarray(rng.standard_normal((count, a, b)) / np.sqrt(a), jnp.float32),
            jnp.zeros((count, b), jnp.float32),
        )
        for a, b in itertools.pairwise(SIZES)
    ]


def forward(params, x, key, *, rate: float, input_rate: float, training: bool) -> jax.Array:
    """Logits of the MLP with dropout on its input and hidden layers (dlref's ops)."""
    keys = jax.random.split(key, len(params))
    a = layers.dropout(x, rate=input_rate, key=keys[0], training=training)
    for i, (w, b) in enumerate(params[:-1]):
        a = activations.relu(layers.dense(a, w, b))
        a = layers.dropout(a, rate=rate, key=keys[i + 1], training=training)
    w, b = params[-1]
    return layers.dense(a, w, b)


def _loss(params, x, y, key, rate, input_rate):
    logits = forward(params, x, key, rate=rate, input_rate=input_rate, training=True)
    return jnp.mean(losses.softmax_cross_entropy_with_integer_labels(logits, y))


def _accuracy(params, x, y, key, rate, input_rate):
    # training=False: dropout is the identity (dlref's dropout still asks for a key)
    logits = forward(params, x, key, rate=rate, input_rate=input_rate, training=False)
    predicted = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return jnp.mean((predicted == y).astype(jnp.float32))


@functools.partial(jax.jit, static_argnames=("rate", "input_rate", "evals"))
def train(params, keys, x, y, x_test, y_test, *, rate: float, input_rate: float, evals: int):
    """Full-batch Adam, ``evals * EVAL_EVERY`` steps, vmapped over stacked params and keys.
    Returns the trained params and the train and test accuracy (and the training loss)
    after every ``EVAL_EVERY`` steps."""

    def one(params, key):
        def step(carry, i):
            params, state = carry
            value, grads = jax.value_and_grad(_loss)(
                params, x, y, jax.random.fold_in(key, i), rate, input_rate
            )
            params, state = examples.adam_update(params, grads, state, LEARNING_RATE)
            return (params, state), value

        def chunk(carry, j):
            carry, values = jax.lax.scan(step, carry, j * EVAL_EVERY + jnp.arange(EVAL_EVERY))
            params = carry[0]
            record = (
                _accuracy(params, x, y, key, rate, input_rate),
                _accuracy(params, x_test, y_test, key, rate, input_rate),
                values[-1],
            )
            return carry, record

        carry = (params, examples.adam_init(params))
        (params, _), records = jax.lax.scan(chunk, carry, jnp.arange(evals))
        return params, records

    return jax.vmap(one)(params, keys)


def _base_loss(params, x, y, key, rate, decay):
    logits = forward(params, x, key, rate=rate, input_rate=0.0, training=True)
    penalty = sum(regularizers.l2(w) for w, _ in params)
    return jnp.mean(losses.softmax_cross_entropy_with_integer_labels(logits, y)) + decay * penalty


@functools.partial(jax.jit, static_argnames=("rate", "evals"))
def train_baselines(params, keys, lrs, decays, x, y, x_val, y_val, x_test, y_test, *, rate, evals):
    """Full-batch Adam with dropout at ``rate`` (hidden layers) and weight decay
    ``decays``, vmapped over stacked ``(params, key, lr, decay)``: the validation and test
    accuracy after every ``EVAL_EVERY`` steps, ``(models, evals)`` each."""

    def one(params, key, lr, decay):
        def step(carry, i):
            params, state = carry
            grads = jax.grad(_base_loss)(params, x, y, jax.random.fold_in(key, i), rate, decay)
            return examples.adam_update(params, grads, state, lr), None

        def chunk(carry, j):
            carry, _ = jax.lax.scan(step, carry, j * EVAL_EVERY + jnp.arange(EVAL_EVERY))
            p = carry[0]
            return carry, (
                _accuracy(p, x_val, y_val, key, 0.0, 0.0),
                _accuracy(p, x_test, y_test, key, 0.0, 0.0),
            )

        _, records = jax.lax.scan(chunk, (params, examples.adam_init(params)), jnp.arange(evals))
        return records

    return jax.vmap(one)(params, keys, lrs, decays)


def baselines(seeds: int, steps: int) -> dict:
    """Dropout against weight decay and early stopping, each at its own best strength and
    learning rate (chosen by the mean validation accuracy over the seeds); the 1597 held-out
    digits split into 597 for validation and 1000 for the test (stratified, seed 0)."""
    from sklearn.model_selection import train_test_split

    data = examples.digits(n_train=N_TRAIN)
    x_val, x_test, y_val, y_test = train_test_split(
        data["x_test"], data["y_test"], test_size=1000, random_state=0, stratify=data["y_test"]
    )
    arrays = [
        jnp.asarray(a) for a in (data["x_train"], data["y_train"], x_val, y_val, x_test, y_test)
    ]
    evals = steps // EVAL_EVERY
    rng = np.random.default_rng(3)
    draws = [
        (rng.standard_normal((seeds, a, b)) / np.sqrt(a), np.zeros((seeds, b)))
        for a, b in itertools.pairwise(BASE_SIZES)
    ]
    keys = np.asarray(jax.random.key_data(jax.random.split(examples.key(4), seeds)))

    def grid(strengths: tuple, count: int):
        reps = len(BASE_LRS) * count
        params = [
            (
                jnp.asarray(np.tile(w, (reps, 1, 1)), jnp.float32),
                jnp.asarray(np.tile(b, (reps, 1)), jnp.float32),
            )
            for w, b in draws
        ]
        k = jax.random.wrap_key_data(jnp.asarray(np.tile(keys, (reps, 1))), impl="rbg")
        lr = np.repeat(np.tile(BASE_LRS, count), seeds)
        st = np.repeat(np.repeat(strengths, len(BASE_LRS)), seeds)
        return params, k, jnp.asarray(lr, jnp.float32), jnp.asarray(st, jnp.float32)

    def shaped(a, count):
        return np.asarray(a, np.float64).reshape(count, len(BASE_LRS), seeds, evals)

    # rate 0: no regularizer (decay 0) and weight decay, in one compilation
    decays = (0.0, *BASE_DECAY)
    params, k, lr, st = grid(decays, len(decays))
    val, test = train_baselines(params, k, lr, st, *arrays, rate=0.0, evals=evals)
    val_d, test_d = shaped(val, len(decays)), shaped(test, len(decays))
    val_r, test_r = [], []
    for rate in BASE_DROPOUT:
        params, k, lr, st = grid((0.0,), 1)
        val, test = train_baselines(params, k, lr, st, *arrays, rate=rate, evals=evals)
        val_r.append(shaped(val, 1)[0])
        test_r.append(shaped(test, 1)[0])
    val_r, test_r = np.stack(val_r), np.stack(test_r)

    methods = {}

    def pick(name, val_final, test_final, labels):
        # val_final, test_final: (strengths, lrs, seeds); choose by the mean validation accuracy
        means = val_final.mean(axis=2)
        i, j = np.unravel_index(int(np.argmax(means)), means.shape)
        methods[name] = {
            "setting": labels[i],
            "lr": BASE_LRS[j],
            "test": examples.mean_interval(test_final[i, j]),
            "per_seed": test_final[i, j],
            "sweep": {labels[a]: float(means[a].max()) for a in range(len(labels))},
        }

    pick("none", val_d[:1, ..., -1], test_d[:1, ..., -1], ["-"])
    pick(
        "weight decay", val_d[1:, ..., -1], test_d[1:, ..., -1], [f"lam {d:g}" for d in BASE_DECAY]
    )
    pick("dropout", val_r[..., -1], test_r[..., -1], [f"rate {r:g}" for r in BASE_DROPOUT])
    # early stopping: no regularizer, each seed stopped at its best validation accuracy
    best = np.argmax(val_d[0], axis=-1)  # (lrs, seeds)
    val_es = np.take_along_axis(val_d[0], best[..., None], axis=-1)[..., 0]
    test_es = np.take_along_axis(test_d[0], best[..., None], axis=-1)[..., 0]
    pick("early stopping", val_es[None], test_es[None], ["-"])
    methods["early stopping"]["stop_step"] = float(np.mean((best + 1) * EVAL_EVERY))
    return {"methods": methods, "seeds": seeds, "steps": steps}


@functools.partial(jax.jit, static_argnames=("masks",))
def ensemble(params, x, y, key, *, masks: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The test accuracy of the average of the softmax over ``1..masks`` random dropout
    masks (training=True: sampled sub-networks), of the full network with training=False
    (dlref's inverted dropout: the weight-scaling rule), and the fraction of examples
    where the ``masks``-average and the full network predict the same class."""

    def probs(k):
        logits = forward(params, x, k, rate=RATE, input_rate=INPUT_RATE, training=True)
        return jax.nn.softmax(logits, axis=-1)

    sampled = jax.vmap(probs)(jax.random.split(key, masks))  # (masks, n, classes)
    running = jnp.cumsum(sampled, axis=0)
    predicted = jnp.argmax(running, axis=-1).astype(jnp.int32)
    accuracy = jnp.mean((predicted == y[None, :]).astype(jnp.float32), axis=1)
    full = forward(params, x, key, rate=RATE, input_rate=INPUT_RATE, training=False)
    full_pred = jnp.argmax(full, axis=-1).astype(jnp.int32)
    full_acc = jnp.mean((full_pred == y).astype(jnp.float32))
    agree = jnp.mean((full_pred == predicted[-1]).astype(jnp.float32))
    return accuracy, full_acc, agree


def run(out_dir: pathlib.Path, quick: bool = False) -> dict:
    examples.setup()
    seeds = 3 if quick else 10
    steps = 300 if quick else 1000
    masks = 64
    evals = steps // EVAL_EVERY
    data = examples.digits(n_train=N_TRAIN)
    x, y = jnp.asarray(data["x_train"]), jnp.asarray(data["y_train"])
    x_test, y_test = jnp.asarray(data["x_test"]), jnp.asarray(data["y_test"])
    params = init(0, seeds)
    keys = jax.random.split(examples.key(1), seeds)
    runs = {}
    for name, rate, input_rate in (("no dropout", 0.0, 0.0), ("dropout", RATE, INPUT_RATE)):
        final, (train_acc, test_acc, loss) = train(
            params, keys, x, y, x_test, y_test, rate=rate, input_rate=input_rate, evals=evals
        )
        runs[name] = {
            "params": final,
            "train": np.asarray(train_acc, np.float64),
            "test": np.asarray(test_acc, np.float64),
            "loss": np.asarray(loss, np.float64),
        }
    for r in runs.values():
        r["gap"] = r["train"] - r["test"]
        r["final_train"] = r["train"][:, -1]
        r["final_test"] = r["test"][:, -1]
        r["final_gap"] = r["gap"][:, -1]
    plain, drop = runs["no dropout"], runs["dropout"]
    gap_plain, gap_drop = float(plain["final_gap"].mean()), float(drop["final_gap"].mean())
    test_plain, test_drop = float(plain["final_test"].mean()), float(drop["final_test"].mean())
    train_plain, train_drop = float(plain["final_train"].mean()), float(drop["final_train"].mean())
    gain = drop["final_test"] - plain["final_test"]  # per seed, paired (same init)
    seeds_better = int(np.sum(gain > 0))
    # The best test accuracy along the way (an early-stopping oracle), per seed.
    peak_plain, peak_drop = (
        float(plain["test"].max(axis=1).mean()),
        float(drop["test"].max(axis=1).mean()),
    )

    # "Combining exponentially many networks": averaging sampled sub-networks (seed 0).
    first = jax.tree.map(lambda a: a[0], drop["params"])
    mc_acc, full_acc, agree = ensemble(first, x_test, y_test, examples.key(2), masks=masks)
    mc_acc = np.asarray(mc_acc, np.float64)
    full_acc, agree = float(full_acc), float(agree)

    base = baselines(seeds=4 if quick else 10, steps=200 if quick else 500)
    bm = base["methods"]

    # Figure.
    fig, axes = plt.subplots(1, 4, figsize=(24, 5.4), layout="constrained")
    t = (np.arange(evals) + 1) * EVAL_EVERY
    ax = axes[0]
    for (name, r), colour in zip(runs.items(), ("C3", "C0"), strict=True):
        ax.plot(t, r["train"].mean(axis=0), "--", color=colour, label=f"{name}: train")
        ax.plot(t, r["test"].mean(axis=0), "-", color=colour, label=f"{name}: test")
    ax.set_ylim(0.8, 1.005)
    ax.set_xlabel("step (full batch of 200 images, Adam)")
    ax.set_ylabel(f"accuracy (mean of {seeds} seeds)")
    ax.set_title("training on 200 digits, testing on 1597")
    ax.legend(loc="lower right")

    ax = axes[1]
    jitter = np.linspace(-0.1, 0.1, seeds)
    for i, r in enumerate(runs.values()):
        colour = ("C3", "C0")[i]
        ax.plot(
            i + jitter,
            r["final_gap"] * 100,
            "o",
            color=colour,
            alpha=0.6,
        )
        ax.plot([i - 0.2, i + 0.2], [r["final_gap"].mean() * 100] * 2, "-", color=colour, lw=3)
        ax.text(
            i + 0.22,
            r["final_gap"].mean() * 100,
            f"gap {r['final_gap'].mean():.1%}\ntest {r['final_test'].mean():.1%}",
            va="center",
            fontsize=9,
        )
    for j in range(seeds):
        ax.plot(
            [jitter[j], 1 + jitter[j]],
            [plain["final_gap"][j] * 100, drop["final_gap"][j] * 100],
            "-",
            color="grey",
            lw=0.6,
        )
    ax.set_xticks([0, 1], list(runs))
    ax.set_xlim(-0.5, 1.8)
    ax.set_ylabel("train accuracy - test accuracy (points), at the end")
    ax.set_title(f"the gap, per seed (lines join the same init), step {steps}")

    ax = axes[2]
    ax.plot(
        np.arange(1, masks + 1), mc_acc, "-", color="C0", label="average of n sampled sub-networks"
    )
    ax.axhline(
        full_acc, color="k", ls="--", label="the full network, weights scaled (training=False)"
    )
    ax.axhline(plain["final_test"][0], color="C3", ls=":", label="trained without dropout")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("n: dropout masks averaged (softmax outputs)")
    ax.set_ylabel("test accuracy")
    ax.set_title("dropout as an ensemble (seed 0)")
    ax.legend(loc="lower right", fontsize=9)

    ax = axes[3]
    for i, r in enumerate(bm.values()):
        mean, lo, hi = r["test"]
        ax.errorbar(
            [i],
            [mean * 100],
            yerr=[[(mean - lo) * 100], [(hi - mean) * 100]],
            fmt="o",
            color=f"C{i}",
            capsize=5,
            ms=8,
        )
        ax.plot(
            np.full(len(r["per_seed"]), i + 0.15),
            r["per_seed"] * 100,
            ".",
            color=f"C{i}",
            alpha=0.5,
        )
    ax.set_xticks(
        range(len(bm)),
        [
            f"{n}\n({r['setting'] + ', ' if r['setting'] != '-' else ''}lr {r['lr']:g})"
            for n, r in bm.items()
        ],
        fontsize=8,
    )
    ax.set_xlim(-0.5, len(bm) - 0.3)
    ax.set_ylabel("test accuracy (%), 1000 images")
    ax.set_title(
        f"MLP 64-128-128-10: mean of {base['seeds']} seeds with t 95% intervals (dots: seeds)",
        fontsize=10,
    )
    figure = examples.save(fig, out_dir, "dropout")

    narrows = gap_drop < gap_plain
    verdict = "holds with a caveat" if narrows and test_drop > test_plain else "does not hold"
    summary = (
        f"MLP 64-256-256-10 on 200 digits ({seeds} seeds, {steps} Adam steps): dropout "
        f"(0.2 input, 0.5 hidden) narrows the train/test accuracy gap from {gap_plain:.1%} to "
        f"{gap_drop:.1%} and raises test accuracy from {test_plain:.1%} to {test_drop:.1%} "
        f"(better for {seeds_better} of {seeds} seeds); both fit the training set "
        f"({train_plain:.0%} and {train_drop:.0%}); the full network predicts as the average "
        f"of {masks} sampled sub-networks on {agree:.1%} of test images"
    )
    per_seed = ", ".join(f"{g * 100:+.1f}" for g in gain)
    base_text = (
        f"an MLP 64-128-128-10 on the same {N_TRAIN} images, {base['seeds']} seeds, "
        f"{base['steps']} full-batch Adam steps; the 1597 other images split into 597 for "
        "validation and 1000 for the test; dropout on the hidden layers at rate "
        f"{', '.join(f'{r:g}' for r in BASE_DROPOUT)}, weight decay `lam * l2(w)` at lam "
        f"{', '.join(f'{d:g}' for d in BASE_DECAY)}, early stopping (no regularizer, each seed "
        f"stopped at its best validation accuracy, checked every {EVAL_EVERY} steps), and "
        "none; each method's strength and learning rate "
        f"({', '.join(f'{lr:g}' for lr in BASE_LRS)}) chosen by the mean validation accuracy"
    )
    base_rows = "\n".join(
        f"| {name} | {r['setting'] if r['setting'] != '-' else SETTING[name]}, lr {r['lr']:g} | "
        f"{r['test'][0]:.1%} "
        f"[{r['test'][1]:.1%}, {r['test'][2]:.1%}] |"
        for name, r in bm.items()
    )
    d_lo, none_hi = bm["dropout"]["test"][1], bm["none"]["test"][2]
    others = max(bm["weight decay"]["test"][0], bm["early stopping"]["test"][0])
    if d_lo > none_hi and bm["dropout"]["test"][0] >= others:
        base_finding = (
            "Dropout beats no regularization, and is at least as good as the others here."
        )
    elif d_lo > none_hi:
        base_finding = (
            "Dropout beats no regularization (the intervals do not overlap), but another "
            "regularizer does as well or better: it is one regularizer among several."
        )
    else:
        base_finding = (
            "Dropout's gain over no regularization is within the seeds' spread (the intervals "
            "overlap): on this problem it is one regularizer among several, not a cure."
        )
    notes = f"""
An MLP 64 -> 256 -> 256 -> 10 with ReLU (85k weights; LeCun normal init as dlref's
`init_mlp`, {seeds} seeds) trained on {N_TRAIN} images of scikit-learn's digits
(stratified, seed 0; the other 1597 are the test set) with full-batch Adam (learning
rate {LEARNING_RATE}) for {steps} steps, the same init for both runs of a seed. Dropout:
dlref's `dropout` after the input (rate {INPUT_RATE}) and after each hidden layer (rate
{RATE}), inverted (kept units scaled by `1 / (1 - rate)`), a fresh key every step
(`fold_in(key, step)`), and `training=False` for every evaluation.

| | train accuracy | test accuracy | gap | best test accuracy during training |
|---|---|---|---|---|
| no dropout | {train_plain:.1%} | {test_plain:.1%} | {gap_plain:.1%} | {peak_plain:.1%} |
| dropout | {train_drop:.1%} | {test_drop:.1%} | {gap_drop:.1%} | {peak_drop:.1%} |

- **Dropout narrows the gap here, a little**: by {(gap_plain - gap_drop) * 100:.1f} points
  on average, all of it from a higher test accuracy (per seed, dropout minus none, in
  points: {per_seed}). Both networks still fit the 200 training images perfectly: dropout
  does not stop the network from memorizing them, and the gap stays at
  {gap_drop:.0%}.
- **Caveat: "prevents overfitting" is too strong** (and the quote is from Srivastava,
  Hinton et al. 2014, "Dropout: A Simple Way to Prevent Neural Networks from
  Overfitting"). Dropout is a regularizer that
  reduces overfitting by an amount that depends on the data, the network and the rate;
  here it is worth {(test_drop - test_plain) * 100:.1f} points of test accuracy. It is
  not a switch that turns overfitting off.
- **"Approximately combining exponentially many networks" (holds here)**: each training
  step trains one sampled sub-network (a random mask), and evaluating the full network
  with dlref's inverted scaling (`training=False`) approximates the average of all of
  them: its test accuracy is {full_acc:.1%} against {mc_acc[-1]:.1%} for the average of
  {masks} sampled sub-networks' softmax outputs, and the two predict the same class on
  {agree:.1%} of the test images (right panel). For a network with nonlinear layers the
  scaled network is an approximation of the geometric-mean ensemble, exact only for one
  linear layer with a softmax (Srivastava et al. 2014).
- **Against the other regularizers** (a fair comparison: {base_text}):

| method | setting chosen on validation | test accuracy, mean [t 95% interval] |
|---|---|---|
{base_rows}

  {base_finding}
- **Loose: "picking a layer percentage dropout"**: the rate is the probability with which
  each unit is dropped, independently per unit and per example at every step (so the
  fraction dropped varies around it); dlref's `rate` is the probability of zeroing, like
  PyTorch's `p` and flax's `rate` (the original paper's `p` is the probability of
  *keeping*).
"""
    return examples.result(
        verdict,
        summary,
        figure,
        notes,
        seeds=seeds,
        steps=steps,
        gap_no_dropout=gap_plain,
        gap_dropout=gap_drop,
        test_no_dropout=test_plain,
        test_dropout=test_drop,
        train_no_dropout=train_plain,
        train_dropout=train_drop,
        seeds_better=seeds_better,
        test_gain_per_seed=gain.tolist(),
        full_network_accuracy=full_acc,
        ensemble_accuracy=float(mc_acc[-1]),
        ensemble_agreement=agree,
        baseline_seeds=base["seeds"],
        baselines={
            n: {"setting": r["setting"], "lr": r["lr"], "test": list(r["test"])}
            for n, r in bm.items()
        },
        baseline_finding=base_finding,
    )


if __name__ == "__main__":
    examples.main_one("dropout", run)
