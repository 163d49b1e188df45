"""`--demo` plays in a sandbox: it reads the user's settings and theme, and writes nothing
of theirs (config, tunnels, endpoints, known_hosts, history, session, recordings).

Driven with Pilot on the real SparkApp, built as the CLI builds it for --demo
(Session.sandboxed_demo); the shell key's ssh command runs for real against the
simulated device.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
from pathlib import Path

import pytest

from sparktui.core.aio import within
from sparktui.services.containers import shell_argv
from sparktui.services.endpoints import manual_spec
from sparktui.services.session import Session
from sparktui.services.tunnel_specs import TunnelSpec
from sparktui.ui.app import SparkApp
from sparktui.ui.chat.pane import ChatPane
from sparktui.ui.containers.pane import ContainersPane
from tests.infra.pilot import wait_until

REPO_THEMES = Path(__file__).resolve().parent.parent / "themes"


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _stat_tree(root: Path) -> dict[str, tuple[int, int]]:
    # the real ~/.ssh (OpenSSH ignores $HOME): sizes and times only, never the contents
    if not root.is_dir():
        return {}
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch) -> Path:
    home = tmp_path / "home"
    for sub in ("config/sparktui", "data/sparktui", "state", ".ssh"):
        (home / sub).mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    (home / "config/sparktui/config.toml").write_text(
        '# my settings\n[settings]\ntheme = "sparktui-light"\n\n[[devices]]\nname = "lab"\n'
        'host = "lab.invalid"\n')
    (home / ".ssh/known_hosts").write_text("lab.invalid ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\n")
    return home


async def test_a_demo_session_writes_nothing_of_the_users(user_home: Path) -> None:
    before = _tree(user_home)
    real_ssh = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".ssh"
    real_before = _stat_tree(real_ssh)
    session = Session.sandboxed_demo(user_home / "config/sparktui/config.toml")
    sandbox = session.sandbox
    assert sandbox is not None
    app = SparkApp(session.config, session=session, persist=True, theme_dirs=[REPO_THEMES])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.demo is not None and app.fleet.get(
            app.demo.spec.name) is not None and app.fleet.get(
            app.demo.spec.name).transport is not None, 30, "the demo connected")
        assert app.theme == "sparktui-light"  # the user's settings are read
        demo = app.demo
        assert demo is not None
        # everything a session saves: a tunnel, an endpoint, a theme, chat history
        result = await session.tunnels.add(TunnelSpec(demo.spec.name, "dash", 11000))
        assert result.tunnel.spec.name == "dash"
        await app.query_one(ChatPane).use_endpoint(
            manual_spec("http://127.0.0.1:8000/v1", device=demo.spec.name, name="mine"))
        app.theme = "sparktui-high-contrast"
        await wait_until(pilot, lambda: "sparktui-high-contrast" in
                         sandbox.config_path.read_text(), 10, "the theme saved (in the sandbox)")
        assert "dash" in sandbox.config_path.read_text()
        # the shell key (E) against the simulated device, with the options its link uses
        app.action_show_tab("containers")
        pane = app.query_one(ContainersPane)
        await wait_until(pilot, lambda: bool(pane.services) and bool(pane._rows), 20,
                         "the demo's containers")
        service, info = next(iter(pane._rows.values()))
        argv = shell_argv(service, info.id, "sh", session.ssh_options_for(demo.spec.name))
        # the simulated device answers on this event loop: the ssh client must not block it
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await within(process.communicate(b"hostname\nexit\n"), 30)
        assert info.id[:12] in out.decode(), (out, err)
    assert not sandbox.root.exists()  # the sandbox goes with the session
    assert _tree(user_home) == before  # config, data, state and ~/.ssh: byte-identical
    assert _stat_tree(real_ssh) == real_before
