"""The demo as the services see it: a device to start, and a sandbox for the session.

The simulated Spark itself lives in sparktui.sim.demo; the services never import
it. The command line (sparktui.cli) `provide`s its starter, so the session, the
fleet and the commands start the demo through `start_demo` here.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sparktui.core.device import DeviceSpec
from sparktui.transport.ssh_types import SSHOptions

DEMO_DEVICE_NAME = "spark-demo"  # sparktui.sim.demo names its device so too


class DemoDevice(Protocol):
    """A running demo device, as the session uses it (sparktui.sim.demo.Demo is one)."""

    spec: DeviceSpec
    ssh_options: SSHOptions

    async def close(self) -> None: ...


DemoStarter = Callable[..., Awaitable[DemoDevice]]
_starter: DemoStarter | None = None


def provide(starter: DemoStarter) -> None:
    """Say how to start the demo device: sparktui's command line hands the simulator's in."""
    global _starter
    _starter = starter


async def start_demo(**options: Any) -> DemoDevice:
    """Start the demo device (options: port, gpus, name, token_rate)."""
    if _starter is None:
        raise RuntimeError("no simulated Spark was wired in: the demo starts from sparktui's "
                           "command line (sparktui.cli provides sparktui.sim.demo)")
    return await _starter(**options)


@dataclass
class DemoSandbox:
    """Where a `--demo` session keeps what it writes: a temporary directory of its own.

    The user's config is copied in at start, so the demo reads their settings,
    theme and keymap; every save of the session (tunnels, endpoints, settings,
    the session state, chat history, the audit log) lands in the copy, and the
    directory goes when the session closes. The user's config dir, data dir and
    ~/.ssh are never written.
    """

    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "config.toml"

    @property
    def state_path(self) -> Path:
        return self.root / "session.toml"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        atexit.unregister(self.close)


def open_sandbox(user_config: Path) -> DemoSandbox:
    """A sandbox holding a copy of the user's config (blocking; a small file)."""
    sandbox = DemoSandbox(Path(tempfile.mkdtemp(prefix="sparktui-demo-state-")))
    atexit.register(sandbox.close)  # gone even when the terminal hangs up on the app
    try:
        shutil.copyfile(user_config, sandbox.config_path)
    except FileNotFoundError:
        pass  # no config yet: the demo runs on defaults
    sandbox.data_dir.mkdir()
    return sandbox
