"""Cutting a stream's chunks into complete, bounded lines.

Pure: the transport feeds it what a channel delivers (nvidia-smi rows, host blocks,
stderr), in chunks that split lines and UTF-8 characters anywhere.
"""

from __future__ import annotations

import codecs

__all__ = ["MAX_LINE_CHARS", "LineAssembler"]

MAX_LINE_CHARS = 64 * 1024


class LineAssembler:
    """Turns arbitrary chunks of a stream into complete lines.

    Bytes are decoded incrementally, so a UTF-8 character split across two
    chunks still decodes. A line longer than `max_line` keeps its first
    `max_line` characters and the rest is dropped as it arrives, so garbage
    without newlines cannot grow memory. Trailing `\\r` is stripped (PTYs
    send `\\r\\n`).
    """

    def __init__(self, max_line: int = MAX_LINE_CHARS) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        self.max_line = max_line
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parts: list[str] = []
        self._length = 0

    def feed(self, chunk: bytes | bytearray | memoryview | str) -> list[str]:
        if isinstance(chunk, str):
            # Bytes left pending from a previous chunk can no longer complete.
            text = self._decoder.decode(b"", final=True) + chunk
            self._decoder.reset()
        else:
            text = self._decoder.decode(bytes(chunk))
        pieces = text.split("\n")
        if len(pieces) == 1:
            self._add(text)
            return []
        if self._parts:  # the first line began in an earlier chunk
            self._add(pieces[0])
            pieces[0] = self._take()
        last = pieces.pop()
        # the lines whole within this chunk: cut and stripped in one pass, as _add and
        # _take would (a host block is ~45 lines a second per device, times the fleet)
        limit = self.max_line
        lines = [piece[:limit].rstrip("\r") for piece in pieces]
        self._add(last)
        return lines

    def flush(self) -> str | None:
        """The trailing partial line at stream end (callers usually drop it), or None."""
        # Bytes of an unfinished character become U+FFFD (never a newline).
        self._add(self._decoder.decode(b"", final=True))
        self._decoder.reset()
        if not self._parts:
            return None
        return self._take()

    def _add(self, piece: str) -> None:
        room = self.max_line - self._length
        if room <= 0 or not piece:
            return
        piece = piece[:room]
        self._parts.append(piece)
        self._length += len(piece)

    def _take(self) -> str:
        line = "".join(self._parts).rstrip("\r")
        self._parts.clear()
        self._length = 0
        return line
