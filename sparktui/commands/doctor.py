"""`sparktui doctor`: what stands between you and a working Spark, with the fix for each.

    sparktui doctor [--json] [--timeout S] [--config FILE] [DEVICE ...]

This machine first (sparktui.services.doctor_client), then each DEVICE (or every
configured device) layer by layer (sparktui.services.doctor). Exit status 1 when
a check failed, 0 when only warnings (or nothing) were found. Only argparse loads
at import, so --help answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys

from sparktui.commands.options import add_connection_options

EXIT_FAILED = 1
EXIT_USAGE = 2

DESCRIPTION = """\
Check every layer between you and a working Spark, and say what to do about each
failure. On this machine: Python, the terminal, the config file, the keyring, a
browser and the clipboard, the ssh-agent, ~/.ssh/config and known_hosts. On each
DEVICE (default: the configured devices): name resolution, TCP, the host key,
auth, nvidia-smi, the Docker socket (and docker group), the NVIDIA container
runtime, free disk, and sudo -n for the memory actions. Nothing is changed.
Exit status 1 when a check failed."""

MARKS = {"ok": "ok", "warn": "warn", "fail": "FAIL", "skip": "skip"}


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 300:
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0 and at most 300 s")
    return value


def build_parser() -> argparse.ArgumentParser:
    from sparktui.services.doctor import DEFAULT_TIMEOUT_S

    p = argparse.ArgumentParser(prog="sparktui doctor", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("devices", nargs="*", metavar="DEVICE", help="devices to check")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: every check with its status and fix")
    p.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"give each device at most S seconds per layer "
                        f"(default {DEFAULT_TIMEOUT_S:g})")
    add_connection_options(p)
    return p


def render(checks: list, columns: int = 80) -> str:
    """Checks grouped by layer, each wrapped to `columns` under its own indent."""
    import textwrap

    from sparktui.core.sanitize import strip_control

    lines: list[str] = []
    layer = None
    width = max((len(c.name) for c in checks), default=8)
    indent = " " * (2 + 4 + 2 + width + 2)
    wrap = max(40, columns - 1)
    for check in checks:
        if check.layer != layer:
            layer = check.layer
            lines.append(strip_control(layer))
        head = f"  {MARKS[check.status]:<4}  {check.name:<{width}}  "
        lines += textwrap.wrap(strip_control(check.detail), wrap, initial_indent=head,
                               subsequent_indent=indent) or [head]
        if check.fix and check.status in ("warn", "fail"):
            lines += textwrap.wrap("fix: " + strip_control(check.fix), wrap,
                                   initial_indent=indent, subsequent_indent=indent + "     ")
    failed = sum(1 for c in checks if c.status == "fail")
    warned = sum(1 for c in checks if c.status == "warn")
    lines.append(f"{failed} failed, {warned} warning(s), "
                 f"{sum(1 for c in checks if c.status == 'ok')} ok")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    import asyncio

    from sparktui.commands.status import quiet_logging
    from sparktui.core.device import DestinationError
    from sparktui.services.config import load_config, resolve_config_path
    from sparktui.services.devices import resolve_device
    from sparktui.services.doctor_client import client_checks

    config = load_config(resolve_config_path(args.config))
    specs = []
    for arg in args.devices:
        try:
            specs.append(resolve_device(arg, config))
        except DestinationError as exc:
            print(f"sparktui doctor: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if not args.devices:
        specs = list(config.devices)
    checks = client_checks(args.config)
    restore = quiet_logging()
    try:
        checks += asyncio.run(_devices(specs, config.settings, args))
    except KeyboardInterrupt:
        return 130
    finally:
        restore()
    if args.json:
        print(json.dumps({"checks": [c.as_dict() for c in checks],
                          "failed": sum(1 for c in checks if c.status == "fail"),
                          "warnings": sum(1 for c in checks if c.status == "warn")},
                         indent=2))
    else:
        import shutil

        with_colour = sys.stdout.isatty()
        text = render(checks, shutil.get_terminal_size().columns)
        if not specs:
            text += ("no device checked: name one (sparktui doctor spark-abcd.local), or add "
                     "one (sparktui, then a in the Devices tab)\n")
        sys.stdout.write(text if not with_colour else text.replace("  FAIL  ", "  \x1b[1;31m"
                                                                   "FAIL\x1b[0m  "))
    return EXIT_FAILED if any(c.status == "fail" for c in checks) else 0


async def _devices(specs: list, settings, args: argparse.Namespace) -> list:
    import asyncio

    from sparktui.services.doctor import check_device

    results = await asyncio.gather(*(check_device(
        spec, settings, timeout=args.timeout, accept_new_host_keys=args.accept_new_host_keys)
        for spec in specs))
    return [check for result in results for check in result]

