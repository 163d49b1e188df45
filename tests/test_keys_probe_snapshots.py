"""Pictures of the dialogs whose figures come from probes of the device, at 80x24 (designed
for first), 50x40 (a tmux side pane) and 200x50, on the real SparkApp.

The post-mortem, device details, `nvidia-smi -q`, the host import (the Find devices
dialog's other way in), chat history, the models on disk and the fit verdict show what
a device answers, which moves on a live one. Here every answer is fixed where the app
gets it: the device is this machine (a LocalTransport) whose `nvidia-smi` on PATH
prints a report captured from the demo's simulated Spark, whose home holds the demo's
model caches (tests/fixtures/probes, sim.device.root); the facts are the demo's
captured reading, kept by the session's FactsService; the post-mortem is a saved one,
where the app looks for it; the chat history is a store with fixed dates; the fit
weighs against a fixed memory sample. Times show in UTC. So each picture changes only
when the UI does. Regenerate with --snapshot-update and look at every picture you
change (rsvg-convert turns an SVG into a PNG).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, Static

from sparktui.core.device import LinkState
from sparktui.core.facts import parse_facts
from sparktui.core.hoststat import parse_meminfo
from sparktui.core.postmortem import Evidence, classify
from sparktui.services.audit import AuditLog
from sparktui.services.config import Config, Settings
from sparktui.services.conversations import DB_NAME, ConversationStore, Message
from sparktui.services.devices import Fleet
from sparktui.services.facts import FactsReading
from sparktui.services.gb10 import Gb10Services
from sparktui.services.link import DeviceLink
from sparktui.services.postmortem import PostMortem, save_postmortem
from sparktui.services.session import Session
from sparktui.services.store import ConfigStore
from sparktui.services.telemetry import DeviceTelemetry, TelemetryService
from sparktui.sim.device.memory_model import PREVIOUS_BOOT
from sparktui.sim.device.root import seed_models
from sparktui.ui.app import SparkApp
from sparktui.ui.chat.history import ChatHistoryScreen
from sparktui.ui.chat.input import ChatInput
from sparktui.ui.chat.status import ChatStatus
from sparktui.ui.devices.details import DeviceDetailsScreen
from sparktui.ui.devices.discover import DiscoverScreen
from sparktui.ui.devices.nvsmi import NvsmiScreen
from sparktui.ui.serving.fit import FitScreen
from sparktui.ui.serving.models import ModelsScreen
from sparktui.ui.telemetry.postmortem import PostmortemScreen
from tests.infra.pilot import still_carets, wait_until
from tests.test_ui_shell import REPO_THEMES, LocalConnector, QuietHub, _never_connects, link
from tests.test_ui_telemetry import gb10, host

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((50, 40), id="50x40"),
         pytest.param((200, 50), id="200x50")]
DEVICE = "spark-demo"
PROBES = Path(__file__).resolve().parent / "fixtures" / "probes"
#: what the demo's simulated Spark answered, captured once (`facts_command()`, `nvidia-smi -q`)
FACTS_TEXT = (PROBES / "spark-demo-facts.txt").read_text("utf-8")
NVSMI_Q = PROBES / "spark-demo-nvidia-smi-q.txt"
#: 2026-11-30 14:05:00 UTC: the dates the pictures show
NOON_ISH = 1_796_047_500.0

Opener = Callable[[Pilot], Awaitable[None]]


@pytest.fixture(autouse=True)
def in_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # the post-mortem and the chat history show local times: the same zone on every machine
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# -- the device: this machine, answering as the demo's Spark did -----------------------------
@pytest.fixture
def device_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME with the demo's model caches and an ssh config; `nvidia-smi` on PATH prints the
    captured report."""
    home = tmp_path / "home"
    home.mkdir()
    now = time.time()  # the ages show in whole days ("9 d ago"): stable over a run
    seed_models(home, now)
    ssh = home / ".ssh"
    ssh.mkdir()
    (ssh / "config").write_text(
        "Host spark-lab\n  HostName 10.20.0.11\n  User nvidia\n\n"
        "Host spark-desk\n  HostName spark-desk.lan\n  Port 2222\n  User ada\n\n"
        "Host build-box\n  HostName 192.168.1.40\n", "utf-8")
    sync = tmp_path / "nvidia-sync-ssh_config"
    sync.write_text("Host spark-7f3a\n  HostName spark-7f3a.local\n  User nvidia\n", "utf-8")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "nvidia-smi"
    stand_in.write_text(f"#!/bin/sh\nexec cat '{NVSMI_Q}'\n", "utf-8")
    stand_in.chmod(0o755)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NV_SYNC_SSH_CONFIG", str(sync))
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.delenv("NIM_CACHE_PATH", raising=False)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ.get('PATH', '')}")
    return home


