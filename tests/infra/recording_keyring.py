"""A keyring backend that records every write, for checking who writes to the keyring.

Chosen in a child process with `PYTHON_KEYRING_BACKEND=tests.infra.recording_keyring.
RecordingKeyring` (keyring's own switch) and `RECORDING_KEYRING_FILE=<path>`: each
set or delete appends one line "set <service> <username>" (never the value) to the
file. Reads answer "not set". The user's real keyring is never asked.
"""

from __future__ import annotations

import os

from jaraco.classes.properties import classproperty
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

FILE_VARIABLE = "RECORDING_KEYRING_FILE"
BACKEND = "tests.infra.recording_keyring.RecordingKeyring"


class RecordingKeyring(KeyringBackend):
    # keyring considers every KeyringBackend subclass that has been imported: once a
    # test imported this module, a priority of 1 made it every later test's keyring,
    # where the file variable is not set. Not viable (keyring's RuntimeError rule)
    # unless the process was started for it.
    @classproperty
    def priority(cls) -> float:  # type: ignore[override]
        if FILE_VARIABLE not in os.environ:
            raise RuntimeError(f"only in a process started with {FILE_VARIABLE}")
        return 1

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
