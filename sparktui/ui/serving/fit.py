"""Will it fit, now: a model's weights and KV cache against the device's memory, shown worked.

The weights are the model's size on disk, the KV cache comes from its
config.json (read once, with one exec, when the screen opens), and the budget
is the device's MemFree and MemAvailable from the telemetry host stream as
they are now. Changing the context or concurrency re-weighs at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, Static

from sparktui.core.fit import FitInput, weigh
from sparktui.core.model_cache import CachedModel
from sparktui.core.sanitize import strip_control
from sparktui.services.fit_check import memory_now
from sparktui.services.models_disk import ModelStore
from sparktui.services.telemetry import TelemetryService
from sparktui.ui.widgets.worker_log import LogsWorkerFailures

VERDICT_STYLE = {"yes": "bold green", "tight": "bold yellow", "no": "bold red",
                 "unknown": "bold"}


class FitScreen(LogsWorkerFailures, ModalScreen[None]):
    CSS_PATH = Path(__file__).with_name("fit.tcss")
    BINDINGS = [Binding("escape", "dismiss", "Back", id="fit.back", tooltip="Close")]

    def __init__(self, store: ModelStore, model: CachedModel,
                 telemetry: TelemetryService | None) -> None:
        super().__init__()
        self.store = store
        self.model = model
        self.telemetry = telemetry
        self.config: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="fit-box"):
            yield Static(Text(f"Will {self.model.name} fit on {self.store.link.name} now?",
                              style="bold"), id="fit-title")
            with Horizontal(id="fit-inputs"):
                yield Label("context")
                yield Input("8192", id="fit-context", type="integer")
                yield Label("concurrent")
                yield Input("1", id="fit-concurrency", type="integer")
                yield Label("KV dtype")
                yield Input("bf16", id="fit-dtype")
            yield Static(id="fit-result")
        yield Footer()  # this dialog's own keys, not the screen's behind it

    def on_mount(self) -> None:
        self.load_config()

    @work(group="fit-config", exclusive=True, exit_on_error=False)
    async def load_config(self) -> None:
        self.query_one("#fit-result", Static).update("reading config.json…")
        try:
            self.config = await self.store.read_config(self.model)
        except Exception as exc:  # weighed without the KV cache, and the verdict says so
            self.log.warning(f"reading config.json of {self.model.name}: {exc!r}")
        self.show()

    def on_input_changed(self, _event: Input.Changed) -> None:
        self.show()

    def _number(self, selector: str, default: int) -> int:
        try:
            return max(1, int(self.query_one(selector, Input).value))
        except ValueError:
            return default

    def show(self) -> None:
        free, available = memory_now(self.telemetry)
        verdict = weigh(FitInput(
            self.model.name, self.model.size_bytes, self.config,
            context_tokens=self._number("#fit-context", 8192),
            concurrency=self._number("#fit-concurrency", 1),
            kv_dtype=self.query_one("#fit-dtype", Input).value.strip() or "bf16",
            mem_free=free, mem_available=available))
        text = Text(end="")
        text.append(f"{verdict.verdict.upper()}", VERDICT_STYLE.get(verdict.verdict, "bold"))
        text.append(f"  {strip_control(verdict.reason, max_line=200)}\n\n")
        text.append("\n".join(strip_control(line, max_line=200)
                              for line in verdict.arithmetic), style="dim")
        self.query_one("#fit-result", Static).update(text)
