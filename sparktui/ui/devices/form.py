"""Adding or editing a device: name, host, user, port, identity file, jump host, tags.

Saved to the config's [[devices]] (update_config: comments kept, atomic, a
broken file untouched) in a thread worker. An optional password installs
sparktui's key on the device once (services.keyinstall), in an async worker:
the field is emptied the moment it is read, the value lives only for that
one connection and is never written anywhere. In read-only mode the password
field is disabled: installing a key changes the device.

`save_device` (a `@work` method) saves, then installs the key, and says how
each step went on the form itself; the form closes with the saved spec.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Static

from sparktui.core.device import DestinationError, DeviceSpec
from sparktui.services.audit import ReadOnlyError
from sparktui.services.config import ConfigError
from sparktui.services.devices import save_device_entry
from sparktui.services.link_types import HostKeyPrompt, SSHOptions
from sparktui.ui.widgets.worker_log import LogsWorkerFailures

FIELDS = (("name", "Name"), ("host", "Host (name or address)"), ("user", "User"),
          ("port", "Port"), ("identity_file", "Identity file"),
          ("proxy_jump", "Jump host (ProxyJump)"), ("tags", "Tags (comma separated)"))


def spec_from_form(values: dict[str, str]) -> DeviceSpec:
    """A DeviceSpec from the form's texts; raises ValueError naming the bad field."""
    name = values.get("name", "").strip()
    host = values.get("host", "").strip()
    if not name:
        raise ValueError("Name: a device needs a name")
    if any(c.isspace() for c in name):
        raise ValueError("Name: no spaces (it is typed on the command line)")
    if not host:
        raise ValueError("Host: a host name or address is needed")
    try:
        parsed = DeviceSpec.parse(host, name=name)
    except DestinationError as exc:
        raise ValueError(f"Host: {exc}") from None
    port_text = values.get("port", "").strip()
    port = parsed.port
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"Port: {port_text!r} is not a port (1-65535)")
        port = int(port_text)
    tags = tuple(t.strip() for t in values.get("tags", "").split(",") if t.strip())
    return DeviceSpec(name=name, host=parsed.host, user=values.get("user", "").strip()
                      or parsed.user, port=port,
                      identity_file=values.get("identity_file", "").strip() or None,
                      proxy_jump=values.get("proxy_jump", "").strip() or None, tags=tags)


