"""How the device-facing commands reach a device (and an endpoint on it): defined once.

`sparktui fit`, `serving`, `chat` and `bench` all take DEVICE (or --demo),
connect through the same DeviceLink the app uses, optionally start the device's
telemetry stream, and close everything they opened, saying what failed to
close. `device_session` does that for the commands that need the device;
`open_target` (chat, bench) adds finding the endpoint and the model.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

CONNECT_TIMEOUT_S = 20.0
TELEMETRY_WAIT_S = 3.0  # for a first power reading, so the energy has a starting point


class TargetError(Exception):
    """The device, endpoint or model could not be settled; the message says why."""


def say(message: str) -> None:
    """A line for the user on stderr, device text sanitised."""
    from sparktui.core.sanitize import strip_control

    print(f"sparktui: {strip_control(message)}", file=sys.stderr, flush=True)


async def connect_device(args: argparse.Namespace, settings, opened: list[Any]):
    """A connected DeviceLink for args.device (or the demo's), put on `opened` to close."""
    from sparktui.core.device import DestinationError, LinkState
    from sparktui.services.config import load_config, resolve_config_path
    from sparktui.services.devices import make_link, resolve_device
    from sparktui.transport.ssh_types import SSHOptions

    if vars(args).get("demo"):
        from sparktui.services.demo import start_demo

        demo = await start_demo()
        opened.append(demo)
        link = make_link(demo.spec, settings, ssh_options=demo.ssh_options)
    else:
        config = load_config(resolve_config_path(args.config))
        try:
            spec = resolve_device(args.device, config)
        except DestinationError as exc:
            raise TargetError(str(exc)) from exc
        options = SSHOptions(keepalive_interval=settings.keepalive_interval,
                             keepalive_count_max=settings.keepalive_count_max,
                             connect_timeout=CONNECT_TIMEOUT_S,
                             accept_new_host_keys=args.accept_new_host_keys)
        link = make_link(spec, settings, ssh_options=options)
    opened.append(link)
    link.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONNECT_TIMEOUT_S
    while link.status.state is not LinkState.CONNECTED:
        if link.status.state is LinkState.FAILED or (
                loop.time() > deadline and link.status.failure is not None):
            raise TargetError(f"{link.name}: {link.status.describe()}")
        if loop.time() > deadline:
            raise TargetError(f"{link.name}: not connected after {CONNECT_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.05)
    return link


def start_telemetry(link, settings, opened: list[Any]):
    """The device's telemetry stream (MemFree, power), put on `opened` to close."""
    from sparktui.services.telemetry import TelemetryService

    telemetry = TelemetryService(link, settings)
    telemetry.start()
    opened.append(telemetry)
    return telemetry


async def close_all(opened: list[Any]) -> None:
    """Close in reverse order of opening; each closes even if another fails (said)."""
    for thing in reversed(opened):
        try:
            await thing.close()
        except Exception as exc:  # closing the rest matters more; say what failed
            say(f"closing {thing!r}: {exc}")


@dataclass
class DeviceSession:
    link: Any  # DeviceLink, connected
    settings: Any  # Settings
    telemetry: Any = None  # TelemetryService, when asked for
    opened: list[Any] = field(default_factory=list)


@contextlib.asynccontextmanager
async def device_session(args: argparse.Namespace, *, refresh_interval: float | None = None,
                         telemetry: bool = False) -> AsyncIterator[DeviceSession]:
    """Connect to DEVICE (raises TargetError), and close everything on the way out."""
    from sparktui.services.config import Settings

    settings = Settings()
    if refresh_interval is not None:
        settings = dataclasses.replace(settings, refresh_interval=refresh_interval)
    opened: list[Any] = []
    try:
        link = await connect_device(args, settings, opened)
        session = DeviceSession(link, settings, opened=opened)
        if telemetry:
            session.telemetry = start_telemetry(link, settings, opened)
        yield session
    finally:
        await close_all(opened)


@dataclass
class Target:
    """Where the requests go, and everything opened to get there (closed by `close`)."""

    spec: Any  # EndpointSpec
    model: str
    connector: Any  # EndpointConnector
    chat: Any  # ChatService
    telemetry: Any = None  # TelemetryService of the device, when there is one
    opened: list[Any] = field(default_factory=list)  # things with `async close()`

    async def close(self) -> None:
        await close_all(self.opened)


async def open_target(args: argparse.Namespace, *, say=say) -> Target:
    """Connect, find the endpoint and the model, start telemetry on the device."""
    from sparktui.core.openai_chat import BadURL
    from sparktui.services.chat import ChatService
    from sparktui.services.config import Settings
    from sparktui.services.endpoints import DEFAULT_PORTS, EndpointConnector, manual_spec
    from sparktui.services.secrets import SecretStore

    settings = dataclasses.replace(Settings(), refresh_interval=0.25)
    opened: list[Any] = []
    try:
        link = None
        if args.device or args.demo:
            link = await connect_device(args, settings, opened)
        connector = EndpointConnector(lambda name: link if link and name == link.name else None,
                                      SecretStore())
        opened.append(connector)
        if args.endpoint:
            try:
                spec = manual_spec(args.endpoint, device=link.name if link else None)
            except BadURL as exc:
                raise TargetError(f"--endpoint: {exc}") from exc
            if spec.note:
                say(f"using {spec.url} ({spec.note})")
            key = os.environ.get("SPARKTUI_API_KEY")
            if key:
                connector.set_session_key(spec.id, key)
            probe_s = min(15.0, vars(args).get("timeout") or 15.0)
            endpoint = await connector.probe(spec, timeout=probe_s)
            models = endpoint.models
            if not args.model and endpoint.error:
                raise TargetError(f"{spec.describe()}: {endpoint.error}")
        elif link is not None:
            ports = tuple(dict.fromkeys((*args.port, *DEFAULT_PORTS)))
            found = await connector.discover_device(link, ports=ports)
            if not found.endpoints:
                notes = "; ".join(found.notes)
                raise TargetError(f"no model endpoint answered on {link.name} (ports "
                                  + ", ".join(map(str, ports))
                                  + (f"; {notes}" if notes else "") + "); --port P adds one")
            endpoint = next((e for e in found.endpoints if e.models), found.endpoints[0])
            spec, models = endpoint.spec, endpoint.models
        else:
            raise TargetError("give --endpoint URL, --device DEVICE or --demo")
        model = args.model or (models[0] if models else None)
        if model is None:
            raise TargetError(f"{spec.describe()} lists no models; give --model")
        if not args.model:
            say(f"endpoint {spec.describe()}, model {model}")
        telemetry = None
        if link is not None:
            telemetry = start_telemetry(link, settings, opened)
            await _first_power(telemetry)
        total = vars(args).get("timeout")  # `sparktui bench` has no --timeout
        return Target(spec, model, connector, ChatService(connector, total_timeout=total),
                      telemetry, opened)
    except BaseException:
        for thing in reversed(opened):
            with contextlib.suppress(Exception):  # the error being raised matters more
                await thing.close()
        raise


async def _first_power(telemetry) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TELEMETRY_WAIT_S
    while loop.time() < deadline:
        latest = telemetry.latest
        if latest.gpus and any(g.power_w is not None for g in latest.gpus):
            return
        if latest.gpu_problem:
            return  # no GPU figures on this device: no energy, no point waiting
        await asyncio.sleep(0.05)
