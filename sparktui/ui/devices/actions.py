"""What the Devices pane's keys and the palette's device commands do.

Each action pushes one of the device screens and finishes the job when it is
dismissed (open the new device, forget a removed one). The pane and the app
call these in one line, so the device work stays out of their files.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich.text import Text
from textual.app import SystemCommand

from sparktui.core.device import DeviceSpec
from sparktui.services.config import ConfigError
from sparktui.services.devices import remove_device_entry
from sparktui.ui.devices.details import DeviceDetailsScreen
from sparktui.ui.devices.discover import DiscoverScreen
from sparktui.ui.devices.form import DeviceFormScreen
from sparktui.ui.devices.nvsmi import NvsmiScreen
from sparktui.ui.devices.session import connect_all, facts_service, open_device
from sparktui.ui.screens.settings import SettingsScreen

#: every screen with key bindings of this feature: their ids are remappable
DEVICE_SCREENS = (DeviceDetailsScreen, DiscoverScreen, DeviceFormScreen, NvsmiScreen,
                  SettingsScreen)


def _reload_config(app: Any) -> None:
    """Re-read the device list after a change (thread); the app's settings object stays."""
    from sparktui.services.config import load_config

    fresh = load_config(app.config.path)
    app.call_from_thread(setattr, app.config, "devices", fresh.devices)


def _after_save(app: Any, spec: DeviceSpec | None, *, open_it: bool) -> None:
    if spec is None:
        return
    app.run_worker(lambda: _reload_config(app), name="reload-config", thread=True,
                   exit_on_error=False)
    if open_it and open_device(app, spec):
        app.notify(f"{spec.name} saved to the config; connecting.", title="devices",
                   markup=False)
    elif not open_it:
        app.notify(f"{spec.name} saved to the config. A device already open keeps its "
                   "connection settings until sparktui restarts.", title="devices",
                   markup=False)


def add_device(app: Any, prefill: DeviceSpec | None = None) -> None:
    names = {spec.name for spec in app.config.devices}
    screen = DeviceFormScreen(app.config.path, prefill,
                              title=f"Add {prefill.name}" if prefill else None,
                              existing_names=names, read_only=bool(app.read_only))
    app.push_screen(screen, callback=lambda spec: _after_save(app, spec, open_it=True))


def edit_device(app: Any, name: str | None) -> None:
    if name is None:
        app.notify("No device selected.", severity="warning")
        return
    spec = app.config.device(name)
    if spec is None:
        link = app.fleet.get(name)
        # an ad-hoc device (from the command line): editing it saves it to the config
        if link is None:
            return
        add_device(app, link.spec)
        return
    names = {s.name for s in app.config.devices}
    screen = DeviceFormScreen(app.config.path, spec, existing_names=names,
                              read_only=bool(app.read_only))
    app.push_screen(screen, callback=lambda saved: _after_save(app, saved, open_it=False))


def remove_device(app: Any, name: str | None) -> None:
    from sparktui.ui.screens.confirm import ConfirmScreen

    if name is None or app.config.device(name) is None:
        app.notify(f"{name or 'That device'} is not in the config: nothing to remove.",
                   severity="warning", markup=False)
        return
    question = Text.assemble("Remove ", (name, "bold"), " from ", str(app.config.path),
                             "? An open connection stays open until you quit.")

    def remove() -> None:
        try:
            remove_device_entry(app.config.path, name)  # under the config's write lock
        except (ConfigError, OSError) as exc:
            app.call_from_thread(app.notify, f"not removed: {exc}", title="devices",
                                 severity="error", timeout=20, markup=False)
            return
        _reload_config(app)
        app.call_from_thread(app.notify, f"{name} removed from the config.",
                             title="devices", markup=False)

    def answered(yes: bool | None) -> None:
        if yes:
            app.run_worker(remove, name="remove-device", group="config-write", thread=True,
                           exit_on_error=False)

    app.push_screen(ConfirmScreen("Remove device", question), callback=answered)


def show_details(app: Any, name: str | None) -> None:
    link = app.fleet.get(name) if name else None
    if link is None:
        app.notify("No device selected.", severity="warning")
        return
    binary = getattr(app.settings, "units", "binary") != "decimal"
    app.push_screen(DeviceDetailsScreen(link, facts_service(app), binary=binary))


def discover_devices(app: Any, *, mdns: bool = True) -> None:
    """Find devices (mDNS and the ssh_config hosts), or with mdns=False only import hosts."""
    app.push_screen(DiscoverScreen(mdns=mdns),
                    callback=lambda spec: spec and add_device(app, spec))


def connect_all_devices(app: Any) -> None:
    opened, retried = connect_all(app)
    if not opened and not retried:
        app.notify("Every configured device is open already.", title="devices")
        return
    app.notify(f"Opening {opened} device(s), retrying {retried}.", title="devices")


def device_commands(app: Any) -> Iterator[SystemCommand]:
    """The palette's device commands."""
    yield SystemCommand("Devices: add a device", "Name, host, user, port, key, jump host, tags",
                        lambda: add_device(app))
    yield SystemCommand("Devices: find devices", "mDNS (_ssh._tcp), ~/.ssh/config and "
                        "NVIDIA Sync's hosts", lambda: discover_devices(app))
    yield SystemCommand("Devices: connect all", "Open every configured device; retry the "
                        "failed ones now", lambda: connect_all_devices(app))
    yield SystemCommand("Devices: details of the focused device", "Facts, ConnectX-7 links, "
                        "health, nvidia-smi -q", lambda: show_details(app, app.focused_device))
