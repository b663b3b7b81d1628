"""Memory of recurrent networks: a plain RNN against LSTM and GRU.

Two measurements, with dlref's ``rnn``, ``lstm`` and ``gru`` (time-major sequences over
``lax.scan``; ``jax.grad`` and ``jax.jacrev`` run their hand-written backpropagation
through time), hidden size 32:

(a) **Sensitivity**: the norm of the Jacobian ``d h_T / d x_(T-k)``, how much the state
    at time T still depends on the input k steps back, for random-init networks and for
    the networks trained in (b).
(b) **A memory task**: a token (one of 4 symbols, one-hot) at step 0, then blank steps;
    the network must name the token from its state k steps later (a linear read-out of
    ``h_k`` and softmax cross-entropy). Each cell is trained from scratch for each k with
    the same budget (Adam, mini-batches of 32), three seeds; accuracy on 1000 new
    sequences, chance 25%.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import examples
from dlref import layers, losses, recurrent

TITLE = "Memory: RNN against LSTM and GRU"
CLAIM = (
    "[LSTM/GRU:] Typically found in Recurrent Neural Networks but are expanding to use in "
    "others these are little \u201cmemory units\u201d that keep state between inputs for "
    "training and help solve the vanishing gradient problem where after around 7 time steps "
    "an RNN loses context of the input prior."
)

SYMBOLS = 4
D_IN = SYMBOLS + 1  # the symbols' one-hot, and a "blank" channel
HIDDEN = 32
BATCH = 32
LEARNING_RATE = 1e-2
CELLS = ("rnn", "gru", "lstm")
COLOURS = {"rnn": "C3", "gru": "C0", "lstm": "C2"}
NAMES = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}
CHANCE = 1 / SYMBOLS
DISTRACTORS = 0.0


def sequences(rng: np.random.Generator, shape: tuple, length: int) -> tuple:
    """Task inputs ``(*shape, length, batch, D_IN)`` (time-major per sequence) and tokens
    ``(*shape, batch)``: the token's one-hot at step 0, the blank channel at every other step."""
    *lead, batch = shape
    tokens = rng.integers(0, SYMBOLS, shape).astype(np.int32)
    xs = np.zeros((*lead, length, batch, D_IN), np.float32)
    if DISTRACTORS:
        noise = rng.integers(0, SYMBOLS, (*lead, length, batch))
        shown = rng.random((*lead, length, batch)) < DISTRACTORS
        xs[..., :SYMBOLS] = np.eye(SYMBOLS, dtype=np.float32)[noise] * shown[..., None]
    xs[..., SYMBOLS] = 1.0
    xs[..., 0, :, :] = np.eye(D_IN, dtype=np.float32)[tokens]
    return xs, tokens


def init(seed: int, count: int) -> dict:
    """For every cell, ``count`` stacked draws of its parameters and of a dense read-out.

    The draws follow dlref's initializers (``init_rnn``, ``init_gru``, ``init_lstm``:
    PyTorch's uniform in +-1/sqrt(hidden), LSTM biases 0 but the forget gate's, 1;
    ``init_dense``: LeCun normal, zero bias) but come from NumPy: random draws are what
    takes XLA the longest to compile on CPU. ``jax.eval_shape`` checks that the
    structure, shapes and dtypes are dlref's.
    """
    rng = np.random.default_rng(seed)
    bound = HIDDEN**-0.5

    def uniform(*shape):
        return rng.uniform(-bound, bound, (count, *shape)).astype(np.float32)

    lstm_bias = np.zeros((count, 4, HIDDEN), np.float32)
    lstm_bias[:, 1] = 1.0
    cells = {
        "rnn": recurrent.RNNParams(uniform(D_IN, HIDDEN), uniform(HIDDEN, HIDDEN), uniform(HIDDEN)),
        "gru": recurrent.GRUParams(
            uniform(D_IN, 3 * HIDDEN),
            uniform(HIDDEN, 3 * HIDDEN),
            uniform(3 * HIDDEN),
            uniform(3 * HIDDEN),
        ),
        "lstm": recurrent.LSTMParams(
            uniform(D_IN, 4 * HIDDEN),
            uniform(HIDDEN, 4 * HIDDEN),
            lstm_bias.reshape(count, 4 * HIDDEN),
        ),
    }
    makers = {"rnn": recurrent.init_rnn, "gru": recurrent.init_gru, "lstm": recurrent.init_lstm}
    out = {}
    for cell, params in cells.items():
        readout = (
            (rng.standard_normal((count, HIDDEN, SYMBOLS)) * bound).astype(np.float32),
            np.zeros((count, SYMBOLS), np.float32),
        )
        drawn = (params, readout)  # NumPy: sliced without compiling anything
        expected = jax.eval_shape(
            lambda key, make=makers[cell]: (
                make(key, D_IN, HIDDEN),
                layers.init_dense(key, HIDDEN, SYMBOLS),
            ),
            jax.random.key(0),
        )
        got = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), drawn)
        if jax.tree.structure(got) != jax.tree.structure(expected) or jax.tree.leaves(
            got
        ) != jax.tree.leaves(expected):
            raise AssertionError(f"{cell}: the drawn parameters are not dlref's: {got}")
        out[cell] = drawn
    return out


