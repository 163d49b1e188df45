"""`sparktui doctor` against a real OpenSSH sshd, each fault made real.

- no ssh-agent: SSH_AUTH_SOCK unset;
- an unknown host key: the client's known_hosts lacks the server;
- a wrong key: the server's authorized_keys lacks the client's key;
- no nvidia-smi on the login shell's PATH;
- a user outside the docker group: a real non-root user (created for the test) and a
  Docker socket owned by root:docker, mode 0660;
- a full disk: the user's home (where ~/.cache/huggingface lives) on a 1 MiB tmpfs,
  filled to the last block.
The CLI runs as a user runs it (a subprocess, `--json`); each fault must be reported
as a failure, with its fix.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra import REPO_ROOT, require

NO_DOCKER_USER = "sparktui-doctor"


def run_doctor(home: str, *args: str, env: dict[str, str] | None = None) -> dict:
    environ = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    environ.update(HOME=home, PYTHONPATH=REPO_ROOT, SPARKTUI_CONFIG=f"{home}/config.toml",
                   XDG_CONFIG_HOME=f"{home}/.config", **(env or {}))
    result = subprocess.run([sys.executable, "-m", "sparktui", "doctor", "--json", *args],
                            capture_output=True, text=True, env=environ, timeout=90)
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert result.returncode == (1 if report["failed"] else 0)
    return report


def check(report: dict, layer: str, name: str) -> dict:
    found = [c for c in report["checks"] if c["layer"] == layer and c["name"] == name]
    assert found, f"no {layer}/{name} check in {[c['name'] for c in report['checks']]}"
    return found[0]


def test_a_healthy_device_and_no_agent(ssh_home, sshd) -> None:
    ssh_home.add_server("spark-test", sshd)
    report = run_doctor(ssh_home.home, "spark-test")
    agent = check(report, "client", "ssh-agent")
    assert agent["status"] == "warn" and "SSH_AUTH_SOCK is not set" in agent["detail"]
    assert "ssh-agent" in agent["fix"] and "ssh-add" in agent["fix"]
    for name in ("resolve", "tcp", "host key", "auth", "nvidia-smi"):
        assert check(report, "spark-test", name)["status"] == "ok", report
    assert "NVIDIA GB10" in check(report, "spark-test", "nvidia-smi")["detail"]
    assert check(report, "spark-test", "sudo -n")["status"] in ("ok", "warn")


def test_an_agent_that_is_gone(ssh_home, sshd, tmp_path) -> None:
    ssh_home.add_server("spark-test", sshd)
    report = run_doctor(ssh_home.home, "spark-test",
                        env={"SSH_AUTH_SOCK": str(tmp_path / "agent.gone")})
    agent = check(report, "client", "ssh-agent")
    assert agent["status"] == "fail" and "does not exist" in agent["detail"]
    assert "ssh-agent" in agent["fix"]


def test_an_unknown_host_key(ssh_home, sshd) -> None:
    ssh_home.add_server("spark-test", sshd)
    ssh_home.clear_known_hosts()
    report = run_doctor(ssh_home.home, "spark-test")
    host_key = check(report, "spark-test", "host key")
    assert host_key["status"] == "fail"
    assert sshd.host_key_fingerprint in host_key["detail"]
    assert "fingerprint" in host_key["fix"] and "--accept-new-host-keys" in host_key["fix"]
    assert check(report, "spark-test", "auth")["status"] == "skip"
    assert check(report, "spark-test", "tcp")["status"] == "ok"


def test_a_wrong_key(ssh_home, sshd_factory) -> None:
    server = sshd_factory(authorize=False)  # its authorized_keys lacks the client's key
    ssh_home.add_server("spark-test", server)
    report = run_doctor(ssh_home.home, "spark-test")
    assert check(report, "spark-test", "host key")["status"] == "ok"
    auth = check(report, "spark-test", "auth")
    assert auth["status"] == "fail" and "no key was accepted" in auth["detail"]
    assert "ssh-copy-id" in auth["fix"]
    assert not [c for c in report["checks"] if c["name"] == "nvidia-smi"]  # not reached


def test_an_unresolvable_name_and_a_closed_port(ssh_home) -> None:
    ssh_home.write_ssh_config({"gone": {"HostName": "no-such-spark.invalid"}})
    report = run_doctor(ssh_home.home, "gone", "127.0.0.1:1")
    assert check(report, "gone", "resolve")["status"] == "fail"
    assert "mDNS" in check(report, "gone", "resolve")["fix"]
    tcp = check(report, "127.0.0.1", "tcp")
    assert tcp["status"] == "fail" and "sshd" in tcp["fix"]


# -- a user outside the docker group, no nvidia-smi, a full disk: one real login -----------

@pytest.fixture
def outsider() -> Iterator[str]:
    """A real non-root user with a login shell, for as long as the test runs."""
    require(os.geteuid() == 0 and shutil.which("useradd"),
            "root and useradd, to create a user outside the docker group")
    created = False
    try:
        pwd.getpwnam(NO_DOCKER_USER)
    except KeyError:
        subprocess.run(["useradd", "-M", "-s", "/bin/sh", "-d", "/nonexistent",
                        NO_DOCKER_USER], check=True, capture_output=True, timeout=30)
        created = True
    # "!" (useradd's default) locks the account, and sshd without PAM refuses its keys
    subprocess.run(["usermod", "-p", "*", NO_DOCKER_USER], check=True, capture_output=True,
                   timeout=30)
    try:
        yield NO_DOCKER_USER
    finally:
        if created:
            subprocess.run(["userdel", NO_DOCKER_USER], capture_output=True, timeout=30)


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, readable by everyone, with ~/.cache/huggingface on it, full."""
    mount = tmp_path / "home"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs",
                              str(mount)], capture_output=True, text=True, timeout=30)
    require(mounted.returncode == 0, f"mounting a tmpfs (root): {mounted.stderr.strip()}")
    try:
        (mount / ".cache" / "huggingface").mkdir(parents=True)
        with open(mount / "filler", "wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:  # ENOSPC: the disk is full, which is the point
                pass
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def test_outside_the_docker_group_without_nvidia_smi_on_a_full_disk(
        ssh_home, sshd_factory, outsider, full_tmpfs) -> None:
    try:
        grp.getgrnam("docker")
    except KeyError:
        require(False, "a docker group (apt-get install docker.io creates it)")
    os.chmod(os.path.dirname(str(full_tmpfs)), 0o755)  # the user walks to its home
    for parent in Path(full_tmpfs).parents:
        if str(parent) in ("/", "/tmp"):
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o005)
    server = sshd_factory(nvidia_smi=False, remote_home=str(full_tmpfs), start=False)
    # a Docker socket as docker.io makes it: root:docker 0660, with a listener behind it
    docker_socket = os.path.join(server.tmp_dir, "docker.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(docker_socket)
    listener.listen(1)
    os.chown(docker_socket, 0, grp.getgrnam("docker").gr_gid)
    os.chmod(docker_socket, 0o660)
    os.chmod(server.authorized_keys_path, 0o644)  # sshd reads it as the user
    server.start()
    ssh_home.add_server("spark-test", server, User=outsider)
    Path(ssh_home.home, "config.toml").write_text(
        f'[settings]\ndocker_socket = "{docker_socket}"\n')
    try:
        report = run_doctor(ssh_home.home, "spark-test")
    finally:
        listener.close()
    assert check(report, "spark-test", "auth")["status"] == "ok", report

    smi = check(report, "spark-test", "nvidia-smi")
    assert smi["status"] == "fail" and "not on the PATH" in smi["detail"]
    assert "driver" in smi["fix"] and "PATH" in smi["fix"]

    docker = check(report, "spark-test", "docker")
    assert docker["status"] == "fail"
    assert f"the user {outsider} is not in the 'docker' group" in docker["detail"]
    assert f"usermod -aG docker {outsider}" in docker["fix"]

    disk = check(report, "spark-test", "disk models")
    assert disk["status"] == "fail" and str(full_tmpfs) in disk["detail"]
    assert "docker system prune" in disk["fix"]

    sudo = check(report, "spark-test", "sudo -n")
    assert sudo["status"] == "warn" and "sudoers" in sudo["fix"]
