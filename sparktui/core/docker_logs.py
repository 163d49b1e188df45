"""Container log text: bytes from the daemon into bounded lines. Pure.

Docker sends logs in chunks that need not end on a line; a container printing
binary noise may never send a newline at all. `LineSplitter` turns chunks
into lines and cuts a line that grows past `max_bytes`, so one runaway line
cannot take the viewer's memory. Lines keep their escapes: showing them
safely is `sparktui.core.sanitize`'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: a longer line is cut here and the rest starts a new line
MAX_LINE_BYTES = 64 * 1024

# Docker's `timestamps=1` prefix: RFC 3339 with nanoseconds, then one space
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) ")


@dataclass(frozen=True)
class LogLine:
    text: str  # raw device text: may hold escapes and markup; sanitize before showing
    timestamp: str = ""  # as Docker sent it, "" when there was none


class LineSplitter:
    def __init__(self, max_bytes: int = MAX_LINE_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_bytes

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer.extend(chunk)
        lines: list[bytes] = []
        while True:
            newline = self._buffer.find(b"\n")
            if newline == -1 or newline > self._max:
                break
            lines.append(bytes(self._buffer[:newline]).rstrip(b"\r"))
            del self._buffer[: newline + 1]
        while len(self._buffer) > self._max:
            lines.append(bytes(self._buffer[: self._max]))
            del self._buffer[: self._max]
        return lines

    def flush(self) -> list[bytes]:
        if not self._buffer:
            return []
        rest = bytes(self._buffer).rstrip(b"\r")
        self._buffer.clear()
        return [rest]


def to_log_line(raw: bytes, *, timestamps: bool = True) -> LogLine:
    text = raw.decode("utf-8", errors="replace")
    if timestamps:
        match = _STAMP.match(text)
        if match:
            return LogLine(text[match.end():], match.group(1))
    return LogLine(text)


def short_timestamp(stamp: str) -> str:
    """'2026-11-28T20:48:13.365673077Z' -> '2026-11-28 20:48:13.365'."""
    if not stamp:
        return ""
    date, _, rest = stamp.partition("T")
    clock = rest.rstrip("Z")
    for sign in ("+", "-"):
        clock = clock.split(sign)[0]
    main, _, frac = clock.partition(".")
    return f"{date} {main}.{(frac + '000')[:3]}"
