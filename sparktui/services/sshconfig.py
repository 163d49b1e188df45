"""Hosts a user can already reach: ~/.ssh/config and NVIDIA Sync's own ssh_config.

Only concrete `Host` names are listed (no `*`, `?` or `!` patterns): those are
the names `ssh NAME` accepts. NVIDIA Sync keeps a separate ssh_config it does
not always Include from ~/.ssh/config, so its aliases only work when that file
is given to the SSH client too: `sync_config_for(name)` says which file.

Reading is plain file I/O on small files; callers on the event loop run these
functions in a thread.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

SOURCE_SSH = "ssh-config"
SOURCE_SYNC = "nvidia-sync"
SYNC_ENV = "NV_SYNC_SSH_CONFIG"
_MAX_INCLUDE_DEPTH = 8  # OpenSSH's own limit is 16; a loop must end somewhere


@dataclass(frozen=True)
class SshHost:
    """One `Host` alias and the options its block sets (only what the file says)."""

    alias: str
    source: str  # SOURCE_SSH or SOURCE_SYNC
    config_file: str  # the file the block is in
    hostname: str | None = None
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    proxy_jump: str | None = None

    @property
    def destination(self) -> str:
        host = self.hostname or self.alias
        text = f"{self.user}@{host}" if self.user else host
        return f"{text}:{self.port}" if self.port else text

    def as_dict(self) -> dict[str, object]:
        return {"name": self.alias, "source": self.source, "config_file": self.config_file,
                "hostname": self.hostname, "user": self.user, "port": self.port,
                "identity_file": self.identity_file, "proxy_jump": self.proxy_jump}


@dataclass
class ImportResult:
    hosts: list[SshHost] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: the NVIDIA Sync ssh_config that was read, if one exists
    sync_config: str | None = None


def _is_pattern(name: str) -> bool:
    return any(c in name for c in "*?!") or not name


_KEY_VALUE = re.compile(r"^([A-Za-z][A-Za-z0-9]*)(?:\s*=\s*|\s+)(.*)$")


def _split_line(line: str) -> tuple[str, list[str]] | None:
    """`Key value`, `Key=value` or `Key = "a value"` -> (key lowercased, words)."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    match = _KEY_VALUE.match(line)
    key, rest = (match[1], match[2]) if match else (line, "")
    try:
        words = shlex.split(rest, comments=True)
    except ValueError:  # an unbalanced quote: take the words as they are
        words = rest.split()
    return key.lower(), words


def default_ssh_config() -> Path:
    return Path("~/.ssh/config").expanduser()


def sync_config_candidates() -> list[Path]:
    """Where NVIDIA Sync keeps its ssh_config on this platform ($NV_SYNC_SSH_CONFIG wins)."""
    override = os.environ.get(SYNC_ENV)
    if override:
        return [Path(override).expanduser()]
    home = Path("~").expanduser()
    if sys.platform == "darwin":
        return [home / "Library/Application Support/NVIDIA/Sync/config/ssh_config"]
    if sys.platform == "win32":
        appdata = os.environ.get("APPDATA")
        return [Path(appdata) / "NVIDIA/Sync/config/ssh_config"] if appdata else []
    return [home / ".local/share/NVIDIA/Sync/ssh_config",
            home / ".config/NVIDIA/Sync/ssh_config",
            home / ".config/NVIDIA/Sync/config/ssh_config"]


def find_sync_config() -> Path | None:
    return next((p for p in sync_config_candidates() if p.is_file()), None)


def _include_paths(words: list[str], base: Path) -> list[Path]:
    found: list[Path] = []
    for word in words:
        pattern = os.path.expanduser(word)
        if not os.path.isabs(pattern):
            # relative Includes are relative to ~/.ssh, as in OpenSSH's user config
            pattern = str(base / pattern)
        found += [Path(p) for p in sorted(glob.glob(pattern))]
    return found