class FixedMemory(TelemetryService):
    """The device's telemetry as one fixed sample (the fit verdict weighs its MemFree and
    MemAvailable); like QuietHub's services it never starts a stream."""

    @property
    def latest(self) -> DeviceTelemetry:
        meminfo = FACTS_TEXT.split("@@sparktui@@ meminfo\n", 1)[1].split("@@sparktui@@", 1)[0]
        mem = parse_meminfo(meminfo)
        sample = dataclasses.replace(host(100.0), mem=mem, mem_total=mem.total,
                                     mem_available=mem.available)
        return DeviceTelemetry(device=self.link.name, t=100.0, gpus=(gb10(100.0),),
                               host=sample)


class FixedMemoryHub(QuietHub):
    def attach(self, link: DeviceLink) -> TelemetryService:
        service = self.services.get(link.name)
        if service is None:
            service = self.services[link.name] = FixedMemory(link, self.settings)
        return service


def probe_app(tmp_path: Path, *, connects: bool = True) -> SparkApp:
    """The real app on one device, spark-demo: connected to this machine, or never."""
    settings = Settings(docker_socket="/nonexistent/sparktui-probes.sock")
    config = Config(path=tmp_path / "config.toml", settings=settings)
    device = link(DEVICE, LocalConnector(DEVICE) if connects else _never_connects)
    hub = FixedMemoryHub(settings)
    scratch = tmp_path / "gb10"
    hub.gb10 = Gb10Services(settings, flight_root=scratch / "flight",
                            store_root=scratch / "postmortems", audit=AuditLog(scratch / "audit"))
    session = Session(config, store=ConfigStore(config.path), fleet=Fleet([device]),
                      telemetry=hub, data_dir=tmp_path / "data")
    facts = parse_facts(FACTS_TEXT)
    # read 2 h 30 min ago: "read 2h 30m ago" for the 55 s a picture may take
    session.facts.remember(FactsReading(DEVICE, facts, time.time() - 9_005, 0.0))
    app = SparkApp(config, session=session, theme_dirs=[REPO_THEMES])
    app.title = "sparktui"  # the version would make every picture stale at each release
    return app


def save_report(app: SparkApp) -> None:
    """The post-mortem of a GPU driver wedge, saved where the app finds it after a restart."""
    lines = PREVIOUS_BOOT
    verdict = classify("0f6c5a52-prev", Evidence(boot_id="9b1d77e0-next", uptime_s=41.0,
                                                 journal=tuple(lines)), 3.2 * 3600)
    drop = NOON_ISH - 95.0
    times = [drop - 300.0 + 5.0 * i for i in range(61)]
    free = [max(0.4, 92.0 - 0.024 * i * i) for i in range(61)]
    util = [min(100.0, 20.0 + 1.4 * i) for i in range(61)]
    report = PostMortem(DEVICE, verdict, detected_wall=NOON_ISH, last_seen_wall=drop,
                        previous_boot="0f6c5a52-prev", boot_id="9b1d77e0-next",
                        last_uptime_s=3.2 * 3600,
                        series={"t": times, "free_for_cuda_gib": free, "gpu_util_pct": util})
    gb10_services = app.telemetry.gb10
    assert gb10_services is not None
    save_postmortem(report, gb10_services.store_root)


async def seed_chats(app: SparkApp) -> None:
    """Three saved conversations with fixed dates, as a few days of use leave them."""
    path = app.session.data_dir / DB_NAME  # type: ignore[operator]
    store = await ConversationStore(path).open()
    try:
        chats = (("FP4 on a GB10: what does NVFP4 buy?", "nvidia/llama-3.1-8b-instruct", 4,
                  NOON_ISH),
                 ("Compare vLLM and SGLang for batch 32", "Qwen/Qwen2.5-7B-Instruct", 6,
                  NOON_ISH - 86_400 * 2 - 3_600),
                 ("Why is MemAvailable lower than free?", None, 2, NOON_ISH - 86_400 * 9))
        for title, model, count, updated in chats:
            chat = await store.create(title, model=model)
            for i in range(count):
                await store.add_message(chat.id, Message("user" if i % 2 == 0 else "assistant",
                                                         f"message {i}", model=model))
            await asyncio.to_thread(_set_updated, path, chat.id, updated)
    finally:
        await store.close()


