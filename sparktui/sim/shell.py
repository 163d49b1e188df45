"""The command dispatcher behind the simulated Spark's SSH server.

A tiny `sh -c` look-alike: the command string is split with shlex; `;`, `&&`,
`||` and the redirections `>/dev/null`, `2>/dev/null`, `2>&1` work, pipes do
not. Every command writes to a process-like object (`stdout.write`,
`stderr.write`, `is_closing()`), so this serves asyncssh's `process_factory`
and tests alike. Streaming commands (nvidia-smi loops, sleep, the host-stat
stream) stop as soon as the channel closes or a signal arrives.

The host-statistics stream's format and script live in sparktui.core.hostscript.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sparktui.core.facts import FACTS_MARKER
from sparktui.core.gpuprocs import GPUPROCS_MARKER
from sparktui.core.hostscript import (
    BLOCK_BEGIN,
    BLOCK_END,
    HOSTSTAT_MARKER,
    THERMAL_PREFIX,
)
from sparktui.core.model_cache import MODELS_MARKER
from sparktui.sim import docker_host, gb10_shell, hostfiles, nvsmi
from sparktui.sim.container_shell import exec_target, serve_container_shell
from sparktui.sim.gb10_shell import hoststat_block
from sparktui.sim.gpu_model import NCPU, SimDevice
from sparktui.sim.gpuprocs import StdinLines, serve_gpuprocs

# The host-statistics stream's framing, as the telemetry service reads it (the blocks
# are written by sim.gb10_shell.hoststat_block).
HOSTSTAT_BEGIN = BLOCK_BEGIN
HOSTSTAT_END = BLOCK_END
HOSTSTAT_THERMAL = THERMAL_PREFIX


# --- the process-like side ---------------------------------------------------------------

class Closed(Exception):
    """The client went away (or signalled us): stop what is running."""


_DEVNULL = "devnull"


class ShellIO:
    """Output of one command onto a process-like object, with close/stop detection."""

    def __init__(self, process: Any) -> None:
        self.process = process
        self.stopped_by: str | None = None  # the signal name that stopped us
        self.stdin = StdinLines()  # the lines the client writes (a loop's control lines)
        self._out = "out"
        self._err = "err"

    def redirected(self, out: str, err: str) -> ShellIO:
        view = ShellIO.__new__(ShellIO)
        view.__dict__.update(self.__dict__)
        view._root = getattr(self, "_root", self)
        view._out, view._err = out, err
        return view

    @property
    def _state(self) -> ShellIO:
        return getattr(self, "_root", self)

    @property
    def closed(self) -> bool:
        if self._state.stopped_by is not None:
            return True
        closing = getattr(self.process, "is_closing", None)
        return bool(closing and closing())

    def stop(self, signal_name: str) -> None:
        self._state.stopped_by = signal_name

    def _write(self, sink: str, text: str) -> None:
        if not text or sink == _DEVNULL:
            return
        if self.closed:
            raise Closed
        stream = self.process.stdout if sink == "out" else self.process.stderr
        try:
            stream.write(text)
        except (BrokenPipeError, ConnectionError, OSError) as exc:
            raise Closed from exc

    def out(self, text: str) -> None:
        self._write(self._out, text)

    def err(self, text: str) -> None:
        self._write(self._err, text)

    async def drain(self) -> None:
        """Wait for the client to take the output (back-pressure), or raise Closed."""
        drain = getattr(self.process.stdout, "drain", None)
        if drain is None:
            return
        try:
            await drain()
        except Exception as exc:  # asyncssh raises its own errors on a dead channel
            raise Closed from exc
        if self.closed:
            raise Closed

    async def sleep(self, seconds: float) -> None:
        """Sleep, waking early (with Closed) when the channel closes or a signal arrives."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, seconds)
        while True:
            if self.closed:
                raise Closed
            left = deadline - loop.time()
            if left <= 0:
                return
            # Polled in short slices: cheap, and works for any process-like object.
            await asyncio.sleep(min(left, 0.05))


