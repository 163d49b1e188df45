"""Which GPU process is which model: process -> container -> published port -> endpoint -> model.

- process -> container: the process's cgroup names its container (the telemetry
  service's process stream reads /proc/PID/cgroup; no exec, no `docker top`);
- container -> port: the ports `docker ps` showed it publishing at discovery
  (a host-network container: the `--port N` of its command, or its endpoints'
  discovery note);
- port -> endpoint -> model: the endpoint found on that port, and its models;
- a process outside any container (Ollama as the playbook installs it, a
  llama-server started by hand) is matched by its name to an endpoint of that
  engine, or left without one.
Endpoints no GPU process accounts for get a row of their own, so every model
shows up once whatever the device could tell about its processes.
The rows are kept in the session's ModelDirectory (services/model_directory.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sparktui.services.endpoints import Endpoint, PsContainer
from sparktui.services.model_directory import ModelRow
from sparktui.services.telemetry import GpuProcess

_PORT_FLAG = re.compile(r"--port[= ](\d{2,5})\b")
#: process name fragments -> the endpoint kind or port they serve on natively
_NATIVE = (("ollama", "ollama"), ("llama-server", "llamacpp"), ("vllm", "vllm"),
           ("sglang", "sglang"), ("trtllm", "trtllm"))


def _port_of(endpoint: Endpoint) -> int:
    return endpoint.spec.base.host_port[1]


def container_ports(container: PsContainer, command: str = "") -> tuple[int, ...]:
    if container.ports:
        return container.ports
    return tuple(int(m) for m in _PORT_FLAG.findall(command))


def model_rows(device: str, processes: Sequence[GpuProcess],
               containers: Sequence[PsContainer], endpoints: Iterable[Endpoint]) -> list[ModelRow]:
    """One row per GPU process, then one per endpoint no process accounts for."""
    on_device = [e for e in endpoints if e.spec.device == device and e.error is None]
    by_port = {_port_of(e): e for e in on_device}
    claimed: set[str] = set()
    rows: list[ModelRow] = []
    for process in processes:
        container = next((c for c in containers if c.matches(process.container_id)), None)
        endpoint: Endpoint | None = None
        port: int | None = None
        if container is not None:
            for candidate in container_ports(container, process.command or ""):
                if candidate in by_port:
                    port, endpoint = candidate, by_port[candidate]
                    break
            if endpoint is None:  # host network: discovery noted the container by name
                endpoint = next((e for e in on_device
                                 if e.spec.note and e.spec.note.startswith(container.name + " ")),
                                None)
                port = _port_of(endpoint) if endpoint is not None else None
        else:
            endpoint = _native_endpoint(process, on_device, claimed)
            port = _port_of(endpoint) if endpoint is not None else None
        if endpoint is not None:
            claimed.add(endpoint.id)
        rows.append(ModelRow(
            device, process.pid, process.name, process.used_memory_mib,
            container.name if container is not None else None,
            process.container_id, port, endpoint.spec.url if endpoint else None,
            endpoint.models if endpoint else ()))
    for endpoint in on_device:
        if endpoint.id in claimed:
            continue
        port = _port_of(endpoint)
        container = next((c for c in containers if port in c.ports), None)
        rows.append(ModelRow(device, container=container.name if container else None,
                             container_id=container.id if container else None, port=port,
                             endpoint=endpoint.spec.url, models=endpoint.models))
    return rows


def _native_endpoint(process: GpuProcess, endpoints: list[Endpoint],
                     claimed: set[str]) -> Endpoint | None:
    words = f"{process.name} {process.command or ''}".lower()
    flag = _PORT_FLAG.search(words)
    if flag:
        endpoint = next((e for e in endpoints if _port_of(e) == int(flag.group(1))), None)
        if endpoint is not None:
            return endpoint
    for fragment, kind in _NATIVE:
        if fragment not in words:
            continue
        for endpoint in endpoints:
            if endpoint.id in claimed:
                continue
            if endpoint.kind == kind or (kind == "ollama" and _port_of(endpoint) == 11434):
                return endpoint
    return None
