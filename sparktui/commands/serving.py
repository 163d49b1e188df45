"""`sparktui serving`: what every inference engine on a device is doing, for scripts.

    sparktui serving [--json] [--port P] [--interval S] DEVICE

The endpoints are found as the Chat and Serving tabs find them (the usual
ports and the containers' published ones, through the device's SSH
connection), then read twice, S seconds apart, so the rates and the latency
window have two readings. The figures are the Serving tab's, from the same
services. A figure an engine does not expose prints as "—" (JSON: null, and
its name in "missing"). Exit status 1 when the device cannot be reached or no
endpoint answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from sparktui.commands.options import add_connection_options

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sparktui serving",
        description="Show what every inference engine on DEVICE is doing: queue, KV cache, "
                    "tokens/s and latency percentiles from its own metrics.")
    p.add_argument("device", nargs="?", metavar="DEVICE",
                   help="`local`, [user@]host[:port], an ssh Host alias or a device name")
    p.add_argument("--demo", action="store_true", help="use the simulated Spark")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--port", type=int, action="append", default=[], metavar="P",
                   help="also probe this port on the device (repeatable)")
    p.add_argument("--interval", type=float, default=2.0, metavar="S",
                   help="seconds between the two readings (default 2)")
    add_connection_options(p)
    return p


async def collect(link, *, ports: tuple[int, ...], interval: float) -> dict[str, Any]:
    """Find the endpoints on one connected device and read them twice."""
    from sparktui.services.endpoints import DEFAULT_PORTS, EndpointConnector
    from sparktui.services.serving import ServingMonitor

    connector = EndpointConnector(lambda name: link if name == link.name else None)
    try:
        found = await connector.discover_device(
            link, ports=tuple(dict.fromkeys((*ports, *DEFAULT_PORTS))))
        monitor = ServingMonitor(connector)
        monitor.set_endpoints(found.endpoints)
        await monitor.scrape_all()
        await asyncio.sleep(max(0.0, interval))
        results = await monitor.scrape_all()
    finally:
        await connector.close()
    return {"device": link.name, "notes": found.notes,
            "endpoints": [r.as_dict() for r in results]}


def render(report: dict[str, Any]) -> str:
    from sparktui.core.sanitize import strip_control
    from sparktui.core.serving import ServingFigures
    from sparktui.core.serving_text import engine_name

    lines: list[str] = []
    if not report["endpoints"]:
        lines.append(f"{report['device']}: no model endpoint answered")
    for item in report["endpoints"]:
        figures = item["figures"]
        engine = engine_name(figures["engine"]) if figures else "?"
        models = ", ".join(item["models"]) or "no model listed"
        where = f"{item['endpoint']} on {item['device']}"
        container = f"  [{item['container']}]" if item["container"] else ""
        lines.append(strip_control(f"{where}  {engine}  {models}{container}", max_line=200))
        if item["error"]:
            lines.append(f"  error        {strip_control(item['error'], max_line=200)}")
        if figures:
            lines.extend(_figure_rows(_rebuild(figures, ServingFigures)))
    for note in report["notes"]:
        lines.append(f"note: {strip_control(note, max_line=200)}")
    return "\n".join(lines)


def _figure_rows(figures) -> list[str]:
    from sparktui.core.sanitize import strip_control
    from sparktui.core.serving_text import figure_lines, missing_line

    rows = [f"  {label:<12} {strip_control(value, max_line=200)}"
            for label, value in figure_lines(figures)]
    gone = missing_line(figures)
    if gone:
        rows.append(f"  {gone}")
    rows.extend(f"  note: {strip_control(note, max_line=200)}" for note in figures.notes)
    return rows


def _rebuild(data: dict[str, Any], cls):
    """ServingFigures back from its as_dict() (the report is kept as plain data)."""
    from sparktui.core.serving import Latency, LoadedModel, SlotUse

    values = {k: v for k, v in data.items() if k != "missing"}
    for key in ("ttft", "itl", "e2e"):
        if values.get(key) is not None:
            values[key] = Latency(**values[key])
    if values.get("slots") is not None:
        values["slots"] = SlotUse(**values["slots"])
    values["loaded"] = tuple(LoadedModel(**m) for m in values.get("loaded") or ())
    for key in ("models", "notes"):
        values[key] = tuple(values.get(key) or ())
    return cls(**values)


async def _run(args: argparse.Namespace) -> int:
    from sparktui.commands.target import TargetError, device_session, say

    if not args.device and not args.demo:
        say("give DEVICE (or --demo)")
        return EXIT_FAILED
    try:
        async with device_session(args) as device:
            report = await collect(device.link, ports=tuple(args.port), interval=args.interval)
    except TargetError as exc:
        say(str(exc))
        return EXIT_FAILED
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0 if report["endpoints"] else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from sparktui.commands.status import quiet_logging

    restore = quiet_logging()
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        restore()