class _TakenOnce:
    """A password handed to the save worker: read once, then gone (never in a repr)."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value

    def take(self) -> str | None:
        value, self._value = self._value, None
        return value

    def __repr__(self) -> str:
        return "<password>" if self._value else "<no password>"


class DeviceFormScreen(LogsWorkerFailures, ModalScreen[DeviceSpec | None]):
    """Dismisses with the saved DeviceSpec, or None when cancelled."""

    CSS_PATH = Path(__file__).with_name("screens.tcss")
    #: the first field, not the scrolling box around the fields: typing starts at once
    AUTO_FOCUS = "#field-name"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="device_form.save", priority=True),
        Binding("escape", "cancel", "Cancel", id="device_form.cancel"),
    ]

    def __init__(self, config_path: Path, spec: DeviceSpec | None = None, *,
                 title: str | None = None, existing_names: set[str] | None = None,
                 read_only: bool = False, ssh_options: SSHOptions | None = None,
                 host_key_prompt: HostKeyPrompt | None = None) -> None:
        super().__init__()
        self.config_path = config_path
        #: how the key install reaches the device: as the session's links do
        self.ssh_options = ssh_options
        self.host_key_prompt = host_key_prompt
        self.spec = spec
        self.editing = spec is not None and title is None
        self.title_text = title or (f"Edit {spec.name}" if spec else "Add a device")
        self.existing_names = existing_names or set()
        self.read_only = read_only
        self.saved: DeviceSpec | None = None

    def compose(self) -> ComposeResult:
        spec = self.spec
        with Vertical(id="device-form-box", classes="device-box"):
            yield Static(Text(self.title_text, style="bold"), classes="device-box-title")
            with VerticalScroll(id="device-form-fields"):
                for key, label in FIELDS:
                    value = getattr(spec, key, None) if spec else None
                    if key == "tags":
                        value = ", ".join(spec.tags) if spec else ""
                    with Horizontal(classes="form-row"):
                        yield Label(label, classes="form-label")
                        yield Input("" if value is None else str(value), id=f"field-{key}",
                                    compact=True)
                with Horizontal(classes="form-row"):
                    yield Label("Password (optional)", classes="form-label")
                    yield Input(password=True, id="field-password", disabled=self.read_only,
                                compact=True,
                                placeholder="read-only: key install disabled"
                                if self.read_only else "installs a key once; never stored")
            # docked below the fields, which scroll: at 80x24 the errors and Save stay
            # on screen however many fields there are
            with Vertical(id="device-form-foot"):
                yield Static(Text(
                    "A password is used once, to add sparktui's key (~/.ssh/sparktui_ed25519) "
                    "to ~/.ssh/authorized_keys on the device; then sparktui logs in by key.",
                    style="dim"), id="device-form-hint")
                yield Static(id="device-form-errors")
                with Horizontal(classes="device-buttons"):
                    yield Button("Save (ctrl+s)", id="save", variant="primary", compact=True)
                    yield Button("Cancel (esc)", id="cancel", compact=True)
        yield Footer()  # this dialog's own keys, not the screen's behind it

    def values(self) -> dict[str, str]:
        return {key: self.query_one(f"#field-{key}", Input).value for key, _ in FIELDS}

    def _error(self, text: str) -> None:
        self.query_one("#device-form-errors", Static).update(Text(text, style="bold"))

    def action_save(self) -> None:
        try:
            spec = spec_from_form(self.values())
        except ValueError as exc:
            self._error(str(exc))
            return
        replaces = self.spec.name if self.editing and self.spec else None
        if spec.name in self.existing_names and spec.name != replaces:
            self._error(f"Name: a device called {spec.name!r} is already configured")
            return
        password_input = self.query_one("#field-password", Input)
        password = password_input.value
        password_input.value = ""  # not kept on screen, nor in the widget, a moment longer
        self._error("saving…" if not password else "saving, then installing the key…")
        self.save_device(spec, replaces, _TakenOnce(password or None))

    # the description is given: by default Textual writes the arguments' repr into it
    @work(name="save-device", group="config-write", exit_on_error=False,
          description="save-device")
    async def save_device(self, spec: DeviceSpec, replaces: str | None,
                          secret: _TakenOnce) -> None:
        """Save the entry, then (with a password) install the key: in this order, so the
        identity file the install adds is never overwritten by the first save."""
        password = secret.take()  # the worker's arguments keep the holder, not the value
        try:  # save_device_entry takes the config's write lock (services.store)
            await asyncio.to_thread(save_device_entry, self.config_path, spec, replaces)
        except (ConfigError, OSError) as exc:
            self._error(f"Not saved: {exc}")
            return
        self.saved = spec
        if password is None:
            self.dismiss(spec)
            return
        self._error("saved; installing the key…")
        from sparktui.services.keyinstall import KeyInstallError, install_key
        try:
            result = await install_key(spec, password, options=self.ssh_options,
                                       prompt=self.host_key_prompt, read_only=self.read_only)
        except (KeyInstallError, ReadOnlyError, OSError) as exc:
            self._error(f"Key not installed: {exc}")
            return
        finally:
            password = None  # the last reference to it goes here
        keyed = replace(spec, identity_file=str(result.key.path))
        try:
            await asyncio.to_thread(save_device_entry, self.config_path, keyed, spec.name)
        except (ConfigError, OSError) as exc:
            self._error("Key not installed: the key was installed, but the config was not "
                        f"updated: {exc}")
            return
        what = "was already" if result.already_present else "is now"
        self.app.notify(f"sparktui's key ({result.key.fingerprint}) {what} authorised on "
                        f"{keyed.name}; it logs in by key from now on.",
                        title="devices", markup=False)
        self.saved = keyed
        self.dismiss(keyed)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(self.saved)
