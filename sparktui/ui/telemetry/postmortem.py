"""The post-mortem of a device that dropped: the cause, its evidence, the minutes before.

Shows a services.postmortem.PostMortem: the classification in words, the
kernel-log or pstore lines that say so (device text, shown literally), and the
flight recorder's minutes before the drop as charts (free for CUDA and
available memory; GPU utilisation). Read-only; `esc`/`q` goes back.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from sparktui.core.postmortem import Cause
from sparktui.core.sanitize import strip_control
from sparktui.services.postmortem import PostMortem
from sparktui.ui.telemetry.chart import Chart, ChartData

CAUSE_STYLE = {Cause.NETWORK: "bold green", Cause.CLEAN: "bold"}
#: (series key, chart title, unit)
CHARTS = (("free_for_cuda_gib", "free for CUDA (GiB)", "GiB"),
          ("gpu_util_pct", "GPU utilisation (%)", "%"))


def _stamp(wall: float | None) -> str:
    return "–" if wall is None else time.strftime("%H:%M:%S", time.localtime(wall))  # noqa: RUF001


class PostmortemScreen(ModalScreen[None]):
    CSS_PATH = Path(__file__).with_name("memory.tcss")
    BINDINGS = [Binding("escape,q", "close", "Back", id="postmortem.close")]

    def __init__(self, report: PostMortem) -> None:
        super().__init__()
        self.report = report

    def compose(self) -> ComposeResult:
        report = self.report
        verdict = report.verdict
        with Vertical(id="pm-box"):
            head = Text(no_wrap=False, end="")
            head.append(strip_control(report.device, max_line=40), "bold")
            head.append(" post-mortem: ")
            head.append(verdict.cause.value, CAUSE_STYLE.get(verdict.cause, "bold red"))
            head.append(f"\n{strip_control(verdict.summary, max_line=300)}\n", "")
            head.append(f"last seen {_stamp(report.last_seen_wall)} · back "
                        f"{_stamp(report.detected_wall)} · boot "
                        f"{(report.previous_boot or '?')[:8]} -> {(report.boot_id or '?')[:8]}",
                        "dim")
            yield Static(head, id="pm-head")
            lines = list(verdict.evidence) or [report.journal_problem or "no evidence lines"]
            body = Text(no_wrap=True, overflow="ellipsis", end="")
            for i, line in enumerate(lines):
                body.append(("\n" if i else "") + strip_control(line, max_line=300))
            with VerticalScroll(id="pm-evidence"):
                yield Static(body, id="pm-evidence-lines")
            with Horizontal(id="pm-charts"):
                for key, title, _ in CHARTS:
                    yield Chart(title, id=f"pm-chart-{key}")
            yield Static(Text("esc back · the charts are the recorded minutes before the drop",
                              "dim"), id="pm-keys")
        yield Footer()  # this dialog's own keys, not the screen's behind it

    def on_mount(self) -> None:
        series = self.report.series or {}
        times = series.get("t") or []
        if not times:
            for key, _, _ in CHARTS:
                chart = self.query_one(f"#pm-chart-{key}", Chart)
                chart.plot(ChartData((), time.time(), 60.0, (0.0, 1.0), "",
                                     empty_text="nothing was recorded before the drop"))
            return
        now = times[-1]
        window = max(60.0, now - times[0])
        for key, _, unit in CHARTS:
            values = series.get(key) or []
            points = tuple(zip(times, values, strict=False))
            known = [v for v in values if v is not None]
            top = max(known) if known else 1.0
            last = f"{known[-1]:.1f} {unit}" if known else "–"  # noqa: RUF001
            self.query_one(f"#pm-chart-{key}", Chart).plot(
                ChartData(points, now, window, (0.0, max(1.0, top * 1.1)), last), at_once=True)

    def action_close(self) -> None:
        self.dismiss(None)
