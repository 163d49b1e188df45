"""The memory view: a GB10's memory as CUDA sees it, the load guard, and the reclaim actions.

Opened from the Telemetry tab (`m`) for the focused device. Every figure is
labelled in words; "free for CUDA now" (MemFree) stands next to "available
after reclaim" (MemAvailable) with a sparkline of the last minute, because on
a GB10 page cache counts against what CUDA can get. `c` drops caches, `C`
compacts (both ask first, naming the device, and are refused in read-only
mode), `g` cycles the load guard (auto / on / off), `P` shows the device's
last post-mortem. Redrawn on every telemetry tick of the device.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from sparktui.core.events import Severity
from sparktui.core.sanitize import strip_control
from sparktui.core.units import NO_VALUE
from sparktui.services.audit import ReadOnlyError
from sparktui.services.gb10 import Gb10Services
from sparktui.services.memory_actions import ACTIONS, COMPACT, DROP_CACHES
from sparktui.services.telemetry import DeviceTelemetry, TelemetryService
from sparktui.ui.screens.confirm import ConfirmScreen
from sparktui.ui.widgets.worker_log import LogsWorkerFailures

log = logging.getLogger(__name__)

GIB = 1024**3
SPARK = "▁▂▃▄▅▆▇█"
GUARD_MODES = ("auto", "on", "off")
LABEL_WIDTH = 40
SPARK_WIDTH = 24


def gib(value: int | None) -> str:
    return NO_VALUE if value is None else f"{value / GIB:.1f} GiB"


def sparkline(values: list[float], width: int = 30) -> str:
    values = values[-width:]
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARK[min(7, int((v - low) / span * 7.999))] for v in values)


class MemoryScreen(LogsWorkerFailures, ModalScreen[None]):
    CSS_PATH = Path(__file__).with_name("memory.tcss")
    BINDINGS = [
        Binding("c", "reclaim('drop-caches')", "Drop caches", id="memory.drop_caches",
                tooltip="sync, then echo 3 > /proc/sys/vm/drop_caches (asks first)"),
        Binding("C", "reclaim('compact')", "Compact", id="memory.compact",
                tooltip="echo 1 > /proc/sys/vm/compact_memory (asks first)"),
        Binding("g", "cycle_guard", "Guard", id="memory.guard",
                tooltip="Load guard: auto (loads started here) / on / off"),
        Binding("P", "postmortem", "Post-mortem", id="memory.postmortem"),
        Binding("escape,q", "close", "Back", id="memory.close"),
    ]

    def __init__(self, service: TelemetryService, gb10: Gb10Services, *,
                 read_only: bool) -> None:
        super().__init__()
        self.service = service
        self.gb10 = gb10
        self.read_only = read_only
        self.device = service.link.name
        self._free: deque[float] = deque(maxlen=60)
        self._last_t: float | None = None
        self._unsubscribe = None

    def compose(self) -> ComposeResult:
        with Vertical(id="memory-box"):
            yield Static(id="memory-body")
            yield Static(id="memory-keys")
        yield Footer()  # this dialog's own keys, not the screen's behind it

    def on_mount(self) -> None:
        self._unsubscribe = self.service.subscribe(self._on_telemetry)
        self._on_telemetry(self.service.latest)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _on_telemetry(self, state: DeviceTelemetry) -> None:
        truth = state.memory_truth
        if truth is not None and truth.free_for_cuda is not None and (
                not self._free or state.t != self._last_t):
            self._free.append(truth.free_for_cuda / GIB)
            self._last_t = state.t
        self.query_one("#memory-body", Static).update(self.render_body(state))
        self.query_one("#memory-keys", Static).update(self._keys_text())

    # -- drawing ---------------------------------------------------------------------------
    def render_body(self, state: DeviceTelemetry) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        text.append(strip_control(self.device, max_line=40), "bold")
        text.append(" · memory as the GB10 sees it (CUDA's free = MemFree)\n", "dim")
        truth = state.memory_truth
        if truth is None:
            text.append("waiting for the host stream's first block…", "dim")
            return text
        free_line = (f"{gib(truth.free_for_cuda):>10}  "
                     f"{sparkline(list(self._free), SPARK_WIDTH)}")
        rows = [("Free for CUDA now (MemFree)", free_line, "bold")]
        rows += [(label, f"{gib(value):>10}", "") for label, value in truth.rows()
                 if label != "Free for CUDA now (MemFree)"]
        swap_total = truth.swap_total
        for label, value, style in rows:
            if label == "Swap used" and swap_total:
                value = f"{value} of {gib(swap_total)}"
            text.append(f"{label:<{LABEL_WIDTH}}", "dim")
            text.append(value + "\n", style)
        psi = truth.pressure
        text.append(f"{'Memory pressure (PSI avg10/avg60)':<{LABEL_WIDTH}}", "dim")
        if psi is None:
            text.append(f"{NO_VALUE} (no /proc/pressure on this kernel)\n")
        else:
            def pair(line) -> str:
                return NO_VALUE if line is None else f"{line.avg10:.0f} %/{line.avg60:.0f} %"
            text.append(f"some {pair(psi.some)} · full {pair(psi.full)}\n")
        frag = truth.fragmentation
        text.append(f"{'Large free blocks (buddyinfo)':<{LABEL_WIDTH}}", "dim")
        text.append(NO_VALUE + "\n" if frag is None else
                    f"{frag.blocks} of order {frag.order}+\n",
                    "bold red" if frag is not None and frag.exhausted else "")
        host = state.host
        if host is not None and host.rails:
            rails = " · ".join(f"{strip_control(r.label, max_line=12)} {r.watts:.0f} W"
                               for r in host.rails[:4])
            hot = {True: " · PROCHOT!", False: "", None: ""}[host.prochot]
            text.append(f"{'Power rails (spbm)':<{LABEL_WIDTH - 20}}", "dim")
            text.append(rails + hot + "\n")
        if state.reason_seconds:
            held = ", ".join(f"{name} {secs:.0f} s" for _, name, secs
                             in sorted(state.reason_seconds, key=lambda r: -r[2])[:3])
            text.append(f"{'Clocks held back':<{LABEL_WIDTH - 20}}", "dim")
            text.append(held + "\n")
        width = max(20, self.size.width - 4)
        guard = self.gb10.guard(self.device)
        text.append(_fit(guard.describe() if guard else "load guard unavailable", width)
                    + "\n", "bold" if guard is not None and guard.active else "")
        for warning in truth.warnings(int(self.gb10.settings.guard_free_floor_gib * GIB)):
            text.append(_fit("⚠ " + warning, width) + "\n", "bold yellow")
        for event in state.events[-3:]:  # one line each: the newest must stay on screen
            style = {Severity.ALARM: "bold red", Severity.WARNING: "yellow"}.get(
                event.severity, "dim")
            line = f"{_clock(event.wall)} {strip_control(event.text, max_line=300)}"
            text.append(_fit(line, width) + "\n", style)
        return text

    def _keys_text(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        if self.read_only:
            text.append("read-only: no drop/compact/guard · ", "yellow")
        else:
            text.append("c drop caches · C compact · g guard · ", "dim")
        text.append("P post-mortem · esc back", "dim")
        return text

    # -- actions ----------------------------------------------------------------------------
    def _refuse(self, what: str) -> None:
        self.notify(f"read-only mode: sparktui does not {what} on {self.device} (start it "
                    "without --read-only)", title="refused", severity="warning", markup=False)

    def action_reclaim(self, action: str) -> None:
        _, _, words = ACTIONS[action]
        if self.read_only:
            self._refuse(words.replace("ing", ""))
            return
        what = "Drop caches" if action == DROP_CACHES else "Compact memory"
        command = ("sync; echo 3 > /proc/sys/vm/drop_caches" if action == DROP_CACHES
                   else "echo 1 > /proc/sys/vm/compact_memory")
        question = Text.assemble(f"{what} on ", (self.device, "bold"), "?\n\n",
                                 (command, "italic"), "\n\nRuns as root through sudo -n "
                                 "(never a password prompt).")

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._run(action), group="memory-action",
                                name=f"{action} {self.device}", exit_on_error=False)

        self.app.push_screen(ConfirmScreen(f"{what} on {self.device}", question),
                             callback=answered)

    async def _run(self, action: str) -> None:
        actions = self.gb10.actions(self.device)
        if actions is None:
            return
        try:
            result = await actions.run(action)
        except ReadOnlyError as exc:
            self.notify(str(exc), title="refused", severity="warning", markup=False)
            return
        self.notify(strip_control(result.message, max_line=400),
                    title="done" if result.ok else "failed",
                    severity="information" if result.ok else "error",
                    timeout=6 if result.ok else 30, markup=False)

    def action_cycle_guard(self) -> None:
        guard = self.gb10.guard(self.device)
        if guard is None:
            return
        mode = GUARD_MODES[(GUARD_MODES.index(guard.mode) + 1) % len(GUARD_MODES)]
        try:
            guard.set_mode(mode)
        except ReadOnlyError:
            self._refuse("run the load guard")
            return
        self.notify(guard.describe(), title=f"load guard {mode}", markup=False)
        self._on_telemetry(self.service.latest)

    def action_postmortem(self) -> None:
        from sparktui.ui.telemetry.postmortem import PostmortemScreen

        report = self.gb10.latest_report(self.device)
        if report is None:
            self.notify(f"no post-mortem for {self.device} yet: one is made when it comes "
                        "back after a reboot", markup=False)
            return
        self.app.push_screen(PostmortemScreen(report))

    def action_close(self) -> None:
        self.dismiss(None)


def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[:width - 1] + "…"


def _clock(wall: float) -> str:
    import time

    return time.strftime("%H:%M:%S", time.localtime(wall))


__all__ = ["COMPACT", "DROP_CACHES", "MemoryScreen"]
