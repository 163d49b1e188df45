"""The SSH transport: one asyncssh connection carries everything for a device.

`connect_ssh()` makes one attempt. It honours ~/.ssh/config (HostName, User,
Port, IdentityFile, ProxyJump, UserKnownHostsFile), the ssh-agent and
known_hosts, and checks host keys strictly: an unknown key is shown to the
user (by its SHA256 fingerprint) and added only with their consent; a changed
key is refused outright. Reconnecting is the caller's business
(sparktui.services.link).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec, FailureKind
from sparktui.core.sanitize import clean_reason
from sparktui.transport.base import (
    CommandResult,
    ConnectionLost,
    Forward,
    LineStream,
    StreamStalled,
    Transport,
    TransportError,
)
from sparktui.transport.drain import StderrTail, bounded_lines
from sparktui.transport.ssh_channel import (
    STDERR,
    STDOUT,
    BoundedSession,
    ChannelForward,
    ChannelReader,
    ChannelWriter,
)
from sparktui.transport.ssh_types import (
    HostKeyPrompt,
    SSHConnectError,
    SSHOptions,
    UnknownHostKey,
)


class _Client(asyncssh.SSHClient):
    """Remembers the host key the server offered and why the connection ended."""

    def __init__(self) -> None:
        self.offered: tuple[str, str, int | None, asyncssh.SSHKey] | None = None
        self.lost: Exception | None = None
        self.closed = asyncio.Event()

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        # Only called for keys that are NOT in known_hosts: record and refuse,
        # so the decision (ask, add, or refuse as changed) is made outside.
        self.offered = (host, addr, port, key)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc
        self.closed.set()


def _known_hosts_files(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value if isinstance(v, str | os.PathLike)]
    return []


def _default_known_hosts() -> str:
    return str(Path("~", ".ssh", "known_hosts").expanduser())


def _known_hosts_entry_exists(files: list[str], host: str, addr: str, port: int | None) -> bool:
    for path in files:
        path = os.path.expanduser(path)
        if not os.path.isfile(path):
            continue
        try:
            trusted = asyncssh.read_known_hosts(path).match(host, addr, port)[0]
        except (OSError, ValueError, asyncssh.KeyImportError):
            continue
        if trusted:
            return True
    return False


def add_known_host(path: str, host: str, port: int | None, key: asyncssh.SSHKey) -> None:
    """Append `[host]:port key` to a known_hosts file, creating ~/.ssh with 0700."""
    target = Path(os.path.expanduser(path))
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pattern = host if port in (None, 22) else f"[{host}]:{port}"
    line = f"{pattern} {key.export_public_key('openssh').decode().strip()}\n"
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(line)


def _describe_os_error(exc: OSError, where: str) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {where}: {exc.strerror or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"{where} refused the connection (is sshd running on that port?)"
    text = exc.strerror or str(exc) or type(exc).__name__
    return f"cannot reach {where}: {text}"


#: The ciphers sparktui offers first when the user's ssh_config names none (OpenSSH's
#: `Ciphers`, which then wins). asyncssh runs chacha20-poly1305 (OpenSSH's first
#: choice) in Python with new cipher objects for every packet: 47 us to seal a
#: 300-byte packet here, against 7 us for AES-GCM, one call into OpenSSL, which uses
#: the CPU's AES instructions (AES-NI; the crypto extensions of a GB10's Arm cores).
#: With 64 devices and three streams each that is most of the collector's CPU
#: (BENCHMARKS.md, "Fleet"). chacha20 and CTR stay offered for servers without GCM.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
                     "chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr",
                     "aes256-ctr")


async def connect_ssh(spec: DeviceSpec, options: SSHOptions | None = None,
                      prompt: HostKeyPrompt | None = None, *,
                      password: str | None = None) -> SSHTransport:
    """Make one connection attempt; raise SSHConnectError with a reason on failure.

    `password` authenticates by password only (keys and agent are not tried):
    used once, to install a key (sparktui.services.keyinstall), never stored.
    """
    options = options or SSHOptions()
    kwargs: dict[str, object] = {
        "keepalive_interval": options.keepalive_interval,
        "keepalive_count_max": options.keepalive_count_max,
        "connect_timeout": options.connect_timeout,
    }
    if spec.port:
        kwargs["port"] = spec.port
    if spec.user:
        kwargs["username"] = spec.user
    if spec.identity_file:
        kwargs["client_keys"] = [os.path.expanduser(spec.identity_file)]
    if spec.proxy_jump:
        kwargs["tunnel"] = spec.proxy_jump
    if options.known_hosts:
        kwargs["known_hosts"] = options.known_hosts
    if not options.use_ssh_config:
        kwargs["config"] = None
    elif options.config_files:
        default_config = Path("~", ".ssh", "config").expanduser()
        kwargs["config"] = [*options.config_files,
                            *([str(default_config)] if default_config.is_file() else [])]
    if password is not None:
        kwargs.update(password=password, client_keys=None, agent_path=None,
                      preferred_auth="password,keyboard-interactive")
    where = spec.destination
    try:
        # config=(): the default ~/.ssh/config, as asyncssh.connect reads it (construct's
        # own default reads none: the user's UserKnownHostsFile and Ciphers were missed)
        resolved = await asyncssh.SSHClientConnectionOptions.construct(
            None, host=spec.host, **{"config": (), **kwargs})
    except (OSError, ValueError, asyncssh.Error) as exc:
        raise SSHConnectError(FailureKind.OTHER, f"bad ssh configuration for {where}: {exc}") \
            from exc
    known_files = _known_hosts_files(resolved.known_hosts) or [_default_known_hosts()]
    if not resolved.config.get("Ciphers"):
        kwargs["encryption_algs"] = PREFERRED_CIPHERS

    for _ in range(2):  # a second pass only after the user accepted a new key
        client = _Client()
        try:
            conn = await asyncssh.connect(spec.host, client_factory=lambda c=client: c,
                                          **kwargs)
        except asyncssh.HostKeyNotVerifiable as exc:
            if client.offered is None:
                raise SSHConnectError(FailureKind.HOST_KEY_UNKNOWN,
                                      f"host key of {where} not verifiable: {exc}") from exc
            host, addr, port, key = client.offered
            fingerprint = key.get_fingerprint("sha256")
            if _known_hosts_entry_exists(known_files, host, addr, port):
                raise SSHConnectError(
                    FailureKind.HOST_KEY_CHANGED,
                    f"HOST KEY CHANGED for {where}: it now offers {key.get_algorithm()} "
                    f"{fingerprint}, which does not match {known_files[0]}. This can be a "
                    "reinstall or an attack; refusing to connect. If the change is expected, "
                    f"remove the old entry with: ssh-keygen -R '{_pattern(host, port)}'",
                ) from exc
            offer = UnknownHostKey(host=host, port=port or 22, key_type=key.get_algorithm(),
                                   fingerprint=fingerprint, known_hosts_path=known_files[0])
            accepted = options.accept_new_host_keys or (prompt is not None and await prompt(offer))
            if not accepted:
                raise SSHConnectError(
                    FailureKind.HOST_KEY_UNKNOWN,
                    f"unknown host key for {where} ({key.get_algorithm()} {fingerprint}); "
                    "not accepted (use --accept-new-host-keys to trust new hosts)",
                ) from exc
            add_known_host(known_files[0], host, port, key)
            continue
        except asyncssh.PermissionDenied as exc:
            if password is not None:
                raise SSHConnectError(FailureKind.AUTH, f"authentication failed for {where}: "
                                      "the password was not accepted") from exc
            raise SSHConnectError(
                FailureKind.AUTH,
                f"authentication failed for {where}: no key was accepted "
                "(check IdentityFile, ssh-agent, and the device's authorized_keys)",
            ) from exc
        except TimeoutError as exc:
            raise SSHConnectError(FailureKind.TIMEOUT, f"{where} did not answer in "
                                  f"{options.connect_timeout:.0f} s") from exc
        except OSError as exc:
            raise SSHConnectError(FailureKind.UNREACHABLE, _describe_os_error(exc, where)) \
                from exc
        except asyncssh.Error as exc:
            raise SSHConnectError(FailureKind.UNREACHABLE,
                                  f"ssh to {where} failed: {exc.reason or exc}") from exc
        except ValueError as exc:  # asyncssh reports bad config values this way
            raise SSHConnectError(FailureKind.OTHER, f"ssh to {where}: {exc}") from exc
        return SSHTransport(spec.name, conn, client)
    raise SSHConnectError(FailureKind.HOST_KEY_UNKNOWN, f"host key of {where} still not trusted")


#: Every command carries this variable with a value of its own, inherited by all it
#: starts, so a timed-out or stalled one can be found and killed on the device. The
#: "signal" channel request alone is not enough: sshd refuses it for root sessions
#: (privilege separation), and it reaches only the shell's process group.
RUN_TAG = "SPARKTUI_RUN"


def _tagged(command: str) -> tuple[str, str]:
    tag = secrets.token_hex(8)
    return tag, f"export {RUN_TAG}={tag}; {command}"


def kill_tagged_command(tag: str) -> str:
    """A shell line that SIGKILLs every process of this user carrying `tag`."""
    return (f"grep -las {RUN_TAG}={tag} /proc/[0-9]*/environ | "
            "sed 's#^/proc/\\([0-9]*\\)/environ$#\\1#' | xargs -r kill -KILL 2>/dev/null; "
            "true")


#: what one `run` keeps of each of stdout and stderr; the rest is read and dropped
MAX_RUN_OUTPUT = 8 * 1024 * 1024
#: how long closing a port forward waits for the connections it accepted to end
FORWARD_CLOSE_WAIT_S = 1.0


class _BoundedText:
    """Collects a reader's bytes up to MAX_RUN_OUTPUT, draining (and dropping) the rest."""

    def __init__(self, read) -> None:
        self._read = read
        self._parts: list[bytes] = []
        self._size = 0
        self.dropped = 0

    async def fill(self) -> None:
        while True:
            chunk = await self._read(65536)
            if not chunk:
                return
            if self._size + len(chunk) > MAX_RUN_OUTPUT:
                self.dropped += len(chunk)
                continue
            self._parts.append(chunk)
            self._size += len(chunk)

    @property
    def text(self) -> str:
        text = b"".join(self._parts).decode("utf-8", "replace")
        if self.dropped:
            text += f"\n[{self.dropped} more bytes not kept]\n"
        return text


