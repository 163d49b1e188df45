"""The TUI on another telemetry source: `sparktui --replay FILE` or `--prometheus URL`.

- Replay: the recording's devices, played at --speed; nothing connects.
- Prometheus: every device Prometheus scrapes at start (DEVICE arguments pick
  among them); figures and history come from Prometheus, and a device's SSH
  connection opens only when it is selected (containers, tunnels, chat).
"""

from __future__ import annotations

import argparse
import asyncio
import sys


def _say(message: str) -> None:
    from sparktui.core.sanitize import strip_control

    print(f"sparktui: {strip_control(message)}", file=sys.stderr)


def _spec_for(name: str, config):
    from sparktui.core.device import DestinationError, DeviceSpec

    named = config.device(name)
    if named is not None:
        return named
    try:
        return DeviceSpec.parse(name)
    except DestinationError:
        return None


def run_with_source(args: argparse.Namespace, config) -> int:
    from sparktui.services.external_hubs import PrometheusHub, ReplayHub

    if args.replay:
        from sparktui.services.replay import ReplayPlayer

        if not 0 < args.speed <= 10_000:
            _say("--speed must be more than 0 (and at most 10000)")
            return 2
        player = ReplayPlayer(args.replay, config.settings, speed=args.speed)
        try:
            summary = player.scan()
        except OSError as exc:
            _say(str(exc))
            return 1
        for problem in summary.problems[:5]:
            _say(f"{args.replay}: {problem}")
        if not summary.devices:
            _say(f"{args.replay} holds no device's telemetry")
            return 1
        names = summary.devices
        hub = ReplayHub(player, config.settings)
        policy = "never"
    else:
        from sparktui.services.promsource import PrometheusError, PrometheusSource

        url = args.prometheus or config.settings.prometheus_url

        async def discover() -> list[str]:
            source = PrometheusSource(url, config.settings)
            try:
                return list(await source.latest())
            finally:
                await source.close()

        try:
            names = asyncio.run(discover())
        except PrometheusError as exc:
            _say(str(exc))
            return 1
        if args.devices:
            names = [n for n in names if n in args.devices]
        if not names:
            _say(f"Prometheus at {url} has no Spark series (sparktui_*, DCGM_FI_DEV_* or "
                 "node_memory_*)" + (" for the devices given" if args.devices else ""))
            return 1
        hub = PrometheusHub(PrometheusSource(url, config.settings), config.settings)
        policy = "on_select"
    specs = [spec for spec in (_spec_for(n, config) for n in names) if spec is not None]
    from sparktui.services.logs import log_to_file
    from sparktui.ui.app import run_tui as run_app

    log_to_file()
    return run_app(config, specs, accept_new_host_keys=args.accept_new_host_keys,
                   read_only=True if args.replay else (args.read_only
                                                       or config.settings.read_only),
                   compact=args.compact, telemetry=hub, link_policy=policy)
