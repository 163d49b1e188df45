"""The simulator's side of the stand-in tools (sim.device.standin): nvidia-smi, docker, kill.

Each connection on the relay socket is one run of a stand-in: a JSON line with
its argv, then its stdin. The answer is framed (see sim.device.standin). The answers
come from the device model: `nvidia-smi` renders sim.device.nvsmi over the GPU model,
`kill` ends a simulated process as dash's builtin would, `docker` answers the
few commands the product runs (ps, version, and the Containers tab's
`exec -it ID sh`) from the simulated engine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from typing import Any

from sparktui.sim.device import nvsmi
from sparktui.sim.device.gpu_model import SimDevice
from sparktui.sim.device.root import DOCKER_VERSION
from sparktui.sim.docker.shell import exec_target, serve_container_shell

log = logging.getLogger(__name__)

SIGNALS = {"HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM", "CONT", "STOP"}


class RelayIO:
    """One stand-in run: what it writes goes back framed; its stdin comes line by line."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.stdout, self.stderr, self.stdin = _Sink(self, b"o"), _Sink(self, b"e"), _Lines(reader)

    def frame(self, kind: bytes, data: str | bytes) -> None:
        payload = data.encode() if isinstance(data, str) else data
        if payload or kind == b"x":
            self.writer.write(kind + struct.pack(">I", len(payload)) + payload)

    async def drain(self) -> None:
        await self.writer.drain()


class _Sink:
    def __init__(self, io: RelayIO, kind: bytes) -> None:
        self.io, self.kind = io, kind

    def write(self, text: str) -> None:
        self.io.frame(self.kind, text)


class _Lines:
    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    async def readline(self) -> str:
        return (await self.reader.readline()).decode(errors="replace")


class Relay:
    """Answers the stand-ins on a UNIX socket; `close()` ends the runs still going."""

    def __init__(self, device: SimDevice) -> None:
        self.device = device
        self._server: asyncio.AbstractServer | None = None
        self._runs: set[asyncio.Task[None]] = set()

    async def start(self, path: str) -> Relay:
        self._server = await asyncio.start_unix_server(self._connected, path)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._runs):
            task.cancel()
        await asyncio.gather(*self._runs, return_exceptions=True)

    async def _connected(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._runs.add(task)
        io = RelayIO(reader, writer)
        try:
            argv = json.loads(await reader.readline())
            status = await run(argv[0], argv[1:], io, self.device)
            io.frame(b"x", str(status))
            await io.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the stand-in was killed (its channel closed), or the device stops
        except Exception:
            log.exception("a stand-in's answer failed")
        finally:
            self._runs.discard(task)
            writer.close()


async def run(name: str, args: list[str], io: RelayIO, device: SimDevice) -> int:
    if name == "nvidia-smi":
        return await _nvidia_smi(args, io, device)
    if name == "kill":
        return _kill(args, io, device)
    return await _docker(args, io, device)


async def _nvidia_smi(args: list[str], io: RelayIO, device: SimDevice) -> int:
    try:
        inv = nvsmi.parse(args)
        text = nvsmi.tick(inv, device, first=True)
    except nvsmi.NvsmiError as exc:
        io.stdout.write(exc.stdout)
        io.stderr.write(exc.stderr)
        return exc.exit_status
    if inv.interval is None:
        io.stdout.write(text)
        return 0
    loop = asyncio.get_running_loop()
    start, n = loop.time(), 0
    while True:  # a fixed schedule, as the real loop keeps; ends when the reader goes
        io.stdout.write(text)
        await io.drain()
        n += 1
        await asyncio.sleep(max(0.0, start + n * inv.interval - loop.time()))
        text = nvsmi.tick(inv, device, first=False)


def _kill(args: list[str], io: RelayIO, device: SimDevice) -> int:
    """`kill [-SIG] PID...` as dash's builtin answers."""
    if args and args[0].startswith("-") and args[0] != "--":
        signal_name = args[0][1:].upper().removeprefix("SIG")
        if not signal_name.isdigit() and signal_name not in SIGNALS:
            io.stderr.write(f"sh: 1: kill: invalid signal number or name: {args[0][1:]}\n")
            return 2
        args = args[1:]
    status = 0
    for word in [a for a in args if a != "--"]:
        if not word.isdigit():
            io.stderr.write(f"sh: 1: kill: Illegal number: {word}\n")
            return 2
        try:
            device.kill(int(word))
        except ProcessLookupError:
            io.stderr.write("sh: 1: kill: No such process\n")
            status = 1
        except PermissionError:
            io.stderr.write("sh: 1: kill: Operation not permitted\n")
            status = 1
    return status


async def _docker(args: list[str], io: RelayIO, device: SimDevice) -> int:
    engine = device.docker_engine
    running = engine is not None and engine.running
    target = exec_target(" ".join(["docker", *args]))
    if target is not None:
        return await serve_container_shell(io, device, target[0])
    if args[:1] == ["version"]:
        if not running:
            io.stderr.write(NO_DAEMON)
            return 1
        io.stdout.write(DOCKER_VERSION + "\n")
        return 0
    out, err, status = docker_cli(args, device)
    io.stdout.write(out)
    io.stderr.write(err)
    return status


NO_DAEMON = ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
             "Is the docker daemon running?\n")


def docker_cli(args: list[str], device: Any) -> tuple[str, str, int]:
    """`docker ps [-a] --format '{{json .}}'`, what chat's endpoint discovery runs:
    (stdout, stderr, status). Other subcommands are not simulated."""
    if not args or args[0] != "ps":
        verb = args[0] if args else ""
        return "", f"docker: '{verb}' is not simulated here (only `docker ps`)\n", 1
    engine = device.docker_engine
    if engine is None or not engine.running:
        return "", NO_DAEMON, 1
    everything = "-a" in args or "--all" in args
    lines = []
    for c in engine.state.containers.values():
        if c.running or everything:
            ports = ", ".join(f"{b.get('HostIp') or '0.0.0.0'}:{b['HostPort']}->{spec}"
                              for spec, bs in c.ports.items() if c.running for b in bs)
            lines.append(json.dumps({"ID": c.id[:12], "Names": c.name, "Image": c.image,
                                     "State": c.state, "Ports": ports,
                                     "Networks": c.host_config.get("NetworkMode", "")}) + "\n")
    return "".join(lines), "", 0
