"""The audit log: one JSON line per action that changed a device.

Kept in the user's data dir (audit.jsonl). Every service that changes a device
(kill a process, stop a container, deploy, add a key) records what it did and
how it ended, so "who stopped my vLLM container?" has an answer.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from sparktui.services.private_files import FILE_MODE, private_dir

log = logging.getLogger(__name__)


class ReadOnlyError(PermissionError):
    """An action that changes a device was asked for in read-only mode."""


def default_audit_path() -> Path:
    from sparktui.services.config import data_dir

    return data_dir() / "audit.jsonl"


class AuditLog:
    """Appends records; safe to call from thread workers (docker-py) and the event loop.

    Recording never raises: the action it records has already happened, and a
    read-only or full disk must not turn "the kill worked" into "kill failed"
    (which invites a second try with SIGKILL). A record that could not be
    written is logged, counted in `unwritten`, and `last_error` says why.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_audit_path()
        self._lock = threading.Lock()
        self._who = f"{getpass.getuser()}@{socket.gethostname()}"
        self.unwritten = 0
        self.last_error: str | None = None

    def record(self, device: str, action: str, target: str, result: str,
               **details: Any) -> dict[str, Any]:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "who": self._who,
                 "device": device, "action": action, "target": target, "result": result}
        entry.update(details)
        line = json.dumps(entry, ensure_ascii=False, default=str)
        with self._lock:
            try:
                private_dir(self.path.parent)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
                with os.fdopen(fd, "a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
            except OSError as exc:
                self.unwritten += 1
                self.last_error = f"audit log {self.path} not written: {exc.strerror or exc}"
                log.warning("%s (%s %s on %s: %s)", self.last_error, action, target, device,
                            result)
        return entry

    def entries(self) -> list[dict[str, Any]]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line after a crash: keep the rest readable
        return out
