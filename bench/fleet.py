"""Fleet scale: 1, 4, 16 and 64 devices, headless and TUI, at 1 Hz.

The machine holds 16 sshds at most here, so 64 devices are 16 sshds with 4 Host
aliases each (every alias is its own SSH connection, its own streams). Per size:

  headless  bench/headless.py (TelemetryServices over make_link, no UI): CPU % of a
            core (getrusage) and peak RSS over --window s, and the connect storm:
            time from the child's start until every device has GPU and host figures,
            and the devices that had not by then.
  tui       `sparktui spark-1 ... spark-N` in tmux 120x40: CPU % (app + tmux server),
            RSS, bytes/s to the terminal.
  latency   the real SparkApp in this process, headless (Textual's test driver, every
            frame composed): for each host sample, the device's uptime written into the
            block header (/proc/uptime, 10 ms steps) against CLOCK_BOOTTIME when the
            frame after the sample has been composed (call_after_refresh). Device and
            watcher are one machine here, so the clocks agree. p50/p95 over --window s,
            and its two halves: device -> the app's collector, collector -> frame; and
            the event loop's stalls (how late a 20 ms sleep wakes).

    python bench/fleet.py                         # 1,4,16,64; 20 s windows
    python bench/fleet.py --sizes 64 --window 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib

HERE = Path(__file__).resolve().parent
MAX_SSHDS = 16


def boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def headless(rig: benchlib.Rig, window: float, connect_timeout: float = 60.0,
             profile: str | None = None, processes_hidden: bool = False) -> dict:
    """The headless collector's CPU, RSS and connect storm; `profile` NAME: py-spy records
    the window (attached at `ready`) into bench/results/NAME.txt (see summarise_profile)."""
    start = time.monotonic()
    devices_before = rig.device_seconds()
    spy = None
    proc = subprocess.Popen([sys.executable, str(HERE / "headless.py"), *rig.aliases,
                             "--warmup", "3", "--duration", str(window), "--connect-timeout",
                             str(connect_timeout),
                             *(["--processes-hidden"] if processes_hidden else [])],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=rig.env(),
                            cwd=benchlib.REPO_ROOT)
    lines, errors = benchlib.read_lines(proc)
    events: dict[str, dict] = {}
    while "end" not in events and "error" not in events:
        line = lines.get(timeout=connect_timeout + window + 90)
        if line is None:
            break
        event = json.loads(line)
        events[event["event"]] = event
        if event["event"] == "ready":
            events["ready"]["live_s"] = time.monotonic() - start - 3  # minus the warm-up
            # the storm's CPU on each side: where its wall time goes (the devices share
            # this machine's cores with the watcher here)
            events["ready"]["devices_cpu_s"] = rig.device_seconds() - devices_before
            if profile:
                spy = start_py_spy(proc.pid, window)
    if "end" not in events:
        benchlib.terminate(proc, timeout=60)
        error = events.get("error") or {"stderr": errors[-5:]}
        detail = error.get("detail") or {}
        return {"error": error.get("reason"), "connect_timeout_s": connect_timeout,
                "not_live": sorted(k for k, v in detail.items() if v[1] or v[2]
                                   or "connected" not in str(v[0]))}
    benchlib.terminate(proc, timeout=60)  # closing 64 connections may take a while
    if spy is not None:
        write_profile(spy, profile)
    ready, end = events["ready"], events["end"]
    user = end["rusage"]["user"] - ready["rusage"]["user"]
    system = end["rusage"]["sys"] - ready["rusage"]["sys"]
    return {"cpu_pct": 100 * (user + system) / end["wall"],
            "user_pct": 100 * user / end["wall"], "sys_pct": 100 * system / end["wall"],
            "rss_mib": end["rusage"]["maxrss_kib"] / 1024,
            "all_live_s": ready["live_s"],
            # from the child's start to `ready` (its 3 s warm-up, imports and set-up
            # included): the watcher's CPU and the devices' (sshds, shells, stand-ins)
            "storm_watcher_cpu_s": ready["rusage"]["user"] + ready["rusage"]["sys"],
            "storm_devices_cpu_s": ready["devices_cpu_s"],
            "not_connected": [k for k, v in end["links"].items() if "connected" not in v]}


def start_py_spy(pid: int, seconds: float) -> tuple[subprocess.Popen, str]:
    """py-spy record of a running process, raw (collapsed) stacks, busy samples only
    (`--gil`: a thread waiting in select or on a lock holds no GIL)."""
    fd, raw = tempfile.mkstemp(prefix="sparktui-spy-", suffix=".txt")
    os.close(fd)
    spy = subprocess.Popen(["py-spy", "record", "-p", str(pid), "-d", str(int(seconds)),
                            "-r", "100", "--gil", "-f", "raw", "-o", raw],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return spy, raw


def write_profile(spy: tuple[subprocess.Popen, str], name: str | None) -> None:
    spy[0].wait(timeout=60)
    summary = summarise_profile(Path(spy[1]).read_text())
    (benchlib.RESULTS_DIR / f"{name}.txt").write_text(summary)
    keep = os.environ.get("SPARKTUI_BENCH_RAW_DIR")  # the collapsed stacks, for a flame graph
    if keep:
        Path(spy[1]).replace(Path(keep) / f"{name}.raw")
    else:
        Path(spy[1]).unlink()
    print(summary[:3000], flush=True)


def summarise_profile(raw: str, top: int = 40) -> str:
    """Collapsed stacks -> the functions with the most samples, inclusive and by themselves."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0] + ")"
                  if " (" in f else f for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    if not total:
        return "no samples\n"
    lines = [f"{total} busy samples (py-spy, 100 Hz)", "", "inclusive %  function (file)"]
    lines += [f"{100 * n / total:6.1f}  {f}" for f, n in
              sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]]
    lines += ["", "self %  function (file)"]
    lines += [f"{100 * n / total:6.1f}  {f}" for f, n in
              sorted(own.items(), key=lambda kv: -kv[1])[:top]]
    return "\n".join(lines) + "\n"


