"""What every streamed command needs on the reading side, SSH or local alike.

- Its stderr is drained as it comes, so a chatty command can never fill the
  channel window (about 2 MiB over SSH) and freeze its stdout: the bytes are
  counted and only the last few lines are kept, for the error message.
- Its stdout is read in chunks and cut into lines of bounded length, so
  output without newlines cannot grow memory.
- A stream that delivers no line within its `stall_after` raises
  StreamStalled, so its owner can say "not answering" and restart it without
  waiting for the link to drop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from sparktui.core import aio
from sparktui.core.lines import LineAssembler
from sparktui.transport.base import StreamStalled

#: a stdout line longer than this is cut (the rest of it is dropped as it arrives)
MAX_LINE_CHARS = 64 * 1024
#: stderr lines kept for the error message, and their length
STDERR_TAIL_LINES = 20
STDERR_LINE_CHARS = 500
CHUNK = 65536

ReadChunk = Callable[[int], Awaitable[bytes | str]]


class StderrTail:
    """Drains a stderr reader in a task of its own; keeps a count and the last lines."""

    def __init__(self, read: ReadChunk, name: str) -> None:
        self.bytes = 0
        self._lines: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._assembler = LineAssembler(STDERR_LINE_CHARS)
        self._task = asyncio.get_running_loop().create_task(self._drain(read),
                                                            name=f"stderr:{name}")

    async def _drain(self, read: ReadChunk) -> None:
        with contextlib.suppress(Exception):  # the stream's end, however it comes
            while True:
                chunk = await read(CHUNK)
                if not chunk:
                    break
                data = chunk.encode("utf-8", "replace") if isinstance(chunk, str) else chunk
                self.bytes += len(data)
                self._lines.extend(self._assembler.feed(data))
        last = self._assembler.flush()
        if last:
            self._lines.append(last)

    async def finish(self, within: float = 2.0) -> str:
        """The kept lines, once the reader has ended (or after `within` seconds)."""
        # only a timeout is swallowed: a cancellation of the caller must go on up
        with contextlib.suppress(TimeoutError):
            await aio.within(asyncio.shield(self._task), within)
        return self.text

    def cancel(self) -> None:
        self._task.cancel()

    @property
    def text(self) -> str:
        lines = [line for line in self._lines if line.strip()]
        return "\n".join(lines)


async def bounded_lines(read: ReadChunk, *, stall_after: float | None,
                        what: str) -> AsyncIterator[str]:
    """Lines from `read`, each at most MAX_LINE_CHARS; StreamStalled after a silence.

    The silence counts from the last complete line, not the last byte: a
    command that trickles bytes without ever finishing a line is stalled too.
    """
    assembler = LineAssembler(MAX_LINE_CHARS)
    loop = asyncio.get_running_loop()
    last_line = loop.time()
    while True:
        wait = None if stall_after is None else max(0.0, last_line + stall_after - loop.time())
        try:
            chunk = await aio.within(read(CHUNK), wait)
        except TimeoutError:
            raise StreamStalled(f"{what}: no output for {stall_after:.0f} s (not answering)") \
                from None
        if not chunk:
            break
        data = chunk.encode("utf-8", "replace") if isinstance(chunk, str) else chunk
        lines = assembler.feed(data)
        if lines:
            last_line = loop.time()
        for line in lines:
            yield line
    tail = assembler.flush()
    if tail:
        yield tail
