"""A real OpenSSH ``sshd`` for tests, on loopback or inside a network namespace.

Each `SshdServer` owns a temp dir holding its config, ed25519 host key,
``authorized_keys``, log and a ``bin/`` of generated stand-in tools (``nvidia-smi``)
that is put first on the sessions' PATH with ``SetEnv``.
"""

from __future__ import annotations

import atexit
import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from typing import TYPE_CHECKING

from tests.infra.common import (
    REPO_ROOT,
    SSHD_BINARY,
    ProcId,
    alive,
    descendants,
    kill_procs,
    proc_id,
    processes_with_env,
    run,
)
from tests.infra.keys import generate_key

if TYPE_CHECKING:
    from tests.infra.netns import NetnsPeer

DEFAULT_STANDINS: dict[str, str] = {"nvidia-smi": "tests.infra.fake_nvidia_smi"}
SYSTEM_PATH = ["/usr/local/bin", "/usr/bin", "/bin"]

MARKER_VAR = "SPARKTUI_TEST_SSHD"  # set in every session: finds them in /proc
TMP_PREFIX = "sparktui-sshd-"  # + "<owner pid>-<random>"
_LIVE: weakref.WeakSet[SshdServer] = weakref.WeakSet()
_stale_checked = False


def _cleanup_stale_once() -> None:
    """Kill sshds (and their sessions) left by an earlier test run that died hard
    (e.g. SIGKILL), recognised by a config path whose owner pid no longer exists."""
    global _stale_checked
    if _stale_checked:
        return
    _stale_checked = True
    pattern = re.compile(rb"(/[^\0 ]*/" + TMP_PREFIX.encode() + rb"(\d+)-[^/\0 ]+)/sshd_config")
    stale: list[ProcId] = []
    dirs = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                m = pattern.search(fh.read())
        except OSError:
            continue
        if m and not os.path.exists(f"/proc/{int(m.group(2))}"):
            pid_id = proc_id(int(name))
            if pid_id:
                stale.append(pid_id)
                dirs.add(m.group(1).decode())
    if stale:
        kill_procs(stale + descendants(p[0] for p in stale))
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def sshd_available() -> bool:
    return os.access(SSHD_BINARY, os.X_OK) and shutil.which("ssh-keygen") is not None


