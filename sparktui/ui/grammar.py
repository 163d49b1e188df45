"""The app-wide half of the keyboard grammar (docs/keys.md): typing, back, quit.

`GrammarApp` is the App that SparkApp is: what `q`, `ctrl+c` and the tab keys do
depends only on the screen stack, the focus and what quitting would end, so it
lives here, apart from the session and the panes.
"""

from __future__ import annotations

from textual.app import App
from textual.widgets import Input, TextArea

from sparktui.ui.ask import ask_first, quit_question


class GrammarApp(App[None]):
    """Back one level with q / ctrl+c; quit at the top, asking when something would end."""

    #: q / ctrl+c at the top level ask first while quit_would_end() names something
    confirm_quit = True

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
