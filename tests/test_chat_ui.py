"""The Chat tab, driven with Pilot against the demo device's model server (over real SSH)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Select

from sparktui.core.device import LinkState
from sparktui.services.config import Config
from sparktui.ui.app import SparkApp
from sparktui.ui.chat.answer import AnswerBody, MarkdownChunk
from sparktui.ui.chat.history import ChatHistoryScreen
from sparktui.ui.chat.input import ChatInput
from sparktui.ui.chat.message import ChatMessageView
from sparktui.ui.chat.pane import ChatPane
from sparktui.ui.chat.status import ChatStatus
from tests.infra.pilot import wait_until

REPO_THEMES = Path(__file__).resolve().parent.parent / "themes"


@pytest.fixture
def data_home(tmp_path, monkeypatch) -> Path:
    """A private data and config dir: the chat history lands here, not in the real home."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


def demo_app(tmp: Path) -> SparkApp:
    config = Config(path=tmp / "config" / "sparktui.toml")
    return SparkApp(config, [], demo=True, theme_dirs=[REPO_THEMES])


async def open_chat(pilot: Pilot, *, token_rate: float = 3000.0,
                    min_tokens: int | None = None) -> ChatPane:
    """The Chat tab on the demo, its model server answering at `token_rate` (and with
    at least `min_tokens` tokens: an answer that is still streaming when looked at)."""
    app = pilot.app
    assert isinstance(app, SparkApp)
    await wait_until(pilot, lambda: app.demo is not None and app.fleet.links
                and app.fleet.links[0].status.state is LinkState.CONNECTED)
    app.demo.openai.token_rate = token_rate  # type: ignore[union-attr]
    if min_tokens is not None:
        app.demo.openai.min_tokens = min_tokens  # type: ignore[union-attr]
    await pilot.press("5")
    pane = app.query_one(ChatPane)
    await wait_until(pilot, lambda: pane.selected_model() is not None)
    return pane


async def send(pilot: Pilot, text: str) -> None:
    box = pilot.app.query_one(ChatInput)
    assert pilot.app.focused is box  # entering the tab, and Esc, leave the prompt focused
    box.insert(text)
    await pilot.press("enter")


def status_text(app: SparkApp) -> str:
    return str(app.query_one(ChatStatus).render())


async def test_streams_an_answer_with_figures_and_code_block(data_home: Path) -> None:
    app = demo_app(data_home)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_chat(pilot)
        endpoint = pane.selected_endpoint()
        assert endpoint is not None and endpoint.spec.device == "spark-demo"
        assert endpoint.spec.url == "http://localhost:8000/v1"
        await send(pilot, "Show me a **client** [bold]please[/bold]")
        await wait_until(pilot, lambda: pane.answer is not None and pane.answer.finished.is_set())
        await wait_until(pilot, lambda: "✓" in status_text(app))
        views = list(app.query(ChatMessageView))
        assert [v.message.role for v in views] == ["user", "assistant"]
        # the user's text is literal: brackets are not markup
        assert "[bold]please[/bold]" in str(views[0].query_one(".chat-body").render())
        answer = views[1]
        assert answer.message.status == "done"
        body = answer.query_one(AnswerBody)
        assert body.source == pane.answer.text
        assert "```" in body.source  # the code block is rendered, not shown as typed
        await wait_until(pilot, lambda: all(chunk.size.height > 0
                                            for chunk in body.query(MarkdownChunk)))
        shown = "\n".join(str(line.text) for line in
                          (chunk.render_line(y) for chunk in body.query(MarkdownChunk)
                           for y in range(chunk.size.height)))
        assert "import httpx" in shown and "```" not in shown
        status = status_text(app)
        assert "TTFT" in status and "tok/s" in status and "tokens" in status
        assert "≈" not in status.split("tokens")[0]  # the sim sends usage: counted, not guessed
        assert app.query_one(ChatInput).text == ""
        # nothing to stop: the focus stays in the prompt, where the next word is text
        await pilot.press("escape")
        assert isinstance(app.focused, ChatInput)
        await pilot.press("q", "2")
        assert app.query_one(ChatInput).text == "q2" and app.is_running


async def test_escape_stops_generation_and_keeps_the_partial_answer(data_home: Path) -> None:
    app = demo_app(data_home)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_chat(pilot, token_rate=40.0)
        sim = app.demo.openai  # type: ignore[union-attr]
        sim.min_tokens = 5000
        await send(pilot, "a long one")
        await wait_until(pilot, lambda: pane.answer is not None
                    and pane.answer.figures.chunks >= 5)
        assert sim.generating == 1
        await pilot.press("escape")
        await wait_until(pilot, lambda: pane.answer.finished.is_set(), timeout=2)
        assert pane.answer.outcome.status == "stopped"
        await wait_until(pilot, lambda: sim.generating == 0, timeout=3)  # the server saw us go
        answer = list(app.query(ChatMessageView))[-1]
        assert answer.message.status == "stopped"
        assert answer.message.content and answer.message.content == pane.answer.text
        assert "stopped" in status_text(app)


