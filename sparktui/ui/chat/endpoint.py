"""Adding an endpoint by URL, and setting the API key of the selected one.

The key field is a password field; what is typed goes to the keyring (the
pane stores it in a thread), never to the config file. With no keyring the
screen says so and names the environment variable that serves instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Select, Static

from sparktui.core.openai_chat import BadURL, normalise_base_url
from sparktui.services.endpoints import EndpointSpec

LOCAL = "\0local"  # the Select value for "from this machine" (no device name can be this)


@dataclass
class EndpointForm:
    """What the user asked for: a new endpoint, or a key for an existing one."""

    url: str | None = None
    device: str | None = None
    name: str | None = None
    key_for: EndpointSpec | None = None
    key: str | None = None  # "" clears the stored key


class ChatEndpointScreen(ModalScreen[EndpointForm | None]):
    CSS_PATH = Path(__file__).with_suffix(".tcss")
    BINDINGS = [Binding("escape", "cancel", "Close", id="chat_endpoint.close")]

    def __init__(self, devices: list[str], current: EndpointSpec | None,
                 keyring_problem: str | None, *, kept_in: str = "the system keyring") -> None:
        super().__init__()
        self.kept_in = kept_in
        self.devices = devices
        self.current = current
        self.keyring_problem = keyring_problem

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="chat-endpoint-box"):
            yield Static("Add an endpoint", classes="chat-endpoint-heading")
            yield Static(Text("Any OpenAI-compatible base URL, with or without /v1. On a "
                              "device, the URL is as seen from the device (e.g. "
                              "http://localhost:8000) and is reached over its SSH "
                              "connection."), classes="chat-endpoint-note")
            options = [(Text("this machine (direct)"), LOCAL)]
            options += [(Text(name), name) for name in self.devices]
            yield Select(options, value=self.devices[0] if self.devices else LOCAL,
                         allow_blank=False, id="chat-endpoint-device")
            yield Input(placeholder="URL, e.g. http://localhost:8000/v1", id="chat-endpoint-url")
            yield Input(placeholder="name (optional)", id="chat-endpoint-name")
            yield Static("", id="chat-endpoint-url-note", classes="chat-endpoint-note")
            if self.current is not None:
                yield Static(Text(f"API key for {self.current.describe()}"),
                             classes="chat-endpoint-heading")
                if self.keyring_problem is None:
                    note = (f"Kept in {self.kept_in}, sent only to this endpoint. "
                            "Enter an empty key to remove it.")
                else:
                    note = (f"No keyring to keep it in ({self.keyring_problem}). Set "
                            f"${self.current.key_env_var} before starting sparktui, or "
                            "enter it here for this session only.")
                yield Static(Text(note), classes="chat-endpoint-note")
                yield Input(placeholder="API key", password=True, id="chat-endpoint-key")
            yield Static(Text("enter saves the field · esc closes"),
                         classes="chat-endpoint-note")
        yield Footer()  # this dialog's own keys, not the screen's behind it

    def on_mount(self) -> None:
        self.query_one("#chat-endpoint-url", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "chat-endpoint-url":
            return
        note = self.query_one("#chat-endpoint-url-note", Static)
        if not event.value.strip():
            note.update("")
            return
        try:
            base = normalise_base_url(event.value)
        except BadURL as exc:
            note.update(Text(f"cannot use this URL: {exc}"))
            return
        note.update(Text(f"will use {base.url}" + (f" ({base.note})" if base.note else "")))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "chat-endpoint-key" and self.current is not None:
            self.dismiss(EndpointForm(key_for=self.current, key=event.value.strip()))
            return
        url = self.query_one("#chat-endpoint-url", Input).value.strip()
        if not url:
            self.query_one("#chat-endpoint-url", Input).focus()
            return
        try:
            normalise_base_url(url)
        except BadURL:
            return  # the note under the field already says why
        device = self.query_one("#chat-endpoint-device", Select).value
        name = self.query_one("#chat-endpoint-name", Input).value.strip() or None
        self.dismiss(EndpointForm(url=url, device=None if device == LOCAL else str(device),
                                  name=name))

    def action_cancel(self) -> None:
        self.dismiss(None)
