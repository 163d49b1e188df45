"""Installing sparktui's SSH key on a device with a password typed once, as NVIDIA Sync does.

1. Make an ed25519 key under ~/.ssh (sparktui_ed25519) unless it is there.
2. Connect once with the password (host key checked as for every connection:
   a password is never sent to a host that is not trusted).
3. Append the public key to ~/.ssh/authorized_keys on the device (mode 0600,
   ~/.ssh 0700), unless the exact line is already there.
4. Reconnect with the key to prove it works.

The password lives in the caller's variable for the length of one connection:
it is never written anywhere (config, state, logs, audit, exceptions). The
audit log records the key's fingerprint. Read-only mode refuses step 3.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass, replace
from pathlib import Path

from sparktui.core.device import DeviceSpec
from sparktui.services.audit import AuditLog, ReadOnlyError
from sparktui.transport.ssh import connect_ssh
from sparktui.transport.ssh_types import HostKeyPrompt, SSHConnectError, SSHOptions

DEFAULT_KEY_NAME = "sparktui_ed25519"

# Reads the public key line from stdin (no quoting problems, nothing in `ps`),
# keeps the file's last line intact if it lacks a newline, and appends only once.
INSTALL_SCRIPT = r"""umask 077
IFS= read -r key || exit 3
[ -n "$key" ] || exit 3
mkdir -p "$HOME/.ssh" && chmod 700 "$HOME/.ssh" || exit 4
f="$HOME/.ssh/authorized_keys"
touch "$f" && chmod 600 "$f" || exit 5
if grep -qxF "$key" "$f"; then echo present; exit 0; fi
if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then echo >> "$f"; fi
printf '%s\n' "$key" >> "$f" && echo added
"""


class KeyInstallError(Exception):
    """A step failed; the message names the step."""


@dataclass(frozen=True)
class KeyPair:
    path: Path
    public_line: str  # "ssh-ed25519 AAAA... sparktui@host"
    fingerprint: str  # SHA256:...
    created: bool


@dataclass(frozen=True)
class InstallResult:
    key: KeyPair
    already_present: bool
    verified: bool  # a key-only connection worked afterwards


def default_key_path() -> Path:
    return Path("~", ".ssh", DEFAULT_KEY_NAME).expanduser()


def ensure_key(path: Path | None = None) -> KeyPair:
    """Load the key at `path`, or make a new ed25519 one there. Blocking: run in a thread."""
    import asyncssh

    path = Path(path or default_key_path()).expanduser()
    pub_path = path.with_name(path.name + ".pub")
    if path.exists():
        key = asyncssh.read_private_key(str(path))
        created = False
    else:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = asyncssh.generate_private_key(
            "ssh-ed25519", comment=f"sparktui@{socket.gethostname()}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.export_private_key("openssh"))
        created = True
    public = key.export_public_key("openssh").decode().strip()
    if created or not pub_path.exists():
        pub_path.write_text(public + "\n", encoding="utf-8")
    return KeyPair(path, public, key.get_fingerprint("sha256"), created)


async def install_key(spec: DeviceSpec, password: str, *, key_path: Path | None = None,
                      options: SSHOptions | None = None, prompt: HostKeyPrompt | None = None,
                      audit: AuditLog | None = None, read_only: bool = False) -> InstallResult:
    """Install sparktui's key on `spec` using `password` once; then connect by key."""
    if read_only:
        raise ReadOnlyError(f"read-only mode: not installing a key on {spec.name}")
    if spec.is_local:
        raise KeyInstallError("the local machine needs no key")
    key = await asyncio.to_thread(ensure_key, key_path)
    audit = audit or AuditLog()
    options = options or SSHOptions()
    try:
        transport = await connect_ssh(spec, options, prompt, password=password)
    except SSHConnectError as exc:
        raise KeyInstallError(f"password login to {spec.destination} failed: {exc.reason}") \
            from None  # the cause chain could hold asyncssh's auth state: keep it out
    try:
        result = await transport.run("sh -c " + _quote(INSTALL_SCRIPT), input=key.public_line
                                     + "\n", timeout=30)
    finally:
        await transport.close()
    if not result.ok or result.stdout.strip() not in ("added", "present"):
        audit.record(spec.name, "install-key", key.fingerprint, "failed",
                     exit_status=result.exit_status, stderr=result.stderr.strip()[:500])
        raise KeyInstallError(f"could not add the key to ~/.ssh/authorized_keys on "
                              f"{spec.destination} (exit {result.exit_status}): "
                              f"{result.stderr.strip() or result.stdout.strip()}")
    present = result.stdout.strip() == "present"
    audit.record(spec.name, "install-key", key.fingerprint,
                 "already present" if present else "added", key_file=str(key.path))
    keyed = replace(spec, identity_file=str(key.path))
    try:
        check = await connect_ssh(keyed, options, prompt)
    except SSHConnectError as exc:
        raise KeyInstallError(f"the key was added, but logging in with it failed: "
                              f"{exc.reason} (does the device's sshd read "
                              "~/.ssh/authorized_keys?)") from exc
    await check.close()
    return InstallResult(key, present, True)


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
