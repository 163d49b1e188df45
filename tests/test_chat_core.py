"""Pure parts of the chat: SSE, chunks, URLs, cleaning, figures (fuzzed with hypothesis)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparktui.core.openai_chat import (
    BadURL,
    MalformedChunk,
    TextCleaner,
    chat_body,
    describe_http_error,
    normalise_base_url,
    parse_chunk,
    parse_models,
)
from sparktui.core.openai_stats import StreamFigures, integrate_power, percentile
from sparktui.core.sse import SSEDecoder, SSEEvent
from sparktui.services.conversations import Conversation, Message, title_from, to_markdown
from sparktui.services.endpoints import key_env_var, parse_docker_ps

FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def decode_in_pieces(data: bytes, cuts: list[int]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    last = 0
    for cut in sorted(set(cuts)):
        events += decoder.feed(data[last:cut])
        last = cut
    events += decoder.feed(data[last:])
    return events + decoder.close()


# -- SSE -------------------------------------------------------------------------------
def test_sse_fields_comments_and_line_endings() -> None:
    data = (b"\xef\xbb\xbf: keep-alive\r\n"
            b"data: one\r\n\r\n"
            b"event: usage\rdata:two\rdata:  lines\r\r"
            b"id: 7\nretry: 100\ndata: three\n\n"
            b"bogus line\nretry: soon\ndata: [DONE]\n\n")
    events = decode_in_pieces(data, [])
    assert events == [SSEEvent("one"), SSEEvent("two\n lines", event="usage"),
                      SSEEvent("three", id="7", retry=100), SSEEvent("[DONE]", id="7")]


def test_sse_end_of_stream_keeps_whole_lines_and_drops_a_cut_one() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: done\n") == []
    assert decoder.close() == [SSEEvent("done")]
    decoder = SSEDecoder()
    decoder.feed(b'data: {"half":')
    assert decoder.close() == []


def test_sse_overlong_line_is_skipped_not_kept() -> None:
    decoder = SSEDecoder(max_line_chars=100)
    events = decoder.feed(b"data: " + b"x" * 500)
    events += decoder.feed(b"y" * 500 + b"\ndata: fine\n\n")
    assert events == [SSEEvent("fine")]
    assert decoder.ignored == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["data", "event", "id", ":", "junk", ""]),
                          st.text(alphabet=st.characters(blacklist_characters="\r\n",
                                                                blacklist_categories=("Cs",)),
                                  max_size=20)), max_size=30),
       st.sampled_from(["\n", "\r\n", "\r"]),
       st.lists(st.integers(min_value=0, max_value=2000), max_size=12))
def test_sse_any_split_gives_the_same_events(lines, newline, cuts) -> None:
    text = newline.join(f"{f}: {v}" if f and f != ":" else f"{f}{v}" for f, v in lines)
    data = (text + newline + newline).encode("utf-8")
    whole = decode_in_pieces(data, [])
    assert decode_in_pieces(data, [c % (len(data) + 1) for c in cuts]) == whole


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_sse_never_raises_on_garbage(data, cuts) -> None:
    events = decode_in_pieces(data, [c % (len(data) + 1) for c in cuts])
    assert all(isinstance(e.data, str) for e in events)


# -- chunks ------------------------------------------------------------------------------
def test_chunk_shapes() -> None:
    chunk = parse_chunk('{"choices":[{"delta":{"content":"hi"},"finish_reason":null}]}')
    assert (chunk.content, chunk.finish_reason, chunk.usage) == ("hi", None, None)
    usage = parse_chunk('{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":9}}')
    assert usage.usage is not None and usage.usage.completion_tokens == 9 and not usage.text
    thinking = parse_chunk('{"choices":[{"delta":{"reasoning_content":"hmm"}}]}')
    assert thinking.text == "hmm"
    error = parse_chunk('{"error":{"message":"out of memory","code":500}}')
    assert error.error == "out of memory"
    done = parse_chunk('{"choices":[{"delta":{},"finish_reason":"length"}]}')
    assert done.finish_reason == "length"


@pytest.mark.parametrize("data", ["", "nope", "[1,2]", '{"choices": 3}', '{"choices":[5]}',
                                  "{" * 5000])
def test_malformed_chunks_raise_malformed(data: str) -> None:
    with pytest.raises(MalformedChunk):
        parse_chunk(data)


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=10),
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.sampled_from(["choices", "delta", "content", "usage",
                                                       "error", "finish_reason", "text",
                                                       "completion_tokens", "message"]),
                                      children, max_size=4), max_leaves=20))
def test_any_json_is_a_chunk_or_malformed(value) -> None:
    try:
        chunk = parse_chunk(json.dumps(value))
    except MalformedChunk:
        return
    assert isinstance(chunk.content, str) and isinstance(chunk.reasoning, str)


def test_models_from_openai_and_ollama() -> None:
    assert parse_models({"data": [{"id": "a"}, {"id": "b"}, {"id": "a"}]}) == ["a", "b"]
    assert parse_models({"models": [{"name": "llama3:8b"}, {"model": "qwen"}]}) == \
        ["llama3:8b", "qwen"]
    assert parse_models({"data": [{"id": "evil\x1b]52;c;x\x07"}]}) == ["evil"]
    assert parse_models([1, 2]) == []


def test_http_errors_say_what_to_do() -> None:
    assert "API key" in describe_http_error(401, b'{"error":{"message":"bad key"}}')
    text = describe_http_error(404, b'{"error":{"message":"The model `x` does not exist."}}',
                               model="x")
    assert "'x'" in text and "does not exist" in text
    assert "retry after 7 s" in describe_http_error(429, b"slow down", retry_after="7")
    assert describe_http_error(500, b'{"detail":"boom"}') == "the server failed (500): boom"
    assert "\x1b" not in describe_http_error(500, b"\x1b[31mred")


def test_chat_body_asks_for_usage() -> None:
    body = chat_body("m", [{"role": "user", "content": "q"}], temperature=0.2, max_tokens=5)
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 5 and body["temperature"] == 0.2 and body["stream"] is True


# -- URLs -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("typed", "url", "note"), [
    ("http://h:8000/v1", "http://h:8000/v1", None),
    ("http://h:8000", "http://h:8000/v1", "added /v1"),
    ("h:8000/", "http://h:8000/v1", "assumed http://; added /v1"),
    ("https://api.example.com/v1/chat/completions", "https://api.example.com/v1",
     "dropped /chat/completions"),
    ("http://h:12434/engines/v1/", "http://h:12434/engines/v1", None),
    ("http://h/v1/models?x=1", "http://h/v1", "dropped ?query/#fragment; dropped /models"),
])
def test_base_urls_are_normalised_and_say_how(typed: str, url: str, note: str | None) -> None:
    base = normalise_base_url(typed)
    assert (base.url, base.note) == (url, note)


@pytest.mark.parametrize("typed", ["", "ftp://h/v1", "http://", "http://h:99999"])
def test_bad_urls_are_refused(typed: str) -> None:
    with pytest.raises(BadURL):
        normalise_base_url(typed)


def test_ollama_root_and_key_variable() -> None:
    assert normalise_base_url("http://localhost:11434").root == "http://localhost:11434"
    assert key_env_var("spark-1:http://localhost:8000/v1") == \
        "SPARKTUI_API_KEY_SPARK_1_HTTP_LOCALHOST_8000_V1"


def test_docker_ps_published_ports() -> None:
    rows = [
        {"Names": "vllm", "Image": "nvcr.io/nvidia/vllm:25.09-py3",
         "Ports": "0.0.0.0:8000->8000/tcp, [::]:8000->8000/tcp"},
        {"Names": "webui", "Image": "open-webui", "Ports": "0.0.0.0:12000->8080/tcp"},
        {"Names": "trt", "Image": "trtllm", "Ports": ""},
    ]
    output = "\n".join(json.dumps(r) for r in rows) + "\nnot json\n"
    assert parse_docker_ps(output) == {8000: "vllm (nvcr.io/nvidia/vllm:25.09-py3)",
                                       12000: "webui (open-webui)"}


# -- cleaning model output ----------------------------------------------------------------
def test_an_escape_split_between_pieces_leaks_nothing() -> None:
    cleaner = TextCleaner()
    out = cleaner.feed("red: \x1b[3") + cleaner.feed("1mtext\x1b]52;c;QUFB") + \
        cleaner.feed("\x07 done\n```py\nx = 1\n```")
    assert out == "red: text done\n```py\nx = 1\n```"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("ab \n\t[]*`\x1b\x07\x9b\x9d;0123m]")),
                        max_size=12), max_size=12))
def test_cleaned_output_never_carries_controls(pieces: list[str]) -> None:
    cleaner = TextCleaner()
    out = "".join(cleaner.feed(p) for p in pieces) + cleaner.flush()
    assert not FORBIDDEN.search(out)


# -- figures --------------------------------------------------------------------------------
def test_stream_figures() -> None:
    figures = StreamFigures(started=10.0)
    assert figures.ttft_s is None and figures.tokens_per_s(11) is None
    for i in range(11):
        figures.on_text(10.5 + i * 0.1)
    figures.ended = 11.6
    assert figures.ttft_s == pytest.approx(0.5)
    assert figures.tokens == 11 and figures.estimated
    assert figures.tokens_per_s() == pytest.approx(10.0)
    figures.usage_tokens = 21  # the server's count wins over counted chunks
    assert not figures.estimated and figures.tokens_per_s() == pytest.approx(20.0)
    figures.energy_j = 42.0
    assert figures.as_dict()["tokens_per_j"] == pytest.approx(0.5)


def test_energy_integrates_power_over_the_answer() -> None:
    samples = [(0.0, 10.0), (1.0, 50.0), (2.0, 50.0), (3.0, 10.0)]
    assert integrate_power(samples, 1.0, 2.0) == pytest.approx(50.0)
    assert integrate_power(samples, 0.5, 1.5) == pytest.approx(45.0)  # 0.5*(30+50)/2 + 0.5*50
    assert integrate_power([(0.0, 20.0)], 1.0, 3.0) == pytest.approx(40.0)  # held
    assert integrate_power([(5.0, 20.0)], 1.0, 3.0) is None  # nothing known in time
    assert integrate_power([], 0, 1) is None


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile(list(map(float, range(101))), 95) == pytest.approx(95.0)


# -- conversations ---------------------------------------------------------------------------
def test_history_sent_to_the_model_alternates() -> None:
    conversation = Conversation(1, "t", 0, 0, system_prompt="be brief", messages=[
        Message("user", "first"), Message("assistant", "", status="error"),
        Message("error", "refused"), Message("user", "first"),
        Message("assistant", "answer"), Message("user", "next")])
    assert conversation.api_messages() == [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer"}, {"role": "user", "content": "next"}]
    markdown = to_markdown(conversation)
    assert "## System" in markdown and "> refused" in markdown


def test_titles() -> None:
    assert title_from("\n\n  hello   world \nmore") == "hello world"
    assert len(title_from("x" * 500)) == 60
    assert title_from("   ") == "New chat"
