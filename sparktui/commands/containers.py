"""`sparktui containers` and `sparktui logs`: the Containers tab's service on the command line.

    sparktui containers [--json] [--all] [--timeout S] DEVICE
    sparktui logs [--follow] [--tail N] [--timestamps] [--timeout S] DEVICE CONTAINER

The same ContainerService as the TUI reaches the device's Docker socket over
the device's connection. Device text is sanitized as in the TUI: every escape
sequence is removed, except that `logs` keeps SGR colours when stdout is a
terminal. Exit status 1 when Docker could not be used (the reason, with its
fix, goes to stderr) or the container does not exist; 2 for usage errors.
Only argparse loads at import, so --help answers at once.
"""

from __future__ import annotations

import argparse
import sys

from sparktui.commands.options import add_connection_options
from sparktui.core.aio import within

EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_TIMEOUT_S = 20.0


def _common(parser: argparse.ArgumentParser) -> None:
    add_connection_options(parser)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help=f"give up reaching Docker after S seconds "
                             f"(default {DEFAULT_TIMEOUT_S:g})")


def containers_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparktui containers",
        description="List the containers on DEVICE (running ones; --all: stopped ones too).")
    parser.add_argument("device", metavar="DEVICE",
                        help="`local`, [user@]host[:port], an ssh Host alias or a device name")
    parser.add_argument("--all", "-a", action="store_true", help="include stopped containers")
    parser.add_argument("--json", action="store_true", help="print a JSON array")
    _common(parser)
    return parser


def logs_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparktui logs",
        description="Print a container's logs (sanitized: colour kept only on a terminal).")
    parser.add_argument("device", metavar="DEVICE",
                        help="`local`, [user@]host[:port], an ssh Host alias or a device name")
    parser.add_argument("container", metavar="CONTAINER", help="name, id or id prefix")
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    parser.add_argument("--tail", "-n", type=int, default=None, metavar="N",
                        help="only the last N lines (default: all)")
    parser.add_argument("--timestamps", "-t", action="store_true",
                        help="prefix each line with Docker's timestamp")
    _common(parser)
    return parser


def _say(message: str) -> None:
    from sparktui.core.sanitize import strip_control

    print(f"sparktui: {strip_control(message, keep_newlines=True)}", file=sys.stderr)


class Failed(Exception):
    """Stops the command with a message for stderr."""


async def _open(args: argparse.Namespace):
    """A started link and a ready ContainerService for args.device, or Failed."""
    import asyncio
    import time

    from sparktui.core.device import DestinationError, LinkState
    from sparktui.services.config import load_config, resolve_config_path
    from sparktui.services.containers import ContainerService, ServiceState
    from sparktui.services.devices import make_link, resolve_device
    from sparktui.transport.ssh_types import SSHOptions

    config = load_config(resolve_config_path(args.config))
    for problem in config.problems:
        _say(problem)
    try:
        spec = resolve_device(args.device, config)
    except DestinationError as exc:
        raise Failed(str(exc)) from exc
    settings = config.settings
    options = SSHOptions(keepalive_interval=settings.keepalive_interval,
                         keepalive_count_max=settings.keepalive_count_max,
                         accept_new_host_keys=args.accept_new_host_keys)
    link = make_link(spec, settings, ssh_options=options)
    # listing and reading logs change nothing: the CLI's service is read-only
    service = ContainerService(link, socket_path=settings.docker_socket, read_only=True)
    link.start()
    service.start()
    deadline = time.monotonic() + args.timeout
    try:
        while service.state is not ServiceState.READY:
            if service.state is ServiceState.PROBLEM and service.problem is not None:
                raise Failed(service.problem.message)
            if link.status.state is LinkState.FAILED:
                raise Failed(f"{spec.name}: {link.status.describe()}")
            if time.monotonic() > deadline:
                raise Failed(f"{spec.name}: Docker did not answer within {args.timeout:g} s "
                             f"(connection: {link.status.describe()})")
            await asyncio.sleep(0.05)
    except BaseException:
        await _close(link, service)
        raise
    return link, service


async def _close(link, service) -> None:
    await service.close()
    await link.close()


# -- containers ------------------------------------------------------------------------------

def _as_json(device: str, info) -> dict:
    return {"device": device, "id": info.id, "name": info.name, "image": info.image,
            "state": info.state, "health": info.health or None, "exit_code": info.exit_code,
            "started_at": info.started_at, "finished_at": info.finished_at,
            "ports": list(info.ports), "gpu": info.gpu or None, "command": info.command,
            "labels": dict(info.labels)}


