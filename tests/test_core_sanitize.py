"""Device text never reaches the terminal as escapes or as Rich markup."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from sparktui.core.sanitize import (
    ansi_to_text,
    markup_escape,
    safe_text,
    strip_control,
    to_str,
)

FUZZ = settings(max_examples=200, deadline=None)

# Everything a terminal might act on, bar \t and \n.
FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b[2J\x1b[H\x1b[?1049hscreen", "screen"),
        ("\x1b]0;pwned title\x07after", "after"),
        ("\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("\x1bP+q544e\x1b\\dcs", "dcs"),
        ("\x1b_apc payload\x1b\\apc", "apc"),
        ("\x1b^pm\x1b\\x\x1bXsos\x9cy", "xy"),
        ("\x9b31m8bit\x9d0;t\x07csi", "8bitcsi"),
        ("\x1b(Bcharset\x1b7\x1b8\x1bc", "charset"),
        ("bell\x07back\x08space\x7f\x00", "bellbackspace"),
        ("a\r\nb", "a b"),
        ("\x1b]0;never terminated\nnext line", " next line"),
        ("trailing escape \x1b", "trailing escape "),
        ("\u202eevil\u202c txt", "evil txt"),
        ("lone \udc80 surrogate", "lone \ufffd surrogate"),
    ],
)
def test_strip_control_examples(raw, clean):
    assert strip_control(raw) == clean


def test_newlines_tabs_and_caps():
    assert strip_control("a\nb\u2028c", keep_newlines=True) == "a\nb\nc"
    assert strip_control("a\tb") == "a\tb"
    assert strip_control("a\tb", tab_size=4) == "a   b"
    assert strip_control("abcdef\nxy", keep_newlines=True, max_line=4) == "abc…\nxy"
    assert strip_control(b"caf\xc3\xa9 \xff") == "café \ufffd"
    assert to_str(bytearray(b"x")) == "x"


def test_ansi_to_text_keeps_colour_only():
    text = ansi_to_text("\x1b[1;31m[bold red]x[/]\x1b[0m \x1b[2J\x1b]0;t\x07ok\x1b[5A")
    assert isinstance(text, Text)
    assert text.plain == "[bold red]x[/] ok"
    [span] = text.spans
    assert (span.start, span.end) == (0, len("[bold red]x[/]"))
    assert span.style.bold and span.style.color.number == 1


def test_ansi_to_text_drops_hyperlinks_and_caps_lines():
    text = ansi_to_text("\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\\nline two")
    assert text.plain == "click\nline two"
    assert all(span.style.link is None for span in text.spans if hasattr(span.style, "link"))
    capped = ansi_to_text("\x1b[32mabcdefgh\x1b[0m\nxy", max_line=4)
    assert capped.plain == "abc…\nxy"
    assert ansi_to_text("a\nb", keep_newlines=False).plain == "a b"


def render_plain(text: Text) -> str:
    console = Console(width=200, color_system=None, force_terminal=False, record=True)
    console.print(text)
    return console.export_text().rstrip("\n")


def test_markup_stays_literal():
    assert safe_text("[bold]x[/]").plain == "[bold]x[/]"
    assert render_plain(safe_text("[bold]x[/]")) == "[bold]x[/]"
    link = "[link=https://x]y[/link] "
    assert render_plain(safe_text(link + "\x1b[31m")) == link
    assert markup_escape("[bold]x[/]") == "\\[bold]x\\[/]"


# ----------------------------------------------------------------- fuzzing

_escapey = st.lists(
    st.one_of(
        st.sampled_from(["\x1b", "[", "]", "\\", "\x07", "\x9b", "\x9c", "\x9d", "P", "_", "^",
                         "m", ";", "31", "\n", "\r", "\t", "(", "B", "8", "?", " ", "\x90",
                         "[bold]", "[/]", "\u2028", "\udc80", "\u202e", "\x00", "é"]),
        st.text(max_size=5),
    ),
    max_size=40,
).map("".join)
_inputs = st.one_of(st.text(), _escapey)


@FUZZ
@given(_inputs, st.booleans(), st.one_of(st.none(), st.integers(1, 20)),
       st.one_of(st.none(), st.integers(1, 8)))
def test_strip_control_output_is_inert(raw, keep_newlines, max_line, tab_size):
    out = strip_control(raw, keep_newlines, max_line=max_line, tab_size=tab_size)
    assert "\x1b" not in out
    assert not FORBIDDEN.search(out)
    assert not any("\ud800" <= c <= "\udfff" for c in out)
    if not keep_newlines:
        assert "\n" not in out
    if tab_size is not None:
        assert "\t" not in out
    if max_line is not None:
        assert all(len(line) <= max_line for line in out.split("\n"))
    # Idempotent: cleaning clean text changes nothing.
    assert strip_control(out, keep_newlines, max_line=max_line, tab_size=tab_size) == out


@FUZZ
@given(st.binary(max_size=200))
def test_strip_control_on_bytes(raw):
    out = strip_control(raw, keep_newlines=True)
    assert not FORBIDDEN.search(out)


@FUZZ
@given(_inputs, st.booleans(), st.one_of(st.none(), st.integers(1, 20)))
def test_ansi_to_text_is_inert(raw, keep_newlines, max_line):
    text = ansi_to_text(raw, keep_newlines, max_line=max_line)
    assert "\x1b" not in text.plain
    assert not FORBIDDEN.search(text.plain)
    assert all(getattr(span.style, "link", None) is None for span in text.spans)
    if max_line is not None:
        assert all(len(line) <= max_line for line in text.plain.split("\n"))
    render_plain(text)


@FUZZ
@given(_inputs)
def test_safe_text_is_literal(raw):
    text = safe_text(raw)
    assert text.plain == strip_control(raw)
    assert not text.spans
    if "[" in text.plain:
        assert "[" in render_plain(text)
