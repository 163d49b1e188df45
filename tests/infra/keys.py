"""Client side of the SSH test setup: keys, a private HOME with ~/.ssh, an ssh-agent."""

from __future__ import annotations

import atexit
import getpass
import os
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tests.infra.common import run

if TYPE_CHECKING:
    from tests.infra.sshd import SshdServer

OptionValue = str | int | bool | None
_LIVE_AGENTS: weakref.WeakSet[SshAgent] = weakref.WeakSet()


def generate_key(path: str, comment: str = "sparktui-test") -> str:
    """Create an unencrypted ed25519 key at `path` (+ .pub); return the public key line."""
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path])
    with open(path + ".pub", encoding="utf-8") as fh:
        return fh.read().strip()


def _fmt(value: OptionValue) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class ClientSetup:
    """A throwaway HOME for SSH clients.

    ``home/.ssh/`` (0700) holds ``id_ed25519`` (+ .pub), ``known_hosts`` and ``config``.
    asyncssh follows ``$HOME`` (monkeypatch HOME=setup.home); OpenSSH does not (it uses
    the passwd entry), so the config is written with absolute paths and
    `openssh_args()` passes them explicitly as well.
    """

    def __init__(self, home: str | None = None, *, user: str | None = None) -> None:
        self._own_home = home is None
        self.home = home or tempfile.mkdtemp(prefix="sparktui-home-")
        self.ssh_dir = os.path.join(self.home, ".ssh")
        os.makedirs(self.ssh_dir, exist_ok=True)
        os.chmod(self.ssh_dir, 0o700)
        self.user = user or getpass.getuser()
        self.key_path = os.path.join(self.ssh_dir, "id_ed25519")
        self.pubkey_line = generate_key(self.key_path, "sparktui-test-client")
        self.known_hosts_path = os.path.join(self.ssh_dir, "known_hosts")
        self.config_path = os.path.join(self.ssh_dir, "config")
        open(self.known_hosts_path, "a").close()
        self._aliases: dict[str, dict[str, OptionValue]] = {}
        self.write_ssh_config({})

    # ------------------------------------------------------------ known_hosts

    def add_known_host(self, server_or_line: SshdServer | str) -> None:
        """Append ``[addr]:port keytype blob`` (from a server, or a raw line)."""
        if isinstance(server_or_line, str):
            line = server_or_line
        else:
            line = server_or_line.known_hosts_line
        with open(self.known_hosts_path, "a", encoding="utf-8") as fh:
            fh.write(line.strip() + "\n")

    def clear_known_hosts(self) -> None:
        open(self.known_hosts_path, "w").close()

    # ----------------------------------------------------------------- config

    def default_options(self) -> dict[str, OptionValue]:
        """Options every alias gets unless overridden (None removes one)."""
        return {
            "User": self.user,
            "IdentityFile": self.key_path,
            "IdentitiesOnly": "yes",
            "UserKnownHostsFile": self.known_hosts_path,
            "GlobalKnownHostsFile": "/dev/null",
            "StrictHostKeyChecking": "yes",
            "BatchMode": "yes",
        }

    def write_ssh_config(self, aliases: Mapping[str, Mapping[str, OptionValue]]) -> str:
        """Add/replace ``Host`` blocks and rewrite ``~/.ssh/config``; returns its path.

        ``write_ssh_config({"spark-test": {"HostName": "127.0.0.1", "Port": 2222,
        "ProxyJump": "jump"}})``. Every block also gets `default_options()`; an option
        set to None is left out (e.g. ``IdentityFile=None`` for agent-only auth).
        """
        for alias, options in aliases.items():
            merged = self.default_options()
            merged.update(options)
            self._aliases[alias] = merged
        blocks = []
        for alias, options in self._aliases.items():
            body = [f"    {k} {_fmt(v)}" for k, v in options.items() if v is not None]
            blocks.append(f"Host {alias}\n" + "\n".join(body) + "\n")
        with open(self.config_path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(blocks))
        os.chmod(self.config_path, 0o600)
        return self.config_path

    def add_server(self, alias: str, server: SshdServer, **options: OptionValue) -> None:
        """Trust `server`'s host key and add ``Host alias`` pointing at it."""
        self.add_known_host(server)
        opts: dict[str, OptionValue] = {
            "HostName": server.address,
            "Port": server.port,
            "User": server.user,
        }
        opts.update(options)
        self.write_ssh_config({alias: opts})

    # ---------------------------------------------------------- OpenSSH client

    def openssh_args(self) -> list[str]:
        """Arguments for the real ``ssh`` client so it uses this setup, not /root/.ssh."""
        return [
            "-F", self.config_path,
            "-o", f"UserKnownHostsFile={self.known_hosts_path}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-i", self.key_path,
            "-o", "BatchMode=yes",
        ]  # fmt: skip

    def ssh(
        self,
        alias: str,
        *command: str,
        timeout: float = 20,
        env: Mapping[str, str] | None = None,
        extra_args: list[str] | None = None,
    ) -> subprocess.CompletedProcess:
        """Run ``ssh <openssh_args> alias command...``; never raises on exit status."""
        full_env = dict(os.environ, HOME=self.home)
        full_env.update(env or {})
        cmd = ["ssh", *self.openssh_args(), *(extra_args or []), alias, *command]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=full_env,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def close(self) -> None:
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)


class SshAgent:
    """A private ``ssh-agent -D -a SOCK``; `add()` keys, use `env` / `sock`."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="sparktui-agent-")
        self.sock = os.path.join(self.dir, "agent.sock")
        self.proc: subprocess.Popen | None = None
        _LIVE_AGENTS.add(self)

    @property
    def env(self) -> dict[str, str]:
        return {"SSH_AUTH_SOCK": self.sock}

    def start(self, timeout: float = 10.0) -> SshAgent:
        self.proc = subprocess.Popen(
            ["ssh-agent", "-D", "-a", self.sock],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("ssh-agent did not start")
            time.sleep(0.01)
        return self

    def add(self, key_path: str) -> None:
        run(["ssh-add", key_path], env=dict(os.environ, **self.env))

    def list_keys(self) -> str:
        return run(["ssh-add", "-L"], env=dict(os.environ, **self.env), check=False).stdout

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        _LIVE_AGENTS.discard(self)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SshAgent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@atexit.register
def _stop_agents() -> None:
    for agent in list(_LIVE_AGENTS):
        try:
            agent.stop()
        except Exception:
            pass
