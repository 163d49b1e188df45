"""One message of a chat, as shown in the Chat tab.

User text is shown as typed (plain text, never Rich markup). An answer is
Markdown, streamed in with Textual's MarkdownStream, which batches appends so
a fast model never makes the screen fall behind. Model output is device text:
it arrives here already stripped of escape sequences (sparktui.core.openai_chat
.TextCleaner) and Markdown treats `[bold]` as literal text.
"""

from __future__ import annotations

import asyncio
import contextlib

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from sparktui.core.openai_stats import describe_figures
from sparktui.core.sanitize import strip_control
from sparktui.services.conversations import Message

#: appends to the Markdown per second at most. Each append costs tens of milliseconds
#: of parsing, mounting and layout whatever its length (bench/chat_render.py: ~30 ms
#: for a 2000-token answer here), so the CPU follows appends per second, not the
#: token rate. 8 a second still reads as live; a long answer slows down further.
APPENDS_PER_S = 8
#: seconds of wait per block already in the document, and the longest wait
WAIT_PER_BLOCK_S = 0.002
MAX_WAIT_S = 0.4


class BatchedStream:
    """Pieces of an answer in (cheap, synchronous), batched appends to a MarkdownStream out.

    The first piece is shown at once; later ones are gathered and appended at
    most APPENDS_PER_S times a second.
    """

    def __init__(self, stream: MarkdownStream, per_second: float = APPENDS_PER_S) -> None:
        self._stream = stream
        self._markdown = stream.markdown_widget
        self._interval = 1 / per_second
        self._pending: list[str] = []
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def write(self, text: str) -> None:
        if text:
            self._pending.append(text)
            self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            text = "".join(self._pending)
            self._pending.clear()
            await self._stream.write(text)
            blocks = len(self._markdown.children)
            await asyncio.sleep(min(MAX_WAIT_S, max(self._interval, WAIT_PER_BLOCK_S * blocks)))

    async def stop(self) -> None:
        """Append what is left and stop: the Markdown then holds the whole answer."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._pending:
            await self._stream.write("".join(self._pending))
            self._pending.clear()
        await self._stream.stop()


ROLE_LABELS = {"user": "you", "assistant": "model", "error": "error"}
STATUS_MARKS = {"stopped": "■ stopped", "error": "✗ ended by an error",
                "streaming": "… streaming", "done": ""}


class ChatMessageView(Vertical, can_focus=True):
    """A message; focus it (tab, click) and press c to copy its text."""

    HELP_SCOPE = "a message"

    BINDINGS = [
        Binding("c", "copy", "Copy", id="chat.copy_message"),
    ]

    def __init__(self, message: Message, **kwargs) -> None:
        classes = f"chat-message -{message.role}"
        super().__init__(classes=classes, **kwargs)
        self.message = message
        self._stream: BatchedStream | None = None

    def compose(self) -> ComposeResult:
        message = self.message
        label = ROLE_LABELS.get(message.role, message.role)
        if message.model and message.role == "assistant":
            label = f"{label} · {strip_control(message.model, max_line=60)}"
        yield Static(Text(label), classes="chat-role")
        if message.role == "assistant":
            yield Markdown(message.content, classes="chat-body")
        else:
            yield Static(Text(strip_control(message.content, keep_newlines=True)),
                         classes="chat-body")
        yield Static(Text(self._footer_text()), classes="chat-footer")

    def _footer_text(self) -> str:
        message = self.message
        bits = [STATUS_MARKS.get(message.status, message.status)]
        bits.append(describe_figures(message.figures))
        return "  ".join(bit for bit in bits if bit)

    def refresh_footer(self) -> None:
        footer = self.query_one(".chat-footer", Static)
        text = self._footer_text()
        footer.update(Text(text))
        footer.display = bool(text)
        self.set_class(self.message.status in ("stopped", "error"), "-cut-short")

    def on_mount(self) -> None:
        self.refresh_footer()

    # -- streaming ------------------------------------------------------------------
    def start_stream(self) -> BatchedStream:
        self._stream = BatchedStream(Markdown.get_stream(self.query_one(Markdown)))
        return self._stream

    async def end_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.stop()

    # -- actions ---------------------------------------------------------------------
    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.message.content)
        self.app.notify(f"copied {len(self.message.content)} characters", timeout=3)
