"""Installing sparktui's key with a password, once, against a real sshd and a real user."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec
from sparktui.services.audit import AuditLog, ReadOnlyError
from sparktui.services.config import Config, load_config
from sparktui.services.keyinstall import KeyInstallError, ensure_key, install_key
from sparktui.transport.ssh import connect_ssh
from sparktui.transport.ssh_types import SSHOptions
from tests.infra.common import require
from tests.test_ui_shell import REPO_THEMES


@dataclass
class PasswordUser:
    name: str
    password: str
    home: Path


@pytest.fixture
def password_user() -> Iterator[PasswordUser]:
    require(os.geteuid() == 0 and shutil.which("useradd") and shutil.which("chpasswd"),
            "root with useradd and chpasswd (passwd package) to create a test user")
    name = f"sparktui-pw-{secrets.token_hex(3)}"
    password = f"pw-{secrets.token_urlsafe(12)}"
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, capture_output=True)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True,
                       capture_output=True)
        home = Path(os.path.expanduser(f"~{name}"))
        yield PasswordUser(name, password, home)
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)  # by owner only
        # -f: a session process still exiting must not leave the user behind
        done = subprocess.run(["userdel", "-f", "-r", name], capture_output=True, text=True)
        if done.returncode not in (0, 12):  # 12: the home dir was already gone
            raise RuntimeError(f"could not delete test user {name}: {done.stderr}")


@pytest.fixture
def password_sshd(sshd_factory, password_user: PasswordUser, ssh_home, monkeypatch):
    # UsePAM no: sshd checks /etc/shadow itself. The test user's keys live in its own
    # ~/.ssh/authorized_keys (what the install writes), not in the server's shared file.
    server = sshd_factory(password_auth=True, remote_home=False, extra_config=[
        f"Match User {password_user.name}",
        "    AuthorizedKeysFile .ssh/authorized_keys"])
    ssh_home.add_known_host(server)
    monkeypatch.setenv("HOME", ssh_home.home)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return server


def _spec(server, user: PasswordUser) -> DeviceSpec:
    return DeviceSpec(name="pw-box", host=server.address, port=server.port, user=user.name)


async def test_install_then_log_in_by_key(password_sshd, password_user: PasswordUser,
                                          ssh_home, tmp_path: Path) -> None:
    spec = _spec(password_sshd, password_user)
    options = SSHOptions(known_hosts=ssh_home.known_hosts_path, use_ssh_config=False)
    audit = AuditLog(tmp_path / "audit.jsonl")
    key_path = Path(ssh_home.home) / ".ssh" / "sparktui_ed25519"

    with pytest.raises(KeyInstallError, match="password was not accepted"):
        await install_key(spec, "wrong-password", options=options, audit=audit)
    assert key_path.exists()  # made before the login: the next try reuses it
    with pytest.raises(ReadOnlyError):
        await install_key(spec, password_user.password, options=options, audit=audit,
                          read_only=True)

    result = await install_key(spec, password_user.password, options=options, audit=audit)
    assert result.verified and not result.already_present
    assert result.key.path == key_path
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    authorized = password_user.home / ".ssh" / "authorized_keys"
    assert authorized.read_text().splitlines() == [result.key.public_line]
    assert stat.S_IMODE(authorized.stat().st_mode) == 0o600
    assert stat.S_IMODE(authorized.parent.stat().st_mode) == 0o700

    again = await install_key(spec, password_user.password, options=options, audit=audit)
    assert again.already_present and not again.key.created
    assert authorized.read_text().splitlines() == [result.key.public_line]  # added once

    # by key alone now, as the device's connection will from here on
    keyed = DeviceSpec(name="pw-box", host=spec.host, port=spec.port, user=spec.user,
                       identity_file=str(key_path))
    transport = await connect_ssh(keyed, options)
    try:
        assert (await transport.run("id -un")).stdout.strip() == password_user.name
    finally:
        await transport.close()

    entries = audit.entries()
    assert [e["result"] for e in entries] == ["added", "already present"]
    assert entries[0]["action"] == "install-key"
    assert entries[0]["target"] == result.key.fingerprint
    assert password_user.password not in (tmp_path / "audit.jsonl").read_text()


def test_ensure_key_reuses_an_existing_key(tmp_path: Path) -> None:
    made = ensure_key(tmp_path / "k" / "id")
    assert made.created and made.public_line.startswith("ssh-ed25519 ")
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o700
    again = ensure_key(tmp_path / "k" / "id")
    assert not again.created and again.fingerprint == made.fingerprint


async def test_the_form_installs_the_key_and_keeps_no_password(
        password_sshd, password_user: PasswordUser, ssh_home, tmp_path: Path,
        monkeypatch) -> None:
    from textual.widgets import Input

    from sparktui.ui.app import SparkApp
    from sparktui.ui.devices.form import DeviceFormScreen

    config_dir, data_dir = tmp_path / "config", tmp_path / "data"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_dir))
    monkeypatch.setenv("XDG_DATA_HOME", str(data_dir))
    config_path = config_dir / "sparktui" / "config.toml"
    config_path.parent.mkdir(parents=True)
    config_path.write_text("# my devices\n")
    app = SparkApp(Config(path=config_path), theme_dirs=[REPO_THEMES])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("a")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, DeviceFormScreen)
        values = {"name": "pw-box", "host": password_sshd.address,
                  "user": password_user.name, "port": str(password_sshd.port),
                  "tags": "lab, spark"}
        for key, value in values.items():
            form.query_one(f"#field-{key}", Input).value = value
        # Held, not re-queried: on a fast machine the form may already be closed (its
        # children unmounted) by the time ctrl+s returns.
        password_input = form.query_one("#field-password", Input)
        password_input.value = password_user.password
        await pilot.press("ctrl+s")
        assert password_input.value == ""  # emptied at once
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while app.screen is form and loop.time() < deadline:
            await pilot.pause(0.05)
        assert app.screen is not form  # saved, then keyed: the form closed itself
        assert form.saved is not None and form.saved.identity_file, form.saved
        assert any("is now authorised on pw-box" in n.message or "was already" in n.message
                   for n in app._notifications)
        await pilot.pause()
        assert app.fleet.get("pw-box") is not None  # opened in the session, by key
        link = app.fleet.get("pw-box")
        await within(link.wait_connected(), 20)
    saved = load_config(config_path)
    device = saved.device("pw-box")
    assert device is not None and device.tags == ("lab", "spark")
    assert device.identity_file == str(Path(ssh_home.home) / ".ssh" / "sparktui_ed25519")
    assert config_path.read_text().startswith("# my devices\n")
    # the password is nowhere: not in the config, the data dir (audit) or the client HOME
    for root in (config_dir, data_dir, Path(ssh_home.home)):
        for path in root.rglob("*"):
            if path.is_file():
                assert password_user.password not in path.read_text(errors="ignore"), path
    audit = (data_dir / "sparktui" / "audit.jsonl").read_text()
    assert '"action": "install-key"' in audit
