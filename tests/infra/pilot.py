"""Waiting on a Textual app under Pilot: one helper for every UI test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.app import App
from textual.pilot import Pilot


async def wait_until(pilot: Pilot, predicate: Callable[[], object], timeout: float = 15.0,
                     what: str = "condition") -> None:
    """Let the app run until `predicate()` holds (then one more refresh), or fail saying
    what was awaited. The timeout only bounds a failure; a pass returns at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await pilot.pause(0.02)
    await pilot.pause()


def still_carets(app: App) -> None:
    """Stop every caret blinking (Inputs and TextAreas, on every screen of the stack) and
    have each drawn as things are now: a caret mid-blink would be in one picture and not
    the next. A TextArea caches its rendered lines under a key that does not say whether
    it has the focus; notify_style_update (public) empties that cache."""
    from textual.widgets import Input, TextArea

    for screen in app.screen_stack:
        for field in screen.query(Input):
            field.cursor_blink = False
        for area in screen.query(TextArea):
            area.cursor_blink = False
            area.notify_style_update()
