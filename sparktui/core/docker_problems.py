"""Why Docker on a device cannot be used, in words that say what to do.

Over an SSH socket forward every failure looks the same from this side (the
forwarded connection just closes), so the cause is found on the device with
one small shell probe (`diagnose_command`) and classified here. Pure: the
services run the probe and hand its output in.
"""

from __future__ import annotations

import enum
import shlex
from dataclasses import dataclass

from sparktui.core.docker_info import MIN_API_VERSION

_MARK = "sparktui-docker-probe"


class ProblemKind(enum.Enum):
    NOT_INSTALLED = "Docker not installed"
    DAEMON_DOWN = "daemon not running"
    PERMISSION = "permission denied"
    API_TOO_OLD = "API version too old"
    NOT_CONNECTED = "device not connected"
    OTHER = "error"


@dataclass(frozen=True)
class DockerProblem:
    kind: ProblemKind
    message: str  # the whole story for the user: cause and fix

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Probe:
    """What the device said about its Docker socket."""

    socket: str  # "socket", "other" (exists, not a socket), "missing"
    access: str  # "ok", "denied", "-" (not a socket)
    docker_cli: bool  # a docker or dockerd command is on PATH
    group: str  # the socket's group, "-" if unknown
    user: str


def diagnose_command(socket_path: str) -> str:
    """A POSIX sh snippet printing one line: `MARK socket access cli group user`.

    `test -r/-w` is what connect(2) on a UNIX socket needs (write permission):
    it tells "not in the docker group" apart from "nothing listening".
    """
    path = shlex.quote(socket_path)
    return (
        f'p="${{SPARKTUI_ROOT-}}"{path}; '
        'if [ -S "$p" ]; then s=socket; elif [ -e "$p" ]; then s=other; else s=missing; fi; '
        'a=-; if [ "$s" = socket ]; then '
        'if [ -r "$p" ] && [ -w "$p" ]; then a=ok; else a=denied; fi; fi; '
        "if command -v docker >/dev/null 2>&1 || command -v dockerd >/dev/null 2>&1; "
        "then d=yes; else d=no; fi; "
        'g=$(stat -c %G "$p" 2>/dev/null) || g=-; '
        'u=$(id -un 2>/dev/null) || u="${USER:-?}"; '
        f'echo "{_MARK} $s $a $d ${{g:--}} ${{u:-?}}"'
    )


def parse_probe(output: str) -> Probe | None:
    for line in output.splitlines():
        fields = line.split()
        if len(fields) == 6 and fields[0] == _MARK:
            return Probe(socket=fields[1], access=fields[2], docker_cli=fields[3] == "yes",
                         group=fields[4], user=fields[5])
    return None


def classify(device: str, socket_path: str, probe: Probe | None, error: str) -> DockerProblem:
    """The problem behind a failed connection to the daemon, given the device's probe."""
    start = ("Start it on the device: sudo systemctl start docker "
             "(why it stopped: sudo journalctl -u docker)")
    if probe is None:
        return DockerProblem(ProblemKind.OTHER,
                             f"Docker on {device} did not answer on {socket_path}: {error}")
    if probe.socket == "missing":
        if not probe.docker_cli:
            return DockerProblem(
                ProblemKind.NOT_INSTALLED,
                f"Docker is not installed on {device}: there is no {socket_path} and no "
                "docker command. Install Docker Engine on it (DGX OS ships it; Ubuntu: "
                "sudo apt install docker.io), or set docker_socket in the config if the "
                "daemon listens elsewhere.")
        return DockerProblem(
            ProblemKind.DAEMON_DOWN,
            f"The Docker daemon is not running on {device}: Docker is installed but "
            f"{socket_path} does not exist. {start}")
    if probe.socket == "other":
        return DockerProblem(ProblemKind.OTHER,
                             f"{socket_path} on {device} exists but is not a socket; is "
                             "docker_socket in the config right?")
    if probe.access == "denied":
        group = probe.group if probe.group not in ("-", "root") else "docker"
        return DockerProblem(
            ProblemKind.PERMISSION,
            f"Permission denied on {socket_path} on {device}: the user {probe.user} is not "
            f"in the '{group}' group. Fix: sudo usermod -aG docker {probe.user}, then log "
            "in again (disconnect and reconnect the device: group changes apply to new "
            "logins only).")
    return DockerProblem(
        ProblemKind.DAEMON_DOWN,
        f"The Docker daemon is not running on {device}: nothing answers on {socket_path} "
        f"({error}). {start}")


def api_too_old(device: str, api_version: str, engine_version: str) -> DockerProblem:
    return DockerProblem(
        ProblemKind.API_TOO_OLD,
        f"Docker on {device} is too old: Engine {engine_version or '?'} speaks API "
        f"{api_version}; sparktui needs API {MIN_API_VERSION} (Docker 19.03) or newer. "
        "Upgrade Docker on the device.")


def not_connected(device: str, why: str = "") -> DockerProblem:
    text = f"{device} is not connected"
    return DockerProblem(ProblemKind.NOT_CONNECTED, f"{text}: {why}" if why else text)


# -- the NVIDIA container runtime -------------------------------------------------------

_GPU_RUNTIME_MARKERS = (
    'could not select device driver "" with capabilities: [[gpu]]',
    "could not select device driver",
    "nvidia-container-cli",
    "unknown or invalid runtime name: nvidia",
)

NVIDIA_RUNTIME_FIX = ("sudo nvidia-ctk runtime configure --runtime=docker, then "
                      "sudo systemctl restart docker")


def is_gpu_runtime_error(text: str) -> bool:
    lowered = text.lower()
    return any(marker.lower() in lowered for marker in _GPU_RUNTIME_MARKERS)


def gpu_runtime_message(device: str, error: str) -> str:
    return (f"The NVIDIA container runtime is missing on {device}: Docker cannot give the "
            f"container a GPU ({error.strip()}). Fix it on the device: {NVIDIA_RUNTIME_FIX}. "
            "Or turn the GPU request off in the form.")
