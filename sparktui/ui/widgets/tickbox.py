"""A checkbox whose state reads in the glyph, not in its colour alone.

Textual's Checkbox always draws its X and tells on from off by the X's colour,
which a monochrome terminal, a colour-blind user or a screen reader loses. A
TickBox draws `▐X▌` when ticked and `▐ ▌` when not, like `[x]` and `[ ]`; one
without a label of its own (a settings row, labelled to its left) says "on" or
"off" beside the glyph.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox

TICKED = "X"
UNTICKED = " "
#: the label of a TickBox made without one, by state
STATE_WORDS = {True: "on", False: "off"}


class TickBox(Checkbox):
    """A Checkbox that shows its state as X or blank (and, unlabelled, as on or off)."""

    def __init__(self, label: str = "", value: bool = False, **kwargs) -> None:
        self.says_state = not label  # before the value is set: watch_value reads it
        super().__init__(label or STATE_WORDS[value], value, **kwargs)

    def watch_value(self) -> None:
        super().watch_value()
        if self.says_state:
            self.label = STATE_WORDS[self.value]

    def render(self) -> Content:
        # the class's glyph, per instance: BUTTON_INNER is what the button draws inside
        self.BUTTON_INNER = TICKED if self.value else UNTICKED
        return super().render()
