"""README's set-up commands, run as a user on a fresh Debian would run them.

The first command must install sparktui into a Python that refuses `pip install`
outside a venv (PEP 668: Debian 12's /usr/bin/python3 is marked EXTERNALLY-MANAGED)
and open the installed command's demo. The test runs README's own line, verbatim, in
tmux (80x24), in a fresh HOME, with a PATH of /usr/bin:/bin only (no pyenv, no
~/.local/bin, no PYTHONPATH): what a new user's shell has. It waits for the demo's
device to connect, sends `q`, and then checks the installed command on its own.
pipx comes from apt (.ci/run's APT_PACKAGES); pip's download cache is shared, so the
dependencies are not fetched again.
"""

from __future__ import annotations

import glob
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.infra import REPO_ROOT, require

README = Path(REPO_ROOT) / "README.md"
SYSTEM_PATH = "/usr/bin:/bin"
DONE = re.compile(r"^readme-exit=(\d+)$", re.MULTILINE)


def readme_setup_commands() -> list[str]:
    """The lines of README's first ```sh block."""
    text = README.read_text(encoding="utf-8")
    block = text.split("```sh", 1)[1].split("```", 1)[0]
    return [line for line in block.strip().splitlines() if line.strip()]


def test_readme_begins_with_exactly_two_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert text.startswith("# sparktui\n\n```sh\n"), "README must open with the set-up block"
    install, tests = readme_setup_commands()
    assert tests == "bash .ci/run"
    # installed as terminal tools are, and the demo opened from the installed command
    assert re.search(r"pipx install (--force )?\.", install), install
    assert install.endswith("sparktui --demo"), install
    assert not re.search(r"\bpip3? install", install), install  # PEP 668 refuses it


class Terminal:
    """A private tmux server with one 80x24 window running one command."""

    def __init__(self, command: str, cwd: str) -> None:
        self.socket = f"sparktui-install-{secrets.token_hex(4)}"
        self._tmux("new-session", "-d", "-s", "install", "-x", "80", "-y", "24", "-c", cwd,
                   command)

    def _tmux(self, *args: str) -> str:
        result = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args],
                                capture_output=True, text=True, timeout=10, check=True)
        return result.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "install")

    def send(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "install", *keys)

    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; "
                                     f"the screen was:\n{text}")
            time.sleep(0.25)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=10, check=False)


def _demo_connected(text: str) -> bool:
    return any("spark-demo" in line and "connected" in line and "reconnecting" not in line
               for line in text.splitlines())


@pytest.mark.timeout(420)
def test_readme_first_command_on_a_debian_system_python(tmp_path: Path) -> None:
    marked = glob.glob("/usr/lib/python3*/EXTERNALLY-MANAGED")
    require(marked, "a Debian system Python marked EXTERNALLY-MANAGED (PEP 668) in /usr/lib")
    require(shutil.which("pipx", path=SYSTEM_PATH) or shutil.which("apt-get"),
            "pipx, or apt-get to install it (README's first command)")
    require(shutil.which("tmux"), "tmux (apt-get install tmux)")
    install = readme_setup_commands()[0]
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "PATH": SYSTEM_PATH,
        "TERM": "tmux-256color",
        "LANG": "C.UTF-8",
        # the same download cache as everything else: the wheels are not fetched again
        "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR")
        or os.path.expanduser("~/.cache/pip"),
    }
    script = f"{install}; echo readme-exit=$?; exec sleep 600"
    command = shlex.join(["env", "-i", *(f"{k}={v}" for k, v in env.items()),
                          "bash", "--norc", "--noprofile", "-c", script])
    terminal = Terminal(command, REPO_ROOT)
    try:
        terminal.wait_for(lambda text: _demo_connected(text) or DONE.search(text) is not None,
                          "the installed demo to connect", timeout=360)
        screen = terminal.screen()
        assert _demo_connected(screen), f"README's first command failed:\n{screen}"
        terminal.send("q")
        text = terminal.wait_for(lambda text: DONE.search(text) is not None,
                                 "the demo to quit", timeout=30)
        assert DONE.search(text)[1] == "0", text  # type: ignore[index]
    finally:
        terminal.kill()

    installed = home / ".local" / "bin" / "sparktui"
    assert installed.exists(), "pipx did not put `sparktui` in ~/.local/bin"
    version = subprocess.run([str(installed), "--version"], capture_output=True, text=True,
                             env=env, timeout=60, check=True)
    assert version.stdout.startswith("sparktui "), version
    listed = subprocess.run([str(installed), "devices", "--json"], capture_output=True,
                            text=True, env=env, timeout=60, check=True)
    assert listed.stdout.strip() == "[]", listed  # a fresh HOME: nothing configured
    doctor = subprocess.run([str(installed), "doctor", "--json"], capture_output=True,
                            text=True, env=env, timeout=60)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["python"]["status"] == "ok", checks["python"]
    assert "in a venv" in checks["python"]["detail"]  # pipx gave it a venv of its own
    # it runs from a venv of its own on the system Python, not from this checkout
    shebang = installed.read_text(errors="replace").splitlines()[0] \
        if not installed.is_symlink() else installed.resolve().read_text().splitlines()[0]
    venv = Path(shebang[2:].strip()).parent.parent
    config = (venv / "pyvenv.cfg").read_text()
    assert re.search(r"^home = /usr/bin$", config, re.M), config