async def test_conversation_survives_a_restart(data_home: Path) -> None:
    app = demo_app(data_home)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_chat(pilot)
        await send(pilot, "remember me")
        await wait_until(pilot, lambda: pane.answer is not None and pane.answer.finished.is_set())
        await wait_until(
            pilot, lambda: list(app.query(ChatMessageView))[-1].message.status == "done")
        first_answer = pane.answer.text
    assert (data_home / "data" / "sparktui" / "chat.sqlite3").exists()

    app = demo_app(data_home)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_chat(pilot)
        assert not list(app.query(ChatMessageView))
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatHistoryScreen)
                    and app.screen.conversations)
        assert app.screen.conversations[0].title == "remember me"
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(list(app.query(ChatMessageView))) == 2)
        views = list(app.query(ChatMessageView))
        assert views[0].message.content == "remember me"
        assert views[1].message.content == first_answer
        assert views[1].message.figures and views[1].message.figures["tokens"] > 0
        # ctrl+t starts a new conversation (ctrl+n stays "next device" on every tab)
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: not list(app.query(ChatMessageView)))


async def test_errors_are_messages_and_the_prompt_comes_back(data_home: Path) -> None:
    app = demo_app(data_home)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_chat(pilot)
        await app.demo.openai.close()  # type: ignore[union-attr]  # the model server dies
        await send(pilot, "anyone there?")
        await wait_until(pilot, lambda: pane.answer is not None and pane.answer.finished.is_set())
        await wait_until(pilot, lambda: any(v.message.role == "error"
                                       for v in app.query(ChatMessageView)))
        error = next(v for v in app.query(ChatMessageView) if v.message.role == "error")
        assert "localhost:8000 on spark-demo" in error.message.content
        assert app.query_one(ChatInput).text == "anyone there?"  # the input is never lost
        assert isinstance(app.query_one("#chat-endpoint", Select).value, str)


async def test_quitting_mid_answer_saves_the_partial_answer(data_home: Path, caplog) -> None:
    from sparktui.services.conversations import ConversationStore

    caplog.set_level(logging.ERROR, logger="sparktui")
    app = demo_app(data_home)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_chat(pilot, token_rate=40.0)
        app.demo.openai.min_tokens = 5000  # type: ignore[union-attr]
        await send(pilot, "long answer, then quit")
        await wait_until(pilot, lambda: pane.answer is not None and pane.answer.figures.chunks >= 3)
    store = await ConversationStore().open()
    try:
        [summary] = await store.list_conversations()
        conversation = await store.get(summary.id)
    finally:
        await store.close()
    assert conversation is not None
    answer = conversation.messages[-1]
    assert answer.role == "assistant" and answer.status == "stopped" and answer.content
    # the answer's worker ends cleanly while the tab's widgets go away (it once raised
    # NoMatches looking for the message's footer)
    assert not [r for r in caplog.records if r.name.startswith("sparktui")
                and r.levelno >= logging.ERROR]


async def test_a_long_endpoint_label_stays_on_one_line_in_a_side_pane(data_home: Path) -> None:
    app = demo_app(data_home)
    async with app.run_test(size=(60, 40)) as pilot:
        pane = await open_chat(pilot)
        # the demo's vLLM container: "spark-demo:8000 · vllm-llama31-8b (nvcr.io/...)"
        await wait_until(pilot, lambda: "vllm-llama31-8b" in str(
            pane.query_one("#chat-endpoint SelectCurrent #label").render()))
        await pilot.pause()
        label = pane.query_one("#chat-endpoint SelectCurrent #label")
        assert label.region.height == 1  # cut with an ellipsis, not wrapped


async def test_help_names_where_each_key_works_in_words(data_home: Path) -> None:
    from sparktui.ui.screens import HelpScreen

    app = demo_app(data_home)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_chat(pilot)
        app.set_focus(app.query_one("#chat-endpoint"))
        await pilot.press("question_mark")  # from the endpoint menu
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        places = {row.where for row in app.screen.rows}
        assert {"Chat tab", "a menu", "everywhere"} <= places
        assert places <= {"Chat tab", "a menu", "a text field", "the prompt", "a message",
                          "this screen", "everywhere"}, places  # no class names
