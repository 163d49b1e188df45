"""The one writer of sparktui's own files: the config and the session state.

Every save is a read-modify-write of a whole TOML file (comments kept, written
atomically). Two saves at once (a tunnel saved while a chat endpoint is) would
each read the old file, and the second rename would drop the first one's
change. So every write of a file goes through `write_lock(path)`: a lock per
file for this process's threads and event loop, and an flock on the file's
directory for other sparktui processes (`sparktui tunnels add` while the TUI
runs). `update_config` and `write_atomically` take it themselves, so no
caller can forget it.

`ConfigStore` is what the app and the CLI hold: one object that reads and
writes one config file and one session file. Typed validation of values
plugs in where the writes are built (`save_settings` checks every value
against `settings_rules` before anything is written).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sparktui.services.config import Config
    from sparktui.services.state import SessionState

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process at a time is all we promise
    fcntl = None  # type: ignore[assignment]

_GUARD = threading.Lock()
_LOCKS: dict[str, threading.RLock] = {}
_DEPTH: dict[str, int] = {}  # nesting of the holder (only the holder touches its entry)


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """Hold the write lock of `path` (re-entrant; blocking: call it from a thread)."""
    key = os.path.abspath(path)
    with _GUARD:
        lock = _LOCKS.setdefault(key, threading.RLock())
    with lock:
        depth = _DEPTH.get(key, 0)
        _DEPTH[key] = depth + 1
        fd = None
        try:
            if depth == 0 and fcntl is not None:
                # the directory, not a lock file beside the config: nothing new appears
                # in the user's config dir, and the rename-over keeps no inode to lock
                Path(key).parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(Path(key).parent, os.O_RDONLY)
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            if fd is not None:
                os.close(fd)  # closing drops the flock
            _DEPTH[key] = depth


class ConfigStore:
    """Reads and writes one config file and one session file, one write at a time."""

    def __init__(self, path: Path, *, state_path: Path | None = None) -> None:
        self.path = path
        #: None: the data dir's session.toml
        self.state_path = state_path

    def load(self) -> Config:
        from sparktui.services.config import load_config

        return load_config(self.path)

    def update(self, mutate: Callable[[Any], None]) -> None:
        """Edit the config in place (`mutate` gets a tomlkit document). Blocking."""
        from sparktui.services.config import update_config

        update_config(self.path, mutate)

    async def update_async(self, mutate: Callable[[Any], None]) -> None:
        await asyncio.to_thread(self.update, mutate)

    def save_settings(self, **changes: object) -> list[str]:
        """Write validated settings, then read the file back: returns its problems."""
        from sparktui.services.config import load_config, save_settings

        with write_lock(self.path):
            save_settings(self.path, **changes)
            return load_config(self.path).problems

    def load_state(self) -> tuple[SessionState, list[str]]:
        from sparktui.services.state import load_state

        return load_state(self.state_path)

    def save_state(self, state: SessionState) -> None:
        from sparktui.services.state import save_state

        save_state(state, self.state_path)
