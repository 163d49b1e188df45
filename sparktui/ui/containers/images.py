"""The images of one device: size, who uses them, remove one, remove the unused."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from sparktui.core.docker_info import format_age, format_bytes
from sparktui.core.sanitize import safe_text, strip_control
from sparktui.services.audit import ReadOnlyError
from sparktui.services.container_images import ImageInfo, list_images, remove_images, unused
from sparktui.services.containers import ContainerService, DockerUnavailable, describe_error
from sparktui.ui.containers.dialogs import Answer, ConfirmDialog
from sparktui.ui.widgets.footer_order import HelpKeyFirst
from sparktui.ui.widgets.worker_log import LogsWorkerFailures


class ImagesScreen(LogsWorkerFailures, HelpKeyFirst):
    CSS_PATH = Path(__file__).with_suffix(".tcss")
    HELP_SCOPE = "Images"
    BINDINGS = [
        Binding("escape,q", "close", "Back", id="images.close"),
        Binding("d", "remove", "Remove", id="images.remove"),
        Binding("U", "remove_unused", "Remove unused", id="images.remove_unused"),
        Binding("r", "refresh", "Refresh", id="images.refresh"),
    ]

    def __init__(self, service: ContainerService) -> None:
        super().__init__()
        self.service = service
        self.images: list[ImageInfo] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Static(Text(f"Images on {self.service.device}", style="bold"), id="images-title")
        table: DataTable[Text] = DataTable(id="images-table", cursor_type="row")
        yield table
        yield Static(id="images-status")
        yield Footer()

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#images-table", DataTable)

    def on_mount(self) -> None:
        for key, label in (("image", "Image"), ("id", "ID"), ("size", "Size"),
                           ("created", "Created"), ("used", "Containers")):
            self.table.add_column(label, key=key)
        self.table.focus()
        self.action_refresh()

    def action_close(self) -> None:
        self.dismiss(None)

    @work(group="images", exclusive=True, exit_on_error=False)
    async def action_refresh(self) -> None:
        status = self.query_one("#images-status", Static)
        try:
            images = await list_images(self.service)
        except DockerUnavailable as exc:
            status.update(safe_text(str(exc), style="bold red"))
            return
        except Exception as exc:  # the daemon's reason, shown where the list would be
            status.update(safe_text(f"listing images failed: {describe_error(exc)}",
                                    style="bold red"))
            return
        self.images = images
        self.loaded = True
        now = time.time()
        table = self.table
        table.clear()
        for image in images:
            table.add_row(safe_text(image.label, max_line=70), Text(image.short_id),
                          Text(format_bytes(image.size), justify="right"),
                          Text(format_age(None if image.created is None else now - image.created)),
                          Text(str(image.containers) if image.containers else "unused",
                               style="" if image.containers else "dim"),
                          key=image.id)
        spare = unused(images)
        status.update(Text(
            f"{len(images)} images, {format_bytes(sum(i.size for i in images))}; "
            f"{len(spare)} unused ({format_bytes(sum(i.size for i in spare))}) · "
            "d: remove · U: remove unused", style="dim"))

    def _selected(self) -> ImageInfo | None:
        row = self.table.cursor_row
        return self.images[row] if 0 <= row < len(self.images) else None

    def _writable(self, what: str) -> bool:
        try:
            self.service.check_writable(what, f"images on {self.service.device}")
        except ReadOnlyError as exc:
            self.notify(str(exc), title="read-only", severity="error", markup=False)
            return False
        return True

    def action_remove(self) -> None:
        image = self._selected()
        if image is None or not self._writable("remove image"):
            return
        question = Text("Remove the image ")
        question.append_text(safe_text(image.label, style="bold"))
        question.append(f" ({image.short_id}, {format_bytes(image.size)}) from "
                        f"{self.service.device}?")
        if image.containers:
            question.append(f"\n{image.containers} container(s) use it: Docker will refuse "
                            "until they are removed.")
        self._ask(ConfirmDialog("Remove image", question), [image])

    def action_remove_unused(self) -> None:
        if not self._writable("remove unused images"):
            return
        spare = unused(self.images)
        if not spare:
            self.notify("No unused images.", timeout=3)
            return
        question = Text(f"Remove these {len(spare)} images, used by no container, from "
                        f"{self.service.device} ({format_bytes(sum(i.size for i in spare))})?\n")
        for image in spare:
            question.append("\n  ")
            question.append_text(safe_text(image.label, max_line=60))
            question.append(f"  {format_bytes(image.size)}", style="dim")
        self._ask(ConfirmDialog("Remove unused images", question), spare)

    def _ask(self, dialog: ConfirmDialog, images: list[ImageInfo]) -> None:
        def answered(answer: Answer | None) -> None:
            if answer is not None and answer.confirmed:
                self._remove(images)

        self.app.push_screen(dialog, callback=answered)

    @work(group="images-remove", exit_on_error=False)
    async def _remove(self, images: list[ImageInfo]) -> None:
        try:
            results = await remove_images(self.service, images)
        except (ReadOnlyError, DockerUnavailable) as exc:
            self.notify(str(exc), title="remove", severity="error", markup=False)
            return
        failed = [(image, error) for image, error in results if error]
        for image, error in failed:
            self.notify(f"{strip_control(image.label)}: {error}", title="not removed",
                        severity="error", markup=False)
        removed = len(results) - len(failed)
        if removed:
            self.notify(f"removed {removed} image(s)", timeout=3)
        self.action_refresh()
