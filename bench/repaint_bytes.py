"""Bytes written to the terminal per second on Devices and Telemetry, from replayed ticks.

bench/tab_bytes.py measures with real sshds and the stand-in nvidia-smi, whose host
figures are this machine's own (its load average, CPU, memory): on a shared box they
move with whatever else runs, and two runs of one tree differ by 2x. This replays the
same scripted ticks instead (4 devices, 1 Hz, every figure moving as on a busy GB10),
to the real SparkApp headless at 120x40, and counts the escape sequences of every
screen update as tab_bytes.py does. Run it with each tree's PYTHONPATH to compare
trees: the figures are the same in every run, so a difference is the tree's.

The devices never connect (the tests' quiet app): their rows are dimmed, and the
Telemetry status line says so; that is the same in every tree.

    PYTHONPATH=$PWD python bench/repaint_bytes.py            # 20 ticks a tab
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from screen_bytes import ByteCounter, print_report

TABS = {"Devices": "1", "Telemetry": "2"}


def _tick(device: int, k: int):
    from tests.test_ui_telemetry import gb10, host, state

    t = 1000.0 + k
    wave = (math.sin(k / 4 + device) + 1) / 2  # 0..1, a few seconds a swing
    slow = (math.sin(k / 17 + device) + 1) / 2
    sample = host(t, available_gib=60 + 30 * slow, cache_gib=10 + 5 * wave)
    return state(f"spark-{device + 1}", t=t,
                 gpus=(gb10(t, util_gpu=round(95 * wave), temp_c=45 + 25 * slow,
                            power_w=12 + 45 * wave, sm_clock_mhz=1200 + 1700 * wave),),
                 host=sample)


async def measure(ticks: int, warmup: int, rows: int) -> list[tuple[str, float]]:
    from sparktui.ui.messages import TelemetryUpdated
    from tests.test_ui_telemetry import quiet_app

    devices = 4
    app = quiet_app(tuple(f"spark-{i + 1}" for i in range(devices)))
    counter = ByteCounter()
    results = []
    async with app.run_test(size=(120, 40)) as pilot:
        counter.wrap(app)
        k = 0
        for tab, key in TABS.items():
            await pilot.press(key)
            start = 0.0
            for n in range(warmup + ticks):
                if n == warmup:
                    counter.reset()
                    start = time.monotonic()
                due = time.monotonic() + 1.0
                for device in range(devices):
                    telemetry = _tick(device, k)
                    service = app.telemetry.get(telemetry.device)
                    if service is not None:  # history first, as the service does
                        service.history.record_gpu(telemetry.gpus[0])
                        service.history.record_host(telemetry.host)
                    app.post_message(TelemetryUpdated(telemetry))
                k += 1
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            wall = time.monotonic() - start
            report = counter.report(wall, rows)
            results.append((tab, report["bytes_per_s"]))
            print_report(f"{tab} ({ticks} ticks, {wall:.1f} s)", report)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="terminal bytes per second from replayed ticks")
    p.add_argument("--ticks", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rows", type=int, default=0,
                   help="print the N costliest screen rows and widgets")
    args = p.parse_args(argv)
    load = open("/proc/loadavg", encoding="ascii").read().split()[:3]
    print(f"load {' '.join(load)}", flush=True)
    asyncio.run(measure(args.ticks, args.warmup, args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