def _set_updated(path: Path, chat_id: int, updated: float) -> None:
    with sqlite3.connect(path) as db:  # the store dates every write now: a fixed date here
        db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (updated, chat_id))


# -- opening each dialog as a person does ---------------------------------------------------
async def _shown(pilot: Pilot, kind: type[Screen], ready: Callable[[Screen], bool]) -> None:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, kind) and ready(
        pilot.app.screen), timeout=30, what=kind.__name__)
    await wait_until(pilot, lambda: bool(pilot.app.screen.query("Footer FooterKey")),
                     what="the dialog's footer")
    still_carets(pilot.app)  # a blinking caret would be in one picture and not the next
    await pilot.pause()


async def _connected(pilot: Pilot) -> None:
    device = pilot.app.fleet.links[0]  # type: ignore[attr-defined]
    await wait_until(pilot, lambda: device.status.state is LinkState.CONNECTED,
                     what="spark-demo connected")


def _text(screen: Screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def postmortem(pilot: Pilot) -> None:
    await _connected(pilot)
    save_report(pilot.app)  # type: ignore[arg-type]
    await pilot.press("2", "P")
    await _shown(pilot, PostmortemScreen, lambda s: True)


async def details(pilot: Pilot) -> None:
    await _connected(pilot)
    await pilot.press("1", "i")
    await _shown(pilot, DeviceDetailsScreen, lambda s: s.reading is not None)


async def nvsmi(pilot: Pilot) -> None:
    await details(pilot)
    await pilot.press("n")
    await _shown(pilot, NvsmiScreen, lambda s: bool(s.sections))


async def import_hosts(pilot: Pilot) -> None:
    await _connected(pilot)
    await pilot.press("1", "I")
    await _shown(pilot, DiscoverScreen, lambda s: "host(s) found" in _text(
        s, "#discover-status"))


async def chat_history(pilot: Pilot) -> None:
    await seed_chats(pilot.app)  # type: ignore[arg-type]
    await pilot.press("5")
    await wait_until(pilot, lambda: pilot.app.query_one("TabbedContent").active == "chat")
    # the tab behind the dialog as it stays: its search done, the prompt's caret still
    await wait_until(pilot, lambda: "endpoints found" in str(
        pilot.app.query_one(ChatStatus).render()), what="the Chat tab's search done")
    prompt = pilot.app.query_one(ChatInput)
    await wait_until(pilot, lambda: pilot.app.focused is prompt, what="the prompt focused")
    await pilot.press("ctrl+o")
    await _shown(pilot, ChatHistoryScreen, lambda s: len(s.conversations) == 3)


async def models(pilot: Pilot) -> None:
    await _connected(pilot)
    await pilot.press("6")
    await wait_until(pilot, lambda: pilot.app.query_one("TabbedContent").active == "serving")
    await pilot.press("m")
    await _shown(pilot, ModelsScreen, lambda s: bool(s.models))


async def fit(pilot: Pilot) -> None:
    await models(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, ModelsScreen)
    names = [m.name for m in screen.models]
    screen.query_one(DataTable).move_cursor(row=names.index("meta-llama/Llama-3.1-8B-Instruct"))
    await pilot.press("f")
    await _shown(pilot, FitScreen, lambda s: s.config is not None)


VIEWS: dict[str, tuple[Opener, bool]] = {
    "postmortem": (postmortem, True),
    "device-details": (details, True),
    "nvidia-smi-q": (nvsmi, True),
    "import-hosts": (import_hosts, True),
    # a device that never connects: the Chat tab behind finds no endpoint of this machine's
    "chat-history": (chat_history, False),
    "models-on-disk": (models, True),
    "fit-verdict": (fit, True),
}


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("size", SIZES)
def test_probe_view(snap_compare, tmp_path: Path, device_home: Path, size: tuple[int, int],
                    view: str) -> None:
    opener, connects = VIEWS[view]
    assert snap_compare(probe_app(tmp_path, connects=connects), terminal_size=size,
                        run_before=opener)
