"""Opening an interactive shell in a container: the TUI steps aside, then comes back.

`App.suspend()` hands the terminal to `ssh -t <device> docker exec -it <id> sh`
(or a local `docker exec -it`). The child runs as an asyncio subprocess, so the
event loop keeps serving the device connections (keepalives, streams) while
the user types; repaints are held back (`batch_update`) so nothing draws over
the shell.
"""

from __future__ import annotations

import asyncio
import shlex

from textual.app import SuspendNotSupported
from textual.widget import Widget

from sparktui.core.docker_info import ContainerInfo
from sparktui.services.containers import ContainerService, shell_argv


def open_shell(owner: Widget, service: ContainerService, info: ContainerInfo,
               shell: str = "sh") -> None:
    argv = shell_argv(service, info.id, shell)
    owner.run_worker(_run(owner, service, info, argv), group="container-shell",
                     exclusive=True, exit_on_error=False)


async def _run(owner: Widget, service: ContainerService, info: ContainerInfo,
               argv: list[str]) -> None:
    app = owner.app
    command = shlex.join(argv)
    try:
        with app.batch_update(), app.suspend():
            print(f"sparktui: {command}\n(exit the shell to return to sparktui)", flush=True)
            process = await asyncio.create_subprocess_exec(*argv)
            status = await process.wait()
    except SuspendNotSupported:
        app.notify(f"This terminal cannot hand over to a shell; run it yourself: {command}",
                   title="shell", severity="warning", timeout=20, markup=False)
        return
    except OSError as exc:
        service.record("container.shell", info.name, f"failed: {exc}", id=info.id)
        app.notify(f"could not run {argv[0]}: {exc.strerror or exc}", title="shell",
                   severity="error", markup=False)
        return
    service.record("container.shell", info.name, f"exit {status}", id=info.id)
    if status not in (0, 130):
        app.notify(f"the shell ended with status {status} ({command})", title="shell",
                   severity="warning", markup=False)
