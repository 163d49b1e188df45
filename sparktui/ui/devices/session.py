"""The app's side of the device work: opening devices, the facts cache, the saved session.

Kept out of app.py so the shell stays small: SparkApp calls these in a line
each. Nothing here draws; the screens next to this module do.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from textual.app import ScreenStackError
from textual.css.query import NoMatches
from textual.widgets import TabbedContent

from sparktui.core.device import DeviceSpec
from sparktui.services.devices import make_link
from sparktui.services.facts import FactsService
from sparktui.services.state import SessionState, save_state
from sparktui.transport.ssh_types import SSHOptions

log = logging.getLogger(__name__)

_FACTS: weakref.WeakKeyDictionary[Any, FactsService] = weakref.WeakKeyDictionary()


def facts_service(app: Any) -> FactsService:
    """The app's one facts cache, shared by every details screen."""
    service = _FACTS.get(app)
    if service is None:
        service = _FACTS[app] = FactsService()
    return service


def ssh_options(app: Any) -> SSHOptions:
    """The options the session's links use (keepalives, host-key policy)."""
    settings = app.settings
    return SSHOptions(keepalive_interval=settings.keepalive_interval,
                      keepalive_count_max=settings.keepalive_count_max,
                      accept_new_host_keys=getattr(app, "accept_new_host_keys", False))


def open_device(app: Any, spec: DeviceSpec) -> bool:
    """Add `spec` to the running session and start connecting; False if already open."""
    if app.fleet.get(spec.name) is not None:
        return False
    link = make_link(spec, app.settings, ssh_options=ssh_options(app),
                     host_key_prompt=getattr(app, "ask_host_key", None))
    app.fleet.add(link)
    link.start()
    if spec not in app.specs:
        app.specs.append(spec)
    attach = getattr(app, "attach_telemetry", None)
    if attach is not None:
        attach()
    announce_fleet_change(app)
    return True


def announce_fleet_change(app: Any) -> None:
    """Tell every tab that the fleet has a new link."""
    from sparktui.ui.messages import FleetChanged
    from sparktui.ui.panes import PANES

    for pane in PANES:
        try:
            app.query_one(f"#{pane.id}-pane").post_message(FleetChanged())
        except NoMatches:
            continue


def connect_all(app: Any) -> tuple[int, int]:
    """Open every configured device not open yet, and retry the failed ones now.

    Returns (opened, retried).
    """
    opened = sum(open_device(app, spec) for spec in app.config.devices)
    retried = 0
    for link in app.fleet.links:
        if link.status.state.value in ("failed", "reconnecting"):
            link.retry()
            retried += 1
    return opened, retried


def current_tab(app: Any, fallback: str | None = None) -> str | None:
    try:
        return app.query_one(TabbedContent).active or fallback
    except (NoMatches, ScreenStackError):  # the screen is already gone (the app is ending)
        return fallback


def session_state(app: Any) -> SessionState:
    demo = getattr(app, "demo", None)
    demo_name = demo.spec.name if demo is not None else None
    if demo_name is None and getattr(app, "demo_requested", False):
        from sparktui.services.demo import DEMO_DEVICE_NAME

        demo_name = DEMO_DEVICE_NAME
    restored = getattr(app, "restore_state", None)
    specs = [link.spec for link in app.fleet.links] or list(app.specs)
    return SessionState.of(specs, demo=bool(getattr(app, "demo_requested", False)),
                           tab=current_tab(app, restored.tab if restored else None),
                           focused=getattr(app, "focused_device", None), demo_name=demo_name)


async def save_session(app: Any) -> None:
    """Write the session state file (in a thread); a failure is logged, not raised:
    the app is closing and must close its links whatever happens here."""
    state = session_state(app)
    path = getattr(app, "state_path", None)
    try:
        await asyncio.to_thread(save_state, state, path)
    except OSError:
        log.exception("the session state was not saved")


def restore_view(app: Any) -> None:
    """Bring back the last session's tab and focused device (once links exist)."""
    state: SessionState | None = getattr(app, "restore_state", None)
    if state is None:
        return
    names = [link.name for link in app.fleet.links]
    if state.focused in names:
        app.focused_device = state.focused
    from sparktui.ui.panes import PANES

    if state.tab in {pane.id for pane in PANES}:
        app.action_show_tab(state.tab)
    elif state.tab:
        log.warning("last session's tab %r does not exist any more", state.tab)
