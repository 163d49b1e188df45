"""Test infrastructure: real OpenSSH servers, client homes, agents, network namespaces.

Policy for missing components (`require`): under ``CI=true`` a missing piece of the
environment (the sshd binary, ``ip netns`` support, ...) FAILS the test with a clear
message; outside CI the test is skipped with the same message.
"""

from tests.infra.common import REPO_ROOT, SSHD_BINARY, in_ci, require
from tests.infra.keys import ClientSetup, SshAgent, generate_key
from tests.infra.netns import NetnsPeer, netns_available
from tests.infra.sshd import SshdServer, sshd_available, write_standin

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
