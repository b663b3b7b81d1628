"""dlref: a reference implementation, in JAX, of deep learning's building blocks.

Every differentiable function is an :class:`Op`: a plain JAX forward and a
hand-written backward pass proven equal to JAX autodiff. Calling it runs the
forward; reverse mode (``jax.grad``, ``jax.vjp``, ``jax.hessian``) runs the
hand-written backward; ``f.autodiff`` is the same forward left to JAX's autodiff,
and ``with dlref.autodiff_mode():`` switches every op to it, for forward mode
(``jax.jvp``, ``jax.jacfwd``). :func:`op` is the guide to writing your own.
Bad input raises :class:`InputError` (a ``ValueError``).

``dlref.OPS`` maps each op's name to its registry record (manual and autodiff
variants, example inputs, peer implementation), which tests and benchmarks use.
"""

from dlref import (
    activations,
    convert,
    gradcheck,
    layers,
    losses,
    metrics,
    networks,
    optim,
    parallel,
    recurrent,
    regularizers,
)
from dlref._checks import InputError
from dlref._op import Op, autodiff_mode, is_op, op
from dlref._registry import OPS, OpSpec

__version__ = "0.1.0"

__all__ = [
    "OPS",
    "InputError",
    "Op",
    "OpSpec",
    "activations",
    "autodiff_mode",
    "convert",
    "gradcheck",
    "is_op",
    "layers",
    "losses",
    "metrics",
    "networks",
    "op",
    "optim",
    "parallel",
    "recurrent",
    "regularizers",
]
