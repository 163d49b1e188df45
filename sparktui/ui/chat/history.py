"""The saved conversations: open, rename, delete, export to Markdown."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from sparktui.core.sanitize import strip_control
from sparktui.services.conversations import Conversation, ConversationStore, to_markdown
from sparktui.ui.screens.confirm import ConfirmScreen
from sparktui.ui.widgets.worker_log import LogsWorkerFailures


@dataclass
class HistoryResult:
    open_id: int | None = None
    deleted: set[int] = field(default_factory=set)
    renamed: dict[int, str] = field(default_factory=dict)


def export_path(conversation: Conversation) -> Path:
    slug = "".join(c if c.isalnum() else "-" for c in conversation.title.lower())[:40]
    slug = "-".join(part for part in slug.split("-") if part) or "chat"
    return Path.home() / f"sparktui-chat-{conversation.id}-{slug}.md"


def write_export(path: Path, text: str) -> None:
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


class ChatHistoryScreen(LogsWorkerFailures, ModalScreen[HistoryResult]):
    """Lists conversations, newest first. Enter opens; r, d, e act on the highlighted one."""

    CSS_PATH = Path(__file__).with_suffix(".tcss")
    BINDINGS = [
        Binding("r", "rename", "Rename", id="chat_history.rename"),
        Binding("d", "delete", "Delete", id="chat_history.delete"),
        Binding("e", "export", "Export .md", id="chat_history.export"),
        Binding("escape,q", "close", "Close", id="chat_history.close"),
    ]

    def __init__(self, store: ConversationStore, current: int | None = None) -> None:
        super().__init__()
        self.store = store
        self.current = current
        self.conversations: list[Conversation] = []
        self.result = HistoryResult()
        self._editing: str | None = None  # "rename" or "export" while the field is open

    def compose(self) -> ComposeResult:
        with Vertical(id="chat-history-box"):
            yield Static("Conversations", id="chat-history-title")
            yield OptionList(id="chat-history-list")
            yield Input(id="chat-history-field", classes="-hidden")
            yield Static(Text("enter open · r rename · d delete · e export to Markdown · "
                              "esc close"), id="chat-history-help")
        yield Footer()  # this dialog's own keys, not the screen's behind it

    def on_mount(self) -> None:
        self.load()

    @work(exclusive=True, group="chat-history-load", exit_on_error=False)
    async def load(self) -> None:
        self.conversations = await self.store.list_conversations()
        options = self.query_one(OptionList)
        options.clear_options()
        for conversation in self.conversations:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.updated))
            label = Text()
            label.append(strip_control(conversation.title, max_line=70))
            label.append(f"  {when} · {conversation.message_count} messages", style="dim")
            if conversation.model:
                label.append(f" · {strip_control(conversation.model, max_line=40)}", style="dim")
            options.add_option(Option(label, id=str(conversation.id)))
        if not self.conversations:
            options.add_option(Option(Text("No saved conversations yet."), disabled=True))
        else:
            ids = [c.id for c in self.conversations]
            options.highlighted = ids.index(self.current) if self.current in ids else 0
        options.focus()

    def _highlighted(self) -> Conversation | None:
        options = self.query_one(OptionList)
        index = options.highlighted
        if index is None or index >= len(self.conversations):
            return None
        return self.conversations[index]

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.result.open_id = int(event.option.id)
            self.dismiss(self.result)

    # -- actions ---------------------------------------------------------------------
    def _open_field(self, kind: str, value: str) -> None:
        field_ = self.query_one("#chat-history-field", Input)
        self._editing = kind
        field_.placeholder = "new title" if kind == "rename" else "export to this file"
        field_.value = value
        field_.remove_class("-hidden")
        field_.focus()

    def action_rename(self) -> None:
        chosen = self._highlighted()
        if chosen is not None:
            self._open_field("rename", chosen.title)

    def action_export(self) -> None:
        chosen = self._highlighted()
        if chosen is not None:
            self._open_field("export", str(export_path(chosen)))

    def action_delete(self) -> None:
        chosen = self._highlighted()
        if chosen is None:
            return
        question = Text.assemble("Delete the conversation ", (chosen.title, "bold"),
                                 f" and its {chosen.message_count} messages?")

        def answered(yes: bool | None) -> None:
            if yes:
                self.delete(chosen.id)

        self.app.push_screen(ConfirmScreen("Delete conversation", question), callback=answered)

    @work(group="chat-history-edit", exit_on_error=False)
    async def delete(self, conversation_id: int) -> None:
        await self.store.delete(conversation_id)
        self.result.deleted.add(conversation_id)
        self.load()

    def action_close(self) -> None:
        if self._editing is not None:
            self._close_field()
            return
        self.dismiss(self.result)

    def _close_field(self) -> None:
        self._editing = None
        self.query_one("#chat-history-field", Input).add_class("-hidden")
        self.query_one(OptionList).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        chosen = self._highlighted()
        kind = self._editing
        self._close_field()
        if chosen is not None and kind is not None:
            self.apply(kind, chosen, event.value)

    @work(group="chat-history-edit", exit_on_error=False)
    async def apply(self, kind: str, chosen: Conversation, value: str) -> None:
        if kind == "rename":
            await self.store.rename(chosen.id, value)
            self.result.renamed[chosen.id] = value.strip() or "Untitled"
            self.load()
            return
        full = await self.store.get(chosen.id)
        if full is None:
            return
        path = Path(value.strip() or str(export_path(chosen))).expanduser()
        try:
            await asyncio.to_thread(write_export, path, to_markdown(full))
        except OSError as exc:
            self.notify(f"export failed: {exc.strerror or exc}", severity="error",
                        markup=False)
            return
        self.notify(f"exported to {path}", markup=False)
