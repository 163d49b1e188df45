"""`sparktui watch`: alerts to a webhook, for a headless Spark without a terminal open.

    sparktui watch [DEVICE ...] --notify URL [--format json|ntfy|slack|discord]
                   [--heartbeat S] [--for S] [--down-after S] [--install]

Runs as a systemd user service: `--install` writes the unit (the same
arguments, less --install) and says how to enable it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from sparktui.commands.options import add_connection_options

DESCRIPTION = """\
Watch DEVICE (with none, the configured devices; `local` for this machine) and
POST to a webhook when an alert starts and when it clears: one message each,
nothing in between. The alerts and their thresholds are the TUI banner's
(memory floor, GPU temperature, power, clocks held back) plus a device that
cannot be reached. A heartbeat says the watcher is alive, so silence means
trouble. --install writes a systemd user unit that runs this command."""

UNIT_NAME = "sparktui-watch.service"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < 1e7:
        raise argparse.ArgumentTypeError(f"{text!r}: must be 0 or more seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sparktui watch", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("devices", nargs="*", metavar="DEVICE", help="devices to watch")
    p.add_argument("--notify", required=True, metavar="URL",
                   help="webhook to POST to (ntfy, Slack and Discord URLs are recognised)")
    p.add_argument("--format", choices=("json", "ntfy", "slack", "discord"),
                   help="message format (default: guessed from the URL, else json)")
    p.add_argument("--heartbeat", type=_seconds, default=3600.0, metavar="S",
                   help="seconds between heartbeats (default 3600; 0 for none)")
    p.add_argument("--for", dest="hold", type=_seconds, default=10.0, metavar="S",
                   help="a condition must hold S seconds before it is sent, and be gone S "
                        "seconds before its clear is sent (default 10)")
    p.add_argument("--down-after", type=_seconds, default=60.0, metavar="S",
                   help="a device unreachable this long is an alert (default 60)")
    p.add_argument("--interval", type=float, default=None, metavar="S",
                   help="seconds between samples (default: the config's refresh_interval)")
    p.add_argument("--install", action="store_true",
                   help=f"write ~/.config/systemd/user/{UNIT_NAME} running this command")
    p.add_argument("--verbose", action="store_true", help="log connections on stderr")
    add_connection_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from sparktui.commands.headless import log_to_stderr, resolve, say

    if not args.notify.startswith(("http://", "https://")):
        say(f"--notify {args.notify!r}: expected an http:// or https:// URL")
        return 2
    if args.install:
        return install(argv)
    log_to_stderr(args.verbose)
    config, specs = resolve(args, command="watch")
    import asyncio

    try:
        return asyncio.run(_watch(args, config, specs))
    except KeyboardInterrupt:
        return 0


async def _watch(args: argparse.Namespace, config, specs) -> int:
    from sparktui.commands.headless import say, until_signalled
    from sparktui.services.fleet import Fleet, with_interval
    from sparktui.services.notify import AlertWatcher, WebhookFormat

    fleet = Fleet(with_interval(config.settings, args.interval), specs,
                  accept_new_host_keys=args.accept_new_host_keys)
    fmt = WebhookFormat(args.format) if args.format else None
    watcher = AlertWatcher(fleet, args.notify, fmt, hold_s=args.hold,
                           down_after_s=args.down_after, heartbeat_s=args.heartbeat or None)

    async def body(stop) -> int:
        await fleet.open()
        say(f"watching {len(fleet.devices)} device(s); notifying {watcher.format.value} "
            f"webhook")
        await watcher.run(stop)
        return 0

    try:
        return await until_signalled(body)
    finally:
        await fleet.close()


# --------------------------------------------------------------------- the unit

def systemd_quote(arg: str) -> str:
    """One ExecStart argument, quoted the way systemd reads it (% and $ escaped)."""
    text = arg.replace("%", "%%").replace("$", "$$")
    if text and not any(c in text for c in ' \t"\'\\;'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit_text(argv: list[str], executable: list[str] | None = None) -> str:
    from sparktui.monitoring import WATCH_UNIT

    if executable is None:
        found = shutil.which("sparktui")
        executable = [found] if found else [sys.executable, "-m", "sparktui"]
    args = [a for a in argv if a != "--install"]
    template = WATCH_UNIT.read_text(encoding="utf-8")
    return (template.replace("@EXEC@", " ".join(systemd_quote(a) for a in executable))
            .replace("@ARGS@", " ".join(systemd_quote(a) for a in args)))


def unit_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "systemd" / "user" / UNIT_NAME


def install(argv: list[str]) -> int:
    from sparktui.commands.headless import say

    path = unit_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # the webhook URL is often a secret (Slack, Discord): the unit is private
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(unit_text(argv))
    os.chmod(path, 0o600)
    say(f"wrote {path}")
    print("next:\n  systemctl --user daemon-reload\n"
          f"  systemctl --user enable --now {UNIT_NAME}\n"
          "  loginctl enable-linger $USER   # keep it running while you are logged out")
    return 0
