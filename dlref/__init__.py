"""dlref: a reference implementation, in JAX, of deep learning's building blocks.

Every differentiable function has a plain JAX forward and a hand-written
backward pass proven equal to JAX autodiff. Calling a function runs its forward;
``jax.grad`` of it runs the hand-written backward; ``f.autodiff`` is the same
forward left to JAX's autodiff (for forward mode: ``jax.jvp``, ``jax.hessian``).

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
from dlref._op import is_op, op
from dlref._registry import OPS, OpSpec

__version__ = "0.1.0"

__all__ = [
    "OPS",
    "InputError",
    "OpSpec",
    "activations",
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
