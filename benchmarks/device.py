"""What the benchmark runs on: the device, the versions, the commit, and the
device's two ceilings (stream bandwidth and matmul rate) for roofline shares."""

from __future__ import annotations

import datetime
import os
import pathlib
import platform
import subprocess
import sys

import jax
import jax.numpy as jnp
import jaxlib

from benchmarks.timing import interleaved_medians


def describe() -> dict:
    device = jax.devices()[0]
    kind = device.device_kind
    if device.platform == "cpu":
        kind = f"{_cpu_name()} ({os.cpu_count()} cores)"
    return {
        "platform": device.platform,
        "device_kind": kind,
        "device_count": jax.device_count(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "python": sys.version.split()[0],
        "commit": _commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _cpu_name() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _commit() -> str:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return out.stdout.strip()

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "dlref", "benchmarks")
    except OSError:
        return "unknown"
    return (head or "unknown") + ("-dirty" if dirty else "")


def ceilings(*, elements: int, matmul_n: int, repeats: int) -> dict:
    """Measured stream bandwidth and matmul rates of the default device.

    Bandwidth: ``x + 1`` over ``elements`` float32 values, jitted, counting the
    bytes read plus the bytes written (a copy moves the same). Matmul: an
    ``n x n`` product in float32 (default precision) and bfloat16, ``2 n**3``
    flops each. Medians of interleaved repeats.
    """
    key = jax.random.key(0)
    x = jax.random.normal(key, (elements,), jnp.float32)
    a32 = jax.random.normal(key, (matmul_n, matmul_n), jnp.float32)
    b32 = jax.random.normal(jax.random.key(1), (matmul_n, matmul_n), jnp.float32)
    a16, b16 = a32.astype(jnp.bfloat16), b32.astype(jnp.bfloat16)
    stream = jax.jit(lambda x: x + 1)
    matmul = jax.jit(jnp.matmul)
    t_stream = interleaved_medians({"s": stream}, (x,), repeats=repeats, min_sample_s=0.02)
    t32 = interleaved_medians({"m": matmul}, (a32, b32), repeats=repeats, min_sample_s=0.02)
    t16 = interleaved_medians({"m": matmul}, (a16, b16), repeats=repeats, min_sample_s=0.02)
    flops = 2 * matmul_n**3
    return {
        "bandwidth_bytes_per_s": 2 * x.nbytes / t_stream["s"]["median_s"],
        "matmul_f32_flops_per_s": flops / t32["m"]["median_s"],
        "matmul_bf16_flops_per_s": flops / t16["m"]["median_s"],
        "stream_elements": elements,
        "matmul_n": matmul_n,
    }
