"""A device's facts, ConnectX-7 links and health: the screen Enter opens in Devices.

Facts are read with one combined command and cached (services.facts): the
screen shows the cached reading at once and reads again only on `r`. Health
(`h`) runs DCGM where it is installed and says so where it is not; `n` opens
`nvidia-smi -q` with a section picker. Every read is a `@work` method that
updates the screen's widgets itself; device text is shown through safe_text,
never as markup.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from sparktui.core.device import LinkState
from sparktui.core.facts import DeviceFacts, DiskUse, LinkPeer
from sparktui.core.sanitize import safe_text
from sparktui.core.units import NO_VALUE, fmt_bytes, fmt_duration
from sparktui.services.devices import Fleet
from sparktui.services.facts import FactsError, FactsReading, FactsService, HealthReport
from sparktui.services.link import DeviceLink
from sparktui.ui.keys import key_hint
from sparktui.ui.widgets.worker_log import LogsWorkerFailures

log = logging.getLogger(__name__)


def _row(text: Text, label: str, value: object) -> None:
    text.append(f"{label:<14}", style="dim")
    text.append_text(safe_text(NO_VALUE if value in (None, "") else str(value)))
    text.append("\n")


def _disk(disk: DiskUse | None, binary: bool) -> str | None:
    if disk is None:
        return None
    return (f"{fmt_bytes(disk.used_bytes, binary)} of {fmt_bytes(disk.total_bytes, binary)} "
            f"used ({disk.used_pct:.0f}%), {fmt_bytes(disk.avail_bytes, binary)} free "
            f"on {disk.mount}")


def render_facts(facts: DeviceFacts, *, binary: bool = True) -> Text:
    """The facts as label/value lines; device text stays literal."""
    text = Text()
    spark = "yes (DGX Spark, GB10)" if facts.is_spark else "no"
    _row(text, "Hostname", facts.hostname)
    _row(text, "Spark", spark)
    _row(text, "Product", facts.product)
    _row(text, "DGX OS", facts.dgx_os)
    _row(text, "OS", facts.os_name)
    _row(text, "Kernel", " ".join(filter(None, (facts.kernel, facts.arch))) or None)
    _row(text, "GPU", ", ".join(facts.gpu_names) or facts.nvidia_smi_problem)
    _row(text, "Driver", facts.driver_version)
    _row(text, "CUDA", facts.cuda_version)
    _row(text, "CPU", facts.cpu_model)
    _row(text, "Cores", facts.cpu_cores)
    memory = None
    if facts.mem_total_bytes:
        memory = fmt_bytes(facts.mem_total_bytes, binary)
        if facts.mem_available_bytes is not None:
            memory += f" ({fmt_bytes(facts.mem_available_bytes, binary)} available)"
    _row(text, "Memory", memory)
    _row(text, "Disk /", _disk(facts.root_disk, binary))
    cache = None
    if facts.cache_bytes is not None:
        cache = f"{fmt_bytes(facts.cache_bytes, binary)} in ~/.cache/huggingface"
        if facts.cache_disk is not None and facts.cache_disk.mount != "/":
            cache += f"; {_disk(facts.cache_disk, binary)}"
    _row(text, "Model cache", cache or "none (~/.cache/huggingface does not exist)")
    _row(text, "Uptime", fmt_duration(facts.uptime_s) if facts.uptime_s is not None else None)
    _row(text, "Docker", facts.docker_version or facts.docker_problem)
    _row(text, "NVIDIA CTK", facts.ctk_version or "not installed")
    _row(text, "DCGM", facts.dcgmi_path or "not installed")
    for problem in facts.problems:
        text.append(f"{problem}\n", style="italic")
    return text


def render_links(device: str, facts: DeviceFacts, peers: dict[tuple[str, str], LinkPeer],
                 throughput: dict[str, tuple[float, float]], *, binary: bool = True) -> Text:
    """One block per ConnectX-7 port: state, speed, traffic, and the other end."""
    text = Text()
    if not facts.ib_ports:
        text.append("No ConnectX-7 / RDMA ports (/sys/class/infiniband is empty or absent).",
                    style="dim")
        return text
    for port in facts.ib_ports:
        style = "bold" if port.active else "dim"
        text.append_text(safe_text(port.device, style=style))
        text.append(f"  {port.state}", style=style)
        if port.active and port.rate:
            text.append_text(safe_text(f"  {port.rate}"))
        if port.netdevs:
            text.append_text(safe_text(f"  ({', '.join(port.netdevs)})", style="dim"))
        text.append("\n    traffic ")
        text.append(f"rx {fmt_bytes(port.rx_bytes, binary)} · "
                    f"tx {fmt_bytes(port.tx_bytes, binary)}")
        rate = throughput.get(port.device)
        if rate is not None:
            text.append(f"  now rx {fmt_bytes(rate[0], binary)}/s · tx "
                        f"{fmt_bytes(rate[1], binary)}/s")
        peer = peers.get((device, port.device))
        if peer is not None:
            text.append("\n    other end ")
            text.append_text(safe_text(f"{peer.device} {peer.port}", style="bold"))
            how = f"matched by {peer.how}" if peer.certain else f"probably: {peer.how}"
            text.append(f" ({how})", style="dim")
        elif port.active:
            text.append("\n    other end: not a device of this session (or not read yet)",
                        style="dim")
        text.append("\n")
    return text


def render_health(report: HealthReport) -> Text:
    text = Text()
    style = "bold" if report.ok is False else ""
    text.append_text(safe_text(report.message, style=style))
    for title, output in (("dcgmi health -c", report.health_output),
                          ("dcgmi diag -r 1", report.diag_output)):
        if output.strip():
            text.append(f"\n\n{title}\n", style="bold")
            text.append_text(safe_text(output.strip(), keep_newlines=True, max_line=200))
    return text


class DeviceDetailsScreen(LogsWorkerFailures, ModalScreen[None]):
    """Facts, links and health of one device."""

    CSS_PATH = Path(__file__).with_name("screens.tcss")
    BINDINGS = [
        Binding("r", "refresh", "Refresh facts", id="device_details.refresh"),
        Binding("h", "health", "Health (DCGM)", id="device_details.health"),
        Binding("n", "nvsmi", "nvidia-smi -q", id="device_details.nvsmi"),
        Binding("escape,q", "close", "Close", id="device_details.close"),
    ]

    def __init__(self, link: DeviceLink, facts: FactsService, *, binary: bool = True,
                 fleet: Fleet | None = None) -> None:
        super().__init__()
        self.link = link
        self.facts = facts  # the session's, shared by every details screen
        self.fleet = fleet  # the other devices: the far ends of ConnectX-7 cables
        self.binary = binary
        self.reading: FactsReading | None = facts.cached(link.name)

    def compose(self) -> ComposeResult:
        with Vertical(id="device-details-box", classes="device-box"):
            yield Static(id="details-title", classes="device-box-title")
            with VerticalScroll(id="details-body"):
                yield Static(id="details-facts")
                yield Static(Text("ConnectX-7 links", style="bold"), classes="details-heading")
                yield Static(id="details-links")
                yield Static(Text("Health", style="bold"), classes="details-heading")
                yield Static(id="details-health")
            yield Static(id="details-hint")
        yield Footer()  # this dialog's own keys, not the screen's behind it

    def on_mount(self) -> None:
        hint = Text(" · ".join(f"{key_hint(self, bid, default)} {what}" for bid, default, what in (
            ("device_details.refresh", "r", "refresh"),
            ("device_details.health", "h", "health (DCGM)"),
            ("device_details.nvsmi", "n", "nvidia-smi -q sections"),
            ("device_details.close", "esc", "close"))), style="dim")
        self.query_one("#details-hint", Static).update(hint)
        self.query_one("#details-health", Static).update(Text(
            f"press {key_hint(self, 'device_details.health', 'h')} to run the DCGM health "
            "check (dcgmi health -c, dcgmi diag -r 1)", style="dim"))
        self._draw()
        if self.reading is None:
            self.action_refresh()

    def _title(self, note: str = "") -> Text:
        title = Text()
        title.append_text(safe_text(self.link.name, style="bold"))
        title.append_text(safe_text(f"  {self.link.spec.destination}  "))
        title.append(self.link.status.describe(), style="dim")
        if note:
            title.append(f"  · {note}", style="italic")
        elif self.reading is not None:
            ago = max(0, int(time.time() - self.reading.read_at))
            title.append(f"  · read {fmt_duration(ago)} ago", style="dim")
        return title

    def _draw(self, note: str = "") -> None:
        self.query_one("#details-title", Static).update(self._title(note))
        facts_widget = self.query_one("#details-facts", Static)
        links_widget = self.query_one("#details-links", Static)
        if self.reading is None:
            facts_widget.update(Text("reading facts…", style="dim"))
            links_widget.update(Text(""))
            return
        facts_widget.update(render_facts(self.reading.facts, binary=self.binary))
        links_widget.update(render_links(self.link.name, self.reading.facts, self.facts.peers(),
                                         self.reading.throughput, binary=self.binary))

    def action_refresh(self) -> None:
        self._draw("reading…")
        self.read_facts()

    @work(name="facts", group="facts", exclusive=True, exit_on_error=False)
    async def read_facts(self) -> None:
        try:
            reading = await self.facts.read(self.link, refresh=True)
        except FactsError as exc:
            self._draw("not read")
            self.notify(str(exc), title="device facts", severity="error", timeout=15,
                        markup=False)
            if self.reading is None:
                self.query_one("#details-facts", Static).update(safe_text(str(exc)))
            return
        # the other end of a ConnectX-7 cable is found by comparing devices: read the
        # connected ones never read yet, so the links show their peers
        fleet = self.fleet
        others = [] if fleet is None else [
            link for link in fleet.links
            if link is not self.link and self.facts.cached(link.name) is None
            and link.status.state is LinkState.CONNECTED]
        results = await asyncio.gather(*(self.facts.read(link) for link in others),
                                       return_exceptions=True)
        for link, result in zip(others, results, strict=True):
            if isinstance(result, Exception):  # only this device's peer stays unknown
                log.warning("facts of %s (for ConnectX-7 peers): %s", link.name, result)
        self.reading = reading
        self._draw()

    def action_health(self) -> None:
        self.query_one("#details-health", Static).update(Text("running DCGM checks…",
                                                              style="dim"))
        self.check_health()

    @work(name="health", group="health", exclusive=True, exit_on_error=False)
    async def check_health(self) -> None:
        health = self.query_one("#details-health", Static)
        try:
            report = await self.facts.health(self.link)
        except FactsError as exc:
            health.update(safe_text(str(exc)))
            return
        health.update(render_health(report))

    def action_nvsmi(self) -> None:
        from sparktui.ui.devices.nvsmi import NvsmiScreen

        self.app.push_screen(NvsmiScreen(self.link, self.facts))

    def action_close(self) -> None:
        self.dismiss(None)
