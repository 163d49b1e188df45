"""Copying text for the user, and saying honestly whether it can have arrived.

The app asks once at start (in a thread) whether tmux passes OSC 52 copies on
(sparktui.services.clipboard); `copy_text` then copies and returns whether a
clipboard can have received it, so no message claims a copy that went nowhere.
"""

from __future__ import annotations

from textual.widget import Widget


class ClipboardReach:
    """What the app found out at start; until then a copy is assumed to arrive."""

    passes: bool = True
    why_not: str = ""


def copy_text(widget: Widget, text: str) -> bool:
    """Copy `text` (the app's own clipboard always has it); True if the user's can too."""
    app = widget.app
    app.copy_to_clipboard(text)  # paste inside sparktui works whatever the terminal does
    return not app.is_headless and ClipboardReach.passes


def not_copied_reason(widget: Widget) -> str:
    if widget.app.is_headless:
        return "no terminal to copy through"
    return ClipboardReach.why_not or "the terminal passes no copies"
