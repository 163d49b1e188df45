"""sparktui against sparkrun 0.4.2's `cluster monitor`, measured in one run.

The same N real OpenSSH sshds on loopback (the stand-in nvidia-smi, scenario gb10),
whose user has a ~/.bashrc as costly as a real one (a loop burning --bashrc-cpu s,
0.12 by default, as `pyenv init` does; it also appends a line per shell start),
watched at 1 Hz by, in turn:

  sparkrun-tui      `sparkrun cluster monitor --hosts spark-1,... -i 1` in tmux 120x40
  sparktui-devices  `sparktui spark-1 ...` in tmux 120x40, Devices tab
  sparktui-telemetry  the same process, Telemetry tab (the GPU-process list on screen)
  sparkrun-json     `sparkrun cluster monitor ... --json -i 1`, stdout to a file
  sparktui-watch    `sparktui status --json --watch 1 spark-1 ...`, stdout to a file
  poll              a poll-per-tick collector (bench/collector_cpu.py's poller: a new
                    `ssh` per command per tick), the second reference

Each watcher runs in a cgroup of its own from its first instruction (so the `ssh`
processes sparkrun starts count); a TUI's figure adds the tmux server's CPU (the
terminal). Each sshd is in its own cgroup too: device CPU counts the connection's
sshd processes, the login shells with their .bashrc, the loops and the stand-ins,
exited ones included. Over each window: both CPUs, bytes to the terminal (or stdout),
SSH execs (sshd's `Starting session: command` lines) and shell starts per minute,
and the load average. Rounds alternate the order, so both tools see the same load.

sparkrun is installed from PyPI into its own venv made with pyenv's Python 3.12
(cached in /var/cache/sparktui-bench/sparkrun-venv); its code is never copied here.

    python bench/peer.py                     # 4 devices, 2 rounds, 30 s windows
    python bench/peer.py --devices 1 --rounds 1 --window 20
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib

HERE = Path(__file__).resolve().parent
VENV = Path(os.environ.get("SPARKRUN_VENV", "/var/cache/sparktui-bench/sparkrun-venv"))
PYTHON312 = Path.home() / ".pyenv" / "versions" / "3.12.1" / "bin" / "python"
SPARKRUN_VERSION = "0.4.2"


def ensure_sparkrun() -> Path:
    exe = VENV / "bin" / "sparkrun"
    if exe.exists():
        return exe
    python = str(PYTHON312) if PYTHON312.exists() else shutil.which("python3.12")
    if not python:
        raise SystemExit("bench: sparkrun needs Python 3.12 (pyenv install 3.12.1)")
    VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q",
                    f"sparkrun=={SPARKRUN_VERSION}"], check=True)
    return exe


def write_sparkrun_config(rig: benchlib.Rig) -> None:
    """sparkrun reads ~/.config/sparkrun/config.yaml; its ssh options point OpenSSH at the
    rig's client config and key (OpenSSH finds ~/.ssh by passwd, not $HOME)."""
    folder = Path(rig.home, ".config", "sparkrun")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(json.dumps({"ssh": {"options": rig.openssh_args()}}))


def loadavg() -> str:
    with open("/proc/loadavg", encoding="ascii") as fh:
        return " ".join(fh.read().split()[:3])


class Window:
    """Counters sampled at the start and end of a measurement window."""

    def __init__(self, rig: benchlib.Rig, watcher: benchlib.CpuMeter,
                 extra_cpu=lambda: 0.0, out_file: Path | None = None) -> None:
        self.rig, self.watcher, self.extra_cpu, self.out_file = rig, watcher, extra_cpu, out_file

    def sample(self) -> dict[str, float]:
        return {"t": time.monotonic(), "watcher": self.watcher.seconds(),
                "terminal": self.extra_cpu(), "device": self.rig.device_seconds(),
                "bytes": (self.out_file.stat().st_size
                          if self.out_file and self.out_file.exists() else 0),
                "execs": self.rig.exec_sessions(), "shells": self.rig.shell_starts(),
                "busy": benchlib.machine_busy_seconds()}

    def measure(self, seconds: float) -> dict[str, object]:
        load0 = loadavg()
        a = self.sample()
        time.sleep(seconds)
        b = self.sample()
        wall = b["t"] - a["t"]
        n = len(self.rig.servers)
        return {
            "watcher_cpu_pct": 100 * (b["watcher"] - a["watcher"]) / wall,
            "terminal_cpu_pct": 100 * (b["terminal"] - a["terminal"]) / wall,
            "device_cpu_pct_all": 100 * (b["device"] - a["device"]) / wall,
            "device_cpu_pct_each": 100 * (b["device"] - a["device"]) / wall / n,
            "output_bytes_per_s": (b["bytes"] - a["bytes"]) / wall,
            "execs_per_min_per_device": 60 * (b["execs"] - a["execs"]) / wall / n,
            "shell_starts_per_min_per_device": 60 * (b["shells"] - a["shells"]) / wall / n,
            "machine_busy_pct": 100 * (b["busy"] - a["busy"]) / wall,
            "loadavg_start": load0, "loadavg_end": loadavg(), "wall_s": wall,
        }


