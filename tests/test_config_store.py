"""One config store: saves of devices, tunnels, endpoints and settings never lose each other.

Each save is a read-modify-write of the whole file. Before the store, the
settings and devices shared a lock in a UI screen, the tunnels an asyncio lock
of their own and the endpoints another, so a tunnel saved while an endpoint
was could drop one of them. These tests save from many threads, and from two
processes, at once, and check that every entry arrived.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sparktui.core.device import DeviceSpec
from sparktui.services.config import load_config
from sparktui.services.devices import save_device_entry
from sparktui.services.endpoints import load_manual_endpoints, manual_spec, save_manual_endpoint
from sparktui.services.state import SessionState
from sparktui.services.store import ConfigStore
from sparktui.services.tunnel_specs import TunnelSpec, load_tunnels, save_tunnel

ROOT = Path(__file__).resolve().parent.parent
PER_KIND = 12


def test_concurrent_saves_of_every_kind_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("# my own comment stays\n[settings]\nrefresh_interval = 1.0\n")
    store = ConfigStore(path, state_path=tmp_path / "session.toml")
    jobs = []
    for i in range(PER_KIND):
        jobs.append(lambda i=i: save_tunnel(path, TunnelSpec("spark", f"t{i}", 8000 + i)))
        jobs.append(lambda i=i: save_manual_endpoint(
            path, manual_spec(f"http://10.0.0.{i + 1}:8000/v1", name=f"e{i}")))
        jobs.append(lambda i=i: save_device_entry(path, DeviceSpec(f"d{i}", f"h{i}.lan")))
    jobs.append(lambda: store.save_settings(theme="nord"))
    jobs.append(lambda: store.save_settings(units="decimal"))
    with ThreadPoolExecutor(max_workers=16) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()

    config = load_config(path)
    assert sorted(d.name for d in config.devices) == sorted(f"d{i}" for i in range(PER_KIND))
    tunnels, problems = load_tunnels(path)
    assert not problems
    assert sorted(t.name for t in tunnels) == sorted(f"t{i}" for i in range(PER_KIND))
    endpoints, problems = load_manual_endpoints(path)
    assert not problems
    assert sorted(e.name for e in endpoints) == sorted(f"e{i}" for i in range(PER_KIND))
    assert (config.settings.theme, config.settings.units) == ("nord", "decimal")
    assert "# my own comment stays" in path.read_text()


def test_session_state_goes_through_the_store(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "config.toml", state_path=tmp_path / "session.toml")
    store.save_state(SessionState(tab="chat", focused="spark"))
    state, problems = store.load_state()
    assert not problems and (state.tab, state.focused) == ("chat", "spark")
    assert not (tmp_path / "config.toml").exists()  # the session is not the user's file


WRITER = """
import sys
from pathlib import Path
from sparktui.services.tunnel_specs import TunnelSpec, save_tunnel
path, prefix = Path(sys.argv[1]), sys.argv[2]
for i in range(int(sys.argv[3])):
    save_tunnel(path, TunnelSpec("spark", f"{prefix}{i}", 9000 + i))
"""


def test_two_processes_saving_at_once_lose_nothing(tmp_path: Path) -> None:
    # the CLI (`sparktui tunnels add`) may save while the TUI does
    path = tmp_path / "config.toml"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), prefix, "15"],
                                env=env) for prefix in ("a", "b")]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0]
    tunnels, problems = load_tunnels(path)
    assert not problems
    assert len({t.name for t in tunnels}) == 30
