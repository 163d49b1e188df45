"""Test infrastructure: real OpenSSH servers, client homes, agents, network namespaces.

Policy for missing components (`require`): under ``CI=true`` a missing piece of the
environment (the sshd binary, ``ip netns`` support, ...) FAILS the test with a clear
message; outside CI the test is skipped with the same message.

The names below import on first use: the stand-in nvidia-smi
(``python -m tests.infra.fake_nvidia_smi``) starts per call on the tests' sshd and
must not pay for pytest and the rest of the rig.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.infra.common import REPO_ROOT, SSHD_BINARY, in_ci, require
    from tests.infra.keys import ClientSetup, SshAgent, generate_key
    from tests.infra.netns import NetnsPeer, netns_available
    from tests.infra.sshd import SshdServer, sshd_available, write_standin

_HOME = {"REPO_ROOT": "common", "SSHD_BINARY": "common", "in_ci": "common", "require": "common",
         "ClientSetup": "keys", "SshAgent": "keys", "generate_key": "keys",
         "NetnsPeer": "netns", "netns_available": "netns",
         "SshdServer": "sshd", "sshd_available": "sshd", "write_standin": "sshd"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"tests.infra.{_HOME[name]}"), name)


__all__ = [
    "REPO_ROOT",
    "SSHD_BINARY",
    "ClientSetup",
    "NetnsPeer",
    "SshAgent",
    "SshdServer",
    "generate_key",
    "in_ci",
    "netns_available",
    "require",
    "sshd_available",
    "write_standin",
]
