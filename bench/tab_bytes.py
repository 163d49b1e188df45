"""Bytes the app writes to the terminal per second on each tab, with N real sshds.

The real SparkApp runs headless in this process (Textual's test driver composes
every frame as a terminal would get it); every screen update is rendered with a
truecolor Console into the escape sequences Textual would write, and counted.
After all devices are connected, each tab is shown in turn: --settle s, then a
--window s count. --rows prints, per tab, the screen rows that took the most bytes
and the text last written there, and the widgets they were written for
(bench/screen_bytes.py): where a tab's bytes go (how the Devices total row and the
hidden Telemetry pane's footer repaints were found).

bench/peer.py measures the same in tmux (what really reaches a terminal, with
sparkrun beside it) for the Devices and Telemetry tabs; this script covers every
tab and says which rows.

    python bench/tab_bytes.py                 # 4 devices, every tab, 10 s windows
    python bench/tab_bytes.py --devices 1 --tabs Devices,Telemetry --rows
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import benchlib
from screen_bytes import ByteCounter, print_report

TABS = {"Devices": "1", "Telemetry": "2", "Containers": "3", "Tunnels": "4", "Chat": "5",
        "Serving": "6"}


async def measure(rig: benchlib.Rig, tmp: Path, tabs: list[str], settle: float,
                  window: float, rows_wanted: int,
                  size: tuple[int, int] = (120, 40)) -> list[dict[str, object]]:
    os.environ["HOME"] = rig.home
    os.environ["XDG_DATA_HOME"] = str(tmp / "xdg-data")
    os.environ.pop("SSH_AUTH_SOCK", None)
    from sparktui.core.device import DeviceSpec, LinkState
    from sparktui.services.config import Config
    from sparktui.ui.app import SparkApp

    app = SparkApp(Config(path=tmp / "config.toml"), [DeviceSpec.parse(a) for a in rig.aliases],
                   theme_dirs=[benchlib.REPO_ROOT / "themes"])
    counter = ByteCounter()
    counter.counting = False
    results = []
    async with app.run_test(size=size) as pilot:
        counter.wrap(app)
        deadline = time.monotonic() + 120
        while not all(link.status.state is LinkState.CONNECTED for link in app.fleet.links):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        for tab in tabs:
            await pilot.press(TABS[tab])
            await asyncio.sleep(settle)
            counter.reset()
            counter.counting = True
            start = time.monotonic()
            await asyncio.sleep(window)
            counter.counting = False
            wall = time.monotonic() - start
            report = counter.report(wall, rows_wanted)
            results.append({"tab": tab, "window_s": round(wall, 1), **report})
            print_report(tab, report)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="terminal bytes per second per tab")
    p.add_argument("--devices", type=int, default=4)
    p.add_argument("--tabs", default=",".join(TABS))
    p.add_argument("--settle", type=float, default=5.0, help="s on a tab before counting (5)")
    p.add_argument("--window", type=float, default=10.0, help="s counted per tab (10)")
    p.add_argument("--rows", action="store_true", help="print the costliest rows of each tab")
    p.add_argument("--size", default="120x40",
                   help="columns x rows (120x40; a tmux pane of bench/peer.py is 120x39)")
    p.add_argument("--out", default="tab_bytes")
    args = p.parse_args(argv)
    tabs = [t for t in args.tabs.split(",") if t]
    unknown = [t for t in tabs if t not in TABS]
    if unknown:
        p.error(f"unknown tabs {unknown}; choose from {list(TABS)}")
    load0 = open("/proc/loadavg", encoding="ascii").read().split()[:3]
    with tempfile.TemporaryDirectory() as tmp, benchlib.sshd_rig(args.devices) as rig:
        columns, lines = (int(n) for n in args.size.split("x"))
        rows = asyncio.run(measure(rig, Path(tmp), tabs, args.settle, args.window,
                                   5 if args.rows else 0, (columns, lines)))
    load1 = open("/proc/loadavg", encoding="ascii").read().split()[:3]
    path = benchlib.write_results(args.out, {"devices": args.devices, "loadavg": [load0, load1],
                                             "rows": rows})
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
