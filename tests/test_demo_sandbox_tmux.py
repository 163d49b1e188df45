"""`sparktui --demo`, the installed app in a real terminal, writes nothing of the user's.

HOME and the XDG dirs point at a temporary home; the keyring is a backend that
records every write (tests/infra/recording_keyring.py, chosen with keyring's own
PYTHON_KEYRING_BACKEND). The test sets an API key on the demo's chat endpoint
through the F2 form, as a user would, and quits. Then: no keyring write, no log
file in the user's log dir (XDG_STATE_HOME), and the config, data and state dirs
are as they were.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
from pathlib import Path

from tests.infra import require
from tests.infra.recording_keyring import BACKEND, FILE_VARIABLE
from tests.infra.tmux import Tmux, sandbox_env, sparktui_command

EXITED = re.compile(r"SPARKTUI-EXITED=(\d+)")


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_demo_keeps_api_keys_and_its_log_out_of_the_users_files(tmp_path: Path) -> None:
    require(shutil.which("tmux"), "tmux is not installed (apt-get install tmux)")
    home = tmp_path / "home"
    env = sandbox_env(home)
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        Path(env[variable]).mkdir(parents=True)
    (home / "config.toml").write_text('# mine\n[settings]\ntheme = "sparktui-light"\n')
    writes = tmp_path / "keyring-writes.txt"
    env.update({"PYTHON_KEYRING_BACKEND": BACKEND, FILE_VARIABLE: str(writes)})
    before = _tree(home)
    command = f"{shlex.join([*sparktui_command(), '--demo'])}; echo SPARKTUI-EXITED=$?; " \
              "sleep 600"
    app = Tmux(command, env=env, width=80, height=24)
    try:
        app.wait_for(lambda s: "spark-demo" in s and " connected" in s,
                     "the demo device to connect", timeout=60)
        app.send_literal("5")  # Chat: the demo's endpoints are found on the device
        app.wait_for(lambda s: re.search(r"[1-9]\d* endpoints? found", s) is not None,
                     "the demo's chat endpoints", timeout=60)
        app.send_keys("F2")
        app.wait_for_text("API key for")
        app.wait_quiet(settle=0.3, timeout=3)  # the form has put the focus on its URL field
        app.send_keys("Tab", "Tab")  # past the URL and name fields, to the key
        app.send_literal("sk-demo-secret-0123")
        app.wait_for_text("•" * len("sk-demo-secret-0123"))  # in the key field, hidden
        app.send_keys("Enter")
        app.wait_for_text("API key saved", timeout=30)
        app.send_keys("C-c")  # the focus is in the prompt: ctrl+c quits from the top level
        text = app.wait_for(lambda s: EXITED.search(s) is not None, "the app to exit",
                            timeout=30)
    finally:
        app.kill()
    assert EXITED.search(text)[1] == "0", text  # type: ignore[index]
    assert not writes.exists(), writes.read_text()  # the demo's key stayed in memory
    log_dir = Path(env["XDG_STATE_HOME"])
    assert not any(p.is_file() for p in log_dir.rglob("*")), list(log_dir.rglob("*"))
    assert _tree(home) == before
