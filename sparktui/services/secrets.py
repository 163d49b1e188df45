"""Secrets in the system keyring: deploy tokens (NGC_API_KEY, HF_TOKEN), endpoint keys.

Stored with `keyring` under the service name "sparktui". Values are never
written to the config, the audit log or any log: callers get them, use
them, and drop them (`SecretLookup`'s repr hides the value).

keyring backends may block (D-Bus, a locked keychain prompting), so every
call runs in a thread. With no backend at all (a headless box without a
Secret Service) `get` answers None and `problem()` says so plainly; `set`
raises SecretsUnavailable with a message that offers the environment
variable instead.

`get`/`set`/`delete` is the plain keyring interface (endpoint keys use it);
`lookup` adds the environment first, for the deploy presets: an explicit
`HF_TOKEN=... sparktui` wins for that run.

`SecretStore.in_memory()` keeps secrets in a dict for one process: `--demo`
uses it, so an API key typed in the demo never reaches the user's keyring.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

SERVICE_NAME = "sparktui"


class SecretsUnavailable(Exception):
    """No usable keyring: the message says how to pass the secret instead."""


@dataclass(frozen=True)
class SecretLookup:
    name: str
    value: str | None
    source: str | None  # "environment", "keyring" or None when not found
    #: why the keyring could not be asked (no backend, locked), None when it could
    keyring_problem: str | None = None

    def __repr__(self) -> str:  # never put the value in a traceback or a log line
        shown = "set" if self.value else "unset"
        return f"SecretLookup({self.name}, {shown}, source={self.source})"


def no_backend_message(name: str, detail: str = "") -> str:
    why = f" ({detail})" if detail else ""
    return (f"No keyring backend is available on this machine{why}, so {name} cannot be "
            f"stored. Set it in the environment before starting sparktui (export {name}=...), "
            "or type it for this deploy only: it is not saved anywhere.")


class KeyringBackend(Protocol):
    """The part of a keyring backend (keyring.backend.KeyringBackend) a store uses."""

    def get_password(self, service: str, username: str) -> str | None: ...

    def set_password(self, service: str, username: str, password: str) -> None: ...

    def delete_password(self, service: str, username: str) -> None: ...


class MemoryKeyring:
    """Secrets for this process only, in a dict; nothing is written anywhere."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._values.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._values[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        import keyring.errors

        if self._values.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not set")


def _backend_problem() -> str | None:
    import keyring
    from keyring.backends import fail

    if isinstance(keyring.get_keyring(), fail.Keyring):
        return "keyring found no backend"
    return None


class SecretStore:
    def __init__(self, environ: Mapping[str, str] | None = None,
                 service: str = SERVICE_NAME, *, backend: KeyringBackend | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self.service = service
        #: None: the system keyring (keyring's choice of backend)
        self._backend = backend

    @property
    def kept_in(self) -> str:
        """Where a stored secret goes, in the user's words."""
        return "the system keyring" if self._backend is None else \
            "memory, for this session only"

    @classmethod
    def in_memory(cls, environ: Mapping[str, str] | None = None) -> SecretStore:
        """A store whose secrets live in this process only (the demo's sandbox)."""
        return cls(environ, backend=MemoryKeyring())

    def _keyring(self) -> tuple[KeyringBackend, str | None]:
        """The backend to use, and why it cannot be used (None when it can)."""
        if self._backend is not None:
            return self._backend, None
        import keyring

        return keyring.get_keyring(), _backend_problem()

    # -- blocking parts, run in threads ------------------------------------------------
    def _get_keyring(self, name: str) -> tuple[str | None, str | None]:
        import keyring.errors

        backend, problem = self._keyring()
        if problem is not None:
            return None, problem
        try:
            return backend.get_password(self.service, name) or None, None
        except keyring.errors.KeyringError as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _set(self, name: str, value: str) -> None:
        import keyring.errors

        backend, problem = self._keyring()
        if problem is not None:
            raise SecretsUnavailable(no_backend_message(name, problem))
        try:
            backend.set_password(self.service, name, value)
        except keyring.errors.KeyringError as exc:
            raise SecretsUnavailable(no_backend_message(name, f"{type(exc).__name__}: {exc}")) \
                from exc

    def _delete(self, name: str) -> None:
        import keyring.errors

        backend, problem = self._keyring()
        if problem is not None:
            return  # no keyring: nothing can be stored, so nothing to forget
        try:
            backend.delete_password(self.service, name)
        except keyring.errors.PasswordDeleteError:
            return  # nothing stored: nothing to forget
        except keyring.errors.KeyringError as exc:
            raise SecretsUnavailable(no_backend_message(name, str(exc))) from exc

    # -- the interface ------------------------------------------------------------------
    async def problem(self) -> str | None:
        """Why secrets cannot be stored here, or None when a keyring backend works."""
        if self._backend is not None:
            return None
        return await asyncio.to_thread(_backend_problem)

    async def get(self, name: str) -> str | None:
        """The keyring's value for `name`; None when unset or when there is no keyring."""
        value, _problem = await asyncio.to_thread(self._get_keyring, name)
        return value

    async def set(self, name: str, value: str) -> None:
        await asyncio.to_thread(self._set, name, value)

    async def delete(self, name: str) -> None:
        await asyncio.to_thread(self._delete, name)

    async def lookup(self, name: str) -> SecretLookup:
        """The environment variable `name` if set, else the keyring's value."""
        value = self._environ.get(name)
        if value:
            return SecretLookup(name, value, "environment")
        value, problem = await asyncio.to_thread(self._get_keyring, name)
        return SecretLookup(name, value, "keyring" if value else None, problem)