def tui(rig: benchlib.Rig, window: float, tmp: Path, profile: str | None = None) -> dict:
    tmux = benchlib.Tmux("bench-fleet")
    meter = benchlib.CpuMeter(None, f"sparktui-bench-{os.getpid()}-fleet-tui")
    out = tmp / "tui.pty"
    try:
        env = rig.env(TERM="tmux-256color", SPARKTUI_CONFIG=str(tmp / "config.toml"),
                      XDG_CONFIG_HOME=str(tmp / "xdg"), XDG_DATA_HOME=str(tmp / "xdg-data"))
        command = " ".join(benchlib.shell_quote(a)
                           for a in [*benchlib.sparktui_command(), *rig.aliases])
        tmux.new_session("w", f"echo $$ > {meter.procs_file}; exec {command}", env)
        tmux.pipe_to("w", out)
        pane = tmux.pane_pid("w")
        server = int(tmux.cmd("display-message", "-p", "-t", "idle", "#{pid}").strip())
        time.sleep(20 if len(rig.aliases) > 16 else 12)

        def sample():
            return (time.monotonic(), meter.seconds(),
                    benchlib.proc_cpu_seconds(server) or 0.0,
                    out.stat().st_size if out.exists() else 0)

        load = benchlib_load()
        spy = start_py_spy(pane, window) if profile else None
        a = sample()
        time.sleep(window)
        b = sample()
        wall = b[0] - a[0]
        if spy is not None:
            write_profile(spy, profile)
        return {"cpu_pct": 100 * ((b[1] - a[1]) + (b[2] - a[2])) / wall,
                "app_cpu_pct": 100 * (b[1] - a[1]) / wall,
                "rss_mib": (benchlib.proc_rss_bytes(pane) or 0) / 2**20,
                "output_bytes_per_s": (b[3] - a[3]) / wall, "loadavg": load}
    finally:
        tmux.close()
        meter.close()


def with_ciphers(rig: benchlib.Rig, cipher: str) -> None:
    """Make the client's ssh_config name `cipher` for every host, or nothing (`offer`)."""
    path = Path(rig.client.config_path)  # type: ignore[attr-defined]
    text = path.read_text()
    if text.startswith("Host *\n    Ciphers "):
        text = text.split("\n\n", 1)[1]
    if cipher != "offer":
        text = f"Host *\n    Ciphers {cipher}\n\n" + text
    path.write_text(text)


