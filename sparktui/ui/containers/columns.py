"""Which columns the Containers table shows at a width, and the text of their cells.

80x24 is the size the tab is designed for: a row there keeps what tells a
container's health and how to reach it (State, Up, Ports, GPU, CPU, Mem), in
short forms ('12000→8080', '142%', '7.0G', 'healthy'); the image moves to the
detail line below the table (and comes back as a column from 110 columns).
From 150 columns every column shows in full. A 50-column side pane keeps Name,
State, CPU and Mem.
"""

from __future__ import annotations

import enum

from rich.style import Style
from rich.text import Text

from sparktui.core.docker_info import (
    COLUMNS,
    ContainerInfo,
    ContainerStats,
    format_cpu,
    format_memory,
    short_port,
)
from sparktui.core.sanitize import safe_text

Columns = tuple[tuple[str, str], ...]


class Layout(enum.Enum):
    WIDE = "wide"  # 150 columns and more: every column, in full
    NARROW = "narrow"  # 80 to 149: short forms; the image only from 110
    COMPACT = "compact"  # a side pane: name, state, CPU, memory


#: from this width every column shows in full (the longest demo row needs about 140)
WIDE_FROM = 150
#: from this width the narrow layout has room for the image too
IMAGE_FROM = 110
NARROW_COLUMNS: Columns = (("name", "Name"), ("state", "State"), ("uptime", "Up"),
                           ("ports", "Ports"), ("gpu", "GPU"), ("cpu", "CPU"), ("memory", "Mem"))
NARROW_WITH_IMAGE: Columns = (NARROW_COLUMNS[0], ("image", "Image"), *NARROW_COLUMNS[1:])
COMPACT_COLUMNS: Columns = (("name", "Name"), ("state", "State"), ("cpu", "CPU"),
                            ("memory", "Mem"))


def layout_for(width: int, compact: bool) -> Layout:
    if compact:
        return Layout.COMPACT
    return Layout.WIDE if width >= WIDE_FROM else Layout.NARROW


def columns_for(layout: Layout, width: int, *, devices: int) -> Columns:
    """The table's columns; a Device column leads when more than one device is shown."""
    if layout is Layout.WIDE:
        columns = COLUMNS
    elif layout is Layout.COMPACT:
        columns = COMPACT_COLUMNS
    else:
        columns = NARROW_WITH_IMAGE if width >= IMAGE_FROM else NARROW_COLUMNS
    return (("device", "Device"), *columns) if devices > 1 else columns


def state_style(info: ContainerInfo, styles: dict[str, Style]) -> Style:
    """The State cell's colour: `styles` has the theme's "ok", "warn" and "bad"."""
    if info.health == "unhealthy" or (info.state in ("exited", "dead") and info.exit_code):
        return styles.get("bad", Style())
    if info.state in ("paused", "restarting") or info.health == "starting":
        return styles.get("warn", Style())
    if info.state == "running":
        return styles.get("ok", Style())
    return Style(dim=True)


def row_cells(device: str, info: ContainerInfo, stats: ContainerStats | None, now: float,
              layout: Layout, state_style: Style) -> dict[str, Text]:
    """Every column's cell for one container; device text stays literal (safe_text)."""
    short = layout is not Layout.WIDE
    if short:
        ports = ", ".join(short_port(port) for port in info.ports)
    else:
        ports = ", ".join(info.ports)
    return {
        "device": safe_text(device),
        "name": safe_text(info.name, max_line=48 if layout is Layout.WIDE else 20),
        "image": safe_text(info.image, max_line=48 if layout is Layout.WIDE else 30),
        "state": Text(info.state_text(compact=short), style=state_style),
        "uptime": Text(info.uptime_text(now)),
        "ports": safe_text(ports, max_line=60 if layout is Layout.WIDE else 14),
        "gpu": Text(info.gpu or "-"),
        "cpu": Text(format_cpu(stats, compact=short), justify="right"),
        "memory": Text(format_memory(stats, compact=short), justify="right"),
    }
