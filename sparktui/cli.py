"""The `sparktui` command.

`sparktui --version` and `--help` must answer in well under half a second, so
nothing heavy (Textual, asyncssh, docker) is imported at module level: each
subcommand imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from sparktui import __version__
from sparktui.commands.options import add_connection_options

DESCRIPTION = """\
A keyboard-driven terminal UI for NVIDIA DGX Spark boxes: devices, telemetry,
containers, tunnels and chat over one SSH connection per device.

DEVICE is `local` (this machine), an SSH destination [user@]host[:port], a Host
alias from ~/.ssh/config, or a device name from sparktui's config."""

SUBCOMMANDS_HELP = """\
subcommands (sparktui SUBCOMMAND --help for details):
  status      one snapshot of every GPU of every device (--json, --watch)
  sim         run the simulated DGX Spark (an SSH server on loopback)
  chat        stream one answer from a model: chat --device DEVICE "PROMPT" (--json)
  bench       a small load test: bench --device DEVICE --requests N --concurrency C
  serving     what the inference engines on DEVICE are doing (--json)
  fit         will MODEL fit on DEVICE now: fit DEVICE MODEL (--context N, --json)
  discover    SSH hosts announced over mDNS, Sparks marked (--json, --timeout S)
  devices     configured devices, and hosts of ~/.ssh/config and NVIDIA Sync (--json)
  forward     ssh -N -L that reconnects: forward DEVICE dashboard|8888|9000:8000 ...
  tunnels     list the tunnels saved in the config (--json)
  containers  the containers on DEVICE (--json, --all)
  logs        a container's logs: logs DEVICE CONTAINER (--follow, --tail N)
  exporter    Prometheus /metrics for every device, headless (--listen ADDRESS:PORT)
  watch       alerts to a webhook when they start and clear: watch --notify URL (--install)
  record      the telemetry stream into a file: record FILE [DEVICE ...] (--replay plays it)
  doctor      check every layer between you and a working Spark, with the fixes (--json)
  completion  print the shell completion script: completion bash|zsh|fish
  postmortem  why DEVICE dropped: the cause, its evidence, the minutes before (--json)
"""


def _add_common(parser: argparse.ArgumentParser) -> None:
    add_connection_options(parser)


def _tui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparktui", description=DESCRIPTION, epilog=SUBCOMMANDS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("devices", nargs="*", metavar="DEVICE", help="devices to open")
    parser.add_argument("--demo", action="store_true",
                        help="also start a simulated Spark and connect to it over SSH")
    parser.add_argument("--read-only", action="store_true",
                        help="disable every action that changes a device")
    parser.add_argument("--compact", action="store_true", default=None,
                        help="force the compact layout (automatic below 80 columns)")
    parser.add_argument("--prometheus", metavar="URL",
                        help="show every Spark this Prometheus scrapes, without SSH to each "
                             "(a device's connection opens when it is selected)")
    parser.add_argument("--replay", metavar="FILE",
                        help="play a recording (`sparktui record`, or a flight recorder's "
                             "directory) instead of connecting")
    parser.add_argument("--speed", type=float, default=1.0, metavar="N",
                        help="replay at N times the recorded pace (default 1)")
    parser.add_argument("--version", action="version", version=f"sparktui {__version__}")
    _add_common(parser)
    return parser


def _load(args: argparse.Namespace):
    from sparktui.services.config import load_config, resolve_config_path

    return load_config(resolve_config_path(args.config))


def _resolve_specs(args: argparse.Namespace, config) -> list:
    from sparktui.core.device import DestinationError
    from sparktui.services.devices import resolve_device

    specs = []
    for arg in args.devices:
        try:
            specs.append(resolve_device(arg, config))
        except DestinationError as exc:
            raise SystemExit(f"sparktui: {exc}") from exc
    return specs


def run_tui(argv: list[str]) -> int:
    args = _tui_parser().parse_args(argv)
    config = _load(args)
    if args.replay or args.prometheus or config.settings.prometheus_url:
        from sparktui.commands.sources import run_with_source

        return run_with_source(args, config)
    specs = _resolve_specs(args, config)
    demo, restore = args.demo, None
    if not specs and not demo and config.settings.restore_on_start:
        # no devices asked for: the last session comes back (its devices, tab and focus)
        from sparktui.services.state import load_state

        state, problems = load_state()
        saved, skipped = state.specs(config)
        config.problems.extend([*problems, *skipped])  # the app shows them
        if saved or state.demo:
            specs, demo, restore = saved, state.demo, state
    # Nothing asked for and nothing configured: the app opens on the Devices tab's
    # first-run guide (find, import, add, or the demo), not on an error.
    if not specs and not args.devices:
        specs = list(config.devices)
    from sparktui.services.logs import log_to_file
    from sparktui.ui.run import run_tui as run_app

    read_only = args.read_only or config.settings.read_only
    session = None
    if args.demo:
        # --demo plays in a sandbox: it reads the user's settings and theme, and
        # writes its tunnels, endpoints, history, session and log only to its own temp
        # dir; its API keys stay in memory (Session.secrets)
        from sparktui.services.session import Session

        session = Session.sandboxed_demo(config.path, specs, read_only=read_only or None,
                                         accept_new_host_keys=args.accept_new_host_keys)
        config = session.config
    sandbox = session.sandbox if session is not None else None
    log_to_file(sandbox.root / "sparktui.log" if sandbox is not None else None)

    return run_app(config, specs, demo=demo,
                   accept_new_host_keys=args.accept_new_host_keys,
                   read_only=read_only, compact=args.compact, restore=restore,
                   session=session)


#: subcommand -> "module:function"; imported only when that subcommand runs,
#: so `sparktui --help` stays fast and a broken extra never breaks the TUI.
SUBCOMMANDS: dict[str, str] = {
    "status": "sparktui.commands.status:main",
    "forward": "sparktui.commands.forward:main",
    "tunnels": "sparktui.commands.tunnels:main",
    "containers": "sparktui.commands.containers:containers_main",
    "logs": "sparktui.commands.containers:logs_main",
    "chat": "sparktui.commands.chat:main",
    "bench": "sparktui.commands.bench:main",
    "serving": "sparktui.commands.serving:main",
    "fit": "sparktui.commands.fit:main",
    "discover": "sparktui.commands.discover:main",
    "devices": "sparktui.commands.devices:main",
    "exporter": "sparktui.commands.exporter:main",
    "watch": "sparktui.commands.watch:main",
    "record": "sparktui.commands.record:main",
    "postmortem": "sparktui.commands.postmortem:main",
    "doctor": "sparktui.commands.doctor:main",
    "completion": "sparktui.commands.completion:main",
    # hidden (a leading underscore): what the completion scripts call on each Tab
    "__complete": "sparktui.commands.completion:complete_main",
}


def run_subcommand(name: str, argv: list[str]) -> int:
    import importlib

    module_name, _, function = SUBCOMMANDS[name].partition(":")
    entry: Callable[[list[str]], int] = getattr(importlib.import_module(module_name), function)
    return entry(argv)


async def start_simulated_demo(**options: Any) -> Any:
    """The demo's device: the simulated Spark (imported only when a demo starts)."""
    from sparktui.sim.demo import start_demo

    return await start_demo(**options)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from sparktui.services import demo

    demo.provide(start_simulated_demo)  # the one place the simulator is wired in
    if argv and argv[0] in SUBCOMMANDS:
        return run_subcommand(argv[0], argv[1:])
    return run_tui(argv)
