"""The Devices tab before there is any device: three ways to add a first Spark, and the demo.

Shown by DevicesPane in place of its (empty) table while the session has no
device, one line per way, each with its key (as the keymap has it): find Sparks
on this network, import a host of ~/.ssh/config or NVIDIA Sync, add one by
address, or try the simulated Spark in this session. It fits 80x24 and a 50-column
side pane (the lines wrap there).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from sparktui.ui.keys import key_hint

if TYPE_CHECKING:
    from sparktui.ui.app import SparkApp

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


async def start_demo_device(app: SparkApp) -> None:
    """Start the simulated Spark and open it in this session (the app stops it at exit)."""
    from sparktui.services.demo import start_demo
    from sparktui.services.devices import make_link
    from sparktui.ui.devices.session import announce_fleet_change

    if app.demo is not None:
        app.notify("The demo is already open.", markup=False)
        return
    try:
        demo = await start_demo()
    except Exception as exc:  # the user asked for it: say why it did not start
        log.exception("the demo did not start")
        app.notify(f"the demo device did not start: {type(exc).__name__}: {exc}",
                   title="demo", severity="error", timeout=30, markup=False)
        return
    app.demo = demo
    link = make_link(demo.spec, app.settings, ssh_options=demo.ssh_options)
    app.fleet.add(link)
    link.start()
    app.attach_telemetry()
    announce_fleet_change(app)
    app.focused_device = demo.spec.name
