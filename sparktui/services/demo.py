"""The demo: a simulated Spark on loopback, reached through the real SSH code path.

Nothing is special-cased for the demo past this file: the link connects with
asyncssh, checks the host key against a known_hosts file of the demo's own and
authenticates with a throwaway key, exactly as it would for a real device.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sparktui.core.device import DeviceSpec
from sparktui.transport.ssh_types import SSHOptions

DEMO_DEVICE_NAME = "spark-demo"


@dataclass
class Demo:
    spec: DeviceSpec
    ssh_options: SSHOptions
    server: object  # sparktui.sim.server.SimServer
    workdir: str
    #: the dashboard, model server and Docker engine behind the simulated device
    extras: object | None = None  # sparktui.sim.extras.SimExtras

    @property
    def openai(self) -> object | None:
        return getattr(self.extras, "openai", None)

    @property
    def docker(self) -> object | None:
        return getattr(self.extras, "docker", None)

    async def close(self) -> None:
        try:
            if self.extras is not None:
                await self.extras.close()  # type: ignore[attr-defined]
        finally:
            await self.server.close()  # type: ignore[attr-defined]
            shutil.rmtree(self.workdir, ignore_errors=True)
            atexit.unregister(shutil.rmtree)


async def start_demo(port: int = 0, gpus: int = 1, kind: str = "gb10",
                     name: str = DEMO_DEVICE_NAME, token_rate: float = 60.0) -> Demo:
    """Start the simulated Spark in this event loop and describe how to reach it."""
    from sparktui.sim.extras import start_extras
    from sparktui.sim.server import start_sim

    server = await start_sim("127.0.0.1", port, gpus=gpus, kind=kind)
    workdir = tempfile.mkdtemp(prefix="sparktui-demo-")
    # the workdir holds a throwaway private key: gone even when the UI dies with
    # its terminal (a hang-up) before Demo.close runs
    atexit.register(shutil.rmtree, workdir, True)
    try:
        identity, known_hosts = server.write_client_files(workdir)
    except BaseException:
        await server.close()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    spec = DeviceSpec(name=name, host="127.0.0.1", port=server.port, user="demo",
                      identity_file=str(identity))
    options = SSHOptions(known_hosts=str(known_hosts), use_ssh_config=False)
    demo = Demo(spec=spec, ssh_options=options, server=server, workdir=workdir)
    try:
        demo.extras = await start_extras(server, workdir, token_rate=token_rate)
    except BaseException:
        await demo.close()
        raise
    return demo


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
