"""The Chat tab's screens and small keys, without a device: history, endpoints, copy, scroll.

A direct endpoint (the simulated model server on loopback, added by URL with F2)
stands in for a device's; the conversation history lives in a private data dir.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from textual.widgets import Input

from sparktui.services.config import Config
from sparktui.services.conversations import ConversationStore, Message
from sparktui.services.devices import Fleet
from sparktui.sim.http import Exchange, Request
from sparktui.sim.servers.openai import OpenAISimServer
from sparktui.ui.app import SparkApp
from sparktui.ui.chat.endpoint import ChatEndpointScreen
from sparktui.ui.chat.history import ChatHistoryScreen
from sparktui.ui.chat.input import ChatInput
from sparktui.ui.chat.message import ChatMessageView
from sparktui.ui.chat.pane import ChatPane
from sparktui.ui.screens.confirm import ConfirmScreen
from tests.infra.pilot import wait_until

REPO_THEMES = Path(__file__).resolve().parent.parent / "themes"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@dataclass
class RecordingModelServer(OpenAISimServer):
    """The simulated model server, keeping the requests it answers (their headers are read)."""

    requests: list[Request] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def answer(self, request: Request, exchange: Exchange) -> None:
        self.requests.append(request)
        await super().answer(request, exchange)


@pytest.fixture
async def model_server():
    server = await RecordingModelServer(token_rate=2000).start()
    yield server
    await server.close()


def bare_app(home: Path) -> SparkApp:
    return SparkApp(Config(path=home / "sparktui.toml"), [], fleet=Fleet(),
                    theme_dirs=[REPO_THEMES])


async def add_endpoint(pilot: Pilot, url: str) -> ChatPane:
    app = pilot.app
    await pilot.press("5")
    pane = app.query_one(ChatPane)
    await pilot.press("f2")
    await wait_until(pilot, lambda: isinstance(app.screen, ChatEndpointScreen))
    app.screen.query_one("#chat-endpoint-url", Input).value = url
    await pilot.pause()
    await pilot.press("enter")
    await wait_until(pilot, lambda: pane.selected_model() is not None)
    return pane


async def test_add_endpoint_by_url_and_set_a_key_that_stays_out_of_the_config(
        home: Path, model_server: RecordingModelServer, monkeypatch) -> None:
    app = bare_app(home)
    notes: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        real_notify = app.notify
        monkeypatch.setattr(app, "notify", lambda message, **kw: (notes.append(message),
                                                                  real_notify(message, **kw)))
        pane = await add_endpoint(pilot, f"127.0.0.1:{model_server.port}")
        endpoint = pane.selected_endpoint()
        assert endpoint is not None and endpoint.spec.url == model_server.url
        assert any("assumed http://; added /v1" in n for n in notes)  # what was used, said
        saved = tomllib.loads((home / "sparktui.toml").read_text())
        assert saved["endpoints"] == [{"name": model_server.url, "url": model_server.url}]

        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatEndpointScreen))
        app.screen.query_one("#chat-endpoint-key", Input).value = "sk-test-123"
        app.screen.query_one("#chat-endpoint-key", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: any("API key" in n or "keyring" in n for n in notes))
        await wait_until(pilot, lambda: any(r.headers.get("authorization") == "Bearer sk-test-123"
                                       for r in model_server.requests))
    assert "sk-test-123" not in (home / "sparktui.toml").read_text()


async def test_send_copy_and_scroll_follows_only_at_the_bottom(
        home: Path, model_server: RecordingModelServer) -> None:
    app = bare_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await add_endpoint(pilot, model_server.url)
        model_server.token_rate = 150
        model_server.min_tokens = 3000
        app.query_one(ChatInput).focus()  # the prompt, whatever had the focus
        app.query_one(ChatInput).insert("scroll test")
        await pilot.press("enter")
        log = app.query_one("#chat-log", VerticalScroll)
        await wait_until(pilot, lambda: log.max_scroll_y > 20)
        assert log.scroll_y == log.max_scroll_y  # following the answer
        log.scroll_home(animate=False)  # the reader goes up to read
        await pilot.pause(0.5)
        grown = log.max_scroll_y
        await wait_until(pilot, lambda: log.max_scroll_y > grown + 5)
        assert log.scroll_y == 0  # left where the reader is
        log.scroll_end(animate=False)  # back at the bottom: follow again
        await pilot.pause(0.3)
        grown = log.max_scroll_y
        await wait_until(pilot, lambda: log.max_scroll_y > grown + 5)
        # following again: the view keeps reaching the bottom as the answer grows (a
        # frame may land between a growth and the scroll that follows it)
        await wait_until(pilot, lambda: log.scroll_y >= log.max_scroll_y - 2, timeout=3)
        await pilot.press("escape")
        await wait_until(pilot, lambda: pane.answer.finished.is_set())
        user = next(v for v in app.query(ChatMessageView) if v.message.role == "user")
        user.focus()
        await pilot.press("c")
        assert app.clipboard == "scroll test"
        log.focus()
        await pilot.press("y")
        assert app.clipboard == pane.answer.text


async def test_history_rename_export_delete(home: Path) -> None:
    store = await ConversationStore().open()
    first = await store.create("first chat", model="m")
    await store.add_message(first.id, Message("user", "question"))
    await store.add_message(first.id, Message("assistant", "```py\nprint(1)\n```"))
    second = await store.create("second chat")
    await store.close()
    app = bare_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("5")
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatHistoryScreen)
                    and len(app.screen.conversations) == 2)
        screen = app.screen
        assert [c.id for c in screen.conversations] == [second.id, first.id]
        await pilot.press("down", "r")
        field = screen.query_one("#chat-history-field", Input)
        assert field.value == "first chat"
        field.value = "renamed chat"
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.result.renamed.get(first.id) == "renamed chat")
        await wait_until(
            pilot, lambda: any(c.title == "renamed chat" for c in screen.conversations))
        index = next(i for i, c in enumerate(screen.conversations) if c.id == first.id)
        screen.query_one("OptionList").highlighted = index
        await pilot.press("e")
        target = home / "export.md"
        field.value = str(target)
        await pilot.press("enter")
        await wait_until(pilot, target.exists)
        text = target.read_text()
        assert text.startswith("# renamed chat") and "```py\nprint(1)\n```" in text
        screen.query_one("OptionList").highlighted = next(
            i for i, c in enumerate(screen.conversations) if c.id == second.id)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: [c.id for c in screen.conversations] == [first.id])
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(list(app.query(ChatMessageView))) == 2)
