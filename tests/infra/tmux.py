"""A private tmux server running the installed `sparktui`, typed at as a person types.

`Tmux` is one tmux server on its own socket (`-L`, `-f /dev/null`: the developer's
tmux and ~/.tmux.conf stay out of it) with one window of a chosen size. Text is
sent the three ways text reaches a terminal app: a key at a time at human speed
(`type_slowly`), all at once with no delay between keys (`paste_keys`, what
tmux's paste-buffer and a password manager do), and as a bracketed paste
(`paste_bracketed`).

`sparktui_command` is the installed console script; PYTHONPATH points it at this
checkout, so an editable install elsewhere cannot hide the code under test.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.infra.common import REPO_ROOT

#: a person typing quickly: 90 ms between keys (about 130 words a minute)
HUMAN_KEY_DELAY_S = 0.09


def sparktui_command() -> list[str]:
    """The installed console script, else the package run from this checkout."""
    installed = shutil.which("sparktui")
    return [installed] if installed else [sys.executable, "-m", "sparktui"]


def sandbox_env(home: Path) -> dict[str, str]:
    """An environment whose config, data and state live under `home` (the user's stay out)."""
    return {
        "SPARKTUI_CONFIG": str(home / "config.toml"),
        "XDG_CONFIG_HOME": str(home / "xdg-config"),
        "XDG_DATA_HOME": str(home / "xdg-data"),
        "XDG_STATE_HOME": str(home / "xdg-state"),
        "XDG_CACHE_HOME": str(home / "xdg-cache"),
        "HOME": str(home),
        "TERM": "tmux-256color",
        "PATH": os.environ.get("PATH", ""),
        # the console script imports this checkout, whatever is installed editable
        "PYTHONPATH": REPO_ROOT,
    }


class Tmux:
    """One private tmux server with one window of `width` x `height` running `command`."""

    def __init__(self, command: str, *, env: dict[str, str], cwd: str | Path = REPO_ROOT,
                 width: int = 80, height: int = 24) -> None:
        self.socket = f"sparktui-test-{secrets.token_hex(4)}"
        self.target = "t"
        env_args = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        self.tmux("new-session", "-d", "-s", self.target, "-x", str(width), "-y", str(height),
                  "-c", str(cwd), *env_args, command)

    def tmux(self, *args: str) -> str:
        result = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args],
                                capture_output=True, text=True, timeout=10, check=True)
        return result.stdout

    # -- sending ----------------------------------------------------------------------
    def send_literal(self, text: str) -> None:
        # an argument that is just ";" separates tmux commands: "\\;" is the character
        self.tmux("send-keys", "-t", self.target, "-l", "\\;" if text == ";" else text)

    def send_keys(self, *keys: str) -> None:
        """tmux key names: Enter, Escape, Tab, BTab, C-c, Up, ..."""
        self.tmux("send-keys", "-t", self.target, *keys)

    def type_slowly(self, text: str, delay: float = HUMAN_KEY_DELAY_S) -> None:
        """One key at a time, `delay` apart, as a person types."""
        for char in text:
            self.send_literal(char)
            time.sleep(delay)  # the pace under test, not a wait for an event

    def paste_keys(self, text: str) -> None:
        """Every key at once, no delay between them (tmux paste-buffer without -p)."""
        name = f"buf{secrets.token_hex(3)}"
        self.tmux("set-buffer", "-b", name, "--", text)
        self.tmux("paste-buffer", "-d", "-b", name, "-t", self.target)

    def paste_bracketed(self, text: str) -> None:
        """A terminal paste: bracketed when the app asked for it (paste-buffer -p)."""
        name = f"buf{secrets.token_hex(3)}"
        self.tmux("set-buffer", "-b", name, "--", text)
        self.tmux("paste-buffer", "-p", "-d", "-b", name, "-t", self.target)

    # -- reading ----------------------------------------------------------------------
    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.target)

    def wait_for(self, predicate: Callable[[str], bool], what: str,
                 timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen was:\n{text}")
            time.sleep(0.05)  # polling the terminal: tmux has no event to await

    def wait_for_text(self, needle: str, timeout: float = 20.0) -> str:
        return self.wait_for(lambda text: needle in text, repr(needle), timeout)

    def wait_for_gone(self, needle: str, timeout: float = 20.0) -> str:
        return self.wait_for(lambda text: needle not in text, f"{needle!r} to go", timeout)

    def wait_quiet(self, settle: float = 0.3, timeout: float = 10.0) -> str:
        """The screen once it has not changed for `settle` seconds (a live app keeps
        moving figures: call it only where nothing should move, or accept the timeout)."""
        deadline = time.monotonic() + timeout
        last, since = self.screen(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.screen()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= settle:
                break
        return last

    def alive(self) -> bool:
        return self.tmux("list-panes", "-t", self.target, "-F", "#{pane_dead}").strip() != "1"

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=10, check=False)
