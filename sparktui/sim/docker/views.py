"""The simulated Docker Engine's JSON: what each API answer looks like, and filters.

Pure functions from the state (sparktui.sim.docker.state) to the dicts the
Engine API returns, shaped like Docker 28's: `docker ps`'s list rows, the
inspect documents, the image list, `/version` and `/info`.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

from sparktui.sim.device.gpu_model import MEM_TOTAL_KB, NCPU
from sparktui.sim.device.root import DOCKER_VERSION, KERNEL_RELEASE
from sparktui.sim.docker.state import (
    DockerState,
    EngineError,
    SimContainer,
    SimImage,
    normalize_ref,
    rfc3339,
)

#: the API of Docker 28.3, the Engine the simulated Spark's facts report
API_VERSION = "1.51"
MIN_API_VERSION = "1.24"
GIT_COMMIT = "bea959c"
GO_VERSION = "go1.24.5"


def human_duration(seconds: float) -> str:
    """Docker's (go-units) HumanDuration: 'About an hour', '3 days', '2 weeks'."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 2:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = seconds / 60
    if round(minutes) == 1:
        return "About a minute"
    if minutes < 60:
        return f"{int(minutes)} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def status_text(c: SimContainer, now: float | None = None) -> str:
    now = time.time() if now is None else now
    if c.running:
        text = f"Up {human_duration(now - (c.started_at or now))}"
        if c.state == "paused":
            return text + " (Paused)"
        if c.health == "starting":
            return text + " (health: starting)"
        return f"{text} ({c.health})" if c.health else text
    if c.state == "exited":
        return f"Exited ({c.exit_code}) {human_duration(now - (c.finished_at or now))} ago"
    return c.state.capitalize()


def live_ports(c: SimContainer) -> dict[str, Any]:
    """NetworkSettings.Ports: the bindings while it runs (with the IPv6 twin); {} otherwise."""
    if not c.running or c.host_config.get("NetworkMode") == "host":
        return {}
    ports: dict[str, Any] = {spec: None for spec in c.exposed}
    for spec, bindings in c.ports.items():
        out = []
        for binding in bindings or []:
            ip = binding.get("HostIp") or "0.0.0.0"
            out.append({"HostIp": ip, "HostPort": str(binding.get("HostPort") or "")})
            if ip == "0.0.0.0":
                out.append({"HostIp": "::", "HostPort": str(binding.get("HostPort") or "")})
        ports[spec] = out
    return ports


def mounts(c: SimContainer) -> list[dict[str, Any]]:
    out = []
    for bind in c.host_config.get("Binds") or []:
        source, _, rest = bind.partition(":")
        destination, _, mode = rest.partition(":")
        rw = mode != "ro"
        if source.startswith("/"):
            out.append({"Type": "bind", "Source": source, "Destination": destination,
                        "Mode": mode, "RW": rw, "Propagation": "rprivate"})
        else:
            out.append({"Type": "volume", "Name": source,
                        "Source": f"/var/lib/docker/volumes/{source}/_data",
                        "Destination": destination, "Driver": "local", "Mode": mode or "z",
                        "RW": rw, "Propagation": ""})
    return out


def _command(c: SimContainer) -> str:
    return " ".join(c.cmd)


def container_summary(c: SimContainer) -> dict[str, Any]:
    """One row of GET /containers/json."""
    ports = []
    for spec, bindings in live_ports(c).items():
        number, _, proto = spec.partition("/")
        for binding in bindings or [{}]:
            row: dict[str, Any] = {"PrivatePort": int(number), "Type": proto or "tcp"}
            if binding:
                row.update(IP=binding["HostIp"], PublicPort=int(binding["HostPort"] or 0))
            ports.append(row)
    network = c.host_config.get("NetworkMode") or "bridge"
    return {
        "Id": c.id, "Names": ["/" + c.name], "Image": c.image, "ImageID": c.image_id,
        "Command": _command(c), "Created": int(c.created), "Ports": ports,
        "Labels": dict(c.labels), "State": c.state, "Status": status_text(c),
        "HostConfig": {"NetworkMode": network},
        "NetworkSettings": {"Networks": {network: _network(c)}}, "Mounts": mounts(c),
    }