def states(cell: str, params, xs: jax.Array) -> jax.Array:
    """Every hidden state ``h_t``, ``(time, batch, HIDDEN)``, from a zero initial state."""
    batch = xs.shape[1]
    if cell == "lstm":
        hs, _ = recurrent.lstm(xs, recurrent.zeros_state(batch, HIDDEN, lstm=True), params)
        return hs
    run = recurrent.rnn if cell == "rnn" else recurrent.gru
    hs, _ = run(xs, recurrent.zeros_state(batch, HIDDEN), params)
    return hs


def logits(cell: str, params, xs: jax.Array, k: jax.Array) -> jax.Array:
    """The read-out of ``h_k``: class scores ``(batch, SYMBOLS)``."""
    cell_params, (w, b) = params
    return layers.dense(jnp.take(states(cell, cell_params, xs), k, axis=0), w, b)


def loss(params, xs, tokens, k, *, cell: str) -> jax.Array:
    scores = logits(cell, params, xs, k)
    return jnp.mean(losses.softmax_cross_entropy_with_integer_labels(scores, tokens))


@functools.partial(jax.jit, static_argnames="cell")
def train(params, k, xs, tokens, xs_test, tokens_test, *, cell: str):
    """Adam on the mini-batches ``xs: (steps, time, batch, D_IN)``; vmapped over (params, k).
    Returns the trained params, the loss per step and the test accuracy."""

    def one(params, k):
        def step(carry, batch):
            params, state = carry
            value, grads = jax.value_and_grad(loss)(params, *batch, k, cell=cell)
            params, state = examples.adam_update(params, grads, state, LEARNING_RATE)
            return (params, state), value

        carry = (params, examples.adam_init(params))
        (params, _), curve = jax.lax.scan(step, carry, (xs, tokens))
        predicted = jnp.argmax(logits(cell, params, xs_test, k), axis=-1).astype(jnp.int32)
        accuracy = jnp.mean((predicted == tokens_test).astype(jnp.float32))
        return params, curve, accuracy

    return jax.vmap(one)(params, k)


@functools.partial(jax.jit, static_argnames=("cell", "length"))
def probe(cell_params, xs, *, cell: str, length: int) -> tuple[jax.Array, jax.Array]:
    """:func:`sensitivity` and :func:`separation` of stacked models (one compilation)."""
    return sensitivity(cell_params, xs, cell=cell), separation(
        cell_params, cell=cell, length=length
    )


def sensitivity(cell_params, xs, *, cell: str) -> jax.Array:
    """``|d h_T / d x_(T-k)|`` (Frobenius) for k = 0..T-1, RMS over the sequences of ``xs``
    ``(time, batch, D_IN)``; vmapped over stacked params: ``(models, time)``."""

    def one(p):
        def last(x):  # one sequence (time, D_IN) -> its last state (HIDDEN,)
            return states(cell, p, x[:, None, :])[-1, 0]

        jac = jax.vmap(jax.jacrev(last), in_axes=1)(xs)  # (batch, HIDDEN, time, D_IN)
        norms = jnp.sqrt(jnp.mean(jnp.sum(jac * jac, axis=(1, 3)), axis=0))  # (time,)
        return norms[::-1]  # index k: the input k steps before the last

    return jax.vmap(one)(cell_params)


