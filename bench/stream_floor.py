"""The transport's floor: what N devices' streams cost the watcher with nothing parsed.

Per device one SSH connection (make_link, as the collector) and K streams, each a
shell loop printing one line of --bytes bytes every second; the watcher only counts
the lines (sparktui's LineStream: asyncssh, BoundedSession, bounded_lines). So the
CPU is what one 1 Hz stream costs before any telemetry parsing: the floor under
bench/headless.py, and what merging a device's streams into one would save.

    python bench/stream_floor.py --devices 64 --streams 1,2 --window 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time

import benchlib

LOOP = "while :; do printf '%s\\n' \"$l\"; sleep 1; done"


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def child(args: argparse.Namespace) -> None:
    from sparktui.services.config import Config, Settings
    from sparktui.services.devices import make_link, resolve_device

    settings = Settings(refresh_interval=1.0)
    links = [make_link(resolve_device(a, Config(path=None)), settings)  # type: ignore[arg-type]
             for a in args.aliases]
    lines = [0]
    streaming = [0]

    async def stream(link) -> None:
        async for transport in link.sessions():
            command = f"l=$(printf '%0{args.bytes}d' 0); {LOOP}"
            s = await transport.stream(f"sh -c {benchlib.shell_quote(command)}",
                                       stall_after=30)
            streaming[0] += 1
            async for _line in s:
                lines[0] += 1

    for link in links:
        link.start()
    tasks = [asyncio.get_running_loop().create_task(stream(link))
             for link in links for _ in range(args.streams)]
    deadline = time.monotonic() + 150
    while streaming[0] < len(tasks) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(3)
    c0, t0, n0 = _cpu(), time.monotonic(), lines[0]
    await asyncio.sleep(args.window)
    c1, t1, n1 = _cpu(), time.monotonic(), lines[0]
    print(json.dumps({"cpu_pct": 100 * (c1 - c0) / (t1 - t0), "lines_per_s": (n1 - n0) / (t1 - t0),
                      "streams": len(tasks), "streaming": streaming[0]}), flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*(link.close() for link in links), return_exceptions=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=64)
    p.add_argument("--streams", default="1,2", help="streams per device, one run each")
    p.add_argument("--bytes", type=int, default=1500, help="bytes per line")
    p.add_argument("--window", type=float, default=20)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--out", default="stream_floor")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("aliases", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.streams = int(args.streams)
        asyncio.run(child(args))
        return 0
    sshds = min(args.devices, 16)
    rows = []
    with benchlib.sshd_rig(sshds, aliases_per_server=args.devices // sshds) as rig:
        for round_ in range(args.rounds):
            counts = [int(k) for k in args.streams.split(",")]
            for k in counts if round_ % 2 == 0 else counts[::-1]:
                load = " ".join(open("/proc/loadavg").read().split()[:3])
                out = subprocess.run(
                    [sys.executable, __file__, "--child", "--streams", str(k), "--bytes",
                     str(args.bytes), "--window", str(args.window), *rig.aliases],
                    env=rig.env(), capture_output=True, text=True, timeout=400,
                    cwd=benchlib.REPO_ROOT)
                result = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() \
                    else {"error": out.stderr[-500:]}
                row = {"devices": args.devices, "streams_per_device": k, "round": round_ + 1,
                       "loadavg": load, **result}
                print(row, flush=True)
                rows.append(row)
    path = benchlib.write_results(args.out, {"window_s": args.window, "bytes": args.bytes,
                                             "rows": rows})
    print(f"results: {path.relative_to(benchlib.REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
