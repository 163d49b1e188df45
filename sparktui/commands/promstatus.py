"""`sparktui status --prometheus URL`: the same report, read from Prometheus.

No SSH: every device Prometheus scrapes (sparktui's exporter, DCGM,
node_exporter) is reported; DEVICE arguments pick among them by name. A
device Prometheus reports down counts as failed (exit status 1).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable

EXIT_FAILED = 1


def prometheus_status(args: argparse.Namespace, config, emit: Callable, say: Callable) -> int:
    from sparktui.services.promsource import PrometheusError, PrometheusSource

    try:
        source = PrometheusSource(args.prometheus, config.settings, timeout=args.timeout)
    except PrometheusError as exc:
        say(str(exc))
        return 2

    async def one_frame() -> list:
        return _reports(args, await source.latest())

    async def run() -> int:
        try:
            if not args.watch:
                reports = await one_frame()
                emit(args, reports, live=False)
                return _verdict(args, reports, say)
            while True:
                reports = await one_frame()
                await asyncio.to_thread(emit, args, reports, live=True)
                await asyncio.sleep(args.watch)
        finally:
            await source.close()

    try:
        return asyncio.run(run())
    except PrometheusError as exc:
        say(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 0 if args.watch else 130


def _reports(args: argparse.Namespace, devices: dict) -> list:
    from sparktui.commands.report import DeviceReport
    from sparktui.core.device import LinkState, LinkStatus

    wanted = list(args.devices)
    reports = []
    for name, device in devices.items():
        if wanted and name not in wanted:
            continue
        status = device.status
        problem = None if status.state is LinkState.CONNECTED else status.describe()
        reports.append(DeviceReport(name, status, device.telemetry, problem))
    for name in wanted:
        if name not in devices:
            status = LinkStatus(LinkState.FAILED, reason="Prometheus has no series for it")
            reports.append(DeviceReport(name, status, None, status.describe()))
    return reports


def _verdict(args: argparse.Namespace, reports: list, say: Callable) -> int:
    if not reports:
        say(f"Prometheus at {args.prometheus} has no Spark series "
            "(sparktui_*, DCGM_FI_DEV_* or node_memory_*)")
        return EXIT_FAILED
    failed = [r for r in reports if not r.ok]
    for report in failed:
        say(f"{report.name}: {report.problem}")
    return EXIT_FAILED if failed else 0
