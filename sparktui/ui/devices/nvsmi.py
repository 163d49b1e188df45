"""`nvidia-smi -q` of one device, a section at a time (a picker on the left).

Read once when the screen opens, again on `r`, by a `@work` method that fills
the picker itself. The report is device text: shown via safe_text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from sparktui.core.facts import NvsmiSection, tidy_nvsmi_body
from sparktui.core.sanitize import safe_text
from sparktui.services.facts import FactsError
from sparktui.services.link import DeviceLink
from sparktui.ui.widgets.worker_log import LogsWorkerFailures


class NvsmiScreen(LogsWorkerFailures, ModalScreen[None]):
    CSS_PATH = Path(__file__).with_name("screens.tcss")
    BINDINGS = [
        Binding("r", "reload", "Read again", id="device_nvsmi.reload"),
        Binding("escape,q", "close", "Close", id="device_nvsmi.close"),
    ]

    def __init__(self, link: DeviceLink, facts: Any) -> None:
        super().__init__()
        self.link = link
        self.facts = facts
        self.sections: list[NvsmiSection] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="nvsmi-box", classes="device-box"):
            title = Text()
            title.append_text(safe_text(self.link.name, style="bold"))
            title.append("  nvidia-smi -q   (r read again · esc close)", style="dim")
            yield Static(title, classes="device-box-title")
            with Horizontal(id="nvsmi-columns"):
                yield OptionList(id="nvsmi-sections")
                with VerticalScroll(id="nvsmi-body-scroll"):
                    yield Static(Text("reading nvidia-smi -q…", style="dim"), id="nvsmi-body")
        yield Footer()  # this dialog's own keys, not the screen's behind it

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.read_sections()

    @work(name="nvsmi", group="nvsmi", exclusive=True, exit_on_error=False)
    async def read_sections(self) -> None:
        try:
            sections = await self.facts.nvsmi_sections(self.link)
        except FactsError as exc:
            self.query_one("#nvsmi-body", Static).update(safe_text(str(exc)))
            return
        self.sections = sections
        picker = self.query_one("#nvsmi-sections", OptionList)
        picker.clear_options()
        picker.add_options([Option(safe_text(s.title), id=str(i))
                            for i, s in enumerate(self.sections)])
        if self.sections:
            picker.highlighted = 0
            self.show_section(0)
        picker.focus()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_index is not None:
            self.show_section(event.option_index)

    def show_section(self, index: int) -> None:
        if 0 <= index < len(self.sections):
            section = self.sections[index]
            self.query_one("#nvsmi-body", Static).update(
                safe_text(tidy_nvsmi_body(section.body) or "(empty)", keep_newlines=True,
                          max_line=300))

    def action_close(self) -> None:
        self.dismiss(None)
