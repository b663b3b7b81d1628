"""Test configuration: eight simulated CPU devices, float64 on, strict dtype
promotion, rank promotion raises, and a derandomized hypothesis profile (``ci``,
the default) so every run draws the same examples. ``HYPOTHESIS_PROFILE=dev``
draws more and at random."""

# ruff: noqa: E402  (jax must be imported after XLA_FLAGS is set)

import os

# Eight simulated CPU devices for the multi-device tests (tests/test_parallel.py);
# XLA reads the flag when JAX starts, so it is set before jax is imported.
_FLAG = "--xla_force_host_platform_device_count=8"
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()

import jax
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def key(request):
    """A fresh PRNG key per test, derived from the test's name (reproducible)."""
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(request.node.nodeid)) % (2**31)
    return jax.random.key(seed)
