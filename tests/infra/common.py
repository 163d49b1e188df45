"""Shared bits of the test infrastructure: the CI policy and process helpers."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SSHD_BINARY = "/usr/sbin/sshd"


def in_ci() -> bool:
    """True when running under CI (env ``CI`` set to true/1/yes)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require(condition: object, why: str) -> None:
    """Fail (under ``CI=true``) or skip (elsewhere) the current test unless `condition` holds.

    Never skips under CI: a CI machine that lacks sshd or netns support is broken.
    """
    if condition:
        return
    if in_ci():
        pytest.fail(f"required test infrastructure missing (CI=true): {why}", pytrace=False)
    pytest.skip(f"test infrastructure missing: {why}")


def run(cmd: list[str], *, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run with captured text output and a readable error on failure."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 30)
    proc = subprocess.run(cmd, check=False, **kwargs)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


# --- process tree helpers (by pid + start time, so a reused pid is never hit) ---

ProcId = tuple[int, int]  # (pid, start time in clock ticks since boot)


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(ppid, starttime, state) of `pid`, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return None
    # comm is in parentheses and may contain anything: split after the last ')'.
    rest = data[data.rindex(")") + 2 :].split()
    state, ppid, starttime = rest[0], int(rest[1]), int(rest[19])
    return ppid, starttime, state


def proc_id(pid: int) -> ProcId | None:
    st = _stat(pid)
    return None if st is None else (pid, st[1])


def alive(pid_id: ProcId) -> bool:
    st = _stat(pid_id[0])
    return st is not None and st[1] == pid_id[1] and st[2] not in ("Z", "X")


def descendants(roots: Iterable[int]) -> list[ProcId]:
    """All live descendants of the given pids (not the roots themselves)."""
    table: dict[int, tuple[int, int, str]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                table[int(name)] = st
    found: list[ProcId] = []
    frontier = set(roots)
    seen = set(frontier)
    while frontier:
        nxt = set()
        for pid, (ppid, start, state) in table.items():
            if ppid in frontier and pid not in seen:
                seen.add(pid)
                nxt.add(pid)
                if state not in ("Z", "X"):
                    found.append((pid, start))
        frontier = nxt
    return found


def processes_with_env(name: str, value: str) -> list[ProcId]:
    """Live processes whose (initial) environment has ``name=value``."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:
            continue
        if needle in env:
            pid_id = proc_id(int(entry))
            if pid_id is not None and alive(pid_id):
                found.append(pid_id)
    return found


def kill_procs(procs: Iterable[ProcId], sig: int = signal.SIGKILL, wait: float = 2.0) -> None:
    """Send `sig` to each still-identical process, then wait briefly for them to go."""
    procs = [p for p in procs if alive(p)]
    for pid, _start in procs:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(alive(p) for p in procs):
        time.sleep(0.01)
