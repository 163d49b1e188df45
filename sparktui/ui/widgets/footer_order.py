"""Footers lead with `? Help`, and every dialog shows its own keys (docs/keys.md).

Textual's footer lists the keys in force from the focused widget outwards, so
the app-wide `? Help` came last and a 50-column side pane cut it off. A screen
built on `HelpKeyFirst` hands its footer `? Help` first; the rest keep their
order (the focused widget's keys before the screen's). Key dispatch does not
read this order: only what the footer and help show changes.
"""

from __future__ import annotations

from textual.binding import ActiveBinding
from textual.screen import Screen

#: the binding ids a footer shows first, in this order
FOOTER_FIRST = ("app.help",)


class HelpKeyFirst(Screen[None]):
    """A screen whose footer starts with the keys of FOOTER_FIRST."""

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        bindings = super().active_bindings
        first = {key: active for binding_id in FOOTER_FIRST
                 for key, active in bindings.items() if active.binding.id == binding_id}
        return {**first, **bindings}  # the keys of `first` keep their places at the front


class ShellScreen(HelpKeyFirst):
    """The app's first screen: the tabs and the app's footer."""
