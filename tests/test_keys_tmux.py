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
    """Backspace `text` away, and wait until it has gone: a backspace is a binding, run
    when the key has bubbled up to the app, after a letter typed behind it was inserted."""
    tmux.send_keys("-N", str(len(text) + 2), "BSpace")
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


def test_add_device_form_focuses_its_first_field_and_keeps_each_paste(app: Tmux) -> None:
    # defect: forms did not focus their first field; a paste landed in one field
    go_tab(app, "1", "Power")
    app.send_literal("a")
    # (a letter typed before the form is on screen is still lost: see the report of #10)
    app.wait_for_text("Add a device")
    time.sleep(HUMAN_KEY_DELAY_S)
    app.type_slowly("Jq")
    screen = app.wait_for(lambda s: "Jq" in s, "the first letters in the first field")
    assert "Jq" in screen
    clear_field(app, "Jq")
    for piece in PIECES:
        type_and_check(app, piece, paste=True, still="Add a device")
        clear_field(app, piece)
    app.send_keys("Escape")
    app.wait_for_gone("Add a device")
    running(app)


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
