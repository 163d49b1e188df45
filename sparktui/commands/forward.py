"""`sparktui forward`: `ssh -N -L` that reconnects, in the foreground.

    sparktui forward [--bind ADDR] [-R SPEC] [--config FILE] [--accept-new-host-keys]
                     DEVICE SPEC [SPEC ...]
    sparktui forward --demo SPEC [SPEC ...]

SPEC is `REMOTE` (the same local port, or the next free one), `LOCAL:REMOTE`,
`LOCAL:HOST:REMOTE` or a preset name (`dashboard`, `jupyter`, `ollama`, ...).
The URLs are printed once, then one line per change of state. The forwards
are the Tunnels tab's (sparktui.services.tunnels): the local ports stay bound
while the device is away and the tunnels come back when it does. Ctrl+C (or
SIGTERM) closes every listener and exits 0. Exit status 1 when no forward
could start, or when the device refused us for a reason only the user can fix
(authentication, host key); 2 for a bad command line.

Nothing heavy is imported until main runs, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time

from sparktui.commands.options import add_connection_options
from sparktui.commands.status import quiet_logging

EXIT_FAILED = 1
EXIT_USAGE = 2

DESCRIPTION = """\
Forward ports from this machine to a device, like `ssh -N -L`, but the
forwards survive a dropped connection: the local ports stay bound and the
tunnels come back when the device does. SPEC is REMOTE (same local port, or
the next free one), LOCAL:REMOTE, LOCAL:HOST:REMOTE or a preset name.
Ctrl+C ends it (exit 0).

