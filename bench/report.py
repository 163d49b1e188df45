"""Print the latest results (bench/results/*.json) as the Markdown tables of BENCHMARKS.md.

    python bench/report.py               # every results file there is
    python bench/report.py tui_cost      # one of them

After a rerun, paste the tables over the old ones in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import sys

import benchlib


def _row(cells: list[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(headers: list[str], rows: list[list[object]]) -> str:
    lines = [_row(headers), _row(["---"] * len(headers)), *(_row(r) for r in rows)]
    return "\n".join(lines)


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f} %"


def _kib(value: float | None) -> str:
    return "- (the run ended before the buffers filled)" if value is None else f"{value:.0f} KiB"


def startup(data: dict) -> str:
    rows = [[f"`{name}`", f"{r['first_output_s']['median'] * 1000:.0f} ms",
             f"{r['first_output_s']['p95'] * 1000:.0f} ms",
             f"{r['exit_s']['median'] * 1000:.0f} ms"] for name, r in data["cli"].items()]
    out = [f"CLI, N={data['cli_runs']} (after one warm-up run):", "",
           _table(["command", "first output, median", "p95", "exit, median"], rows), ""]
    d = data["demo"]
    out += [f"`sparktui --demo` in tmux 120x40, {len(data['demo_runs'])} runs:", "",
            _table(["milestone", "median", "max"], [
                ["first paint (tab labels on screen)",
                 f"{d['first_paint_s']['median'] * 1000:.0f} ms",
                 f"{d['first_paint_s']['max'] * 1000:.0f} ms"],
                ["demo device `connected`", f"{d['connected_s']['median'] * 1000:.0f} ms",
                 f"{d['connected_s']['max'] * 1000:.0f} ms"],
                ["exit after `q`", f"{d['quit_s']['median'] * 1000:.0f} ms",
                 f"{d['quit_s']['max'] * 1000:.0f} ms"]])]
    return "\n".join(out)


def collector_cpu(data: dict) -> str:
    rows = []
    for r in data["runs"]:
        a, b = r["sparktui"], r["poll"]
        rows.append([r["devices"], "sparktui: streams + 3 s process poll",
                     _pct(a["client_cpu_pct"], 2), _pct(a["device_cpu_pct"], 2), "1.00"])
        s = r.get("sparktui_streams_only")
        if s:
            rows.append([r["devices"], "sparktui, process poll off (streams only)",
                         _pct(s["client_cpu_pct"], 2), _pct(s["device_cpu_pct"], 2), "1.00"])
        rows.append([r["devices"], "poll per tick: 2 x `ssh` per device per tick",
                     _pct(b["client_cpu_pct"]), _pct(b["device_cpu_pct"]),
                     f"{b['ticks_per_s']:.2f}"])
        if b["ticks_per_s"] < 0.95:
            rows.append([r["devices"], "poll per tick, scaled to a true 1 Hz (CPU per tick)",
                         _pct(b["client_cpu_pct_per_hz"]), _pct(b["device_cpu_pct_per_hz"]),
                         "(cannot keep up)"])
            rows.append([r["devices"], "**ratio poll at 1 Hz / sparktui**",
                         f"**{b['client_cpu_pct_per_hz'] / a['client_cpu_pct']:.0f}x**",
                         f"**{b['device_cpu_pct_per_hz'] / a['device_cpu_pct']:.1f}x**", ""])
        else:
            rows.append([r["devices"], "**ratio poll / sparktui**",
                         f"**{r['ratio_client']:.0f}x**", f"**{r['ratio_device']:.1f}x**", ""])
    return _table(["devices", "collector", "client CPU (% of a core)",
                   "device CPU (% of a core)", "samples/s per device"], rows)


def tui_cost(data: dict) -> str:
    rows = []
    for r in data["results"]:
        for tab, w in r["tabs"].items():
            dev = w["device_cpu_pct"]
            redraw = w.get("redraw", {}).get("rows_touched_per_s") or {}
            rows.append([r["config"], tab + (" (placeholder pane)" if w["placeholder"] else ""),
                         _pct(w["cpu_pct"], 2), f"{w['output_bytes_per_s'] / 1000:.1f} KB/s",
                         f"{max(redraw.values()):.1f}/s" if redraw else "-",
                         "in-process" if dev is None else _pct(dev, 2),
                         f"{w['rss_mib']:.0f} MiB"])
    return _table(["config", "tab", "sparktui CPU", "terminal output",
                   "busiest row rewritten", "device CPU", "RSS"], rows)


def memory_soak(data: dict) -> str:
    samples = data["samples"]
    step = 30 if data["duration_s"] <= 180 else 60
    picks = [s for s in samples if s["t_s"] % step < data["every_s"] / 2 or s is samples[-1]]
    rows = [[f"{s['t_s']:.0f} s", f"{s['rss_bytes'] / 2**20:.2f} MiB"] for s in picks]
    return "\n".join([
        _table(["time since ready", "RSS"], rows), "",
        f"growth from the first sample after the buffers filled ({data['history_minutes']:g}"
        f" min) to the end: {_kib(data['growth_after_fill_kib'])}; collector "
        f"{data['collector_cpu_pct']:.1f} % of a core at 10 Hz, device "
        f"{data['device_cpu_pct']:.1f} %"])


REPORTS = {"startup": startup, "collector_cpu": collector_cpu, "tui_cost": tui_cost,
           "memory_soak": memory_soak}


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(REPORTS)
    for name in names:
        path = benchlib.RESULTS_DIR / f"{name}.json"
        if not path.exists():
            print(f"## {name}: no results yet (python bench/{name}.py)\n")
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        m = data["machine"]
        print(f"## {name}  ({m['when']}, {m['cpus']} x {m['cpu_model']}, "
              f"Python {m['python']}, sparktui at {m['git_head']})\n")
        print(REPORTS[name](data) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
