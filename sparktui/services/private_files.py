"""Files only their owner may read: chat history, the audit log, the app log.

Prompts and answers, and the record of what was done to which device, are
nobody else's business on a shared machine. Each lives in a 0700 directory
and is created 0600, whatever the umask; an existing one with looser modes is
tightened when we open it (when we own it).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) and make the directory itself 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make sure `path` exists, 0600, in a 0700 directory; its contents are left alone."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    os.close(fd)
    _tighten(path, FILE_MODE)
    return path


def _tighten(path: Path, mode: int) -> None:
    with contextlib.suppress(OSError):  # not ours (a shared dir): leave it, never fail on it
        current = path.stat().st_mode & 0o777
        if current & ~mode:
            os.chmod(path, current & mode)
