"""A keyring backend that records every write, for checking who writes to the keyring.

Chosen in a child process with `PYTHON_KEYRING_BACKEND=tests.infra.recording_keyring.
RecordingKeyring` (keyring's own switch) and `RECORDING_KEYRING_FILE=<path>`: each
set or delete appends one line "set <service> <username>" (never the value) to the
file. Reads answer "not set". The user's real keyring is never asked.
"""

from __future__ import annotations

import os

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

FILE_VARIABLE = "RECORDING_KEYRING_FILE"
BACKEND = "tests.infra.recording_keyring.RecordingKeyring"


class RecordingKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def _record(self, what: str, service: str, username: str) -> None:
        with open(os.environ[FILE_VARIABLE], "a", encoding="utf-8") as out:
            out.write(f"{what} {service} {username}\n")

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        self._record("set", service, username)

    def delete_password(self, service: str, username: str) -> None:
        self._record("delete", service, username)
        raise PasswordDeleteError("nothing stored")
