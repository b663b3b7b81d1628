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
from dlref import activations, layers, losses

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
)

SIZES = (64, 256, 256, 10)
N_TRAIN = 200
LEARNING_RATE = 1e-3
RATE = 0.5  # the probability of dropping a hidden unit
INPUT_RATE = 0.2  # and an input pixel
EVAL_EVERY = 25


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
    seeds = 3 if quick else 5
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

    # Figure.
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.4), layout="constrained")
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
    )


if __name__ == "__main__":
    examples.main_one("dropout", run)
