"""The prompt box of the Chat tab: Enter sends, Shift+Enter (or Ctrl+J) adds a line."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea


class ChatInput(TextArea):
    """A TextArea whose Enter sends. The text stays until the pane has taken it."""

    HELP_SCOPE = "the prompt"

    BINDINGS = [
        # priority: TextArea itself would insert a newline for Enter
        Binding("enter", "send", "Send", priority=True, id="chat.send"),
        Binding("shift+enter,ctrl+j", "newline", "New line", show=False, priority=True,
                id="chat.newline"),
    ]

    class Send(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, **kwargs) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus",
                         **kwargs)
        # a steady caret: a blinking one rewrote the prompt's line from its left edge
        # twice a second (0.5 KB/s to the terminal while the Chat tab sat idle)
        self.cursor_blink = False

    def action_send(self) -> None:
        if self.text.strip():
            self.post_message(self.Send(self.text))

    def action_newline(self) -> None:
        self.insert("\n")
