"""The OpenAI-compatible chat API as pure functions: URLs, request bodies, chunks, errors.

Everything here is device text in, plain Python out; nothing does I/O. Every
engine a Spark runs (vLLM, NIM, SGLang, TensorRT-LLM, llama.cpp, Ollama,
Docker Model Runner) speaks this dialect, with small differences handled here:
some put the text in `delta.reasoning_content`, some send `usage` only when
asked, Ollama also lists its models at `/api/tags`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sparktui.core.sanitize import strip_control

DONE = "[DONE]"
#: a server's error text is shown, never trusted to be short
MAX_ERROR_CHARS = 400


class MalformedChunk(ValueError):
    """A `data:` line that is not a chat completion chunk."""


class BadURL(ValueError):
    """A base URL we cannot use."""


# -- URLs ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BaseURL:
    url: str  # always ends in the API root, e.g. http://host:8000/v1
    note: str | None  # what normalisation did, to tell the user; None if used as given

    @property
    def root(self) -> str:
        """The server root (without /v1): Ollama's native API lives there."""
        parts = urlsplit(self.url)
        path = parts.path[:-3] if parts.path.endswith("/v1") else parts.path
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        default = 443 if parts.scheme == "https" else 80
        return parts.hostname or "localhost", parts.port or default


_API_SUFFIXES = ("/chat/completions", "/completions", "/models", "/embeddings")


def normalise_base_url(text: str) -> BaseURL:
    """What the user typed -> the API root to call, and a note on what changed.

    `host:8000`, `http://host:8000`, `http://host:8000/`, `.../v1/`,
    `.../v1/chat/completions` all give `http://host:8000/v1`. A path other than
    /v1 (a proxy prefix such as `/engines/v1` or `/api/openai/v1`) is kept.
    """
    raw = text.strip()
    if not raw:
        raise BadURL("empty URL")
    notes: list[str] = []
    if "://" not in raw:
        raw = "http://" + raw
        notes.append("assumed http://")
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https"):
        raise BadURL(f"only http and https URLs are supported, not {parts.scheme}://")
    if not parts.hostname:
        raise BadURL(f"no host in {text.strip()!r}")
    try:
        parts.port  # noqa: B018 - raises on a bad port number
    except ValueError as exc:
        raise BadURL(f"bad port in {text.strip()!r}") from exc
    if parts.query or parts.fragment:
        notes.append("dropped ?query/#fragment")
    path = parts.path.rstrip("/")
    for suffix in _API_SUFFIXES:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            notes.append(f"dropped {suffix}")
            break
    if not path.endswith("/v1"):
        path += "/v1"
        notes.append("added /v1")
    url = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    return BaseURL(url, "; ".join(notes) or None)


