"""Smoke test: the installed `sparktui --demo` in a real terminal (tmux), as a person uses it.

Starts a private tmux server, types the command at a shell prompt, waits for
the demo device to connect, walks a few keys, quits, and checks the shell got
its prompt back with exit status 0.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.infra import require

REPO_ROOT = Path(__file__).resolve().parent.parent
PROMPT = "smoke-prompt$ "
EXIT_STATUS = re.compile(r"^sparktui-exit=(\d+)$", re.MULTILINE)


def sparktui_command() -> list[str]:
    """The installed console script, else the package run from this checkout."""
    installed = shutil.which("sparktui")
    return [installed] if installed else [sys.executable, "-m", "sparktui"]


class Tmux:
    """One private tmux server (its own socket), one 120x40 window running a plain shell."""

    def __init__(self, socket: str, cwd: Path, env: dict[str, str]) -> None:
        self.socket = socket
        self.target = "smoke"
        env_args = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        self._tmux("new-session", "-d", "-s", self.target, "-x", "120", "-y", "40",
                   "-c", str(cwd), *env_args, "bash --norc --noprofile")
        self.send_literal(f"PS1={shlex.quote(PROMPT)}")
        self.send_keys("Enter")

    def _tmux(self, *args: str) -> str:
        # -f /dev/null: the user's ~/.tmux.conf must not change what the test sees
        result = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args],
                                capture_output=True, text=True, timeout=10, check=True)
        return result.stdout

    def send_literal(self, text: str) -> None:
        self._tmux("send-keys", "-t", self.target, "-l", text)

    def send_keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.target, *keys)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.target)

    def wait_for(self, predicate: Callable[[str], bool], what: str,
                 timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen was:\n{text}")
            time.sleep(0.2)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=10, check=False)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    require(shutil.which("tmux"), "tmux is not installed (apt-get install tmux)")
    env = {
        # a config of its own: the developer's devices and settings stay out of it
        "SPARKTUI_CONFIG": str(tmp_path / "config.toml"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "TERM": "tmux-256color",
        "PATH": os.environ.get("PATH", ""),
    }
    session = Tmux(f"sparktui-test-{secrets.token_hex(4)}", REPO_ROOT, env)
    try:
        session.wait_for(lambda text: PROMPT.strip() in text, "the shell prompt", timeout=10)
        yield session
    finally:
        session.kill()


def _demo_row_connected(text: str) -> bool:
    return any("spark-demo" in line and "connected" in line and "reconnecting" not in line
               for line in text.splitlines())


def test_demo_in_tmux(tmux: Tmux) -> None:
    command = shlex.join([*sparktui_command(), "--demo"])
    tmux.send_literal(f"{command}; echo sparktui-exit=$?")
    tmux.send_keys("Enter")

    tmux.wait_for(_demo_row_connected, "spark-demo to show connected in the Devices tab")

    tmux.send_literal("2")
    tmux.wait_for(lambda text: "nvidia-smi" in text, "the Telemetry tab")
    tmux.send_literal("?")
    tmux.wait_for(lambda text: "Keys in force" in text, "the help screen")
    tmux.send_keys("Escape")
    tmux.wait_for(lambda text: "Keys in force" not in text, "the help screen to close")
    tmux.send_literal("q")

    # the typed command line also reads "sparktui-exit=": wait for the echoed status
    text = tmux.wait_for(lambda text: EXIT_STATUS.search(text) is not None, "sparktui to exit")
    assert EXIT_STATUS.search(text)[1] == "0", text  # type: ignore[index]
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[-1].startswith(PROMPT.strip()), text  # the shell has the terminal back
