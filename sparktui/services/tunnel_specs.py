"""What a tunnel is, before it runs: presets, specs, the `[[tunnels]]` config table.

Pure data and small helpers, shared by the Tunnels tab, `sparktui forward` and
`sparktui tunnels`. Nothing here touches a device; the only I/O is reading and
writing the config file and test-binding a local port.

A tunnel in the config:

    [[tunnels]]
    device = "spark-1"          # a device name as the session knows it
    name = "dashboard"          # unique per device
    remote_host = "localhost"   # as seen from the device
    remote_port = 11000
    local_port = 11000          # fixed once chosen, so bookmarks keep working
    bind = "127.0.0.1"          # wider (0.0.0.0) only when written here on purpose
    reverse = false             # true: the device listens on remote_port and
                                #       reaches bind:local_port on this machine
    preset = "dashboard"        # where "open in browser" and the probe go
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sparktui.core.device import is_loopback

DEFAULT_BIND = "127.0.0.1"
DEFAULT_REMOTE_HOST = "localhost"
#: how far past the wanted port an automatic local port looks before taking any free one
PORT_SEARCH_SPAN = 100


@dataclass(frozen=True)
class Preset:
    """A service Spark users usually reach with `ssh -L`."""

    key: str  # what `sparktui forward DEVICE KEY` and the config's `preset` say
    title: str
    port: int
    #: where "open in browser" goes, and what the probe asks for
    path: str = "/"


PRESETS: tuple[Preset, ...] = (
    Preset("dashboard", "DGX Dashboard", 11000, "/"),
    Preset("jupyter", "JupyterLab", 8888, "/lab"),
    Preset("tensorboard", "TensorBoard", 6006, "/"),
    Preset("ollama", "Ollama", 11434, "/api/tags"),
    Preset("vllm", "NIM or vLLM (OpenAI API)", 8000, "/v1/models"),
    Preset("sglang", "SGLang", 30000, "/health"),
    Preset("model-runner", "Docker Model Runner", 12434, "/models"),
    Preset("open-webui", "Open WebUI", 12000, "/"),
    Preset("comfyui", "ComfyUI", 8188, "/"),
)
PRESET_ALIASES = {"nim": "vllm", "webui": "open-webui", "comfy": "comfyui",
                  "dmr": "model-runner", "lab": "jupyter"}


def preset(key: str | None) -> Preset | None:
    if not key:
        return None
    key = PRESET_ALIASES.get(key.lower(), key.lower())
    return next((p for p in PRESETS if p.key == key), None)


class TunnelSpecError(ValueError):
    """A tunnel description that cannot work; the message says which field."""


def _check_port(value: object, what: str, *, zero_ok: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TunnelSpecError(f"{what} must be a whole number, got {value!r}")
    low = 0 if zero_ok else 1
    if not low <= value <= 65535:
        raise TunnelSpecError(f"{what} {value} is out of range ({low}-65535)")
    return value


@dataclass(frozen=True)
class TunnelSpec:
    """One saved forward. `local_port` None means "pick one when it is added".

    `autostart` False is a tunnel the user stopped: it is kept, and shown, but not
    restored on the next start (a stop should not be undone by a restart).
    """

    device: str
    name: str
    remote_port: int
    remote_host: str = DEFAULT_REMOTE_HOST
    local_port: int | None = None
    bind: str = DEFAULT_BIND
    reverse: bool = False
    preset: str | None = None
    autostart: bool = True

    def __post_init__(self) -> None:
        if not self.device.strip():
            raise TunnelSpecError("a tunnel needs a device")
        if not self.name.strip():
            raise TunnelSpecError("a tunnel needs a name")
        _check_port(self.remote_port, "remote port", zero_ok=False)
        if self.local_port is not None:
            _check_port(self.local_port, "local port", zero_ok=False)
        if not self.remote_host.strip() or not self.bind.strip():
            raise TunnelSpecError("remote host and bind address cannot be empty")

    @property
    def key(self) -> tuple[str, str]:
        """What identifies a tunnel in the config: its name on its device."""
        return (self.device, self.name)

    @property
    def wide_bind(self) -> bool:
        """True when other machines can reach the listener (it is not on loopback).

        The listener is here for a forward (`bind`), on the device for a reverse
        forward (`remote_host`, which the device's sshd may still narrow down).
        """
        return not is_loopback(self.remote_host if self.reverse else self.bind)

    @property
    def url_path(self) -> str:
        found = preset(self.preset)
        return found.path if found else "/"

    def with_local_port(self, port: int) -> TunnelSpec:
        return replace(self, local_port=port)

    def to_table(self) -> dict[str, Any]:
        table: dict[str, Any] = {
            "device": self.device, "name": self.name, "remote_host": self.remote_host,
            "remote_port": self.remote_port,
        }
        if self.local_port is not None:
            table["local_port"] = self.local_port
        table["bind"] = self.bind
        table["reverse"] = self.reverse
        if self.preset:
            table["preset"] = self.preset
        if not self.autostart:
            table["autostart"] = False
        return table

    @classmethod
    def from_table(cls, raw: Mapping[str, Any]) -> TunnelSpec:
        known = {"device", "name", "remote_host", "remote_port", "local_port", "bind",
                 "reverse", "preset", "autostart"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise TunnelSpecError(f"unknown key(s) {', '.join(unknown)}")
        for key in ("device", "name"):
            if not isinstance(raw.get(key), str):
                raise TunnelSpecError(f"needs a string {key!r}")
        for key in ("remote_host", "bind", "preset"):
            if key in raw and not isinstance(raw[key], str):
                raise TunnelSpecError(f"{key} must be a string")
        for key in ("reverse", "autostart"):
            if key in raw and not isinstance(raw[key], bool):
                raise TunnelSpecError(f"{key} must be true or false")
        remote_port = raw.get("remote_port")
        found = preset(raw.get("preset"))
        if remote_port is None and found is not None:
            remote_port = found.port
        if remote_port is None:
            raise TunnelSpecError("needs a remote_port (or a preset)")
        return cls(device=raw["device"], name=raw["name"],
                   remote_port=_check_port(remote_port, "remote_port"),
                   remote_host=raw.get("remote_host", DEFAULT_REMOTE_HOST),
                   local_port=raw.get("local_port"), bind=raw.get("bind", DEFAULT_BIND),
                   reverse=raw.get("reverse", False), preset=raw.get("preset"),
                   autostart=raw.get("autostart", True))


def _url_host(bind: str) -> str:
    host = bind.strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.is_unspecified:  # 0.0.0.0 / ::: this machine answers on loopback too
        return "127.0.0.1" if address.version == 4 else "[::1]"
    return f"[{host}]" if address.version == 6 else host


def local_url(bind: str, port: int, path: str = "/") -> str:
    return f"http://{_url_host(bind)}:{port}{path}"


# -- the command line's SPEC --------------------------------------------------------------
def _ports(parts: list[str]) -> list[int] | None:
    return [int(p) for p in parts] if all(p.isdigit() for p in parts) else None


def parse_forward_spec(text: str, device: str, *, bind: str = DEFAULT_BIND) -> TunnelSpec:
    """`REMOTE`, `LOCAL:REMOTE`, `LOCAL:HOST:REMOTE` or a preset name (`dashboard`, ...).

    `REMOTE` alone asks for the same local port, or the next free one.
    """
    found = preset(text)
    if found is not None:
        return TunnelSpec(device=device, name=found.key, remote_port=found.port, bind=bind,
                          preset=found.key)
    parts = text.split(":")
    if len(parts) == 1 and (ports := _ports(parts)):
        return TunnelSpec(device=device, name=str(ports[0]), remote_port=ports[0], bind=bind)
    if len(parts) == 2 and (ports := _ports(parts)):
        return TunnelSpec(device=device, name=str(ports[1]), remote_port=ports[1],
                          local_port=ports[0], bind=bind)
    if len(parts) == 3 and parts[1] and (ports := _ports([parts[0], parts[2]])):
        return TunnelSpec(device=device, name=f"{parts[1]}:{ports[1]}", remote_port=ports[1],
                          remote_host=parts[1], local_port=ports[0], bind=bind)
    names = ", ".join(p.key for p in PRESETS)
    raise TunnelSpecError(f"{text!r} is not a forward: use REMOTE, LOCAL:REMOTE, "
                          f"LOCAL:HOST:REMOTE or a preset ({names})")


def parse_reverse_spec(text: str, device: str) -> TunnelSpec:
    """`DEVICE_PORT:LOCAL_PORT` or `DEVICE_PORT:HOST:LOCAL_PORT` (HOST as seen from here)."""
    parts = text.split(":")
    if len(parts) == 2 and (ports := _ports(parts)):
        return TunnelSpec(device=device, name=f"R{ports[0]}", remote_port=ports[0],
                          local_port=ports[1], reverse=True)
    if len(parts) == 3 and parts[1] and (ports := _ports([parts[0], parts[2]])):
        return TunnelSpec(device=device, name=f"R{ports[0]}", remote_port=ports[0],
                          bind=parts[1], local_port=ports[1], reverse=True)
    raise TunnelSpecError(f"{text!r} is not a reverse forward: use DEVICE_PORT:LOCAL_PORT "
                          "or DEVICE_PORT:HOST:LOCAL_PORT")


# -- local ports --------------------------------------------------------------------------
def port_is_free(bind: str, port: int) -> bool:
    """True when a listener could bind bind:port now (as asyncio.start_server would)."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    try:
        # SO_REUSEADDR as asyncio sets it: connections in TIME_WAIT do not count as "taken"
        with socket.create_server((bind.strip("[]"), port), family=family, reuse_port=False):
            return True
    except OSError:
        return False


def pick_local_port(bind: str, wanted: int) -> int:
    """`wanted` if it is free, else the next free one above it, else any free port."""
    for port in range(wanted, min(65536, wanted + PORT_SEARCH_SPAN)):
        if port_is_free(bind, port):
            return port
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.create_server((bind.strip("[]"), 0), family=family) as sock:
        return sock.getsockname()[1]


def unique_name(wanted: str, taken: set[str]) -> str:
    if wanted not in taken:
        return wanted
    number = 2
    while f"{wanted}-{number}" in taken:
        number += 1
    return f"{wanted}-{number}"


# -- the browser -------------------------------------------------------------------------
def has_browser(environ: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """False on a headless box, where "open" should show and copy the URL instead.

    Over SSH (SSH_CONNECTION) a browser would open on the far machine, if at all;
    on Linux and the BSDs a browser needs a display.
    """
    env = os.environ if environ is None else environ
    if env.get("SSH_CONNECTION"):
        return False
    if (platform or sys.platform) in ("darwin", "win32"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


# -- the config file ----------------------------------------------------------------------
def load_tunnels(path: Path) -> tuple[list[TunnelSpec], list[str]]:
    """The saved tunnels and the problems found; never raises for a bad file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [f"{path}: cannot read: {exc.strerror or exc}"]
    try:
        raw = tomllib.loads(text).get("tunnels", [])
    except tomllib.TOMLDecodeError as exc:
        return [], [f"{path}: not valid TOML ({exc}); no tunnels restored"]
    if not isinstance(raw, list):
        return [], [f"{path}: [[tunnels]] must be an array of tables"]
    specs: list[TunnelSpec] = []
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for number, entry in enumerate(raw, start=1):
        try:
            if not isinstance(entry, dict):
                raise TunnelSpecError("must be a table")
            spec = TunnelSpec.from_table(entry)
        except TunnelSpecError as exc:
            problems.append(f"{path}: tunnel #{number}: {exc}; skipped")
            continue
        if spec.key in seen:
            problems.append(f"{path}: tunnel #{number}: a second {spec.name!r} on "
                            f"{spec.device}; skipped")
            continue
        seen.add(spec.key)
        specs.append(spec)
    return specs, problems


def _find(tunnels: Any, key: tuple[str, str]) -> int | None:
    for index, table in enumerate(tunnels):
        if (table.get("device"), table.get("name")) == key:
            return index
    return None


def save_tunnel(path: Path, spec: TunnelSpec, replaces: tuple[str, str] | None = None) -> None:
    """Add `spec` to the config, or update the entry `replaces` names, in place.

    Only the keys of that one table change, so comments and other tables stay.
    """
    from sparktui.services.config import update_config

    def mutate(document: Any) -> None:
        import tomlkit

        tunnels = document.get("tunnels")
        if tunnels is None:
            tunnels = tomlkit.aot()
            document["tunnels"] = tunnels
        index = _find(tunnels, replaces or spec.key)
        fresh = spec.to_table()
        if index is None:
            table = tomlkit.table()
            for key, value in fresh.items():
                table[key] = value
            tunnels.append(table)
            return
        table = tunnels[index]
        for key in [k for k in table if k not in fresh]:
            del table[key]
        for key, value in fresh.items():
            table[key] = value

    update_config(path, mutate)


def delete_tunnel(path: Path, key: tuple[str, str]) -> None:
    from sparktui.services.config import update_config

    def mutate(document: Any) -> None:
        tunnels = document.get("tunnels")
        index = None if tunnels is None else _find(tunnels, key)
        if index is not None:
            del tunnels[index]

    update_config(path, mutate)
