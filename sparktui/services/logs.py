"""Where log records go while the full-screen UI owns the terminal.

Anything written to stderr would be drawn over the screen, so the TUI sends
log records to a rotating file in the platform's log directory instead.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from sparktui.services.private_files import private_file

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class SanitisingFormatter(logging.Formatter):
    """Every log line crosses strip_control: records quote device and server text.

    The one boundary for log files: whoever logs a container name or an SSH
    disconnect reason, `cat sparktui.log` can never retitle the terminal or
    write the clipboard. Newlines stay (tracebacks); every other control goes.
    """

    def format(self, record: logging.LogRecord) -> str:
        from sparktui.core.sanitize import strip_control

        return strip_control(super().format(record), keep_newlines=True)


def log_file_path() -> Path:
    from platformdirs import user_log_path

    return user_log_path("sparktui") / "sparktui.log"


def log_to_file(path: Path | None = None, level: int = logging.INFO) -> Path:
    """Send every sparktui and asyncssh record to a rotating file; returns its path."""
    path = path or log_file_path()
    private_file(path)  # it quotes hosts, commands and device errors
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=2,
                                                   encoding="utf-8")
    handler.setFormatter(SanitisingFormatter(LOG_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # asyncssh logs every channel at INFO: keep its warnings only
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    return path
