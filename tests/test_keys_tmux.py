"""The keyboard, as a person uses it: the installed `sparktui --demo` in tmux at 80x24.

docs/keys.md is the grammar under test. One app instance serves every test of
this module (starting the demo costs seconds); each test leaves it at the top
level, on a tab of its choosing. Text is typed at human speed (90 ms a key) and
pasted (no delay between keys): sentences holding every letter (both cases),
digit and punctuation mark must arrive whole in every input, and nothing else
may happen meanwhile (no tab switch, no dialog, no quit).
"""

from __future__ import annotations

import re
import shlex
import shutil
import time
from collections.abc import Iterator

import pytest

from tests.infra import require
from tests.infra.tmux import HUMAN_KEY_DELAY_S, Tmux, sandbox_env, sparktui_command

#: every letter in both cases, every digit, every ASCII punctuation mark; each fits an
#: 80-column field whole
SENTENCES = (
    "Quick zephyrs blow, vexing daft Jim: 0123456789.",
    "THE FIVE BOXING WIZARDS JUMP QUICKLY",
    "Is (a+b)*c/d <=> 5% & [e] {f|g}?",
    "~h ^i _j \"k\" 'l' #m @n! \\o `p` $q, r-s; t:u.",
)
#: the same characters in pieces that fit a form field of an 80-column form whole
PIECES = tuple(piece for sentence in SENTENCES
               for piece in (sentence[:len(sentence) // 2], sentence[len(sentence) // 2:]))
EXITED = re.compile(r"SPARKTUI-EXITED=(\d+)")


def test_sentences_hold_every_printable_character() -> None:
    typed = set("".join(SENTENCES))
    wanted = {chr(c) for c in range(33, 127)}
    assert wanted - typed == set()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tmux]:
    require(shutil.which("tmux"), "tmux is not installed (apt-get install tmux)")
    home = tmp_path_factory.mktemp("keys-home")
    command = f"{shlex.join([*sparktui_command(), '--demo'])}; echo SPARKTUI-EXITED=$?; " \
              "sleep 600"
    session = Tmux(command, env=sandbox_env(home), width=80, height=24)
    try:
        session.wait_for(lambda s: any(line.strip() == "connected" or " connected " in line
                                       for line in s.splitlines()),
                         "the demo device to connect", timeout=60)
        yield session
    finally:
        session.kill()


# -- helpers -----------------------------------------------------------------------------
def running(tmux: Tmux) -> str:
    screen = tmux.screen()
    assert not EXITED.search(screen), f"sparktui exited:\n{screen}"
    return screen


def go_tab(tmux: Tmux, key: str, needle: str) -> str:
    tmux.send_literal(key)
    return tmux.wait_for_text(needle)


def clear_field(tmux: Tmux, text: str) -> None:
    """Clear the field with one ctrl+u, and wait until `text` has gone. One key, not a run
    of backspaces: a backspace is a binding, run when the key has bubbled up to the app, so
    on a loaded machine the last of a run could still be on its way when the next sentence
    is pasted, and would eat that sentence's last letters (seen in CI: QUICKLY -> QUICK).
    A single key's effect on screen says it has run."""
    tmux.send_keys("C-u")
    tmux.wait_for_gone(text, timeout=10)


def type_and_check(tmux: Tmux, sentence: str, *, paste: bool, still: str) -> None:
    """Type (or paste) `sentence` into the focused field: it shows whole, `still` stays."""
    if paste:
        tmux.paste_keys(sentence)
    else:
        tmux.type_slowly(sentence)
    screen = tmux.wait_for(lambda s: sentence in s or EXITED.search(s) is not None,
                           f"{sentence!r} to show whole", timeout=10)
    screen = running(tmux)
    assert sentence in screen, screen
    assert still in screen, f"{still!r} went away while typing:\n{screen}"


@pytest.fixture(autouse=True)
def at_top_level(app: Tmux) -> Iterator[None]:
    """Each test starts at the top level, whatever the one before it left open."""
    for _ in range(2):
        app.send_keys("Escape")
        app.wait_quiet(settle=0.3, timeout=2)  # ESC then a key at once reads as alt+key
    yield


# -- typing is typing --------------------------------------------------------------------
def test_chat_prompt_takes_every_key_at_human_speed_and_as_a_paste(app: Tmux) -> None:
    # defects: focus landed on the endpoint picker, and `quick question` quit at its q;
    # the first letter of a prompt typed right after the tab key was lost
    go_tab(app, "1", "Power")
    app.send_literal("5")
    time.sleep(HUMAN_KEY_DELAY_S)
    app.type_slowly("quick question: what is FP4?")
    app.wait_for_text("quick question: what is FP4?", timeout=10)
    clear_field(app, "quick question: what is FP4?")
    for sentence in SENTENCES:
        type_and_check(app, sentence, paste=False, still="Send")
        clear_field(app, sentence)
        type_and_check(app, sentence, paste=True, still="Send")
        clear_field(app, sentence)
    # Esc with nothing streaming leaves the focus in the prompt: the next word is text
    app.send_keys("Escape")
    app.wait_quiet(settle=0.3, timeout=1)  # ESC then a key at once reads as alt+key
    app.type_slowly("quit 2")
    app.wait_for_text("quit 2", timeout=10)
    clear_field(app, "quit 2")
    app.send_keys("Tab")  # out of the prompt, to where tab keys work
    app.wait_for_text("? Help")  # (only once the Tab has moved the focus: `?` is text there)
    go_tab(app, "1", "Power")


def test_containers_filter_takes_every_key(app: Tmux) -> None:
    go_tab(app, "3", "running containers")
    app.send_literal("/")
    app.wait_for_text("filter:")
    for sentence in SENTENCES[:2]:
        type_and_check(app, sentence, paste=False, still="Containers")
        clear_field(app, sentence)
    for sentence in SENTENCES:
        type_and_check(app, sentence, paste=True, still="Containers")
        clear_field(app, sentence)
    app.send_keys("Escape")  # clears the filter, back to the table
    # (wait: ESC and a key right behind it read as alt+key, in every terminal app)
    app.wait_for_gone("filter:")
    go_tab(app, "1", "Power")


def fill_fields(tmux: Tmux, count: int, *, still: str, first: int = 0,
                numbers: frozenset[int] = frozenset()) -> None:
    """Type a piece into each of `count` fields in Tab order, from the focused one: part of
    it at human speed, then all of it as a paste. Each arrives whole, and `still` (the
    form's title) stays on screen: no letter ran a key. The fields at the indexes in
    `numbers` take digits only (they refuse a letter by design): they get digits."""
    for index in range(count):
        piece = "0123456789" if index in numbers else PIECES[(first + index) % len(PIECES)]
        # (a space at the end of a line is not in a capture-pane: check pieces without one)
        piece = piece.strip()
        # no clearing first: focusing a field selects what a form put there, and the
        # first key typed replaces it
        typed = piece[:10].strip()
        type_and_check(tmux, typed, paste=False, still=still)
        tmux.send_keys("C-u")
        tmux.wait_for_gone(typed, timeout=10)
        type_and_check(tmux, piece, paste=True, still=still)
        tmux.send_keys("C-u")
        tmux.wait_for_gone(piece, timeout=10)
        if index + 1 < count:
            next_field(tmux)


def next_field(tmux: Tmux, key: str = "Tab") -> None:
    """Tab (or `key`) to the next text field, and wait until the terminal's cursor is in it (Textual
    puts the cursor where a focused field's caret is): a key read before the focus has
    moved goes to the field that had it, in every Textual app."""
    where = "#{cursor_x},#{cursor_y}"
    before = tmux.tmux("display", "-p", "-t", tmux.target, where)
    tmux.send_keys(key)
    deadline = time.monotonic() + 10
    while tmux.tmux("display", "-p", "-t", tmux.target, where) == before:
        assert time.monotonic() < deadline, "Tab did not move the cursor to the next field"
        time.sleep(0.02)  # polling the terminal: tmux has no event to await


def settle(tmux: Tmux) -> None:
    """Let the keys just sent take effect before typing on. Ctrl+U and Tab are bindings,
    run once the key has bubbled up to the app: a letter typed right behind one reaches
    the field first (and Ctrl+U then deletes it, or Tab has not moved the focus yet)."""
    tmux.wait_quiet(settle=0.2, timeout=3)


def press_slowly(tmux: Tmux, *keys: str) -> None:
    """Keys that move the focus, each taking effect before the next (see settle)."""
    for key in keys:
        tmux.send_keys(key)
        settle(tmux)


def leave(tmux: Tmux, title: str) -> None:
    tmux.send_keys("Escape")
    tmux.wait_for_gone(title)
    tmux.wait_quiet(settle=0.3, timeout=2)  # ESC then a key at once reads as alt+key
    running(tmux)


def test_add_device_keeps_the_letters_typed_right_after_a_and_fills_every_field(
        app: Tmux) -> None:
    # defects: the first letter typed within 90 ms of `a` was lost (the form had not
    # focused its first field yet); a paste landed in one field
    go_tab(app, "1", "Power")
    app.send_literal("a")
    time.sleep(HUMAN_KEY_DELAY_S)  # no wait for the form: a person types on at once
    app.type_slowly("Jq")
    screen = app.wait_for(lambda s: "Jq" in s, "the first letters in the first field")
    assert "Add a device" in screen
    leave(app, "Add a device")
    # the same as a paste: `a` and the name in one burst, no delay between the keys
    app.paste_keys("aZq: spark-07")
    screen = app.wait_for(lambda s: "Zq: spark-07" in s, "the pasted name in the form")
    assert "Add a device" in screen
    app.send_keys("End", "C-u")
    app.wait_for_gone("Zq: spark-07")
    settle(app)
    fill_fields(app, 7, still="Add a device")  # every text field (the password hides)
    leave(app, "Add a device")


def test_settings_fields_take_every_key(app: Tmux) -> None:
    go_tab(app, "1", "Power")
    app.send_keys("C-s")
    app.wait_for_text("Refresh interval")
    fill_fields(app, 5, still="Refresh interval", first=1)  # the number fields
    leave(app, "Refresh interval")  # Esc cancels: nothing typed is saved


def test_tunnel_form_fields_take_every_key(app: Tmux) -> None:
    go_tab(app, "4", "Tunnels")
    app.send_literal("a")
    app.wait_for_text("Remote port")
    press_slowly(app, "Tab")  # past the preset and device pickers, to the name
    next_field(app)
    # name, remote host, remote port (digits), local port (digits), local address
    fill_fields(app, 5, still="Remote port", first=2, numbers=frozenset({2, 3}))
    leave(app, "Remote port")
    go_tab(app, "1", "Power")


def test_deploy_form_fields_take_every_key(app: Tmux) -> None:
    go_tab(app, "3", "running containers")
    app.send_literal("D")
    app.wait_for_text("Deploy (ctrl+s)")
    press_slowly(app, "Tab")  # past the presets and the scrolling form, to the name
    next_field(app)
    fill_fields(app, 11, still="Deploy (ctrl+s)", first=3)  # every text field
    app.send_keys("Tab")
    app.wait_for_text("? Help")  # out of the text fields (there `?` is text), on a checkbox
    app.send_literal("q")  # q goes back; nothing was deployed
    app.wait_for_gone("Deploy (ctrl+s)")
    go_tab(app, "1", "Power")


def test_chat_system_prompt_and_logs_search_take_every_key(app: Tmux) -> None:
    go_tab(app, "1", "Power")
    app.send_literal("5")
    app.wait_for_text("system prompt")
    # from the prompt back past the log, max tokens and temperature to the system prompt
    press_slowly(app, "BTab")
    for _ in range(3):
        next_field(app, "BTab")
    fill_fields(app, 1, still="temperature", first=4)
    next_field(app)  # to temperature
    next_field(app)  # to max tokens
    app.send_keys("Tab")
    app.wait_for_text("? Help")  # on the log: out of the text fields
    go_tab(app, "3", "running containers")
    app.wait_for_text("ollama")
    app.send_literal("l")
    app.wait_for_text("Logs of ollama")
    app.send_literal("/")
    app.wait_for_text("search (enter")
    fill_fields(app, 1, still="Logs of ollama", first=5)
    app.send_keys("Escape")  # clears the search
    app.wait_quiet(settle=0.3, timeout=2)
    app.send_literal("q")
    app.wait_for_gone("Logs of ollama")
    go_tab(app, "1", "Power")


def test_q_and_escape_go_back_exactly_one_level(app: Tmux) -> None:
    # defect: logs, images and deploy showed `q Quit`, and q quit the app from them
    go_tab(app, "3", "running containers")
    app.wait_for_text("ollama")
    for key, opened, back in (("l", "Logs of ollama", "running containers"),
                              ("i", "Images on spark-demo", "running containers")):
        for leave in ("q", "Escape"):
            app.send_literal(key)
            app.wait_for_text(opened)
            app.send_keys(leave) if leave == "Escape" else app.send_literal(leave)
            app.wait_for_gone(opened)
            assert back in running(app)
    go_tab(app, "1", "Power")
    app.send_literal("i")  # device details
    app.wait_for_text("nvidia-smi -q")
    app.send_literal("q")
    app.wait_for_gone("nvidia-smi -q")
    app.send_literal("?")
    app.wait_for_text("Keys in force")
    app.send_literal("q")
    app.wait_for_gone("Keys in force")
    assert "Power" in running(app)


@pytest.mark.parametrize(("tab", "ready", "key", "names"), [
    ("3", "ollama", "s", "Stop the container"),
    ("3", "ollama", "r", "Restart the container"),
    ("3", "ollama", "d", "Remove the container"),
])
def test_every_destructive_key_asks_naming_its_target(app: Tmux, tab: str, ready: str,
                                                      key: str, names: str) -> None:
    # defect: s stopped and r restarted a container at once
    go_tab(app, tab, ready)
    app.send_literal(key)
    screen = app.wait_for_text("No (n)")
    assert names in screen, screen
    app.send_literal("q")  # q answers no: back one level
    app.wait_for_gone("No (n)")
    assert ready in running(app)
    go_tab(app, "1", "Power")
