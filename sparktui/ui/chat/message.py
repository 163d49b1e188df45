"""One message of a chat, as shown in the Chat tab.

User text is shown as typed (plain text, never Rich markup). An answer is
Markdown once its blocks are complete (sparktui.ui.chat.answer: one Static per
chunk of complete blocks, rendered once). While it streams, the blocks still
being written are a plain-text tail (StreamTail) under the chunks, updated at
most FRAMES_PER_S times a second whatever the token rate; complete blocks move
into a new chunk every MAX_PLAIN_S or so, when the tail has to grow anyway. When
the answer ends, the whole answer becomes one chunk: the look of a saved answer
opened again. Why: a frame of the tail repaints the cells of one widget that
changed, a chunk is parsed and laid out once (bench/chat_render.py). Model output
is device text: it arrives here already stripped of escape sequences
(sparktui.core.openai_chat.TextCleaner), Markdown treats `[bold]` as literal text
and the tail is a rich Text, never markup.
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
from textual.widgets import Static

from sparktui.core.aio import within
from sparktui.core.openai_stats import describe_figures
from sparktui.core.sanitize import strip_control
from sparktui.services.conversations import Message
from sparktui.ui.chat.answer import AnswerBody
from sparktui.ui.widgets.clipboard import copy_text, not_copied_reason
from sparktui.ui.widgets.repaint import LiveStatic

#: redraws of a streaming answer's plain-text tail per second, at most: tokens that
#: arrive between two frames are drawn together
FRAMES_PER_S = 10
#: complete blocks move from the tail into a new chunk once they have been plain text
#: this long, at the next layout the tail needs anyway (its reserve is full), or at
#: twice this long in any case: each move renders a chunk and lays the conversation
#: out, so moves ride on the layouts the tail needs
MAX_PLAIN_S = 2.0
#: layouts of the conversation a streaming answer causes per second, at most: each one
#: re-arranges and repaints every message on screen (about 35 ms here at 120x40), so at
#: 200 tokens/s, where the text grows by 10-30 lines a second, they were most of the
#: cost. While the tail's reserve is full, new text is below the screen's last line
#: anyway (the conversation is anchored to its end): it waits for the next layout.
LAYOUTS_PER_S = 1
#: the fewest blank lines the tail reserves below its text: a frame whose new text fits
#: in the reserve repaints the tail's changed cells alone, with no layout of the
#: conversation (a layout re-arranges every block of every message on the screen)
TAIL_STEP_LINES = 4
#: seconds of growth the tail reserves room for, at the rate the text has been growing
RESERVE_S = 1.5
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def complete_blocks(fenced: bool, text: str) -> tuple[int, bool]:
    """How much of `text` is complete blocks, and whether a code fence is open after them.

    `fenced`: a fence is open where `text` starts. Blocks end at a blank line outside
    a fence; what follows the last such line may still grow. A list or a quote that
    goes on after the blank line is no harm: it is one more chunk while the answer
    streams, and the finished answer is rendered whole (AnswerBody.finish).
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
    """The text of a streaming answer not yet in its Markdown chunks, as plain text.

    It reserves blank lines below the text for what comes next: about RESERVE_S
    seconds of growth at the rate it has been growing, at least TAIL_STEP_LINES,
    at most half the screen. Text that fits in the reserve repaints the
    tail's changed cells alone; only a full reserve (or a commit of blocks to a
    chunk, in the same frame) lays the conversation out.
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
        most = max(TAIL_STEP_LINES, self.app.size.height // 2)
        reserved = self.size.height
        if lines <= reserved < lines + most:
            self.repaint_changed()
            return
        wanted = round(self._lines_per_s * RESERVE_S)
        self.styles.min_height = lines + min(most, max(TAIL_STEP_LINES, wanted))
        self.refresh(layout=True)


class StreamingBody:
    """Pieces of an answer in (cheap, synchronous); a plain tail and Markdown chunks out.

    The first piece is drawn at once; later ones are gathered and drawn at most
    FRAMES_PER_S times a second, with at most LAYOUTS_PER_S layouts. Complete blocks
    go from the tail into a new chunk every MAX_PLAIN_S or so, and all of the text
    when the answer ends: the body then holds the whole answer as one chunk and the tail is hidden.
    `shown` is what the last frame drew, (text in chunks, text in the tail), taken
    together once the frame was drawn.
    """

    def __init__(self, body: AnswerBody, tail: StreamTail) -> None:
        self._body = body
        self._tail = tail
        self._pending: list[str] = []
        self._open = ""  # text not yet in a chunk: shown by the tail
        self._fenced = False  # a code fence is open at the end of the chunks' text
        self._last_commit = time.monotonic()
        self._last_layout = 0.0  # the first piece shows at once (the tail appears)
        self.shown: tuple[str, str] = (body.source, "")
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def text(self) -> str:
        """All of the answer written so far (chunks, tail and not yet drawn)."""
        return self._body.source + self._open + "".join(self._pending)

    def write(self, text: str) -> None:
        if text:
            self._pending.append(text)
            self._wake.set()

    async def _run(self) -> None:
        # never cancelled mid-mount: stop() sets _closing and waits for the last frame
        while not self._closing.is_set():
            await self._wake.wait()
            self._wake.clear()
            await self._frame()
            with contextlib.suppress(TimeoutError):  # the frame interval, cut short by stop()
                await within(self._closing.wait(), 1 / FRAMES_PER_S)

    async def _frame(self) -> None:
        self._open += "".join(self._pending)
        self._pending.clear()
        if not self._tail.is_attached:
            return  # the message is being removed: the text is kept, nothing is drawn
        now = time.monotonic()
        text = self._open.strip("\n")
        fits = self._tail.fits(text)
        if not fits and now - self._last_layout < 1 / LAYOUTS_PER_S:
            # the tail's reserve is full, so what comes next is below the last line on
            # screen anyway: it waits for the next layout instead of causing one now
            self._wake.set()
            return
        waited = now - self._last_commit
        if not fits:
            self._last_layout = now
        if waited >= 2 * MAX_PLAIN_S or (waited >= MAX_PLAIN_S and not fits):
            cut, fenced = complete_blocks(self._fenced, self._open)
            if cut:
                self._last_commit = self._last_layout = now
                done, self._open, self._fenced = self._open[:cut], self._open[cut:], fenced
                # one frame on the terminal: never the blocks twice (tail and chunk)
                with self._tail.app.batch_update():
                    await self._body.append(done)
                    self._show_tail()
                return
        self._show_tail()

    def _show_tail(self) -> None:
        text = self._open.strip("\n")
        if self._tail.is_attached:
            self._tail.show_text(text)
        self.shown = (self._body.source, text)

    async def stop(self) -> None:
        """Move everything into one chunk of the whole answer and hide the tail."""
        self._closing.set()
        self._wake.set()
        await self._task
        whole = self.text
        self._open = ""
        self._pending.clear()
        await self._body.finish(whole)
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
        # kept, not queried: the answer's worker updates it after the view may have
        # lost its children (the tab or the app closing mid-answer)
        self._footer = Static(Text(self._footer_text()), classes="chat-footer")

    def compose(self) -> ComposeResult:
        message = self.message
        label = ROLE_LABELS.get(message.role, message.role)
        if message.model and message.role == "assistant":
            label = f"{label} · {strip_control(message.model, max_line=60)}"
        yield Static(Text(label), classes="chat-role")
        if message.role == "assistant":
            yield AnswerBody(message.content, classes="chat-body")
            yield StreamTail(classes="chat-tail")
        else:
            yield Static(Text(strip_control(message.content, keep_newlines=True)),
                         classes="chat-body")
        yield self._footer

    def _footer_text(self) -> str:
        message = self.message
        bits = [STATUS_MARKS.get(message.status, message.status)]
        bits.append(describe_figures(message.figures))
        return "  ".join(bit for bit in bits if bit)

    def refresh_footer(self) -> None:
        footer = self._footer
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
        self._stream = StreamingBody(self.query_one(AnswerBody), self.query_one(StreamTail))
        return self._stream

    @property
    def stream(self) -> StreamingBody | None:
        """The answer streaming into this view now, if one is."""
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
