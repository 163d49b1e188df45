"""A real Secret Service for tests: a private D-Bus session bus and gnome-keyring.

`SecretServiceSession().start()` runs `dbus-daemon --session --fork` and
`gnome-keyring-daemon --unlock --components=secrets` (the password piped on
stdin) with a throwaway HOME and XDG_RUNTIME_DIR, so the user's own keyring is
never touched. `env` holds what a client needs (DBUS_SESSION_BUS_ADDRESS and
the private HOME / XDG dirs). `stop()` ends both daemons, by pid.

Needs `apt-get install gnome-keyring dbus-x11` (dbus-daemon comes with dbus).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

from tests.infra.common import alive, kill_procs, proc_id, processes_with_env

DBUS_DAEMON = "dbus-daemon"
KEYRING_DAEMON = "gnome-keyring-daemon"


def secret_service_available() -> tuple[bool, str]:
    missing = [b for b in (DBUS_DAEMON, KEYRING_DAEMON) if shutil.which(b) is None]
    if missing:
        return False, (f"{', '.join(missing)} not installed "
                       "(apt-get install gnome-keyring dbus-x11)")
    return True, ""


class SecretServiceSession:
    def __init__(self, password: str = "sparktui-test") -> None:
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="sparktui-keyring-")
        self.home = os.path.join(self.dir, "home")
        self.runtime = os.path.join(self.dir, "run")
        os.makedirs(self.home)
        os.makedirs(self.runtime, mode=0o700)
        self.address: str | None = None
        self._procs: list = []

    @property
    def env(self) -> dict[str, str]:
        assert self.address is not None, "start() first"
        return {"DBUS_SESSION_BUS_ADDRESS": self.address, "HOME": self.home,
                "XDG_RUNTIME_DIR": self.runtime,
                "XDG_DATA_HOME": os.path.join(self.home, ".local", "share")}

    def start(self, timeout: float = 10.0) -> SecretServiceSession:
        env = dict(os.environ, HOME=self.home, XDG_RUNTIME_DIR=self.runtime)
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        out = subprocess.run([DBUS_DAEMON, "--session", "--fork", "--print-address=1",
                              "--print-pid=1"], capture_output=True, text=True, env=env,
                             timeout=timeout, check=True, stdin=subprocess.DEVNULL)
        lines = out.stdout.split()
        self.address, pid = lines[0], int(lines[1])
        bus = proc_id(pid)
        if bus is not None:
            self._procs.append(bus)
        env.update(self.env)
        subprocess.run([KEYRING_DAEMON, "--unlock", "--components=secrets"],
                       input=self.password + "\n", capture_output=True, text=True, env=env,
                       timeout=timeout, check=True)
        # the daemon forks away: find it by the bus address it was given
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [p for p in processes_with_env("DBUS_SESSION_BUS_ADDRESS", self.address)
                     if p not in self._procs]
            if found:
                self._procs += found
                break
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        kill_procs([p for p in self._procs if alive(p)])
        self._procs = []
        shutil.rmtree(self.dir, ignore_errors=True)
