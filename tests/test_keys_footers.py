"""Footers, checkboxes and the table grammar's n/N and sort, on the real SparkApp.

docs/keys.md: each dialog shows its own keys in its own footer; `? Help` leads
every footer, so a 50-column side pane still shows it; a checkbox's state reads
in its glyph; n/N move between the rows showing the filter; a sort leaves the
cursor on the same container, so the next `s` cannot stop a neighbour.
"""

from __future__ import annotations

import pytest
from rich.text import Text
from textual.widget import Widget
from textual.widgets import TabbedContent

from sparktui.core.device import LinkState
from sparktui.ui.containers.dialogs import ConfirmDialog
from sparktui.ui.containers.logs import ContainerLogsScreen
from sparktui.ui.panes import PANES
from sparktui.ui.screens.confirm import ConfirmScreen
from sparktui.ui.widgets.nav_table import MATCH_STYLE
from sparktui.ui.widgets.tickbox import TickBox
from tests.infra.fed import fed_app, feed_containers
from tests.infra.pilot import wait_until
from tests.test_ui_shell import fixed_fleet, make_app


def footer_keys(screen) -> list[tuple[str, str]]:
    """(key, description) of each key the screen's own footer shows, left to right."""
    keys: list[Widget] = sorted(screen.query("Footer FooterKey"), key=lambda k: k.region.x)
    return [(str(k.key), str(k.description)) for k in keys]


async def test_confirm_dialogs_show_only_their_own_keys() -> None:
    # defect: a question showed the keys of the tab behind it (s Stop, r Restart, ...)
    app = fed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await feed_containers(pilot)
        for key, kind in (("s", ConfirmScreen), ("r", ConfirmScreen), ("d", ConfirmDialog)):
            await pilot.press(key)
            await wait_until(pilot, lambda kind=kind: isinstance(app.screen, kind))
            await pilot.pause()
            shown = footer_keys(app.screen)
            assert [description for _, description in shown] == ["Yes", "No"], shown
            await pilot.press("n")
            await wait_until(pilot, lambda: not app.screen.is_modal)


async def test_logs_footer_shows_the_logs_keys() -> None:
    app = fed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await feed_containers(pilot)
        tab_keys = {description for _, description in footer_keys(app.screen)}
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, ContainerLogsScreen))
        await pilot.pause()
        shown = [description for _, description in footer_keys(app.screen)]
        assert {"Back", "Search", "Follow", "Timestamps", "Wrap"} <= set(shown), shown
        # none of the Containers keys (Stop, Restart, Remove, ...) is offered here
        assert not {"Stop", "Restart", "Remove", "Logs", "Deploy"} & set(shown), shown
        assert {"Stop", "Logs"} <= tab_keys


async def test_help_leads_every_footer_in_a_side_pane() -> None:
    # defect: `? Help` came last and a 50-column pane cut it off
    app = make_app(fixed_fleet())
    async with app.run_test(size=(50, 40)) as pilot:
        for pane in PANES:
            await pilot.press(pane.key)
            await wait_until(pilot, lambda pane=pane: app.query_one(TabbedContent).active
                             == pane.id)
            if app.typing:  # the chat prompt has the focus: Tab to where app keys act
                await pilot.press("tab")
            await pilot.pause()
            footer = app.screen.query_one("Footer")
            first = min(footer.query("FooterKey"), key=lambda k: k.region.x)
            assert (first.key, first.description) == ("question_mark", "Help"), pane.id
            assert first.region.right <= 50


async def test_a_checkbox_shows_its_state_in_its_glyph() -> None:
    # defect: ticked and unticked differed in colour only
    app = fed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await feed_containers(pilot)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        box = app.screen.query_one(TickBox)

        def glyph() -> str:
            return Text.from_markup(box.render().markup).plain[:3]

        assert glyph() == "▐ ▌"
        box.focus()
        await pilot.press("space")
        assert box.value and glyph() == "▐X▌"
        await pilot.press("space")
        assert not box.value and glyph() == "▐ ▌"


