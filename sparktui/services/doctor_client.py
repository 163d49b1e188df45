"""The client half of `sparktui doctor`: this machine, before any device.

Python, the terminal, the config file, the keyring, a browser and the
clipboard, the ssh-agent, ~/.ssh/config and known_hosts. Each gives one Check
(sparktui.services.doctor); nothing is changed, nothing connects anywhere but
the local ssh-agent's socket.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from sparktui.services.doctor import FAIL, OK, SKIP, WARN, Check

LAYER = "client"
MIN_COLUMNS, MIN_LINES = 80, 24
TESTED_UP_TO = (3, 13)  # .ci/run's PYTHON_VERSIONS


def python_check() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    in_venv = sys.prefix != sys.base_prefix
    where = f"{sys.executable}{', in a venv' if in_venv else ''}"
    if sys.version_info[:2] > TESTED_UP_TO:
        return Check(LAYER, "python", WARN, f"Python {version} ({where}): newer than the "
                     f"versions tested (3.11 to {TESTED_UP_TO[0]}.{TESTED_UP_TO[1]})",
                     "if something breaks, reinstall on a tested one: "
                     "pipx install --python python3.13 --force sparktui")
    return Check(LAYER, "python", OK, f"Python {version} ({where})")


def terminal_checks(environ: dict[str, str], is_tty: bool) -> list[Check]:
    if not is_tty:
        return [Check(LAYER, "terminal", SKIP, "output is not a terminal: size and colours "
                      "are checked when doctor runs in one")]
    size = shutil.get_terminal_size()
    checks = []
    if size.columns < MIN_COLUMNS or size.lines < MIN_LINES:
        checks.append(Check(LAYER, "terminal", WARN, f"{size.columns}x{size.lines}",
                            f"sparktui is laid out for {MIN_COLUMNS}x{MIN_LINES} and holds down "
                            "to a 50x40 side pane; a smaller window cuts rows off"))
    else:
        checks.append(Check(LAYER, "terminal", OK, f"{size.columns}x{size.lines}"))
    term, colorterm = environ.get("TERM", ""), environ.get("COLORTERM", "")
    if environ.get("NO_COLOR"):
        checks.append(Check(LAYER, "colours", WARN, "NO_COLOR is set: no colours",
                            "unset NO_COLOR for the colour themes (sparktui-mono16 is made for "
                            "few colours)"))
    elif colorterm in ("truecolor", "24bit"):
        checks.append(Check(LAYER, "colours", OK, f"true colour (TERM={term})"))
    elif "256color" in term:
        checks.append(Check(LAYER, "colours", OK, f"256 colours (TERM={term})"))
    elif not term or term == "dumb":
        checks.append(Check(LAYER, "colours", WARN, f"TERM={term or 'unset'}",
                            "run sparktui in a real terminal (TERM=xterm-256color)"))
    else:
        checks.append(Check(LAYER, "colours", WARN, f"TERM={term}: few colours",
                            "use TERM=xterm-256color (or tmux-256color in tmux), or the "
                            "sparktui-mono16 theme"))
    return checks


def config_check(config_arg: str | None) -> Check:
    from sparktui.services.config import load_config, resolve_config_path

    path = resolve_config_path(config_arg)
    if not path.exists():
        return Check(LAYER, "config", OK, f"none yet at {path}: defaults; it is written when "
                     "you add a device or change a setting")
    config = load_config(path)
    if config.problems:
        return Check(LAYER, "config", FAIL, f"{path}: " + "; ".join(config.problems),
                     "fix the line named above; until then sparktui runs on defaults and "
                     "writes nothing to the file")
    return Check(LAYER, "config", OK, f"{path}: {len(config.devices)} device(s)")


def keyring_check() -> Check:
    import asyncio

    from sparktui.services.secrets import SecretStore

    try:
        problem = asyncio.run(SecretStore().problem())
    except Exception as exc:  # a broken backend is what this check is for
        problem = f"{type(exc).__name__}: {exc}"
    if problem:
        return Check(LAYER, "keyring", WARN, problem,
                     "tokens (HF_TOKEN, NGC_API_KEY, endpoint keys) cannot be saved: install "
                     "a Secret Service (gnome-keyring, KeePassXC) or set them in the "
                     "environment")
    import keyring

    backend = type(keyring.get_keyring())
    return Check(LAYER, "keyring", OK, f"{backend.__module__}.{backend.__name__}")


def browser_check(environ: dict[str, str]) -> Check:
    import webbrowser

    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return Check(LAYER, "browser", WARN, "no web browser found (a headless box?)",
                     "nothing to do: tunnels then show their URL and copy it (o) instead")
    name = getattr(browser, "name", None) or type(browser).__name__
    return Check(LAYER, "browser", OK, f"opens with {name}")


def clipboard_check(environ: dict[str, str]) -> Check:
    """Textual copies with OSC 52: the terminal, or tmux in between, must pass it on."""
    if not environ.get("TMUX"):
        return Check(LAYER, "clipboard", OK, "copied through the terminal (OSC 52); a "
                     "terminal that ignores it (some do by default) needs it turned on")
    try:
        value = subprocess.run(["tmux", "show-options", "-gv", "set-clipboard"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return Check(LAYER, "clipboard", WARN, f"in tmux, but tmux did not answer: {exc}",
                     "set -g set-clipboard on in ~/.tmux.conf")
    if value in ("on", "external"):
        return Check(LAYER, "clipboard", OK, f"tmux passes copies on (set-clipboard {value})")
    return Check(LAYER, "clipboard", WARN, f"tmux drops copies (set-clipboard {value or '?'})",
                 "add `set -g set-clipboard on` to ~/.tmux.conf, then tmux source ~/.tmux.conf")


DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa", "id_ed25519_sk", "id_ecdsa_sk")


def agent_check(environ: dict[str, str], home: Path) -> Check:
    keys = [name for name in DEFAULT_KEYS if (home / ".ssh" / name).is_file()]
    on_disk = f"key files in ~/.ssh: {', '.join(keys) or 'none'}"
    socket_path = environ.get("SSH_AUTH_SOCK")
    start = ('start one and add your key: eval "$(ssh-agent)" && ssh-add (most desktops '
             "start an agent at login; over ssh, use ForwardAgent or start one)")
    if not socket_path:
        return Check(LAYER, "ssh-agent", WARN if keys else FAIL,
                     f"no ssh-agent (SSH_AUTH_SOCK is not set); {on_disk}: a key with a "
                     "passphrase cannot be used", start)
    if not os.path.exists(socket_path):
        return Check(LAYER, "ssh-agent", FAIL,
                     f"SSH_AUTH_SOCK names {socket_path}, which does not exist (a stale "
                     "variable from an old session?)", start)
    import asyncio

    async def count() -> int:
        import asyncssh

        agent = await asyncssh.connect_agent(socket_path)
        if agent is None:
            raise OSError("the agent did not answer")
        try:
            return len(await agent.get_keys())
        finally:
            agent.close()

    try:
        held = asyncio.run(count())
    except Exception as exc:  # any agent failure is the finding
        return Check(LAYER, "ssh-agent", FAIL, f"the agent at {socket_path} did not answer: "
                     f"{exc}", start)
    if held == 0:
        return Check(LAYER, "ssh-agent", WARN, f"the agent holds no keys; {on_disk}",
                     "ssh-add (or ssh-add ~/.ssh/KEY)")
    return Check(LAYER, "ssh-agent", OK, f"the agent holds {held} key(s)")


def ssh_config_check() -> Check:
    from sparktui.services.sshconfig import SOURCE_SYNC, default_ssh_config, import_hosts

    imported = import_hosts()
    sync = sum(1 for h in imported.hosts if h.source == SOURCE_SYNC)
    found = f"{len(imported.hosts)} Host alias(es)" + (f", {sync} from NVIDIA Sync"
                                                       if sync else "")
    if imported.problems:
        return Check(LAYER, "ssh config", WARN, f"{found}; " + "; ".join(imported.problems),
                     f"fix the lines named in {default_ssh_config()}")
    if not default_ssh_config().exists() and not imported.hosts:
        return Check(LAYER, "ssh config", OK, "no ~/.ssh/config (not needed)")
    return Check(LAYER, "ssh config", OK, found)


def _bad_known_hosts_lines(text: str) -> list[int]:
    """Numbers of the lines that are neither comments nor `hosts keytype key`."""
    import asyncssh

    bad = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0].startswith("@"):  # @cert-authority, @revoked
            fields = fields[1:]
        try:
            asyncssh.import_public_key(" ".join(fields[1:3]))
        except (ValueError, asyncssh.KeyImportError):
            bad.append(number)
    return bad


def known_hosts_check(home: Path) -> Check:
    path = home / ".ssh" / "known_hosts"
    if not path.exists():
        return Check(LAYER, "known_hosts", OK, f"no {path} yet: the first connection to each "
                     "host shows its key's fingerprint and asks")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return Check(LAYER, "known_hosts", FAIL, f"cannot read {path}: {exc.strerror or exc}",
                     f"chmod 600 {path} (and make it yours: chown $USER {path})")
    bad = _bad_known_hosts_lines(text)
    entries = sum(1 for line in text.splitlines() if line.strip() and not line.startswith("#"))
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (" ..." if len(bad) > 5 else "")
        return Check(LAYER, "known_hosts", WARN, f"{path}: line(s) {shown} are not host keys "
                     "(ignored)", f"remove or fix those lines in {path}")
    return Check(LAYER, "known_hosts", OK, f"{path}: {entries} entries")


def client_checks(config_arg: str | None = None, environ: dict[str, str] | None = None,
                  is_tty: bool | None = None) -> list[Check]:
    """Every client check, in the order a connection needs them. Blocking: run it in a
    thread when on an event loop."""
    environ = dict(os.environ if environ is None else environ)
    is_tty = sys.stdout.isatty() if is_tty is None else is_tty
    home = Path(environ.get("HOME") or Path.home())
    return [python_check(), *terminal_checks(environ, is_tty), config_check(config_arg),
            keyring_check(), browser_check(environ), clipboard_check(environ),
            agent_check(environ, home), ssh_config_check(), known_hosts_check(home)]
