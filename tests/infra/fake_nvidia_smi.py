"""The stand-in `nvidia-smi` on the tests' sshd: `python -m tests.infra.fake_nvidia_smi`.

It prints what the demo's stand-in prints (sparktui.sim.device.nvsmi over readings of
a fresh `SimDevice` with a fixed seed on the wall clock, so separate calls look like one
machine) and plays a scenario the test picked: a driver that fails, one that does
not know a field, a loop that is cut or interleaves event text, eight discrete GPUs.
A test fixture, not the simulator: the demo never plays these.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from sparktui.sim.device import nvsmi
from sparktui.sim.device.gpu_model import SimDevice

SCENARIO_ENV, SCENARIO_FILE_ENV = "SPARKTUI_FAKE_GPU", "SPARKTUI_FAKE_GPU_FILE"
#: gb10 (the default); discrete8: eight H100s; reject-field:NAME: a driver that does not
#: know NAME; events: loops print XID/ECC event text between samples; cut: a loop prints
#: two ticks, then half a row, and exits 0; driver-failure: no driver, exit 9
SCENARIOS = ("gb10", "discrete8", "reject-field:NAME", "events", "cut", "driver-failure")
SEED = 20_251_015
EXIT_DRIVER = 9
DRIVER_FAILURE = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
                  "driver. Make sure that the latest NVIDIA driver is installed and running.\n")


class DiscreteDevice(SimDevice):
    """H100s: framebuffer memory of their own, a power limit, PCIe gen 5 when busy."""

    def gpu(self, index: int, now: float | None = None) -> dict[str, Any]:
        reading = super().gpu(index, now)
        util, mem = self._gpu_load(index, self._t(now))
        used = min(80_959, 1 + int(mem) + (500 if mem else 0))
        return reading | {
            "name": "NVIDIA H100 80GB HBM3",
            "pci.bus_id": f"00000000:{0x18 + 0x10 * index:02X}:00.0", "compute_cap": "9.0",
            "pcie.link.gen.current": 5 if util > 0.02 else 1,
            "utilization.memory": round(60 * util), "memory.total": 81_559,
            "memory.used": used, "memory.free": 81_559 - used - 527,
            "power.draw": f"{70.0 + 610.0 * util:.2f}", "power.limit": "700.00",
            "power.default_limit": "700.00", "enforced.power.limit": "700.00",
            "clocks.max.sm": 1980, "clocks.current.memory": 2619, "clocks.max.memory": 2619}


def _scenario() -> tuple[str, list[int]]:
    """The scenario: the first line of the file SPARKTUI_FAKE_GPU_FILE names (a test switches
    it while sshd runs), else SPARKTUI_FAKE_GPU, else gb10. A later line `pids PID ...` lists
    real processes of this machine as compute apps."""
    try:
        with open(os.environ.get(SCENARIO_FILE_ENV) or os.devnull, encoding="utf-8") as fh:
            lines = fh.read().splitlines() or [""]
    except OSError:
        lines = [""]
    name = lines[0].strip() or os.environ.get(SCENARIO_ENV, "").strip() or "gb10"
    return name, [int(w) for line in lines[1:] if line.startswith("pids ")
                  for w in line.split()[1:] if w.isdigit()]


def _real_apps(inv: nvsmi.Invocation, uuid: str, pids: list[int]) -> str:
    """Rows for real processes (name from /proc/PID/exe, 512 MiB each), for tests of what the
    device side reads from /proc about a GPU process."""
    rows = []
    for pid in pids:
        try:
            cells = {"gpu_uuid": uuid, "pid": pid, "process_name": os.readlink(f"/proc/{pid}/exe"),
                     "used_gpu_memory": "512 MiB" if inv.units else "512"}
        except OSError:
            continue  # gone (or not ours to read): nvidia-smi would not list it either
        rows.append(", ".join(str(cells.get(f, nvsmi.NA)) for f in inv.fields) + "\n")
    return "".join(rows)


def _reject(argv: list[str], field: str) -> None:
    """Fail as a driver that does not know `field` fails when a query names it."""
    for arg in argv:
        key, _, names = arg.partition("=")
        if key == "--query-gpu" and field in (n.strip() for n in names.split(",")):
            raise nvsmi.field_error(field, "gpu")


def run(argv: list[str]) -> int:
    name, pids = _scenario()
    if name == "driver-failure":
        sys.stdout.write(DRIVER_FAILURE)
        return EXIT_DRIVER
    if name not in SCENARIOS[:2] + SCENARIOS[3:5] and not name.startswith("reject-field:"):
        sys.stderr.write(f"stand-in nvidia-smi: unknown {SCENARIO_ENV} scenario {name!r}; "
                         f"known: {', '.join(SCENARIOS)}\n")
        return 3
    kind = DiscreteDevice if name == "discrete8" else SimDevice
    device = kind(gpus=8 if name == "discrete8" else 1, seed=SEED, clock=time.time, origin=0.0)
    reading = device.nvidia_smi_reading()
    try:
        if name.startswith("reject-field:"):
            _reject(argv, name.partition(":")[2])
        inv = nvsmi.parse(argv, reading)
    except nvsmi.NvsmiError as exc:
        sys.stdout.write(exc.stdout)
        sys.stderr.write(exc.stderr)
        return exc.exit_status
    start, n = time.monotonic(), 0
    while True:
        text = nvsmi.tick(inv, reading, first=n == 0)
        if inv.mode == "apps":
            text += _real_apps(inv, reading["gpus"][0]["uuid"], pids)
        if name == "cut" and n == 2:
            sys.stdout.write(text[: max(1, len(text) // 2)].rstrip("\n"))
            return 0
        if name == "events" and n:  # as the man page warns, between samples
            bus = reading["gpus"][0]["pci.bus_id"]
            sys.stdout.write(f"Xid (PCI:{bus}): 79, pid={4321 + n}, name=python3, GPU has "
                             "fallen off the bus.\n" if n % 2 else f"Event: Single Bit ECC "
                             f"error on GPU {bus}\nXid (PCI:{bus}): 13, pid={4321 + n}, "
                             "Graphics Exception\n")
        sys.stdout.write(text)
        sys.stdout.flush()
        if inv.interval is None:
            return 0
        n += 1  # the next slot of a fixed schedule, so ticks do not drift
        time.sleep(max(0.0, start + n * inv.interval - time.monotonic()))
        reading = device.nvidia_smi_reading()


def main() -> int:
    def stop(_signum: int, _frame: object) -> None:
        raise BrokenPipeError

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        return run(sys.argv[1:])
    except BrokenPipeError:  # the reader went (or stopped us): leave quietly, as the tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
