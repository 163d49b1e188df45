"""The simulator's side of the stand-in tools (sim.device.standin): nvidia-smi, docker, kill.

Each connection on the relay socket is one run of a stand-in: a JSON line with
its argv, then its stdin; the answer goes back framed (see sim.device.standin).
`nvidia-smi` renders sim.device.nvsmi over the GPU model, `kill` ends a
simulated process, `docker` answers what the product runs on a device:
`docker ps --format '{{json .}}'` (chat's endpoint discovery), `docker version`,
and the Containers tab's `docker exec -it ID sh`, a small shell "in" the container.
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

log = logging.getLogger(__name__)

NO_DAEMON = ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
             "Is the docker daemon running?\n")
KILL_ERRORS = {ValueError: "Illegal number", ProcessLookupError: "No such process",
               PermissionError: "Operation not permitted"}  # as dash's builtin says them


class Run:
    """One stand-in run: `out`/`err` go back framed; its stdin comes line by line."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 device: SimDevice) -> None:
        self.reader, self.writer, self.device = reader, writer, device

    def frame(self, kind: bytes, text: str) -> None:
        if text or kind == b"x":
            self.writer.write(kind + struct.pack(">I", len(text.encode())) + text.encode())

    def out(self, text: str) -> None:
        self.frame(b"o", text)

    async def nvidia_smi(self, args: list[str]) -> int:
        try:
            inv = nvsmi.parse(args)
            text = nvsmi.tick(inv, self.device, first=True)
        except nvsmi.NvsmiError as exc:
            self.out(exc.stdout)
            self.frame(b"e", exc.stderr)
            return exc.exit_status
        loop = asyncio.get_running_loop()
        start, n = loop.time(), 0
        while True:  # a loop keeps a fixed schedule, as the real one; ends when the reader goes
            self.out(text)
            if inv.interval is None:
                return 0
            await self.writer.drain()
            n += 1
            await asyncio.sleep(max(0.0, start + n * inv.interval - loop.time()))
            text = nvsmi.tick(inv, self.device, first=False)

    async def kill(self, args: list[str]) -> int:
        """`kill [-SIG] PID...`: the product's way to end a (simulated) process."""
        status = 0
        for word in [a for a in args if not a.startswith("-")]:
            try:
                self.device.kill(int(word))
            except (ValueError, ProcessLookupError, PermissionError) as exc:
                self.frame(b"e", f"sh: 1: kill: {KILL_ERRORS[type(exc)]}\n")
                status = 1
        return status

    async def docker(self, args: list[str]) -> int:
        engine = self.device.docker_engine
        if engine is None or not engine.running:
            self.frame(b"e", NO_DAEMON)
            return 1
        if args[:1] == ["version"]:
            self.out(DOCKER_VERSION + "\n")
            return 0
        if args[:1] == ["ps"]:
            for c in engine.state.containers.values():
                if c.running or "-a" in args or "--all" in args:
                    self.out(json.dumps(c.ps_row()) + "\n")
            return 0
        words = [w for w in args[1:] if w not in ("-i", "-t", "-it", "-ti")]
        if args[:1] == ["exec"] and len(words) == 2:
            return await self._container_shell(engine, words[0])
        self.frame(b"e", f"docker: '{' '.join(args[:1])}' is not simulated here\n")
        return 1

    async def _container_shell(self, engine: Any, ref: str) -> int:
        """Prompt, read lines, answer; `exit` (or EOF) ends it."""
        found = engine.state.find(ref)
        if found is None or not found.running:
            self.frame(b"e", f"Error response from daemon: container {ref} is not running\n")
            return 1
        answers = {"hostname": found.id[:12] + "\n", "pwd": "/\n"}
        status = 0
        while True:
            self.out("/ # ")
            line = (await self.reader.readline()).decode(errors="replace")
            words = line.split() or [""]
            if not line or words[0] == "exit":
                return int(words[1]) if words[1:] and words[1].isdigit() else status
            if words[0] == "echo":
                answers["echo"] = " ".join(words[1:]) + "\n"
            if words[0]:
                status = 0 if words[0] in answers else 127
                self.out(answers.get(words[0], f"sh: {words[0]}: not simulated here\n"))


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
        run = Run(reader, writer, self.device)
        try:
            name, *args = json.loads(await reader.readline())
            answer = {"nvidia-smi": run.nvidia_smi, "kill": run.kill}.get(name, run.docker)
            run.frame(b"x", str(await answer(args)))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the stand-in was killed (its channel closed), or the device stops
        except Exception:
            log.exception("a stand-in's answer failed")
        finally:
            self._runs.discard(task)
            writer.close()
