"""Layers: dense, dropout and batch normalization, each with a hand-written backward.

Conventions: batch first; ``dense`` computes ``x @ w + b`` with ``w`` of shape
``(d_in, d_out)`` (flax's layout; PyTorch's ``nn.Linear`` stores ``w.T``: see
:mod:`dlref.convert`); every leading axis of ``x`` is a batch axis.

One module per group (dense and dropout; the normalizations), each op's backward
right under it.
"""

from dlref.layers._dense import dense, dropout, init_dense
from dlref.layers._norm import BatchNormState, batch_norm, init_batch_norm, layer_norm, rms_norm

__all__ = [
    "BatchNormState",
    "batch_norm",
    "dense",
    "dropout",
    "init_batch_norm",
    "init_dense",
    "layer_norm",
    "rms_norm",
]