def _pattern(host: str, port: int | None) -> str:
    return host if port in (None, 22) else f"[{host}]:{port}"


class _SSHLineStream(LineStream):
    def __init__(self, transport: SSHTransport, channel: asyncssh.SSHClientChannel,
                 session: BoundedSession, stall_after: float | None, tag: str) -> None:
        self._transport = transport
        self._channel = channel
        self._session = session
        self._stall_after = stall_after
        self._tag = tag
        self._stalled = False
        self._stderr = StderrTail(session.reader(STDERR), transport.device)

    @property
    def stderr_bytes(self) -> int:  # type: ignore[override]
        return self._stderr.bytes

    async def __aiter__(self) -> AsyncIterator[str]:
        try:
            async for line in bounded_lines(self._session.reader(), stall_after=self._stall_after,
                                            what=self._transport.device):
                yield line
        except StreamStalled:
            self._stalled = True  # close() stops it on the device, not just here
            raise
        except (asyncssh.DisconnectError, asyncssh.ConnectionLost, BrokenPipeError) as exc:
            raise ConnectionLost(f"{self._transport.device}: {exc}") from exc
        if not self._transport.is_alive():
            raise ConnectionLost(f"{self._transport.device}: "
                                 f"{self._transport.close_reason or 'connection lost'}")
        # the command ended by itself: collect how
        self.stderr = await self._stderr.finish()
        with contextlib.suppress(asyncssh.Error, OSError, TimeoutError):
            await within(self._channel.wait_closed(), 5)
        self.exit_status = self._channel.get_exit_status()
        if self.exit_status is None:  # killed by a signal
            self.exit_status = -1

    async def send(self, text: str) -> None:
        try:
            await self._session.write(text.encode())  # the channel carries bytes
        except (asyncssh.Error, OSError, BrokenPipeError) as exc:
            raise ConnectionLost(f"{self._transport.device}: {exc}") from exc

    async def close(self) -> None:
        # A hung command writes nothing, so the SIGPIPE that closing the channel
        # arranges would never come: ask sshd to kill it first (the "signal"
        # channel request), then close (and SIGPIPE whatever it started).
        await _stop_on_device(self._channel)
        if self._stalled:
            await self._transport.kill_tagged(self._tag)
        self._stderr.cancel()
        if not self.stderr:
            self.stderr = self._stderr.text


