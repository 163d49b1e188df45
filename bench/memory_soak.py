"""Memory of a headless collector over time: does RSS stay flat once history is full?

One device (a real sshd on loopback, stand-in nvidia-smi), refresh_interval 0.1 s
(10 Hz, so the buffers fill fast) and history_minutes 1: every series holds 600
points and is full one minute in. The collector (bench/headless.py, no UI) runs as a
child; its RSS (VmRSS from /proc) is sampled every --every s (5) over --duration s
(120) from the moment the device has reported.

    python bench/memory_soak.py
    python bench/memory_soak.py --duration 300 --every 10
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import time

import benchlib

HERE = os.path.dirname(os.path.abspath(__file__))
HISTORY_MINUTES = 1.0
INTERVAL_S = 0.1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="RSS of a headless collector over time")
    p.add_argument("--duration", type=float, default=120.0, help="seconds to watch (120)")
    p.add_argument("--every", type=float, default=5.0, help="sampling period, s (5)")
    p.add_argument("--tracemalloc", action="store_true",
                   help="diagnosis: report where Python memory grew between 30 s after the "
                        "buffers filled and the end (slows the collector; CPU figures then "
                        "mean nothing)")
    p.add_argument("--out", default="memory_soak", help="results file name (no .json)")
    args = p.parse_args(argv)
    samples: list[tuple[float, int]] = []
    benchlib.wait_quiet()
    with benchlib.sshd_rig(1) as rig:
        proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "headless.py"), *rig.aliases,
             "--interval", str(INTERVAL_S), "--history-minutes", str(HISTORY_MINUTES),
             "--warmup", "0", "--duration", "0",
             *(["--tracemalloc-after", str(HISTORY_MINUTES * 60 + 30)] if args.tracemalloc
               else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=rig.env(), cwd=benchlib.REPO_ROOT)
        try:
            lines, errors = benchlib.read_lines(proc)
            line = lines.get(timeout=90)
            if line is None or json.loads(line)["event"] != "ready":
                raise RuntimeError(f"collector did not start: {line}\n" + "\n".join(errors))
            t0 = time.monotonic()
            dev0 = rig.device_seconds()
            cpu0 = benchlib.proc_cpu_seconds(proc.pid) or 0.0
            n = 0
            while True:
                now = time.monotonic() - t0
                rss = benchlib.proc_rss_bytes(proc.pid)
                if rss is None:
                    raise RuntimeError("collector exited:\n" + "\n".join(errors[-20:]))
                samples.append((now, rss))
                print(f"  t={now:6.1f} s  RSS {rss / 2**20:7.2f} MiB", flush=True)
                n += 1
                if n * args.every > args.duration + 1e-6:
                    break
                time.sleep(max(0.0, t0 + n * args.every - time.monotonic()))
            wall = time.monotonic() - t0
            cpu = (benchlib.proc_cpu_seconds(proc.pid) or 0.0) - cpu0
            dev = rig.device_seconds() - dev0
            assert proc.stdin is not None
            proc.stdin.close()  # the collector reports and exits
            end = None
            while end is None:
                try:
                    line = lines.get(timeout=30)
                except queue.Empty:
                    break
                if line is None:
                    break
                event = json.loads(line)
                if event["event"] == "end":
                    end = event
            proc.wait(timeout=30)
        finally:
            benchlib.terminate(proc)
    fill_s = HISTORY_MINUTES * 60
    after_fill = [rss for t, rss in samples if t >= fill_s]
    at_fill = after_fill[0] if after_fill else samples[-1][1]
    result = {
        "interval_s": INTERVAL_S, "history_minutes": HISTORY_MINUTES,
        "points_per_series": int(HISTORY_MINUTES * 60 / INTERVAL_S),
        "duration_s": args.duration, "every_s": args.every,
        "samples": [{"t_s": round(t, 2), "rss_bytes": rss} for t, rss in samples],
        "rss_first_mib": samples[0][1] / 2**20,
        "rss_at_fill_mib": at_fill / 2**20,
        "rss_end_mib": samples[-1][1] / 2**20,
        "rss_max_mib": max(r for _, r in samples) / 2**20,
        "growth_after_fill_kib": (samples[-1][1] - after_fill[0]) / 1024 if after_fill else None,
        "collector_cpu_pct": 100 * cpu / wall,
        "device_cpu_pct": 100 * dev / wall,
        "collector_end": end,
    }
    benchlib.print_table(
        ["RSS first MiB", "at 60 s MiB", "end MiB", "max MiB", "growth after fill KiB",
         "collector %core", "device %core"],
        [[result["rss_first_mib"], result["rss_at_fill_mib"], result["rss_end_mib"],
          result["rss_max_mib"], result["growth_after_fill_kib"] or 0.0,
          result["collector_cpu_pct"], result["device_cpu_pct"]]],
        title=f"Headless collector, 1 device at 10 Hz, history {HISTORY_MINUTES:g} min, "
              f"{args.duration:.0f} s")
    if end:
        print(f"history at the end: {end['history']}  ticks: {end['counts']}")
    if end and end.get("tracemalloc_growth"):
        print("biggest Python allocation growth since 30 s after the buffers filled:")
        for st in end["tracemalloc_growth"][:5]:
            print(f"  {st['size_diff']:+8d} B {st['count_diff']:+6d} blocks  {st['where'][0]}")
    result["tracemalloc"] = args.tracemalloc
    path = benchlib.write_results(args.out, result)
    print(f"results: {path.relative_to(benchlib.REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
