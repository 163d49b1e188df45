"""Recording files: gzip'd JSON lines (sparktui.core.recording), bounded and crash-safe.

Writing. Records are buffered and written as one complete gzip member per
flush (every FLUSH_S seconds or FLUSH_RECORDS records, and at close). A gzip
file may hold many members back to back, so a process killed at any moment
loses at most the unflushed buffer and leaves at worst one cut member at the
end, which the reader tolerates. Files are created 0600: telemetry names the
user's processes and models.

Two shapes:
- RecordingWriter: one file, for `sparktui record FILE`; `max_bytes` stops it
  growing (further records are dropped and `full` says so).
- RecordingRing: a directory of numbered segments (segment-000001.jsonl.gz,
  ...) holding at most `segment_bytes * max_segments` bytes: the oldest
  segment goes when a new one starts. For the flight recorder.

Reading: read_records(path) takes either shape (a file, or a ring's
directory) and yields every whole record in order. A cut last member, a cut
last line, a damaged member in the middle (skipped up to the next gzip
header) and lines that are not records are all survived; `problems` says
what was skipped.

Blocking file I/O: call write() freely (it only buffers) and run flush() and
close() off the event loop (asyncio.to_thread) when a loop is running.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

from sparktui.core.recording import Record, RecordError, decode_line, encode_line

log = logging.getLogger(__name__)

__all__ = [
    "FLUSH_RECORDS", "FLUSH_S", "RecordingRing", "RecordingWriter", "read_records",
    "ring_segments",
]

FLUSH_S = 5.0
FLUSH_RECORDS = 500
GZIP_MAGIC = b"\x1f\x8b\x08"
SEGMENT_NAME = re.compile(r"segment-(\d{6,12})\.jsonl\.gz")
READ_CHUNK = 1 << 16


class RecordingWriter:
    """Appends records to one gzip'd JSON-lines file, one gzip member per flush."""

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int | None = None,
                 flush_s: float = FLUSH_S, flush_records: int = FLUSH_RECORDS,
                 clock=time.monotonic) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.flush_s = flush_s
        self.flush_records = flush_records
        self._clock = clock
        self._buffer: list[Record] = []
        self._last_flush = clock()
        self.full = False
        self.records_written = 0
        self.records_dropped = 0
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "ab")
        self.bytes_written = self._file.seek(0, os.SEEK_END)

    @property
    def due(self) -> bool:
        """True when a flush is due (by count or by age of the buffer)."""
        return bool(self._buffer) and (len(self._buffer) >= self.flush_records
                                       or self._clock() - self._last_flush >= self.flush_s)

    def write(self, record: Record) -> None:
        """Buffer one record (cheap: no encoding, never touches the disk)."""
        if self.full or self._file.closed:
            self.records_dropped += 1
            return
        # Encoded at flush, which the recorder runs in a worker thread: a flight
        # recorder of 64 devices writes 128 samples a second, and turning each into
        # JSON on the event loop held up the frames that show them. Records are
        # immutable and hold immutable samples, so encoding them later is the same.
        self._buffer.append(record)

    def _encode(self, records: list[Record]) -> list[str]:
        lines: list[str] = []
        for record in records:
            try:
                lines.append(encode_line(record))
            except (TypeError, ValueError):  # a writer's bug: lose the record, not the file
                log.exception("%s: a %r record could not be encoded; dropped", self.path,
                              record.kind)
                self.records_dropped += 1
        return lines

    def flush(self) -> int:
        """Encode the buffer and write it as one gzip member; returns the bytes written."""
        self._last_flush = self._clock()
        if not self._buffer or self._file.closed:
            return 0
        records, self._buffer = self._buffer, []
        lines = self._encode(records)
        if not lines:
            return 0
        member = gzip.compress("".join(lines).encode("utf-8"), compresslevel=6, mtime=0)
        if self.max_bytes is not None and self.bytes_written + len(member) > self.max_bytes:
            self.full = True
            self.records_dropped += len(lines)
            log.warning("%s reached its size limit (%d bytes); recording stopped",
                        self.path, self.max_bytes)
            return 0
        self._file.write(member)
        self._file.flush()
        self.bytes_written += len(member)
        self.records_written += len(lines)
        return len(member)

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self.flush()
        finally:
            self._file.close()