def free_port(address: str = "127.0.0.1") -> int:
    """A port that was free on `address` a moment ago (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def write_standin(bin_dir: str, name: str, module: str, python: str | None = None) -> str:
    """Write an executable ``bin_dir/name`` that runs ``python -m module "$@"``.

    The absolute interpreter path is baked in, so the stand-in runs with the test
    suite's Python (and, through PYTHONPATH, this checkout's sparktui).
    """
    python = python or sys.executable
    path = os.path.join(bin_dir, name)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"#!/bin/sh\nexec '{python}' -m {module} \"$@\"\n")
    os.chmod(path, 0o755)
    return path


def _quote(value: str) -> str:
    if '"' in value:
        raise ValueError(f"sshd_config values cannot contain double quotes: {value!r}")
    return f'"{value}"'


class SshdServer:
    """One ``/usr/sbin/sshd -D -e -f CONFIG`` process.

    Options:
      address: listen address (default 127.0.0.1, or the namespace side of `netns`).
      port: fixed port; default a random free one (retried on collision).
      password_auth: turn on ``PasswordAuthentication`` (KbdInteractive stays off).
      env: extra ``SetEnv`` variables for sessions (e.g. SPARKTUI_FAKE_GPU).
      path_dirs: extra directories on the sessions' PATH, after the generated bin dir.
      nvidia_smi: put the generated ``nvidia-smi`` stand-in on PATH (False: omit it).
      standins: more generated stand-ins, {name: python module}.
      client_alive_interval: ``ClientAliveInterval`` seconds (None: sshd default, off).
      extra_config: raw lines appended to sshd_config.
      netns: a `NetnsPeer`; the server then runs inside that namespace.
      fake_gpu_file: file named by ``SPARKTUI_FAKE_GPU_FILE`` (default: in the temp dir).
      remote_home: the sessions' $HOME. True (default): an empty ``<tmp>/home``, so the
        login shell reads no ~/.bashrc (root's here runs ``pyenv init``, which can stall
        a session for a minute on pyenv's rehash lock, and prepends to PATH); a path:
        that directory; False: the user's real home from passwd.
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        port: int | None = None,
        password_auth: bool = False,
        env: dict[str, str] | None = None,
        path_dirs: list[str] | None = None,
        nvidia_smi: bool = True,
        standins: dict[str, str] | None = None,
        client_alive_interval: int | None = None,
        extra_config: list[str] | None = None,
        netns: NetnsPeer | None = None,
        fake_gpu_file: str | None = None,
        remote_home: str | bool = True,
        start_timeout: float = 10.0,
    ) -> None:
        self.netns = netns
        self.address = address or (netns.peer_address if netns else "127.0.0.1")
        self._fixed_port = port is not None
        self.port: int = port or 0
        self.password_auth = password_auth
        self.client_alive_interval = client_alive_interval
        self.extra_config = list(extra_config or [])
        self.start_timeout = start_timeout
        self.user = getpass.getuser()

        _cleanup_stale_once()
        self.tmp_dir = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-")
        os.chmod(self.tmp_dir, 0o755)
        self.config_path = os.path.join(self.tmp_dir, "sshd_config")
        self.log_path = os.path.join(self.tmp_dir, "sshd.log")
        self.pid_path = os.path.join(self.tmp_dir, "sshd.pid")
        self.authorized_keys_path = os.path.join(self.tmp_dir, "authorized_keys")
        self.host_key_path = os.path.join(self.tmp_dir, "ssh_host_ed25519_key")
        self.bin_dir = os.path.join(self.tmp_dir, "bin")
        os.mkdir(self.bin_dir)
        self.fake_gpu_file = fake_gpu_file or os.path.join(self.tmp_dir, "fake_gpu")

        standin_map = dict(DEFAULT_STANDINS) if nvidia_smi else {}
        standin_map.update(standins or {})
        for name, module in standin_map.items():
            write_standin(self.bin_dir, name, module)

        if remote_home is True:
            self.remote_home: str | None = os.path.join(self.tmp_dir, "home")
            os.mkdir(self.remote_home)
        else:
            self.remote_home = remote_home or None

        self.path_dirs: list[str] = [self.bin_dir, *(path_dirs or [])]
        self.env: dict[str, str] = {
            "PATH": ":".join([*self.path_dirs, *SYSTEM_PATH]),
            "PYTHONPATH": REPO_ROOT,
            "SPARKTUI_FAKE_GPU_FILE": self.fake_gpu_file,
        }
        self.env[MARKER_VAR] = self.tmp_dir
        if self.remote_home:
            self.env["HOME"] = self.remote_home
        self.env.update(env or {})

        self.host_pubkey_line: str = generate_key(self.host_key_path, "sparktui-test-host")
        fp = run(["ssh-keygen", "-l", "-E", "sha256", "-f", self.host_key_path + ".pub"])
        self.host_key_fingerprint: str = fp.stdout.split()[1]  # "SHA256:..."
        open(self.authorized_keys_path, "a").close()
        os.chmod(self.authorized_keys_path, 0o600)

        self.proc: subprocess.Popen | None = None
        self._orphans: list[ProcId] = []  # sessions left alive by stop()
        self._closed = False
        _LIVE.add(self)

    # ---------------------------------------------------------------- config

    def authorize(self, pubkey_line: str) -> None:
        """Append a public key line to this server's authorized_keys."""
        with open(self.authorized_keys_path, "a", encoding="utf-8") as fh:
            fh.write(pubkey_line.strip() + "\n")

    def set_fake_gpu(self, scenario: str) -> None:
        """Write the scenario name into the file named by SPARKTUI_FAKE_GPU_FILE."""
        with open(self.fake_gpu_file, "w", encoding="utf-8") as fh:
            fh.write(scenario + "\n")

    @property
    def known_hosts_host(self) -> str:
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"

    @property
    def known_hosts_line(self) -> str:
        """``[127.0.0.1]:PORT ssh-ed25519 AAAA...`` for a client's known_hosts."""
        keytype, blob = self.host_pubkey_line.split()[:2]
        return f"{self.known_hosts_host} {keytype} {blob}"

    def _write_config(self) -> None:
        setenv = " ".join(_quote(f"{k}={v}") for k, v in self.env.items())
        lines = [
            f"Port {self.port}",
            f"ListenAddress {self.address}",
            f"HostKey {self.host_key_path}",
            f"AuthorizedKeysFile {self.authorized_keys_path}",
            f"PidFile {self.pid_path}",
            "StrictModes no",
            "UsePAM no",
            f"PasswordAuthentication {'yes' if self.password_auth else 'no'}",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin yes",
            "AllowAgentForwarding yes",
            "AllowTcpForwarding yes",
            "AllowStreamLocalForwarding yes",
            "PrintMotd no",
            "PrintLastLog no",
            "UseDNS no",
            "LogLevel VERBOSE",
            "Subsystem sftp internal-sftp",
            f"SetEnv {setenv}",
        ]
        if self.client_alive_interval is not None:
            lines.append(f"ClientAliveInterval {self.client_alive_interval}")
        lines += self.extra_config
        with open(self.config_path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")

    # --------------------------------------------------------------- process

    @property
    def command(self) -> list[str]:
        prefix = self.netns.exec_prefix if self.netns else []
        return [*prefix, SSHD_BINARY, "-D", "-e", "-f", self.config_path]

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _log_bytes(self) -> bytes:
        try:
            with open(self.log_path, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return b""

    def log_text(self) -> str:
        """Everything sshd logged so far (all starts of this server), ``\n`` line ends."""
        return self._log_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")

    def start(self) -> SshdServer:
        """Start sshd and wait until its port accepts connections."""
        if self._closed:
            raise RuntimeError("server was closed")
        if self.is_running:
            return self
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        attempts = 1 if self._fixed_port else 5
        last_error = ""
        for _ in range(attempts):
            if not self._fixed_port:
                self.port = free_port("127.0.0.1" if self.netns else self.address)
            self._write_config()
            ok, last_error = self._spawn_and_wait()
            if ok:
                return self
            if "Address already in use" not in last_error:
                break
        raise RuntimeError(
            f"sshd did not start on {self.address}:{self.port}: {last_error}\n"
            f"--- sshd log ({self.log_path}) ---\n{self.log_text()}"
        )

    def _spawn_and_wait(self) -> tuple[bool, str]:
        log_start = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # a ^C to pytest does not hit sshd first
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self._log_bytes()[log_start:].decode("utf-8", errors="replace")
                return False, f"sshd exited with {self.proc.returncode}: {tail}"
            if b"Server listening on" in self._log_bytes()[log_start:]:
                try:
                    with socket.create_connection((self.address, self.port), timeout=1):
                        return True, ""
                except OSError:
                    pass
            time.sleep(0.01)
        self._terminate_listener()
        return False, f"timed out after {self.start_timeout}s"

    def sessions(self) -> list[ProcId]:
        """Live per-connection processes and everything they run.

        Found three ways: descendants of the listener; sessions remembered when `stop()`
        orphaned them; and any process whose environment carries this server's
        ``SPARKTUI_TEST_SSHD`` marker (catches commands whose sshd child already exited).
        """
        roots = [self.proc.pid] if self.is_running else []
        self._orphans = [p for p in self._orphans if alive(p)]
        marked = processes_with_env(MARKER_VAR, self.tmp_dir)
        extra = self._orphans + marked
        procs = descendants(roots) + extra + descendants(p[0] for p in extra)
        return list(dict.fromkeys(procs))

    def kill_sessions(self) -> None:
        """SIGKILL every live connection's processes (the listener keeps running)."""
        kill_procs(self.sessions())
        self._orphans = []

    def _terminate_listener(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def stop(self, kill_sessions: bool = False) -> None:
        """Stop the listener. Live sessions survive (as with a real sshd) unless
        `kill_sessions` is true; they are remembered so `kill_sessions()` and
        `close()` can still end them."""
        if self.proc is not None and self.proc.poll() is None:
            self._orphans = self.sessions()
        self._terminate_listener()
        if kill_sessions:
            self.kill_sessions()

    def restart(self) -> SshdServer:
        """Stop the listener and start it again on the same port with the same host key."""
        self.stop()
        self._fixed_port = True
        return self.start()

    def close(self) -> None:
        """Stop everything (listener and sessions) and remove the temp dir."""
        if self._closed:
            return
        self.stop(kill_sessions=True)
        self._closed = True
        _LIVE.discard(self)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def __enter__(self) -> SshdServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        where = f" netns={self.netns.name}" if self.netns else ""
        return f"<SshdServer {self.address}:{self.port} {state}{where}>"


@atexit.register
def _close_all() -> None:
    for server in list(_LIVE):
        try:
            server.close()
        except Exception:
            pass


__all__ = ["SshdServer", "free_port", "sshd_available", "write_standin"]
