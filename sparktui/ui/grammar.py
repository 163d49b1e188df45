"""The app-wide half of the keyboard grammar (docs/keys.md): typing, back, quit.

`GrammarApp` is the App that SparkApp is: what `q`, `ctrl+c` and the tab keys do
depends only on the screen stack, the focus and what quitting would end, so it
lives here, apart from the session and the panes.
"""

from __future__ import annotations

import time

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input, TextArea

from sparktui.ui.ask import ask_first, quit_question
from sparktui.ui.widgets.footer_order import ShellScreen


class GrammarApp(App[None]):
    """Back one level with q / ctrl+c; quit at the top, asking when something would end.

    The tab keys are priority bindings (SparkApp): a key is forwarded to the focused
    widget before a non-priority binding runs, so the letters typed right after a tab
    key went to the old tab (the q of "quick question" quit). check_action refuses
    them while a text field has focus, so digits typed there are text.
    """

    BINDINGS = [
        # two bindings on q so the footer names what it does: check_action keeps one
        Binding("q", "back", "Back", id="app.back",
                tooltip="Leave this view or dialog: back one level"),
        Binding("q", "quit_asking", "Quit", id="app.quit",
                tooltip="Quit (asks first while tunnels are up or an answer streams)"),
        # priority: these work even while a text field has focus
        Binding("ctrl+c,ctrl+q", "back_or_quit", "Quit", show=False, priority=True,
                id="app.quit.now", tooltip="Back one level; at the top level, quit"),
    ]

    #: q / ctrl+c at the top level ask first while quit_would_end() names something
    confirm_quit = True
    #: the longest a key waits for a new screen to focus its first field (a screen with
    #: nothing to focus gets its keys after this)
    HOLD_KEYS_AT_MOST_S = 0.5

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        #: a screen just pushed, until it has focused something: keys wait for it
        self._settling: Screen | None = None
        self._settling_until = 0.0
        self._held_keys: list[events.Key | events.Paste] = []

    # -- keys typed while a screen opens -------------------------------------------------
    # Textual sends a key to whatever has the focus when the key is read. A form pushed
    # by `a` mounts and focuses its first field some milliseconds later; a letter read
    # meanwhile went to the new screen itself, which drops it (the first letter typed
    # after `a` was lost). So keys wait, in order, until the new screen has focused its
    # first field, and are then handed on as if they had just been read.
    def push_screen(self, screen, *args, **kwargs):  # type: ignore[override]
        pushed = super().push_screen(screen, *args, **kwargs)
        if isinstance(screen, Screen) and screen.focused is None:
            self._settling = screen
            self._settling_until = time.monotonic() + self.HOLD_KEYS_AT_MOST_S
        return pushed

    def _keys_wait(self) -> bool:
        settling = self._settling
        if settling is None or not self.screen_stack:
            return bool(self._held_keys)
        if settling is not self.screen or settling.focused is not None \
                or time.monotonic() > self._settling_until:
            self._settling = None
            return bool(self._held_keys)
        return True

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key | events.Paste) and not event.is_forwarded \
                and self._keys_wait():
            if not self._held_keys:
                self.set_timer(0.01, self._release_held_keys)
            self._held_keys.append(event)
            return
        await super().on_event(event)

    async def _release_held_keys(self) -> None:
        if not self.screen_stack:  # the app closed meanwhile: nobody is left to type to
            self._settling, self._held_keys = None, []
            return
        settling = self._settling
        if settling is not None and settling is self.screen and settling.focused is None \
                and time.monotonic() <= self._settling_until:
            self.set_timer(0.01, self._release_held_keys)  # not focused yet: wait on
            return
        self._settling = None
        held, self._held_keys = self._held_keys, []
        for event in held:  # in the order they were typed; later keys queue behind these
            await super().on_event(event)

    def get_default_screen(self) -> Screen:
        # its footer leads with `? Help`, which a 50-column side pane would cut off last
        return ShellScreen(id="_default")

    def keys_for(self, binding_id: str) -> list[str]:
        """Every key bound to `binding_id` now, after the user's keymap (SparkApp's)."""
        return []

    def key_for(self, binding_id: str) -> str | None:
        """The key that runs `binding_id` now, as the footer shows it (SparkApp's)."""
        return None

    def quit_would_end(self) -> list[str]:
        """What quitting now would cut short ("tunnel web on spark-01", ...)."""
        return []

    @property
    def typing(self) -> bool:
        """A text field has the focus: printable keys are text (docs/keys.md rule 1)."""
        return isinstance(self.focused, Input | TextArea)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "show_tab":
            return not self.typing  # the tab keys are priority bindings: digits are text
        if action == "back":
            return len(self.screen_stack) > 1
        if action == "quit_asking":
            return len(self.screen_stack) == 1
        return True

    async def action_back_or_quit(self) -> None:
        """ctrl+c: leave a sub-view or dialog as its Esc does; quit only at the top."""
        if len(self.screen_stack) > 1:
            await self.action_back()
        else:
            await self.action_quit_asking()

    async def action_quit_asking(self) -> None:
        cut = self.quit_would_end()
        if cut and self.confirm_quit:
            ask_first(self, "Quit", quit_question(cut), lambda: self.call_later(self.action_quit))
        else:
            await self.action_quit()

    async def action_back(self) -> None:
        """Do what Esc does on the screen in front (close, cancel, answer no)."""
        escape = self.screen.active_bindings.get("escape")
        if escape is not None and escape.enabled and escape.binding.action != "back_or_quit":
            await self.run_action(escape.binding.action, escape.node)
        else:
            self.pop_screen()
