"""Several JAX processes: on one machine (the loopback address) or one per host.

The glue that ``python -m examples.data_parallel --processes P`` and
tests/test_multiprocess.py share; the parallelism itself is JAX's (``jax.distributed``,
a mesh over every process's devices, CPU collectives through gloo).

- :func:`initialize` joins this process to the group (``jax.distributed.initialize``)
  and checks first that the coordinator's port is free on process 0;
- :func:`start`, :func:`wait` and :func:`stop` run a group of local processes and
  watch them: the first process that fails stops the others and is named in a
  :class:`LaunchError`, so a group never hangs on a lost member;
- :func:`free_port` picks a free port on the loopback address.

How a lost process is noticed. With the launcher, at once: it polls its children
every 0.1 s and kills the rest when one exits with an error. Without it (one
process per host), JAX's coordination service does it: a process that stops
sending heartbeats for ``heartbeat_timeout`` seconds is declared dead and every
other process aborts with ``Terminating process because the JAX distributed
service detected fatal errors ... The following tasks are unhealthy (stopped
sending heartbeats): <its index>``.

Note that ``jax.distributed`` catches SIGTERM (its preemption notifier), so a
process of the group is stopped with SIGKILL.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO

__all__ = [
    "HEARTBEAT_TIMEOUT_S",
    "INIT_TIMEOUT_S",
    "LOOPBACK",
    "SHUTDOWN_TIMEOUT_S",
    "LaunchError",
    "Proc",
    "check_port_free",
    "free_port",
    "initialize",
    "parse_address",
    "python_module",
    "run",
    "simulate_devices",
    "start",
    "stop",
    "summary",
    "wait",
]

LOOPBACK = "127.0.0.1"
# A lost process is declared dead after this long without a heartbeat (JAX's
# default is 100 s); the others then abort.
HEARTBEAT_TIMEOUT_S = 10
# How long a process waits for the whole group to connect at start-up.
INIT_TIMEOUT_S = 120
# How long a finishing process waits for the others to finish too.
SHUTDOWN_TIMEOUT_S = 30
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class LaunchError(RuntimeError):
    """A group of processes could not start or did not finish: the message names
    the process and why (its exit code or signal, and the last line of its error)."""


def parse_address(address: str) -> tuple[str, int]:
    """``"HOST:PORT"`` as ``(host, port)``."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LaunchError(f"the coordinator address must be HOST:PORT; got {address!r}")
    return host.strip("[]"), int(port)


def free_port(host: str = LOOPBACK) -> int:
    """A port that is free on ``host`` now (the system's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_port_free(host: str, port: int) -> None:
    """Raises :class:`LaunchError` when ``host:port`` cannot be bound (another
    program listens there). JAX's coordinator gives no clear error of its own: it
    fails with ``Failed to add port to server`` and a crash."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise LaunchError(
                f"the coordinator port {port} on {host or 'every address'} is already in use "
                f"(another program listens there); choose another port"
            ) from None


def simulate_devices(count: int) -> None:
    """``count`` simulated CPU devices in this process; call before JAX starts."""
    flags = re.sub(
        r"--xla_force_host_platform_device_count=\S+", "", os.environ.get("XLA_FLAGS", "")
    )
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()
    os.environ["JAX_PLATFORMS"] = "cpu"


def _pin_gloo_to_loopback() -> None:
    # Gloo listens on the address the machine's host name resolves to, which can be a
    # network interface; a group on one machine keeps its traffic on the loopback.
    # JAX passes no host name of its own, so the factory gets one here.
    import functools

    from jax._src.lib import _jax

    make = getattr(_jax, "make_gloo_tcp_collectives", None)
    if make is not None and not isinstance(make, functools.partial):
        _jax.make_gloo_tcp_collectives = functools.partial(make, hostname=LOOPBACK)


def initialize(
    coordinator: str | None,
    num_processes: int | None,
    process_id: int | None,
    *,
    heartbeat_timeout: int = HEARTBEAT_TIMEOUT_S,
    init_timeout: int = INIT_TIMEOUT_S,
    shutdown_timeout: int = SHUTDOWN_TIMEOUT_S,
) -> None:
    """``jax.distributed.initialize`` with CPU collectives through gloo; call before
    anything else touches JAX's devices.

    ``coordinator`` is process 0's ``HOST:PORT``; ``None`` for all three arguments
    reads them from the cluster's environment (Slurm, Open MPI, TPU). On the
    loopback address the coordinator and gloo listen on the loopback only;
    otherwise the coordinator listens on every address (JAX's default). Process 0
    checks that the port is free first (:class:`LaunchError` if not).
    """
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs = dict(
        initialization_timeout=init_timeout,
        heartbeat_timeout_seconds=heartbeat_timeout,
        shutdown_timeout_seconds=shutdown_timeout,
    )
    if coordinator is not None:
        host, port = parse_address(coordinator)
        local = host in (LOOPBACK, "localhost")
        if local:
            _pin_gloo_to_loopback()
            kwargs["coordinator_bind_address"] = f"{LOOPBACK}:{port}"
        if process_id == 0:
            check_port_free(LOOPBACK if local else "", port)
    jax.distributed.initialize(coordinator, num_processes, process_id, **kwargs)


