"""The simulated Spark's shell: a real `sh` over the device's root, one per SSH session.

What the product sends runs as it would on a Spark: `sh -c COMMAND` for an
exec (on a pseudo-terminal when the client asked for one), `sh -i` for a login
shell, in the simulated user's environment (sim.device.root: HOME, PATH with
the stand-in tools first, SPARKTUI_ROOT for the product's scripts). A prologue
plays the part of the user's shell start-up: it makes `kill`, a builtin that
would reach this machine's processes, ask the model instead. The process
group is killed when the channel closes; a signal from the client is passed
on; the exit status (or signal) goes back as sshd would send it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import shutil
import signal
import struct
import termios
from typing import Any

from sparktui.sim.device.root import DeviceRoot

PROLOGUE = 'kill() { "$SPARKTUI_ROOT/bin/kill" "$@"; }\n'


def find_sh() -> str:
    """This system's POSIX sh; the simulated device cannot run without one."""
    sh = shutil.which("sh")
    if sh is None:
        raise RuntimeError("the simulated Spark runs the product's own scripts with a POSIX "
                           "`sh`, and this system has none (on Windows, run sparktui in WSL)")
    return sh


async def serve_process(process: Any, root: DeviceRoot, groups: set[int]) -> None:
    """asyncssh `process_factory` body (bytes mode): run the command, report how it ended.

    `groups` holds the process group of every command still running, so the server
    can end them all when it stops, whatever state their sessions are in."""
    import asyncssh  # only the server needs it

    command = process.command
    argv = [find_sh(), "-i"] if command is None else [find_sh(), "-c", PROLOGUE + command]
    term = process.get_terminal_type()
    env = root.environment(process.get_extra_info("username") or "spark", term)
    if term:
        child, master = await _spawn_on_pty(argv, env, str(root.home), process)
        outputs = [_pump_pty(master, process.stdout)]
    else:
        child = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, cwd=str(root.home), start_new_session=True)
        master = None
        outputs = [pipe(child.stdout, process.stdout), pipe(child.stderr, process.stderr)]

    async def feed() -> None:
        while True:
            try:
                data = await process.stdin.read(65536)
            except asyncssh.SignalReceived as exc:
                signal_group(child.pid, exc.signal)
                continue
            except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged) as exc:
                if master is not None and isinstance(exc, asyncssh.TerminalSizeChanged):
                    _set_size(master, exc.width, exc.height)
                continue
            except Exception:
                data = b""
            if not data:
                if master is None and child.stdin is not None:
                    child.stdin.close()
                return
            try:
                if master is not None:
                    os.write(master, data)
                elif child.stdin is not None:
                    child.stdin.write(data)
                    await child.stdin.drain()
            except (OSError, ConnectionError):
                return

    groups.add(child.pid)
    feeder = asyncio.ensure_future(feed())
    closed = asyncio.ensure_future(process.wait_closed())
    pumps = asyncio.ensure_future(asyncio.gather(*outputs))
    try:
        ended = asyncio.ensure_future(child.wait())
        await asyncio.wait({ended, closed}, return_when=asyncio.FIRST_COMPLETED)
        if not ended.done():  # the client went away: so does everything it started
            signal_group(child.pid, "KILL")
        status = await ended
        await asyncio.wait({pumps}, timeout=2)
    finally:
        signal_group(child.pid, "KILL")  # a background job the command left behind
        groups.discard(child.pid)
        for task in (feeder, closed, pumps):
            task.cancel()
        if master is not None:
            with contextlib.suppress(OSError):
                os.close(master)
    with contextlib.suppress(Exception):
        if status < 0:
            process.exit_with_signal(signal.Signals(-status).name.removeprefix("SIG"))
        else:
            process.exit(status)


def signal_group(pid: int, name: str) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, KeyError, ValueError):
        os.killpg(pid, signal.Signals["SIG" + name.removeprefix("SIG")])


async def pipe(reader: Any, writer: Any, *, close: bool = False) -> None:
    """Copy until EOF; either side going away ends it (a session's output, a forward)."""
    try:
        while reader is not None and (data := await reader.read(65536)):
            writer.write(data)
            await writer.drain()
    except Exception:
        pass
    finally:
        if close:
            with contextlib.suppress(Exception):
                writer.close()


def _set_size(fd: int, width: int, height: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


async def _spawn_on_pty(argv: list[str], env: dict[str, str], cwd: str,
                        process: Any) -> tuple[asyncio.subprocess.Process, int]:
    master, slave = pty.openpty()
    width, height, *_ = process.get_terminal_size()
    _set_size(master, width or 80, height or 24)
    try:
        child = await asyncio.create_subprocess_exec(
            *argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
            start_new_session=True)
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    return child, master


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _pump_pty(master: int, sink: Any) -> None:
    loop = asyncio.get_running_loop()
    while True:
        readable = loop.create_future()
        loop.add_reader(master, _wake, readable)
        try:
            await readable
        finally:
            loop.remove_reader(master)
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            continue
        except OSError:  # EIO: every process holding the terminal has gone
            return
        if not data:
            return
        try:
            sink.write(data)
            await sink.drain()
        except Exception:
            return