async def _stop_on_device(channel: asyncssh.SSHClientChannel) -> None:
    with contextlib.suppress(asyncssh.Error, OSError, ValueError):
        if channel.get_exit_status() is None and channel.get_exit_signal() is None:
            channel.send_signal("KILL")
    channel.close()
    with contextlib.suppress(asyncssh.Error, OSError, TimeoutError):
        await within(channel.wait_closed(), 5)


class _SSHForward(Forward):
    def __init__(self, listener: asyncssh.SSHListener, listen: tuple[str, int] | str) -> None:
        self._listener = listener
        self.listen = listen

    async def close(self) -> None:
        self._listener.close()  # the port is free from here on
        # Since Python 3.12 wait_closed() also waits for every connection the listener
        # accepted, and a client may hold one open as long as it likes (a browser's
        # keep-alive): each ends with its own channel, or with the SSH connection
        with contextlib.suppress(TimeoutError):
            await within(self._listener.wait_closed(), FORWARD_CLOSE_WAIT_S)


class SSHTransport(Transport):
    def __init__(self, device: str, conn: asyncssh.SSHClientConnection, client: _Client) -> None:
        self.device = device
        self._conn = conn
        self._client = client

    @property
    def connection(self) -> asyncssh.SSHClientConnection:
        return self._conn

    @property
    def close_reason(self) -> str | None:
        exc = self._client.lost
        if exc is None:
            return None
        reason = clean_reason(getattr(exc, "reason", None) or str(exc) or type(exc).__name__)
        if "keepalive" in reason.lower() or "timeout" in reason.lower():
            return f"no answer to keepalives ({reason})"
        return reason

    def is_alive(self) -> bool:
        return not self._client.closed.is_set()

    async def wait_closed(self) -> None:
        await self._client.closed.wait()

    async def close(self) -> None:
        self._conn.close()
        with contextlib.suppress(asyncssh.Error, OSError):
            await within(self._conn.wait_closed(), 5)

    def _lost(self, exc: BaseException) -> ConnectionLost:
        return ConnectionLost(f"{self.device}: {getattr(exc, 'reason', None) or exc}")

    async def run(self, command: str, *, timeout: float | None = 30.0,
                  input: str | None = None) -> CommandResult:
        tag, tagged = _tagged(command)
        channel, session = await self._open_session(tagged)
        if input is not None:
            channel.write(input.encode())
        channel.write_eof()
        stdout = _BoundedText(session.reader(STDOUT))
        stderr = _BoundedText(session.reader(STDERR))
        try:
            await within(asyncio.gather(stdout.fill(), stderr.fill(),
                                                  channel.wait_closed()), timeout)
        except TimeoutError:
            # stopped on the device too: a hung command must not pile up there poll after poll
            await _stop_on_device(channel)
            await self.kill_tagged(tag)
            return CommandResult(-1, stdout.text, f"{command!r} timed out after {timeout} s "
                                 "(not answering; stopped on the device)")
        except (asyncssh.DisconnectError, asyncssh.ConnectionLost, BrokenPipeError,
                ConnectionError) as exc:
            raise self._lost(exc) from exc
        exit_status = channel.get_exit_status()
        if not self.is_alive() and exit_status is None:
            raise ConnectionLost(f"{self.device}: {self.close_reason or 'connection lost'}")
        return CommandResult(exit_status if exit_status is not None else -1,
                             stdout.text, stderr.text)

    async def _open_session(self, command: str
                            ) -> tuple[asyncssh.SSHClientChannel, BoundedSession]:
        try:
            return await self._conn.create_session(BoundedSession, command, encoding=None)
        except (asyncssh.ChannelOpenError, asyncssh.DisconnectError,
                asyncssh.ConnectionLost, BrokenPipeError, ConnectionError) as exc:
            raise self._lost(exc) from exc

    async def stream(self, command: str, *, stall_after: float | None = None) -> LineStream:
        tag, tagged = _tagged(command)
        channel, session = await self._open_session(tagged)
        return _SSHLineStream(self, channel, session, stall_after, tag)

    async def kill_tagged(self, tag: str) -> None:
        """Kill what a timed-out or stalled command left running on the device (one exec)."""
        if not self.is_alive():
            return  # the connection went: sshd hangs up on the session itself
        with contextlib.suppress(asyncssh.Error, OSError, TimeoutError):
            process = await self._conn.create_process(kill_tagged_command(tag))
            await within(process.wait_closed(), 10)

    async def forward_local_port(self, listen_host: str, listen_port: int,
                                 dest_host: str, dest_port: int) -> Forward:
        try:
            listener = await self._conn.forward_local_port(listen_host, listen_port,
                                                           dest_host, dest_port)
        except (asyncssh.DisconnectError, asyncssh.ConnectionLost) as exc:
            raise self._lost(exc) from exc
        return _SSHForward(listener, (listen_host, listener.get_port()))

    async def forward_remote_port(self, remote_host: str, remote_port: int,
                                  local_host: str, local_port: int) -> Forward:
        try:
            listener = await self._conn.forward_remote_port(remote_host, remote_port,
                                                            local_host, local_port)
        except (asyncssh.DisconnectError, asyncssh.ConnectionLost) as exc:
            raise self._lost(exc) from exc
        except asyncssh.ChannelListenError as exc:
            # the device said no (port in use, or sshd's AllowTcpForwarding). Unlike
            # asyncssh's other errors this one has no `reason`: its text is the reason
            raise TransportError(f"{self.device} refused to listen on "
                                 f"{remote_host}:{remote_port}: "
                                 f"{str(exc) or 'no reason given'}") from exc
        return _SSHForward(listener, (remote_host, listener.get_port()))

    async def forward_local_path_to_port(self, local_path: str, dest_host: str,
                                         dest_port: int) -> Forward:
        async def open_channel():
            return await self._conn.create_connection(BoundedSession, dest_host, dest_port)
        forward = await self._forward_path(local_path, open_channel)
        os.chmod(local_path, 0o600)
        return forward

    async def forward_unix_socket(self, local_path: str, remote_path: str) -> Forward:
        async def open_channel():
            return await self._conn.create_unix_connection(BoundedSession, remote_path)
        return await self._forward_path(local_path, open_channel)

    async def _forward_path(self, local_path: str, open_channel) -> Forward:
        # our own listener and BoundedSession channels, not asyncssh's forwarders:
        # their flow control lets a fast device-side server grow this process
        if not self.is_alive():
            raise ConnectionLost(f"{self.device}: {self.close_reason or 'connection lost'}")
        return await ChannelForward(local_path, open_channel).start()

    async def open_connection(self, dest_host: str, dest_port: int):
        # through BoundedSession, not asyncssh's stream: its flow control lets a fast
        # server grow the client without bound behind a slow reader (ssh_channel.py)
        try:
            channel, session = await self._conn.create_connection(BoundedSession, dest_host,
                                                                  dest_port)
        except (asyncssh.DisconnectError, asyncssh.ConnectionLost) as exc:
            raise self._lost(exc) from exc
        return ChannelReader(session), ChannelWriter(channel, session)
