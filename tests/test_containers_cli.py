"""`sparktui containers` and `sparktui logs` through the real sshd, and the shell command."""

from __future__ import annotations

import json
import os
import pty
import select
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from sparktui.commands.containers import containers_main, logs_main
from sparktui.core.device import DeviceSpec
from sparktui.services.containers import ContainerService, shell_argv
from sparktui.services.link import DeviceLink
from tests.infra import REPO_ROOT, require
from tests.infra.docker import DockerEngine, make_samples, remove_samples

pytestmark = pytest.mark.sshd


@pytest.fixture(scope="module")
def samples(docker_engine: DockerEngine):
    made = make_samples(docker_engine, f"sp-cli-{docker_engine.session}")
    yield made
    remove_samples(made)


def test_containers_lists_as_json_and_as_a_table(ssh_client, samples, capsys):
    assert containers_main(["--json", "--all", "spark-test"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    markup = rows[samples.markup.name]
    assert markup["labels"]["note"] == "[bold red]x[/]" and markup["state"] == "running"
    assert rows[samples.exits.name]["exit_code"] == 3
    assert containers_main(["spark-test"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("NAME") and samples.markup.name in table
    assert samples.exits.name not in table  # running only without --all


def test_logs_strip_every_escape_when_not_a_terminal(ssh_client, samples, capsys):
    assert logs_main(["spark-test", samples.colours.name]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:5] == ["red plain", "cursor-moved", "after-osc",
                                    "[bold red]markup[/] stays", "bin\ufffdary"]
    assert "\x1b" not in out and "\x01" not in out
    assert logs_main(["spark-test", samples.exits.id[:12], "--tail", "1", "-t"]) == 0
    stamp, text = capsys.readouterr().out.strip().split(" ", 1)
    assert text == "bye" and stamp.startswith("20")
    assert logs_main(["spark-test", "no-such-container"]) == 1
    assert "no container 'no-such-container' on spark-test" in capsys.readouterr().err


def test_logs_keep_colour_on_a_terminal(ssh_client, samples):
    master, slave = pty.openpty()
    env = dict(os.environ, HOME=ssh_client.home, PYTHONPATH=REPO_ROOT, COLUMNS="200")
    proc = subprocess.Popen([sys.executable, "-m", "sparktui", "logs", "spark-test",
                             samples.colours.name], stdout=slave, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(timeout=10) == 0, proc.stderr.read()
    text = out.decode()
    assert "\x1b[31mred\x1b[0m plain" in text  # colour kept for a terminal
    assert "\x1b]0;" not in text and "\x1b[2J" not in text and "evil title" not in text
    assert "[bold red]markup[/] stays" in text


def test_the_shell_command_really_opens_a_shell(ssh_client, samples):
    """The argv `E` runs, through ssh -t and docker exec -it, on a pseudo-terminal."""
    require(shutil.which("script"), "script (util-linux), for a pseudo-terminal")
    service = ContainerService(DeviceLink(DeviceSpec.parse("spark-test"), connector=None))
    argv = shell_argv(service, samples.markup.id)
    assert argv[:2] == ["ssh", "-t"] and argv[-1].startswith("docker exec -it ")
    # OpenSSH reads the passwd home, not $HOME: point it at the test client's files
    argv[1:1] = ssh_client.openssh_args()
    result = subprocess.run(["script", "-qec", shlex.join(argv), "/dev/null"],
                            input="echo inside-$((40+2)); exit\n", capture_output=True,
                            text=True, timeout=30)
    assert "inside-42" in result.stdout, (result.stdout, result.stderr)


def test_logs_follow_says_so_when_the_connection_drops(ssh_client, sshd, docker_engine):
    """A followed log whose SSH connection is killed mid-follow: a message and exit 1,
    within a bound (keepalives + the moment _dropped gives the link), never a hang."""
    box = docker_engine.run(["sh", "-c", "while true; do echo tick; sleep 0.2; done"],
                            init=True, network_mode="none",
                            name=f"sp-cli-follow-{docker_engine.session}")
    env = dict(os.environ, HOME=ssh_client.home, PYTHONPATH=REPO_ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "sparktui", "logs", "--follow",
                             "spark-test", box.name], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until the follow is live (or the exit)
        assert first.strip() == b"tick", (first, proc.stderr.read() if proc.poll() else b"")
        sshd.kill_sessions()
        dropped = time.monotonic()
        _rest, err = proc.communicate(timeout=30)
        took = time.monotonic() - dropped
        print(f"\nlogs --follow ended {took:.1f} s after the drop: {err.decode().strip()}")
        assert proc.returncode == 1
        assert b"connection to spark-test dropped" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        box.remove(force=True)
