"""The logs of one container: the last lines, then new ones as they come.

Lines are kept (bounded) as Docker sent them and drawn through
`sanitize.ansi_to_text`: SGR colours stay colours, every other escape (cursor
moves, titles, hyperlinks) is removed, Rich markup stays literal text, and a
very long line is cut. The RichLog holds a bounded number of lines too, so a
chatty container cannot grow the UI without limit.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from pathlib import Path

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Footer, Input, RichLog, Static

from sparktui.core.docker_info import ContainerInfo
from sparktui.core.docker_logs import LogLine, short_timestamp
from sparktui.core.sanitize import ansi_to_text, safe_text, strip_control
from sparktui.services.container_logs import LogFollower
from sparktui.services.containers import ContainerService, DockerUnavailable
from sparktui.ui.widgets.footer_order import HelpKeyFirst
from sparktui.ui.widgets.worker_log import LogsWorkerFailures

DEFAULT_TAIL = 500
#: lines kept for re-drawing (toggles, search) and saving
MAX_KEPT = 20_000
#: lines the view holds at once
MAX_SHOWN = 5_000
#: a drawn line is cut here (the saved file keeps it whole, up to 64 KiB)
MAX_LINE_CHARS = 2_000



class FollowLog(RichLog):
    """A RichLog whose follow mode pauses the moment the user scrolls up to read.

    Following, each new line scrolled to the bottom: that yanked a reader of older
    lines back down. Scrolling up (keys, wheel, Home, PgUp) pauses it; G, End or f
    resumes it.
    """

    BINDINGS = [
        Binding("G,end", "follow_end", "Follow from the end", show=False, id="logs.end",
                tooltip="Jump to the newest line and follow again"),
        Binding("g,home", "read_top", "Oldest line", show=False, id="logs.top",
                tooltip="Jump to the oldest line (pauses follow)"),
        Binding("k", "scroll_up", "Up", show=False, id="logs.up"),
        Binding("j", "scroll_down", "Down", show=False, id="logs.down"),
    ]

    class FollowChanged(Message):
        """Follow mode went on or off: the status line says which."""

    def _pause(self) -> None:
        if self.auto_scroll:
            self.auto_scroll = False
            self.post_message(self.FollowChanged())

    def action_scroll_up(self) -> None:
        self._pause()
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self._pause()
        super().action_page_up()

    def action_read_top(self) -> None:
        self._pause()
        self.scroll_home(animate=False)

    def action_follow_end(self) -> None:
        self.auto_scroll = True
        self.scroll_end(animate=False)
        self.post_message(self.FollowChanged())

    def on_mouse_scroll_up(self, _event: events.MouseScrollUp) -> None:
        self._pause()

class ContainerLogsScreen(LogsWorkerFailures, HelpKeyFirst):
    CSS_PATH = Path(__file__).with_suffix(".tcss")
    HELP_SCOPE = "Container logs"
    BINDINGS = [
        Binding("escape,q", "close", "Back", id="logs.close"),
        Binding("slash", "search", "Search", id="logs.search"),
        Binding("t", "toggle_timestamps", "Timestamps", id="logs.timestamps"),
        Binding("w", "toggle_wrap", "Wrap", id="logs.wrap"),
        Binding("f", "toggle_follow", "Follow", id="logs.follow"),
        Binding("ctrl+s", "save", "Save", id="logs.save"),
    ]

    def __init__(self, service: ContainerService, info: ContainerInfo, *,
                 tail: int = DEFAULT_TAIL) -> None:
        super().__init__()
        self.service = service
        self.info = info
        self.tail = tail
        self.lines: deque[LogLine] = deque(maxlen=MAX_KEPT)
        self.timestamps = False
        self.search = ""
        self.ended: str | None = None
        self.finished = False
        self._follower: LogFollower | None = None

    def compose(self) -> ComposeResult:
        title = Text("Logs of ", style="bold")
        title.append_text(safe_text(self.info.name, style="bold"))
        title.append(f"  {self.info.short_id} on {self.service.device}", style="dim")
        yield Static(title, id="logs-title")
        yield FollowLog(id="logs-view", max_lines=MAX_SHOWN, markup=False, highlight=False,
                        wrap=False, auto_scroll=True)
        yield Input(placeholder="search (enter: back to the log, escape: clear)",
                    id="logs-search")
        yield Input(id="logs-save-path")
        yield Static(id="logs-status")
        yield Footer()

    @property
    def view(self) -> RichLog:
        return self.query_one("#logs-view", RichLog)

    def on_mount(self) -> None:
        self.query_one("#logs-search", Input).display = False
        self.query_one("#logs-save-path", Input).display = False
        self._follower = LogFollower(self.service, self.info.id, on_lines=self._on_lines,
                                     on_end=self._on_end, tail=self.tail, follow=True)
        try:
            self._follower.start()
        except DockerUnavailable as exc:
            self._on_end(str(exc))
        self.view.focus()
        self._update_status()

    def on_unmount(self) -> None:
        if self._follower is not None:
            self._follower.close()

    # -- lines ------------------------------------------------------------------------------
    def _on_lines(self, lines: list[LogLine]) -> None:
        self.lines.extend(lines)
        view = self.view
        for line in lines:
            if self._shown(line):
                view.write(self._render_line(line))
        self._update_status()

    def on_follow_log_follow_changed(self, _message: FollowLog.FollowChanged) -> None:
        self._update_status()

    def _on_end(self, error: str | None) -> None:
        self.finished = True
        self.ended = error
        self._update_status()

    def _shown(self, line: LogLine) -> bool:
        return not self.search or self.search.lower() in strip_control(line.text).lower()

    def _render_line(self, line: LogLine) -> Text:
        text = Text()
        if self.timestamps and line.timestamp:
            text.append(short_timestamp(line.timestamp) + " ", style="dim")
        text.append_text(ansi_to_text(line.text, keep_newlines=False, max_line=MAX_LINE_CHARS))
        if self.search:
            text.highlight_words([self.search], style="reverse", case_sensitive=False)
        return text

    def redraw(self) -> None:
        view = self.view
        view.clear()
        shown = [line for line in self.lines if self._shown(line)][-MAX_SHOWN:]
        for line in shown:
            view.write(self._render_line(line))
        self._update_status()

    def _update_status(self) -> None:
        view = self.view
        parts = []
        if self.finished:
            parts.append(f"stream ended: {self.ended}" if self.ended else "stream ended")
        else:
            parts.append("following" if view.auto_scroll else "paused (f: follow)")
        shown = sum(1 for line in self.lines if self._shown(line)) if self.search \
            else len(self.lines)
        parts.append(f"{shown} lines" if not self.search
                     else f"{shown} of {len(self.lines)} lines match")
        parts.append("timestamps on" if self.timestamps else "timestamps off")
        parts.append("wrap on" if view.wrap else "wrap off")
        text = safe_text(" · ".join(parts), style="bold red" if self.ended else "dim")
        self.query_one("#logs-status", Static).update(text)

    # -- actions ----------------------------------------------------------------------------
    def action_close(self) -> None:
        self.dismiss(None)

    def action_toggle_timestamps(self) -> None:
        self.timestamps = not self.timestamps
        self.redraw()

    def action_toggle_wrap(self) -> None:
        self.view.wrap = not self.view.wrap
        self.redraw()

    def action_toggle_follow(self) -> None:
        view = self.view
        view.auto_scroll = not view.auto_scroll
        if view.auto_scroll:
            view.scroll_end(animate=False)
        self._update_status()

    def action_search(self) -> None:
        field = self.query_one("#logs-search", Input)
        field.display = True
        field.focus()

    def action_save(self) -> None:
        field = self.query_one("#logs-save-path", Input)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = strip_control(self.info.name).replace("/", "_") or self.info.short_id
        field.value = str(Path.cwd() / f"{self.service.device}-{name}-{stamp}.log")
        field.display = True
        field.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "logs-search":
            self.search = event.value
            self.redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "logs-search":
            if not event.value:
                event.input.display = False
            self.view.focus()
        elif event.input.id == "logs-save-path":
            event.input.display = False
            self.view.focus()
            if event.value.strip():
                self.save_to(Path(event.value.strip()).expanduser())

    def on_key(self, event) -> None:
        # escape in a field closes the field (and clears a search), not the screen
        focused = self.focused
        if event.key == "escape" and isinstance(focused, Input):
            event.stop()
            event.prevent_default()
            if focused.id == "logs-search":
                focused.value = ""
            focused.display = False
            self.view.focus()

    def plain_lines(self) -> list[str]:
        out = []
        for line in self.lines:
            text = strip_control(line.text)
            if self.timestamps and line.timestamp:
                text = f"{line.timestamp} {text}"
            out.append(text)
        return out

    @work(group="logs-save", exit_on_error=False)
    async def save_to(self, path: Path) -> None:
        lines = self.plain_lines()

        def write() -> None:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + ("\n" if lines else ""))

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            self.notify(f"could not save to {path}: {exc.strerror or exc}", title="save",
                        severity="error", markup=False)
            return
        self.notify(f"saved {len(lines)} lines to {path}", title="save", markup=False)