def separation(cell_params, *, cell: str, length: int) -> jax.Array:
    """How far apart the states of the 4 token sequences (token at step 0, then blanks)
    stay: the mean distance ``|h_t(a) - h_t(b)|`` over the pairs of tokens, for every t;
    vmapped over stacked params: ``(models, time)``."""
    xs = np.zeros((length, SYMBOLS, D_IN), np.float32)
    xs[:, :, SYMBOLS] = 1.0
    xs[0] = np.eye(D_IN, dtype=np.float32)[:SYMBOLS]
    i, j = np.triu_indices(SYMBOLS, 1)

    def one(p):
        hs = states(cell, p, jnp.asarray(xs))  # (time, SYMBOLS, HIDDEN)
        diff = hs[:, i, :] - hs[:, j, :]
        return jnp.mean(jnp.sqrt(jnp.sum(diff * diff, axis=-1)), axis=-1)

    return jax.vmap(one)(cell_params)


def _geomean(values: np.ndarray) -> np.ndarray:
    """The geometric mean over the models (axis 0); exact zeros count as 1e-300."""
    values = np.maximum(np.asarray(values, np.float64), 1e-300)
    return np.exp(np.mean(np.log(values), axis=0))


def _first_failure(ks: list, acc: np.ndarray) -> int | None:
    """The smallest k whose accuracy (mean over seeds) is below 50%, or None."""
    for k, a in zip(ks, acc, strict=True):
        if a < 0.5:
            return int(k)
    return None


