"""What the Devices pane's keys and the palette's device commands do.

Each action pushes one of the device screens and finishes the job when it is
dismissed (open the new device, forget a removed one). They take the Textual
app (to push screens and notify) and the typed Session (for everything the
devices are): the pane and the palette call them in one line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rich.text import Text
from textual.app import App, SystemCommand

from sparktui.core.device import DeviceSpec
from sparktui.services.config import ConfigError
from sparktui.services.session import Session
from sparktui.ui.devices.details import DeviceDetailsScreen
from sparktui.ui.devices.discover import DiscoverScreen
from sparktui.ui.devices.form import DeviceFormScreen
from sparktui.ui.devices.nvsmi import NvsmiScreen
from sparktui.ui.screens.confirm import ConfirmScreen
from sparktui.ui.screens.settings import SettingsScreen

#: every screen with key bindings of this feature: their ids are remappable
DEVICE_SCREENS = (DeviceDetailsScreen, DiscoverScreen, DeviceFormScreen, NvsmiScreen,
                  SettingsScreen)


def _after_save(app: App, session: Session, spec: DeviceSpec | None, *, open_it: bool) -> None:
    if spec is None:
        return
    app.run_worker(session.reload_devices(), name="reload-config", exit_on_error=False)
    if open_it and session.open_device(spec):
        app.notify(f"{spec.name} saved to the config; connecting.", title="devices",
                   markup=False)
    elif not open_it:
        app.notify(f"{spec.name} saved to the config. A device already open keeps its "
                   "connection settings until sparktui restarts.", title="devices",
                   markup=False)


def add_device(app: App, session: Session, prefill: DeviceSpec | None = None) -> None:
    names = {spec.name for spec in session.config.devices}
    screen = DeviceFormScreen(session.config.path, prefill,
                              title=f"Add {prefill.name}" if prefill else None,
                              existing_names=names, read_only=session.read_only,
                              ssh_options=session.ssh_options(),
                              host_key_prompt=session.host_key_prompt)
    app.push_screen(screen, callback=lambda spec: _after_save(app, session, spec,
                                                               open_it=True))


def edit_device(app: App, session: Session, name: str | None) -> None:
    if name is None:
        app.notify("No device selected.", severity="warning")
        return
    if session.is_demo_device(name):
        # its port and key are thrown away when the demo ends: saving them helps no one
        app.notify(f"{name} is the demo's simulated device: there is nothing to save.",
                   title="devices", severity="warning", markup=False)
        return
    spec = session.config.device(name)
    if spec is None:
        link = session.fleet.get(name)
        # an ad-hoc device (from the command line): editing it saves it to the config
        if link is None:
            return
        add_device(app, session, link.spec)
        return
    names = {s.name for s in session.config.devices}
    screen = DeviceFormScreen(session.config.path, spec, existing_names=names,
                              read_only=session.read_only, ssh_options=session.ssh_options(),
                              host_key_prompt=session.host_key_prompt)
    app.push_screen(screen, callback=lambda saved: _after_save(app, session, saved,
                                                                open_it=False))


def remove_device(app: App, session: Session, name: str | None) -> None:
    if name is None or session.config.device(name) is None:
        app.notify(f"{name or 'That device'} is not in the config: nothing to remove.",
                   severity="warning", markup=False)
        return
    question = Text.assemble("Remove ", (name, "bold"), " from ", str(session.config.path),
                             "? Its connection is closed.")

    async def remove() -> None:
        try:
            await session.remove_device(name)
        except (ConfigError, OSError) as exc:
            app.notify(f"not removed: {exc}", title="devices", severity="error", timeout=20,
                       markup=False)
            return
        app.notify(f"{name} removed from the config and closed.", title="devices",
                   markup=False)

    def answered(yes: bool | None) -> None:
        if yes:
            app.run_worker(remove(), name="remove-device", group="config-write",
                           exit_on_error=False)

    app.push_screen(ConfirmScreen("Remove device", question), callback=answered)


def show_details(app: App, session: Session, name: str | None) -> None:
    link = session.fleet.get(name) if name else None
    if link is None:
        app.notify("No device selected.", severity="warning")
        return
    binary = session.settings.units != "decimal"
    app.push_screen(DeviceDetailsScreen(link, session.facts, binary=binary,
                                        fleet=session.fleet))


def discover_devices(app: App, session: Session, *, mdns: bool = True) -> None:
    """Find devices (mDNS and the ssh_config hosts), or with mdns=False only import hosts."""
    app.push_screen(DiscoverScreen(mdns=mdns, opener=session.open_device),
                    callback=lambda spec: spec and add_device(app, session, spec))


def connect_all_devices(app: App, session: Session) -> None:
    opened, retried = session.connect_all()
    if not opened and not retried:
        app.notify("Every configured device is open already.", title="devices")
        return
    app.notify(f"Opening {opened} device(s), retrying {retried}.", title="devices")


def device_commands(app: App, session: Session,
                    focused: Callable[[], str | None]) -> Iterator[SystemCommand]:
    """The palette's device commands."""
    yield SystemCommand("Devices: add a device", "Name, host, user, port, key, jump host, tags",
                        lambda: add_device(app, session))
    yield SystemCommand("Devices: find devices", "mDNS (_ssh._tcp), ~/.ssh/config and "
                        "NVIDIA Sync's hosts", lambda: discover_devices(app, session))
    yield SystemCommand("Devices: connect all", "Open every configured device; retry the "
                        "failed ones now", lambda: connect_all_devices(app, session))
    yield SystemCommand("Devices: details of the focused device", "Facts, ConnectX-7 links, "
                        "health, nvidia-smi -q",
                        lambda: show_details(app, session, focused()))
