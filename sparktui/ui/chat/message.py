"""One message of a chat, as shown in the Chat tab.

User text is shown as typed (plain text, never Rich markup). An answer is
Markdown once its blocks are complete. While it streams, the blocks still being
written are a plain-text tail (StreamTail) under the Markdown, updated at most
FRAMES_PER_S times a second whatever the token rate; complete blocks move into
the Markdown when the tail has to grow anyway, or after MAX_PLAIN_S. Why: each
Markdown append parses, mounts and styles widgets and lays out every block of
the conversation (bench/chat_render.py, pyinstrument: layout and mounting were
most of the app's time), while a frame of the tail repaints the cells of one
widget that changed. Model output is device text: it arrives
here already stripped of escape sequences (sparktui.core.openai_chat
.TextCleaner), Markdown treats `[bold]` as literal text and the tail is a
rich Text, never markup.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.visual import visualize
from textual.widgets import Markdown, Static

from sparktui.core.aio import within
from sparktui.core.openai_stats import describe_figures
from sparktui.core.sanitize import strip_control
from sparktui.services.conversations import Message
from sparktui.ui.widgets.clipboard import copy_text, not_copied_reason
from sparktui.ui.widgets.repaint import LiveStatic

#: redraws of a streaming answer's plain-text tail per second, at most: tokens that
#: arrive between two frames are drawn together
FRAMES_PER_S = 10
#: complete blocks move from the tail into the Markdown when the tail has to lay the
#: conversation out anyway (its reserve is full), or when they have been plain text
#: this long: each move parses and mounts blocks and lays the conversation out
#: (twice: Textual settles sizes), so moves ride on the layouts the tail needs
MAX_PLAIN_S = 2.0
#: the fewest blank lines the tail reserves below its text: a frame whose new text fits
#: in the reserve repaints the tail's changed cells alone, with no layout of the
#: conversation (a layout re-arranges every block of every message on the screen)
TAIL_STEP_LINES = 4
#: seconds of growth the tail reserves room for, at the rate the text has been growing
RESERVE_S = 1.0
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def complete_blocks(fenced: bool, text: str) -> tuple[int, bool]:
    """How much of `text` is complete blocks, and whether a code fence is open after them.

    `fenced`: a fence is open where `text` starts. Blocks end at a blank line outside
    a fence; what follows the last such line may still grow. A list or a quote that
    goes on after the blank line is no harm: Markdown.append parses its last block
    again with the new text.
    """
    cut, cut_fenced = 0, fenced
    at = 0
    for line in text.splitlines(keepends=True):
        at += len(line)
        if not line.endswith("\n"):
            break  # the line being written
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and not line.strip():
            cut, cut_fenced = at, fenced
    return cut, cut_fenced


class StreamTail(LiveStatic):
    """The text of a streaming answer not yet in its Markdown, as plain text.

    It reserves blank lines below the text for what comes next: about RESERVE_S
    seconds of growth at the rate it has been growing, at least TAIL_STEP_LINES,
    at most a third of the screen. Text that fits in the reserve repaints the
    tail's changed cells alone; only a full reserve (or a commit of blocks to the
    Markdown, in the same frame) lays the conversation out.
    """

    _lines = 0  # text lines at the last frame
    _lines_per_s = 0.0  # how fast the text grows, smoothed over frames
    _frame_at = 0.0

    def fits(self, text: str) -> bool:
        """`text` fits in the lines the tail holds now: showing it needs no layout."""
        return self.display and self.size.width > 0 and visualize(self, Text(text)).get_height(
            self.styles, self.size.width) <= self.size.height

    def show_text(self, text: str) -> None:
        if not text:
            self.styles.min_height = None
            self._lines, self._lines_per_s = 0, 0.0
            self.display = False
            return
        content = Text(text)
        if not self.display or self.size.width == 0:
            self.display = True
            self._frame_at = time.monotonic()
            self.update(content)  # a layout: the tail appears
            return
        with self._quietly():
            self.update(content, layout=False)
        # measured from the new text: get_content_height would read the visual that
        # Textual cached for the text before (the quiet update keeps that cache)
        lines = visualize(self, content).get_height(self.styles, self.size.width)
        now = time.monotonic()
        if lines > self._lines and now > self._frame_at:  # not a frame that committed
            rate = (lines - self._lines) / (now - self._frame_at)
            self._lines_per_s += (rate - self._lines_per_s) / 4
        self._lines, self._frame_at = lines, now
        most = max(TAIL_STEP_LINES, self.app.size.height // 3)
        reserved = self.size.height
        if lines <= reserved < lines + most:
            self.repaint_changed()
            return
        wanted = round(self._lines_per_s * RESERVE_S)
        self.styles.min_height = lines + min(most, max(TAIL_STEP_LINES, wanted))
        self.refresh(layout=True)


class StreamingBody:
    """Pieces of an answer in (cheap, synchronous); a plain tail and Markdown blocks out.

    The first piece is drawn at once; later ones are gathered and drawn at most
    FRAMES_PER_S times a second. Complete blocks go from the tail into the
    Markdown when the tail is full or after MAX_PLAIN_S, and all of the text when the
    answer ends: the Markdown then holds the whole answer and the tail is hidden.
    """

    def __init__(self, markdown: Markdown, tail: StreamTail) -> None:
        self._markdown = markdown
        self._tail = tail
        self._pending: list[str] = []
        self._open = ""  # text not yet in the Markdown: shown by the tail
        self._fenced = False  # a code fence is open at the end of the Markdown's text
        self._last_commit = time.monotonic()
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def text(self) -> str:
        """All of the answer written so far (Markdown, tail and not yet drawn)."""
        return self._markdown.source + self._open + "".join(self._pending)

    def write(self, text: str) -> None:
        if text:
            self._pending.append(text)
            self._wake.set()

    async def _run(self) -> None:
        # never cancelled mid-append: stop() sets _closing and waits for the last frame
        while not self._closing.is_set():
            await self._wake.wait()
            self._wake.clear()
            await self._frame()
            with contextlib.suppress(TimeoutError):  # the frame interval, cut short by stop()
                await within(self._closing.wait(), 1 / FRAMES_PER_S)

    async def _frame(self) -> None:
        self._open += "".join(self._pending)
        self._pending.clear()
        now = time.monotonic()
        text = self._open.strip("\n")
        if now - self._last_commit >= MAX_PLAIN_S or not self._tail.fits(text):
            cut, fenced = complete_blocks(self._fenced, self._open)
            if cut:
                self._last_commit = now
                done, self._open, self._fenced = self._open[:cut], self._open[cut:], fenced
                # one frame on the terminal: never the blocks twice (tail and Markdown)
                with self._markdown.app.batch_update():
                    await self._markdown.append(done)
                    self._show_tail()
                return
        self._show_tail()

    def _show_tail(self) -> None:
        self._tail.show_text(self._open.strip("\n"))

    async def stop(self) -> None:
        """Move everything into the Markdown and hide the tail."""
        self._closing.set()
        self._wake.set()
        await self._task
        rest = self._open + "".join(self._pending)
        self._open = ""
        self._pending.clear()
        if rest:
            await self._markdown.append(rest)
        self._show_tail()


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
        self._stream: StreamingBody | None = None

    def compose(self) -> ComposeResult:
        message = self.message
        label = ROLE_LABELS.get(message.role, message.role)
        if message.model and message.role == "assistant":
            label = f"{label} · {strip_control(message.model, max_line=60)}"
        yield Static(Text(label), classes="chat-role")
        if message.role == "assistant":
            yield Markdown(message.content, classes="chat-body")
            yield StreamTail(classes="chat-tail")
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
        for tail in self.query(".chat-tail"):
            tail.display = False

    # -- streaming ------------------------------------------------------------------
    def start_stream(self) -> StreamingBody:
        self._stream = StreamingBody(self.query_one(Markdown), self.query_one(StreamTail))
        return self._stream

    async def end_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.stop()

    # -- actions ---------------------------------------------------------------------
    def action_copy(self) -> None:
        count = len(self.message.content)
        if copy_text(self, self.message.content):
            self.app.notify(f"copied {count} characters", timeout=3)
        else:
            self.app.notify(f"{count} characters kept for pasting in sparktui only: "
                            f"{not_copied_reason(self)}", severity="warning", timeout=6,
                            markup=False)
