"""Every tab and the shared dialogs, pictured at 80x24 (designed for first), 50x40 (a tmux
side pane) and 200x50 (a wide terminal) on the real SparkApp.

Fixed fleets and fed figures make each picture deterministic: it changes only when
the UI does. Regenerate with --snapshot-update and look at every picture you change.
"""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import TextArea

from tests.infra.pilot import still_carets, wait_until
from tests.test_ui_shell import (
    _never_connects,
    fixed_fleet,
    link,
    make_app,
    wait_for_fixed_states,
)

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((50, 40), id="50x40"),
         pytest.param((200, 50), id="200x50")]


@pytest.mark.parametrize("size", SIZES)
def test_devices_tab(snap_compare, size: tuple[int, int]) -> None:
    # 80x24 keeps State and Power (the address moves to the detail line)
    assert snap_compare(make_app(fixed_fleet()), terminal_size=size,
                        run_before=wait_for_fixed_states)


@pytest.mark.parametrize("size", SIZES)
def test_telemetry_tab(snap_compare, size: tuple[int, int]) -> None:
    from tests.test_ui_snapshots import _telemetry_app

    app, fed = _telemetry_app(size)
    assert snap_compare(app, terminal_size=size, run_before=fed)


@pytest.mark.parametrize(("tab", "key"), [("containers", "3"), ("tunnels", "4"), ("chat", "5"),
                                          ("serving", "6")])
@pytest.mark.parametrize("size", SIZES)
def test_tabs_of_a_device_not_yet_connected(snap_compare, size: tuple[int, int], tab: str,
                                            key: str) -> None:
    app = make_app([link("spark-01", _never_connects)])

    async def shown(pilot: Pilot) -> None:
        await pilot.press(key)
        await wait_until(pilot, lambda: app.query_one("TabbedContent").active == tab)
        # Chat and Serving look for endpoints when first shown: the picture is of the search
        # done (a slow machine caught it running)
        searched = {"chat": "#chat-status", "serving": "#serving-status"}.get(tab)
        if searched is not None:
            await wait_until(pilot, lambda: "looking for" not in str(
                app.query_one(searched).render()), what=f"{tab}'s search done")
        if tab == "chat":  # entering Chat focuses its prompt (a refresh later): its caret shows
            await wait_until(pilot, lambda: isinstance(app.focused, TextArea),
                             what="the prompt focused")
        still_carets(app)  # Chat's prompt: a caret mid-blink differs run to run
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=shown)


@pytest.mark.parametrize("size", SIZES)
def test_help_scrolls_to_the_app_wide_keys(snap_compare, size: tuple[int, int]) -> None:
    # defect: help was clipped at 80x24 and could not reach the app-wide keys
    async def at_the_end(pilot: Pilot) -> None:
        await wait_for_fixed_states(pilot)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == "HelpScreen")
        await pilot.press("G")
        await pilot.pause()

    assert snap_compare(make_app(fixed_fleet()), terminal_size=size, run_before=at_the_end)


@pytest.mark.parametrize("size", SIZES)
def test_quit_question_names_what_it_ends(snap_compare, size: tuple[int, int]) -> None:
    from rich.text import Text

    from sparktui.ui.ask import quit_question
    from sparktui.ui.screens.confirm import ConfirmScreen

    async def asked(pilot: Pilot) -> None:
        await wait_for_fixed_states(pilot)
        question = quit_question(["tunnel dashboard on spark-01", "tunnel jupyter on spark-01"])
        await pilot.app.push_screen(ConfirmScreen("Quit", Text.assemble(question)))
        await pilot.pause()

    assert snap_compare(make_app(fixed_fleet()), terminal_size=size, run_before=asked)


@pytest.mark.parametrize("size", SIZES)
def test_chat_endpoint_form(snap_compare, size: tuple[int, int]) -> None:
    # F2 on Chat: the endpoint form (URL, API key) opens on top of the tab
    from sparktui.ui.chat.endpoint import ChatEndpointScreen

    app = make_app([link("spark-01", _never_connects)])

    async def opened(pilot: Pilot) -> None:
        await pilot.press("5")
        await wait_until(pilot, lambda: app.query_one("TabbedContent").active == "chat")
        await wait_until(pilot, lambda: isinstance(app.focused, TextArea),
                         what="the prompt focused")  # so F2 reaches the pane's binding
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatEndpointScreen))
        await wait_until(pilot, lambda: bool(app.screen.query("Footer FooterKey")))
        still_carets(app)  # the form's and the prompt's behind it
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=opened)
