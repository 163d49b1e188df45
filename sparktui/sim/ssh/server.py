"""The simulated Spark: an asyncssh server on loopback whose shell is a real `sh`.

Any user name, its throwaway key only. Exec and shell requests run `sh -c
COMMAND` (or `sh -i`) over the device's root (sim.device.root), on a
pseudo-terminal when asked; asyncssh's redirection carries the bytes, signals
and window sizes. Forwards go through asyncssh's forwarder: to loopback ports
or a simulated server mapped in their place, and to UNIX sockets under the
device's root first (its /var/run/docker.sock is the simulated engine's).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import shutil
import signal
import tempfile
import termios
from collections.abc import Callable
from typing import Any

import asyncssh

from sparktui.core.aio import within
from sparktui.core.device import is_loopback
from sparktui.sim.device.gpu_model import SimDevice
from sparktui.sim.device.root import DeviceRoot

REFRESH_S = 0.25  # how fresh the device's /proc and /sys files are
#: the user's shell start-up: `kill`, a builtin that would reach this machine's
#: processes, is the device's stand-in instead (sim.device.standin)
PROLOGUE = 'kill() { "$SPARKTUI_ROOT/bin/kill" "$@"; }\n'


def _kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class SimServer:
    """A running simulated Spark. Create it with `start_sim()`."""

    def __init__(self, device: SimDevice, root: DeviceRoot) -> None:
        self.device, self.root = device, root
        self.sh = shutil.which("sh") or "sh"  # start_sim made sure there is one
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host, self.port = "127.0.0.1", 0
        self.port_map: dict[int, tuple[str, int]] = {}
        #: where a device port not in port_map leads (the engine's deployed servers)
        self.resolve_port: Callable[[int], tuple[str, int] | None] = lambda port: None
        self._groups: set[int] = set()  # the process groups of the commands running
        self._conns: set[asyncssh.SSHServerConnection] = set()
        self._refreshing = asyncio.Lock()
        self._refresher: asyncio.Task[None] | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None

    def map_port(self, remote_port: int, local_host: str, local_port: int) -> None:
        """Forwards to loopback `remote_port` on the device reach local_host:local_port."""
        self.port_map[remote_port] = (local_host, local_port)

    def write_client_files(self, dirpath: str) -> tuple[str, str]:
        """Write the throwaway `id_ed25519` (mode 0600) and a `known_hosts` for this server."""
        os.makedirs(dirpath, exist_ok=True)
        identity = os.path.join(dirpath, "id_ed25519")
        fd = os.open(identity, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(self.client_key.export_private_key("openssh"))
        known_hosts = os.path.join(dirpath, "known_hosts")
        public = self.host_key.export_public_key("openssh").decode().split()
        with open(known_hosts, "w", encoding="utf-8") as fh:
            fh.write(f"[{self.host}]:{self.port} {public[0]} {public[1]}\n")
        return identity, known_hosts

    async def refresh(self) -> None:
        """Bring the device's files up to date (one refresh at a time, off the loop)."""
        async with self._refreshing:
            await asyncio.to_thread(self.root.refresh)

    async def _refresh_often(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(REFRESH_S)

    def drop_connections(self) -> None:
        """The box froze: every connection dies without a goodbye."""
        for conn in list(self._conns):
            conn.abort()

    async def close(self) -> None:
        """Stop listening, end every command and drop every connection."""
        for group in list(self._groups):
            _kill_group(group)
        if self._acceptor is not None:
            self._acceptor.close()
        # the connections before waiting on the listener: since Python 3.12 its
        # wait_closed() waits for every connection it accepted, and a client that
        # keeps its connection (the app, closing its demo) would wait for ever
        for conn in list(self._conns):
            conn.close()
            with contextlib.suppress(Exception):
                await within(conn.wait_closed(), 2)
        if self._acceptor is not None:
            await self._acceptor.wait_closed()
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(BaseException):
                await self._refresher
        await asyncio.to_thread(self.root.remove)

    async def _serve(self, process: asyncssh.SSHServerProcess) -> None:
        """One exec or shell: a real sh, its I/O redirected to the channel by asyncssh."""
        await self.refresh()  # a command reads the state of the moment it starts
        command, term = process.command, process.get_terminal_type()
        argv = [self.sh, "-i"] if command is None else [self.sh, "-c", PROLOGUE + command]
        env = self.root.environment(process.get_extra_info("username") or "spark", term)
        if term:  # ours: (the child's stdin, its stdout, its stderr) seen from our side
            ours, theirs = pty.openpty()
            width, height = process.get_terminal_size()[:2]
            termios.tcsetwinsize(theirs, (height or 24, width or 80))  # before the sh asks
            child_fds, our_fds = (theirs, theirs, theirs), (ours, os.dup(ours), None)
        else:
            pipes = [os.pipe() for _ in range(3)]
            child_fds = (pipes[0][0], pipes[1][1], pipes[2][1])
            our_fds = (pipes[0][1], pipes[1][0], pipes[2][0])
        try:
            child = await asyncio.create_subprocess_exec(
                *argv, stdin=child_fds[0], stdout=child_fds[1], stderr=child_fds[2], env=env,
                cwd=str(self.root.home), start_new_session=True)
        finally:
            for fd in set(child_fds):
                os.close(fd)
        self._groups.add(child.pid)
        process.set_redirect_pid(child.pid)  # the client's signals go to the sh
        closed = asyncio.ensure_future(process.wait_closed())
        try:
            await process.redirect(*our_fds)
            ended = asyncio.ensure_future(child.wait())
            await asyncio.wait({ended, closed}, return_when=asyncio.FIRST_COMPLETED)
            _kill_group(child.pid)  # the client went, or a job the command left behind
            status = await ended
            with contextlib.suppress(Exception):  # the output until its end, then the status
                await within(asyncio.gather(process.stdout.drain(), process.stderr.drain()), 2)
            with contextlib.suppress(Exception):
                if status < 0:
                    process.exit_with_signal(signal.Signals(-status).name[3:])
                else:
                    process.exit(status)
                await within(closed, 2)  # asyncssh's own clean-up of the redirection
        finally:
            closed.cancel()
            self._groups.discard(child.pid)


class _SSHServer(asyncssh.SSHServer):
    """Per connection: public keys only, forwards to the device's loopback only."""

    def __init__(self, sim: SimServer) -> None:
        self._sim = sim
        self._conn: Any = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._sim._conns.add(conn)
        if self._sim.device.memory.down:  # wedged and rebooting: nobody answers
            asyncio.get_running_loop().call_soon(conn.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        self._sim._conns.discard(self._conn)

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                             orig_port: int) -> Any:
        if not is_loopback(dest_host):
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                "the simulated Spark forwards to its loopback ports only")
        sim = self._sim
        return self._conn.forward_connection(*(sim.port_map.get(dest_port) or sim.resolve_port(
            dest_port) or (dest_host, dest_port)))

    def unix_connection_requested(self, dest_path: str) -> Any:
        # the device's own file first: its docker.sock, even when that engine has stopped
        on_device = os.path.join(self._sim.root.path, dest_path.lstrip("/"))
        return self._conn.forward_unix_connection(on_device if os.path.lexists(on_device)
                                                  else dest_path)

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        return is_loopback(listen_host or "localhost")  # it shares this machine


