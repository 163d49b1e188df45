"""Adding or editing a tunnel: a preset or custom ports, checked before it is kept."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Select, Static

from sparktui.services.tunnel_specs import (
    DEFAULT_BIND,
    DEFAULT_REMOTE_HOST,
    PRESETS,
    TunnelSpec,
    TunnelSpecError,
    is_loopback,
    preset,
)
from sparktui.ui.widgets.tickbox import TickBox

REVERSE_HELP = "Reverse: the device's port reaches here"


def _port_field(value: str, what: str, *, optional: bool = False) -> int | None:
    value = value.strip()
    if not value and optional:
        return None
    if not value.isdigit():
        raise TunnelSpecError(f"{what} must be a number from 1 to 65535")
    return int(value)


class TunnelForm(ModalScreen[TunnelSpec | None]):
    """Dismisses with the TunnelSpec to add (local_port None: pick one), or None."""

    CSS_PATH = Path(__file__).with_suffix(".tcss")
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="tunnelform.cancel"),
        Binding("ctrl+s", "save", "Save", id="tunnelform.save"),
    ]

    def __init__(self, devices: list[str], spec: TunnelSpec | None = None, *,
                 title: str = "Add a tunnel", error: str | None = None) -> None:
        super().__init__()
        self.devices = devices
        self.spec = spec
        self.form_title = title
        self.initial_error = error
        #: the name the last preset filled in, so a name the user typed is kept
        self._preset_name: str | None = spec.preset if spec else None

    def compose(self) -> ComposeResult:
        spec = self.spec
        with Vertical(id="tunnel-form-box"):
            yield Static(self.form_title, id="tunnel-form-title")
            # two fields to a row: at 80x24 the title, every field and Save fit unscrolled
            with Horizontal(classes="tunnel-form-row", id="tunnel-form-top"):
                with Vertical():
                    yield Label("Preset")
                    yield Select([(f"{p.title} ({p.port})", p.key) for p in PRESETS],
                                 prompt="Custom", allow_blank=True, id="tunnel-preset",
                                 compact=True, value=spec.preset
                                 if spec and preset(spec.preset) else Select.NULL)
                with Vertical():
                    yield Label("Device")
                    yield Select([(name, name) for name in self.devices], allow_blank=False,
                                 id="tunnel-device", compact=True,
                                 value=spec.device if spec and spec.device in self.devices
                                 else self.devices[0])
            yield Label("Name")
            yield Input(spec.name if spec else "", id="tunnel-name",
                        placeholder="e.g. jupyter", compact=True)
            with Horizontal(classes="tunnel-form-row"):
                with Vertical():
                    yield Label("Remote host (device's view)")
                    yield Input(spec.remote_host if spec else DEFAULT_REMOTE_HOST,
                                id="tunnel-remote-host", compact=True)
                with Vertical():
                    yield Label("Remote port")
                    yield Input(str(spec.remote_port) if spec else "", id="tunnel-remote-port",
                                type="integer", placeholder="e.g. 8888", compact=True)
            with Horizontal(classes="tunnel-form-row"):
                with Vertical():
                    yield Label("Local port")
                    yield Input("" if spec is None or spec.local_port is None
                                else str(spec.local_port), id="tunnel-local-port",
                                type="integer", placeholder="same, or the next free one",
                                compact=True)
                with Vertical():
                    yield Label("Local address")
                    yield Input(spec.bind if spec else DEFAULT_BIND, id="tunnel-bind",
                                compact=True)
            yield TickBox(REVERSE_HELP, spec.reverse if spec else False, id="tunnel-reverse",
                           compact=True)
            yield Static(id="tunnel-form-warning")
            yield Static(id="tunnel-form-error")
            with Horizontal(id="tunnel-form-buttons"):
                yield Button("Save (^s)", id="save", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)
        yield Footer()  # this dialog's own keys, not the screen's behind it

    def on_mount(self) -> None:
        if self.initial_error:
            self._show_error(self.initial_error)
        self._update_warning()
        self.query_one("#tunnel-preset" if self.spec is None else "#tunnel-name").focus()

    # -- filling in --------------------------------------------------------------------
    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "tunnel-preset":
            return
        chosen = preset(event.value if isinstance(event.value, str) else None)
        if chosen is None:
            return
        name = self.query_one("#tunnel-name", Input)
        if not name.value.strip() or name.value == self._preset_name:
            name.value = chosen.key
        self._preset_name = chosen.key
        self.query_one("#tunnel-remote-port", Input).value = str(chosen.port)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "tunnel-bind":
            self._update_warning()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._update_warning()

    def _update_warning(self) -> None:
        bind = self.query_one("#tunnel-bind", Input).value.strip()
        reverse = self.query_one("#tunnel-reverse", Checkbox).value
        warning = self.query_one("#tunnel-form-warning", Static)
        if bind and not reverse and not is_loopback(bind):
            warning.update(Text(f"{bind} is reachable from other machines on the network; "
                                "127.0.0.1 keeps the service to this machine.",
                                style="bold"))
            warning.display = True
        else:
            warning.display = False

    def _show_error(self, message: str) -> None:
        error = self.query_one("#tunnel-form-error", Static)
        error.update(Text(message))
        error.display = True

    # -- saving -----------------------------------------------------------------------------
    def build_spec(self) -> TunnelSpec:
        """The spec the fields describe; raises TunnelSpecError naming the bad field."""
        chosen = self.query_one("#tunnel-preset", Select).value
        preset_key = chosen if isinstance(chosen, str) else None
        device = self.query_one("#tunnel-device", Select).value
        remote_port = _port_field(self.query_one("#tunnel-remote-port", Input).value,
                                  "the remote port")
        assert remote_port is not None
        local_port = _port_field(self.query_one("#tunnel-local-port", Input).value,
                                 "the local port", optional=True)
        name = self.query_one("#tunnel-name", Input).value.strip() or (
            preset_key or str(remote_port))
        spec = TunnelSpec(
            device=str(device), name=name, remote_port=remote_port,
            remote_host=self.query_one("#tunnel-remote-host", Input).value.strip(),
            local_port=local_port, bind=self.query_one("#tunnel-bind", Input).value.strip(),
            reverse=self.query_one("#tunnel-reverse", Checkbox).value, preset=preset_key)
        # a preset on another port keeps the preset: its path still suits the probe
        return spec

    def action_save(self) -> None:
        try:
            spec = self.build_spec()
        except TunnelSpecError as exc:
            self._show_error(str(exc))
            return
        self.dismiss(spec)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()
