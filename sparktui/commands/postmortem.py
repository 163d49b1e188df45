"""`sparktui postmortem DEVICE [--json]`: why a device dropped, with the evidence.

Connects, reads what the previous boot left (one command: the kernel log tail
of `journalctl -k -b -1`, /sys/fs/pstore, the boot id and uptime) and compares
the boot id with the one sparktui saw last. A new boot id gets a post-mortem:
the cause (power loss or hard reset, kernel panic, GPU driver wedge, OOM kill,
clean reboot), the lines that say so and the flight recorder's minutes before
the drop. The same boot id means only the network went. When the device cannot
be reached, the last saved post-mortem is printed. Exit status 1 when there is
nothing to say (no connection and none saved).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from sparktui.commands.options import add_connection_options
from sparktui.core.aio import within
from sparktui.core.units import NO_VALUE

DESCRIPTION = """\
Say why DEVICE dropped: read the previous boot's kernel log tail, pstore, boot id
and uptime, classify the cause (power loss or hard reset, kernel panic, GPU driver
wedge, OOM kill, network only) and show the evidence lines and the recorded minutes
before the drop. Without a connection, the last saved post-mortem is shown."""

SPARK = "▁▂▃▄▅▆▇█"
LABELS = {"free_for_cuda_gib": ("free for CUDA (MemFree)", "GiB"),
          "available_gib": ("available after reclaim", "GiB"),
          "psi_some_pct": ("memory pressure, some 10 s", "%"),
          "gpu_util_pct": ("GPU utilisation", "%"),
          "gpu_power_w": ("GPU power", "W"),
          "gpu_temp_c": ("GPU temperature", "°C"),
          "sm_clock_mhz": ("SM clock", "MHz")}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sparktui postmortem", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("device", metavar="DEVICE", help="the device to examine")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--saved", action="store_true",
                   help="print the last saved post-mortem without connecting")
    p.add_argument("--timeout", type=float, default=20.0, metavar="S",
                   help="wait at most S seconds for the device (default 20)")
    add_connection_options(p)
    return p


def sparkline(values: list, width: int = 48) -> str:
    points = [v for v in values if v is not None]
    if not points:
        return NO_VALUE
    step = max(1, len(values) // width)
    sampled = values[::step][-width:]
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    return "".join(" " if v is None else SPARK[min(7, int((v - low) / span * 7.999))]
                   for v in sampled)


def render(report, note: str | None = None) -> str:
    from sparktui.core.sanitize import strip_control

    def stamp(wall: float | None) -> str:
        return NO_VALUE if wall is None else time.strftime("%Y-%m-%d %H:%M:%S",
                                                      time.localtime(wall))

    verdict = report.verdict
    lines = [f"{strip_control(report.device)}: {verdict.cause.value}",
             f"  {strip_control(verdict.summary)}",
             f"  last seen {stamp(report.last_seen_wall)}; "
             f"post-mortem {stamp(report.detected_wall)}"
             f"; boot id {report.previous_boot or NO_VALUE} -> {report.boot_id or NO_VALUE}"]
    if note:
        lines.append(f"  ({note})")
    if verdict.evidence:
        lines.append("evidence:")
        lines += [f"  {strip_control(line, max_line=160)}" for line in verdict.evidence]
    elif report.journal_problem:
        lines.append(f"evidence: {strip_control(report.journal_problem)}")
    series = report.series or {}
    times = series.get("t") or []
    if times:
        minutes = (times[-1] - times[0]) / 60
        lines.append(f"the {minutes:.1f} minutes before the drop:")
        for key, (label, unit) in LABELS.items():
            values = series.get(key) or []
            known = [v for v in values if v is not None]
            if not known:
                continue
            lines.append(f"  {label:<27} {sparkline(values)} {known[0]:.1f} -> {known[-1]:.1f} "
                         f"{unit}")
    else:
        lines.append("no recorded minutes before the drop (the flight recorder had none)")
    if report.events:
        lines.append("recorded events:")
        lines += [f"  {strip_control(e, max_line=160)}" for e in report.events[-10:]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from sparktui.commands.status import quiet_logging

    restore = quiet_logging()
    try:
        return asyncio.run(_main(args))
    except KeyboardInterrupt:
        return 130
    finally:
        restore()


async def _main(args: argparse.Namespace) -> int:
    from sparktui.core.device import DestinationError
    from sparktui.services.config import load_config, resolve_config_path
    from sparktui.services.devices import resolve_device
    from sparktui.services.postmortem import latest_postmortem

    config = load_config(resolve_config_path(args.config))
    try:
        spec = resolve_device(args.device, config)
    except DestinationError as exc:
        print(f"sparktui: {exc}", file=sys.stderr)
        return 2
    if args.saved:
        return _emit(args, latest_postmortem(spec.name), None)
    try:
        report, note = await _examine(spec, config.settings, args.timeout,
                                      args.accept_new_host_keys)
    except Exception as exc:  # unreachable: the last saved one is still worth seeing
        saved = latest_postmortem(spec.name)
        return _emit(args, saved, f"{spec.name} is unreachable now: {exc}")
    return _emit(args, report, note)


def _emit(args: argparse.Namespace, report, note: str | None) -> int:
    if report is None:
        why = f"{note}; " if note else ""
        print(f"sparktui: {why}no post-mortem saved for {args.device}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({**report.as_json(), "note": note}, indent=2))
    else:
        sys.stdout.write(render(report, note))
    return 0


async def _examine(spec, settings, timeout: float, accept_new: bool):
    from sparktui.core.postmortem import EVIDENCE_COMMAND, classify, parse_evidence
    from sparktui.services.devices import make_link
    from sparktui.services.postmortem import (
        LastBoot,
        PostMortem,
        analyse,
        latest_postmortem,
        load_last_boot,
        save_last_boot,
    )
    from sparktui.transport.ssh_types import SSHOptions

    options = SSHOptions(connect_timeout=timeout, accept_new_host_keys=accept_new)
    link = make_link(spec, settings, ssh_options=options)
    link.start()
    try:
        await within(link.wait_connected(), timeout)
        result = await link.run(EVIDENCE_COMMAND, timeout=timeout * 3)
    finally:
        await link.close()
    evidence = parse_evidence(result.stdout)
    previous = load_last_boot(spec.name)
    if previous is not None and previous.boot_id == evidence.boot_id:
        saved = latest_postmortem(spec.name)
        if saved is not None and saved.boot_id == evidence.boot_id:
            return saved, "no reboot since this post-mortem: the same boot id is up"
        verdict = classify(previous.boot_id, evidence, previous.uptime_s)
        return PostMortem(spec.name, verdict, time.time(), previous.wall, previous.boot_id,
                          evidence.boot_id, previous.uptime_s), None
    note = None if previous is not None else (
        f"sparktui had not seen {spec.name} before: what its previous boot left is shown")
    report = await analyse(link, previous, minutes=settings.flight_recorder_minutes,
                           evidence=evidence)
    if evidence.boot_id is not None:
        save_last_boot(spec.name, LastBoot(evidence.boot_id, evidence.uptime_s, time.time()))
    return report, note
