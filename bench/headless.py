"""A headless sparktui collector: N TelemetryServices over make_link, no UI.

Run as a child by collector_cpu.py and memory_soak.py (HOME pointing at a client
home whose ~/.ssh/config names the devices). It speaks one JSON object per line
on stdout:

  {"event": "ready", ...}  every device has GPU and host figures, and the warm-up is over
  {"event": "end", ...}    after --duration s: CPU (getrusage) and what was received

Between the two it only collects: the CPU it reports for the window is exactly
what collection costs, without start-up, imports or the first connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
import tracemalloc

import benchlib  # noqa: F401  (puts the repository root on sys.path)


def _rusage() -> dict[str, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"user": ru.ru_utime, "sys": ru.ru_stime, "maxrss_kib": ru.ru_maxrss}


def _say(**data: object) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


async def collect(args: argparse.Namespace) -> int:
    from sparktui.services import telemetry
    from sparktui.services.config import Config, Settings
    from sparktui.services.devices import make_link, resolve_device
    from sparktui.services.telemetry import TelemetryService

    if args.process_poll_s is not None:
        # a breakdown only: how much of the cost is the process poll's nvidia-smi runs
        telemetry.PROCESS_POLL_S = args.process_poll_s if args.process_poll_s > 0 else 1e9

    settings = Settings(refresh_interval=args.interval, history_minutes=args.history_minutes)
    config = Config(path=None)  # type: ignore[arg-type]
    links = [make_link(resolve_device(alias, config), settings) for alias in args.aliases]
    services = [TelemetryService(link, settings) for link in links]
    if args.processes_hidden:
        # as the app runs while the Telemetry tab (the process list) is not on screen
        for service in services:
            service.watch_processes(False)
    counts = {link.name: {"updates": 0, "gpu_ticks": 0, "host_ticks": 0} for link in links}
    last: dict[str, tuple[object, object]] = {}
    baseline_box: list[tracemalloc.Snapshot] = []

    def listener_for(name: str):
        def listen(state) -> None:
            c = counts[name]
            c["updates"] += 1
            gpus, host = last.get(name, (None, None))
            if state.gpus and state.gpus is not gpus:
                c["gpu_ticks"] += 1
            if state.host is not None and state.host is not host:
                c["host_ticks"] += 1
            last[name] = (state.gpus, state.host)
        return listen

    for service in services:
        service.subscribe(listener_for(service.link.name))
    for link in links:
        link.start()
    for service in services:
        service.start()
    try:
        deadline = time.monotonic() + args.connect_timeout
        while not all(s.latest.gpus and s.latest.host for s in services):
            if time.monotonic() > deadline:
                problems = {s.link.name: [s.link.status.describe(), s.latest.gpu_problem,
                                          s.latest.host_problem] for s in services}
                _say(event="error", reason="devices did not report in time", detail=problems)
                return 1
            await asyncio.sleep(0.05)
        await asyncio.sleep(args.warmup)
        for c in counts.values():
            for key in c:
                c[key] = 0
        t0 = time.monotonic()
        _say(event="ready", t=t0, rusage=_rusage())
        if args.tracemalloc_after is not None:
            tracemalloc.start(8)
            asyncio.get_running_loop().call_later(
                args.tracemalloc_after, lambda: baseline_box.append(tracemalloc.take_snapshot()))
        if args.duration > 0:
            await asyncio.sleep(args.duration)
        else:  # until stdin closes (memory_soak drives the window itself)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        t1 = time.monotonic()
        growth = None
        if baseline_box:
            stats = tracemalloc.take_snapshot().compare_to(baseline_box[0], "traceback")
            # most recent frame first (tracemalloc lists them oldest first)
            growth = [{"size_diff": st.size_diff, "count_diff": st.count_diff,
                       "where": [f"{f.filename}:{f.lineno}" for f in reversed(st.traceback)]}
                      for st in stats[:10]]
        connected = {s.link.name: s.link.status.describe() for s in services}
        history = {s.link.name: {"series": len(s.history),
                                 "points": sum(len(s.history.series(k) or ())
                                               for k in s.history.keys())}
                   for s in services}
        _say(event="end", t=t1, wall=t1 - t0, rusage=_rusage(), counts=counts,
             links=connected, history=history, tracemalloc_growth=growth)
    finally:
        for service in services:
            await service.close()
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("aliases", nargs="+", help="ssh Host aliases of the devices")
    p.add_argument("--interval", type=float, default=1.0, help="refresh_interval, s")
    p.add_argument("--history-minutes", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=5.0,
                   help="seconds to run after every device reported, before the window")
    p.add_argument("--duration", type=float, default=60.0,
                   help="window length, s (0: until stdin closes)")
    p.add_argument("--connect-timeout", type=float, default=60.0)
    p.add_argument("--tracemalloc-after", type=float, default=None, metavar="S",
                   help="diagnosis: trace allocations from the window's start, snapshot S s "
                        "in, and report the biggest growth since then at the end")
    p.add_argument("--processes-hidden", action="store_true",
                   help="poll GPU processes as the app does off the Telemetry tab "
                        "(PROCESS_POLL_IDLE_S)")
    p.add_argument("--process-poll-s", type=float, default=None,
                   help="override the GPU-process poll period (0: poll once at start only)")
    return asyncio.run(collect(p.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