def tmux_server_cpu(tmux: benchlib.Tmux):
    pid = int(tmux.cmd("display-message", "-p", "-t", "idle", "#{pid}").strip())
    return lambda: benchlib.proc_cpu_seconds(pid) or 0.0


def start_in_tmux(tmux: benchlib.Tmux, name: str, argv: list[str], env: dict[str, str],
                  meter: benchlib.CpuMeter, out_file: Path) -> None:
    """The pane's shell puts itself in the watcher's cgroup, then execs the watcher."""
    command = " ".join(benchlib.shell_quote(a) for a in argv)
    procs = benchlib.shell_quote(str(meter.procs_file))
    tmux.new_session(name, f"echo $$ > {procs}; exec {command}", env)
    tmux.pipe_to(name, out_file)


def run_tui(label: str, argv: list[str], env: dict[str, str], rig: benchlib.Rig,
            tabs: list[tuple[str, str | None]], args, tmp: Path) -> dict[str, dict]:
    tmux = benchlib.Tmux("bench-peer")
    meter = benchlib.CpuMeter(None, f"sparktui-bench-{os.getpid()}-{label}")
    out = tmp / f"{label}.pty"
    try:
        start_in_tmux(tmux, "w", argv, env, meter, out)
        time.sleep(args.settle)
        results = {}
        window = Window(rig, meter, tmux_server_cpu(tmux), out)
        for tab, key in tabs:
            if key:
                tmux.send("w", key, literal=True)
                time.sleep(args.settle / 2)
            results[tab] = window.measure(args.window)
            results[tab]["screen"] = tmux.capture("w")
            report(tab, results[tab])
        return results
    finally:
        tmux.close()
        meter.close()


def run_piped(label: str, argv: list[str], env: dict[str, str], rig: benchlib.Rig,
              args, tmp: Path) -> dict:
    meter = benchlib.CpuMeter(None, f"sparktui-bench-{os.getpid()}-{label}")
    out = tmp / f"{label}.out"
    procs = str(meter.procs_file)

    def join() -> None:  # in the child, before exec: everything it starts is counted
        with open(procs, "w") as fh:
            fh.write(f"{os.getpid()}\n")

    with open(out, "wb") as sink:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink,
                                stderr=subprocess.DEVNULL, env=env, preexec_fn=join,
                                cwd=benchlib.REPO_ROOT)
    try:
        time.sleep(args.settle)
        if proc.poll() is not None:
            raise RuntimeError(f"{label} exited early ({proc.returncode}): "
                               f"{out.read_text(errors='replace')[-500:]}")
        result = Window(rig, meter, out_file=out).measure(args.window)
        report(label, result)
        return result
    finally:
        benchlib.terminate(proc)
        meter.close()


def report(label: str, r: dict) -> None:
    watcher = r["watcher_cpu_pct"] + r["terminal_cpu_pct"]
    print(f"  {label:20s} watcher {watcher:6.2f} %  device/each "
          f"{r['device_cpu_pct_each']:6.2f} %  out {r['output_bytes_per_s']:7.0f} B/s  "
          f"execs/min/dev {r['execs_per_min_per_device']:5.1f}  load {r['loadavg_start']}",
          flush=True)


def one_round(rig: benchlib.Rig, sparkrun: Path, args, tmp: Path, reverse: bool) -> dict:
    hosts = ",".join(rig.aliases)
    env = rig.env(TERM="tmux-256color", SPARKTUI_CONFIG=str(tmp / "config.toml"),
                  XDG_CONFIG_HOME=str(tmp / "xdg"), XDG_DATA_HOME=str(tmp / "xdg-data"))
    sparktui = benchlib.sparktui_command()
    poller = [sys.executable, str(HERE / "collector_cpu.py"), "--role", "poller",
              "--duration", "100000", "--warmup", "0", "--interval", "1",
              "--ssh-args", json.dumps(rig.openssh_args()), *rig.aliases]
    steps = [
        ("sparkrun", lambda: {"sparkrun-tui": run_tui(
            "sparkrun-tui", [str(sparkrun), "cluster", "monitor", "--hosts", hosts, "-i", "1"],
            env, rig, [("sparkrun-tui", None)], args, tmp)["sparkrun-tui"]}),
        ("sparktui", lambda: {f"sparktui-{tab}": r for tab, r in run_tui(
            "sparktui-tui", [*sparktui, *rig.aliases], env, rig,
            [("devices", "1"), ("telemetry", "2")], args, tmp).items()}),
        ("sparkrun-json", lambda: {"sparkrun-json": run_piped(
            "sparkrun-json", [str(sparkrun), "cluster", "monitor", "--hosts", hosts, "--json",
                              "-i", "1"], env, rig, args, tmp)}),
        ("sparktui-watch", lambda: {"sparktui-watch": run_piped(
            "sparktui-watch", [*sparktui, "status", "--json", "--watch", "1", *rig.aliases],
            env, rig, args, tmp)}),
    ]
    if not args.no_poll:
        steps.append(("poll", lambda: {"poll": run_piped("poll", poller, env, rig, args, tmp)}))
    # alternate: sparkrun then sparktui in one round, sparktui then sparkrun in the next
    pairs = [steps[0:2], steps[2:4], steps[4:]]
    out: dict[str, dict] = {}
    for pair in pairs:
        for _name, run in (reversed(pair) if reverse else pair):
            out.update(run())
    return out


