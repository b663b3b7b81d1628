"""Test configuration: eight simulated CPU devices, LLVM optimization level 0,
float64 on, strict dtype promotion, rank promotion raises, a compilation cache
shared by the xdist workers, and a derandomized hypothesis profile (``ci``, the
default: 15 examples a test) so every run draws the same examples.
``HYPOTHESIS_PROFILE=dev`` draws more and at random."""

# ruff: noqa: E402  (jax must be imported after XLA_FLAGS is set)

import os

# XLA reads its flags when JAX starts, so they are set before jax is imported:
# - eight simulated CPU devices for the multi-device tests (tests/test_parallel.py);
# - LLVM's optimization level 0 for the compiled programs. Compiling dominates the
#   suite's time and the tests' arrays are small: level 0 compiles a third faster.
#   XLA's own graph passes (fusion, buffer assignment, hence the memory tests) are the
#   same at every level. The last bit of a result may differ from a default build's
#   (the default level contracts a multiply and an add into one fused operation), so
#   the ulp accuracy tests compile at the default level (helpers.DEFAULT_LEVEL).
_FLAGS = {
    "xla_force_host_platform_device_count": "8",
    "xla_backend_optimization_level": "0",
}
for _name, _value in _FLAGS.items():
    if _name not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --{_name}={_value}".strip()

import shutil
import tempfile
import uuid

import jax
import pytest
from hypothesis import HealthCheck, settings

# One compilation cache shared by the pytest-xdist workers of a run: a program one
# worker compiled (an op at a shape and dtype) is read, not compiled again, by the
# other. The controller makes the folder before it starts the workers, and removes it.
_CACHE = "DLREF_TEST_COMPILATION_CACHE"
if os.environ.get(_CACHE) and "PYTEST_XDIST_WORKER" in os.environ:
    jax.config.update("jax_compilation_cache_dir", os.environ[_CACHE])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_configure(config):
    if "PYTEST_XDIST_WORKER" not in os.environ and not os.environ.get(_CACHE):
        folder = os.path.join(tempfile.gettempdir(), f"dlref-tests-{uuid.uuid4().hex[:12]}")
        os.environ[_CACHE] = folder
        config._dlref_cache = folder


def pytest_unconfigure(config):
    folder = getattr(config, "_dlref_cache", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(_CACHE, None)


jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=15,
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
