"""What the benchmark runs on: the device, the software and code versions, the
load of the machine, the device's ceilings (copy bandwidth and matmul rates)
and which peers it offers (cuDNN's LSTM)."""

from __future__ import annotations

import datetime
import os
import pathlib
import platform
import random
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import jaxlib

from benchmarks.timing import interleaved

REPO = pathlib.Path(__file__).resolve().parent.parent
CODE_PATHS = ("dlref", "benchmarks", ":(exclude)benchmarks/results")
"""The code whose numbers a result records: the ops and the benchmark itself."""


def describe() -> dict:
    """The device and the software: what a reader needs to reproduce a run."""
    device = jax.devices()[0]
    kind = device.device_kind
    if device.platform == "cpu":
        kind = f"{_cpu_name()} ({os.cpu_count()} cores)"
    info = {
        "platform": device.platform,
        "device_kind": kind,
        "device_count": jax.device_count(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "python": sys.version.split()[0],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **code_state(),
    }
    if device.platform == "gpu":
        info.update(_gpu_versions(device))
    return info


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _cpu_name() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_versions(device) -> dict:
    """Driver, CUDA and cuDNN versions where the CUDA plugin reports them."""
    out: dict = {}
    capability = getattr(device, "compute_capability", None)
    if capability:
        out["compute_capability"] = str(capability)
    try:
        from jax._src.lib import cuda_versions

        if cuda_versions is not None:
            out["cuda_runtime"] = cuda_versions.cuda_runtime_get_version()
            out["cuda_driver"] = cuda_versions.cuda_driver_get_version()
            out["cudnn"] = cuda_versions.cudnn_get_version()
    except Exception as exc:  # a plugin without the version bindings
        out["cuda_versions_error"] = f"{type(exc).__name__}: {exc}"[:200]
    smi = _run(
        "nvidia-smi", "--query-gpu=driver_version,name,memory.total", "--format=csv,noheader"
    )
    if smi:
        out["nvidia_smi"] = smi.splitlines()[0]
    return out


def _run(*args: str) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, check=False, cwd=REPO)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def code_state() -> dict:
    """The commit checked out, the last commit that changed the timed code
    (``dlref/`` and ``benchmarks/``, results aside), and the uncommitted
    changes to that code, if any: numbers measured with those belong to no
    commit."""
    head = _run("git", "rev-parse", "--short=12", "HEAD") or "unknown"
    code = _run("git", "log", "-1", "--format=%h", "--abbrev=12", "--", *CODE_PATHS)
    dirty = _run("git", "diff", "--name-only", "HEAD", "--", *CODE_PATHS).split()
    dirty += _run("git", "ls-files", "--others", "--exclude-standard", "--", *CODE_PATHS).split()
    return {"commit": head, "code_commit": code or "unknown", "dirty_files": sorted(dirty)}


def staleness(meta: dict) -> str | None:
    """Why results recorded in ``meta`` may not be those of the current code,
    or None when they are."""
    recorded = meta.get("device", {})
    if recorded.get("dirty_files"):
        return f"measured with uncommitted changes to {', '.join(recorded['dirty_files'])}"
    now = code_state()
    if recorded.get("code_commit") != now["code_commit"]:
        return (
            f"measured with the code of commit {recorded.get('code_commit', 'unknown')}; "
            f"the code has changed since (last change: {now['code_commit']})"
        )
    return None


def ceilings(*, elements: int, matmul_n: int, repeats: int) -> dict:
    """Measured copy bandwidth and matmul rates of the default device.

    Bandwidth: ``x + 1`` over ``elements`` float32 values, jitted, counting the
    bytes read plus the bytes written (a copy moves the same). Matmul: an
    ``n x n`` product in float32 (at the matmul precision in force) and
    bfloat16, ``2 n**3`` flops each. Medians of interleaved repeats. Also how
    long the copy program took to compile (``probe_compile_s``): the planner
    scales its compile allowances by it (a loaded machine compiles slower).
    """
    key = jax.random.key(0)
    x = jax.random.normal(key, (elements,), jnp.float32)
    a32 = jax.random.normal(key, (matmul_n, matmul_n), jnp.float32)
    b32 = jax.random.normal(jax.random.key(1), (matmul_n, matmul_n), jnp.float32)
    a16, b16 = a32.astype(jnp.bfloat16), b32.astype(jnp.bfloat16)
    start = time.perf_counter()
    stream = jax.jit(lambda x: x + 1).lower(x).compile()
    compile_s = time.perf_counter() - start
    matmul = jax.jit(jnp.matmul)
    calls = {
        "stream": lambda: stream(x),
        "float32": lambda: matmul(a32, b32),
        "bfloat16": lambda: matmul(a16, b16),
    }
    times = interleaved(calls, repeats=repeats, min_sample_s=0.02, rng=random.Random(0))["times"]
    flops = 2 * matmul_n**3
    return {
        "bandwidth_bytes_per_s": 2 * x.nbytes / times["stream"]["median_s"],
        "matmul_flops_per_s": {
            "float32": flops / times["float32"]["median_s"],
            "bfloat16": flops / times["bfloat16"]["median_s"],
        },
        "stream_elements": elements,
        "matmul_n": matmul_n,
        "probe_compile_s": compile_s,
    }


def probe_gpu_peer(spec, platform_name: str, dtype, dry: bool = False) -> dict:
    """Whether ``spec.gpu_peer`` (cuDNN's LSTM or attention) runs here, with the
    reason when not: tried once, at a tiny size, before the run (``dry``: not
    tried)."""
    name = spec.gpu_peer_name or "GPU peer"
    if platform_name != "gpu":
        return {"available": False, "reason": f"{name} runs on GPUs only"}
    if jnp.dtype(dtype).name not in spec.gpu_peer_dtypes:
        return {
            "available": False,
            "reason": f"{name}: it accepts only {' and '.join(spec.gpu_peer_dtypes)}, "
            f"not {jnp.dtype(dtype).name}",
        }
    if dry:
        return {"available": True, "reason": "not tried (--plan)"}
    from benchmarks.cases import op_case
    from benchmarks.rows import error_text

    try:
        case = op_case(
            spec, spec.sizes["test"], dtype, variants=frozenset({"cudnn"}), cudnn=spec.gpu_peer
        )
        program = case.programs["cudnn"]
        jax.block_until_ready(jax.jit(program.fn)(*program.args))
    except Exception as exc:
        return {"available": False, "reason": f"{name} failed its probe: {error_text(exc)}"}
    return {"available": True, "reason": ""}
