"""The simulated Spark's answers for the GB10 features: host-stream lines, actions, evidence.

`gb10_lines` adds the psi/buddy/rail/prochot lines to each host-stat block
(core.hostscript), and may wedge the box when memory ran out. `run_marker`
stands for the scripts the services send by marker (the shell does not
interpret them): drop caches and compact (the simulated user may sudo), and
the post-mortem's evidence of the previous boot (sim.memory_model).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sparktui.core.hostscript import BLOCK_BEGIN, BLOCK_END, THERMAL_PREFIX
from sparktui.core.postmortem import EVIDENCE_MARKER

if TYPE_CHECKING:
    from sparktui.sim.gpu_model import SimDevice

_MEMORY_ACTIONS = {"sparktui-drop-caches": "drop_caches", "sparktui-compact": "compact"}
MARKERS = frozenset({EVIDENCE_MARKER, *_MEMORY_ACTIONS})


def run_marker(marker: str, device: SimDevice) -> str:
    """The output of the script named by `marker` on the simulated device."""
    if marker == EVIDENCE_MARKER:
        return postmortem_evidence(device)
    getattr(device.memory, _MEMORY_ACTIONS[marker])()
    return ""


def hoststat_block(device: SimDevice, now: float | None = None) -> str:
    """One block of the host-statistics stream (core.hostscript) for the simulated device.

    The simulator answers the very command the telemetry service sends to real
    devices: `--- sparktui-hoststat <uptime>`, the cpu lines of /proc/stat, all of
    /proc/meminfo, the /proc/loadavg line, `thermal <zone> <millidegrees>` per
    zone, the GB10 lines below, `--- end`.
    """
    now = device.clock() if now is None else now
    lines = [f"{BLOCK_BEGIN}{device.uptime_s(now):.2f}", f"boot {device.memory.boot_id}"]
    lines += device.cpu_stat_lines(now)
    meminfo = device.meminfo(now)
    text = "\n".join(lines) + "\n" + meminfo + device.loadavg(now)
    text += "".join(f"{THERMAL_PREFIX}{name} {milli}\n" for name, milli in device.thermal(now))
    return text + gb10_lines(device, meminfo, now) + BLOCK_END + "\n"


def gb10_lines(device: SimDevice, meminfo: str, now: float) -> str:
    """The psi, buddy, rail and prochot lines of a block (see core.hostscript)."""
    kb = {m.group(1): int(m.group(2))
          for m in re.finditer(r"^(\w+):\s+(\d+)", meminfo, re.MULTILINE)}
    memory = device.memory
    available, free = kb.get("MemAvailable", 0), kb.get("MemFree", 0)
    memory.check_wedge(available)
    some, full = memory.pressure(available, kb.get("MemTotal", 1))
    out = [f"psi some avg10={some:.2f} avg60={some * 0.7:.2f} avg300={some * 0.3:.2f} total=0",
           f"psi full avg10={full:.2f} avg60={full * 0.7:.2f} avg300={full * 0.3:.2f} total=0"]
    out += [f"buddy {line}" for line in memory.buddyinfo(free)]
    if device.kind == "gb10":
        gpu_w = device.gpu(0, now).power_draw or 0.0
        rails = {"sys_total": gpu_w + 38.0, "soc_pkg": gpu_w + 14.0, "cpu_gpu": gpu_w + 9.0,
                 "gpu": gpu_w, "dc_input": gpu_w + 44.0, "pl1": 140.0, "pl2": 240.0}
        out += [f"rail {name} {int(watts * 1e6)}" for name, watts in rails.items()]
        out.append("prochot 0")
    return "".join(line + "\n" for line in out)


def postmortem_evidence(device: SimDevice) -> str:
    memory = device.memory
    previous = memory.previous
    lines = [f"boot {memory.boot_id}", f"uptime {device.uptime_s():.2f}", "--- journal"]
    if memory.boots:
        lines += [f"2026-01-01T00:00:{i % 60:02d}+0000 {device.hostname} {line}"
                  for i, line in enumerate(previous.journal)]
        lines.append("--- journal-status 0")
    else:
        lines += ["Data from the specified boot (-1) is not available: No such boot ID in "
                  "journal", "--- journal-status 1"]
    lines.append("--- pstore")
    for name, text in previous.pstore.items():
        lines += [f"=== file {name}", text]
    return "\n".join([*lines, "--- end"]) + "\n"

