"""The settings screen (ctrl+s, or "Settings" in the palette), and remembering choices.

Edits the [settings] table of the config file through `save_settings`:
comments and layout stay, the write is atomic, and a file that is not valid
TOML is left untouched (the error names its line). After a save the file is
read back with `load_config`, so a problem elsewhere in it is shown too.

The save is a `@work` method that writes in a thread and then updates the
form itself; the screen closes with the saved changes, which the app applies
(its push_screen callback). The config store (sparktui.services.store) serialises
every config write, so a theme switched from the palette cannot race a save
from this screen, nor a tunnel or an endpoint being saved.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, fields
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from sparktui.services.config import ConfigError, Settings
from sparktui.services.store import ConfigStore
from sparktui.ui.widgets.tickbox import TickBox
from sparktui.ui.widgets.worker_log import LogsWorkerFailures


def write_settings(path: Path, **changes: object) -> list[str]:
    """Save `changes`, then read the file back; returns its problems. Blocking."""
    return ConfigStore(path).save_settings(**changes)


def remember_settings(app: App, path: Path, **changes: object) -> None:
    """Save `changes` in a thread worker; a failure is shown, never swallowed."""

    def work() -> None:
        try:
            problems = write_settings(path, **changes)
        except (ConfigError, OSError) as exc:
            app.call_from_thread(app.notify, f"not saved: {exc}", title="settings",
                                 severity="error", timeout=20, markup=False)
            return
        for problem in problems:
            app.call_from_thread(app.notify, problem, title="configuration",
                                 severity="warning", timeout=20, markup=False)

    app.run_worker(work, name="remember-settings", group="config-write", thread=True,
                   exit_on_error=False)


@dataclass(frozen=True)
class NumberField:
    key: str
    label: str
    optional: bool = False  # empty means "off" (None)
    integer: bool = False
    minimum: float = 0.0


NUMBER_FIELDS = (
    NumberField("refresh_interval", "Refresh interval (s)", minimum=0.1),
    NumberField("history_minutes", "History window (min)", minimum=1.0),
    NumberField("memory_floor_gib", "Low-memory warning below (GiB)"),
    NumberField("temperature_alert_c", "Temperature alert (°C)", minimum=1.0),
    NumberField("power_alert_w", "Power alert (W, empty: off)", optional=True, minimum=1.0),
)
UNITS = (("binary: GiB, MiB", "binary"), ("decimal: GB, MB", "decimal"))
COMPACT = (("automatic (below 80 columns)", "auto"), ("always", "on"), ("never", "off"))
_COMPACT_VALUE = {"auto": None, "on": True, "off": False}


def parse_number(field: NumberField, text: str) -> float | int | None:
    """The value of a number field; raises ValueError with a message for the user."""
    text = text.strip()
    if not text:
        if field.optional:
            return None
        raise ValueError(f"{field.label}: a number is needed")
    try:
        value: float | int = int(text) if field.integer else float(text)
    except ValueError:
        raise ValueError(f"{field.label}: {text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{field.label}: {text!r} is not a number")
    if value < field.minimum:
        raise ValueError(f"{field.label}: must be at least {field.minimum:g}")
    return value


def _show_number(value: object) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


class SettingsScreen(LogsWorkerFailures, ModalScreen[dict[str, object]]):
    """Every knob of [settings]; ctrl+s saves, escape leaves without saving.

    Dismisses with the changes saved ({} when none were)."""

    CSS_PATH = Path(__file__).with_suffix(".tcss")
    #: the first field, not the scrolling box around the fields: typing starts at once
    AUTO_FOCUS = "Input"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="settings.save", priority=True),
        Binding("escape", "cancel", "Cancel", id="settings.cancel"),
    ]

    def __init__(self, settings: Settings, config_path: Path, themes: list[str]) -> None:
        super().__init__()
        self.settings = settings
        self.config_path = config_path
        self.themes = sorted(themes)
        self.changes: dict[str, object] = {}

    def compose(self) -> ComposeResult:
        s = self.settings
        with Vertical(id="settings-box"):
            yield Static(Text.assemble(("Settings", "bold"), "  ",
                                       (str(self.config_path), "dim")), id="settings-title")
            with VerticalScroll(id="settings-fields"):
                for field in NUMBER_FIELDS:
                    with Horizontal(classes="settings-row"):
                        yield Label(field.label, classes="settings-label")
                        yield Input(_show_number(getattr(s, field.key)), id=field.key,
                                    classes="settings-input", compact=True)
                with Horizontal(classes="settings-row"):
                    yield Label("Units", classes="settings-label")
                    yield Select(UNITS, value=s.units if s.units in ("binary", "decimal")
                                 else "binary", allow_blank=False, id="units", compact=True)
                with Horizontal(classes="settings-row"):
                    yield Label("Theme", classes="settings-label")
                    themes = self.themes if s.theme in self.themes else [*self.themes, s.theme]
                    yield Select([(name, name) for name in themes], value=s.theme,
                                 allow_blank=False, id="theme", compact=True)
                with Horizontal(classes="settings-row"):
                    yield Label("Compact layout", classes="settings-label")
                    compact = {None: "auto", True: "on", False: "off"}[s.compact]
                    yield Select(COMPACT, value=compact, allow_blank=False, id="compact",
                                 compact=True)
                with Horizontal(classes="settings-row"):
                    yield Label("Restore last session on start", classes="settings-label")
                    yield TickBox("", s.restore_on_start, id="restore_on_start")
                with Horizontal(classes="settings-row"):
                    yield Label("Read-only (no changes to devices)", classes="settings-label")
                    yield TickBox("", s.read_only, id="read_only")
            yield Static(id="settings-errors")
            with Horizontal(id="settings-buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)
        yield Footer()  # this dialog's own keys, not the screen's behind it

    def collect(self) -> dict[str, object]:
        """The values on screen, validated; raises ValueError naming the first bad field."""
        values: dict[str, object] = {}
        for field in NUMBER_FIELDS:
            values[field.key] = parse_number(field, self.query_one(f"#{field.key}", Input).value)
        values["units"] = self.query_one("#units", Select).value
        values["theme"] = self.query_one("#theme", Select).value
        values["compact"] = _COMPACT_VALUE[str(self.query_one("#compact", Select).value)]
        values["restore_on_start"] = self.query_one("#restore_on_start", TickBox).value
        values["read_only"] = self.query_one("#read_only", TickBox).value
        return values

    def action_save(self) -> None:
        errors = self.query_one("#settings-errors", Static)
        try:
            values = self.collect()
        except ValueError as exc:
            errors.update(Text(str(exc), style="bold"))
            return
        known = {f.name for f in fields(Settings)}
        self.changes = {k: v for k, v in values.items()
                        if k in known and getattr(self.settings, k) != v}
        if not self.changes:
            self.dismiss({})
            return
        errors.update(Text("saving…", style="dim"))
        self.save_changes(dict(self.changes))

    @work(name="save-settings", group="config-write", exit_on_error=False)
    async def save_changes(self, changes: dict[str, object]) -> None:
        try:
            problems = await asyncio.to_thread(write_settings, self.config_path, **changes)
        except (ConfigError, OSError) as exc:
            # the file is untouched; say where the problem is and keep the form open
            self.query_one("#settings-errors", Static).update(
                Text(f"Not saved: {exc}", style="bold"))
            return
        for problem in problems:
            self.app.notify(problem, title="configuration", severity="warning", timeout=20,
                            markup=False)
        self.app.notify(f"Settings saved to {self.config_path}", title="settings",
                        markup=False)
        self.dismiss(changes)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss({})


class AppliesSettings:
    """Mixed into SparkApp: saved settings take effect where they can without a restart."""

    def apply_settings(self, changes: dict[str, object] | None) -> None:
        """Make saved changes (the SettingsScreen's result) take effect where they can
        without a restart.

        Theme and layout change at once; read-only turns ON at once (it only makes
        the session safer) but OFF only at the next start, so a session started
        with --read-only stays read-only. Intervals and thresholds are read by the
        telemetry services when they start: they apply at the next start.
        """
        if not changes:
            return
        settings = self.settings
        for key, value in changes.items():
            if key != "read_only":
                setattr(settings, key, value)
        if "theme" in changes and changes["theme"] in self.available_themes:
            self.theme = str(changes["theme"])  # type: ignore[attr-defined]
        if "compact" in changes:
            self.compact_setting = changes["compact"]  # type: ignore[assignment]
            self._update_compact(self.size.width)
        if changes.get("read_only") is True:
            settings.read_only = True
            self.set_read_only(True)
        elif changes.get("read_only") is False:
            settings.read_only = False
            if self.read_only:
                self.notify("Read-only stays on until sparktui restarts.", title="settings",
                            markup=False)
        restart = sorted(k for k in changes if k in ("refresh_interval", "history_minutes",
                                                     "memory_floor_gib", "temperature_alert_c",
                                                     "power_alert_w"))
        if restart:
            self.notify(f"{', '.join(restart)}: used from the next start of sparktui.",
                        title="settings", markup=False)

