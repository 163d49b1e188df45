"""Modal screens of the shell."""

from sparktui.ui.screens.confirm import ConfirmScreen
from sparktui.ui.screens.help import HelpScreen, KeyHelp
from sparktui.ui.screens.host_key import HostKeyScreen

__all__ = ["ConfirmScreen", "HelpScreen", "HostKeyScreen", "KeyHelp"]