async def test_n_and_shift_n_move_between_the_rows_showing_the_filter() -> None:
    app = fed_app()
    async with app.run_test(size=(200, 50)) as pilot:
        pane, _ = await feed_containers(pilot)
        await pilot.press("a")  # every container, by name
        await wait_until(pilot, lambda: pane.table.row_count == 4)
        # "ll" shows in ollama, open-webui (its image) and vllm-llama31-8b, not comfyui-old
        await pilot.press("slash", "l", "l", "enter")
        await wait_until(pilot, lambda: pane.query_text == "ll" and app.focused is pane.table)
        names = [pane._rows[key][1].name for key in pane._row_keys]
        assert names == ["ollama", "open-webui", "vllm-llama31-8b"]
        name_cell = pane.table.get_cell(pane._row_keys[0], "name")
        assert [(span.start, span.end) for span in name_cell.spans
                if span.style == MATCH_STYLE] == [(1, 3)]  # the match is highlighted
        pane.table.move_cursor(row=0)
        visited = []
        for key in ("n", "n", "n", "N", "N"):
            await pilot.press(key)
            visited.append(pane.selected[1].name)
        # forward, wrapping past the end as less does, then back
        assert visited == ["open-webui", "vllm-llama31-8b", "ollama", "vllm-llama31-8b",
                           "open-webui"]
        # a filter that matches only what no cell shows (the command): n stays put
        await pilot.press("slash", *(["backspace"] * 2), *"serve", "enter")
        await wait_until(pilot, lambda: pane.query_text == "serve"
                         and app.focused is pane.table)
        here = pane.selected[1].name
        await pilot.press("n")
        assert pane.selected[1].name == here


async def test_sort_keeps_the_cursor_on_the_same_container() -> None:
    # defect: `o` moved the cursor to another container, and the next `s` hit it
    app = fed_app()
    async with app.run_test(size=(200, 50)) as pilot:
        pane, _ = await feed_containers(pilot)
        pane.table.move_cursor(row=pane._row_keys.index(next(
            key for key in pane._row_keys if pane._rows[key][1].name == "vllm-llama31-8b")))
        await pilot.pause()
        before = pane.selected[1].name
        rows_seen = set()
        for key in ("o", "o", "o", "O", "o", "O", "o", "o", "o"):
            await pilot.press(key)
            await pilot.pause()
            assert pane.selected[1].name == before, (key, pane.order)
            rows_seen.add(pane.table.cursor_row)
        assert len(rows_seen) > 1  # the row moved about the table, the cursor with it
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = app.screen.question.plain
        assert "vllm-llama31-8b" in question and "ollama" not in question


async def test_forms_show_save_and_their_error_at_80x24() -> None:
    # defect: at 80x24 the forms' Save buttons and error messages were below the fold
    from sparktui.ui.devices.form import DeviceFormScreen
    from sparktui.ui.screens.settings import SettingsScreen

    app = fed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        for key, kind, errors in (("a", DeviceFormScreen, "#device-form-errors"),
                                  ("ctrl+s", SettingsScreen, "#settings-errors")):
            await pilot.press(key)
            await wait_until(pilot, lambda kind=kind: isinstance(app.screen, kind))
            if kind is SettingsScreen:
                await pilot.press("ctrl+u", *"not a number")  # the refresh interval
            await pilot.press("ctrl+s")  # save: the form refuses, saying why
            await wait_until(pilot, lambda errors=errors: str(
                app.screen.query_one(errors).render()).strip() != "")
            screen = app.screen.region
            for selector in ("#save", errors):
                region = app.screen.query_one(selector).region
                assert region.height and screen.contains_region(region), (kind, selector)
            await pilot.press("escape")
            await wait_until(pilot, lambda: not app.screen.is_modal)


@pytest.mark.parametrize("size", [(80, 24), (50, 40)])
async def test_the_tunnel_form_fits_unscrolled(size: tuple[int, int]) -> None:
    # defect: at 80x24 the tunnel form scrolled its title off to keep Save in view
    from textual.widgets import Input, Select

    from sparktui.ui.tunnels.form import TunnelForm

    app = fed_app()
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: app.fleet.links[0].status.state is LinkState.CONNECTED)
        await pilot.press("4", "a")
        await wait_until(pilot, lambda: isinstance(app.screen, TunnelForm))
        form = app.screen
        box = form.query_one("#tunnel-form-box")
        # with its error shown too (a form refusing to save says why, in view)
        form.query_one("#tunnel-remote-port", Input).value = "70000"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.query_one("#tunnel-form-error").display)
        await pilot.pause()
        assert box.max_scroll_y == 0, box.max_scroll_y
        inside = box.content_region
        parts = [form.query_one("#tunnel-form-title"), *form.query(Select), *form.query(Input),
                 form.query_one(TickBox), form.query_one("#tunnel-form-error"),
                 form.query_one("#save")]
        for part in parts:
            assert part.region.height and inside.contains_region(part.region), part
        assert form.region.contains_region(box.region)
