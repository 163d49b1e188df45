"""docs/keys.md, checked against every binding in the UI.

The bindings are read from the classes themselves (every DOMNode subclass that
sparktui defines), so a new pane or screen is held to the grammar the day it is
added, wherever it lives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from textual.binding import Binding
from textual.dom import DOMNode

import sparktui.ui.app  # noqa: F401  (imports every pane, screen and widget)
from sparktui.ui.keys import (
    DESTRUCTIVE_BINDING_IDS,
    NAVIGATION_KEYS,
    SORT_KEY,
    SORT_REVERSE_KEY,
)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "keys.md"


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def sparktui_bindings() -> list[tuple[type, Binding]]:
    """(owner class, binding) for every Binding a sparktui class declares itself."""
    found = []
    for cls in set(_subclasses(DOMNode)):
        if not cls.__module__.startswith("sparktui."):
            continue
        for binding in cls.__dict__.get("BINDINGS", []):
            if isinstance(binding, Binding):
                found.append((cls, binding))
    return found


def _keys(binding: Binding) -> set[str]:
    return {key.strip() for key in binding.key.split(",")}


def test_every_destructive_binding_exists() -> None:
    ids = {binding.id for _, binding in sparktui_bindings()}
    assert DESTRUCTIVE_BINDING_IDS <= ids, DESTRUCTIVE_BINDING_IDS - ids


def test_destructive_keys_never_navigate_or_sort_on_any_tab() -> None:
    # defect: `s` was sort on Telemetry and stop on Containers; `k` was up and kill
    reserved = NAVIGATION_KEYS | {SORT_KEY, SORT_REVERSE_KEY}
    navigation = {key for _, binding in sparktui_bindings()
                  if binding.id and binding.id.startswith(("table.", "telemetry.device"))
                  for key in _keys(binding)}
    clashes = [(cls.__name__, binding.id, _keys(binding) & (reserved | navigation))
               for cls, binding in sparktui_bindings()
               if binding.id in DESTRUCTIVE_BINDING_IDS
               and _keys(binding) & (reserved | navigation)]
    assert not clashes


def test_one_sort_grammar() -> None:
    sorts = [(cls.__name__, binding) for cls, binding in sparktui_bindings()
             if binding.action.startswith(("sort", "cycle_sort"))]
    assert sorts, "no sortable table found"
    for owner, binding in sorts:
        wanted = SORT_REVERSE_KEY if "reverse" in binding.action else SORT_KEY
        assert _keys(binding) == {wanted}, (owner, binding.id, binding.key)


def test_no_printable_key_fires_while_typing() -> None:
    # a priority binding runs before the focused text field sees the key; the tab keys
    # are the one exception, refused by SparkApp.check_action while a field has focus
    # (test_keys_tmux types digits into every field to prove it)
    # devices.add too: it opens its form the moment `a` is read, so what is typed behind
    # it waits for the form's first field (a paste of `a` and a name lands whole); the
    # Devices tab holds no text field, so no text field is ever under it
    printable = [(cls.__name__, binding.id, binding.key)
                 for cls, binding in sparktui_bindings() if binding.priority
                 and not (binding.id or "").startswith("app.tab.")
                 and binding.id != "devices.add"
                 for key in _keys(binding) if len(key) == 1 or key in {"space", "slash"}]
    assert not printable


def test_every_binding_has_an_id_for_the_keymap() -> None:
    missing = [(cls.__name__, binding.key) for cls, binding in sparktui_bindings()
               if not binding.id]
    assert not missing


def test_q_goes_back_from_every_sub_view() -> None:
    # defect: logs, images and deploy showed `q Quit`: q quit the app from a sub-view.
    # Every screen that closes on escape closes on q too, unless a text field owns q
    # there (forms: q is a letter; Esc cancels them).
    from textual.screen import Screen

    forms = {"DeviceFormScreen", "TunnelForm", "SettingsScreen", "DeployScreen",
             "ChatEndpointScreen", "FitScreen"}
    for cls, binding in sparktui_bindings():
        if not issubclass(cls, Screen) or cls.__name__ in forms:
            continue
        keys = _keys(binding)
        if "escape" in keys:
            assert "q" in keys, (cls.__name__, binding.id, binding.key)


def test_docs_name_every_destructive_key() -> None:
    text = DOCS.read_text()
    by_id = {binding.id: binding for _, binding in sparktui_bindings()}
    for binding_id in DESTRUCTIVE_BINDING_IDS:
        keys = _keys(by_id[binding_id])
        assert any(f"`{key}`" in text for key in keys), (binding_id, keys)
