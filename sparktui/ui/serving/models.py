"""Models on a device's disk (HF hub, NIM, GGUF, Ollama): size, last use, in use, delete, fit.

The caches are read once when the screen opens and again on `r` (one exec
each time, never on a timer). A download in progress shows the bytes so far
and, after a second read, how fast it grows. `d` deletes after a confirmation
that names the model; one in use or read-only mode is refused. `f` weighs the
model against the device's memory now (sparktui.ui.serving.fit).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from rich.cells import cell_len
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from sparktui.core.model_cache import CachedModel
from sparktui.core.sanitize import strip_control
from sparktui.core.units import fmt_bytes
from sparktui.services.audit import ReadOnlyError
from sparktui.services.containers import ContainerService, ServiceState
from sparktui.services.endpoints import Endpoint, EndpointConnector
from sparktui.services.link import DeviceLink
from sparktui.services.models_disk import ModelDeleteError, ModelStore
from sparktui.services.session import Session
from sparktui.services.telemetry import TelemetryService
from sparktui.ui.screens.confirm import ConfirmScreen
from sparktui.ui.widgets.footer_order import HelpKeyFirst
from sparktui.ui.widgets.worker_log import LogsWorkerFailures

log = logging.getLogger(__name__)

DOCKER_WAIT_S = 5.0  # for the in-use marks; the list does not wait longer than this
#: from this width every column takes what its cells need
WIDE_AT = 110
#: under this width (a side pane) the cache and age columns go
NARROW_BELOW = 70
COLUMN_LABELS = {"name": "Model", "source": "Cache", "size": "Size", "used": "Last used",
                 "state": "In use / download"}
#: below WIDE_AT: fixed widths, and the model's name takes the rest
COLUMN_WIDTHS = {"source": 6, "size": 9, "used": 9, "state": 18}
#: in a side pane the state column is narrower, under a shorter label
NARROW_STATE = 12


def _age(unix: float | None) -> str:
    if unix is None:
        return "—"
    days = (time.time() - unix) / 86400
    if days < 1:
        return "today"
    return f"{days:.0f} d ago"


def _under_home(path: str, home: str | None) -> str:
    """`~/.cache/huggingface/hub` rather than the whole path: shorter, and the same on
    every device."""
    if home and home != "/" and (path == home or path.startswith(home.rstrip("/") + "/")):
        return "~" + path[len(home.rstrip("/")):]
    return path


class ModelsScreen(LogsWorkerFailures, HelpKeyFirst):
    """The models on one device."""

    CSS_PATH = Path(__file__).with_name("models.tcss")
    HELP_SCOPE = "Models on disk"
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="models.back",
                tooltip="Back to the Serving tab"),
        Binding("r", "refresh", "Refresh", id="models.refresh",
                tooltip="Read the caches again (one command on the device)"),
        Binding("d,delete", "delete", "Delete", id="models.delete",
                tooltip="Delete the selected model from disk (asks first; never one in use)"),
        Binding("f", "fit", "Fit", id="models.fit",
                tooltip="Will the selected model fit in the device's memory now?"),
    ]

    def __init__(self, link: DeviceLink, connector: EndpointConnector, ollama: list[Endpoint],
                 telemetry: TelemetryService | None, *, session: Session) -> None:
        super().__init__()
        self.link = link
        self.connector = connector
        self.ollama = ollama
        self.telemetry = telemetry
        self.session = session  # read-only mode as it is now, and the session's audit log
        # the Docker socket the user configured, as the Containers tab reaches it
        self.containers = ContainerService(link, socket_path=session.settings.docker_socket,
                                           read_only=True)
        self.store = ModelStore(link, containers=self.containers, connector=connector,
                                audit=session.audit, read_only=session.read_only)
        self.models: list[CachedModel] = []
        self._columns: tuple[str, ...] = ()
        self._wide = True

    def compose(self) -> ComposeResult:
        yield Static(Text(f"Models on {self.link.name}", style="bold"), id="models-title")
        yield DataTable(id="models-table", cursor_type="row")
        yield Static(id="models-status")
        yield Footer()

    def on_mount(self) -> None:
        self._set_columns(self.size.width)
        self.containers.start()
        self.action_refresh()

    def on_resize(self, event: events.Resize) -> None:
        if self._columns_for(event.size.width) != self._columns:
            self._set_columns(event.size.width)
            self._fill()

    @staticmethod
    def _columns_for(width: int) -> tuple[str, ...]:
        """The columns that fit `width`: 80 columns keep all five with short cells; a
        side pane keeps the name, the size and what it is doing."""
        if width >= NARROW_BELOW:
            return ("name", "source", "size", "used", "state")
        return ("name", "size", "state")

    def _set_columns(self, width: int, rows: Sequence[Sequence[Text]] = ()) -> None:
        """Columns for `width`. Wide, each is as wide as its label or its widest cell in
        `rows`: measured here, not left to DataTable's auto widths, which under load
        stayed at the labels' widths for rows added while the screen was laid out."""
        self._columns = self._columns_for(width)
        self._wide = width >= WIDE_AT
        table = self.query_one(DataTable)
        table.clear(columns=True)
        narrow = width < NARROW_BELOW
        fixed = {key: COLUMN_WIDTHS[key] for key in self._columns if key != "name"}
        if narrow:
            fixed["state"] = NARROW_STATE
        # each column has a cell padding of 1 on each side; 2 more for the scrollbar
        name_width = max(12, width - sum(fixed.values()) - 2 * len(self._columns) - 2)
        for index, key in enumerate(self._columns):
            label = "In use / dl" if narrow and key == "state" else COLUMN_LABELS[key]
            if self._wide:
                wanted = max([cell_len(label), *(row[index].cell_len for row in rows)])
            else:
                wanted = fixed.get(key, name_width)
            table.add_column(label, key=key, width=wanted)

    async def on_unmount(self) -> None:
        await self.containers.close()

    def _say(self, message: str) -> None:
        self.query_one("#models-status", Static).update(Text(strip_control(message,
                                                                           max_line=300)))

    def action_refresh(self) -> None:
        self.refresh_models()

    @work(group="models-refresh", exclusive=True, exit_on_error=False)
    async def refresh_models(self) -> None:
        self._say("reading the model caches…")
        deadline = asyncio.get_running_loop().time() + DOCKER_WAIT_S
        while (self.containers.state is ServiceState.STARTING
               and asyncio.get_running_loop().time() < deadline):
            await asyncio.sleep(0.1)  # the in-use marks need Docker's answer, yes or no
        try:
            listing = await self.store.refresh(self.ollama)
        except Exception as exc:  # a device that cannot list is news, not a crash
            log.warning("listing models on %s: %r", self.link.name, exc)
            self._say(f"could not read the model caches: {exc}")
            return
        self.models = sorted(listing.models, key=lambda m: (-(m.size_bytes or 0), m.name))
        self._fill()
        docker = "" if self.containers.state is ServiceState.READY else \
            " · Docker not reachable: in-use marks unknown"
        roots = ", ".join(f"{k} {_under_home(v, listing.home)}"
                          for k, v in listing.roots.items()) or "no cache found"
        self._say(f"{len(self.models)} models ({roots}){docker} · d delete · f fit · r again")

    def _fill(self) -> None:
        rows = [self._cells(model) for model in self.models]
        if self._wide:
            self._set_columns(self.size.width, rows)
        table = self.query_one(DataTable)
        table.clear()
        for model, cells in zip(self.models, rows, strict=True):
            table.add_row(*cells, key=model.id)

    def _cells(self, model: CachedModel) -> tuple[Text, ...]:
        wide = self._wide
        if model.downloading:
            rate = self.store.download_rate(model)
            done = fmt_bytes(model.downloading_bytes)
            state = f"downloading: {done} so far" if wide else f"↓ {done}"
            if rate is not None:
                state += f", {fmt_bytes(rate)}/s"
        elif model.in_use_by:
            state = ("in use: " if wide else "use: ") + ", ".join(model.in_use_by)
        else:
            state = "—"
        values = {"name": model.name, "source": model.source,
                  "size": fmt_bytes(model.size_bytes), "used": _age(model.last_used),
                  "state": state}
        return tuple(Text(strip_control(values[key], max_line=80), no_wrap=True,
                          overflow="ellipsis") for key in self._columns)

    def _selected(self) -> CachedModel | None:
        table = self.query_one(DataTable)
        if not self.models or table.cursor_row < 0:
            return None
        return self.models[min(table.cursor_row, len(self.models) - 1)]

    def action_delete(self) -> None:
        model = self._selected()
        if model is None:
            return
        self.store.read_only = self.session.read_only  # it may have changed meanwhile
        if self.store.read_only:
            self.notify(f"read-only mode: not deleting {model.name}", severity="warning",
                        markup=False)
            return
        if model.in_use_by:
            self.notify(f"{model.name} is in use by {', '.join(model.in_use_by)}: stop it "
                        "first", severity="warning", markup=False)
            return
        question = Text.assemble("Delete ", (model.name, "bold"), f" ({model.source}, "
                                 f"{fmt_bytes(model.size_bytes)}) from {self.link.name}?\n",
                                 (model.path or "via Ollama's API", "dim"))

        def answered(yes: bool | None) -> None:
            if yes:
                self.delete_model(model)

        self.app.push_screen(ConfirmScreen("Delete model", question), answered)

    @work(group="models-delete", exit_on_error=False)
    async def delete_model(self, model: CachedModel) -> None:
        try:
            await self.store.delete(model)
        except (ModelDeleteError, ReadOnlyError) as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        except Exception as exc:  # the connection dropped mid-delete: say so, keep the app
            log.warning("deleting %s on %s: %r", model.name, self.link.name, exc)
            self.notify(f"deleting {model.name} failed: {exc}", severity="error",
                        markup=False)
            return
        self.notify(f"deleted {model.name} ({fmt_bytes(model.size_bytes)})", markup=False)
        self.refresh_models()

    def action_fit(self) -> None:
        from sparktui.ui.serving.fit import FitScreen

        model = self._selected()
        if model is not None:
            self.app.push_screen(FitScreen(self.store, model, self.telemetry))