presets:
{presets}"""


def build_parser() -> argparse.ArgumentParser:
    from sparktui.services.tunnel_specs import PRESETS

    p = argparse.ArgumentParser(
        prog="sparktui forward", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION.format(presets=textwrap.fill(
            ", ".join(f"{x.key} ({x.port})" for x in PRESETS), 76,
            initial_indent="  ", subsequent_indent="  ")))
    p.add_argument("args", nargs="*", metavar="DEVICE SPEC",
                   help="the device (not with --demo), then one or more SPECs")
    p.add_argument("-R", "--reverse", action="append", default=[], metavar="DEVICE_PORT:LOCAL",
                   help="also a reverse forward: the device listens on DEVICE_PORT (loopback) "
                        "and reaches LOCAL ([HOST:]PORT) on this machine; may repeat")
    p.add_argument("--bind", default="127.0.0.1", metavar="ADDR",
                   help="local address to listen on (default 127.0.0.1; anything wider lets "
                        "other machines in, and is warned about)")
    p.add_argument("--demo", action="store_true",
                   help="forward to a simulated Spark started for the purpose")
    add_connection_options(p)
    return p


def _print(line: str) -> None:
    from sparktui.core.sanitize import strip_control

    print(f"{time.strftime('%H:%M:%S')} {strip_control(line)}", flush=True)


def _say(message: str) -> None:
    from sparktui.core.sanitize import strip_control

    print(f"sparktui forward: {strip_control(message)}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    positional = list(args.args)
    device_arg = None if args.demo else (positional.pop(0) if positional else None)
    if not args.demo and device_arg is None:
        parser.print_usage(sys.stderr)
        _say("give a DEVICE and at least one SPEC (or --demo and a SPEC)")
        return EXIT_USAGE
    if not positional and not args.reverse:
        parser.print_usage(sys.stderr)
        _say("give at least one SPEC, e.g. `dashboard`, `8888` or `9000:8000`")
        return EXIT_USAGE
    restore = quiet_logging()
    try:
        return _main(args, device_arg, positional)
    finally:
        restore()


def _main(args: argparse.Namespace, device_arg: str | None, spec_args: list[str]) -> int:
    import asyncio

    from sparktui.core.device import DestinationError
    from sparktui.services.config import load_config, resolve_config_path
    from sparktui.services.devices import resolve_device
    from sparktui.services.tunnel_specs import (
        TunnelSpecError,
        parse_forward_spec,
        parse_reverse_spec,
    )

    config = load_config(resolve_config_path(args.config))
    for problem in config.problems:
        _say(problem)
    device_spec = None
    if device_arg is not None:
        try:
            device_spec = resolve_device(device_arg, config)
        except DestinationError as exc:
            _say(str(exc))
            return EXIT_USAGE
    from sparktui.services.demo import DEMO_DEVICE_NAME

    device_name = device_spec.name if device_spec is not None else DEMO_DEVICE_NAME
    try:
        specs = [parse_forward_spec(text, device_name, bind=args.bind) for text in spec_args]
        specs += [parse_reverse_spec(text, device_name) for text in args.reverse]
    except TunnelSpecError as exc:
        _say(str(exc))
        return EXIT_USAGE
    forwarder = _Forwarder(config.settings, device_spec, specs, demo=args.demo,
                           accept_new_host_keys=args.accept_new_host_keys)
    try:
        return asyncio.run(forwarder.run())
    except KeyboardInterrupt:  # a second Ctrl+C while closing: still a clean exit
        return 0


class _Forwarder:
    """One device link, its tunnels, and the lines printed about them."""

    def __init__(self, settings, device_spec, specs, *, demo: bool,
                 accept_new_host_keys: bool) -> None:
        self.settings = settings
        self.device_spec = device_spec
        self.specs = specs
        self.demo_requested = demo
        self.accept_new_host_keys = accept_new_host_keys
        self._printed: dict[int, tuple[object, str | None]] = {}
        self.fatal: str | None = None

    async def run(self) -> int:
        import asyncio
        import signal

        from sparktui.services.devices import Fleet, make_link
        from sparktui.services.tunnels import TunnelManager
        from sparktui.transport.ssh_types import SSHOptions

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        demo = None
        if self.demo_requested:
            from sparktui.services.demo import start_demo

            demo = await start_demo()
            link = make_link(demo.spec, self.settings, ssh_options=demo.ssh_options)
        else:
            options = SSHOptions(keepalive_interval=self.settings.keepalive_interval,
                                 keepalive_count_max=self.settings.keepalive_count_max,
                                 accept_new_host_keys=self.accept_new_host_keys)
            link = make_link(self.device_spec, self.settings, ssh_options=options)
        # the CLI holds to the same policy as the TUI: read-only refuses -R, all is audited
        manager = TunnelManager(Fleet([link]), read_only=self.settings.read_only)
        manager.subscribe(self._tunnel_changed)
        link.subscribe(lambda status: self._link_changed(link, status, stop))
        try:
            link.start()
            started = await self._add_all(manager)
            if started:
                await stop.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            await manager.close()
            await link.close()
            if demo is not None:
                await demo.close()
        _print("closed every forward")
        if self.fatal is not None:
            _say(self.fatal)
            return EXIT_FAILED
        return 0 if started else EXIT_FAILED

    async def _add_all(self, manager) -> int:
        from sparktui.services.audit import ReadOnlyError
        from sparktui.services.tunnel_specs import TunnelSpecError

        started = 0
        for spec in self.specs:
            try:
                result = await manager.add(spec, save=False)
            except (TunnelSpecError, ReadOnlyError) as exc:
                _say(f"{spec.name}: {exc}")
                continue
            for note in result.notes:
                _print(note)
            for warning in result.warnings:
                _say(f"warning: {warning}")
            tunnel = result.tunnel
            spec = tunnel.spec
            if spec.reverse:
                _print(f"{tunnel.name}: {spec.device} {tunnel.remote_address} -> "
                       f"{spec.bind}:{spec.local_port} here")
            else:
                _print(f"{tunnel.name}: {tunnel.url} -> {spec.device} {tunnel.remote_address}")
            started += 1
        return started

    def _tunnel_changed(self, tunnel) -> None:
        from sparktui.services.tunnels import TunnelState

        status = tunnel.status
        # a waiting tunnel's reason follows every reconnect attempt: the link line says that
        shown_reason = status.reason if status.state is TunnelState.FAILED else None
        key = (status.state, shown_reason)
        if self._printed.get(id(tunnel)) == key:
            return
        self._printed[id(tunnel)] = key
        text = "up" if status.state is TunnelState.UP else status.describe()
        if status.state is TunnelState.WAITING:
            text = "waiting for connection"
        _print(f"{tunnel.name}: {text}")

    def _link_changed(self, link, status, stop) -> None:
        from sparktui.core.device import LinkState

        if status.state is LinkState.CLOSED:
            return
        _print(f"{link.name}: {status.describe()}")
        if status.state is LinkState.FAILED:
            # auth or host key: retrying cannot help, and nobody is here to press retry
            self.fatal = f"{link.name}: {status.describe()}"
            stop.set()
