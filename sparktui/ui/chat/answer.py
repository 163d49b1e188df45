"""An answer's Markdown: one Static per chunk of complete blocks, each rendered once.

Why not Textual's Markdown widget: it makes every block several widgets (a list
item is four, a table one per cell), each styled at mount and laid out with the
whole conversation. Building a 1000-token answer's widgets costs 0.56-0.70 s of
CPU here (`bench/chat_render.py --floor`): 11-14 % of a core while it streams at
200 tokens/s, whatever the streaming strategy. A chunk here is one Static holding
a Rich Markdown renderable: parsed once when it is made, laid out as one widget.

Model output is device text. Rich's Markdown puts the text of a document into
`Text` objects as it is (`[bold]` stays literal: never Rich markup), and links are
shown with their address after the text (no terminal hyperlink whose address the
device chose and the user cannot see). Escape sequences were stripped before
(sparktui.core.openai_chat.TextCleaner).
"""

from __future__ import annotations

from typing import ClassVar

from rich.markdown import Heading, Markdown, MarkdownElement
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


class LeftHeading(Heading):
    """Every heading level left-aligned, as Textual's Markdown shows them (Rich centres h1)."""

    LEVEL_ALIGN = dict.fromkeys(("h1", "h2", "h3", "h4", "h5", "h6"), "left")


class ChatMarkdown(Markdown):
    """Rich's Markdown with the headings of the chat's look and links shown as addresses."""

    elements: ClassVar[dict[str, type[MarkdownElement]]] = {
        **Markdown.elements, "heading_open": LeftHeading}

    def __init__(self, text: str, *, dark: bool = True) -> None:
        super().__init__(text, code_theme="monokai" if dark else "default",
                         hyperlinks=False)


class MarkdownChunk(Static):
    """Complete blocks of an answer, rendered once as one widget."""

    def __init__(self, source: str, *, dark: bool = True) -> None:
        super().__init__(ChatMarkdown(source, dark=dark), classes="chat-chunk")
        self.source = source


class AnswerBody(Vertical):
    """An answer as Markdown chunks. `source` is all of the text the chunks hold."""

    def __init__(self, source: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.source = source

    def compose(self) -> ComposeResult:
        if self.source:
            yield MarkdownChunk(self.source, dark=self.app.current_theme.dark)

    async def append(self, text: str) -> None:
        """Add complete blocks below the chunks shown (nothing on screen if removed)."""
        self.source += text
        if text and self.is_attached:
            await self.mount(MarkdownChunk(text, dark=self.app.current_theme.dark))

    async def finish(self, text: str) -> None:
        """Show `text`, the whole answer, as one chunk: how a saved answer looks when it
        is opened again, whatever the chunks' cuts were (a list going on after a blank
        line, a reference link defined in another chunk)."""
        chunks = list(self.query_children(MarkdownChunk))
        if len(chunks) == 1 and self.source == text:
            return  # already one chunk of the whole answer
        self.source = text
        if not self.is_attached:
            return
        with self.app.batch_update():  # one frame: never the answer twice, nor none of it
            await self.remove_children(chunks)
            if text:
                await self.mount(MarkdownChunk(text, dark=self.app.current_theme.dark))
