"""What a device is and what state its connection is in.

Pure data: no I/O, no Textual. The transport and services layers fill these in;
the UI and the CLI only read them.
"""

from __future__ import annotations

import enum
import ipaddress
import re
import time
from dataclasses import dataclass, field

from sparktui.core.sanitize import clean_reason

LOCAL_HOST = "local"

# [user@]host[:port]; an IPv6 literal must be bracketed to carry a port.
_DESTINATION = re.compile(
    r"^(?:(?P<user>[^@\s]+)@)?(?P<host>\[[^\]\s]+\]|[^:@\s\[\]]+)(?::(?P<port>\d{1,5}))?$"
)


def is_loopback(host: str) -> bool:
    """A name or address of this machine's loopback (`[::1]` brackets allowed)."""
    if host.lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class DestinationError(ValueError):
    """A DEVICE argument that is not `local`, `[user@]host[:port]` or a known name."""


@dataclass(frozen=True)
class DeviceSpec:
    """How to reach one device.

    Only what the user said is stored: anything left as None is filled in by
    `~/.ssh/config` (HostName, User, Port, IdentityFile, ProxyJump) when the
    connection is made, exactly as OpenSSH would.
    """

    name: str
    host: str
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    proxy_jump: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def is_local(self) -> bool:
        return self.host == LOCAL_HOST

    @property
    def destination(self) -> str:
        """`[user@]host[:port]` as a user would type it."""
        if self.is_local:
            return LOCAL_HOST
        text = f"{self.user}@{self.host}" if self.user else self.host
        return f"{text}:{self.port}" if self.port else text

    @classmethod
    def parse(cls, text: str, name: str | None = None) -> DeviceSpec:
        """Parse `local` or `[user@]host[:port]`."""
        text = text.strip()
        if text == LOCAL_HOST:
            return cls(name=name or LOCAL_HOST, host=LOCAL_HOST)
        match = _DESTINATION.match(text)
        if not match:
            raise DestinationError(
                f"{text!r} is not a device: use 'local', [user@]host[:port], "
                "a Host alias from ~/.ssh/config or a device name from the config"
            )
        host = match["host"].strip("[]")
        port = int(match["port"]) if match["port"] else None
        if port is not None and not 0 < port < 65536:
            raise DestinationError(f"{text!r}: port {port} is out of range (1-65535)")
        return cls(name=name or host, host=host, user=match["user"], port=port)


class LinkState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    CLOSED = "closed"


class FailureKind(enum.Enum):
    """Why a connection attempt failed, sorted by what the user can do about it."""

    AUTH = "auth"  # fix keys / agent; retrying does not help
    HOST_KEY_UNKNOWN = "host key unknown"  # the user declined (or was not asked)
    HOST_KEY_CHANGED = "host key changed"  # possible MITM: never retried
    UNREACHABLE = "unreachable"  # DNS, refused, no route: retried with backoff
    TIMEOUT = "timeout"  # includes a peer that stopped answering keepalives
    LOST = "connection lost"  # an established connection dropped
    OTHER = "error"

    @property
    def retryable(self) -> bool:
        return self in (FailureKind.UNREACHABLE, FailureKind.TIMEOUT, FailureKind.LOST,
                        FailureKind.OTHER)


@dataclass(frozen=True)
class LinkStatus:
    """One observation of a device connection, as the UI shows it."""

    state: LinkState
    attempt: int = 0
    next_retry_at: float | None = None  # time.monotonic() of the next try
    reason: str | None = None
    failure: FailureKind | None = None
    since: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        # every reason a link publishes crosses here on its way to the Devices tab,
        # the status line, toasts and the log: no peer text reaches them raw
        if self.reason is not None:
            object.__setattr__(self, "reason", clean_reason(self.reason))

    def next_retry_in(self, now: float | None = None) -> float | None:
        if self.next_retry_at is None:
            return None
        return max(0.0, self.next_retry_at - (time.monotonic() if now is None else now))

    def describe(self, now: float | None = None) -> str:
        """A one-line account a user can act on."""
        state = self.state
        if state is LinkState.CONNECTED:
            return "connected"
        if state is LinkState.CONNECTING:
            return "connecting…"
        if state is LinkState.CLOSED:
            return "closed"
        if state is LinkState.RECONNECTING:
            wait = self.next_retry_in(now)
            parts = [f"reconnecting (attempt {self.attempt}"]
            if wait is not None and wait > 0:
                parts.append(f", next try in {wait:.0f} s")
            parts.append(")")
            text = "".join(parts)
            return f"{text}: {self.reason}" if self.reason else text
        kind = self.failure.value if self.failure else "failed"
        return f"failed ({kind}): {self.reason}" if self.reason else f"failed ({kind})"
