"""Asking the user whether to trust a device's host key on first contact."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static

from sparktui.services.link_types import UnknownHostKey


def _address(offer: UnknownHostKey) -> str:
    host = f"[{offer.host}]" if ":" in offer.host else offer.host  # IPv6 literal
    return f"{host}:{offer.port}"


class HostKeyScreen(ModalScreen[bool]):
    """Shows the offered key; dismisses with True (accept) or False (reject)."""

    CSS_PATH = Path(__file__).with_suffix(".tcss")
    BINDINGS = [
        Binding("y", "accept", "Accept key", id="hostkey.accept"),
        Binding("n,escape,q", "reject", "Reject", id="hostkey.reject"),
    ]
    AUTO_FOCUS = "#reject"  # a stray enter must not trust a key

    def __init__(self, offer: UnknownHostKey) -> None:
        super().__init__()
        self.offer = offer

    def compose(self) -> ComposeResult:
        offer = self.offer
        with Vertical(id="host-key-box"):
            yield Static("Unknown host key", id="host-key-title")
            yield Static(Text.assemble(
                "The device ", (_address(offer), "bold"),
                " offered a host key that is not in your known_hosts. Compare the "
                "fingerprint with the device's own (ssh-keygen -lf "
                "/etc/ssh/ssh_host_*_key.pub on it) before you accept.",
            ), id="host-key-intro")
            yield Static(Text.assemble(
                ("Device       ", "dim"), _address(offer), "\n",
                ("Key type     ", "dim"), offer.key_type, "\n",
                ("Fingerprint  ", "dim"), (offer.fingerprint, "bold"), "\n",
                ("Saved to     ", "dim"), offer.known_hosts_path,
            ), id="host-key-facts")
            with Horizontal(id="host-key-buttons"):
                yield Button("Accept (y)", id="accept", variant="warning")
                yield Button("Reject (n)", id="reject", variant="primary")
        yield Footer()  # this dialog's own keys, not the screen's behind it

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "accept")

    def action_accept(self) -> None:
        self.dismiss(True)

    def action_reject(self) -> None:
        self.dismiss(False)
