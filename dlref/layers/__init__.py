"""Layers: dense, dropout and batch normalization, each with a hand-written backward.

Conventions: batch first; ``dense`` computes ``x @ w + b`` with ``w`` of shape
``(d_in, d_out)`` (flax's layout; PyTorch's ``nn.Linear`` stores ``w.T``: see
:mod:`dlref.convert`); every leading axis of ``x`` is a batch axis. ``conv2d`` and
the pools take NHWC input and ``conv2d`` an HWIO kernel (flax's layout; PyTorch's is
NCHW and OIHW: see their docstrings for the transposes).

One module per group (dense and dropout; the normalizations), each op's backward
right under it.
"""

from dlref.layers._attention import dot_product_attention
from dlref.layers._conv import conv2d
from dlref.layers._dense import dense, dropout, init_dense
from dlref.layers._embedding import embedding
from dlref.layers._norm import BatchNormState, batch_norm, init_batch_norm, layer_norm, rms_norm
from dlref.layers._pool import avg_pool2d, max_pool2d

__all__ = [
    "BatchNormState",
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "dense",
    "dot_product_attention",
    "dropout",
    "embedding",
    "init_batch_norm",
    "init_dense",
    "layer_norm",
    "max_pool2d",
    "rms_norm",
]
