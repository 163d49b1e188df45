"""`sparktui forward` and `sparktui tunnels`, run as the user would run them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from sparktui.cli import SUBCOMMANDS, SUBCOMMANDS_HELP, main
from sparktui.core.aio import within
from tests.test_tunnels_sshd import BODY, fetch, free_port, http_port, port_is_bindable

__all__ = ["http_port"]  # the fixture, imported for its name


def _env(home: str, config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env.update(HOME=home, SPARKTUI_CONFIG=str(config), PYTHONUNBUFFERED="1")
    return env


async def _read_until(stream: asyncio.StreamReader, needle: str, seen: list[str],
                      timeout: float = 20.0) -> None:
    async def read() -> None:
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"output ended before {needle!r}: {seen}")
            seen.append(line)
            if needle in line:
                return

    await within(read(), timeout)


@pytest.mark.sshd
async def test_forward_prints_the_url_serves_and_exits_cleanly_on_sigint(
        ssh_client, http_port: int, tmp_path: Path):
    local = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sparktui", "forward", "spark-test", f"{local}:{http_port}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=_env(ssh_client.home, tmp_path / "config.toml"))
    seen: list[str] = []
    try:
        assert process.stdout is not None
        await _read_until(process.stdout, f"{http_port}: up", seen)
        url = f"http://127.0.0.1:{local}/"
        assert any(f"{url} -> spark-test localhost:{http_port}" in line for line in seen), seen
        response = await fetch(url)
        assert response.content == BODY
        process.send_signal(signal.SIGINT)
        _out, err = await within(process.communicate(), 15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    assert port_is_bindable(local), "the port is free once it exits"


async def test_forward_rejects_a_bad_spec_with_usage_status(capsys):
    assert main(["forward", "spark-test", "not-a-port"]) == 2
    assert "is not a forward: use REMOTE, LOCAL:REMOTE" in capsys.readouterr().err
    assert main(["forward", "spark-test"]) == 2


def test_subcommands_are_registered() -> None:
    assert {"forward", "tunnels"} <= set(SUBCOMMANDS)
    assert "forward" in SUBCOMMANDS_HELP and "tunnels" in SUBCOMMANDS_HELP


def test_tunnels_lists_the_saved_ones(tmp_path: Path, capsys):
    config = tmp_path / "config.toml"
    config.write_text('# mine\n[[tunnels]]\ndevice = "spark-1"\nname = "dashboard"\n'
                      'preset = "dashboard"\nlocal_port = 11000\n\n'
                      '[[tunnels]]\ndevice = "spark-1"\nname = "rev"\nremote_port = 9000\n'
                      'local_port = 3000\nreverse = true\nautostart = false\n\n'
                      '[[tunnels]]\ndevice = "spark-1"\nname = "broken"\n')
    assert main(["tunnels", "--config", str(config), "--json"]) == 0
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert [row["name"] for row in rows] == ["dashboard", "rev"]
    assert rows[0]["remote_port"] == 11000 and rows[0]["url"] == "http://127.0.0.1:11000/"
    assert rows[1]["reverse"] is True and rows[1]["url"] is None
    assert [row["autostart"] for row in rows] == [True, False]
    assert "tunnel #3: needs a remote_port (or a preset); skipped" in err

    assert main(["tunnels", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["DEVICE", "NAME", "LOCAL", "DIRECTION", "REMOTE",
                                           "PRESET", "AT", "START"]
    assert "127.0.0.1:11000" in out and "<- device" in out
    assert out.splitlines()[2].endswith("stay stopped")

    assert main(["tunnels", "--config", str(tmp_path / "none.toml")]) == 0
    assert "no tunnels saved" in capsys.readouterr().out


async def test_forward_demo_serves_the_simulated_dashboard(tmp_path: Path):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sparktui", "forward", "--demo", "dashboard",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=_env(str(tmp_path), tmp_path / "config.toml"))
    seen: list[str] = []
    try:
        assert process.stdout is not None
        await _read_until(process.stdout, "dashboard: up", seen)
        url = next(word for line in seen for word in line.split()
                   if word.startswith("http://127.0.0.1:"))
        response = await fetch(url)
        assert "DGX Dashboard (simulated)" in response.text
        process.send_signal(signal.SIGINT)
        _out, err = await within(process.communicate(), 15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()


@pytest.mark.sshd
async def test_forward_gives_up_with_the_reason_when_only_the_user_can_fix_it(
        ssh_home, sshd_factory, tmp_path: Path):
    server = sshd_factory()
    # the alias exists but the host key was never trusted: no prompt in a CLI
    ssh_home.write_ssh_config({"spark-new": {"HostName": server.address, "Port": server.port,
                                             "User": server.user}})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sparktui", "forward", "spark-new", str(free_port()),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=_env(ssh_home.home, tmp_path / "config.toml"))
    try:
        out, err = await within(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 1
    assert "failed (host key unknown)" in err.decode()
    assert "--accept-new-host-keys" in err.decode()
    assert "closed every forward" in out.decode()
