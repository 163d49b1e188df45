"""`sparktui record FILE [DEVICE ...]`: the telemetry stream into a recording.

    sparktui record FILE [--interval S] [--duration S] [--max-mb N] [--demo] [DEVICE ...]

Gzip'd JSON lines with timestamps (sparktui.core.recording), flushed every
few seconds as whole gzip members, so a killed recorder leaves a readable
file. `sparktui --replay FILE` plays it in the TUI.
"""

from __future__ import annotations

import argparse
import sys

from sparktui.commands.options import add_connection_options
from sparktui.core.aio import within

DESCRIPTION = """\
Record the telemetry of every DEVICE (GPUs, host, memory, GPU processes,
connection state) into FILE as compressed JSON lines with timestamps, until
Ctrl+C, SIGTERM or --duration. With no DEVICE, the configured devices. The
file stays readable if the recorder is killed; `sparktui --replay FILE`
plays it back in the TUI."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sparktui record", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE", help="recording to write (appended to if it exists)")
    p.add_argument("devices", nargs="*", metavar="DEVICE", help="devices to record")
    p.add_argument("--interval", type=float, default=None, metavar="S",
                   help="seconds between samples (default: the config's refresh_interval)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S seconds (default: until Ctrl+C or SIGTERM)")
    p.add_argument("--max-mb", type=float, default=None, metavar="N",
                   help="stop writing once the file reaches N MB")
    p.add_argument("--demo", action="store_true", help="also record a simulated Spark")
    p.add_argument("--verbose", action="store_true", help="log connections on stderr")
    add_connection_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from sparktui.commands.headless import log_to_stderr, resolve, say

    for name, value in (("--interval", args.interval), ("--duration", args.duration),
                        ("--max-mb", args.max_mb)):
        if value is not None and not 0 < value < 1e9:
            say(f"{name} must be more than 0")
            return 2
    log_to_stderr(args.verbose)
    config, specs = resolve(args, command="record")
    import asyncio

    try:
        return asyncio.run(_record(args, config, specs))
    except KeyboardInterrupt:
        return 0


async def _record(args: argparse.Namespace, config, specs) -> int:
    import asyncio
    import contextlib

    from sparktui.commands.headless import say, until_signalled
    from sparktui.services.fleet import Fleet, with_interval
    from sparktui.services.recorder import TelemetryRecorder
    from sparktui.services.recordings import RecordingWriter

    try:
        writer = RecordingWriter(args.file, max_bytes=None if args.max_mb is None
                                 else int(args.max_mb * 1e6))
    except OSError as exc:
        say(f"cannot write {args.file}: {exc.strerror or exc}")
        return 1
    settings = with_interval(config.settings, args.interval)
    fleet = Fleet(settings, specs, demo=args.demo,
                  accept_new_host_keys=args.accept_new_host_keys)
    recorder = TelemetryRecorder(writer, meta={"interval_s": settings.refresh_interval})

    async def body(stop: asyncio.Event) -> int:
        await fleet.open()
        for device in fleet.devices:
            recorder.attach(device.telemetry, device.link)
        recorder.start()
        say(f"recording {len(fleet.devices)} device(s) into {args.file}; Ctrl+C to stop")
        with contextlib.suppress(TimeoutError):
            await within(stop.wait(), args.duration)
        return 0

    try:
        return await until_signalled(body)
    finally:
        await recorder.close()
        await fleet.close()
        say(f"{recorder.records} records, {writer.bytes_written} bytes in {args.file}"
            + (" (size limit reached)" if writer.full else ""))