async def start_sim(host: str = "127.0.0.1", port: int = 0, *, gpus: int = 1,
                    seed: int | None = None, device: SimDevice | None = None) -> SimServer:
    """Start a simulated Spark on host:port (0 picks a free port); its throwaway client
    key is the only one accepted (`write_client_files` saves it)."""
    if shutil.which("sh") is None:  # no sh, no simulated device: say so before anything starts
        raise RuntimeError("the simulated Spark runs the product's own scripts with a POSIX "
                           "`sh`, and this system has none (on Windows, run sparktui in WSL)")
    # Textual runs its loop with asyncio's eager task factory (Python 3.12+), and the demo
    # serves from that loop. asyncssh's server does not answer a public-key request when
    # its tasks start eagerly (the client waits until it gives up), so this loop makes
    # its tasks the ordinary way from here on. A real device's sshd is not affected:
    # sparktui's client side connects under eager tasks.
    loop = asyncio.get_running_loop()
    if loop.get_task_factory() is getattr(asyncio, "eager_task_factory", object()):
        loop.set_task_factory(None)
    device = device or SimDevice(gpus=gpus, seed=seed)
    # in memory where there is a tmpfs: the refresh replaces some 20 files 4 times a second
    path = tempfile.mkdtemp(prefix="sparktui-sim-",
                            dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    try:
        sim = SimServer(device, DeviceRoot(device, path))
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    await sim.refresh()
    sim._refresher = asyncio.get_running_loop().create_task(sim._refresh_often())
    device.memory.on_reboot.append(sim.drop_connections)
    authorized = asyncssh.import_authorized_keys(
        sim.client_key.export_public_key("openssh").decode())
    sim._acceptor = await asyncssh.create_server(
        lambda: _SSHServer(sim), host, port, server_host_keys=[sim.host_key],
        authorized_client_keys=authorized, process_factory=sim._serve, encoding=None,
        password_auth=False, kbdint_auth=False)
    sim.host, sim.port = sim._acceptor.sockets[0].getsockname()[:2]
    return sim
