"""The client half of `sparktui doctor`: each finding on real files, and the text layout."""

from __future__ import annotations

from pathlib import Path

from sparktui.commands.doctor import render
from sparktui.services.doctor import Check
from sparktui.services.doctor_client import (
    agent_check,
    config_check,
    known_hosts_check,
    ssh_config_check,
    terminal_checks,
)

HOST_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")


def test_known_hosts_lines_that_are_not_keys_are_named(tmp_path: Path) -> None:
    (tmp_path / ".ssh").mkdir()
    known = tmp_path / ".ssh" / "known_hosts"
    known.write_text(f"# mine\n[spark]:22 {HOST_KEY}\nnot a key at all\n")
    check = known_hosts_check(tmp_path)
    assert check.status == "warn" and "line(s) 3" in check.detail
    known.write_text(f"|1|c2FsdA==|aGFzaA== {HOST_KEY}\n@revoked old {HOST_KEY}\n")
    assert known_hosts_check(tmp_path).status == "ok"
    known.unlink()
    assert "asks" in known_hosts_check(tmp_path).detail  # none yet is fine


def test_a_broken_config_fails_with_its_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    assert config_check(str(config)).status == "ok"  # none yet: defaults
    config.write_text("[settings\nrefresh_interval = 1\n")
    check = config_check(str(config))
    assert check.status == "fail" and str(config) in check.detail and check.fix


def test_agent_findings(tmp_path: Path) -> None:
    none = agent_check({}, tmp_path)
    assert none.status == "fail" and "ssh-add" in (none.fix or "")  # no agent, no key
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_ed25519").write_text("key")
    assert agent_check({}, tmp_path).status == "warn"  # a key file still works
    stale = agent_check({"SSH_AUTH_SOCK": str(tmp_path / "gone")}, tmp_path)
    assert stale.status == "fail" and "does not exist" in stale.detail


def test_terminal_findings() -> None:
    assert terminal_checks({}, is_tty=False)[0].status == "skip"
    colours = {c.name: c for c in terminal_checks({"TERM": "dumb"}, is_tty=True)}["colours"]
    assert colours.status == "warn" and "xterm-256color" in (colours.fix or "")
    colours = {c.name: c for c in terminal_checks(
        {"TERM": "xterm-256color", "COLORTERM": "truecolor"}, is_tty=True)}["colours"]
    assert colours.status == "ok"


def test_ssh_config_problems_are_reported(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NV_SYNC_SSH_CONFIG", str(tmp_path / "none"))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host spark\n  Port 99999\nHost lab\n")
    check = ssh_config_check()
    assert check.status == "warn" and "bad Port" in check.detail


def test_the_report_wraps_in_80_columns_and_names_each_fix() -> None:
    checks = [Check("client", "ssh-agent", "warn", "no ssh-agent " * 12, "eval ssh-agent " * 8),
              Check("spark-1", "auth", "fail", "no key was accepted", "ssh-copy-id spark-1"),
              Check("spark-1", "nvidia-smi", "ok", "NVIDIA GB10")]
    text = render(checks, 80)
    assert all(len(line) < 80 for line in text.splitlines()), text
    assert "  FAIL  auth" in text and "fix: ssh-copy-id spark-1" in text
    assert text.splitlines()[-1] == "1 failed, 1 warning(s), 1 ok"
    assert render([Check("x\x1b[2Jy", "n", "ok", "\x1b]52;c;AAAA\x07d")]).count("\x1b") == 0
