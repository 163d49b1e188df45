"""Streaming one chat answer from an OpenAI-compatible endpoint, with its figures.

`AnswerStream` reads the server-sent events in a task of its own and hands
the cleaned text to whoever iterates it. `stop()` cancels that task, which
closes the HTTP response at once (the server sees the client go and stops
generating); the text so far is kept. Every failure (refused, timed out,
401/404/429/500, malformed lines, the server dying mid-answer) ends the
stream with an `outcome` that says what happened, never with an exception
for the caller to catch: the chat shows it as a message and the partial
answer stays.

Figures: time to first token, tokens/s (from `usage` when the server sends
it, counted chunks otherwise, labelled as an estimate) and, for an endpoint
on a device with telemetry, the energy of the answer integrated from the GPU
power samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from sparktui.core import openai_chat
from sparktui.core.openai_chat import MalformedChunk, TextCleaner
from sparktui.core.openai_stats import StreamFigures, integrate_power
from sparktui.core.sse import MAX_LINE_CHARS, SSEDecoder
from sparktui.services.endpoints import (
    BodyTooLarge,
    EndpointConnector,
    EndpointError,
    EndpointSpec,
    describe_transport_error,
    read_bounded,
)

log = logging.getLogger(__name__)

DEFAULT_READ_TIMEOUT_S = 300.0  # a big model's first token can take minutes after a load
CONNECT_TIMEOUT_S = 15.0
#: the most answer text kept; a server that never stops is stopped here
MAX_ANSWER_CHARS = 4 * 1024 * 1024
#: an error body or a non-streamed answer is read up to this, never further
MAX_ERROR_BODY = 64 * 1024
MAX_WHOLE_ANSWER_BODY = 8 * 1024 * 1024


class TelemetrySource(Protocol):
    """What the energy meter needs of a TelemetryService (duck-typed, so tests can fake it)."""

    @property
    def latest(self) -> object: ...

    def subscribe(self, listener: Callable[[object], None]) -> Callable[[], None]: ...


@dataclass(frozen=True)
class GpuNow:
    util_pct: float | None
    power_w: float | None
    t: float


def gpu_now(telemetry: object) -> GpuNow | None:
    """Mean utilisation and summed power of a device's GPUs from one DeviceTelemetry."""
    gpus = getattr(telemetry, "gpus", ()) or ()
    if not gpus:
        return None
    utils = [g.util_gpu for g in gpus if g.util_gpu is not None]
    powers = [g.power_w for g in gpus if g.power_w is not None]
    return GpuNow(sum(utils) / len(utils) if utils else None,
                  sum(powers) if powers else None,
                  max(g.t for g in gpus))


class EnergyMeter:
    """GPU power samples of one device while an answer streams."""

    def __init__(self, source: TelemetrySource) -> None:
        self._source = source
        self.samples: list[tuple[float, float]] = []
        self.latest: GpuNow | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        self._take(self._source.latest)
        self._unsubscribe = self._source.subscribe(self._take)

    def _take(self, telemetry: object) -> None:
        now = gpu_now(telemetry)
        if now is None:
            return
        self.latest = now
        if now.power_w is not None and (not self.samples or self.samples[-1][0] != now.t):
            self.samples.append((now.t, now.power_w))

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def energy(self, start: float, end: float) -> float | None:
        return integrate_power(self.samples, start, end)


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[dict[str, str]]
    temperature: float | None = None
    max_tokens: int | None = None

    def body(self) -> dict:
        return openai_chat.chat_body(self.model, self.messages, temperature=self.temperature,
                                     max_tokens=self.max_tokens)


@dataclass
class Outcome:
    """How an answer ended. `status`: "done", "stopped" or "error"."""

    status: str = "done"
    error: str | None = None
    finish_reason: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "done"


_END = object()


class AnswerTooLong(Exception):
    """The answer passed MAX_ANSWER_CHARS."""


class NoProgress(Exception):
    """Bytes kept coming, text did not."""


