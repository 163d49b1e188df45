"""Binding ids and the keys they are bound to, after the user's keymap.

Every Binding in the UI carries an `id` ("app.help", "devices.retry", ...), so
`[settings] keymap = { "app.help" = "f1" }` can rebind it (Textual's
`App.set_keymap`). The text that points users at a key asks here, so a rebound
key is shown as it is, not as it was.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.binding import Binding
from textual.dom import DOMNode

#: binding ids of the actions that destroy or interrupt something: each asks first,
#: naming its target, and none shares a key with navigation or sorting (docs/keys.md)
DESTRUCTIVE_BINDING_IDS = frozenset({
    "containers.stop", "containers.restart", "containers.remove",
    "images.remove", "images.remove_unused",
    "telemetry.kill", "telemetry.kill.force",
    "tunnels.remove", "devices.remove", "chat_history.delete",
})
#: the keys the table grammar owns, on every tab (sparktui.ui.widgets.nav_table)
NAVIGATION_KEYS = frozenset({"j", "k", "g", "G", "n", "N", "slash", "up", "down", "home",
                             "end", "pageup", "pagedown", "escape", "enter",
                             "left_square_bracket", "right_square_bracket"})
#: one sort grammar on every sortable table: o cycles the column, O reverses it
SORT_KEY = "o"
SORT_REVERSE_KEY = "O"


def binding_keys(owners: Iterable[type[DOMNode]]) -> dict[str, str]:
    """Binding id -> its default keys, for every Binding with an id in `owners`."""
    keys: dict[str, str] = {}
    for owner in owners:
        for binding in owner.BINDINGS:
            if isinstance(binding, Binding) and binding.id:
                keys[binding.id] = binding.key
    return keys


def key_hint(node: DOMNode, binding_id: str, default: str) -> str:
    """The key (as the footer shows it) that runs `binding_id` in `node`'s app.

    Falls back to `default` when the binding has no key in the keymap (or the
    app is not sparktui's).
    """
    from sparktui.ui.grammar import GrammarApp  # it imports the dialogs, which use this

    app = node.app
    key = app.key_for(binding_id) if isinstance(app, GrammarApp) else None
    return key or default


def keys_of(node: DOMNode, binding_id: str, default: str) -> tuple[str, ...]:
    """Every key (Textual key names) bound to `binding_id` now, after the user's keymap."""
    from sparktui.ui.grammar import GrammarApp

    app = node.app
    keys = app.keys_for(binding_id) if isinstance(app, GrammarApp) else None
    return tuple(keys) if keys else tuple(k.strip() for k in default.split(",") if k.strip())
