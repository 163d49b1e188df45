"""A copy is claimed only where it can arrive: a real tmux with set-clipboard off drops
OSC 52, so sparktui must not say "copied to the clipboard" inside it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sparktui.services.clipboard import tmux_passes_copies
from tests.infra.common import require


@pytest.fixture
def tmux_server(tmp_path: Path):
    require(shutil.which("tmux") is not None, "tmux is not installed")
    socket = tmp_path / "tmux.sock"
    base = ["tmux", "-S", str(socket), "-f", "/dev/null"]
    subprocess.run([*base, "new-session", "-d", "-s", "clip", "sleep 600"], check=True,
                   timeout=10)
    pid = subprocess.run([*base, "display-message", "-p", "#{pid}"], capture_output=True,
                         text=True, check=True, timeout=10).stdout.strip()
    try:
        yield base, {**os.environ, "TMUX": f"{socket},{pid},0"}
    finally:
        subprocess.run([*base, "kill-server"], timeout=10, check=False)


def test_tmux_with_set_clipboard_off_passes_no_copy(tmux_server) -> None:
    base, environ = tmux_server
    subprocess.run([*base, "set-option", "-g", "set-clipboard", "off"], check=True, timeout=10)
    assert tmux_passes_copies(environ) is False
    subprocess.run([*base, "set-option", "-g", "set-clipboard", "on"], check=True, timeout=10)
    assert tmux_passes_copies(environ) is True


def test_outside_tmux_the_terminal_gets_the_copy() -> None:
    assert tmux_passes_copies({k: v for k, v in os.environ.items() if k != "TMUX"}) is True