def bashrc_cost(rig: benchlib.Rig) -> float:
    """CPU s of one login shell start with the rig's .bashrc, measured here."""
    bashrc = Path(rig.servers[0].remote_home or "", ".bashrc")
    script = f". {bashrc}" if bashrc.is_file() else ":"  # --bashrc-cpu 0: no .bashrc
    before = benchlib.resource.getrusage(benchlib.resource.RUSAGE_CHILDREN)
    subprocess.run(["bash", "-c", script], env=dict(os.environ, HOME=str(tmp_home())),
                   check=True)
    after = benchlib.resource.getrusage(benchlib.resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def tmp_home() -> Path:
    path = Path(tempfile.gettempdir(), "sparktui-bench-bashrc-probe")
    path.mkdir(exist_ok=True)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="sparktui vs sparkrun cluster monitor, one run")
    p.add_argument("--devices", type=int, default=4)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--window", type=float, default=30.0, help="s per measurement (30)")
    p.add_argument("--settle", type=float, default=10.0, help="s after a start (10)")
    p.add_argument("--bashrc-cpu", type=float, default=0.12,
                   help="CPU s each login shell's .bashrc burns (0.12, like pyenv init)")
    p.add_argument("--no-poll", action="store_true", help="skip the poll-per-tick reference")
    p.add_argument("--out", default="peer")
    args = p.parse_args(argv)
    sparkrun = ensure_sparkrun()
    rounds = []
    with benchlib.sshd_rig(args.devices, bashrc_cpu_s=args.bashrc_cpu) as rig, \
            tempfile.TemporaryDirectory(prefix="sparktui-bench-") as tmp_text:
        write_sparkrun_config(rig)
        measured_bashrc = bashrc_cost(rig)
        print(f"{args.devices} devices, .bashrc costs {measured_bashrc:.3f} s CPU per shell; "
              f"{args.window:.0f} s windows", flush=True)
        for n in range(args.rounds):
            print(f"round {n + 1}", flush=True)
            rounds.append(one_round(rig, sparkrun, args, Path(tmp_text), reverse=bool(n % 2)))
    summary = summarise(rounds)
    print_summary(summary, args)
    path = benchlib.write_results(args.out, {
        "devices": args.devices, "window_s": args.window, "settle_s": args.settle,
        "bashrc_cpu_s_target": args.bashrc_cpu, "bashrc_cpu_s_measured": measured_bashrc,
        "sparkrun": SPARKRUN_VERSION, "summary": summary, "rounds": rounds})
    print(f"results: {path.relative_to(benchlib.REPO_ROOT)}")
    return 0


KEYS = ("watcher_cpu_pct", "terminal_cpu_pct", "device_cpu_pct_each", "output_bytes_per_s",
        "execs_per_min_per_device", "shell_starts_per_min_per_device", "machine_busy_pct")


def summarise(rounds: list[dict]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in rounds[0]:
        runs = [r[name] for r in rounds if name in r]
        out[name] = {k: sum(run[k] for run in runs) / len(runs) for k in KEYS}
        out[name]["loadavg"] = " / ".join(run["loadavg_start"] for run in runs)
    return out


def print_summary(summary: dict[str, dict[str, float]], args) -> None:
    rows = []
    for name, s in summary.items():
        rows.append([name, s["watcher_cpu_pct"] + s["terminal_cpu_pct"],
                     s["device_cpu_pct_each"], s["device_cpu_pct_each"] * args.devices,
                     s["output_bytes_per_s"], s["execs_per_min_per_device"], s["loadavg"]])
    benchlib.print_table(["watcher", "watcher %core (app+terminal)", "device %core each",
                          "devices all", "out B/s", "execs/min/device", "load avg"], rows,
                         title=f"{args.devices} devices at 1 Hz, mean of {args.rounds} rounds")
    for ours, theirs in (("sparktui-telemetry", "sparkrun-tui"),
                         ("sparktui-devices", "sparkrun-tui"),
                         ("sparktui-watch", "sparkrun-json")):
        if ours in summary and theirs in summary:
            a, b = summary[ours], summary[theirs]
            device = a["device_cpu_pct_each"] / max(1e-9, b["device_cpu_pct_each"])
            watcher = ((a["watcher_cpu_pct"] + a["terminal_cpu_pct"])
                       / max(1e-9, b["watcher_cpu_pct"] + b["terminal_cpu_pct"]))
            print(f"  {ours} / {theirs}: device {device:.3f}, watcher {watcher:.3f}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
