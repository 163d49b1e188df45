"""CPU cost of collecting telemetry: sparktui's streams against a poll-per-tick collector.

For 1 and 8 devices (real OpenSSH sshds on loopback, each with the stand-in
`nvidia-smi` on PATH, scenario gb10), at 1 Hz, over a window of --duration s:

  (a) sparktui   a child process running one TelemetryService per device over
                 make_link, no UI: one asyncssh connection per device carrying a
                 long-lived `nvidia-smi -lms 1000`, a long-lived host-stat shell loop
                 and a process poll every 3 s; run again with the poll every 30 s,
                 as the app polls while the process list is not on screen.
  (b) poll       what peers do: every tick, per device, a new OpenSSH connection for
                 `nvidia-smi --query-gpu=<same fields> --format=csv,noheader,nounits`
                 and another for `cat /proc/meminfo` (no ControlMaster).

Client CPU: (a) the collector's getrusage(RUSAGE_SELF) over the window; (b) the
poller's RUSAGE_SELF + RUSAGE_CHILDREN (every ssh it started has been waited for).
Device CPU: every sshd runs in a cgroup of its own (cpuacct), so the figure counts
the listener, each connection's sshd processes, the shells and the nvidia-smi
stand-ins, including processes that exited during the window. Without cgroups it
falls back to summing /proc (see benchlib.tree_cpu_seconds).

    python bench/collector_cpu.py             # 60 s per run, 1 and 8 devices
    python bench/collector_cpu.py --quick     # 15 s per run
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import statistics
import subprocess
import sys
import time

import benchlib

HERE = os.path.dirname(os.path.abspath(__file__))


# ------------------------------------------------------------------ (b) the poller role

def _children_cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def poller(args: argparse.Namespace) -> int:
    """Every tick, per device: `ssh alias nvidia-smi --query-gpu=...` and `ssh alias cat
    /proc/meminfo`, all started at once, each a fresh OpenSSH connection."""
    from sparktui.core import nvsmi

    query = nvsmi.build_query_command(nvsmi.DEFAULT_FIELDS)
    ssh = ["ssh", *json.loads(args.ssh_args), "-o", "ControlMaster=no", "-o",
           "ControlPath=none"]
    commands = []
    for alias in args.aliases:
        commands.append([*ssh, alias, query])
        commands.append([*ssh, alias, "cat /proc/meminfo"])

    def tick() -> tuple[float, int]:
        start = time.monotonic()
        procs = [subprocess.Popen(c, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL) for c in commands]
        failures = 0
        for proc in procs:
            out, _ = proc.communicate()
            if proc.returncode != 0 or not out:
                failures += 1
        return time.monotonic() - start, failures

    for _ in range(int(args.warmup)):  # warm caches the same way the collector warms up
        tick()
    t0 = time.monotonic()
    cpu0 = _children_cpu()
    print(json.dumps({"event": "ready", "t": t0, "cpu": cpu0}), flush=True)
    durations, failures, late = [], 0, 0
    next_at = t0
    while next_at - t0 < args.duration - 1e-3:
        now = time.monotonic()
        if next_at > now:
            time.sleep(next_at - now)
        took, failed = tick()
        if took > args.interval:
            late += 1  # this tick overran the interval: the next one starts late
        durations.append(took)
        failures += failed
        next_at = max(next_at + args.interval, time.monotonic())
    # the window is `duration` ticks long, or as long as the ticks took when they overran
    time.sleep(max(0.0, t0 + args.duration - time.monotonic()))
    t1 = time.monotonic()
    cpu1 = _children_cpu()
    print(json.dumps({
        "event": "end", "t": t1, "wall": t1 - t0, "cpu": cpu1, "cpu_s": cpu1 - cpu0,
        "ticks": len(durations), "failed_commands": failures, "overran_ticks": late,
        "tick_s_median": statistics.median(durations) if durations else None,
        "tick_s_max": max(durations) if durations else None,
    }), flush=True)
    return 0


# ----------------------------------------------------------------------- the driver

def _run_window(cmd: list[str], rig: benchlib.Rig, timeout: float) -> dict:
    """Start a child that prints `ready` and `end` JSON lines; sample the devices' CPU
    at each; return both lines plus the device figures for the window between them."""
    benchlib.wait_quiet()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=rig.env(),
                            cwd=benchlib.REPO_ROOT)
    events: dict[str, dict] = {}
    marks: dict[str, tuple[float, float, float]] = {}
    try:
        lines, err_lines = benchlib.read_lines(proc)
        deadline = time.monotonic() + timeout
        while "end" not in events:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{cmd[1]} did not finish in {timeout:.0f} s")
            try:
                line = lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"{cmd[1]} exited with {proc.wait(timeout=10)}:\n"
                                   + "\n".join(err_lines[-30:]))
            event = json.loads(line)
            if event["event"] in ("ready", "end"):
                marks[event["event"]] = (time.monotonic(), rig.device_seconds(),
                                         rig.device_proc_tree_seconds(),
                                         benchlib.machine_busy_seconds())
            elif event["event"] == "error":
                raise RuntimeError(f"collector failed: {event}")
            events[event["event"]] = event
        proc.wait(timeout=30)
    finally:
        benchlib.terminate(proc)
    (t0, dev0, tree0, busy0), (t1, dev1, tree1, busy1) = marks["ready"], marks["end"]
    return {"ready": events["ready"], "end": events["end"], "device_cpu_s": dev1 - dev0,
            "device_proc_tree_cpu_s": tree1 - tree0, "device_wall_s": t1 - t0,
            "machine_busy_pct": 100 * (busy1 - busy0) / (t1 - t0),
            "stderr_tail": err_lines[-5:]}


def _settle(rig: benchlib.Rig) -> int:
    """Wait for every session of the last run to end; kill (and count) any left over."""
    deadline = time.monotonic() + 5
    left = []
    while time.monotonic() < deadline:
        left = [p for s in rig.servers for p in s.sessions()]
        if not left:
            return 0
        time.sleep(0.1)
    for server in rig.servers:
        server.kill_sessions()
    return len(left)


def _sparktui_run(rig: benchlib.Rig, duration: float, warmup: float, timeout: float,
                  extra: list[str]) -> dict:
    a = _run_window([sys.executable, os.path.join(HERE, "headless.py"), *rig.aliases,
                     "--interval", "1.0", "--warmup", str(warmup),
                     "--duration", str(duration), *extra], rig, timeout)
    ru0, ru1 = a["ready"]["rusage"], a["end"]["rusage"]
    wall = a["end"]["wall"]
    client = 100 * (ru1["user"] + ru1["sys"] - ru0["user"] - ru0["sys"]) / wall
    device = 100 * a["device_cpu_s"] / a["device_wall_s"]
    return {
        "client_cpu_pct": client,
        "device_cpu_pct": device,
        "device_cpu_pct_proc_tree": 100 * a["device_proc_tree_cpu_s"] / a["device_wall_s"],
        "other_load_pct": a["machine_busy_pct"] - client - device,
        "wall_s": wall, "counts": a["end"]["counts"], "links": a["end"]["links"],
        "client_maxrss_kib": ru1["maxrss_kib"],
        "sessions_left_after_disconnect": _settle(rig),
    }


def measure(count: int, duration: float, warmup: float, breakdown: bool) -> dict:
    timeout = duration + warmup + 120
    with benchlib.sshd_rig(count) as rig:
        out: dict = {"devices": count, "meter": rig.meter_method}
        out["sparktui"] = _sparktui_run(rig, duration, warmup, timeout, [])
        # as the app runs on every tab but Telemetry: the process list polled every 30 s
        out["sparktui_processes_hidden"] = _sparktui_run(rig, duration, warmup, timeout,
                                                         ["--processes-hidden"])
        if breakdown:
            # the same collector with the 3 s GPU-process poll switched off (it runs once,
            # before the window): the streams' share of the cost
            out["sparktui_streams_only"] = _sparktui_run(rig, duration, warmup, timeout,
                                                         ["--process-poll-s", "0"])
        b = _run_window([sys.executable, os.path.abspath(__file__), "--role", "poller",
                         "--duration", str(duration), "--warmup", str(min(warmup, 3)),
                         "--ssh-args", json.dumps(rig.openssh_args()), *rig.aliases],
                        rig, timeout)
        end = b["end"]
        client = 100 * end["cpu_s"] / end["wall"]
        device = 100 * b["device_cpu_s"] / b["device_wall_s"]
        rate = end["ticks"] / end["wall"]
        out["poll"] = {
            "client_cpu_pct": client,
            "device_cpu_pct": device,
            "device_cpu_pct_proc_tree": 100 * b["device_proc_tree_cpu_s"] / b["device_wall_s"],
            "other_load_pct": b["machine_busy_pct"] - client - device,
            "wall_s": end["wall"], "ticks": end["ticks"], "ticks_per_s": rate,
            # what a full 1 Hz would cost, from the cost per tick actually achieved
            "client_cpu_pct_per_hz": client / rate if rate else None,
            "device_cpu_pct_per_hz": device / rate if rate else None,
            "failed_commands": end["failed_commands"], "overran_ticks": end["overran_ticks"],
            "tick_s_median": end["tick_s_median"], "tick_s_max": end["tick_s_max"],
            "sessions_left_after_disconnect": _settle(rig),
        }
        for side in ("client", "device"):
            key = f"{side}_cpu_pct"
            out[f"ratio_{side}"] = out["poll"][key] / max(out["sparktui"][key], 1e-9)
        return out


def standin_spawn_cost(runs: int = 10) -> dict:
    """CPU of one run of the stand-in nvidia-smi (a Python process), on its own."""
    from sparktui.core import nvsmi

    env = dict(os.environ, SPARKTUI_FAKE_GPU="gb10", PYTHONPATH=str(benchlib.REPO_ROOT))
    env.pop("SPARKTUI_FAKE_GPU_FILE", None)
    cmd = [sys.executable, "-m", "tests.infra.fake_nvidia_smi",
           *nvsmi.build_query_command(nvsmi.DEFAULT_FIELDS).split()[1:]]
    subprocess.run(cmd, env=env, capture_output=True, check=True)  # warm the page cache
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    for _ in range(runs):
        subprocess.run(cmd, env=env, capture_output=True, check=True)
    wall = (time.monotonic() - t0) / runs
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / runs
    return {"cpu_ms_per_run": 1000 * cpu, "wall_ms_per_run": 1000 * wall, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="CPU of sparktui's collection vs poll-per-tick")
    p.add_argument("--duration", type=float, default=60.0, help="window per run, s (60)")
    p.add_argument("--quick", action="store_true", help="15 s windows")
    p.add_argument("--devices", default="1,8", help="device counts to run (default 1,8)")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--out", default="collector_cpu", help="results file name (no .json)")
    p.add_argument("--no-breakdown", action="store_true",
                   help="skip the extra sparktui run with the process poll off")
    # the poller child
    p.add_argument("--role", choices=["driver", "poller"], default="driver",
                   help=argparse.SUPPRESS)
    p.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--ssh-args", default="[]", help=argparse.SUPPRESS)
    p.add_argument("aliases", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.role == "poller":
        return poller(args)
    duration = 15.0 if args.quick else args.duration
    counts = [int(c) for c in args.devices.split(",") if c.strip()]
    runs = []
    for count in counts:
        print(f"measuring {count} device(s), {duration:.0f} s per collector ...", flush=True)
        runs.append(measure(count, duration, args.warmup, not args.no_breakdown))
    spawn = standin_spawn_cost()
    rows = []
    for r in runs:
        a, b = r["sparktui"], r["poll"]
        rows.append([r["devices"], "sparktui (streams + 3 s process poll)",
                     a["client_cpu_pct"], a["device_cpu_pct"], "1.00", "", a["other_load_pct"]])
        h = r["sparktui_processes_hidden"]
        rows.append([r["devices"], "sparktui, process list off screen (30 s poll)",
                     h["client_cpu_pct"], h["device_cpu_pct"], "1.00", "",
                     h["other_load_pct"]])
        if "sparktui_streams_only" in r:
            s = r["sparktui_streams_only"]
            rows.append([r["devices"], "  of which streams only (poll off)", s["client_cpu_pct"],
                         s["device_cpu_pct"], "1.00", "", s["other_load_pct"]])
        rows.append([r["devices"], "poll per tick (2 ssh per device)", b["client_cpu_pct"],
                     b["device_cpu_pct"], f"{b['ticks_per_s']:.2f}",
                     f"{r['ratio_client']:.0f}x / {r['ratio_device']:.1f}x",
                     b["other_load_pct"]])
    benchlib.print_table(
        ["devices", "collector", "client %core", "device %core", "ticks/s",
         "(b)/(a) client / device", "other load %"],
        rows, title=f"Collector CPU, 1 Hz, {duration:.0f} s windows "
                    f"(device side via {runs[0]['meter'] if runs else '?'})")
    for r in runs:
        b = r["poll"]
        if b["ticks_per_s"] < 0.95:
            print(f"note: with {r['devices']} devices the poller managed only "
                  f"{b['ticks_per_s']:.2f} ticks/s; at a true 1 Hz it would need about "
                  f"{b['client_cpu_pct_per_hz']:.0f} % (client) and "
                  f"{b['device_cpu_pct_per_hz']:.0f} % (device) of a core")
    print(f"\nstand-in nvidia-smi (Python): {spawn['cpu_ms_per_run']:.0f} ms CPU, "
          f"{spawn['wall_ms_per_run']:.0f} ms wall per run")
    path = benchlib.write_results(args.out, {
        "duration_s": duration, "interval_s": 1.0, "warmup_s": args.warmup,
        "runs": runs, "standin_nvidia_smi": spawn})
    print(f"results: {path.relative_to(benchlib.REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
