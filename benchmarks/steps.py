"""End-to-end training steps: loss, gradient and an optax update, as rows.

``mlp_step`` trains :func:`dlref.networks.mlp_loss` (tanh MLP, softmax
cross-entropy); ``lstm_step`` an LSTM over a sequence whose last hidden state
feeds a dense layer and a softmax cross-entropy against integer labels. Each
step is ``params, opt_state -> new params, new opt_state, loss`` with
``optax.sgd(0.01, momentum=0.9)`` (an update linear in the gradient, so the
variants' new parameters agree as closely as their gradients). Variants:
``hand`` (dlref's hand-written backward passes), ``autodiff`` (the same model
traced under :func:`dlref.autodiff_mode`), ``peer`` (flax linen and optax, on
parameters already in flax's layout), ``forward`` (the loss alone).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from benchmarks.cases import Case, Program, example_args
from dlref import OPS, autodiff_mode, convert, layers, losses, recurrent
from dlref import _peers as peers

STEPS = ("mlp_step", "lstm_step")
_CLASSES = 10
_SOURCE = {"mlp_step": "mlp_loss", "lstm_step": "lstm"}


def source(name: str):
    """The registry entry whose sizes and inputs a step uses."""
    return OPS[_SOURCE[name]]


def _optimizer():
    return optax.sgd(0.01, momentum=0.9)


def _step(loss_fn, autodiff: bool = False):
    def step(params, opt_state, *batch):
        def run():
            loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
            updates, new_state = _optimizer().update(grads, opt_state, params)
            return optax.apply_updates(params, updates), new_state, loss

        if autodiff:
            with autodiff_mode():
                return run()
        return run()

    return step


def _mlp(size, dtype):
    spec = OPS["mlp_loss"]
    params, x, labels = example_args(spec, 7, dtype, size)
    activation = spec.kwargs["activation"]
    hand = lambda p, x, y: spec.fn(p, x, y, activation=activation)
    flax_loss = peers.mlp_loss(activation=activation)
    flax_params = flax_loss.prepare(params, x)[0]

    def to_dlref(flax_layers):
        return [convert.dense_from_flax(layer["params"]) for layer in flax_layers]

    return (params, (x, labels)), hand, (flax_params, flax_loss.apply), to_dlref


def _lstm_loss(params, xs, state0, labels):
    cell, (w, b) = params
    _, last = recurrent.lstm(xs, state0, cell)
    logits = layers.dense(last.h, w, b)
    return jnp.mean(losses.softmax_cross_entropy_with_integer_labels(logits, labels))


def _lstm(size, dtype):
    xs, state0, cell = example_args(OPS["lstm"], 8, dtype, size)
    hidden, batch = cell.w_hh.shape[0], xs.shape[1]
    k_w, k_y = jax.random.split(jax.random.key(9))
    w = jax.random.normal(k_w, (hidden, _CLASSES), dtype) * hidden**-0.5
    head = (w, jnp.zeros((_CLASSES,), dtype))
    labels = jax.random.randint(k_y, (batch,), 0, _CLASSES)
    params = (cell, head)
    sequence = peers.sequence("lstm")

    def flax_loss(flax_params, xs, carry, labels):
        variables, head_variables = flax_params
        _, last = sequence.apply(xs, carry, variables)
        logits = peers.dense.apply(last.h, head_variables)
        return optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    flax_params = (
        {"params": convert.lstm_to_flax(cell)},
        {"params": convert.dense_to_flax(*head)},
    )

    def to_dlref(p):
        return (convert.lstm_from_flax(p[0]["params"]), convert.dense_from_flax(p[1]["params"]))

    carry = (state0.c, state0.h)  # flax's carry order
    batch_args = (xs, state0, labels)
    flax_batch = (xs, carry, labels)
    return (params, batch_args), _lstm_loss, (flax_params, flax_loss, flax_batch), to_dlref


def step_case(name: str, size: tuple[int, ...], dtype, *, variants: frozenset[str]) -> Case:
    """The programs of one training step at ``size`` (a size of its source op)."""
    if name == "mlp_step":
        (params, batch), hand, (flax_params, flax_loss), to_dlref = _mlp(size, dtype)
        flax_batch = batch
    else:
        (params, batch), hand, (flax_params, flax_loss, flax_batch), to_dlref = _lstm(size, dtype)
    opt = _optimizer()
    args = (params, opt.init(params), *batch)

    def check(out):  # the loss and the new parameters
        return out[2], out[0]

    programs = {"hand": Program(_step(hand), args, check)}
    if "hand_again" in variants:
        programs["hand_again"] = Program(programs["hand"].fn, args)
    if "autodiff" in variants:
        programs["autodiff"] = Program(_step(hand, autodiff=True), args, check)
    if "peer" in variants:
        flax_args = (flax_params, opt.init(flax_params), *flax_batch)
        programs["peer"] = Program(
            _step(flax_loss), flax_args, lambda out: (out[2], to_dlref(out[0]))
        )
    if "forward" in variants:
        programs["forward"] = Program(hand, (params, *batch))
    spec = source(name)
    return Case(
        name=name,
        kind="step",
        size=tuple(size),
        dtype=jnp.dtype(dtype),
        programs=programs,
        peer_name="flax linen + optax" if "peer" in programs else "",
        flops=spec.flops(size) if spec.flops else 0,
        note="loss, gradient and optax.sgd(momentum=0.9) update",
    )
