"""A streaming answer: complete blocks as Markdown chunks, the block being written as plain text.

Why: a chunk is rendered once, a frame of the plain tail repaints one widget
(sparktui/ui/chat/message.py, answer.py). The split must never cut a code fence,
the tail must never show Rich markup, and when the answer ends its body holds
exactly the answer as one chunk (at 2000 tokens/s too).
"""

from __future__ import annotations

import io
from pathlib import Path

from sparktui.ui.chat.answer import AnswerBody, ChatMarkdown, MarkdownChunk
from sparktui.ui.chat.message import ChatMessageView, StreamTail, complete_blocks
from tests.infra.pilot import wait_until
from tests.test_chat_ui import data_home, demo_app, open_chat, send  # noqa: F401


def test_complete_blocks_end_at_a_blank_line_outside_fences() -> None:
    assert complete_blocks(False, "no blank line yet") == (0, False)
    text = "one\n\ntwo\n\n- a\n\n- b still being"
    cut, fenced = complete_blocks(False, text)
    assert text[cut:] == "- b still being" and not fenced
    fence = "intro\n\n```python\nx = 1\n\ny = 2\n"
    cut, fenced = complete_blocks(False, fence)
    assert fence[cut:] == "```python\nx = 1\n\ny = 2\n"  # not inside the open fence
    assert not fenced
    closed = fence + "```\n\nafter"
    cut, fenced = complete_blocks(False, closed)
    assert closed[cut:] == "after" and not fenced
    # a fence opened in text already committed: its blank lines are not block ends
    cut, fenced = complete_blocks(True, "y = 2\n\nz = 3\n")
    assert cut == 0
    cut, fenced = complete_blocks(True, "y = 2\n```\n\nnext")
    assert cut == len("y = 2\n```\n\n") and not fenced
    # the line being written is not complete even if it is blank so far
    assert complete_blocks(False, "a\n") == (0, False)


async def test_the_open_block_streams_as_plain_text_and_a_stop_ends_as_markdown(
        data_home: Path) -> None:  # noqa: F811
    app = demo_app(data_home)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_chat(pilot, token_rate=100.0, min_tokens=2000)
        await send(pilot, "Show me a **client** [bold]please[/bold]")
        view = list(app.query(ChatMessageView))[-1]
        tail = view.query_one(StreamTail)
        body = view.query_one(AnswerBody)
        stream = view.stream
        assert stream is not None
        # while it streams: complete blocks in chunks, the text after them in the tail,
        # nothing twice, and chunks come before the answer ends. `stream.shown` is what
        # one frame drew (chunks and tail, taken together once drawn); the answer's
        # text only grows after it, so it must start with what was shown.
        frames: set[tuple[str, str]] = set()
        while len(frames) < 3 or not any(done for done, _ in frames):
            await wait_until(pilot, lambda: stream.shown[1] and stream.shown not in frames,
                             timeout=30)
            done, shown = stream.shown
            frames.add((done, shown))
            assert pane.answer is not None
            text = pane.answer.text
            assert text.startswith(done) and (done == "" or done.endswith("\n\n"))
            assert text[len(done):].lstrip("\n").startswith(shown)
        assert not pane.answer.finished.is_set()
        assert body.source != "" and list(body.query(MarkdownChunk))
        await pilot.press("escape")  # stopped: what came so far ends up as Markdown
        await wait_until(pilot, lambda: view.message.status == "stopped")
        assert body.source == pane.answer.text == view.message.content
        assert [chunk.source for chunk in body.query(MarkdownChunk)] == [body.source]
        assert not tail.display


def test_an_answer_renders_markdown_and_never_rich_markup() -> None:
    """Device text: brackets stay text, a link shows where it goes, headings stay left."""
    from rich.console import Console

    console = Console(width=60, color_system=None, file=io.StringIO())
    text = ("# Title\n\nsee [bold]this[/bold] and [the docs](http://x.invalid/d)\n\n"
            "```python\nx = 1\n```\n")
    with console.capture() as capture:
        console.print(ChatMarkdown(text))
    out = capture.get()
    assert out.startswith("Title")  # left, not centred in a box
    assert "[bold]this[/bold]" in out
    assert "the docs (http://x.invalid/d)" in out
    assert "x = 1" in out


async def test_a_fast_long_answer_ends_whole_in_the_markdown(data_home: Path  # noqa: F811
                                                             ) -> None:
    app = demo_app(data_home)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_chat(pilot, token_rate=2000.0, min_tokens=3000)
        await send(pilot, "a long answer please")
        await wait_until(pilot, lambda: pane.answer is not None
                         and pane.answer.finished.is_set(), timeout=60)
        view = list(app.query(ChatMessageView))[-1]
        await wait_until(pilot, lambda: view.message.status == "done", timeout=60)
        assert pane.answer is not None and pane.answer.figures.tokens >= 3000
        assert view.query_one(AnswerBody).source == pane.answer.text == view.message.content
        assert not view.query_one(StreamTail).display