def parse_ssh_config(text: str, path: str, source: str, *,
                     problems: list[str] | None = None, _depth: int = 0,
                     _seen: set[str] | None = None) -> list[SshHost]:
    """The concrete Host aliases of one ssh_config text (following Include)."""
    problems = [] if problems is None else problems
    seen = _seen if _seen is not None else {os.path.abspath(path)}
    hosts: list[SshHost] = []
    current: list[str] = []  # aliases of the block being read
    options: dict[str, str] = {}
    # a Host in an Include inside a Host block is still its own block, as in OpenSSH
    base = Path("~/.ssh").expanduser()

    def flush() -> None:
        for alias in current:
            port: int | None = None
            if "port" in options:
                try:
                    port = int(options["port"])
                    if not 0 < port < 65536:
                        raise ValueError
                except ValueError:
                    problems.append(f"{path}: Host {alias}: bad Port {options['port']!r}")
                    port = None
            hosts.append(SshHost(
                alias=alias, source=source, config_file=path,
                hostname=options.get("hostname"), user=options.get("user"), port=port,
                identity_file=options.get("identityfile"),
                proxy_jump=options.get("proxyjump")))

    for number, line in enumerate(text.splitlines(), start=1):
        parsed = _split_line(line)
        if parsed is None:
            continue
        key, words = parsed
        if key == "host":
            flush()
            current = [w for w in words if not _is_pattern(w)]
            options = {}
        elif key == "match":
            flush()
            current, options = [], {}
        elif key == "include":
            if _depth >= _MAX_INCLUDE_DEPTH:
                problems.append(f"{path}:{number}: Include nested too deeply; ignored")
                continue
            for included in _include_paths(words, base):
                real = os.path.abspath(included)
                if real in seen or not included.is_file():
                    continue
                seen.add(real)
                try:
                    sub = included.read_text(encoding="utf-8", errors="replace")
                except OSError as exc:
                    problems.append(f"{included}: cannot read: {exc.strerror or exc}")
                    continue
                hosts += parse_ssh_config(sub, str(included), source, problems=problems,
                                          _depth=_depth + 1, _seen=seen)
        elif current and words:
            options.setdefault(key, words[0])  # the first value wins, as in ssh
    flush()
    return _dedupe(hosts)


def _dedupe(hosts: list[SshHost]) -> list[SshHost]:
    out: dict[str, SshHost] = {}
    for host in hosts:
        out.setdefault(host.alias, host)  # ssh uses the first block that names a host
    return list(out.values())


def read_hosts(path: Path, source: str, problems: list[str],
               exclude: set[str] | None = None) -> list[SshHost]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as exc:
        problems.append(f"{path}: cannot read: {exc.strerror or exc}")
        return []
    seen = {os.path.abspath(path), *(exclude or set())}
    return parse_ssh_config(text, str(path), source, problems=problems, _seen=seen)


def import_hosts(ssh_config: Path | None = None, sync_config: Path | None = None) -> ImportResult:
    """Hosts of ~/.ssh/config (source "ssh-config") and NVIDIA Sync's (source "nvidia-sync").

    A Sync alias that ~/.ssh/config also reaches (through an Include) is listed
    once, as Sync's: that is where it came from.
    """
    result = ImportResult()
    sync_path = sync_config or find_sync_config()
    sync_hosts: list[SshHost] = []
    if sync_path is not None and sync_path.is_file():
        result.sync_config = str(sync_path)
        sync_hosts = read_hosts(sync_path, SOURCE_SYNC, result.problems)
    exclude = {os.path.abspath(sync_path)} if sync_path is not None else set()
    ssh_hosts = read_hosts(ssh_config or default_ssh_config(), SOURCE_SSH, result.problems,
                           exclude=exclude)
    sync_names = {h.alias for h in sync_hosts}
    result.hosts = [h for h in ssh_hosts if h.alias not in sync_names] + sync_hosts
    return result


def sync_config_for(name: str, sync_config: Path | None = None) -> str | None:
    """The NVIDIA Sync ssh_config that defines Host `name`, or None."""
    path = sync_config or find_sync_config()
    if path is None:
        return None
    hosts = read_hosts(path, SOURCE_SYNC, [])
    return str(path) if any(h.alias == name for h in hosts) else None
