"""The last session: which devices were open, which tab and device had focus.

Kept in the data dir (session.toml), never in the config: it is the app's
memory, rewritten on every quit, while the config is the user's file. A
missing or broken state file just means a fresh start (the problem is
reported, the file is left for the next save to replace).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from sparktui.core.device import DestinationError, DeviceSpec
from sparktui.services.config import Config, write_atomically


def default_state_path() -> Path:
    from sparktui.services.config import data_dir

    return data_dir() / "session.toml"


@dataclass(frozen=True)
class SavedDevice:
    name: str
    destination: str  # `local` or [user@]host[:port]: enough to reopen an ad-hoc device


@dataclass
class SessionState:
    devices: list[SavedDevice] = field(default_factory=list)
    demo: bool = False
    tab: str | None = None
    focused: str | None = None

    @classmethod
    def of(cls, specs: list[DeviceSpec], *, demo: bool, tab: str | None,
           focused: str | None, demo_name: str | None = None) -> SessionState:
        devices = [SavedDevice(s.name, s.destination) for s in specs if s.name != demo_name]
        return cls(devices=devices, demo=demo, tab=tab, focused=focused)

    def specs(self, config: Config) -> tuple[list[DeviceSpec], list[str]]:
        """The devices to reopen: configured ones as configured now, others as saved."""
        out: list[DeviceSpec] = []
        problems: list[str] = []
        for saved in self.devices:
            named = config.device(saved.name)
            if named is not None:
                out.append(named)
                continue
            try:
                out.append(DeviceSpec.parse(saved.destination, name=saved.name))
            except DestinationError as exc:
                problems.append(f"last session's device {saved.name!r} skipped: {exc}")
        return out, problems


def load_state(path: Path | None = None) -> tuple[SessionState, list[str]]:
    """The saved session, and problems reading it (never raises)."""
    path = path or default_state_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return SessionState(), []
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return SessionState(), [f"{path}: last session not restored: {exc}"]
    state = SessionState()
    problems: list[str] = []
    for entry in raw.get("devices", []) if isinstance(raw.get("devices"), list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) \
                and isinstance(entry.get("destination"), str):
            state.devices.append(SavedDevice(entry["name"], entry["destination"]))
        else:
            problems.append(f"{path}: a saved device without name and destination skipped")
    state.demo = raw.get("demo") is True
    state.tab = raw["tab"] if isinstance(raw.get("tab"), str) else None
    state.focused = raw["focused"] if isinstance(raw.get("focused"), str) else None
    return state, problems


def save_state(state: SessionState, path: Path | None = None) -> None:
    """Write the state atomically (temp file + rename): a crash never leaves half a file."""
    import tomlkit

    path = path or default_state_path()
    document = tomlkit.document()
    document.add(tomlkit.comment("sparktui's last session: rewritten on every quit"))
    document["demo"] = state.demo
    if state.tab:
        document["tab"] = state.tab
    if state.focused:
        document["focused"] = state.focused
    if state.devices:  # an empty array of tables would print as `devices = []` on top
        devices = tomlkit.aot()
        for saved in state.devices:
            table = tomlkit.table()
            table["name"] = saved.name
            table["destination"] = saved.destination
            devices.append(table)
        document["devices"] = devices
    write_atomically(path, tomlkit.dumps(document))
