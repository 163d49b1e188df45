"""`sparktui exporter`: the fleet's telemetry as Prometheus metrics.

    sparktui exporter [--listen 127.0.0.1:9835] [--interval S] [--no-containers]
                      [--demo] [--config FILE] [--accept-new-host-keys] [DEVICE ...]

Headless, on the same streams as the TUI (one SSH connection per device,
nothing started per tick on the device). Serves /metrics through
prometheus-client until SIGINT or SIGTERM. Example scrape config, alert
rules and a Grafana dashboard ship in sparktui/monitoring/.
"""

from __future__ import annotations

import argparse
import sys

from sparktui.commands.options import add_connection_options

DESCRIPTION = """\
Serve the telemetry of every DEVICE as Prometheus metrics on /metrics, headless,
over the same streams as the TUI: GPUs (labels device, gpu, uuid, name), unified
memory as a GB10 sees it, host CPU, load and temperature, containers by state,
the serving figures of the model endpoints found on each device, connection
state and the collector's own health. A missing value is absent,
never 0. With no DEVICE, the configured devices. Runs until Ctrl+C or SIGTERM.
The scrape config, alert rules and Grafana dashboard: `sparktui exporter --files`."""


def build_parser() -> argparse.ArgumentParser:
    from sparktui.services.exporter import DEFAULT_LISTEN

    p = argparse.ArgumentParser(prog="sparktui exporter", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("devices", nargs="*", metavar="DEVICE", help="devices to export")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="ADDRESS:PORT",
                   help=f"where /metrics is served (default {DEFAULT_LISTEN}; "
                        "0.0.0.0:9835 for every interface)")
    p.add_argument("--interval", type=float, default=None, metavar="S",
                   help="seconds between samples (default: the config's refresh_interval)")
    p.add_argument("--no-containers", action="store_true",
                   help="do not follow Docker on the devices (no container counts)")
    p.add_argument("--no-serving", action="store_true",
                   help="do not read the devices' model endpoints (no serving figures)")
    p.add_argument("--demo", action="store_true", help="also export a simulated Spark")
    p.add_argument("--files", action="store_true",
                   help="print where the example scrape config, rules and dashboard are")
    p.add_argument("--verbose", action="store_true", help="log connections on stderr")
    add_connection_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.files:
        from sparktui.monitoring import files

        for name, path in files().items():
            print(f"{name}: {path}")
        return 0
    from sparktui.commands.headless import log_to_stderr, resolve, say
    from sparktui.services.exporter import parse_listen

    try:
        address, port = parse_listen(args.listen)
    except ValueError as exc:
        say(str(exc))
        return 2
    if args.interval is not None and not 0.1 <= args.interval <= 3600:
        say("--interval must be between 0.1 and 3600 seconds")
        return 2
    log_to_stderr(args.verbose)
    config, specs = resolve(args, command="exporter")
    import asyncio

    try:
        return asyncio.run(_serve(args, config, specs, address, port))
    except KeyboardInterrupt:
        return 0


async def _serve(args: argparse.Namespace, config, specs, address: str, port: int) -> int:
    from sparktui.commands.headless import say, until_signalled
    from sparktui.services.exporter import FleetCollector, MetricsServer
    from sparktui.services.fleet import Fleet, with_interval

    fleet = Fleet(with_interval(config.settings, args.interval), specs,
                  containers=not args.no_containers, serving=not args.no_serving,
                  demo=args.demo,
                  accept_new_host_keys=args.accept_new_host_keys)
    try:
        server = MetricsServer(FleetCollector(fleet.devices), address, port)
    except OSError as exc:
        say(f"cannot listen on {address}:{port}: {exc.strerror or exc}")
        return 1

    async def body(stop) -> int:
        await fleet.open()
        say(f"serving {len(fleet.devices)} device(s) on {server.url}")
        await stop.wait()
        return 0

    try:
        return await until_signalled(body)
    finally:
        await fleet.close()
        await asyncio_to_thread(server.close)


async def asyncio_to_thread(function) -> None:
    import asyncio

    await asyncio.to_thread(function)
