"""`sparktui status`: one snapshot of every GPU of every device, gpustat-style.

    sparktui status [--json] [--watch SECONDS] [--demo] [--config FILE]
                    [--accept-new-host-keys] [--timeout S] [DEVICE ...]

The same services as the TUI do the work: a DeviceLink per device
(make_link) and a TelemetryService on it. A snapshot is printed once every
device has sent one complete GPU tick and one host sample with a CPU figure
(two blocks), or has failed, or the timeout has passed. Exit status 1 when a
device could not be reached or sent nothing in time (the reason goes to
stderr); what the others sent is printed all the same. With --watch the
picture is redrawn every SECONDS until Ctrl+C, which exits 0.

Host keys: the CLI never prompts. An unknown key fails the device with a
reason that names --accept-new-host-keys; a changed key is always refused.

Only argparse and the standard library load at import: asyncssh and the
services are imported inside main, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable

from sparktui.commands.options import add_connection_options

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DESCRIPTION = """\
Print one snapshot of every GPU of every device (or keep redrawing it with
--watch). DEVICE is `local`, an SSH destination [user@]host[:port], a Host
alias from ~/.ssh/config, or a device name from the config; with none, the
configured devices. Missing readings print as a dash (null in JSON), never 0.
Exit status 1 when a device could not be reached or sent nothing in time."""


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0 seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sparktui status", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("devices", nargs="*", metavar="DEVICE", help="devices to report on")
    p.add_argument("--json", action="store_true",
                   help="print a JSON array, one object per device (with --watch: one "
                        "array per line per period)")
    p.add_argument("--watch", type=_positive, metavar="SECONDS",
                   help="redraw every SECONDS until Ctrl+C")
    p.add_argument("--demo", action="store_true",
                   help="also start a simulated Spark and report on it")
    p.add_argument("--prometheus", metavar="URL",
                   help="read every Spark from this Prometheus server instead of over SSH "
                        "(DEVICE then picks among them)")
    add_connection_options(p)
    p.add_argument("--timeout", type=_positive, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"wait at most S seconds for the figures (default {DEFAULT_TIMEOUT_S:g})")
    return p


# ---------------------------------------------------------------------- logging

class _OneLineFormatter(logging.Formatter):
    """`sparktui: message (ExcType: text)`: no traceback sprayed on the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        from sparktui.core.sanitize import strip_control

        text = record.getMessage()
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            text += f" ({type(exc).__name__}: {exc})"
        return "sparktui: " + strip_control(text)


def quiet_logging() -> Callable[[], None]:
    """Errors only, one line each, on stderr; returns a function that undoes it."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.ERROR)
    handler.setFormatter(_OneLineFormatter())
    saved = (list(root.handlers), root.level)
    for existing in saved[0]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.ERROR)

    def restore() -> None:
        root.removeHandler(handler)
        for existing in saved[0]:
            root.addHandler(existing)
        root.setLevel(saved[1])

    return restore


def _say(message: str) -> None:
    from sparktui.core.sanitize import strip_control

    print(f"sparktui: {strip_control(message)}", file=sys.stderr)


# -------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    restore = quiet_logging()
    try:
        return _main(args)
    finally:
        restore()


def _main(args: argparse.Namespace) -> int:
    from sparktui.core.device import DestinationError
    from sparktui.services.config import load_config, resolve_config_path
    from sparktui.services.devices import resolve_device

    config = load_config(resolve_config_path(args.config))
    for problem in config.problems:
        _say(problem)
    if args.prometheus:
        from sparktui.commands.promstatus import prometheus_status

        return prometheus_status(args, config, _emit, _say)
    specs = []
    for arg in args.devices:
        try:
            specs.append(resolve_device(arg, config))
        except DestinationError as exc:
            _say(str(exc))
            return EXIT_USAGE
    if not args.devices:
        specs = list(config.devices)
    if not specs and not args.demo:
        _say("no devices given and none configured\n"
             "  try:  sparktui status --demo            (a simulated Spark)\n"
             "        sparktui status spark-abcd.local  (any ssh destination or Host alias)")
        return EXIT_USAGE
    # a terminal whose encoding lacks the degree sign or the dash gets a replacement, not a crash
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="replace")  # type: ignore[union-attr]

    import asyncio

    from sparktui.commands.collect import Session

    session = Session(config.settings, specs, demo=args.demo, timeout=args.timeout,
                      accept_new_host_keys=args.accept_new_host_keys,
                      watch=args.watch)
    try:
        if args.watch:
            return asyncio.run(session.watch(lambda reports: _emit(args, reports, live=True)))
        reports = asyncio.run(session.snapshot())
    except KeyboardInterrupt:
        return 0 if args.watch else EXIT_INTERRUPTED
    _emit(args, reports, live=False)
    failed = [r for r in reports if not r.ok]
    for report in failed:
        _say(f"{report.name}: {report.problem}")
    return EXIT_FAILED if failed else 0


def _emit(args: argparse.Namespace, reports: list, *, live: bool) -> None:
    """Write one frame to stdout (called in a worker thread while watching)."""
    import json

    from sparktui.commands.report import device_json, render

    if args.json:
        data = [device_json(r) for r in reports]
        if live:
            text = json.dumps(data, separators=(",", ":")) + "\n"
        else:
            text = json.dumps(data, indent=2) + "\n"
    else:
        text = render(reports)
        if live:
            import time

            footer = (f"every {args.watch:g} s, {time.strftime('%H:%M:%S')}; "
                      "Ctrl+C to quit\n")
            if sys.stdout.isatty():
                text = "\x1b[H\x1b[2J" + text + footer  # clear the screen, then redraw
            else:
                text = text + footer + "\n"
    sys.stdout.write(text)
    sys.stdout.flush()