# --- commands --------------------------------------------------------------------------------

Handler = Callable[[list[str], ShellIO, "Context"], Awaitable[int]]


class Context:
    """What commands see: the simulated device and the login user."""

    def __init__(self, device: SimDevice, user: str = "spark") -> None:
        self.device = device
        self.user = user


_COMMANDS: dict[str, Handler] = {}
KNOWN_PATHS = {"nvidia-smi": "/usr/bin/nvidia-smi", "sh": "/usr/bin/sh",
               "bash": "/usr/bin/bash", "timeout": "/usr/bin/timeout"}
# Docker is installed (its socket answers only when an engine is attached: docker_host)
KNOWN_PATHS.update(docker="/usr/bin/docker", dockerd="/usr/bin/dockerd")


def command(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for name in names:
            _COMMANDS[name] = fn
            KNOWN_PATHS.setdefault(name, f"/usr/bin/{name}")
        return fn
    return register


def _sh_error(io: ShellIO, name: str, message: str) -> None:
    io.err(f"sh: 1: {name}: {message}\n")


async def _ticking(io: ShellIO, interval: float, emit: Callable[[int], str]) -> int:
    """Call emit(n) every `interval` s on a fixed schedule until the channel closes."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    while True:
        io.out(emit(n))
        await io.drain()
        n += 1
        await io.sleep(start + n * interval - loop.time())


@command("nvidia-smi")
async def _nvidia_smi(args: list[str], io: ShellIO, ctx: Context) -> int:
    try:
        inv = nvsmi.parse(args)
        text = nvsmi.tick(inv, ctx.device, first=True)
    except nvsmi.NvsmiError as exc:
        io.out(exc.stdout)
        io.err(exc.stderr)
        return exc.exit_status
    if inv.interval is None:
        io.out(text)
        return 0
    return await _ticking(io, inv.interval,
                          lambda n: text if n == 0 else nvsmi.tick(inv, ctx.device, first=False))


@command("cat")
async def _cat(args: list[str], io: ShellIO, ctx: Context) -> int:
    status = 0
    for pattern in [a for a in args if a != "--"]:
        for path in hostfiles.expand(pattern):
            text = hostfiles.read(path, ctx.device)
            if text is None:
                io.err(f"cat: {path}: No such file or directory\n")
                status = 1
            else:
                io.out(text)
    return status


@command("uname")
async def _uname(args: list[str], io: ShellIO, ctx: Context) -> int:
    flags = ""
    for a in args:
        if a == "--all":
            a = "-a"
        if not re.fullmatch(r"-[asnrvmpio]+", a):
            io.err(f"uname: invalid option -- '{a.lstrip('-')[:1]}'\n"
                   "Try 'uname --help' for more information.\n")
            return 1
        flags += a[1:]
    io.out(hostfiles.uname(ctx.device, flags))
    return 0


@command("hostname")
async def _hostname(args: list[str], io: ShellIO, ctx: Context) -> int:
    io.out(ctx.device.hostname + "\n")
    return 0


@command("whoami")
async def _whoami(args: list[str], io: ShellIO, ctx: Context) -> int:
    io.out(ctx.user + "\n")
    return 0


@command("nproc")
async def _nproc(args: list[str], io: ShellIO, ctx: Context) -> int:
    io.out(f"{NCPU}\n")
    return 0


@command("echo")
async def _echo(args: list[str], io: ShellIO, ctx: Context) -> int:
    newline = "\n"
    if args[:1] == ["-n"]:
        args, newline = args[1:], ""
    io.out(" ".join(args) + newline)
    return 0


@command("true", ":", "export")  # the environment is not modelled: export is a no-op
async def _true(args: list[str], io: ShellIO, ctx: Context) -> int:
    return 0


@command("false")
async def _false(args: list[str], io: ShellIO, ctx: Context) -> int:
    return 1


@command("exit")
async def _exit(args: list[str], io: ShellIO, ctx: Context) -> int:
    try:
        status = int(args[0]) & 0xFF if args else 0
    except ValueError:
        _sh_error(io, "exit", f"Illegal number: {args[0]}")
        status = 2
    raise _Exit(status)


@command("sleep")
async def _sleep(args: list[str], io: ShellIO, ctx: Context) -> int:
    try:
        seconds = sum(float(a) for a in args) if args else None
    except ValueError:
        seconds = None
    if seconds is None:
        io.err("sleep: missing or invalid operand\nTry 'sleep --help' for more information.\n")
        return 1
    await io.sleep(seconds)
    return 0


@command("command", "which")
async def _command_v(args: list[str], io: ShellIO, ctx: Context) -> int:
    names = [a for a in args if not a.startswith("-")]
    status = 0
    for name in names:
        if name in KNOWN_PATHS:
            io.out(KNOWN_PATHS[name] + "\n")
        else:
            status = 1
    return status


@command("id")
async def _id(args: list[str], io: ShellIO, ctx: Context) -> int:
    out, status = docker_host.id_output(args, ctx.user)
    io.out(out)
    return status


@command("test", "[")
async def _test(args: list[str], io: ShellIO, ctx: Context) -> int:
    return docker_host.test_status(args, ctx.device)


@command("docker")
async def _docker(args: list[str], io: ShellIO, ctx: Context) -> int:
    out, err, status = docker_host.docker_cli(args, ctx.device)
    io.out(out)
    io.err(err)
    return status


@command("printf")
async def _printf(args: list[str], io: ShellIO, ctx: Context) -> int:
    io.out(docker_host.printf_output(args, home=f"/home/{ctx.user}"))
    return 0


@command("mkdir")
async def _mkdir(args: list[str], io: ShellIO, ctx: Context) -> int:
    return 0  # files are not modelled: the directories (a deploy's volumes) "exist"


@command("head")
async def _head(args: list[str], io: ShellIO, ctx: Context) -> int:
    return _on_model_disk("head", args, io, ctx)


@command("rm")
async def _rm(args: list[str], io: ShellIO, ctx: Context) -> int:
    return _on_model_disk("rm", args, io, ctx)


def _on_model_disk(name: str, args: list[str], io: ShellIO, ctx: Context) -> int:
    """A model's config.json or its delete: the only files modelled (sim.model_disk)."""
    out, err, status = ctx.device.model_disk.command(name, args, f"/home/{ctx.user}")
    io.out(out)
    io.err(err)
    return status


@command("ps")
async def _ps(args: list[str], io: ShellIO, ctx: Context) -> int:
    out, err, status = hostfiles.ps_command(args, ctx.device)
    io.out(out)
    io.err(err)
    return status


@command("df")
async def _df(args: list[str], io: ShellIO, ctx: Context) -> int:
    out, err, status = hostfiles.df([a for a in args if not a.startswith("-")])
    io.out(out)
    io.err(err)
    return status


@command("kill")
async def _kill(args: list[str], io: ShellIO, ctx: Context) -> int:
    out, err, status = hostfiles.kill_command(args, ctx.device)
    io.out(out)
    io.err(err)
    return status


@command("timeout")
async def _timeout(args: list[str], io: ShellIO, ctx: Context) -> int:
    while args and args[0].startswith("-"):
        args = args[2:] if args[0] in ("-s", "-k", "--signal", "--kill-after") else args[1:]
    if len(args) < 2:
        io.err("timeout: missing operand\nTry 'timeout --help' for more information.\n")
        return 125
    try:
        limit = float(args[0].rstrip("s"))
    except ValueError:
        io.err(f"timeout: invalid time interval '{args[0]}'\n")
        return 125
    try:
        return await asyncio.wait_for(run_argv(args[1:], io, ctx), limit)
    except TimeoutError:
        return 124


@command("sh", "bash")
async def _sh(args: list[str], io: ShellIO, ctx: Context) -> int:
    if len(args) >= 2 and args[0] == "-c":
        if len(args) >= 3 and args[2] == HOSTSTAT_MARKER:
            return await _hoststat(args[3:], io, ctx)
        if len(args) >= 3 and args[2] in gb10_shell.MARKERS:
            # stands for the post-mortem and memory-action scripts (sim.gb10_shell)
            io.out(gb10_shell.run_marker(args[2], ctx.device))
            return 0
        if len(args) >= 3 and args[2] == MODELS_MARKER:  # stands for MODELS_SCRIPT
            io.out(ctx.device.model_disk.listing(f"/home/{ctx.user}"))
            return 0
        if len(args) >= 3 and args[2] == FACTS_MARKER:
            # stands for FACTS_SCRIPT, as _hoststat does for the host-stat script
            from sparktui.sim.hostfacts import facts_output

            io.out(facts_output(ctx.device, home=f"/home/{ctx.user}"))
            return 0
        return await execute(args[1], io, ctx)  # `exit` leaves this inner shell only
    io.err("sh: only 'sh -c COMMAND' is simulated\n")
    return 2


async def _hoststat(args: list[str], io: ShellIO, ctx: Context) -> int:
    # Stands for HOSTSTAT_SCRIPT: the script text itself is not interpreted.
    try:
        interval_ms = int(args[0]) if args else 1000
    except ValueError:
        interval_ms = 1000
    interval = max(interval_ms, 10) / 1000.0
    return await _ticking(io, interval, lambda n: hoststat_block(ctx.device))


# --- parsing and running command lines ----------------------------------------------------

class _Exit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_OPERATORS = (";", "&&", "||")


def _split(command: str) -> list[str]:
    lex = shlex.shlex(command, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    return list(lex)


async def run_argv(argv: list[str], io: ShellIO, ctx: Context) -> int:
    """Run one simple command (no operators, no redirections)."""
    while argv and _ASSIGNMENT.match(argv[0]):  # FOO=bar cmd: the env is not modelled
        argv = argv[1:]
    if argv[:1] == ["exec"]:
        argv = argv[1:]
    if not argv:
        return 0
    name = argv[0].rsplit("/", 1)[-1] if argv[0].startswith("/usr/") else argv[0]
    handler = _COMMANDS.get(name)
    if handler is None:
        _sh_error(io, argv[0], "not found")
        return 127
    return await handler(argv[1:], io, ctx)


def _redirections(words: list[str], io: ShellIO) -> tuple[list[str], ShellIO]:
    out, err = io._out, io._err
    argv: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in (">", ">>", "<", ">&") and i + 1 < len(words):
            fd = "1" if word != "<" else "0"
            if argv and argv[-1] in ("1", "2") and word != "<":
                fd = argv.pop()
            target = words[i + 1]
            if word == ">&" or target.startswith("&"):
                target_sink = {"1": out, "2": err}.get(target.lstrip("&"), out)
            elif word == "<":
                target_sink = None
            else:
                target_sink = _DEVNULL  # files are not modelled: like /dev/null
            if target_sink is not None:
                if fd == "1":
                    out = target_sink
                else:
                    err = target_sink
            i += 2
            continue
        argv.append(word)
        i += 1
    return argv, io.redirected(out, err)


async def execute(command: str, io: ShellIO, ctx: Context) -> int:
    """Run a command line: simple commands joined by ; && ||. Returns the exit status.

    Raises Closed when the channel closed (or a signal stopped it) meanwhile.
    """
    if GPUPROCS_MARKER in command:
        return await serve_gpuprocs(command, io, ctx.device)
    if docker_host.PROBE_MARK in command:
        # stands for core.docker_problems.diagnose_command (if/$() are not simulated)
        io.out(docker_host.probe_line(command, ctx.device, ctx.user))
        return 0
    try:
        return await _execute(command, io, ctx)
    except _Exit as exc:
        return exc.status


async def _execute(command: str, io: ShellIO, ctx: Context) -> int:
    """execute(), except that `exit` raises _Exit so a login shell can end the session."""
    try:
        words = _split(command)
    except ValueError as exc:  # unbalanced quotes
        io.err(f"sh: 1: Syntax error: {exc}\n")
        return 2
    if any(w in ("|", "&", "(", ")", "|&") for w in words):
        io.err("sh: 1: pipes, background jobs and subshells are not simulated\n")
        return 2
    status = 0
    op = ";"
    current: list[str] = []
    for word in [*words, ";"]:
        if word not in _OPERATORS:
            current.append(word)
            continue
        if current and (op == ";" or (op == "&&") == (status == 0)):
            # $? is the only expansion simulated; quoting is not tracked.
            current = [str(status) if w == "$?" else w for w in current]
            argv, view = _redirections(current, io)
            status = await run_argv(argv, view, ctx)
        current, op = [], word
    return status


async def serve_process(process: Any, device: SimDevice, *, user: str | None = None) -> None:
    """asyncssh `process_factory` body: run the exec command (or a small shell), then exit."""
    io = ShellIO(process)
    ctx = Context(device, user or _user_of(process))
    status = 0
    target = exec_target(process.command) if process.command else None
    if process.command is None:
        status = await _interactive(process, io, ctx)
    elif target is not None:  # the Containers tab's shell key (docker exec -it ID sh)
        status = await serve_container_shell(process, device, target[0])
    else:
        watcher = asyncio.ensure_future(_watch_stdin(process, io))
        try:
            status = await execute(process.command, io, ctx)
        except Closed:
            status = 130
        finally:
            watcher.cancel()
    if io.closed and io.stopped_by is None:
        return  # the client is gone: nobody to tell
    try:
        if io.stopped_by is not None:
            process.exit_with_signal(io.stopped_by)
        else:
            process.exit(status)
    except (BrokenPipeError, OSError):
        pass


def _user_of(process: Any) -> str:
    try:
        return process.get_extra_info("username") or "spark"
    except Exception:
        return "spark"


async def _watch_stdin(process: Any, io: ShellIO) -> None:
    """Turn SSH signals/breaks into a stop; collect stdin's lines (control lines) meanwhile."""
    import asyncssh  # only the server needs it; keep this module light to import

    while not io.closed:
        try:
            data = await process.stdin.read(65536)
        except (asyncssh.SignalReceived, asyncssh.BreakReceived) as exc:
            io.stop(getattr(exc, "signal", "INT"))
            return
        except asyncssh.TerminalSizeChanged:
            continue
        except Exception:
            return
        if not data:
            # At EOF reads return at once; a later signal is still queued behind it.
            await asyncio.sleep(0.1)
        io.stdin.feed(data)


async def _interactive(process: Any, io: ShellIO, ctx: Context) -> int:
    """A minimal login shell: banner, prompt, one command line per line."""
    import asyncssh

    io.out(f"Welcome to NVIDIA DGX Spark ({ctx.device.hostname}, sparktui simulator)\n"
           f"Last login: {time.strftime('%a %b %d %H:%M:%S %Y')}\n")
    status = 0
    while True:
        try:
            io.out(f"{ctx.user}@{ctx.device.hostname}:~$ ")
            line = await process.stdin.readline()
        except (asyncssh.SignalReceived, asyncssh.BreakReceived, asyncssh.TerminalSizeChanged):
            continue
        except (Closed, Exception):
            return status
        if not line:
            return status
        try:
            status = await _execute(line.strip(), io, ctx)
        except _Exit as exc:
            return exc.status
        except Closed:
            return status