def compare_ciphers(args: argparse.Namespace) -> int:
    ciphers = [c.strip() for c in args.ciphers.split(",") if c.strip()]
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        sshds = min(size, MAX_SSHDS)
        with benchlib.sshd_rig(sshds, aliases_per_server=size // sshds) as rig:
            for round_ in range(args.rounds):
                order = ciphers if round_ % 2 == 0 else ciphers[::-1]
                for cipher in order:
                    with_ciphers(rig, cipher)
                    load = benchlib_load()
                    result = headless(rig, args.window, args.connect_timeout,
                                      processes_hidden=args.processes_hidden)
                    row = {"devices": size, "cipher": cipher, "round": round_ + 1,
                           "loadavg": load, "headless": result}
                    print(f"{size:3d} {cipher:32s} round {round_ + 1}: {result} "
                          f"(load {load})", flush=True)
                    rows.append(row)
            with_ciphers(rig, "offer")
    benchlib.print_table(
        ["devices", "cipher", "round", "headless %core", "RSS MiB", "all live s", "load avg"],
        [[r["devices"], r["cipher"], r["round"], r["headless"].get("cpu_pct"),
          r["headless"].get("rss_mib"), r["headless"].get("all_live_s"), r["loadavg"]]
         for r in rows], title=f"headless collection by cipher, {args.window:.0f} s windows")
    path = benchlib.write_results(args.out, {"window_s": args.window, "rows": rows})
    print(f"results: {path.relative_to(benchlib.REPO_ROOT)}")
    return 0


def benchlib_load() -> str:
    with open("/proc/loadavg", encoding="ascii") as fh:
        return " ".join(fh.read().split()[:3])


async def latency(rig: benchlib.Rig, window: float, tmp: Path) -> dict:
    """The real app, headless in this process: device timestamp to composed frame."""
    os.environ["HOME"] = rig.home
    os.environ["XDG_DATA_HOME"] = str(tmp / "xdg-data")
    os.environ.pop("SSH_AUTH_SOCK", None)
    from sparktui.core.device import DeviceSpec, LinkState
    from sparktui.services.config import Config
    from sparktui.ui.app import SparkApp

    app = SparkApp(Config(path=tmp / "config.toml"),
                   [DeviceSpec.parse(a) for a in rig.aliases],
                   theme_dirs=[benchlib.REPO_ROOT / "themes"])
    delays: list[float] = []
    arrivals: list[float] = []
    on_screen: list[float] = []
    lags: list[float] = []
    measuring = [False]

    async def loop_lag() -> None:
        """How late a 20 ms sleep wakes: the event loop's stalls, whatever their cause."""
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.02)
            if measuring[0]:
                lags.append(time.monotonic() - before - 0.02)

    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 90
        while not all(link.status.state is LinkState.CONNECTED for link in app.fleet.links):
            if time.monotonic() > deadline:
                break
            await pilot.pause(0.1)
        last: dict[str, float] = {}

        def listen(state) -> None:
            host = state.host
            if not measuring[0] or host is None or host.uptime_s is None:
                return
            if last.get(state.device) == host.uptime_s:
                return
            last[state.device] = host.uptime_s
            stamp, heard = host.uptime_s, boottime()
            # the two halves: device -> the app's collector (the device's shell, its sshd,
            # the transport, parsing: all of it waits for CPU on a loaded machine), and
            # collector -> the next composed frame (the app's own event loop)
            arrivals.append(heard - stamp)
            app.call_after_refresh(lambda s=stamp, h=heard: (delays.append(boottime() - s),
                                                             on_screen.append(boottime() - h)))

        for service in app.telemetry.services.values():
            service.subscribe(listen)
        await pilot.pause(3)
        lag_task = asyncio.create_task(loop_lag())
        cpu_before, load = time.process_time(), benchlib_load()
        measuring[0] = True
        await pilot.pause(window)
        measuring[0] = False
        cpu = time.process_time() - cpu_before
        lag_task.cancel()
    if not delays:
        return {"error": "no samples"}
    ms = [1000 * d for d in delays]

    def pct(values: list[float], p: float) -> float | None:
        return benchlib.percentile([1000 * v for v in values], p) if values else None

    return {"samples": len(ms), "p50_ms": benchlib.percentile(ms, 50),
            "p95_ms": benchlib.percentile(ms, 95), "max_ms": max(ms),
            "arrival_p50_ms": pct(arrivals, 50), "arrival_p95_ms": pct(arrivals, 95),
            "to_screen_p50_ms": pct(on_screen, 50), "to_screen_p95_ms": pct(on_screen, 95),
            "loop_lag_p50_ms": pct(lags, 50), "loop_lag_p95_ms": pct(lags, 95),
            "process_cpu_pct": 100 * cpu / window, "loadavg": load,
            "note": "uptime has 10 ms steps: each figure is up to 10 ms high"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="sparktui at fleet scale")
    p.add_argument("--sizes", default="1,4,16,64")
    p.add_argument("--window", type=float, default=20.0)
    p.add_argument("--parts", default="headless,tui,latency")
    p.add_argument("--connect-timeout", type=float, default=60.0)
    p.add_argument("--ciphers", default=None,
                   help="headless only: comma-separated ciphers to compare in the same rig, "
                   "alternating (`offer`: sparktui's own preference; a name: a `Host *` "
                   "`Ciphers` line in the client's ssh_config), e.g. "
                   "offer,chacha20-poly1305@openssh.com")
    p.add_argument("--rounds", type=int, default=1, help="with --ciphers: rounds (1)")
    p.add_argument("--processes-hidden", action="store_true",
                   help="headless: poll GPU processes every 30 s, as `sparktui exporter`, "
                   "`watch` and `record` do (default: every 3 s, as with the list on screen)")
    p.add_argument("--out", default="fleet")
    p.add_argument("--profile", default=None, metavar="NAME",
                   help="py-spy the headless window (bench/results/NAME.txt) and the TUI's "
                   "(NAME-tui.txt): busy samples, top functions")
    args = p.parse_args(argv)
    if args.ciphers:
        return compare_ciphers(args)
    parts = set(args.parts.split(","))
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        sshds = min(size, MAX_SSHDS)
        with benchlib.sshd_rig(sshds, aliases_per_server=size // sshds) as rig, \
                tempfile.TemporaryDirectory(prefix="sparktui-bench-") as tmp_text:
            tmp = Path(tmp_text)
            row: dict[str, object] = {"devices": size, "sshds": sshds,
                                      "loadavg": benchlib_load(),
                                      "processes_hidden": args.processes_hidden}
            if "headless" in parts:
                row["headless"] = headless(rig, args.window, args.connect_timeout,
                                           profile=args.profile,
                                           processes_hidden=args.processes_hidden)
                print(f"{size:3d} headless {row['headless']}", flush=True)
            if "tui" in parts:
                row["tui"] = tui(rig, args.window, tmp,
                                 profile=f"{args.profile}-tui" if args.profile else None)
                print(f"{size:3d} tui      {row['tui']}", flush=True)
            if "latency" in parts:
                row["latency"] = asyncio.run(latency(rig, args.window, tmp))
                print(f"{size:3d} latency  {row['latency']}", flush=True)
            results.append(row)
    rows = []
    for r in results:
        h, t, lat = r.get("headless", {}), r.get("tui", {}), r.get("latency", {})
        rows.append([r["devices"], h.get("cpu_pct"), h.get("rss_mib"), h.get("all_live_s"),
                     len(h.get("not_connected", [])) if "not_connected" in h else None,
                     t.get("cpu_pct"), t.get("rss_mib"), t.get("output_bytes_per_s"),
                     lat.get("p50_ms"), lat.get("p95_ms"), r["loadavg"]])
    benchlib.print_table(["devices", "headless %core", "headless RSS MiB", "all live s",
                          "failed", "TUI %core", "TUI RSS MiB", "TUI B/s", "p50 ms", "p95 ms",
                          "load avg"], rows, title=f"fleet at 1 Hz, {args.window:.0f} s windows")
    path = benchlib.write_results(args.out, {"window_s": args.window, "results": results})
    print(f"results: {path.relative_to(benchlib.REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
