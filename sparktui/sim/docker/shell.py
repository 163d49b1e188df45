"""`docker exec -it CONTAINER sh` on the simulated Spark: a small shell "in" a container.

What the Containers tab's `E` runs over SSH. It answers like a busybox shell in
the container (prompt, hostname, a few commands, exit) so the demo's shell key
works end to end against the simulated device.
"""

from __future__ import annotations

import shlex
from typing import Any

EXEC_FLAGS = {"-i", "-t", "-it", "-ti", "--interactive", "--tty"}


def exec_target(command: str) -> tuple[str, str] | None:
    """(container, shell) when `command` is `docker [-H sock] exec -it ID SHELL`."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if words[:1] != ["docker"]:
        return None
    words = words[1:]
    if words[:1] == ["-H"]:
        words = words[2:]
    if words[:1] != ["exec"]:
        return None
    rest = [w for w in words[1:] if w not in EXEC_FLAGS]
    if len(rest) != 2:
        return None
    return rest[0], rest[1]


async def serve_container_shell(process: Any, device: Any, container: str) -> int:
    """Prompt, read lines, answer; `exit` (or EOF) ends it. Returns the exit status."""
    engine = device.docker_engine
    try:
        found = engine.state.container(container) if engine is not None else None
    except Exception:  # EngineError: no such container
        found = None
    if found is None or not found.running:
        process.stderr.write(f"Error response from daemon: container {container} is not "
                             "running\n")
        return 1
    hostname = found.id[:12]
    status = 0
    while True:
        process.stdout.write("/ # ")
        try:
            line = await process.stdin.readline()
        except Exception:  # a signal, a resize or the client gone: the shell ends
            return status
        if not line:
            return status
        words = line.split()
        if not words:
            continue
        name = words[0]
        if name == "exit":
            return int(words[1]) if len(words) > 1 and words[1].isdigit() else status
        if name == "hostname":
            process.stdout.write(hostname + "\n")
        elif name == "echo":
            process.stdout.write(" ".join(words[1:]) + "\n")
        elif name == "pwd":
            process.stdout.write("/\n")
        else:
            process.stdout.write(f"sh: {name}: not simulated in this container\n")
            status = 127
            continue
        status = 0