def _network(c: SimContainer) -> dict[str, Any]:
    if not c.running or c.host_config.get("NetworkMode") == "host":
        return {"IPAddress": "", "Gateway": "", "MacAddress": ""}
    octet = 2 + int(c.id[:2], 16) % 200
    return {"IPAddress": f"172.17.0.{octet}", "Gateway": "172.17.0.1", "IPPrefixLen": 16,
            "MacAddress": f"02:42:ac:11:00:{octet:02x}"}


def container_inspect(c: SimContainer) -> dict[str, Any]:
    """GET /containers/{id}/json."""
    state: dict[str, Any] = {
        "Status": c.state, "Running": c.running, "Paused": c.state == "paused",
        "Restarting": False, "OOMKilled": c.oom_killed, "Dead": False, "Pid": c.pid,
        "ExitCode": c.exit_code, "Error": "", "StartedAt": rfc3339(c.started_at),
        "FinishedAt": rfc3339(c.finished_at),
    }
    if c.healthcheck:
        state["Health"] = {"Status": c.health or "starting",
                           "FailingStreak": 0 if c.health != "unhealthy" else 3, "Log": []}
    host_config = {"Binds": [], "PortBindings": {}, "IpcMode": "private", "ShmSize": 67108864,
                   "Runtime": "runc", "Privileged": False, "AutoRemove": False,
                   "DeviceRequests": None, "Ulimits": None, **c.host_config}
    config: dict[str, Any] = {
        "Hostname": c.id[:12], "Domainname": "", "User": "", "Tty": False, "OpenStdin": False,
        "StdinOnce": False, "AttachStdin": False, "AttachStdout": True, "AttachStderr": True,
        "ExposedPorts": dict(c.exposed), "Env": list(c.env), "Cmd": list(c.cmd),
        "Image": c.image, "Volumes": None, "WorkingDir": "", "Entrypoint": None,
        "Labels": dict(c.labels),
    }
    if c.healthcheck:
        config["Healthcheck"] = dict(c.healthcheck)
    network = c.host_config.get("NetworkMode") or "bridge"
    return {
        "Id": c.id, "Created": rfc3339(c.created), "Path": c.cmd[0] if c.cmd else "",
        "Args": c.cmd[1:], "State": state, "Image": c.image_id,
        "ResolvConfPath": f"/var/lib/docker/containers/{c.id}/resolv.conf",
        "HostnamePath": f"/var/lib/docker/containers/{c.id}/hostname",
        "LogPath": f"/var/lib/docker/containers/{c.id}/{c.id}-json.log",
        "Name": "/" + c.name, "RestartCount": c.restarts, "Driver": "overlayfs",
        "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile":
        "docker-default", "HostConfig": host_config, "Mounts": mounts(c), "Config": config,
        "NetworkSettings": {"Ports": live_ports(c), "SandboxKey": "",
                            "Networks": {network: _network(c)}, **_network(c)},
    }


def image_summary(image: SimImage) -> dict[str, Any]:
    return {"Id": image.id, "ParentId": "", "RepoTags": list(image.tags),
            "RepoDigests": list(image.digests), "Created": int(image.created),
            "Size": image.size, "SharedSize": -1, "Labels": None, "Containers": -1}


def image_inspect(image: SimImage) -> dict[str, Any]:
    return {"Id": image.id, "RepoTags": list(image.tags), "RepoDigests": list(image.digests),
            "Parent": "", "Comment": "", "Created": rfc3339(image.created),
            "DockerVersion": "", "Author": "", "Architecture": "arm64", "Os": "linux",
            "Size": image.size, "Config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
                                           "Cmd": None, "Labels": None},
            "RootFS": {"Type": "layers", "Layers": [
                "sha256:" + image.id[7 + i:] + image.id[7:7 + i] for i in range(4)]},
            "Metadata": {"LastTagTime": ZERO}}


