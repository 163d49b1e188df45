"""One running session: its devices, their telemetry and facts, tunnels, the demo, saving it.

The app owns one Session and hands it to every pane as one typed object;
nothing here knows of Textual. What the UI must hear about comes through
plain callbacks: `subscribe_fleet` (a device was added or removed) and
`subscribe_telemetry` (a device's newest DeviceTelemetry). Both are called
on the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sparktui.core.device import DestinationError, DeviceSpec, LinkState
from sparktui.services.audit import AuditLog
from sparktui.services.config import Config, Settings
from sparktui.services.devices import Fleet, make_link, remove_device_entry
from sparktui.services.facts import FactsService
from sparktui.services.secrets import SecretStore
from sparktui.services.state import SessionState
from sparktui.services.store import ConfigStore
from sparktui.services.telemetry import DeviceTelemetry, TelemetryHub
from sparktui.services.tunnel_specs import TunnelSpec, unique_name
from sparktui.services.tunnels import AddResult, TunnelManager
from sparktui.transport.ssh_types import HostKeyPrompt, SSHOptions

if TYPE_CHECKING:
    from sparktui.services.demo import DemoDevice, DemoSandbox

log = logging.getLogger(__name__)

Unsubscribe = Callable[[], None]


class Session:
    """The devices of one run of the app and everything kept per device."""

    def __init__(self, config: Config, specs: Sequence[DeviceSpec] = (), *,
                 store: ConfigStore | None = None, fleet: Fleet | None = None,
                 telemetry: TelemetryHub | None = None, read_only: bool | None = None,
                 accept_new_host_keys: bool = False, demo: bool = False, demo_port: int = 0,
                 restore: SessionState | None = None, data_dir: Path | None = None,
                 link_policy: str = "start", sandbox: DemoSandbox | None = None) -> None:
        self.config = config
        self.settings: Settings = config.settings
        self.store = store if store is not None else ConfigStore(
            config.path, state_path=sandbox.state_path if sandbox is not None else None)
        self.specs = list(specs)
        #: links are added by `open`; an injected fleet comes prebuilt (tests)
        self.fleet = fleet if fleet is not None else Fleet()
        self.demo_requested = demo
        self.demo_port = demo_port
        self.demo: DemoDevice | None = None  # once the demo device is up
        self.accept_new_host_keys = accept_new_host_keys
        self.restore_state = restore  # the last session's tab and focus, to bring back
        #: "start": connect every device at once; "on_select": telemetry comes from
        #: Prometheus, a device connects when selected; "never": a replay, no connection
        self.link_policy = link_policy
        #: a --demo session's own temporary state; it goes when the session closes
        self.sandbox = sandbox
        #: None: the user's data dir; the demo's sandbox gives its own
        self.data_dir = data_dir if data_dir is not None or sandbox is None \
            else sandbox.data_dir
        self._read_only = self.settings.read_only if read_only is None else read_only
        self.audit = AuditLog(self.data_dir / "audit.log" if self.data_dir is not None else None)
        #: the telemetry of every link; it refuses kills when the session is read-only
        #: (an injected hub, as in tests, keeps its own settings)
        self.telemetry = telemetry if telemetry is not None else TelemetryHub(
            dataclasses.replace(self.settings, read_only=self._read_only), audit=self.audit)
        self.facts = FactsService()
        #: API keys and deploy tokens: the system keyring, or (the demo's sandbox) a dict
        #: that goes with the process, so nothing typed in the demo reaches the keyring
        self.secrets = SecretStore.in_memory() if sandbox is not None else SecretStore()
        self.tunnels = TunnelManager(self.fleet, config_path=config.path,
                                     restore=self.settings.restore_on_start,
                                     read_only=self._read_only, audit=self.audit)
        #: the UI's answer to an unknown host key (set by the app before `open`)
        self.host_key_prompt: HostKeyPrompt | None = None
        self._fleet_listeners: list[Callable[[], None]] = []
        if link_policy == "on_select":  # the fleet is whatever Prometheus scrapes, now too
            self.telemetry.on_device_found = self.adopt_device
        self._telemetry_listeners: list[Callable[[DeviceTelemetry], None]] = []
        self._telemetry_unsubscribes: dict[str, Unsubscribe] = {}
        self._closed = False

    @classmethod
    def sandboxed_demo(cls, user_config: Path, specs: Sequence[DeviceSpec] = (),
                       **kwargs) -> Session:
        """A `--demo` session: reads a copy of the user's config (settings, theme,
        keymap) and writes only its own temporary state (blocking; small files)."""
        from sparktui.services.config import load_config
        from sparktui.services.demo import open_sandbox

        sandbox = open_sandbox(user_config)
        config = load_config(sandbox.config_path)
        return cls(config, specs, demo=True, sandbox=sandbox, **kwargs)

    # -- read-only --------------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        return self._read_only

    def set_read_only(self, read_only: bool) -> None:
        self._read_only = read_only
        self.telemetry.settings.read_only = read_only
        self.tunnels.read_only = read_only

    # -- signals ----------------------------------------------------------------------------
    def subscribe_fleet(self, listener: Callable[[], None]) -> Unsubscribe:
        """`listener()` after devices are added to or removed from the fleet."""
        self._fleet_listeners.append(listener)
        return lambda: self._fleet_listeners.remove(listener) \
            if listener in self._fleet_listeners else None

    def subscribe_telemetry(self, listener: Callable[[DeviceTelemetry], None]) -> Unsubscribe:
        """`listener(state)` for every device's every telemetry update."""
        self._telemetry_listeners.append(listener)
        return lambda: self._telemetry_listeners.remove(listener) \
            if listener in self._telemetry_listeners else None

    def fleet_changed(self) -> None:
        self.attach_telemetry()
        self.tunnels.sync_fleet()
        for listener in list(self._fleet_listeners):
            listener()

    def _telemetry_update(self, state: DeviceTelemetry) -> None:
        for listener in list(self._telemetry_listeners):
            listener(state)

    # -- devices ----------------------------------------------------------------------------
    def ssh_options(self) -> SSHOptions:
        """The options the session's links use (keepalives, host-key policy)."""
        return SSHOptions(keepalive_interval=self.settings.keepalive_interval,
                          keepalive_count_max=self.settings.keepalive_count_max,
                          accept_new_host_keys=self.accept_new_host_keys)

    def ssh_options_for(self, device: str) -> SSHOptions:
        """What a device is reached with: the demo's own known_hosts for the demo."""
        demo = self.demo
        if demo is not None and device == demo.spec.name:
            return demo.ssh_options
        return self.ssh_options()

    def is_demo_device(self, device: str | None) -> bool:
        demo = self.demo
        return demo is not None and device == demo.spec.name

    def add_configured_links(self) -> None:
        """Make a link for every device asked for (not connecting yet)."""
        for spec in self.specs:
            if self.fleet.get(spec.name) is None:
                self.fleet.add(make_link(spec, self.settings, ssh_options=self.ssh_options(),
                                         host_key_prompt=self.host_key_prompt))
        self.attach_telemetry()

    async def open(self) -> list[str]:
        """Start the demo (when asked for) and connect every link; returns problems."""
        problems: list[str] = []
        if self.demo_requested and self.demo is None:
            try:
                from sparktui.services.demo import start_demo

                self.demo = demo = await start_demo(port=self.demo_port)
            except Exception as exc:
                log.exception("the demo did not start")
                problems.append(f"the demo device did not start: {type(exc).__name__}: {exc}")
            else:
                # first, as it was asked for first: it is the device shown at start
                self.fleet.add(make_link(demo.spec, self.settings,
                                         ssh_options=demo.ssh_options), first=True)
        if self.link_policy == "start":
            self.fleet.start()
        self.fleet_changed()
        return problems

    async def open_demo(self) -> str | None:
        """Start the simulated Spark and open it in this session; returns a problem."""
        if self.demo is not None:
            return "The demo is already open."
        from sparktui.services.demo import start_demo

        try:
            self.demo = demo = await start_demo()
        except Exception as exc:  # the user asked for it: say why it did not start
            log.exception("the demo did not start")
            return f"the demo device did not start: {type(exc).__name__}: {exc}"
        link = make_link(demo.spec, self.settings, ssh_options=demo.ssh_options)
        self.fleet.add(link)
        link.start()
        self.fleet_changed()
        return None

    def open_device(self, spec: DeviceSpec) -> bool:
        """Add `spec` to the running session and start connecting; False if already open."""
        if self.fleet.get(spec.name) is not None:
            return False
        link = make_link(spec, self.settings, ssh_options=self.ssh_options(),
                         host_key_prompt=self.host_key_prompt)
        self.fleet.add(link)
        link.start()
        if spec not in self.specs:
            self.specs.append(spec)
        self.fleet_changed()
        return True

    def adopt_device(self, name: str) -> None:
        """Show a device an external source (Prometheus) found; it connects when selected."""
        if self.fleet.get(name) is not None:
            return
        spec = self.config.device(name)
        if spec is None:
            try:
                spec = DeviceSpec.parse(name)
            except DestinationError:
                log.warning("Prometheus names a device %r that is no SSH destination", name)
                return
        self.fleet.add(make_link(spec, self.settings, ssh_options=self.ssh_options(),
                                 host_key_prompt=self.host_key_prompt))
        self.specs.append(spec)
        self.attach_telemetry()
        self.fleet_changed()

    def connect_all(self) -> tuple[int, int]:
        """Open every configured device not open yet, retry the failed ones now.

        Returns (opened, retried).
        """
        opened = sum(self.open_device(spec) for spec in self.config.devices)
        retried = 0
        for link in self.fleet.links:
            if link.status.state in (LinkState.FAILED, LinkState.RECONNECTING):
                link.retry()
                retried += 1
        return opened, retried

    async def remove_device(self, name: str) -> bool:
        """Forget a device: its config entry, its link (no more reconnects), its telemetry.

        Returns whether the config had an entry for it.
        """
        had_entry = await asyncio.to_thread(remove_device_entry, self.config.path, name)
        await self.reload_devices()
        self.specs = [spec for spec in self.specs if spec.name != name]
        unsubscribe = self._telemetry_unsubscribes.pop(name, None)
        if unsubscribe is not None:
            unsubscribe()
        await self.telemetry.detach(name)
        if await self.fleet.remove(name) is not None:
            self.fleet_changed()
        return had_entry

    async def reload_devices(self) -> None:
        """Re-read the device list after a change; the settings object stays."""
        fresh = await asyncio.to_thread(self.store.load)
        self.config.devices = fresh.devices

    # -- the deploy's offer -----------------------------------------------------------------
    async def add_deploy_tunnel(self, device: str, port: int, name: str) -> AddResult:
        """A saved, started tunnel to a deployed server's port on `device`'s loopback."""
        taken = {t.spec.name for t in self.tunnels.tunnels if t.spec.device == device}
        spec = TunnelSpec(device, unique_name(name, taken), port)
        return await self.tunnels.add(spec)

    # -- telemetry --------------------------------------------------------------------------
    def attach_telemetry(self) -> None:
        """Stream telemetry from every link not streaming yet."""
        for link in self.fleet.links:
            if link.name not in self._telemetry_unsubscribes:
                service = self.telemetry.attach(link)
                self._telemetry_unsubscribes[link.name] = service.subscribe(
                    self._telemetry_update)

    # -- saving and closing ---------------------------------------------------------------------
    def state(self, *, tab: str | None, focused: str | None) -> SessionState:
        demo_name = self.demo.spec.name if self.demo is not None else None
        if demo_name is None and self.demo_requested:
            from sparktui.services.demo import DEMO_DEVICE_NAME

            demo_name = DEMO_DEVICE_NAME
        restored = self.restore_state
        specs = [link.spec for link in self.fleet.links] or list(self.specs)
        return SessionState.of(specs, demo=self.demo_requested,
                               tab=tab or (restored.tab if restored else None),
                               focused=focused, demo_name=demo_name)

    async def save(self, *, tab: str | None, focused: str | None) -> None:
        """Write the session state file (in a thread); a failure is logged, not raised:
        the app is closing and must close its links whatever happens here."""
        state = self.state(tab=tab, focused=focused)
        try:
            await asyncio.to_thread(self.store.save_state, state)
        except OSError:
            log.exception("the session state was not saved")

    async def close(self) -> None:
        """Stop tunnels, telemetry, links and the demo. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for unsubscribe in self._telemetry_unsubscribes.values():
            unsubscribe()
        await self.tunnels.close()
        # the streams run over the links: stop them before the links go
        await self.telemetry.close()
        await self.fleet.close()
        demo, self.demo = self.demo, None
        if demo is not None:
            await demo.close()
        if self.sandbox is not None:
            self.sandbox.close()
