"""ctrl+c is q's rule, not an emergency exit (docs/keys.md, issue 10).

Defect: ctrl+c quit at once from anywhere, even from a dialog or with an answer
streaming. Now it leaves a sub-view or dialog as its Esc does; at the top level it
quits, asking first while something would end, unless confirm_quit = false.
"""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from sparktui.services.config import Config, Settings
from sparktui.ui.app import SparkApp
from sparktui.ui.chat.pane import ChatPane
from sparktui.ui.screens.confirm import ConfirmScreen
from sparktui.ui.screens.help import HelpScreen
from tests.infra.pilot import wait_until
from tests.test_chat_ui import REPO_THEMES, data_home, demo_app, open_chat, send  # noqa: F401


async def answer_streaming(pilot: Pilot) -> ChatPane:
    """The Chat tab with a long answer streaming slowly into it."""
    pane = await open_chat(pilot, token_rate=20.0, min_tokens=2000)
    await send(pilot, "Tell me about unified memory")
    await wait_until(pilot, lambda: pane.streaming, 30, "an answer streaming")
    return pane


async def test_ctrl_c_leaves_a_dialog_and_asks_before_cutting_an_answer_short(
        data_home: Path) -> None:  # noqa: F811
    app = demo_app(data_home)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await answer_streaming(pilot)
        # a dialog: ctrl+c closes it, as its Esc does, and the app runs on
        pane.query_one("#chat-log").focus()  # (out of the prompt, where ? is a key)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), 10, "help")
        await pilot.press("ctrl+c")
        await wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen), 10,
                         "help closed")
        assert app.is_running and len(app.screen_stack) == 1
        # the top level: it asks, naming what would end; no keeps everything going
        await pilot.press("ctrl+c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 10,
                         "the quit question")
        assert "the answer being streamed in Chat" in app.screen.question.plain
        await pilot.press("n")
        await wait_until(pilot, lambda: len(app.screen_stack) == 1, 10, "the question gone")
        assert app.is_running and pane.streaming


async def test_ctrl_c_quits_without_asking_when_told_not_to_ask(
        data_home: Path) -> None:  # noqa: F811
    # confirm_quit = false in [settings], as the user writes it
    config = Config(path=data_home / "config" / "sparktui.toml",
                    settings=Settings(confirm_quit=False))
    app = SparkApp(config, [], demo=True, theme_dirs=[REPO_THEMES])
    async with app.run_test(size=(80, 24)) as pilot:
        await answer_streaming(pilot)
        await pilot.press("ctrl+c")
        await wait_until(pilot, lambda: not app.is_running, 30, "the app to quit")
        assert not any(isinstance(screen, ConfirmScreen) for screen in app.screen_stack)
