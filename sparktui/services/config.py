"""sparktui's configuration: one typed Settings object plus the devices, in TOML.

Read with tomllib (fast, strict), written with tomlkit so a user's comments and
layout survive a save. A broken file is reported with its line number and left
untouched; the app then runs on defaults.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sparktui.core.device import DeviceSpec
from sparktui.services.settings_rules import RULES, check_setting

CONFIG_ENV = "SPARKTUI_CONFIG"
APP_NAME = "sparktui"


def default_config_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path(APP_NAME) / "config.toml"


def data_dir() -> Path:
    from platformdirs import user_data_path

    return user_data_path(APP_NAME)


def resolve_config_path(cli_value: str | None) -> Path:
    """--config wins over $SPARKTUI_CONFIG, which wins over the platform default."""
    if cli_value:
        return Path(cli_value).expanduser()
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    return default_config_path()


@dataclass
class Settings:
    """Every user-tunable knob, with its default. Unknown keys are reported, not kept."""

    refresh_interval: float = 1.0  # seconds between telemetry samples
    history_minutes: float = 10.0
    theme: str = "sparktui-dark"
    compact: bool | None = None  # None: automatic below 80 columns
    read_only: bool = False
    restore_on_start: bool = True
    #: q / ctrl+c at the top level asks first while tunnels are up or an answer streams
    confirm_quit: bool = True
    memory_floor_gib: float = 8.0  # warn when MemAvailable drops below this
    temperature_alert_c: float = 85.0
    power_alert_w: float | None = None
    units: str = "binary"  # sizes in "binary" (GiB) or "decimal" (GB) units
    keepalive_interval: float = 5.0  # seconds; a dead peer is noticed within interval*count
    keepalive_count_max: int = 3
    reconnect_max_delay: float = 30.0
    keymap: dict[str, str] = field(default_factory=dict)  # binding id -> keys
    #: where the Docker daemon listens on each device (a rootless or custom daemon: change it)
    docker_socket: str = "/var/run/docker.sock"
    #: the load guard drops caches and compacts when MemFree (what CUDA can get on a GB10)
    #: falls under this; 8 GiB is what ended one owner's wedges (see docs/gb10.md)
    guard_free_floor_gib: float = 8.0
    #: ... and stops the loading container when MemAvailable stays under this
    guard_hard_floor_gib: float = 4.0
    guard_hard_floor_s: float = 3.0  # for this many seconds
    #: the flight recorder keeps this many minutes of every device's telemetry on disk
    flight_recorder_minutes: float = 15.0
    #: read every Spark from this Prometheus (as `sparktui --prometheus URL`); "" for SSH
    prometheus_url: str = ""


class ConfigError(Exception):
    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


@dataclass
class Config:
    path: Path
    settings: Settings = field(default_factory=Settings)
    devices: list[DeviceSpec] = field(default_factory=list)
    #: problems found while loading; the app shows them and carries on
    problems: list[str] = field(default_factory=list)

    def device(self, name: str) -> DeviceSpec | None:
        return next((d for d in self.devices if d.name == name), None)


_SETTING_TYPES: dict[str, tuple[type, ...]] = {key: rule.types for key, rule in RULES.items()}
assert set(_SETTING_TYPES) == {f.name for f in fields(Settings)}


def _line_of(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith(f"{key} ") or line.strip().startswith(f"{key}="):
            return number
    return None


def _parse_settings(raw: dict[str, Any], text: str, path: Path, problems: list[str]) -> Settings:
    settings = Settings()
    for key, value in raw.items():
        line = _line_of(text, key)
        where = f"{path}:{line}" if line else str(path)
        checked, problem = check_setting(key, value)
        if problem is not None:
            problems.append(f"{where}: {problem}")
            continue
        setattr(settings, key, checked)
    return settings


def _parse_devices(raw: Any, path: Path, problems: list[str]) -> list[DeviceSpec]:
    devices: list[DeviceSpec] = []
    if not isinstance(raw, list):
        problems.append(f"{path}: [[devices]] must be an array of tables")
        return devices
    for number, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                or not isinstance(entry.get("host"), str):
            problems.append(f"{path}: device #{number} needs string 'name' and 'host'; skipped")
            continue
        name = entry["name"]
        port = entry.get("port")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                                 or not 0 < port < 65536):
            problems.append(f"{path}: device {name!r}: bad port {port!r}; skipped")
            continue
        strings = {}
        for key in ("user", "identity_file", "proxy_jump"):
            value = entry.get(key)
            if value is not None and not isinstance(value, str):
                problems.append(f"{path}: device {name!r}: {key} must be a string; ignored")
                value = None
            strings[key] = value
        tags = entry.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            problems.append(f"{path}: device {name!r}: tags must be a list of strings, "
                            f"e.g. tags = [\"lab\"]; ignored")
            tags = []
        devices.append(DeviceSpec(name=name, host=entry["host"], port=port,
                                  tags=tuple(tags), **strings))
    return devices


def load_config(path: Path) -> Config:
    """Load the config; never raises for a bad file (problems are collected instead)."""
    config = Config(path=path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return config
    except OSError as exc:
        config.problems.append(f"{path}: cannot read: {exc.strerror or exc}")
        return config
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        config.problems.append(f"{path}: not valid TOML ({exc}); the file was left untouched "
                               "and defaults are in use")
        return config
    settings_raw = raw.get("settings", {})
    if isinstance(settings_raw, dict):
        config.settings = _parse_settings(settings_raw, text, path, config.problems)
    else:
        config.problems.append(f"{path}: [settings] must be a table")
    if "devices" in raw:
        config.devices = _parse_devices(raw["devices"], path, config.problems)
    return config


def update_config(path: Path, mutate) -> None:
    """Edit the config file in place, keeping the user's comments and layout.

    `mutate(document)` changes a tomlkit document; the result is written to a
    temporary file beside the original and renamed over it, so a crash never
    leaves half a config. A file that is not valid TOML is never touched: the
    user's text wins over ours, and the error says where the problem is.
    """

    import tomlkit

    from sparktui.services.store import write_lock

    with write_lock(path):  # read, change and write as one step: no save is lost
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        try:
            document = tomlkit.parse(text)
        except tomlkit.exceptions.ParseError as exc:
            raise ConfigError(path, f"not valid TOML, left untouched: {exc}",
                              getattr(exc, "line", None)) from exc
        mutate(document)
        write_atomically(path, tomlkit.dumps(document), keep_mode=True)


def write_atomically(path: Path, text: str, *, keep_mode: bool = False) -> None:
    """Write a temp file beside `path`, fsync it, rename it over: never half a file."""
    from sparktui.services.store import write_lock

    path.parent.mkdir(parents=True, exist_ok=True)
    with write_lock(path):
        _replace(path, text, keep_mode=keep_mode)


def _replace(path: Path, text: str, *, keep_mode: bool) -> None:
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if keep_mode and path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_settings(path: Path, **changes: object) -> None:
    """Write some settings, validated against Settings' types first."""
    for key, value in changes.items():
        if key not in RULES:
            raise ConfigError(path, f"unknown setting {key!r}")
        _checked, problem = check_setting(key, value)
        if problem is not None:
            raise ConfigError(path, problem.removesuffix("; default kept"))

    def mutate(document) -> None:
        import tomlkit

        table = document.get("settings")
        if table is None:
            table = tomlkit.table()
            document["settings"] = table
        for key, value in changes.items():
            if value is None:
                table.pop(key, None)  # TOML has no null: absent means default
            else:
                table[key] = value

    update_config(path, mutate)
