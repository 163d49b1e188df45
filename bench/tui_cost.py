"""Cost of the full TUI while it sits on a tab: CPU of the sparktui process and the bytes
it writes to its terminal.

sparktui runs in a private tmux server at 120x40 (TERM=tmux-256color). Every byte the
app writes to its pty is copied to a file with `pipe-pane -o 'cat >> FILE'`. Per tab
(Devices: key `1`, Telemetry: key `2`): switch, let it settle (--settle, 5 s), then
over --duration s (60) read the process's user+sys CPU from /proc/PID/stat and the
growth of that file.

Configurations (--configs, default `demo,sshd1,sshd4`):
  demo    `sparktui --demo`: the simulated Spark runs INSIDE the sparktui process (same
          event loop), so its CPU includes the simulated device's side.
  sshdN   `sparktui spark-1 ... spark-N`: N real OpenSSH sshds on loopback with the
          stand-in nvidia-smi; the sparktui figure is the client alone, and the devices'
          CPU (each sshd in a cgroup of its own) is reported beside it.

    python bench/tui_cost.py                  # about 7 minutes
    python bench/tui_cost.py --quick          # 15 s windows
    python bench/tui_cost.py --configs demo   # just the demo
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

import benchlib

TABS = (("devices", "1"), ("telemetry", "2"))
PLACEHOLDER_MARK = "Coming here"  # the Telemetry placeholder's text, until the pane lands


CURSOR_TO = re.compile(rb"\x1b\[(\d+);(\d+)H")


def redraw_profile(data: bytes, seconds: float) -> dict:
    """What the app rewrote: cursor moves (one per changed run of cells, roughly) per
    second, and how often it moved to each screen row (1-based)."""
    rows = Counter(int(m.group(1)) for m in CURSOR_TO.finditer(data))
    total = sum(rows.values())
    return {"cursor_moves_per_s": total / seconds,
            "rows_touched_per_s": {str(r): round(n / seconds, 2)
                                   for r, n in sorted(rows.items())}}


def _connected_rows(screen: str, names: list[str]) -> bool:
    lines = screen.splitlines()
    return all(any(name in line and "connected" in line and "reconnecting" not in line
                   for line in lines) for name in names)


def run_config(config: str, duration: float, settle: float, tmp: Path,
               rig: benchlib.Rig | None) -> dict:
    tmux = benchlib.Tmux("bench-tui")
    try:
        env = {"SPARKTUI_CONFIG": str(tmp / "config.toml"),
               "XDG_CONFIG_HOME": str(tmp / "xdg"), "XDG_DATA_HOME": str(tmp / "xdg-data"),
               "TERM": "tmux-256color", "PATH": os.environ.get("PATH", "")}
        if rig is not None:
            env.update(HOME=rig.home, PYTHONPATH=str(benchlib.REPO_ROOT))
            args, names = list(rig.aliases), list(rig.aliases)
        else:
            args, names = ["--demo"], ["spark-demo"]
        command = " ".join(benchlib.shell_quote(a) for a in
                           [*benchlib.sparktui_command(), *args])
        benchlib.wait_quiet()
        out_file = tmp / f"{config}.pty"
        tmux.new_session("tui", f"exec {command}", env)
        tmux.pipe_to("tui", out_file)
        pid = tmux.pane_pid("tui")
        benchlib.wait_for(lambda: _connected_rows(tmux.capture("tui"), names), 60,
                          poll=0.2, what=f"{', '.join(names)} to show connected")
        windows = {}
        for tab, key in TABS:
            tmux.send("tui", key, literal=True)
            time.sleep(settle)
            busy0 = benchlib.machine_busy_seconds()
            cpu0 = benchlib.proc_cpu_seconds(pid)
            bytes0 = out_file.stat().st_size if out_file.exists() else 0
            dev0 = rig.device_seconds() if rig else None
            t0 = time.monotonic()
            time.sleep(duration)
            t1 = time.monotonic()
            cpu1 = benchlib.proc_cpu_seconds(pid)
            bytes1 = out_file.stat().st_size if out_file.exists() else 0
            dev1 = rig.device_seconds() if rig else None
            busy = 100 * (benchlib.machine_busy_seconds() - busy0) / (t1 - t0)
            if cpu0 is None or cpu1 is None:
                raise RuntimeError(f"sparktui (pid {pid}) exited during the {tab} window:\n"
                                   + tmux.capture("tui"))
            wall = t1 - t0
            screen = tmux.capture("tui")
            with open(out_file, "rb") as fh:
                fh.seek(bytes0)
                profile = redraw_profile(fh.read(bytes1 - bytes0), wall)
            windows[tab] = {
                "cpu_pct": 100 * (cpu1 - cpu0) / wall,
                "output_bytes_per_s": (bytes1 - bytes0) / wall,
                "device_cpu_pct": (100 * (dev1 - dev0) / wall
                                   if dev0 is not None and dev1 is not None else None),
                "wall_s": wall,
                "machine_busy_pct": busy,
                "rss_mib": (benchlib.proc_rss_bytes(pid) or 0) / 2**20,
                "placeholder": tab == "telemetry" and PLACEHOLDER_MARK in screen,
                "redraw": profile,
                "screen": screen,
            }
            print(f"  {config} {tab}: {windows[tab]['cpu_pct']:.2f} % core, "
                  f"{windows[tab]['output_bytes_per_s']:.0f} B/s, "
                  f"{profile['cursor_moves_per_s']:.0f} cursor moves/s"
                  + (" (placeholder pane)" if windows[tab]["placeholder"] else ""), flush=True)
        tmux.send("tui", "q", literal=True)
        with contextlib.suppress(TimeoutError):
            benchlib.wait_for(lambda: tmux.pane_dead("tui"), 30, what="sparktui to exit")
        return {"config": config, "devices": names, "tabs": windows,
                "exited_after_q": tmux.pane_dead("tui")}
    finally:
        tmux.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="CPU and terminal output of the running TUI")
    p.add_argument("--configs", default="demo,sshd1,sshd4",
                   help="comma-separated: demo, sshdN (N real sshd devices)")
    p.add_argument("--duration", type=float, default=60.0, help="window per tab, s (60)")
    p.add_argument("--settle", type=float, default=5.0, help="s after a tab switch (5)")
    p.add_argument("--quick", action="store_true", help="15 s windows")
    p.add_argument("--out", default="tui_cost", help="results file name (no .json)")
    args = p.parse_args(argv)
    duration = 15.0 if args.quick else args.duration
    results = []
    for config in [c.strip() for c in args.configs.split(",") if c.strip()]:
        print(f"{config}: {duration:.0f} s per tab ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="sparktui-bench-") as tmp:
            if config == "demo":
                results.append(run_config(config, duration, args.settle, Path(tmp), None))
            elif config.startswith("sshd") and config[4:].isdigit():
                with benchlib.sshd_rig(int(config[4:])) as rig:
                    results.append(run_config(config, duration, args.settle, Path(tmp), rig))
            else:
                raise SystemExit(f"unknown configuration {config!r} (demo or sshdN)")
    rows = []
    for r in results:
        for tab, w in r["tabs"].items():
            dev = w["device_cpu_pct"]
            rows.append([r["config"], tab + (" (placeholder)" if w["placeholder"] else ""),
                         w["cpu_pct"], w["output_bytes_per_s"],
                         "in-process" if dev is None else f"{dev:.2f}", w["rss_mib"]])
    benchlib.print_table(["config", "tab", "sparktui %core", "output B/s", "device %core",
                          "RSS MiB"], rows,
                         title=f"TUI at 120x40 in tmux, {duration:.0f} s per tab")
    path = benchlib.write_results(args.out, {"duration_s": duration, "settle_s": args.settle,
                                             "terminal": "tmux 120x40, TERM=tmux-256color",
                                             "results": results})
    print(f"results: {path.relative_to(benchlib.REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
