"""Doctests of dlref/ run as a user's session would: float32 by default and JAX's
standard promotion rules, whatever tests/conftest.py set for the test suite."""

import jax
import pytest


@pytest.fixture(autouse=True)
def _user_defaults_for_doctests(request):
    if not isinstance(request.node, pytest.DoctestItem):
        yield
        return
    with (
        jax.enable_x64(False),
        jax.numpy_dtype_promotion("standard"),
        jax.numpy_rank_promotion("allow"),
    ):
        yield