# -- requests --------------------------------------------------------------------------
def chat_body(model: str, messages: list[dict[str, str]], *, temperature: float | None = None,
              max_tokens: int | None = None, stream: bool = True,
              include_usage: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
    if temperature is not None:
        body["temperature"] = temperature
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if stream and include_usage:
        body["stream_options"] = {"include_usage": True}
    return body


# -- responses ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(frozen=True, slots=True)
class Chunk:
    """One streamed chunk, reduced to what a chat needs."""

    content: str = ""
    reasoning: str = ""  # vLLM/SGLang reasoning parsers put thinking here
    finish_reason: str | None = None
    usage: Usage | None = None
    error: str | None = None  # an error reported inside the stream
    has_choice: bool = False  # a usage-only chunk has none

    @property
    def text(self) -> str:
        return self.reasoning + self.content


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse_chunk(data: str) -> Chunk:
    """The JSON of one `data:` line -> a Chunk. Raises MalformedChunk for anything else."""
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise MalformedChunk(f"not JSON: {data[:60]!r}") from exc
    if not isinstance(obj, dict):
        raise MalformedChunk(f"not a JSON object: {data[:60]!r}")
    if obj.get("error"):
        return Chunk(error=error_text(obj))
    usage = None
    raw_usage = obj.get("usage")
    if isinstance(raw_usage, dict):
        usage = Usage(_int_or_none(raw_usage.get("prompt_tokens")),
                      _int_or_none(raw_usage.get("completion_tokens")))
    choices = obj.get("choices")
    if choices is None and usage is not None:
        return Chunk(usage=usage)
    if not isinstance(choices, list):
        raise MalformedChunk(f"no choices: {data[:60]!r}")
    if not choices:
        return Chunk(usage=usage)
    choice = choices[0]
    if not isinstance(choice, dict):
        raise MalformedChunk(f"a choice is not an object: {data[:60]!r}")
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        # some servers stream legacy completions shape: {"text": ...}
        delta = {"content": choice.get("text")} if "text" in choice else {}
    reasoning = _str(delta.get("reasoning_content")) or _str(delta.get("reasoning"))
    finish = choice.get("finish_reason")
    return Chunk(content=_str(delta.get("content")), reasoning=reasoning,
                 finish_reason=finish if isinstance(finish, str) else None,
                 usage=usage, has_choice=True)


def parse_completion(obj: Any) -> tuple[str, Usage | None]:
    """A non-streamed answer -> (text, usage)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("choices"), list) or not obj["choices"]:
        raise MalformedChunk("no choices in the answer")
    choice = obj["choices"][0]
    message = choice.get("message") if isinstance(choice, dict) else None
    text = _str(message.get("content")) if isinstance(message, dict) else ""
    raw_usage = obj.get("usage")
    usage = None
    if isinstance(raw_usage, dict):
        usage = Usage(_int_or_none(raw_usage.get("prompt_tokens")),
                      _int_or_none(raw_usage.get("completion_tokens")))
    return text, usage


def parse_models(obj: Any) -> list[str]:
    """Model ids from `/v1/models` ({"data": [{"id"}]}) or Ollama's `/api/tags` ({"models"})."""
    if not isinstance(obj, dict):
        return []
    ids: list[str] = []
    for key, field in (("data", "id"), ("models", "name")):
        entries = obj.get(key)
        if not isinstance(entries, list):
            continue
        for entry in entries:
            value = entry.get(field) if isinstance(entry, dict) else None
            if not isinstance(value, str) and isinstance(entry, dict):
                value = entry.get("model")
            if isinstance(value, str) and value and value not in ids:
                ids.append(strip_control(value, max_line=200))
    return ids


def error_text(obj: Any) -> str:
    """The human part of an error body: OpenAI `error.message`, FastAPI `detail`, or `message`."""
    message: Any = None
    if isinstance(obj, dict):
        error = obj.get("error")
        if isinstance(error, dict):
            message = error.get("message") or error.get("type")
        elif isinstance(error, str):
            message = error
        if not message:
            detail = obj.get("detail")
            if isinstance(detail, list) and detail and isinstance(detail[0], dict):
                detail = detail[0].get("msg")
            message = detail or obj.get("message")
    if not isinstance(message, str):
        message = json.dumps(obj)[:MAX_ERROR_CHARS] if obj is not None else ""
    return _clip(message)


def _clip(text: str) -> str:
    text = strip_control(text).strip()
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def body_error_text(body: bytes | str) -> str:
    """Error text from a response body that may or may not be JSON."""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        return error_text(json.loads(raw))
    except ValueError:
        return _clip(raw)


def describe_http_error(status: int, body: bytes | str, *, model: str | None = None,
                        retry_after: str | None = None) -> str:
    """One sentence for an HTTP error status, with the server's own words after it."""
    detail = body_error_text(body)
    suffix = f": {detail}" if detail else ""
    if status in (401, 403):
        lead = (f"the endpoint refused the request ({status}); set or check its API key"
                if status == 401 else f"the endpoint forbids this ({status})")
    elif status == 404:
        lead = (f"model {model!r} not found at this endpoint (404)" if model
                else "not found (404): is this an OpenAI-compatible endpoint?")
    elif status == 429:
        wait = f"; retry after {strip_control(retry_after)[:20]} s" if retry_after else ""
        lead = f"rate limited (429){wait}"
    elif status >= 500:
        lead = f"the server failed ({status})"
    else:
        lead = f"the server answered {status}"
    return lead + suffix


# -- streamed text -------------------------------------------------------------------------
_INTRODUCERS = "\x1b\x9b\x9d\x90\x98\x9e\x9f"
_C1_KIND = {"\x9b": "[", "\x9d": "]", "\x90": "P", "\x98": "X", "\x9e": "^", "\x9f": "_"}
#: an unfinished escape longer than this is not held back any more (it is dropped whole)
_HOLD_CHARS = 256


def _incomplete_escape(tail: str) -> bool:
    if tail[0] == "\x1b":
        if len(tail) == 1:
            return True
        kind, body = tail[1], tail[2:]
    else:
        kind, body = _C1_KIND.get(tail[0], ""), tail[1:]
    if kind == "[":
        return not any("\x40" <= c <= "\x7e" for c in body)
    if kind and kind in "]PX^_":
        return "\x07" not in body and "\x1b\\" not in body and "\x9c" not in body
    return False


class TextCleaner:
    """Model output, piece by piece, with escape sequences and control characters removed.

    Model output is device text: a model can print `ESC ] 52` (set the
    clipboard) as easily as a word. An escape sequence may be split between two
    streamed pieces; the unfinished part is held back until the next piece, so
    neither half leaks through as visible junk.
    """

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, text: str) -> str:
        text = self._pending + text
        self._pending = ""
        index = max(text.rfind(c) for c in _INTRODUCERS)
        if index >= 0 and len(text) - index <= _HOLD_CHARS and _incomplete_escape(text[index:]):
            self._pending = text[index:]
            text = text[:index]
        return strip_control(text, keep_newlines=True) if text else ""

    def flush(self) -> str:
        """The end of the stream: whatever was held back is an unfinished escape, dropped."""
        self._pending = ""
        return ""
