"""Bytes the app writes to the terminal per second on each tab, with N real sshds.

The real SparkApp runs headless in this process (Textual's test driver composes
every frame as a terminal would get it); every screen update is rendered with a
truecolor Console into the escape sequences Textual would write, and counted.
After all devices are connected, each tab is shown in turn: --settle s, then a
--window s count. --rows prints, per tab, the screen rows that took the most bytes
and the text last written there: where a tab's bytes go (how the Devices total row
and the hidden Telemetry pane's footer repaints were found).

bench/peer.py measures the same in tmux (what really reaches a terminal, with
sparkrun beside it) for the Devices and Telemetry tabs; this script covers every
tab and says which rows.

    python bench/tab_bytes.py                 # 4 devices, every tab, 10 s windows
    python bench/tab_bytes.py --devices 1 --tabs Devices,Telemetry --rows
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import benchlib

TABS = {"Devices": "1", "Telemetry": "2", "Containers": "3", "Tunnels": "4", "Chat": "5"}
_MOVE = re.compile(r"(\x1b\[\d+;\d+H)")
_SGR = re.compile(r"\x1b\[[0-9;]*m")


async def measure(rig: benchlib.Rig, tmp: Path, tabs: list[str], settle: float,
                  window: float, rows_wanted: int) -> list[dict[str, object]]:
    os.environ["HOME"] = rig.home
    os.environ["XDG_DATA_HOME"] = str(tmp / "xdg-data")
    os.environ.pop("SSH_AUTH_SOCK", None)
    from rich.console import Console

    from sparktui.core.device import DeviceSpec, LinkState
    from sparktui.services.config import Config
    from sparktui.ui.app import SparkApp

    app = SparkApp(Config(path=tmp / "config.toml"), [DeviceSpec.parse(a) for a in rig.aliases],
                   theme_dirs=[benchlib.REPO_ROOT / "themes"])
    console = Console(color_system="truecolor", force_terminal=True, width=400)
    counting = [False]
    written = [0]
    per_row: collections.Counter[int] = collections.Counter()
    last_text: dict[int, str] = {}
    results = []
    async with app.run_test(size=(120, 40)) as pilot:
        display = app._display

        def count(screen, renderable) -> None:
            if counting[0] and hasattr(renderable, "render_segments"):
                data = renderable.render_segments(console)
                written[0] += len(data.encode())
                parts = _MOVE.split(data)
                for i in range(1, len(parts), 2):
                    row = int(parts[i][2:].split(";")[0])
                    body = parts[i + 1] if i + 1 < len(parts) else ""
                    per_row[row] += len(parts[i]) + len(body.encode())
                    last_text[row] = _SGR.sub("", body).strip()[:60]
            display(screen, renderable)

        app._display = count  # type: ignore[method-assign]
        deadline = time.monotonic() + 120
        while not all(link.status.state is LinkState.CONNECTED for link in app.fleet.links):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        for tab in tabs:
            await pilot.press(TABS[tab])
            await asyncio.sleep(settle)
            written[0] = 0
            per_row.clear()
            counting[0] = True
            start = time.monotonic()
            await asyncio.sleep(window)
            counting[0] = False
            wall = time.monotonic() - start
            top = [{"row": row, "bytes_per_s": round(b / wall), "last_text": last_text[row]}
                   for row, b in per_row.most_common(rows_wanted)]
            results.append({"tab": tab, "bytes_per_s": round(written[0] / wall),
                            "window_s": round(wall, 1), "top_rows": top})
            print(f"{tab:<11} {written[0] / wall:7.0f} B/s", flush=True)
            for entry in top:
                print(f"    row {entry['row']:>2}: {entry['bytes_per_s']:5d} B/s  "
                      f"{entry['last_text']!r}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="terminal bytes per second per tab")
    p.add_argument("--devices", type=int, default=4)
    p.add_argument("--tabs", default=",".join(TABS))
    p.add_argument("--settle", type=float, default=5.0, help="s on a tab before counting (5)")
    p.add_argument("--window", type=float, default=10.0, help="s counted per tab (10)")
    p.add_argument("--rows", action="store_true", help="print the costliest rows of each tab")
    p.add_argument("--out", default="tab_bytes")
    args = p.parse_args(argv)
    tabs = [t for t in args.tabs.split(",") if t]
    unknown = [t for t in tabs if t not in TABS]
    if unknown:
        p.error(f"unknown tabs {unknown}; choose from {list(TABS)}")
    load0 = open("/proc/loadavg", encoding="ascii").read().split()[:3]
    with tempfile.TemporaryDirectory() as tmp, benchlib.sshd_rig(args.devices) as rig:
        rows = asyncio.run(measure(rig, Path(tmp), tabs, args.settle, args.window,
                                   5 if args.rows else 0))
    load1 = open("/proc/loadavg", encoding="ascii").read().split()[:3]
    path = benchlib.write_results(args.out, {"devices": args.devices, "loadavg": [load0, load1],
                                             "rows": rows})
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
