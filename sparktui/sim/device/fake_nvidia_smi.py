"""A stand-in `nvidia-smi` for tests against a real sshd (`python -m` this module).

The scenario comes from the first line of the file named by SPARKTUI_FAKE_GPU_FILE
(so a test can switch it while sshd keeps running), else from SPARKTUI_FAKE_GPU,
else `gb10`:

  gb10                 one GB10 (the default)
  discrete8            eight H100s
  reject-field:NAME    a driver that does not know field NAME (exit 2, as real)
  events               loop mode prints XID/ECC event text between samples
  cut                  loop mode prints two ticks, then half a row, and exits 0
  driver-failure       the "couldn't communicate with the NVIDIA driver" failure, exit 9

A later line `pids PID PID ...` in that file adds those real processes of this
machine to `--query-compute-apps` (name from /proc/PID/exe, 512 MiB each), so a
test can check what the device side reads from /proc about a GPU process.

Values follow wall-clock time with a fixed seed, so separate calls look like one
machine and loops move. Kept free of asyncio/asyncssh imports: it starts per call.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from sparktui.sim.device import nvsmi
from sparktui.sim.device.gpu_model import SimDevice

SCENARIO_ENV = "SPARKTUI_FAKE_GPU"
SCENARIO_FILE_ENV = "SPARKTUI_FAKE_GPU_FILE"
DEFAULT_SCENARIO = "gb10"
SCENARIOS = ("gb10", "discrete8", "reject-field:NAME", "events", "cut", "driver-failure")
SEED = 20_251_015
EXIT_UNKNOWN_SCENARIO = 3


class _Stop(Exception):
    """SIGTERM/SIGINT/SIGHUP: leave the loop quietly."""


def scenario(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    path = env.get(SCENARIO_FILE_ENV)
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                first = fh.readline().strip()
        except OSError:
            first = ""
        if first:
            return first
    return env.get(SCENARIO_ENV, "").strip() or DEFAULT_SCENARIO


def real_pids(environ: dict[str, str] | None = None) -> list[int]:
    """The real processes the scenario file lists as compute apps (`pids 1 2 3`)."""
    env = os.environ if environ is None else environ
    path = env.get(SCENARIO_FILE_ENV)
    if not path:
        return []
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()[1:]
    except OSError:
        return []
    return [int(w) for line in lines if line.startswith("pids ")
            for w in line.split()[1:] if w.isdigit()]


def _real_app_rows(inv: nvsmi.Invocation, device: SimDevice, pids: list[int]) -> str:
    rows = []
    for pid in pids:
        try:
            name = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue  # gone (or not ours to read): nvidia-smi would not list it either
        cells = {"gpu_uuid": device.gpu(0).uuid, "pid": str(pid), "process_name": name,
                 "used_gpu_memory": "512 MiB" if inv.units else "512"}
        rows.append(", ".join(cells.get(f, nvsmi.NA) for f in inv.fields) + "\n")
    return "".join(rows)


def _events(tick_no: int, device: SimDevice) -> str:
    """Event text a real driver may interleave with loop samples (see the man page)."""
    bus = device.gpu(0).pci_bus_id
    if tick_no % 2:
        return (f"Xid (PCI:{bus}): 79, pid={4321 + tick_no}, name=python3, "
                "GPU has fallen off the bus.\n")
    return (f"Event: Single Bit ECC error on GPU {bus}\n"
            f"Xid (PCI:{bus}): 13, pid={4321 + tick_no}, Graphics Exception\n")


def run(argv: list[str], name: str, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    if name == "driver-failure":
        out.write(nvsmi.DRIVER_FAILURE)
        out.flush()
        return nvsmi.EXIT_DRIVER
    reject: tuple[str, ...] = ()
    if name.startswith("reject-field:"):
        reject = (name.partition(":")[2].strip(),)
    elif name not in ("gb10", "discrete8", "events", "cut"):
        err.write(f"fake nvidia-smi: unknown {SCENARIO_ENV} scenario {name!r}; "
                  f"known: {', '.join(SCENARIOS)}\n")
        return EXIT_UNKNOWN_SCENARIO
    gpus, kind = (8, "discrete") if name == "discrete8" else (1, "gb10")
    device = SimDevice(gpus=gpus, kind=kind, seed=SEED, clock=time.time, origin=0.0)
    try:
        inv = nvsmi.parse(argv, reject=reject)
    except nvsmi.NvsmiError as exc:
        out.write(exc.stdout)
        err.write(exc.stderr)
        out.flush()
        return exc.exit_status
    extra = real_pids() if inv.mode == "apps" else []
    try:
        start = time.monotonic()
        for n, text in enumerate(nvsmi.ticks(inv, device)):
            if extra:
                text += _real_app_rows(inv, device, extra)
            if name == "cut" and inv.looping and n == 2:
                out.write(text[: max(1, len(text) // 2)].rstrip("\n"))
                out.flush()
                return 0
            if name == "events" and inv.looping and n > 0:
                out.write(_events(n, device))
            out.write(text)
            out.flush()
            if inv.interval is not None:
                # Sleep to the next slot of a fixed schedule so ticks do not drift.
                delay = start + (n + 1) * inv.interval - time.monotonic()
                time.sleep(max(0.0, delay))
    except nvsmi.NvsmiError as exc:  # e.g. -i names a GPU this machine lacks
        out.write(exc.stdout)
        err.write(exc.stderr)
        return exc.exit_status
    return 0


def main(argv: list[str] | None = None) -> int:
    def stop(_signum, _frame):
        raise _Stop

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        return run(sys.argv[1:] if argv is None else argv, scenario())
    except (_Stop, BrokenPipeError):
        # The reader went away: the stdout buffer may still hold text, and
        # flushing it at exit would raise again and print a traceback.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
