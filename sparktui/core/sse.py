"""Server-sent events, decoded incrementally (the WHATWG event-stream format).

Model servers stream answers as `data: {...}` lines separated by blank lines.
The bytes arrive in arbitrary pieces (a UTF-8 character or a `\\r\\n` can be
split between two reads), so the decoder keeps state between `feed` calls and
gives the same events however the stream was cut. It never raises on odd
input: lines it does not understand are counted in `ignored`, so a caller can
say "N malformed lines skipped" instead of failing the whole answer.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

#: a line longer than this is cut off and counted in `overlong`: memory stays bounded
MAX_LINE_CHARS = 1024 * 1024
#: an event whose `data:` lines add up to more than this (a server that never sends the
#: blank line that ends an event) is dropped and counted in `overlong` as well
MAX_EVENT_CHARS = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Bytes in, events out. `feed` for each piece read, `close` at the end of the stream."""

    def __init__(self, max_line_chars: int = MAX_LINE_CHARS,
                 max_event_chars: int = MAX_EVENT_CHARS) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._max_line = max_line_chars
        self._max_event = max_event_chars
        self._event_chars = 0
        self._event_overlong = False  # inside an event we already gave up on
        self._buffer = ""
        self._skip_lf = False  # the last piece ended in \r: a \n first in the next belongs to it
        self._started = False  # a BOM is stripped only at the very start
        self._data: list[str] = []
        self._has_data = False
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None
        self._overlong = False  # inside a line we already gave up on
        #: lines that were neither a known field nor a comment, plus overlong ones
        self.ignored = 0
        #: lines and events dropped for their size: data lost, the caller must say so
        self.overlong = 0
        #: the first few ignored lines (truncated), for an error message
        self.ignored_samples: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        return self.feed_text(self._decoder.decode(chunk))

    def feed_text(self, text: str) -> list[SSEEvent]:
        if not self._started and text:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        if self._skip_lf and text:
            self._skip_lf = False
            if text.startswith("\n"):
                text = text[1:]
        events: list[SSEEvent] = []
        start = 0
        buffer = self._buffer + text if self._buffer else text
        self._buffer = ""
        length = len(buffer)
        while start < length:
            cr = buffer.find("\r", start)
            lf = buffer.find("\n", start)
            if cr == -1 and lf == -1:
                break
            end = lf if cr == -1 else cr if lf == -1 else min(cr, lf)
            line = buffer[start:end]
            if buffer[end] == "\r":
                if end + 1 < length:
                    start = end + 2 if buffer[end + 1] == "\n" else end + 1
                else:
                    start = end + 1
                    self._skip_lf = True
            else:
                start = end + 1
            self._line(line, events)
        rest = buffer[start:]
        if len(rest) > self._max_line:
            # keep reading, but drop this line: a server gone mad must not eat memory
            if not self._overlong:
                self._note_ignored(rest)
                self.overlong += 1
            self._overlong = True
            rest = ""
        self._buffer = rest
        return events

    def close(self) -> list[SSEEvent]:
        """The stream ended. An event whose lines all arrived is still delivered.

        The specification drops an event not closed by a blank line; servers
        that end with `data: [DONE]\\n` and no blank line are common enough to
        deliver it anyway. A line cut off mid-way (no line break) is dropped:
        half a JSON object is no use to anyone.
        """
        events: list[SSEEvent] = []
        tail = self._decoder.decode(b"", final=True)
        if tail:
            events.extend(self.feed_text(tail))
        self._buffer = ""
        if self._has_data:
            self._dispatch(events)
        return events

    # -- internals ---------------------------------------------------------------
    def _note_ignored(self, line: str) -> None:
        self.ignored += 1
        if len(self.ignored_samples) < 3:
            self.ignored_samples.append(line[:80])

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if self._overlong:
            self._overlong = False  # the rest of a line we already gave up on
            return
        if not line:
            self._dispatch(events)
            return
        if line.startswith(":"):
            return  # a comment (keep-alive pings)
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            if self._event_overlong:
                return
            self._event_chars += len(value) + 1
            if self._event_chars > self._max_event:
                self._note_ignored(line)
                self.overlong += 1
                self._event_overlong = True
                self._data = []
                self._has_data = False
                return
            self._data.append(value)
            self._has_data = True
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._last_id = value
        elif field == "retry":
            if value.isascii() and value.isdigit():
                self._retry = int(value)
            else:
                self._note_ignored(line)
        else:
            self._note_ignored(line)

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if self._has_data:
            events.append(SSEEvent(data="\n".join(self._data), event=self._event or "message",
                                   id=self._last_id, retry=self._retry))
        self._data = []
        self._has_data = False
        self._event_chars = 0
        self._event_overlong = False
        self._event = ""
        self._retry = None