@dataclass
class Proc:
    """One process of a group: its index, the ``Popen`` and its output files."""

    index: int
    popen: subprocess.Popen
    stdout: IO[str]
    stderr: IO[str]

    def output(self) -> tuple[str, str]:
        """What it wrote so far to stdout and stderr."""
        for f in (self.stdout, self.stderr):
            f.flush()
        with open(self.stdout.name) as out, open(self.stderr.name) as err:
            return out.read(), err.read()


def start(
    commands: Sequence[Sequence[str]], env: Mapping[str, str] | None = None, cwd: str = ROOT
) -> list[Proc]:
    """Starts one process per command, its output to temporary files; stop them
    with :func:`stop` (in a ``finally``)."""
    procs: list[Proc] = []
    try:
        for i, command in enumerate(commands):
            # Closed (and deleted) by stop().
            out = tempfile.NamedTemporaryFile("w+", prefix=f"p{i}-", suffix=".out")  # noqa: SIM115
            err = tempfile.NamedTemporaryFile("w+", prefix=f"p{i}-", suffix=".err")  # noqa: SIM115
            popen = subprocess.Popen(
                list(command), stdout=out, stderr=err, env=dict(env or os.environ), cwd=cwd
            )
            procs.append(Proc(i, popen, out, err))
    except BaseException:
        stop(procs)
        raise
    return procs


def stop(procs: Sequence[Proc]) -> None:
    """Kills (SIGKILL) every process still running, reaps them all and deletes their
    output files (read them before)."""
    for p in procs:
        if p.popen.poll() is None:
            p.popen.kill()
    for p in procs:
        p.popen.wait()
        p.stdout.close()
        p.stderr.close()


def summary(returncode: int | None, stderr: str) -> str:
    """How a process ended, in one line: its exit code or signal and its last error."""
    if returncode is None:
        how = "was still running"
    elif returncode < 0:
        how = f"was killed by {signal.Signals(-returncode).name}"
    else:
        how = f"exited with code {returncode}"
    lost = re.search(r"tasks are unhealthy \(stopped sending heartbeats\):\s*([\d\s,]+)", stderr)
    if lost:
        ids = ", ".join(lost.group(1).split())
        return f"{how}: the distributed service lost process {ids} (no heartbeat)"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [
        line
        for line in lines
        if re.match(r"^[\w.]*(Error|Exception|Exit)\b", line) or line.startswith("error:")
    ]
    last = errors[-1] if errors else (lines[-1] if lines else "")
    return f"{how}: {last[:500]}" if last else how


def wait(procs: Sequence[Proc], timeout: float, poll: float = 0.1) -> None:
    """Waits until every process has exited with code 0. Raises :class:`LaunchError`
    as soon as one fails (naming it and every other one that failed by then), or
    when ``timeout`` seconds pass; the caller then stops the rest."""
    deadline = time.monotonic() + timeout
    while True:
        codes = [p.popen.poll() for p in procs]
        failed = [p for p, c in zip(procs, codes, strict=True) if c not in (None, 0)]
        if failed:
            time.sleep(poll)  # the others' reports of the same fault, if any
            lines = [
                f"process {p.index} (pid {p.popen.pid}) {summary(p.popen.poll(), p.output()[1])}"
                for p in procs
                if p.popen.poll() not in (None, 0)
            ]
            raise LaunchError("; ".join(lines))
        if all(c == 0 for c in codes):
            return
        if time.monotonic() > deadline:
            running = [str(p.index) for p, c in zip(procs, codes, strict=True) if c is None]
            raise LaunchError(
                f"process {', '.join(running)} still running after {timeout:.0f} s: stopped"
            )
        time.sleep(poll)


def run(
    commands: Sequence[Sequence[str]],
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: str = ROOT,
) -> list[tuple[str, str]]:
    """Runs a group to the end: each process's ``(stdout, stderr)``; a failure or
    the timeout raises :class:`LaunchError`, and no process outlives the call."""
    procs = start(commands, env, cwd)
    try:
        wait(procs, timeout)
        return [p.output() for p in procs]
    finally:
        stop(procs)


def python_module(module: str, *args: str) -> list[str]:
    """The command that runs ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]
