"""The simulated Spark's answer to the GPU-process loop (sparktui.core.gpuprocs).

Stands for GPUPROCS_SCRIPT (the script text is not interpreted): one block per
period from the simulated compute processes, and the loop's control lines on
stdin ("period MS", "poll") honoured as the real script does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sparktui.core.gpuprocs import ARG_SEPARATOR, GPUPROCS_MARKER, MIN_PERIOD_MS
from sparktui.sim.gpu_model import SimDevice


class StdinLines:
    """Complete lines a client wrote to a command's stdin, and an event when one comes."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.arrived = asyncio.Event()
        self._pending = ""

    def feed(self, data: str | bytes) -> None:
        if not data:
            return
        text = data if isinstance(data, str) else data.decode("utf-8", "replace")
        *lines, pending = (self._pending + text).split("\n")
        self._pending = pending[-4096:]
        if lines:
            self.lines.extend(lines[-16:])  # a flood of input keeps only the latest
            self.arrived.set()

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        self.arrived.clear()
        return lines


def gpuprocs_block(device: SimDevice) -> str:
    """One block of the loop for the simulated device."""
    lines = [f"--- {GPUPROCS_MARKER} 0"]
    for p in device.compute_apps():
        uuid = device.gpu(p.gpu or 0).uuid
        lines.append(f"app {uuid}, {p.pid}, {p.exe}, {p.used_memory_mib}")
        uid = 0 if p.user == "root" else 1000
        lines.append(f"proc {p.pid} {uid} {p.user}")
        if p.container_id:  # Docker with systemd, as on DGX OS
            scope = f"system.slice/docker-{p.container_id}.scope"
        elif p.user == "ollama":
            scope = "system.slice/ollama.service"
        else:
            scope = f"user.slice/user-{uid}.slice/session-1.scope"
        lines.append(f"cgroup {p.pid} 0::/{scope}")
        lines.append(f"cmdline {p.pid} {ARG_SEPARATOR.join(p.args.split(' '))}")
    return "\n".join([*lines, "--- end"]) + "\n"


def _period_s(text: str, default: float) -> float:
    return max(MIN_PERIOD_MS, int(text)) / 1000 if text.isdigit() else default


async def serve_gpuprocs(command_line: str, io: Any, device: SimDevice) -> int:
    """Run the loop on a sim.shell.ShellIO until the channel closes (its writes raise)."""
    words = command_line.split()
    at = words.index(GPUPROCS_MARKER) if GPUPROCS_MARKER in words else -1
    period = _period_s(words[at + 1] if 0 <= at < len(words) - 1 else "", 3.0)
    while True:
        io.out(gpuprocs_block(device))  # raises sim.shell.Closed once the client has gone
        await io.drain()
        try:
            await asyncio.wait_for(io.stdin.arrived.wait(), period)
        except TimeoutError:
            continue
        for line in io.stdin.take():  # any line polls at once; "period MS" also sets it
            verb, _, value = line.partition(" ")
            if verb == "period":
                period = _period_s(value.strip(), period)
