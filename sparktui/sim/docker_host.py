"""What the simulated Spark's shell says about Docker: the socket probe, `id`, `test -S`.

Also the two small commands a deploy runs first (services.deploy): `printf "%s"
"$HOME"` and `mkdir -p` of its volume directories.

The user is in the `docker` group, as on a DGX Spark set up by DGX OS. The
socket is "there" when a simulated engine is attached to the device
(`SimDockerEngine.attach` sets `device.docker_engine`); without one (the
plain simulator) Docker is installed but its daemon is not running, which is
what the containers service's probe (core.docker_problems) then reports.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from sparktui.core.docker_problems import diagnose_command

#: a word of the probe's output line: `diagnose_command` scripts contain it
PROBE_MARK = diagnose_command("/").rsplit('echo "', 1)[1].split()[0]
SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
GROUPS = ((4, "adm"), (24, "cdrom"), (27, "sudo"), (30, "dip"), (46, "plugdev"), (101, "lxd"),
          (988, "docker"))
UID = 1000


def engine_serves(device: Any, path: str) -> bool:
    engine = getattr(device, "docker_engine", None)
    return path in SOCKETS and engine is not None and bool(getattr(engine, "running", False))


def probe_line(command: str, device: Any, user: str) -> str:
    """The output of `diagnose_command(path)` (its if/$() script is not interpreted)."""
    # the transport prefixes every command (`export SPARKTUI_RUN_TAG=...;`): find the `p=` part
    path = ""
    for part in command.split(";"):
        try:
            words = shlex.split(part.strip())
        except ValueError:
            continue
        if words and words[0].startswith("p="):
            path = words[0].removeprefix("p=")
            break
    if engine_serves(device, path):
        return f"{PROBE_MARK} socket ok yes docker {user}\n"
    return f"{PROBE_MARK} missing - yes - {user}\n"


def id_output(args: list[str], user: str) -> tuple[str, int]:
    """`id` for the login user: (stdout, status); -u/-g/-G with -n, or the full line."""
    flags = "".join(a.lstrip("-") for a in args if a.startswith("-"))
    if any(not a.startswith("-") and a != user for a in args):
        return "", 1  # another user: not modelled
    names = [user, *(name for _, name in GROUPS)]
    numbers = [str(UID), *(str(gid) for gid, _ in GROUPS)]
    if "G" in flags:
        return " ".join(names if "n" in flags else numbers) + "\n", 0
    if "u" in flags or "g" in flags:
        return (user if "n" in flags else str(UID)) + "\n", 0
    groups = ",".join([f"{UID}({user})", *(f"{gid}({name})" for gid, name in GROUPS)])
    return f"uid={UID}({user}) gid={UID}({user}) groups={groups}\n", 0


def test_status(args: list[str], device: Any) -> int:
    """`test -S PATH` and friends for the Docker socket; any other path does not exist."""
    if args and args[-1] == "]":
        args = args[:-1]
    if len(args) != 2 or args[0] not in ("-S", "-e", "-r", "-w"):
        return 2 if args else 1
    return 0 if engine_serves(device, args[1]) else 1


def printf_output(args: list[str], home: str) -> str:
    """`printf FORMAT ARGS...` with %s/%d/%% and \\n; $HOME is the one variable expanded."""
    if not args:
        return ""
    values = [a.replace("${HOME}", home).replace("$HOME", home) for a in args[1:]]
    out, fmt, i = [], args[0].replace("\\n", "\n"), 0
    while True:  # like printf(1): the format is reused while arguments remain
        used = i
        pieces = fmt.split("%%")
        text = []
        for piece in pieces:
            while "%s" in piece or "%d" in piece:
                spec = "%s" if "%s" in piece and (
                    "%d" not in piece or piece.index("%s") < piece.index("%d")) else "%d"
                value = values[i] if i < len(values) else ""
                piece = piece.replace(spec, value, 1)
                i += 1
            text.append(piece)
        out.append("%".join(text))
        if i >= len(values) or i == used:  # all used, or a format that takes none
            return "".join(out)


NO_DAEMON = ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
             "Is the docker daemon running?\n")


def _ports_text(summary_ports: list[dict[str, Any]]) -> str:
    """The PORTS column as the docker CLI prints it: `0.0.0.0:8000->8000/tcp, ...`."""
    parts = []
    for port in summary_ports:
        private = f"{port['PrivatePort']}/{port.get('Type', 'tcp')}"
        if "PublicPort" not in port:
            parts.append(private)
            continue
        ip = port.get("IP") or "0.0.0.0"
        host = f"[{ip}]" if ":" in ip else ip
        parts.append(f"{host}:{port['PublicPort']}->{private}")
    return ", ".join(parts)


def docker_cli(args: list[str], device: Any) -> tuple[str, str, int]:
    """`docker ps [-a] --format '{{json .}}'`, what chat's endpoint discovery runs:
    (stdout, stderr, status). Other subcommands are not simulated."""
    from sparktui.sim.docker_views import container_summary

    if not args or args[0] != "ps":
        verb = args[0] if args else ""
        return "", f"docker: '{verb}' is not simulated here (only `docker ps`)\n", 1
    engine = getattr(device, "docker_engine", None)
    if engine is None or not getattr(engine, "running", False):
        return "", NO_DAEMON, 1
    everything = "-a" in args or "--all" in args
    lines = []
    for container in engine.state.containers.values():
        if not (container.running or everything):
            continue
        summary = container_summary(container)
        lines.append(json.dumps({
            "ID": container.id[:12], "Names": container.name, "Image": container.image,
            "Command": json.dumps(summary["Command"]), "State": summary["State"],
            "Status": summary["Status"], "Ports": _ports_text(summary["Ports"]),
            "Labels": ",".join(f"{k}={v}" for k, v in summary["Labels"].items()),
            "Networks": next(iter(summary["NetworkSettings"]["Networks"]), ""),
        }) + "\n")
    return "".join(lines), "", 0
