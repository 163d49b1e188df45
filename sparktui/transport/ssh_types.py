"""What callers of the SSH transport name, without importing asyncssh.

asyncssh takes about 120 ms to import; the app's first frame should not wait for
it. These types are all the UI and the services need until a connection is
actually made (sparktui.transport.ssh re-exports them).
"""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sparktui.core.device import FailureKind
from sparktui.core.sanitize import clean_reason


class SSHConnectError(Exception):
    """One failed attempt, classified so the UI can say what to do."""

    def __init__(self, kind: FailureKind, reason: str) -> None:
        # the reason quotes the server (its disconnect text, its algorithm lists),
        # which can say anything before any host key is checked: cleaned here, once
        reason = clean_reason(reason)
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class UnknownHostKey:
    """What the user is asked to accept before a first connection."""

    host: str
    port: int
    key_type: str
    fingerprint: str  # SHA256:...
    known_hosts_path: str


#: Asked when a host key is not in known_hosts; True adds it and connects.
HostKeyPrompt = Callable[[UnknownHostKey], Awaitable[bool]]


@dataclass(frozen=True)
class SSHOptions:
    keepalive_interval: float = 5.0
    keepalive_count_max: int = 3
    connect_timeout: float = 15.0
    accept_new_host_keys: bool = False
    #: a known_hosts file of its own (the demo's), instead of ssh_config's / ~/.ssh's
    known_hosts: str | None = None
    #: False ignores ~/.ssh/config (the demo must not pick up a user's `Host *`)
    use_ssh_config: bool = True
    #: more ssh_config files, read before ~/.ssh/config so their Host blocks win
    #: (NVIDIA Sync's own ssh_config, whose aliases ~/.ssh/config may not know)
    config_files: tuple[str, ...] = ()


def quote(*argv: str) -> str:
    """A command line for the remote shell, each argument quoted."""
    return " ".join(shlex.quote(a) for a in argv)