ZERO = "0001-01-01T00:00:00Z"


def container_stats(state: DockerState, c: SimContainer) -> dict[str, Any]:
    """One `GET /containers/{id}/stats?stream=0` answer."""
    now = time.monotonic()
    read = rfc3339(time.time())
    if not c.running:
        return {"read": ZERO, "preread": ZERO, "id": c.id, "name": "/" + c.name,
                "pids_stats": {}, "cpu_stats": {"cpu_usage": {"total_usage": 0},
                                                "throttling_data": {}},
                "precpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
                "memory_stats": {}, "networks": {}, "blkio_stats": {}}
    state.advance_cpu(c, now)
    _, cpu, system = c.cpu_history[-1]
    # the previous figures about a second back, as a two-cycle sample would have them
    pre = next((h for h in reversed(c.cpu_history) if h[0] <= now - 0.9), None)
    busy = now < c.busy_until and c.state == "running"
    wobble = 1 + 0.02 * math.sin(now / 11.0 + len(c.name))
    usage = int(c.profile.mem_base * wobble + (c.profile.mem_busy if busy else 0))
    inactive = int(usage * 0.06)
    usage += inactive  # page cache: counted in usage, not in what `docker stats` shows

    def cpu_block(total: float, sys_total: float) -> dict[str, Any]:
        return {"cpu_usage": {"total_usage": int(total), "usage_in_kernelmode":
                              int(total * 0.08), "usage_in_usermode": int(total * 0.92)},
                "system_cpu_usage": int(sys_total), "online_cpus": NCPU,
                "throttling_data": {"periods": 0, "throttled_periods": 0,
                                    "throttled_time": 0}}

    return {
        "read": read, "preread": rfc3339(time.time() - 1) if pre else ZERO,
        "id": c.id, "name": "/" + c.name,
        "pids_stats": {"current": c.profile.pids, "limit": 4_194_304},
        "cpu_stats": cpu_block(cpu, system),
        "precpu_stats": cpu_block(pre[1], pre[2]) if pre else
        {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
        "memory_stats": {"usage": usage, "limit": MEM_TOTAL_KB * 1024, "stats": {
            "inactive_file": inactive, "active_file": inactive // 2, "anon": usage - inactive,
            "file": inactive + inactive // 2, "pgfault": int(cpu / 1e5)}},
        "networks": {"eth0": {"rx_bytes": int(cpu / 2e3), "tx_bytes": int(cpu / 3e3),
                              "rx_packets": int(cpu / 9e5), "tx_packets": int(cpu / 1e6),
                              "rx_errors": 0, "tx_errors": 0, "rx_dropped": 0,
                              "tx_dropped": 0}},
        "blkio_stats": {"io_service_bytes_recursive": None},
    }


def version() -> dict[str, Any]:
    build = "2025-07-25T11:34:12.000000000+00:00"
    details = {"ApiVersion": API_VERSION, "Arch": "arm64", "BuildTime": build,
               "Experimental": "false", "GitCommit": GIT_COMMIT, "GoVersion": GO_VERSION,
               "KernelVersion": KERNEL_RELEASE, "MinAPIVersion": MIN_API_VERSION, "Os": "linux"}
    return {
        "Platform": {"Name": "Docker Engine - Community"},
        "Components": [
            {"Name": "Engine", "Version": DOCKER_VERSION, "Details": details},
            {"Name": "containerd", "Version": "1.7.27",
             "Details": {"GitCommit": "05044ec0a9a75232cad458027ca83437aae3f4da"}},
            {"Name": "runc", "Version": "1.2.5", "Details": {"GitCommit": "v1.2.5-0-g59923ef"}},
            {"Name": "docker-init", "Version": "0.19.0", "Details": {"GitCommit": "de40ad0"}},
        ],
        "Version": DOCKER_VERSION, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": GIT_COMMIT, "GoVersion": GO_VERSION, "Os": "linux", "Arch": "arm64",
        "KernelVersion": KERNEL_RELEASE, "BuildTime": build,
    }


def info(state: DockerState, hostname: str) -> dict[str, Any]:
    running = sum(1 for c in state.containers.values() if c.state == "running")
    paused = sum(1 for c in state.containers.values() if c.state == "paused")
    return {
        "ID": "SIMD:OCKR:ENGN:SPRK:0000:0000:0000:0000:0000:0000:0000:0001",
        "Containers": len(state.containers), "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": len(state.containers) - running - paused,
        "Images": len(state.images), "Driver": "overlayfs", "DockerRootDir": "/var/lib/docker",
        "KernelVersion": KERNEL_RELEASE, "OperatingSystem": "Ubuntu 24.04.3 LTS",
        "OSVersion": "24.04", "OSType": "linux", "Architecture": "aarch64", "NCPU": NCPU,
        "MemTotal": MEM_TOTAL_KB * 1024, "Name": hostname, "ServerVersion": DOCKER_VERSION,
        "Runtimes": {"io.containerd.runc.v2": {"path": "runc", "status": {}},
                     "nvidia": {"path": "nvidia-container-runtime"},
                     "runc": {"path": "runc", "status": {}}},
        "DefaultRuntime": "runc", "CgroupDriver": "systemd", "CgroupVersion": "2",
        "LoggingDriver": "json-file", "SecurityOptions": ["name=apparmor", "name=seccomp,"
                                                          "profile=builtin", "name=cgroupns"],
        "Swarm": {"LocalNodeState": "inactive"}, "Labels": [], "Warnings": None,
        "IndexServerAddress": "https://index.docker.io/v1/",
    }


# -- filters ---------------------------------------------------------------------------------
def parse_filters(raw: str | None) -> dict[str, list[str]]:
    """The `filters` query parameter: {"key": ["v", ...]} or the old {"key": {"v": true}}."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise EngineError(400, f"invalid filter: {exc}") from None
    if not isinstance(data, dict):
        raise EngineError(400, "invalid filter: not a JSON object")
    return {str(k): [str(x) for x in (v if isinstance(v, list) else list(v or {}))]
            for k, v in data.items()}


def _label_matches(labels: dict[str, str], wanted: list[str]) -> bool:
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def container_matches(c: SimContainer, filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if not values:
            continue
        if key == "name":
            if not any(re.search(v, "/" + c.name) for v in values):
                return False
        elif key == "id":
            if not any(c.id.startswith(v) for v in values):
                return False
        elif key == "status":
            if c.state not in values:
                return False
        elif key == "label":
            if not _label_matches(c.labels, values):
                return False
        elif key == "ancestor":
            if not any(normalize_ref(v) == normalize_ref(c.image) or v == c.image_id
                       for v in values):
                return False
        elif key == "health":
            if (c.health or "none") not in values:
                return False
    return True


def event_matches(event: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    actor = event.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    for key, values in filters.items():
        if not values:
            continue
        if key == "type" and event.get("Type") not in values:
            return False
        action = str(event.get("Action") or "")
        if key == "event" and action not in values and action.split(":")[0] not in values:
            return False
        if key == "container" and event.get("Type") == "container" and not any(
                str(actor.get("ID", "")).startswith(v) or attributes.get("name") == v
                for v in values):
            return False
        if key == "image" and not any(normalize_ref(v) == normalize_ref(
                attributes.get("image") or attributes.get("name") or "") for v in values):
            return False
        if key == "label" and not _label_matches(attributes, values):
            return False
    return True
