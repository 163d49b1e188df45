"""Record, then replay: the same values arrive in the same order.

Recorded live from a real sshd with the stand-in nvidia-smi (the same
TelemetryRecorder `sparktui record` and the flight recorder use), replayed
by the ReplayPlayer the TUI's --replay uses, at a high speed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys

import pytest

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec
from sparktui.services.config import Settings
from sparktui.services.fleet import Fleet
from sparktui.services.recorder import TelemetryRecorder
from sparktui.services.recordings import RecordingWriter, read_records
from sparktui.services.replay import ReplayPlayer
from tests.infra import REPO_ROOT, ClientSetup

pytestmark = pytest.mark.sshd

FAST = Settings(refresh_interval=0.2, keepalive_interval=1.0, keepalive_count_max=2)
TICKS = 8


def sequence_keeper(out: list):
    """A listener that notes each new GPU tick and host sample, times left out."""
    last: dict[str, object] = {}

    def keep(telemetry) -> None:
        if telemetry.gpus and telemetry.gpus is not last.get("gpus"):
            last["gpus"] = telemetry.gpus
            out.append(("gpus", tuple(dataclasses.replace(g, t=0.0) for g in telemetry.gpus)))
        if telemetry.host is not None and telemetry.host is not last.get("host"):
            last["host"] = telemetry.host
            out.append(("host", dataclasses.replace(telemetry.host, t=0.0)))

    return keep


async def test_record_then_replay_same_values_same_order(ssh_client: ClientSetup, fake_gpu,
                                                         tmp_path) -> None:
    fake_gpu("gb10")
    path = tmp_path / "run.jsonl.gz"
    live: list = []
    enough = asyncio.Event()
    fleet = Fleet(FAST, [DeviceSpec.parse("spark-test")])
    keep = sequence_keeper(live)

    def on_update(device, telemetry) -> None:
        keep(telemetry)
        if sum(1 for kind, _ in live if kind == "gpus") >= TICKS:
            enough.set()

    recorder = TelemetryRecorder(RecordingWriter(path, flush_records=20))
    await fleet.open()
    device = fleet.devices[0]
    recorder.attach(device.telemetry, device.link)
    fleet.subscribe(on_update)  # after the recorder: it sees what the recorder saw
    recorder.start()
    try:
        await within(enough.wait(), 60)
    finally:
        await recorder.close()  # unsubscribes first: nothing arrives after this
        await fleet.close()
    assert any(kind == "host" for kind, _ in live)

    player = ReplayPlayer(path, FAST, speed=1000)
    summary = await asyncio.to_thread(player.scan)
    assert summary.devices == ["spark-test"] and summary.problems == []
    replayed: list = []
    player.devices["spark-test"].subscribe(sequence_keeper(replayed))
    await player.play()
    assert replayed == live  # same values, same order
    history = player.devices["spark-test"].history.series(("gpu0", "power_w"))
    assert [v for _, v in history] == [g[0].power_w for kind, g in live if kind == "gpus"]


def test_record_command_writes_a_readable_file(ssh_client: ClientSetup, fake_gpu,
                                               tmp_path) -> None:
    fake_gpu("gb10")
    path = tmp_path / "cli.jsonl.gz"
    env = dict(os.environ, HOME=ssh_client.home, SPARKTUI_CONFIG=str(tmp_path / "none.toml"))
    env.pop("SSH_AUTH_SOCK", None)
    proc = subprocess.run([sys.executable, "-m", "sparktui", "record", str(path), "spark-test",
                           "--interval", "0.2", "--duration", "3"],
                          env=env, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    kinds = [r.kind for r in read_records(path) if r.device == "spark-test"]
    assert "gpus" in kinds and "host" in kinds and kinds[0] == "link"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
