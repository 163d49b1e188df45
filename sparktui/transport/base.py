"""The one interface every device connection offers.

A transport is a single live connection to a device (an SSH connection, or the
local machine). It runs commands, streams their output line by line, and
forwards ports and UNIX sockets. It does not reconnect by itself: that is the
job of `sparktui.services.link.DeviceLink`, which replaces a dead transport
with a fresh one and tells the owners of streams and forwards to re-issue them.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sparktui.core.sanitize import clean_reason


class TransportError(Exception):
    """Base class for everything a transport raises on purpose.

    Messages quote the device and its sshd: they are cleaned here, once, so
    every handler can show or log them as they are.
    """

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (clean_reason(args[0]),)
        super().__init__(*args)


class ConnectionLost(TransportError):
    """The connection under a running command or forward went away."""


class StreamStalled(TransportError):
    """A stream delivered no line within its `stall_after`: the command is not answering.

    The connection may be fine: the owner closes the stream (which stops the
    command on the device) and starts it again, without waiting for the link.
    """


class CommandNotFound(TransportError):
    """The remote shell could not find the program (exit status 127)."""

    def __init__(self, program: str, device: str) -> None:
        super().__init__(f"'{program}' was not found on {device} (is it installed and on PATH?)")
        self.program = program
        self.device = device


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class LineStream(abc.ABC):
    """Lines of one running command, as they arrive.

    Iterate it with `async for`; iteration ends when the command exits, after
    which `exit_status` and `stderr` are set. A final line without a newline is
    still yielded. If the connection drops mid-stream, iteration raises
    ConnectionLost; if no line comes for `stall_after` seconds, StreamStalled.
    `close()` stops the remote command.

    stderr is drained while the command runs (never left to fill the channel):
    `stderr` holds its last lines, `stderr_bytes` how much there was.
    """

    exit_status: int | None = None
    stderr: str = ""
    stderr_bytes: int = 0

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[str]: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def send(self, text: str) -> None:
        """Write text to the command's stdin: control lines for a loop that reads them
        (sparktui.core.gpuprocs), so a period changes without a new exec. Raises
        ConnectionLost if the command or the connection is gone."""

    async def __aenter__(self) -> LineStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Forward(abc.ABC):
    """A listening forward; `close()` stops listening and drops its connections."""

    #: local address being listened on: (host, port) for TCP, a path for UNIX
    listen: tuple[str, int] | str

    @abc.abstractmethod
    async def close(self) -> None: ...


class Transport(abc.ABC):
    """One live connection to one device."""

    #: a short name for messages ("spark-1", "local")
    device: str

    @abc.abstractmethod
    async def run(self, command: str, *, timeout: float | None = 30.0,
                  input: str | None = None) -> CommandResult:
        """Run a command to completion and collect its output."""

    @abc.abstractmethod
    async def stream(self, command: str, *, stall_after: float | None = None) -> LineStream:
        """Start a long-running command and return its lines as they come.

        `stall_after`: seconds without a line after which iteration raises
        StreamStalled (None: wait as long as it takes).
        """

    @abc.abstractmethod
    async def forward_local_port(self, listen_host: str, listen_port: int,
                                 dest_host: str, dest_port: int) -> Forward:
        """Listen locally on TCP and connect each client to dest on the device's side.

        `listen_port` 0 picks a free port; read it back from `Forward.listen`.
        """

    @abc.abstractmethod
    async def forward_remote_port(self, remote_host: str, remote_port: int,
                                  local_host: str, local_port: int) -> Forward:
        """Listen on the device's side and connect each client to local_host:local_port here.

        `remote_port` 0 lets the device pick; read it back from `Forward.listen`,
        which holds the (host, port) listened on at the device.
        """

    async def forward_local_path_to_port(self, local_path: str, dest_host: str,
                                         dest_port: int) -> Forward:
        """Listen on a local UNIX socket; connect each client to dest on the device's side.

        A private way to reach a port on the device: the socket lives in a 0700
        directory, so unlike a loopback TCP port no other local user can use it.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot forward a UNIX socket to a "
                                  "port")

    @abc.abstractmethod
    async def forward_unix_socket(self, local_path: str, remote_path: str) -> Forward:
        """Listen on a local UNIX socket and connect each client to a socket on the device."""

    @abc.abstractmethod
    async def open_connection(self, dest_host: str, dest_port: int):
        """One TCP stream to dest as seen from the device: (StreamReader, StreamWriter)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the connection and everything running over it."""

    @abc.abstractmethod
    def is_alive(self) -> bool:
        """False once the connection is known to be gone."""

    @abc.abstractmethod
    async def wait_closed(self) -> None:
        """Return when the connection has gone, for whatever reason."""