class AnswerStream:
    """One answer, streaming. Iterate it for text; read `figures` any time, `outcome` after."""

    def __init__(self, client: httpx.AsyncClient | None, spec: EndpointSpec,
                 request: ChatRequest, *,
                 meter: EnergyMeter | None = None, read_timeout: float = DEFAULT_READ_TIMEOUT_S,
                 total_timeout: float | None = None,
                 link_down: Callable[[], Awaitable[str | None]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.request = request
        self.meter = meter
        self.clock = clock
        self.figures = StreamFigures(started=clock())
        self.outcome = Outcome()
        self.parts: list[str] = []
        self.finished = asyncio.Event()
        self._client = client
        self._timeout = httpx.Timeout(CONNECT_TIMEOUT_S, read=read_timeout)
        #: a deadline for the whole answer (None: none); keep-alives do not extend it
        self._total_timeout = total_timeout
        #: why the device's SSH connection is down, if it is (None: it is up)
        self._link_down = link_down
        self._chars = 0
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._stop_requested = False
        self._task: asyncio.Task[None] | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def start(self) -> AnswerStream:
        if self.meter is not None:
            self.meter.start()
        self._task = asyncio.get_running_loop().create_task(self._read(),
                                                            name=f"chat:{self.spec.id}")
        return self

    async def stop(self) -> None:
        """Stop now: the HTTP stream is closed, the text so far is kept."""
        self._stop_requested = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait(self) -> Outcome:
        await self.finished.wait()
        return self.outcome

    async def __aiter__(self) -> AsyncIterator[str]:
        """Text as it arrives; pieces queued while the reader was busy come joined."""
        while True:
            item = await self._queue.get()
            pieces: list[str] = []
            while item is not _END:
                pieces.append(item)  # type: ignore[arg-type]
                if self._queue.empty():
                    break
                item = self._queue.get_nowait()
            if pieces:
                yield "".join(pieces)
            if item is _END:
                return

    # -- the reader task ------------------------------------------------------------------
    def _emit(self, text: str) -> None:
        if text:
            self._chars += len(text)
            if self._chars > MAX_ANSWER_CHARS:
                raise AnswerTooLong(f"the answer passed {MAX_ANSWER_CHARS // (1024 * 1024)} MiB "
                                    "of text; stopped there (the text so far is kept)")
            self.parts.append(text)
            self._queue.put_nowait(text)

    async def _read(self) -> None:
        try:
            async with asyncio.timeout(self._total_timeout):
                await self._stream()
        except asyncio.CancelledError:
            if not self._stop_requested:
                raise
            self.outcome.status = "stopped"
        except TimeoutError:
            kept = "; the partial answer is kept" if self.parts else ""
            self._fail(f"no complete answer within {self._total_timeout:.0f} s{kept}")
        except httpx.HTTPError as exc:
            down = await self._link_down() if self._link_down is not None else None
            self._fail(self._dropped(down) if down else self._describe(exc))
        except (EndpointError, AnswerTooLong, NoProgress) as exc:
            self._fail(str(exc))
        except Exception as exc:  # a bug must still end the answer visibly, and be logged
            log.exception("chat stream failed")
            self._fail(f"{type(exc).__name__}: {exc}")
        finally:
            self._finish()

    def _fail(self, message: str) -> None:
        self.outcome.status = "error"
        self.outcome.error = message

    def _finish(self) -> None:
        figures = self.figures
        figures.ended = self.clock()
        if self.meter is not None:
            self.meter.stop()
            end = figures.last_token or figures.ended
            figures.energy_j = self.meter.energy(figures.started, end)
        if figures.estimated and figures.chunks:
            self.outcome.notes.append("token count estimated from chunks (no usage sent)")
        self._queue.put_nowait(_END)
        self.finished.set()

    def _dropped(self, reason: str) -> str:
        kept = "; the partial answer is kept" if self.parts else ""
        return f"the SSH connection to {self.spec.device} dropped ({reason}){kept}"

    def _describe(self, exc: httpx.HTTPError) -> str:
        got_text = self.figures.first_token is not None
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError) and got_text:
            return "the server stopped mid-answer (connection closed); the partial answer " \
                   "is kept"
        if (self.spec.device is not None and not got_text
                and isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError)):
            # through a forward, "refused" on the device side arrives as a closed socket
            host, port = self.spec.base.host_port
            return (f"nothing answered at {host}:{port} on {self.spec.device} "
                    "(connection refused or closed at once)")
        if isinstance(exc, httpx.ReadTimeout):
            return (f"no data from the server for {self._timeout.read:.0f} s "
                    f"({'mid-answer' if got_text else 'before the first token'})")
        return describe_transport_error(exc, "{}:{}".format(*self.spec.base.host_port))

    async def _stream(self) -> None:
        if self._client is None:
            raise EndpointError(f"no client for {self.spec.describe()}")
        body = self.request.body()
        if not await self._attempt(body):
            # an older server that refuses `stream_options`: ask again without it
            del body["stream_options"]
            self.outcome.notes.append("the server refused stream_options")
            self.outcome.status, self.outcome.error = "done", None
            await self._attempt(body, retry=False)

    async def _attempt(self, body: dict, retry: bool = True) -> bool:
        """One request; False when it should be retried without stream_options."""
        assert self._client is not None
        self.figures.started = self.clock()
        async with self._client.stream("POST", "chat/completions", json=body,
                                       timeout=self._timeout) as response:
            if response.status_code != 200:
                try:
                    raw = await read_bounded(response, MAX_ERROR_BODY, "the error body")
                except BodyTooLarge as exc:
                    raw = str(exc).encode()
                if retry and response.status_code in (400, 422) and b"stream_options" in raw:
                    return False
                self._fail(openai_chat.describe_http_error(
                    response.status_code, raw[:8192], model=self.request.model,
                    retry_after=response.headers.get("retry-after")))
                return True
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" not in content_type and "json" in content_type:
                await self._whole_answer(response)  # a server that ignored stream=true
                return True
            await self._events(response)
            return True

    async def _whole_answer(self, response: httpx.Response) -> None:
        import json

        raw = await read_bounded(response, MAX_WHOLE_ANSWER_BODY, "the answer")
        try:
            text, usage = openai_chat.parse_completion(json.loads(raw))
        except (ValueError, MalformedChunk, RecursionError) as exc:
            self._fail(f"the server sent an answer that is not a chat completion: {exc}")
            return
        cleaner = TextCleaner()
        self.figures.on_text(self.clock())
        self._emit(cleaner.feed(text))
        self.outcome.notes.append("the server did not stream; the answer came whole")
        if usage is not None:
            self.figures.usage_tokens = usage.completion_tokens
            self.figures.prompt_tokens = usage.prompt_tokens

    async def _events(self, response: httpx.Response) -> None:
        decoder = SSEDecoder()
        cleaner = TextCleaner()
        malformed = 0
        done = False
        # Progress is text, not bytes: a server that sends only keep-alives (or a
        # byte now and then) would never trip the read timeout, and the user would
        # wait forever. No text for read_timeout seconds ends the answer.
        last_progress = self.clock()
        patience = self._timeout.read or DEFAULT_READ_TIMEOUT_S
        async for raw in response.aiter_raw():
            if self.clock() - last_progress > patience:
                raise NoProgress(f"no text from the server for {patience:.0f} s (it only "
                                 "sent keep-alives)" + ("; the partial answer is kept"
                                                       if self.parts else ""))
            events = decoder.feed(raw)
            for event in events:
                data = event.data.strip()
                if data == openai_chat.DONE:
                    done = True
                    continue
                try:
                    chunk = openai_chat.parse_chunk(data)
                except MalformedChunk:
                    malformed += 1
                    continue
                if chunk.error:
                    self._fail(f"the server reported an error mid-stream: {chunk.error}")
                    return
                if chunk.usage is not None and chunk.usage.completion_tokens is not None:
                    self.figures.usage_tokens = chunk.usage.completion_tokens
                    self.figures.prompt_tokens = chunk.usage.prompt_tokens
                if chunk.text:
                    last_progress = self.clock()
                    self.figures.on_text(last_progress)
                    self._emit(cleaner.feed(chunk.text))
                if chunk.finish_reason:
                    self.outcome.finish_reason = chunk.finish_reason
            if decoder.overlong:
                break  # data is already lost: say so now, not when the server stops
        for _event in decoder.close():
            pass  # a final event without its blank line: [DONE] or usage, nothing to show
        skipped = malformed + decoder.ignored - decoder.overlong
        if skipped:
            self.outcome.notes.append(f"{skipped} malformed line{'s' * (skipped != 1)} skipped")
        if decoder.overlong:
            # data was lost: never an answer that looks complete (or empty) with success
            self._fail(f"the server sent {decoder.overlong} chunk"
                       f"{'s' * (decoder.overlong != 1)} over "
                       f"{MAX_LINE_CHARS // (1024 * 1024)} MiB; dropped unread"
                       + ("; the rest of the answer is kept" if self.parts else ""))
            return
        if not done and self.outcome.finish_reason is None:
            down = await self._link_down() if self._link_down is not None else None
            if down:  # the forward's channel closed with its SSH connection, not the server
                self._fail(self._dropped(down))
            elif self.figures.first_token is None:
                self._fail("the server closed the stream without an answer")
            else:
                self._fail("the stream ended before the answer was complete "
                           "(the server may have died); the partial answer is kept")
        if self.outcome.finish_reason == "length":
            self.outcome.notes.append("stopped at the max tokens limit")


class ChatService:
    """Starts answers on endpoints; the UI and the CLI share it."""

    def __init__(self, connector: EndpointConnector, *,
                 read_timeout: float = DEFAULT_READ_TIMEOUT_S,
                 total_timeout: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.connector = connector
        self.read_timeout = read_timeout
        self.total_timeout = total_timeout
        self.clock = clock

    async def answer(self, spec: EndpointSpec, request: ChatRequest, *,
                     telemetry: TelemetrySource | None = None) -> AnswerStream:
        """Start streaming. Never raises for endpoint trouble: the stream ends with an error."""
        meter = EnergyMeter(telemetry) if telemetry is not None else None
        try:
            client = await self.connector.client(spec)
        except EndpointError as exc:
            # the same shape as any failed answer: the caller shows the message
            stream = AnswerStream(None, spec, request, clock=self.clock)
            stream._fail(str(exc))
            stream._finish()
            return stream
        return AnswerStream(client, spec, request, meter=meter, read_timeout=self.read_timeout,
                            total_timeout=self.total_timeout,
                            link_down=lambda: self.connector.device_down(spec),
                            clock=self.clock).start()

