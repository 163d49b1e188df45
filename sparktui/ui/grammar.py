"""The app-wide half of the keyboard grammar (docs/keys.md): typing, back, quit.

`GrammarApp` is the App that SparkApp is: what `q`, `ctrl+c` and the tab keys do
depends only on the screen stack, the focus and what quitting would end, so it
lives here, apart from the session and the panes.
"""

from __future__ import annotations

from textual.app import App
from textual.binding import Binding
from textual.widgets import Input, TextArea

from sparktui.ui.ask import ask_first, quit_question


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
