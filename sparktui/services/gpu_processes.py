"""GPU processes as the telemetry shows them: compute apps joined with what /proc says.

Kept apart from services.telemetry (which re-exports these names) so that module stays
about streams; these are plain data and one pure join.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sparktui.core.gpuprocs import ProcessDetail
from sparktui.core.nvsmi import ComputeApp, GpuSample


@dataclass(frozen=True, slots=True)
class GpuProcess:
    pid: int
    gpu_uuid: str
    gpu_index: int | None
    name: str  # raw from the device: sanitise before display
    used_memory_mib: float | None
    user: str | None = None  # the name, or the uid as text when /etc/passwd lacks it
    command: str | None = None  # the command line joined with spaces, as `ps -o args`
    cmdline: tuple[str, ...] | None = None  # its arguments, None when not readable
    cgroup: str | None = None  # the cgroup path that places it (see ProcessDetail)
    container_id: str | None = None  # the 64-hex id when that cgroup is a container's


#: 1 PiB: no figure of one device's memory is larger; beyond it a value is not a reading
MAX_MEMORY_BYTES = 1 << 50


def mib_to_bytes(mib: float | None) -> int | None:
    """MiB as whole bytes; None for a value that is not a memory size (NaN, inf, absurd)."""
    if mib is None or not math.isfinite(mib) or not 0 <= mib * 1024**2 <= MAX_MEMORY_BYTES:
        return None
    return int(mib * 1024**2)


def join_processes(apps: tuple[ComputeApp, ...] | list[ComputeApp],
                   details: dict[int, ProcessDetail],
                   gpus: tuple[GpuSample, ...]) -> tuple[GpuProcess, ...]:
    """Attach user, command line and cgroup (read from /proc by the loop) to compute apps."""
    index_of = {g.uuid: g.index for g in gpus if g.uuid}
    out = []
    for app in apps:
        detail = details.get(app.pid)
        user = None
        if detail is not None:
            user = detail.user or (str(detail.uid) if detail.uid is not None else None)
        out.append(GpuProcess(
            pid=app.pid, gpu_uuid=app.gpu_uuid, gpu_index=index_of.get(app.gpu_uuid),
            name=app.process_name, used_memory_mib=app.used_memory_mib, user=user,
            command=detail.command if detail else None,
            cmdline=detail.cmdline if detail else None,
            cgroup=detail.cgroup_path if detail else None,
            container_id=detail.container_id if detail else None))
    return tuple(out)