def ring_segments(directory: str | os.PathLike[str]) -> list[Path]:
    """A ring's segment files, oldest first."""
    found: list[tuple[int, Path]] = []
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return []
    for entry in entries:
        match = SEGMENT_NAME.fullmatch(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return [p for _, p in sorted(found)]


class RecordingRing:
    """A directory of segments that never holds more than segment_bytes * max_segments."""

    def __init__(self, directory: str | os.PathLike[str], *, segment_bytes: int = 4 << 20,
                 max_segments: int = 8, flush_s: float = FLUSH_S,
                 flush_records: int = FLUSH_RECORDS, clock=time.monotonic) -> None:
        if segment_bytes < 1024 or max_segments < 2:
            raise ValueError("a ring needs segments of at least 1 KiB and at least two")
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self.max_segments = max_segments
        self._writer_options = {"flush_s": flush_s, "flush_records": flush_records,
                                "clock": clock}
        existing = ring_segments(self.directory)
        # a new run starts a new segment: an old one may end in a cut member
        number = int(SEGMENT_NAME.fullmatch(existing[-1].name).group(1)) + 1 if existing else 1
        self._writer = self._open(number)
        self._number = number
        self._trim()

    def _open(self, number: int) -> RecordingWriter:
        return RecordingWriter(self.directory / f"segment-{number:06d}.jsonl.gz",
                               **self._writer_options)  # type: ignore[arg-type]

    @property
    def due(self) -> bool:
        return self._writer.due

    def write(self, record: Record) -> None:
        self._writer.write(record)

    def flush(self) -> None:
        self._writer.flush()
        if self._writer.bytes_written >= self.segment_bytes:
            self._writer.close()
            self._number += 1
            self._writer = self._open(self._number)
            self._trim()

    def _trim(self) -> None:
        segments = ring_segments(self.directory)
        for old in segments[:max(0, len(segments) - self.max_segments)]:
            try:
                old.unlink()
            except OSError as exc:
                log.warning("could not remove old segment %s: %s", old, exc)

    def close(self) -> None:
        self._writer.close()


# ------------------------------------------------------------------ reading

def read_records(path: str | os.PathLike[str], problems: list[str] | None = None,
                 ) -> Iterator[Record]:
    """Every whole record in a recording file or a ring directory, in order."""
    path = Path(path)
    files = ring_segments(path) if path.is_dir() else [path]
    for file in files:
        yield from _read_file(file, problems)


def _note(problems: list[str] | None, text: str) -> None:
    if problems is not None and len(problems) < 100:
        problems.append(text)


def _read_file(path: Path, problems: list[str] | None) -> Iterator[Record]:
    pending = b""  # the start of a line not yet ended
    line_number = 0
    for chunk in _decompressed_chunks(path, problems):
        if chunk is None:  # a damaged stretch: the line being read is lost
            if pending:
                _note(problems, f"{path.name}: a line cut by damage was skipped")
            pending = b""
            continue
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            line_number += 1
            if not line.strip():
                continue
            try:
                yield decode_line(line)
            except RecordError as exc:
                _note(problems, f"{path.name}: line {line_number}: {exc}")
    if pending.strip():
        _note(problems, f"{path.name}: the last line was cut short and was skipped")


def _decompressed_chunks(path: Path, problems: list[str] | None) -> Iterator[bytes | None]:
    """The file's text across all its gzip members; None marks skipped damage."""
    try:
        handle = open(path, "rb")
    except OSError as exc:
        _note(problems, f"{path}: {exc.strerror or exc}")
        return
    with handle:
        data = b""
        decoder = zlib.decompressobj(wbits=31)
        at_start = True  # of a member: nothing decoded from it yet
        while True:
            chunk = handle.read(READ_CHUNK)
            data += chunk
            if not data:
                break
            try:
                out = decoder.decompress(data)
            except zlib.error:
                _note(problems, f"{path.name}: damaged compressed data skipped")
                yield None
                skip = data.find(GZIP_MAGIC, 1)
                while skip < 0 and chunk:  # look further for the next member
                    chunk = handle.read(READ_CHUNK)
                    data = data[-2:] + chunk
                    skip = data.find(GZIP_MAGIC, 1)
                if skip < 0:
                    return
                data = data[skip:]
                decoder, at_start = zlib.decompressobj(wbits=31), True
                continue
            if out:
                at_start = False
                yield out
            if decoder.eof:
                data = decoder.unused_data
                decoder, at_start = zlib.decompressobj(wbits=31), True
                if data:
                    continue
            else:
                data = b""
            if not chunk:
                if not decoder.eof and not at_start:
                    _note(problems, f"{path.name}: the last compressed block was cut short")
                break