def _table(rows: list) -> str:
    import time

    from sparktui.core.sanitize import strip_control

    now = time.time()
    header = ("NAME", "IMAGE", "STATE", "UP", "PORTS", "GPU", "ID")
    lines = [header]
    for info in rows:
        lines.append(tuple(strip_control(cell, max_line=60) for cell in (
            info.name, info.image, info.state_text(), info.uptime_text(now),
            ", ".join(info.ports) or "-", info.gpu or "-", info.short_id)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip()
                     for line in lines) + "\n"


async def _containers(args: argparse.Namespace) -> int:
    import json

    link, service = await _open(args)
    try:
        rows = sorted((info for info in service.containers.values()
                       if args.all or info.running), key=lambda info: info.name.lower())
    finally:
        await _close(link, service)
    if args.json:
        sys.stdout.write(json.dumps([_as_json(service.device, info) for info in rows],
                                    indent=2) + "\n")
    else:
        sys.stdout.write(_table(rows))
    return 0


def containers_main(argv: list[str] | None = None) -> int:
    args = containers_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return _run(_containers, args)


# -- logs ----------------------------------------------------------------------------------------

def find_container(service, wanted: str):
    """By exact name, exact id, or a unique id prefix."""
    rows = list(service.containers.values())
    for info in rows:
        if wanted in (info.name, info.id):
            return info
    prefixed = [info for info in rows if len(wanted) >= 3 and info.id.startswith(wanted)]
    if len(prefixed) == 1:
        return prefixed[0]
    if prefixed:
        raise Failed(f"{wanted!r} matches {len(prefixed)} containers on {service.device}; "
                     "give more of the id")
    raise Failed(f"no container {wanted!r} on {service.device}")


class _Printer:
    """Writes log lines: SGR colour kept on a terminal, nothing but text otherwise."""

    def __init__(self, timestamps: bool) -> None:
        self.timestamps = timestamps
        self.tty = sys.stdout.isatty()
        self.console = None
        if self.tty:
            from rich.console import Console

            self.console = Console(highlight=False, soft_wrap=True)

    def write(self, lines: list) -> None:
        from sparktui.core.sanitize import ansi_to_text, strip_control

        for line in lines:
            prefix = f"{line.timestamp} " if self.timestamps and line.timestamp else ""
            if self.console is not None:
                # a Text: printed with its colours, never parsed as markup
                text = ansi_to_text(line.text, keep_newlines=False)
                self.console.print(prefix, text, sep="", markup=False, highlight=False)
            else:
                sys.stdout.write(prefix + strip_control(line.text) + "\n")
        if self.console is None:
            sys.stdout.flush()


async def _logs(args: argparse.Namespace) -> int:
    import asyncio

    from sparktui.services.container_logs import LogFollower

    link, service = await _open(args)
    printer = _Printer(args.timestamps)
    try:
        info = find_container(service, args.container)
        done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

        def finished(error: str | None) -> None:
            if not done.done():
                done.set_result(error)

        follower = LogFollower(service, info.id, on_lines=printer.write, on_end=finished,
                               tail=args.tail, follow=args.follow)
        follower.start()
        try:
            error = await done
            if error is None and args.follow:
                # a followed log ends when the container stops, or when the connection
                # under the Docker socket forward drops: the second is a failure
                error = await _dropped(link)
        finally:
            follower.close()
    finally:
        await _close(link, service)
    if error:
        raise Failed(f"logs of {info.name}: {error}")
    return 0


async def _dropped(link) -> str | None:
    """Why the device connection is gone (given a moment to notice), or None."""
    import contextlib

    transport = link.transport
    if transport is not None and transport.is_alive():
        with contextlib.suppress(TimeoutError):
            await within(transport.wait_closed(), 2.0)
    if transport is not None and transport.is_alive():
        return None
    reason = getattr(transport, "close_reason", None) or link.status.describe()
    return f"the connection to {link.name} dropped ({reason}); the log may be incomplete"


def logs_main(argv: list[str] | None = None) -> int:
    args = logs_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.tail is not None and args.tail < 0:
        _say("--tail must be 0 or more")
        return EXIT_USAGE
    return _run(_logs, args)


def _run(command, args: argparse.Namespace) -> int:
    import asyncio

    from sparktui.commands.status import quiet_logging

    restore = quiet_logging()
    try:
        return asyncio.run(command(args))
    except Failed as exc:
        _say(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 0 if getattr(args, "follow", False) else 130
    finally:
        restore()
