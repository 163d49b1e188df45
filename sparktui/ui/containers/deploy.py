"""The deploy form: pick a preset, edit any field, deploy, watch it come up.

A preset fills every field (image, command, ports, environment, volumes, GPU
request, IPC/shm, ulimits, health path); the user may change any of them.
Secrets (NGC_API_KEY, HF_TOKEN) come from the environment or the keyring and
are asked once: a typed value is saved to the keyring when there is one, and
used for this deploy only when there is not. When the server answers, the
form offers a tunnel and a chat endpoint (a DeployReady message to the app).
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    Button,
    Checkbox,
    Footer,
    Input,
    Label,
    OptionList,
    ProgressBar,
    RichLog,
    Select,
    Static,
)
from textual.widgets.option_list import Option

from sparktui.core.docker_presets import (
    KNOWN_SECRETS,
    PRESETS,
    DeploySpec,
    SpecError,
    format_env,
    parse_env,
    preset,
    spec_from_preset,
    validate,
)
from sparktui.core.sanitize import ansi_to_text, safe_text, strip_control
from sparktui.services.audit import ReadOnlyError
from sparktui.services.containers import ContainerService, DockerUnavailable
from sparktui.services.deploy import Deployer, DeployResult, DeployUpdate
from sparktui.services.secrets import SecretStore, SecretsUnavailable
from sparktui.services.telemetry import TelemetryHub
from sparktui.ui.containers.deploy_fit import DeployFit
from sparktui.ui.messages import DeployReady
from sparktui.ui.widgets.footer_order import HelpKeyFirst
from sparktui.ui.widgets.tickbox import TickBox
from sparktui.ui.widgets.worker_log import LogsWorkerFailures

#: (field id, label, placeholder): the text fields of the form, in order
TEXT_FIELDS = (
    ("name", "Container name", "sparktui-vllm"),
    ("image", "Image (repo:tag or repo@sha256:…)", ""),
    ("command", "Command (after the image)", ""),
    ("host_port", "Port on the device", "8000"),
    ("container_port", "Port in the container", "8000"),
    ("bind_address", "Bind address on the device", "127.0.0.1"),
    ("env", "Environment (NAME=value …)", ""),
    ("volumes", "Volumes (source:/path, comma separated)", ""),
    ("shm_size", "Shared memory (e.g. 16g)", ""),
    ("ulimits", "Ulimits (name=soft[:hard] …)", ""),
    ("health_path", "Health path", "/v1/models"),
)
CHECKS = (
    ("gpus", "Request all GPUs (--gpus all)"),
    ("ipc_host", "Share the host's IPC (--ipc=host)"),
    ("network_host", "Host network (--network host)"),
    ("pin_digest", "Pin the image by digest"),
    ("keep_on_failure", "Keep the container if the deploy fails"),
)


class DeployScreen(LogsWorkerFailures, HelpKeyFirst):
    CSS_PATH = Path(__file__).with_suffix(".tcss")
    HELP_SCOPE = "Deploy"
    BINDINGS = [
        Binding("escape", "close", "Back / cancel", id="deploy.close"),
        Binding("ctrl+s", "deploy", "Deploy", priority=True, id="deploy.run"),
    ]

    def __init__(self, services: list[ContainerService], service: ContainerService, *,
                 secrets: SecretStore | None = None, ready_timeout: float = 1800.0,
                 poll_interval: float = 1.0, telemetry: TelemetryHub | None = None) -> None:
        super().__init__()
        self.services = services
        self.service = service
        self.telemetry = telemetry  # the devices' memory now, for the fit verdict
        self.secrets = secrets or SecretStore()
        self.ready_timeout = ready_timeout
        self.poll_interval = poll_interval
        self.preset_key = PRESETS[0].key
        self.api_path = PRESETS[0].api_path
        self.secret_required: dict[str, bool] = {}
        self.result: DeployResult | None = None
        self.deploying = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="deploy-body"):
            with Vertical(id="deploy-left"):
                yield Static(Text("Preset", style="bold"))
                yield OptionList(*(Option(p.title, id=p.key) for p in PRESETS),
                                 id="deploy-presets")
                if len(self.services) > 1:
                    yield Static(Text("Device", style="bold"))
                    yield Select(((s.device, s.device) for s in self.services),
                                 value=self.service.device, allow_blank=False,
                                 id="deploy-device")
            with VerticalScroll(id="deploy-form"):
                yield Static(id="deploy-note")
                for field_id, label, placeholder in TEXT_FIELDS:
                    yield Label(label, classes="field-label")
                    yield Input(placeholder=placeholder, id=f"field-{field_id}")
                for field_id, label in CHECKS:
                    yield TickBox(label, id=f"field-{field_id}")
                for name in KNOWN_SECRETS:
                    yield Label(name, id=f"label-secret-{name}", classes="field-label")
                    yield Static(id=f"status-secret-{name}", classes="secret-status")
                    yield Input(password=True, id=f"secret-{name}",
                                placeholder="leave empty to use the stored value")
        with Vertical(id="deploy-progress-box"):
            # outside the scrolling form: always in view, whatever the terminal's height
            with Horizontal(id="deploy-buttons"):
                yield Button("Deploy (ctrl+s)", id="deploy-run", variant="success")
                yield Button("Open tunnel + chat endpoint", id="deploy-offer",
                             variant="primary")
            yield DeployFit(id="deploy-fit")
            yield Static(id="deploy-phase")
            yield ProgressBar(id="deploy-progress", show_eta=False)
            yield RichLog(id="deploy-log", max_lines=500, markup=False, highlight=False,
                          wrap=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#deploy-offer", Button).display = False
        self.query_one("#deploy-progress", ProgressBar).display = False
        self.fill(PRESETS[0].key)
        self._fit_device()
        self.query_one("#deploy-presets", OptionList).focus()

    # -- the form -----------------------------------------------------------------------------
    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id and not self.deploying:
            self.fill(event.option.id)

    def on_select_changed(self, event: Select.Changed) -> None:
        chosen = next((s for s in self.services if s.device == event.value), None)
        if chosen is not None:
            self.service = chosen
            self._fit_device()

    # -- will it fit ------------------------------------------------------------------------
    def _fit_device(self) -> None:
        hub = self.telemetry
        self.query_one(DeployFit).set_device(
            self.service.link, hub.get(self.service.device) if hub is not None else None)
        self._weigh()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id in ("field-command", "field-env", "field-shm_size"):
            self._weigh()

    def _weigh(self) -> None:
        try:
            env = parse_env(self._text("env"))
        except SpecError:
            env = {}  # the deploy says what is wrong; the fit weighs the command alone
        self.query_one(DeployFit).weigh(self._text("command"), env, self._text("shm_size"))

    def on_deploy_fit_weighed(self, event: DeployFit.Weighed) -> None:
        """Before any deploy, the log shows the fit's arithmetic (a deploy clears it)."""
        if self.deploying or self.result is not None:
            return
        log = self.query_one("#deploy-log", RichLog)
        log.clear()
        if event.lines:
            log.write(Text("Will it fit, before you deploy:", style="bold"))
        for line in event.lines:
            log.write(Text(strip_control(line, max_line=300), style="dim"))

    def fill(self, key: str) -> None:
        item = preset(key)
        spec = spec_from_preset(item)
        self.preset_key = key
        self.api_path = spec.api_path
        self.secret_required = dict(spec.secrets)
        values = {
            "name": spec.name, "image": spec.image, "command": spec.command,
            "host_port": str(spec.host_port), "container_port": str(spec.container_port),
            "bind_address": spec.bind_address, "env": format_env(spec.env),
            "volumes": ", ".join(spec.volumes), "shm_size": spec.shm_size,
            "ulimits": " ".join(spec.ulimits), "health_path": spec.health_path,
        }
        for field_id, value in values.items():
            self.query_one(f"#field-{field_id}", Input).value = value
        for field_id, _ in CHECKS:
            self.query_one(f"#field-{field_id}", Checkbox).value = bool(getattr(spec, field_id))
        note = self.query_one("#deploy-note", Static)
        note.update(Text(f"{item.title}: {item.note}" if item.note else item.title,
                         style="italic"))
        for name in KNOWN_SECRETS:
            wanted = name in self.secret_required
            for selector in (f"#label-secret-{name}", f"#status-secret-{name}",
                             f"#secret-{name}"):
                self.query_one(selector).display = wanted
        self._show_secret_status()

    @work(group="deploy-secrets", exclusive=True, exit_on_error=False)
    async def _show_secret_status(self) -> None:
        for name, required in self.secret_required.items():
            found = await self.secrets.lookup(name)
            need = "required" if required else "optional"
            if found.value:
                line = Text(f"{name}: from the {found.source} (type a new one to replace it)")
            elif found.keyring_problem:
                from sparktui.services.secrets import no_backend_message

                line = Text(f"{name} ({need}): {no_backend_message(name, found.keyring_problem)}",
                            style="yellow")
            else:
                line = Text(f"{name} ({need}): not set; type it once, it is kept in "
                            f"{self.secrets.kept_in}", style="yellow" if required else "dim")
            self.query_one(f"#status-secret-{name}", Static).update(line)

    def _text(self, field_id: str) -> str:
        return self.query_one(f"#field-{field_id}", Input).value.strip()

    def _check(self, field_id: str) -> bool:
        return self.query_one(f"#field-{field_id}", Checkbox).value

    def read_spec(self) -> DeploySpec:
        """The form as a DeploySpec; SpecError names the field that is wrong."""
        def port(field_id: str, label: str) -> int:
            text = self._text(field_id)
            if not text.isdigit():
                raise SpecError(label, f"{text!r} is not a port number")
            return int(text)

        spec = DeploySpec(
            preset=self.preset_key, name=self._text("name"), image=self._text("image"),
            command=self._text("command"), host_port=port("host_port", "port"),
            container_port=port("container_port", "container port"),
            bind_address=self._text("bind_address") or "127.0.0.1",
            env=parse_env(self._text("env")), secrets=dict(self.secret_required),
            volumes=[v.strip() for v in self._text("volumes").split(",") if v.strip()],
            shm_size=self._text("shm_size"), ulimits=self._text("ulimits").split(),
            health_path=self._text("health_path") or "/", api_path=self.api_path,
            **{field_id: self._check(field_id) for field_id, _ in CHECKS})
        validate(spec)
        return spec

    # -- deploying ------------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "deploy-run":
            self.action_deploy()
        elif event.button.id == "deploy-offer":
            self.action_offer()

    def action_deploy(self) -> None:
        if self.deploying:
            self.notify("A deploy is already running.", severity="warning")
            return
        try:
            self.service.check_writable("deploy", self.service.device)
            spec = self.read_spec()
        except ReadOnlyError as exc:
            self.notify(str(exc), title="read-only", severity="error", markup=False)
            return
        except SpecError as exc:
            self.notify(str(exc), title="check the form", severity="error", markup=False)
            return
        self.deploying = True
        self.result = None
        self.query_one("#deploy-offer", Button).display = False
        self.query_one("#deploy-log", RichLog).clear()
        self._deploy(spec)

    async def _secret_values(self, spec: DeploySpec) -> dict[str, str] | None:
        values: dict[str, str] = {}
        for name, required in spec.secrets.items():
            typed = self.query_one(f"#secret-{name}", Input).value.strip()
            if typed:
                values[name] = typed
                try:
                    await self.secrets.set(name, typed)
                except SecretsUnavailable as exc:
                    self.notify(str(exc), title=name, severity="warning", timeout=15,
                                markup=False)
                continue
            found = await self.secrets.lookup(name)
            if found.value:
                values[name] = found.value
            elif required:
                self.notify(f"{name} is needed for this preset: type it in the form, or set "
                            f"it in the environment ({name}=…)", title="missing secret",
                            severity="error", markup=False)
                return None
        return values

    @work(group="deploy", exclusive=True, exit_on_error=False)
    async def _deploy(self, spec: DeploySpec) -> None:
        try:
            values = await self._secret_values(spec)
            if values is None:
                return
            auth = None
            if spec.image.startswith("nvcr.io/") and values.get("NGC_API_KEY"):
                auth = {"username": "$oauthtoken", "password": values["NGC_API_KEY"]}
            deployer = Deployer(self.service)
            self.result = result = await deployer.deploy(
                spec, on_update=self._show_update, secret_values=values, auth=auth,
                ready_timeout=self.ready_timeout, poll_interval=self.poll_interval)
        except (ReadOnlyError, DockerUnavailable, SpecError) as exc:
            self._write_log(Text(str(exc), style="bold red"))
            self.notify(str(exc), title="deploy", severity="error", markup=False)
            return
        finally:
            self.deploying = False
        if result.ok and result.ready is not None:
            self._write_log(Text(f"ready: {result.ready.base_url} on {result.ready.device}",
                           style="bold green"))
            offer = self.query_one("#deploy-offer", Button)
            offer.display = True
            offer.focus()
            return
        self._write_log(safe_text(result.message, style="bold red"))
        if result.kept:
            self._write_log(Text("the container was kept, as asked", style="yellow"))
        if result.log_tail:
            self._write_log(Text("last log lines:", style="bold"))
            for line in result.log_tail:
                self._write_log(ansi_to_text(line, keep_newlines=False, max_line=500))

    def _show_update(self, update: DeployUpdate) -> None:
        phase = self.query_one("#deploy-phase", Static)
        phase.update(safe_text(update.message, style="bold"))
        bar = self.query_one("#deploy-progress", ProgressBar)
        progress = update.progress
        if progress is not None and progress.bytes_total:
            bar.display = True
            bar.update(total=progress.bytes_total, progress=progress.bytes_done)
        if update.phase != "pull" or progress is None:
            self._write_log(safe_text(update.message))

    def _write_log(self, text: Text) -> None:
        self.query_one("#deploy-log", RichLog).write(text)

    def action_offer(self) -> None:
        result = self.result
        if result is None or result.ready is None:
            return
        ready = result.ready
        self.app.post_message(DeployReady(ready.device, ready.port, ready.base_url, ready))
        self.notify(f"asked for a tunnel to {ready.base_url} on {ready.device}", timeout=5,
                    markup=False)

    def action_close(self) -> None:
        if self.deploying:
            # cancelling removes what the deploy made (unless it was asked to keep it)
            self.workers.cancel_group(self, "deploy")
            self.notify("deploy cancelled", severity="warning")
            return
        self.dismiss(None)
