"""The Devices tab before there is any device: three ways to add a first Spark, and the demo.

Shown by DevicesPane in place of its (empty) table while the session has no
device, one line per way, each with its key (as the keymap has it): find Sparks
on this network, import a host of ~/.ssh/config or NVIDIA Sync, add one by
address, or try the simulated Spark in this session. It fits 80x24 and a 50-column
side pane (the lines wrap there).
"""

from __future__ import annotations

import logging

from rich.text import Text
from textual.app import App
from textual.widgets import Static

from sparktui.services.session import Session
from sparktui.ui.keys import key_hint
from sparktui.ui.widgets.pane_common import SessionPane

log = logging.getLogger(__name__)

#: (binding id, default key, what it does): one line each, in the order to try them
WAYS = (
    ("devices.find", "f", "Find Sparks on this network: those announcing themselves (mDNS)"),
    ("devices.import", "I", "Import a host you already reach: ~/.ssh/config or NVIDIA Sync"),
    ("devices.add", "a", "Add one by address: host, user, port (a password only installs "
                         "a key)"),
    ("devices.demo", "D", "Try the demo: a simulated GB10 Spark, no hardware needed"),
)


KEY_CELLS = 7  # "  f   " : the key, reversed, and the space after it


class FirstRunGuide(Static):
    """What to do when there is nothing to show yet (the hidden table keeps the focus,
    so the tab's keys still reach DevicesPane)."""

    DEFAULT_CSS = """
    FirstRunGuide {
        height: auto;
        padding: 1 2;
    }
    """

    def on_mount(self) -> None:
        self.update(self.render_guide())

    def on_resize(self) -> None:
        self.update(self.render_guide())

    def render_guide(self) -> Text:
        import textwrap

        # a narrow side pane wraps each way under its own text, not under the key
        width = self.content_size.width or 76
        indent = " " * KEY_CELLS
        text = Text()
        text.append("No Spark yet. Add your first one:\n\n", style="bold")
        for binding_id, default, what in WAYS:
            key = key_hint(self, binding_id, default)
            lines = textwrap.wrap(what, max(16, width - KEY_CELLS)) or [""]
            text.append(f"  {key:>2}  ", style="bold reverse")
            text.append(f" {lines[0]}\n")
            for line in lines[1:]:
                text.append(f"{indent}{line}\n")
        text.append("\n")
        for line in textwrap.wrap("Or name one at start: sparktui spark-abcd.local · on a "
                                  "Spark: sparktui local", max(16, width),
                                  break_on_hyphens=False):
            text.append(line + "\n", style="dim")
        for line in textwrap.wrap("Stuck? sparktui doctor checks every layer and says "
                                  "what to fix.", max(16, width)):
            text.append(line + "\n", style="dim")
        text.rstrip()
        return text


async def start_demo_device(app: App, session: Session) -> None:
    """Start the simulated Spark and open it in this session (the session stops it at exit)."""
    problem = await session.open_demo()
    if problem is not None:
        app.notify(problem, title="demo", severity="error", timeout=30, markup=False)
        return
    assert session.demo is not None
    app.post_message(SessionPane.FocusDevice(session.demo.spec.name))
