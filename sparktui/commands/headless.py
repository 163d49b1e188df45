"""What the long-running headless commands (exporter, watch, record) share.

Resolving DEVICE arguments the way `status` does, one-line logging on stderr,
and running a coroutine until SIGINT or SIGTERM. Standard library only at
import, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable

EXIT_USAGE = 2


def say(message: str) -> None:
    from sparktui.core.sanitize import strip_control

    print(f"sparktui: {strip_control(message)}", file=sys.stderr, flush=True)


def resolve(args: argparse.Namespace, *, command: str):
    """(config, specs) for args.devices and args.config; SystemExit(2) with a reason."""
    from sparktui.core.device import DestinationError
    from sparktui.services.config import load_config, resolve_config_path
    from sparktui.services.devices import resolve_device

    config = load_config(resolve_config_path(args.config))
    for problem in config.problems:
        say(problem)
    specs = []
    for arg in args.devices:
        try:
            specs.append(resolve_device(arg, config))
        except DestinationError as exc:
            say(str(exc))
            raise SystemExit(EXIT_USAGE) from None
    if not args.devices:
        specs = list(config.devices)
    if not specs and not getattr(args, "demo", False):
        say(f"no devices given and none configured\n"
            f"  try:  sparktui {command} --demo            (a simulated Spark)\n"
            f"        sparktui {command} spark-abcd.local  (any ssh destination or Host alias)")
        raise SystemExit(EXIT_USAGE)
    return config, specs


async def until_signalled(body: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run `body(stop)`; SIGINT and SIGTERM set `stop` (a service stops on SIGTERM)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        return await body(stop)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def log_to_stderr(verbose: bool = False) -> None:
    """Warnings (or everything, with --verbose) as one line each on stderr."""
    import logging

    from sparktui.commands.status import quiet_logging

    quiet_logging()
    root = logging.getLogger()
    level = logging.INFO if verbose else logging.WARNING
    root.setLevel(level)
    for handler in root.handlers:
        handler.setLevel(level)
