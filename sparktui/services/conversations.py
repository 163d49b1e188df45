"""Chat conversations, kept in SQLite under the user's data directory.

The schema carries a version (`PRAGMA user_version`) and a list of
migrations: a newer sparktui upgrades an older file in place, and an older
sparktui refuses a file it does not understand rather than damage it.

sqlite3 blocks, so every call runs on one worker thread of the store's own
(sqlite connections belong to the thread that made them); the async methods
are what the UI and the CLI call.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sparktui.services.private_files import private_file

DB_NAME = "chat.sqlite3"
T = TypeVar("T")

# Each entry upgrades the schema from version N (its index) to N + 1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        endpoint TEXT,
        model TEXT,
        system_prompt TEXT NOT NULL DEFAULT '',
        temperature REAL,
        max_tokens INTEGER
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'done',
        model TEXT,
        figures TEXT,
        error TEXT,
        created REAL NOT NULL
    );
    CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The conversation store cannot be used (a newer schema, a broken file)."""


def default_db_path() -> Path:
    from sparktui.services.config import data_dir

    return data_dir() / DB_NAME


@dataclass
class Message:
    role: str  # "user", "assistant", "error" (shown, never sent to a model)
    content: str
    status: str = "done"  # assistant: "done", "stopped", "error", "streaming"
    model: str | None = None
    figures: dict[str, Any] | None = None
    error: str | None = None
    id: int | None = None
    created: float = field(default_factory=time.time)


@dataclass
class Conversation:
    id: int
    title: str
    created: float
    updated: float
    endpoint: str | None = None
    model: str | None = None
    system_prompt: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    messages: list[Message] = field(default_factory=list)
    message_count: int = 0

    def api_messages(self) -> list[dict[str, str]]:
        """The history to send: the system prompt, then user and assistant turns.

        Errors are for the reader only; an answer that failed before any text is
        left out, and so is its prompt when it was asked again (many chat templates
        insist that user and assistant turns alternate).
        """
        turns = [m for m in self.messages
                 if m.role == "user" or (m.role == "assistant" and m.content)]
        out: list[dict[str, str]] = []
        if self.system_prompt.strip():
            out.append({"role": "system", "content": self.system_prompt})
        for index, message in enumerate(turns):
            following = turns[index + 1] if index + 1 < len(turns) else None
            if message.role == "user" and following is not None and following.role == "user":
                continue  # a prompt that got no answer and was asked again: roles alternate
            out.append({"role": message.role, "content": message.content})
        return out


def title_from(text: str, limit: int = 60) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    line = re.sub(r"\s+", " ", line)
    return (line[: limit - 1] + "…") if len(line) > limit else (line or "New chat")


