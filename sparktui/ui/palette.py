"""The command palette's commands for the tabs' own keys.

Every binding of every pane is also a palette command, "Containers: Stop",
"Chat: New chat", ...: the palette reaches every action, whichever tab is in
front, and shows the key that does the same (after the user's keymap). Running
one switches to its tab first, so it acts on what that tab has selected, exactly
as the key would there.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.app import SystemCommand
from textual.binding import Binding

from sparktui.ui.panes import PANES

if TYPE_CHECKING:
    from sparktui.ui.app import SparkApp

#: bindings the palette already offers through a command with a fuller description
COVERED_ELSEWHERE = frozenset({
    "devices.retry", "devices.add", "devices.find", "devices.connect_all", "devices.details",
})


def pane_commands(app: SparkApp) -> Iterator[SystemCommand]:
    for pane in PANES:
        for binding in pane.widget.BINDINGS:
            if not isinstance(binding, Binding) or binding.id in COVERED_ELSEWHERE:
                continue
            help_text = binding.tooltip or f"On the {pane.title} tab"
            key = app.key_for(binding.id) if binding.id else None
            if key:
                help_text += f" · key {key}"
            yield SystemCommand(f"{pane.title}: {binding.description}", help_text,
                                partial(run_pane_action, app, pane.id, binding.action))


async def run_pane_action(app: SparkApp, tab_id: str, action: str) -> None:
    app.action_show_tab(tab_id)
    await app.run_action(action, app.query_one(f"#{tab_id}-pane"))


def app_commands(app: SparkApp) -> Iterator[SystemCommand]:
    """The shell's own commands, then the device commands and every pane's bindings."""
    from sparktui.ui.devices.actions import device_commands

    for pane in PANES:
        yield SystemCommand(f"Go to {pane.title}", f"Switch to the {pane.title} tab",
                            partial(app.action_show_tab, pane.id))
    yield SystemCommand("Help: keys", "List every key binding in force", app.action_help)
    yield SystemCommand("Settings", "Refresh interval, thresholds, units, theme, "
                        "read-only, ...", app.action_settings)
    yield SystemCommand("Next device", "Focus the next device in every pane",
                        app.action_next_device)
    yield from device_commands(app, app.session, lambda: app.focused_device)
    yield from pane_commands(app)
    yield SystemCommand("Retry selected device",
                        "Reconnect the device selected in Devices now, skipping the wait",
                        app.action_retry_selected)
    for name in sorted(app.available_themes):
        # every theme is searchable; only sparktui's own are listed up front
        yield SystemCommand(f"Theme: {name}", f"Switch to the {name} theme",
                            partial(setattr, app, "theme", name),
                            discover=name in app.sparktui_themes)
    yield SystemCommand("Quit", "Close every connection and quit", app.action_quit)
