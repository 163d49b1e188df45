"""The simulated Spark: an asyncssh server on loopback that answers like a DGX Spark.

Any user name, public-key authentication only. Exec and shell requests run in
a real `sh` over the device's root directory (sim.ssh.shell, sim.device.root),
whose files a refresh task keeps in step with the model every REFRESH_S; the
stand-in tools on its PATH reach the model through the relay (sim.ssh.relay). Local port
forwards (direct-tcpip) reach loopback ports of this machine, or a port mapped
with `SimServer.map_port` (so a simulated service on a random port can stand in
for, say, Ollama's 11434); UNIX socket forwards reach real paths or mapped ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from typing import Any

import asyncssh

from sparktui.core.aio import within
from sparktui.core.device import is_loopback
from sparktui.sim.device.gpu_model import SimDevice
from sparktui.sim.device.root import DeviceRoot
from sparktui.sim.ssh import shell
from sparktui.sim.ssh.relay import Relay

REFRESH_S = 0.25  # how fresh the device's /proc and /sys files are


class SimServer:
    """A running simulated Spark. Create it with `start_sim()`."""

    def __init__(self, device: SimDevice, host_key: asyncssh.SSHKey,
                 client_key: asyncssh.SSHKey | None, root: DeviceRoot) -> None:
        self.device = device
        self.root = root
        self._relay: Relay | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._refreshing = asyncio.Lock()
        self._groups: set[int] = set()  # the process groups of the commands running
        self.host_key = host_key
        self.host_key_fingerprint: str = host_key.get_fingerprint("sha256")
        self.client_key = client_key
        self.host = "127.0.0.1"
        self.port = 0
        self.sessions_started = 0
        self.port_map: dict[int, tuple[str, int]] = {}
        self.unix_map: dict[str, str] = {}
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._acceptor: Any = None
        self._conns: set[asyncssh.SSHServerConnection] = set()

    # --- what tests and the demo use ------------------------------------------------
    @property
    def active_sessions(self) -> int:
        """Commands or shells still running on the server side."""
        return self._active

    @property
    def connections(self) -> int:
        return len(self._conns)

    async def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no session runs; False on timeout (a leak)."""
        try:
            await within(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def map_port(self, remote_port: int, local_host: str, local_port: int) -> None:
        """Forwards to loopback `remote_port` on the sim reach local_host:local_port instead."""
        self.port_map[remote_port] = (local_host, local_port)

    def map_unix(self, remote_path: str, local_path: str) -> None:
        self.unix_map[remote_path] = local_path

    @property
    def known_hosts_line(self) -> str:
        """The known_hosts line OpenSSH and asyncssh check this server's key against."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        name = host if self.port == 22 else f"[{host.strip('[]')}]:{self.port}"
        public = self.host_key.export_public_key("openssh").decode().split()
        return f"{name} {public[0]} {public[1]}"

    def write_client_files(self, dirpath: str) -> tuple[str | None, str]:
        """Write `id_ed25519` (mode 0600; None without a throwaway client key) and `known_hosts`."""
        os.makedirs(dirpath, exist_ok=True)
        identity = None
        if self.client_key is not None:
            identity = os.path.join(dirpath, "id_ed25519")
            _write_private(identity, self.client_key.export_private_key("openssh"))
            with open(identity + ".pub", "wb") as fh:
                fh.write(self.client_key.export_public_key("openssh"))
        known_hosts = os.path.join(dirpath, "known_hosts")
        with open(known_hosts, "w", encoding="utf-8") as fh:
            fh.write(self.known_hosts_line + "\n")
        return identity, known_hosts

    async def close(self) -> None:
        """Stop listening, end every command and drop every connection."""
        for group in list(self._groups):
            shell.signal_group(group, "KILL")
        if self._acceptor is not None:
            self._acceptor.close()
            with contextlib.suppress(Exception):
                await self._acceptor.wait_closed()
            self._acceptor = None
        conns = list(self._conns)
        for conn in conns:
            conn.close()
        for conn in conns:
            with contextlib.suppress(Exception):
                await within(conn.wait_closed(), 2)
        await self.wait_idle(2)
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(BaseException):
                await self._refresher
        if self._relay is not None:
            await self._relay.close()
        await asyncio.to_thread(self.root.remove)

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

    async def __aenter__(self) -> SimServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- server internals ----------------------------------------------------------------
    async def _serve(self, process: asyncssh.SSHServerProcess) -> None:
        self._active += 1
        self.sessions_started += 1
        self._idle.clear()
        try:
            # a command reads the state of the moment it starts, as on a real box
            await self.refresh()
            await shell.serve_process(process, self.root, self._groups)
        finally:
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    def _direct_tcp(self, dest_host: str, dest_port: int) -> Any:
        if not is_loopback(dest_host):
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                "the simulated Spark forwards to its loopback ports only")
        mapped = self.port_map.get(dest_port)
        if mapped is None:
            return True  # asyncssh connects to dest itself

        async def relay(reader: Any, writer: Any) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection(*mapped)
            except OSError:
                writer.close()
                return
            await asyncio.gather(shell.pipe(reader, up_writer, close=True),
                                 shell.pipe(up_reader, writer, close=True))

        return relay

    def _direct_unix(self, dest_path: str) -> Any:
        mapped = self.unix_map.get(dest_path)
        if mapped is None:
            return True

        async def relay(reader: Any, writer: Any) -> None:
            try:
                up_reader, up_writer = await asyncio.open_unix_connection(mapped)
            except OSError:
                writer.close()
                return
            await asyncio.gather(shell.pipe(reader, up_writer, close=True),
                                 shell.pipe(up_reader, writer, close=True))

        return relay


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT


class _SSHServer(asyncssh.SSHServer):
    """Per-connection policy: public keys only, loopback forwards only."""

    def __init__(self, sim: SimServer) -> None:
        self._sim = sim
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._sim._conns.add(conn)
        if self._sim.device.memory.down:  # wedged and rebooting: nobody answers
            asyncio.get_running_loop().call_soon(conn.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._sim._conns.discard(self._conn)

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                             orig_port: int) -> Any:
        return self._sim._direct_tcp(dest_host, dest_port)

    def unix_connection_requested(self, dest_path: str) -> Any:
        return self._sim._direct_unix(dest_path)

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        # Remote forwards may listen on the sim's loopback only (it shares this machine).
        return is_loopback(listen_host or "localhost")


def load_or_create_host_key(path: str | None) -> asyncssh.SSHKey:
    """The host key at `path`, created there on first use; a throwaway one without a path."""
    if path is None:
        return asyncssh.generate_private_key("ssh-ed25519")
    if os.path.exists(path):
        return asyncssh.read_private_key(path)
    key = asyncssh.generate_private_key("ssh-ed25519")
    _write_private(path, key.export_private_key("openssh"))
    return key


async def start_sim(host: str = "127.0.0.1", port: int = 0, *, gpus: int = 1,
                    kind: str = "gb10", host_key_path: str | None = None,
                    authorized_keys_path: str | None = None, seed: int | None = None,
                    device: SimDevice | None = None) -> SimServer:
    """Start a simulated Spark listening on host:port (0 picks a free port).

    Without `authorized_keys_path` a throwaway client key is made and is the only
    key accepted (`SimServer.client_key`; `write_client_files` saves it).
    """
    shell.find_sh()  # no sh, no simulated device: say so before anything starts
    device = device or SimDevice(gpus=gpus, kind=kind, seed=seed)
    host_key = load_or_create_host_key(host_key_path)
    if authorized_keys_path is None:
        client_key: asyncssh.SSHKey | None = asyncssh.generate_private_key("ssh-ed25519")
        assert client_key is not None
        authorized = asyncssh.import_authorized_keys(
            client_key.export_public_key("openssh").decode())
    else:
        client_key = None
        authorized = asyncssh.read_authorized_keys(authorized_keys_path)
    # in memory where there is a tmpfs: the refresh replaces some 20 files 4 times a second
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    path = tempfile.mkdtemp(prefix="sparktui-sim-", dir=shm)
    try:
        root = DeviceRoot(device, path, os.path.join(path, "relay.sock"))
        relay = await Relay(device).start(root.relay_socket)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    sim = SimServer(device, host_key, client_key, root)
    sim._relay = relay
    await sim.refresh()
    sim._refresher = asyncio.get_running_loop().create_task(sim._refresh_often(),
                                                            name="sim-refresh")
    device.memory.on_reboot.append(sim.drop_connections)
    sim._acceptor = await asyncssh.create_server(
        lambda: _SSHServer(sim), host, port,
        server_host_keys=[host_key], authorized_client_keys=authorized,
        process_factory=sim._serve, encoding=None,
        password_auth=False, kbdint_auth=False,
    )
    sockname = sim._acceptor.sockets[0].getsockname()
    sim.host, sim.port = sockname[0], sockname[1]
    return sim
