"""Where log records go while the full-screen UI owns the terminal.

Anything written to stderr would be drawn over the screen, so the TUI sends
log records to a rotating file in the platform's log directory instead.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_file_path() -> Path:
    from platformdirs import user_log_path

    return user_log_path("sparktui") / "sparktui.log"


def log_to_file(path: Path | None = None, level: int = logging.INFO) -> Path:
    """Send every sparktui and asyncssh record to a rotating file; returns its path."""
    path = path or log_file_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=2,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # asyncssh logs every channel at INFO: keep its warnings only
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    return path
