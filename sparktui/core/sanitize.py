"""Making device text safe to show.

Container names, logs, process names and model output come from another
machine. Shown raw they could move the cursor, retitle or reprogram the
terminal (escape sequences), or restyle and hide parts of the UI (Rich
markup such as `[bold red]`). Everything from a device goes through here.

Rich is imported lazily inside the functions that return `rich.text.Text`,
so the rest of `sparktui.core` stays importable without it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["MAX_REASON_CHARS", "CleanText", "ansi_to_text", "clean_reason", "markup_escape",
           "safe_text", "strip_control", "to_str"]

#: the one key that makes a CleanText: only this module holds it
_MADE_HERE = object()


class CleanText(str):
    """A string that crossed the boundary: no escape, no control but `\t` and `\n`.

    Only this module makes one (strip_control, clean_reason): anywhere else
    `CleanText(x)` raises, so a `CleanText` in a signature or a dataclass field
    says which side of the boundary a value is on, and a parser whose outputs
    are CleanText cannot hand out raw device text by mistake. str's own
    operations (`+`, slicing, format, join) give back a plain str: what they
    add is not known to be clean. A copy or a pickle is a plain str too.
    """

    __slots__ = ()

    def __new__(cls, value: str, made_by: object = None) -> CleanText:
        if made_by is not _MADE_HERE:
            raise TypeError("CleanText is made by sparktui.core.sanitize only "
                            "(strip_control, clean_reason)")
        return super().__new__(cls, value)

    def __reduce__(self) -> tuple[type[str], tuple[str]]:
        return str, (str(self),)


def _cleaned(text: str) -> CleanText:
    return CleanText(text, _MADE_HERE)

# Escape sequences after ECMA-48, 7-bit and 8-bit (C1) introducers alike.
# Alternatives are tried in order, so the string and CSI forms win over the
# generic two-character form that would otherwise match `ESC ]` or `ESC [`.
#
# String sequences (OSC, DCS, SOS, PM, APC) end at BEL, ST (`ESC \\` or 0x9C),
# or any ESC (terminals abandon the string there). One left unterminated ends
# at the next newline instead of the end of the text: a terminal would swallow
# the rest, but here one broken line must not hide a whole log.
_ESCAPES = re.compile(
    r"""
      (?P<string>(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?)
    | (?P<csi>(?:\x1b\[|\x9b)(?P<params>[\x30-\x3f]*)(?P<inter>[\x20-\x2f]*)(?P<final>[\x40-\x7e])?)
    | (?P<nf>\x1b[\x20-\x2f]+[\x30-\x7e]?)
    | (?P<single>\x1b[\x30-\x7e]?)
    """,
    re.VERBOSE,
)
# Kept by ansi_to_text: colours and attributes, nothing that moves or reprograms.
# The parameter cap keeps Rich's int() on each code cheap and in range.
_SGR_PARAMS = re.compile(r"[0-9;:]{0,128}")

# C0 and C1 controls and DEL, except \t and \n which are handled separately.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Lone surrogates (from surrogateescape decoding) and noncharacters cannot be
# drawn; bidi overrides and isolates can make displayed text lie about its order.
_UNPRINTABLE = re.compile(r"[\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
# Python's splitlines (and so Rich and Textual) break lines on these as well.
_LINE_SEPARATORS = re.compile(r"[\u2028\u2029]")

REPLACEMENT = "\ufffd"
ELLIPSIS = "…"


def to_str(data: str | bytes | bytearray) -> str:
    """Bytes from a device as text (UTF-8, bad bytes as U+FFFD)."""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data).decode("utf-8", errors="replace")
    return data if isinstance(data, str) else str(data)


def _clean_plain(text: str, keep_newlines: bool) -> str:
    """Text with no escape sequences left in it -> no controls either."""
    text = _CONTROLS.sub("", text)
    text = _UNPRINTABLE.sub(REPLACEMENT, text)
    text = _BIDI.sub("", text)
    text = _LINE_SEPARATORS.sub("\n", text)
    if not keep_newlines:
        # A space rather than nothing, so words on either side stay apart.
        text = text.replace("\n", " ")
    return text


def _cap_lines(text: str, max_line: int | None, tab_size: int | None) -> str:
    if tab_size is None and max_line is None:
        return text
    lines = text.split("\n")
    if tab_size is not None:
        lines = [line.expandtabs(tab_size) for line in lines]
    if max_line is not None:
        limit = max(1, max_line)
        lines = [
            line if len(line) <= limit else line[: limit - 1] + ELLIPSIS for line in lines
        ]
    return "\n".join(lines)


def strip_control(
    text: str | bytes,
    keep_newlines: bool = False,
    *,
    tab_size: int | None = None,
    max_line: int | None = None,
) -> CleanText:
    """Text with every escape sequence and control character removed.

    Kept: printable text, `\\t` (expanded to `tab_size` columns when given)
    and, with `keep_newlines`, `\\n`; without it newlines become spaces. `\\r`
    is dropped (`\\r\\n` -> `\\n`). Lines longer than `max_line` are cut with
    an ellipsis. The result contains no ESC and no C0/C1 control other than
    `\\t` and `\\n`, whatever the input.
    """
    text = to_str(text)
    text = _ESCAPES.sub("", text)
    text = _clean_plain(text, keep_newlines)
    return _cleaned(_cap_lines(text, max_line, tab_size))


#: an error reason is one line a user reads; a server's algorithm list can be kilobytes
MAX_REASON_CHARS = 400


def clean_reason(text: object) -> CleanText:
    """One line of a peer's error text, safe for any widget, toast, title or log line.

    Used where errors are made (SSHConnectError, TransportError, LinkStatus), so
    every later use of the message is clean whoever shows it.
    """
    return strip_control(text if isinstance(text, str | bytes) else str(text),
                         max_line=MAX_REASON_CHARS)


def _is_sgr(match: re.Match[str]) -> bool:
    return (
        match.group("csi") is not None
        and match.group(0).startswith("\x1b[")
        and match.group("final") == "m"
        and not match.group("inter")
        and _SGR_PARAMS.fullmatch(match.group("params")) is not None
    )


def ansi_to_text(
    text: str | bytes,
    keep_newlines: bool = True,
    *,
    max_line: int | None = None,
    style: str = "",
) -> Text:
    """Device output with its SGR colours kept as styles and all else literal.

    Every escape sequence that is not SGR (cursor moves, titles, hyperlinks,
    mode switches) is removed, as are controls; what is left goes through
    `Text.from_ansi`. The result is a Text, so `[bold]` stays literal text.
    """
    from rich.text import Text

    text = to_str(text)
    pieces: list[str] = []
    position = 0
    for match in _ESCAPES.finditer(text):
        pieces.append(_clean_plain(text[position : match.start()], keep_newlines))
        if _is_sgr(match):
            pieces.append(match.group(0))
        position = match.end()
    pieces.append(_clean_plain(text[position:], keep_newlines))
    result = Text.from_ansi("".join(pieces), style=style)
    if max_line is not None:
        limit = max(1, max_line)
        lines = result.split("\n", allow_blank=True)
        capped = []
        for line in lines:
            if len(line.plain) > limit:
                line = line[: limit - 1]
                line.append(ELLIPSIS)
            capped.append(line)
        result = Text("\n", style=style).join(capped)
    return result


def safe_text(
    text: str | bytes,
    keep_newlines: bool = False,
    *,
    max_line: int | None = None,
    tab_size: int | None = None,
    style: str = "",
) -> Text:
    """A plain Text of device output: no markup, no escapes, no controls."""
    from rich.text import Text

    return Text(
        strip_control(text, keep_newlines, tab_size=tab_size, max_line=max_line), style=style
    )


def markup_escape(text: str | bytes) -> str:
    """For the rare place that must build a markup string around device text."""
    from rich.markup import escape

    return escape(strip_control(text))
