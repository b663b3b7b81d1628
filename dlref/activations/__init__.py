"""Activations: sigmoid, log_sigmoid, softplus, relu, leaky_relu, elu, silu,
gelu, tanh, softmax, log_softmax.

Each is an :func:`~dlref._op.op`: calling it runs the forward written here, and
``jax.grad`` runs the hand-written backward beneath it. ``f.autodiff`` is the
same forward differentiated by JAX (use it for forward mode). One module per
group (the sigmoid family with relu, tanh and the softmaxes; the relu
variants), each op's backward right under it.

Kinks: a branch is chosen with ``x > 0``, so the slope at exactly 0 is the
slope of the left branch (relu'(0) = 0, elu'(0) = alpha), and ``-|x|`` is
written ``where(x > 0, -x, x)`` so that autodiff sees the same branch. The one
exception is leaky_relu, which follows ``jax.nn.leaky_relu``: ``x >= 0``
selects the identity, so leaky_relu'(0) = 1.
"""

from dlref.activations._basic import (
    log_sigmoid,
    log_softmax,
    relu,
    sigmoid,
    softmax,
    softplus,
    tanh,
)
from dlref.activations._rectifiers import elu, gelu, leaky_relu, silu

__all__ = [
    "sigmoid",
    "log_sigmoid",
    "relu",
    "leaky_relu",
    "elu",
    "silu",
    "gelu",
    "tanh",
    "softplus",
    "softmax",
    "log_softmax",
]
