"""The transport's types the UI shows or hands on, re-exported from the services layer.

The UI imports services, never the transport (an import-linter contract): a
host-key question, the SSH options a form installs a key with, a command's
result and the transport's error reach it through here.
"""

from sparktui.transport.base import CommandResult, TransportError
from sparktui.transport.ssh_types import HostKeyPrompt, SSHOptions, UnknownHostKey

__all__ = ["CommandResult", "HostKeyPrompt", "SSHOptions", "TransportError", "UnknownHostKey"]