def run(out_dir: pathlib.Path, quick: bool = False) -> dict:
    examples.setup()
    ks = [10, 20] if quick else [2, 5, 10, 20, 40]
    seeds = 2 if quick else 3
    steps = 300 if quick else 600
    length = max(ks) + 1
    rng = np.random.default_rng(0)
    xs, tokens = sequences(rng, (steps, BATCH), length)
    n_test = 500 if quick else 1000
    xs_test, tokens_test = sequences(rng, (n_test,), length)
    xs_probe = jnp.asarray(sequences(rng, (8 if quick else 16,), length)[0])
    args = tuple(jnp.asarray(a) for a in (xs, tokens, xs_test, tokens_test))

    k_grid = np.repeat(np.array(ks), seeds)
    accuracy = {}
    sens_init, sens_trained, sep_init, sep_trained, best_trained = {}, {}, {}, {}, {}
    radius = float(
        np.mean(np.max(np.abs(np.linalg.eigvals(np.asarray(init(0, 8)["rnn"][0].w_hh))), axis=-1))
    )
    all_inits = init(0, len(k_grid) + seeds)
    for cell in CELLS:
        inits = all_inits[cell]
        first = jax.tree.map(lambda a: a[: len(k_grid)], inits)
        params, _, acc = train(first, jnp.asarray(k_grid, jnp.int32), *args, cell=cell)
        params = jax.tree.map(np.asarray, params)
        accuracy[cell] = np.asarray(acc, np.float64).reshape(len(ks), seeds)
        # (a) the networks trained at the largest k, and fresh random inits.
        # the best seed at the largest k
        chosen = len(k_grid) - seeds + int(np.argmax(accuracy[cell][-1]))
        best_trained[cell] = float(accuracy[cell][-1].max())
        # one probe call: the best trained network, then `seeds` fresh random inits
        models = jax.tree.map(
            lambda t, f, i=chosen: np.concatenate([t[i : i + 1], f[len(k_grid) :]]),
            params[0],
            inits[0],
        )
        sens, sep = (
            np.asarray(a, np.float64) for a in probe(models, xs_probe, cell=cell, length=length)
        )
        sens_trained[cell], sens_init[cell] = sens[0], _geomean(sens[1:])
        sep_trained[cell], sep_init[cell] = sep[:1], sep[1:]

    mean_acc = {cell: a.mean(axis=1) for cell, a in accuracy.items()}
    fails = {cell: _first_failure(ks, mean_acc[cell]) for cell in CELLS}
    # Sensitivity 7 steps back, relative to 1 step back; per step, the geometric rate.
    at7_init = {cell: float(sens_init[cell][7] / sens_init[cell][1]) for cell in CELLS}
    far = length - 1
    far_trained = {cell: float(sens_trained[cell][far] / sens_trained[cell][1]) for cell in CELLS}
    far_init = {cell: float(sens_init[cell][far] / sens_init[cell][1]) for cell in CELLS}
    # The token still separates the states at the last step (mean over trained seeds).
    sep_end_trained = {cell: float(sep_trained[cell][:, -1].mean()) for cell in CELLS}
    sep_end_init = {cell: float(sep_init[cell][:, -1].mean()) for cell in CELLS}

    # How far each cell reaches: the largest k at which some seed recalls >= 90%.
    best = {cell: a.max(axis=1) for cell, a in accuracy.items()}
    reach = {
        cell: max([k for k, b in zip(ks, best[cell], strict=True) if b >= 0.9] or [0])
        for cell in CELLS
    }
    gated_reach = max(reach["gru"], reach["lstm"])
    gated_better = bool(max(mean_acc["gru"][-1], mean_acc["lstm"][-1]) > mean_acc["rnn"][-1] + 0.2)
    if reach["rnn"] >= 20:
        verdict = "does not hold"  # a trained RNN keeps the token far past 7 steps
    elif gated_reach > reach["rnn"]:
        verdict = "holds" if reach["rnn"] < 10 else "holds with a caveat"
    else:
        verdict = "does not hold"  # the gated cells reach no further than the RNN

    b_head = (
        "The RNN does not lose the token after about 7 steps"
        if reach["rnn"] >= 10
        else "The RNN loses the token within 10 steps"
    )
    worst = min(CELLS, key=lambda c: (mean_acc[c][-1], mean_acc[c].mean()))
    slowest = (
        f"With this budget the {NAMES[worst]} is the slowest to learn the longest lag."
        if worst != "rnn"
        else "The RNN is the slowest to learn the longest lag."
    )

    trained_text = "; ".join(
        f"{NAMES[c]} (test accuracy {best_trained[c]:.0%}): "
        f"`|d h_T / d x_(T-{far})|` / `|d h_T / d x_(T-1)|` = {far_trained[c]:.1e}, the 4 token "
        f"states {sep_end_trained[c]:.2g} apart at the last step ({sep_end_init[c]:.0e} at init)"
        for c in CELLS
    )
    attractor = [
        c for c in CELLS if far_trained[c] < 1e-3 and sep_end_trained[c] > 100 * sep_end_init[c]
    ]
    gated_through = [c for c in CELLS if best_trained[c] >= 0.9 and far_trained[c] > 0.1]

    def _names(cells: list) -> tuple[str, str]:
        """The cells' names joined, and the verb ending (singular: "s")."""
        return " and ".join(NAMES[c] for c in cells), "s" if len(cells) == 1 else ""

    parts = []
    if attractor:
        names, verb = _names(attractor)
        parts.append(
            f"The {names} keep{verb} the states of the tokens told apart far apart, although "
            "the state barely depends on small changes of the early input: a discrete token "
            "held in attractors survives a vanishing Jacobian (the gradient through the sequence "
            "vanishes, that memory does not)."
        )
    if gated_through:
        names, verb = _names(gated_through)
        parts.append(
            f"The {names} that recall{verb} the token {ks[-1]} steps back keep{verb} a "
            "Jacobian of order 1: the gate passes the state, and its gradient, through "
            "unchanged: the mechanism the cheat sheet credits."
        )
    trained_conclusion = " ".join(parts)
    compare = "as far as" if reach["rnn"] >= gated_reach else "less far than"

    def _fail_text(cell: str) -> str:
        return "none" if fails[cell] is None else f"k = {fails[cell]}"

    acc_text = {cell: ", ".join(f"{a:.0%}" for a in mean_acc[cell]) for cell in CELLS}

    # Figure.
    fig, axes = plt.subplots(2, 2, figsize=(15, 10.5), layout="constrained")
    lags = np.arange(length)
    for ax, sens, title in (
        (axes[0, 0], sens_init, f"at random initialization (T = {length - 1})"),
        (axes[0, 1], sens_trained, f"after training on k = {ks[-1]} (best seed of each)"),
    ):
        for cell in CELLS:
            ax.semilogy(lags, sens[cell], "-", color=COLOURS[cell], label=NAMES[cell])
        ax.axvline(7, color="grey", ls=":", lw=1)
        ax.set_xlabel("k (steps back from the last step T)")
        ax.set_ylabel("|d h_T / d x_(T-k)|")
        ax.set_title(f"(a) sensitivity {title}")
        ax.legend()

    ax = axes[1, 0]
    for cell in CELLS:
        ax.plot(
            lags,
            sep_trained[cell].mean(axis=0),
            "-",
            color=COLOURS[cell],
            label=f"{NAMES[cell]}, trained on k = {ks[-1]} (best seed)",
        )
        ax.plot(
            lags,
            sep_init[cell].mean(axis=0),
            ":",
            color=COLOURS[cell],
            label=f"{NAMES[cell]}, random init",
        )
    ax.set_yscale("log")
    ax.set_ylim(1e-6, 10)
    ax.set_xlabel("step t (the token is at step 0, blanks after)")
    ax.set_ylabel("mean |h_t(token a) - h_t(token b)|")
    ax.set_title("the token's trace in the state: distance between the 4 tokens' states")
    ax.legend(fontsize=8, ncol=2)

    ax = axes[1, 1]
    for i, cell in enumerate(CELLS):
        shift = 1 + (i - 1) * 0.04
        for j in range(seeds):
            ax.plot(
                np.array(ks) * shift,
                accuracy[cell][:, j],
                "o",
                ms=4,
                alpha=0.35,
                color=COLOURS[cell],
            )
        ax.plot(
            ks,
            mean_acc[cell],
            "o-",
            color=COLOURS[cell],
            label=f"{NAMES[cell]} (mean of {seeds} seeds)",
        )
    ax.axhline(CHANCE, color="grey", ls=":", label="chance")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("k: steps between the token and the question")
    ax.set_ylabel(f"test accuracy ({n_test} sequences)")
    ax.set_title(f"(b) recall the token k steps back: {steps} Adam steps per network")
    ax.legend()
    figure = examples.save(fig, out_dir, "memory")

    summary = (
        f"recalling a token k = {', '.join(map(str, ks))} steps back (mean test accuracy over "
        f"{seeds} seeds, {steps} Adam steps, hidden 32): RNN {acc_text['rnn']}, GRU "
        f"{acc_text['gru']}, LSTM {acc_text['lstm']} (chance 25%); first k below 50%: RNN "
        f"{_fail_text('rnn')}, GRU {_fail_text('gru')}, LSTM {_fail_text('lstm')}; the best seed "
        f"recalls >= 90% up to k = {reach['rnn']} (RNN), {reach['gru']} (GRU), "
        f"{reach['lstm']} (LSTM); at random "
        f"init |d h_T / d x_(T-7)| is {at7_init['rnn']:.2g} of |d h_T / d x_(T-1)| for the RNN, "
        f"{at7_init['gru']:.2g} for the GRU, {at7_init['lstm']:.2g} for the LSTM"
    )
    table_head = "| k | " + " | ".join(NAMES[c] for c in CELLS) + " |\n|---|" + "---|" * len(CELLS)
    table = "\n".join(
        f"| {k} | "
        + " | ".join(
            f"{mean_acc[c][i]:.0%} ({', '.join(f'{a:.0%}' for a in accuracy[c][i])})" for c in CELLS
        )
        + " |"
        for i, k in enumerate(ks)
    )
    notes = f"""
The task: a token, one of 4 symbols (one-hot), at step 0, then blank steps (a "blank"
input channel set to 1); the network must name the token from its state `h_k`, k steps
later (a dense read-out and softmax cross-entropy, dlref's). For each k, each cell
(hidden size {HIDDEN}, dlref's initializers: PyTorch's uniform +-1/sqrt(hidden), LSTM
forget-gate bias 1) is trained from scratch, {seeds} seeds, for {steps} steps of Adam
(learning rate {LEARNING_RATE}, mini-batches of {BATCH}, the same batches for every
network); `jax.grad` runs dlref's hand-written backpropagation through time. Test
accuracy on {n_test} new sequences, mean over seeds (each seed in parentheses; chance 25%):

{table_head}
{table}

- **(b) {b_head}**: the farthest k at which a trained network (the best of {seeds} seeds)
  recalls the token at 90% or more is {reach["rnn"]} for the RNN, {reach["gru"]} for the
  GRU and {reach["lstm"]} for the LSTM; averaged over the seeds, the first k below 50% is
  {_fail_text("rnn")} for the RNN (GRU: {_fail_text("gru")}, LSTM: {_fail_text("lstm")}). At
  the largest lag the gated cells are {"better" if gated_better else "not better"} (by
  more than 20 points) here: RNN {mean_acc["rnn"][-1]:.0%}, GRU {mean_acc["gru"][-1]:.0%},
  LSTM {mean_acc["lstm"][-1]:.0%}. {slowest} A failed network sits at 25% (chance) or
  about 50% (it tells 2 of the 4 tokens apart and is still on the plateau before the
  rest): training, not capacity, is the bottleneck, and which seeds find the solution
  within the budget varies.
- **(a) At initialization the cheat sheet's picture is right**: the sensitivity of the
  last state to the input k steps back, `|d h_T / d x_(T-k)|` (`jax.jacrev` through the
  hand-written backward), falls to {at7_init["rnn"]:.2g} of its one-step value within 7
  steps for the RNN (PyTorch's init gives `w_hh` a spectral radius of {radius:.2f} on
  average), to
  {at7_init["gru"]:.2g} for the GRU (its update gate starts near 1/2) and only to
  {at7_init["lstm"]:.2g} for the LSTM (the forget gate starts at sigmoid(1) = 0.73, the
  cell state's path is `c_t = f * c_(t-1) + ...` with no squashing). Over {far} steps: RNN
  {far_init["rnn"]:.1e}, GRU {far_init["gru"]:.1e}, LSTM {far_init["lstm"]:.1e}. This is
  the vanishing gradient: at the start of training, what happened 20 or 40 steps back
  barely reaches the loss.
- **After training, the Jacobian and the memory part ways**: the best network of each
  cell trained at k = {ks[-1]}: {trained_text}. {trained_conclusion}
- **Loose: "after around 7 time steps"** is not a constant of RNNs: how far back a plain
  RNN reaches depends on its weights (at initialization, on the spectral radius of
  `w_hh`), on the task and on the training budget. The measured statement: the gradient
  of an untrained RNN decays geometrically with the lag, faster than an LSTM's with a
  forget bias of 1; gated cells make long lags easier to learn in the literature
  (Hochreiter and Schmidhuber 1997: lags of 100 and more, with noise), but on this short,
  clean recall task and budget the plain RNN reached {compare} the best gated cell
  ({reach["rnn"]} against {gated_reach} steps).
"""
    return examples.result(
        verdict,
        summary,
        figure,
        notes,
        ks=ks,
        seeds=seeds,
        steps=steps,
        accuracy={cell: a.tolist() for cell, a in accuracy.items()},
        mean_accuracy={cell: a.tolist() for cell, a in mean_acc.items()},
        first_failure=fails,
        reach=reach,
        gated_better=gated_better,
        sensitivity_7_init=at7_init,
        sensitivity_far_init=far_init,
        sensitivity_far_trained=far_trained,
        separation_end_trained=sep_end_trained,
        attractor_cells=attractor,
        gated_through_cells=gated_through,
        separation_end_init=sep_end_init,
        best_trained_accuracy=best_trained,
        rnn_spectral_radius=radius,
    )


if __name__ == "__main__":
    examples.main_one("memory", run)
