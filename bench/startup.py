"""Start-up time: `sparktui --version` / `--help`, and the first frame of `sparktui --demo`.

1. `--version` and `--help` (and `python -c print()` for scale): N runs each after one
   warm-up run, via subprocess; time to the first byte on stdout and to exit.
2. `sparktui --demo` in a private tmux server at 120x40: `capture-pane` every 10 ms
   from just before the pane is created; time until the shell first paints (the tab
   label "Devices" is on screen) and until the demo device's row reads `connected`.
   Then `q`, and the time until the process has exited.

    python bench/startup.py            # N=20, 5 demo runs
    python bench/startup.py --runs 5 --demo-runs 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import benchlib


def first_byte(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds to the first stdout byte, seconds to exit) of one run."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    proc.stdout.read(1)
    t_first = time.perf_counter() - t0
    proc.stdout.read()
    proc.wait()
    t_exit = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} exited with {proc.returncode}")
    return t_first, t_exit


def cli_timings(runs: int, env: dict[str, str]) -> dict[str, dict]:
    exe = benchlib.sparktui_command()
    cases = {
        "python -c print() (baseline)": [sys.executable, "-c", "print()"],
        "sparktui --version": [*exe, "--version"],
        "sparktui --help": [*exe, "--help"],
        # what the full-screen app imports before it can draw anything
        "python -c 'import sparktui.ui.app'": [sys.executable, "-c",
                                               "import sparktui.ui.app; print()"],
    }
    out = {}
    for name, cmd in cases.items():
        benchlib.wait_quiet()
        first_byte(cmd, env)  # warm-up: page cache, .pyc files
        firsts, exits = [], []
        for _ in range(runs):
            f, e = first_byte(cmd, env)
            firsts.append(f)
            exits.append(e)
        out[name] = {"first_output_s": benchlib.summary(firsts),
                     "exit_s": benchlib.summary(exits), "command": cmd}
    return out


def _demo_connected(screen: str) -> bool:
    return any("spark-demo" in line and "connected" in line and "reconnecting" not in line
               for line in screen.splitlines())


def demo_first_frame(runs: int, env: dict[str, str], poll: float = 0.01,
                     timeout: float = 60.0) -> list[dict]:
    tmux = benchlib.Tmux("bench-startup")
    results = []
    try:
        command = " ".join(benchlib.shell_quote(a) for a in
                           [*benchlib.sparktui_command(), "--demo"])
        for n in range(runs):
            name = f"demo{n}"
            benchlib.wait_quiet()
            t0 = time.perf_counter()
            tmux.new_session(name, f"exec {command}", env)
            painted = connected = None
            while connected is None:
                now = time.perf_counter() - t0
                if now > timeout:
                    raise TimeoutError(f"demo run {n}: no `connected` after {timeout:.0f} s;"
                                       f" screen:\n{tmux.capture(name)}")
                screen = tmux.capture(name)
                if "Pane is dead" in screen:
                    raise RuntimeError(f"demo run {n}: sparktui exited; screen:\n{screen}")
                if painted is None and "Devices" in screen:
                    painted = now
                if _demo_connected(screen):
                    connected = now
                    painted = painted if painted is not None else now
                else:
                    time.sleep(poll)
            tmux.send(name, "q", literal=True)
            t_quit = time.perf_counter()
            benchlib.wait_for(lambda name=name: tmux.pane_dead(name), 30, poll=0.01,
                              what="sparktui to exit after q")
            quit_s = time.perf_counter() - t_quit
            tmux.kill_session(name)
            results.append({"first_paint_s": painted, "connected_s": connected,
                            "quit_s": quit_s})
            print(f"  demo run {n + 1}: paint {painted:.3f} s, connected {connected:.3f} s,"
                  f" exit after q {quit_s:.3f} s", flush=True)
    finally:
        tmux.close()
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="sparktui start-up times")
    p.add_argument("--runs", type=int, default=20, help="runs of --version/--help (20)")
    p.add_argument("--demo-runs", type=int, default=5, help="runs of --demo (5)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sparktui-bench-") as tmp:
        # a config of its own: the developer's devices and settings stay out of it
        env = dict(os.environ, SPARKTUI_CONFIG=os.path.join(tmp, "config.toml"),
                   XDG_CONFIG_HOME=os.path.join(tmp, "xdg"),
                   XDG_DATA_HOME=os.path.join(tmp, "xdg-data"), TERM="tmux-256color")
        cli = cli_timings(args.runs, env)
        rows = [[name, r["first_output_s"]["median"] * 1000, r["first_output_s"]["p95"] * 1000,
                 r["exit_s"]["median"] * 1000] for name, r in cli.items()]
        benchlib.print_table(["command", "first output ms (median)", "p95 ms", "exit ms"],
                             rows, title=f"CLI start-up, N={args.runs}")
        print(f"\nsparktui --demo in tmux 120x40, {args.demo_runs} runs:")
        demo = demo_first_frame(args.demo_runs, env)
    demo_summary = {key: benchlib.summary([d[key] for d in demo])
                    for key in ("first_paint_s", "connected_s", "quit_s")}
    benchlib.print_table(
        ["--demo", "median ms", "max ms"],
        [[k, v["median"] * 1000, v["max"] * 1000] for k, v in demo_summary.items()],
        title="sparktui --demo")
    path = benchlib.write_results("startup", {
        "cli_runs": args.runs, "cli": cli, "demo_runs": demo, "demo": demo_summary,
        "demo_method": "tmux 120x40, capture-pane every 10 ms from before new-session"})
    print(f"results: {path.relative_to(benchlib.REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
