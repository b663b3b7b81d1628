"""Objective functions, per example.

Every loss takes arrays of shape ``(..., d)``, where the last axis holds the
features or classes of one example, and returns shape ``(...)``: it reduces the
last axis only, never a batch axis (average over the batch yourself). A single
example is a 1-D array. Integer class labels have shape ``(...)``.

Reductions over the last axis: mse, mae and hinge take the *mean* (their names
say so); the cross-entropies take the *sum*, as in the cheat sheet's formula.

Each loss is an :func:`~dlref._op.op` with a hand-written backward giving the
gradient for every floating input (targets too); the logits versions use the
fused gradient ``softmax(z) - y`` / ``sigmoid(z) - y`` instead of the chain
through a log. One module per group (regression, margin, cross-entropy, soft
F1), each op's backward right under it.
"""

from dlref.losses._cross_entropy import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    categorical_cross_entropy,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
)
from dlref.losses._f1 import soft_f1
from dlref.losses._margin import hinge, multiclass_hinge
from dlref.losses._regression import mae, mse

__all__ = [
    "mse",
    "mae",
    "hinge",
    "multiclass_hinge",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "categorical_cross_entropy",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "soft_f1",
]