def to_markdown(conversation: Conversation) -> str:
    """A conversation as a Markdown document (export)."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.created))
    lines = [f"# {conversation.title}", "",
             f"- started: {when}",
             f"- endpoint: {conversation.endpoint or '-'}",
             f"- model: {conversation.model or '-'}"]
    if conversation.temperature is not None:
        lines.append(f"- temperature: {conversation.temperature}")
    if conversation.max_tokens is not None:
        lines.append(f"- max tokens: {conversation.max_tokens}")
    if conversation.system_prompt.strip():
        lines += ["", "## System", "", conversation.system_prompt.strip()]
    for message in conversation.messages:
        heading = {"user": "User", "assistant": "Assistant", "error": "Error"}.get(
            message.role, message.role.title())
        lines += ["", f"## {heading}", ""]
        lines.append(message.content.rstrip() if message.role != "error"
                     else f"> {message.content.strip()}")
        if message.role == "assistant" and message.status != "done":
            lines += ["", f"*({message.status}{': ' + message.error if message.error else ''})*"]
        if message.figures:
            figures = ", ".join(f"{k} {v}" for k, v in message.figures.items() if v is not None)
            lines += ["", f"<sub>{figures}</sub>"]
    return "\n".join(lines).rstrip() + "\n"


_CONV_COLUMNS = ("id, title, created, updated, endpoint, model, system_prompt, temperature, "
                 "max_tokens")


class ConversationStore:
    """Conversations and their messages in one SQLite file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chat-db")
        self._db: sqlite3.Connection | None = None

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    # -- lifecycle ---------------------------------------------------------------------
    async def open(self) -> ConversationStore:
        await self._call(self._open)
        return self

    async def close(self) -> None:
        await self._call(self._close)
        self._executor.shutdown(wait=False)

    def _open(self) -> None:
        if self._db is not None:
            return
        # prompts and answers: 0600 in a 0700 directory (and the WAL and SHM files
        # sqlite makes beside it inherit the database file's mode)
        private_file(self.path)
        db = sqlite3.connect(self.path)
        try:
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA journal_mode = WAL")
            migrate(db)
        except BaseException:
            db.close()
            raise
        self._db = db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._open()
        assert self._db is not None
        return self._db

    # -- conversations ------------------------------------------------------------------
    async def create(self, title: str = "New chat", *, endpoint: str | None = None,
                     model: str | None = None, system_prompt: str = "",
                     temperature: float | None = None,
                     max_tokens: int | None = None) -> Conversation:
        def run() -> Conversation:
            now = time.time()
            db = self._conn()
            with db:
                cursor = db.execute(
                    "INSERT INTO conversations (title, created, updated, endpoint, model, "
                    "system_prompt, temperature, max_tokens) VALUES (?,?,?,?,?,?,?,?)",
                    (title, now, now, endpoint, model, system_prompt, temperature, max_tokens))
            assert cursor.lastrowid is not None
            return Conversation(cursor.lastrowid, title, now, now, endpoint, model,
                                system_prompt, temperature, max_tokens)

        return await self._call(run)

    async def list_conversations(self) -> list[Conversation]:
        """Every conversation, most recently used first, without messages (counts only)."""
        def run() -> list[Conversation]:
            rows = self._conn().execute(
                f"SELECT {_CONV_COLUMNS}, (SELECT COUNT(*) FROM messages m "
                "WHERE m.conversation_id = c.id) FROM conversations c "
                "ORDER BY updated DESC, id DESC").fetchall()
            return [_conversation(row[:9], count=row[9]) for row in rows]

        return await self._call(run)

    async def get(self, conversation_id: int) -> Conversation | None:
        def run() -> Conversation | None:
            db = self._conn()
            row = db.execute(f"SELECT {_CONV_COLUMNS} FROM conversations WHERE id = ?",
                             (conversation_id,)).fetchone()
            if row is None:
                return None
            conversation = _conversation(row)
            conversation.messages = [
                Message(role, content, status, model, json.loads(figures) if figures else None,
                        error, message_id, created)
                for message_id, role, content, status, model, figures, error, created
                in db.execute("SELECT id, role, content, status, model, figures, error, created "
                              "FROM messages WHERE conversation_id = ? ORDER BY id",
                              (conversation_id,))]
            conversation.message_count = len(conversation.messages)
            return conversation

        return await self._call(run)

    async def update(self, conversation_id: int, **changes: Any) -> None:
        allowed = {"title", "endpoint", "model", "system_prompt", "temperature", "max_tokens"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))}")

        def run() -> None:
            db = self._conn()
            columns = ", ".join(f"{name} = ?" for name in changes)
            with db:
                db.execute(f"UPDATE conversations SET {columns}, updated = ? WHERE id = ?",
                           (*changes.values(), time.time(), conversation_id))

        if changes:
            await self._call(run)

    async def rename(self, conversation_id: int, title: str) -> None:
        await self.update(conversation_id, title=title.strip() or "Untitled")

    async def delete(self, conversation_id: int) -> None:
        def run() -> None:
            db = self._conn()
            with db:
                db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

        await self._call(run)

    # -- messages ---------------------------------------------------------------------------
    async def add_message(self, conversation_id: int, message: Message) -> Message:
        def run() -> Message:
            db = self._conn()
            with db:
                cursor = db.execute(
                    "INSERT INTO messages (conversation_id, role, content, status, model, "
                    "figures, error, created) VALUES (?,?,?,?,?,?,?,?)",
                    (conversation_id, message.role, message.content, message.status,
                     message.model, _dump(message.figures), message.error, message.created))
                db.execute("UPDATE conversations SET updated = ? WHERE id = ?",
                           (time.time(), conversation_id))
            message.id = cursor.lastrowid
            return message

        return await self._call(run)

    async def save_message(self, message: Message) -> None:
        """Write back a message's content, status, figures and error (after streaming)."""
        if message.id is None:
            raise ValueError("the message was never added")

        def run() -> None:
            db = self._conn()
            with db:
                db.execute("UPDATE messages SET content = ?, status = ?, figures = ?, error = ? "
                           "WHERE id = ?", (message.content, message.status,
                                            _dump(message.figures), message.error, message.id))

        await self._call(run)


def _dump(figures: dict[str, Any] | None) -> str | None:
    return json.dumps(figures) if figures else None


def _conversation(row: tuple, count: int = 0) -> Conversation:
    return Conversation(row[0], row[1], row[2], row[3], row[4], row[5], row[6] or "", row[7],
                        row[8], message_count=count)


def migrate(db: sqlite3.Connection) -> int:
    """Bring the schema to SCHEMA_VERSION; returns the version found."""
    found = db.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise StoreError(f"the chat history was written by a newer sparktui (schema {found}, "
                         f"this one knows up to {SCHEMA_VERSION}); it was left untouched")
    for version in range(found, SCHEMA_VERSION):
        # executescript commits first; the version is set in the same script so a
        # crash never leaves a migrated schema with the old number
        db.executescript(f"BEGIN; {MIGRATIONS[version]} PRAGMA user_version = {version + 1}; "
                         "COMMIT;")
    return found
