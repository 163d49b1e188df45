"""`sparktui --demo` in a private tmux server, for the tests that kill its terminal.

The app is the pane's own process (no shell in between), so `pane_pid` is
sparktui's pid, and killing the session closes the pty under it exactly as a
dropped SSH session or a closed terminal window does.

`python -m tests.reliability.tmux_app CHECKOUT RUNS` measures how often an
older checkout outlives its terminal (see RELIABILITY.md).
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.infra import require

REPO_ROOT = Path(__file__).resolve().parents[2]


def process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


class TmuxApp:
    def __init__(self, home: Path, checkout: Path = REPO_ROOT, *, width: int = 100,
                 height: int = 30, clipboard: bool = False, device: str | None = None) -> None:
        require(shutil.which("tmux") is not None, "tmux (apt-get install tmux)")
        self.socket = f"sparktui-rel-{os.getpid()}-{secrets.token_hex(3)}"
        self.target = "app"
        env = {"XDG_DATA_HOME": home / "data", "XDG_CONFIG_HOME": home / "config",
               "XDG_STATE_HOME": home / "state", "XDG_CACHE_HOME": home / "cache",
               "PYTHONPATH": checkout, "TERM": "xterm-256color"}
        exports = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in env.items())
        target = shlex.quote(device) if device else "--demo"
        command = (f"cd {shlex.quote(str(checkout))} && exec env {exports} "
                   f"{shlex.quote(sys.executable)} -m sparktui {target}")
        # the options go in before the app starts: it writes from its first frame
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", "holder", "sleep 3600")
        if clipboard:
            self._tmux("set-option", "-g", "set-clipboard", "on")
            self._tmux("set-option", "-g", "allow-rename", "on")
            self._tmux("set-option", "-g", "allow-passthrough", "on")
        self._tmux("new-session", "-d", "-s", self.target,
                   "-x", str(width), "-y", str(height), command)
        self.pid = int(self._tmux("list-panes", "-t", self.target, "-F",
                                  "#{pane_pid}").split()[0])

    def _tmux(self, *args: str) -> str:
        result = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                                text=True, timeout=10, check=True)
        return result.stdout

    def tmux(self, *args: str) -> str:
        return self._tmux(*args)

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.target, *keys)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.target)

    def wait_for(self, text: str, timeout: float = 40.0) -> str:
        """Until `text` is on screen, also where the app wrapped it onto the next line.

        Under a full suite's load the app sometimes drew at 80 columns however wide the
        window was asked to be, and a reason wrapped mid-phrase ("go" / "away").
        """
        wanted = " ".join(text.split())
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen or wanted in " ".join(screen.split()):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} on screen within {timeout} s:\n{screen}")
            time.sleep(0.2)

    def kill_session(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-session", "-t", self.target],
                       capture_output=True, timeout=10, check=False)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=10, check=False)
        if process_alive(self.pid):
            os.kill(self.pid, 9)


def wait_gone(pid: int, timeout: float) -> float | None:
    """Seconds until `pid` was gone, or None if it outlived `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not process_alive(pid):
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def _measure(checkout: Path, runs: int) -> None:
    import tempfile

    survived = 0
    for run in range(runs):
        with tempfile.TemporaryDirectory() as home:
            app = TmuxApp(Path(home), checkout)
            try:
                app.wait_for("spark-demo")
                time.sleep(1.0)
                app.kill_session()
                gone = wait_gone(app.pid, 30)
                survived += gone is None
                outcome = "ALIVE after 30 s" if gone is None else f"gone in {gone:.1f} s"
                print(f"run {run + 1}: {outcome}", flush=True)
            finally:
                app.close()
    print(f"{survived} of {runs} outlived their terminal by 30 s")


if __name__ == "__main__":
    _measure(Path(sys.argv[1]), int(sys.argv[2]))
