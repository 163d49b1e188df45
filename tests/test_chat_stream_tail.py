"""A streaming answer: complete blocks as Markdown, the block being written as plain text.

Why: every Markdown append parses, mounts and lays out widgets; a frame of the
plain tail repaints one widget (sparktui/ui/chat/message.py). The split must
never cut a code fence, the tail must never show Rich markup, and when the
answer ends the Markdown holds exactly the answer (at 2000 tokens/s too).
"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Markdown

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
        pane = await open_chat(pilot, token_rate=100.0)
        app.demo.openai.min_tokens = 2000  # type: ignore[union-attr]
        await send(pilot, "Show me a **client** [bold]please[/bold]")
        view = list(app.query(ChatMessageView))[-1]
        tail = view.query_one(StreamTail)
        markdown = view.query_one(Markdown)
        # while it streams: complete blocks in the Markdown, the text after them (as
        # typed, brackets and all) in the tail, nothing twice, and the Markdown gets
        # blocks before the answer ends
        for _ in range(3):
            await wait_until(pilot, lambda: tail.display and str(tail.render()).strip())
            assert pane.answer is not None and not pane.answer.finished.is_set()
            text, done, shown = pane.answer.text, markdown.source, str(tail.render()).strip()
            assert text.startswith(done) and (done == "" or done.endswith("\n\n"))
            assert text[len(done):].lstrip("\n").startswith(shown)
            await pilot.pause(0.3)
        assert markdown.source != ""
        await pilot.press("escape")  # stopped: what came so far ends up in the Markdown
        await wait_until(pilot, lambda: view.message.status == "stopped")
        assert markdown.source == pane.answer.text == view.message.content
        assert not tail.display


async def test_a_fast_long_answer_ends_whole_in_the_markdown(data_home: Path  # noqa: F811
                                                             ) -> None:
    app = demo_app(data_home)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_chat(pilot, token_rate=2000.0)
        app.demo.openai.min_tokens = 3000  # type: ignore[union-attr]
        await send(pilot, "a long answer please")
        await wait_until(pilot, lambda: pane.answer is not None
                         and pane.answer.finished.is_set(), timeout=60)
        view = list(app.query(ChatMessageView))[-1]
        await wait_until(pilot, lambda: view.message.status == "done", timeout=60)
        assert pane.answer is not None and pane.answer.figures.tokens >= 3000
        assert view.query_one(Markdown).source == pane.answer.text == view.message.content
        assert not view.query_one(StreamTail).display
