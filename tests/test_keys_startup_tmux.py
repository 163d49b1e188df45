"""Keys typed while the installed `sparktui --demo` is still starting are kept (tmux, 80x24).

A person who knows the keys does not wait for the first frame: `a` and a name,
typed as soon as the terminal exists, must open the add-device form with the
name in its first field. Its own module: tests/test_keys_tmux.py shares one
running app between its tests, and this test needs an app not yet started.
"""

from __future__ import annotations

import re
import shlex
import shutil

import pytest

from tests.infra import require
from tests.infra.tmux import Tmux, sandbox_env, sparktui_command

EXITED = re.compile(r"SPARKTUI-EXITED=(\d+)")


@pytest.mark.parametrize("when", ["before-the-first-frame", "at-the-first-frame"])
def test_keys_typed_while_the_app_starts_are_kept(tmp_path, when: str) -> None:
    # a person who knows the keys types on at once: `a` and a name before the first frame,
    # or as soon as it shows (the demo device is still starting then)
    require(shutil.which("tmux"), "tmux is not installed (apt-get install tmux)")
    command = f"{shlex.join([*sparktui_command(), '--demo'])}; echo SPARKTUI-EXITED=$?; " \
              "sleep 600"
    session = Tmux(command, env=sandbox_env(tmp_path), width=80, height=24)
    try:
        if when == "at-the-first-frame":
            session.wait_for(lambda s: "Devices" in s or EXITED.search(s) is not None,
                             "the first frame", timeout=60)
        session.send_literal("aJohn")
        screen = session.wait_for(lambda s: ("John" in s and "Add a device" in s)
                                  or EXITED.search(s) is not None,
                                  "the name in the add-device form", timeout=60)
        assert not EXITED.search(screen), screen
        # in the form's first field (Name), not anywhere else on the screen
        assert any("Name" in line and "John" in line for line in screen.splitlines()), screen
        assert screen.count("John") == 1, screen
    finally:
        session.kill()
