"""The Chat tab: talk to the models served on your devices, and see how fast they are.

Endpoints are found on each connected device (sparktui.services.endpoints:
the usual ports and the containers' published ports, probed through the SSH
connection) or added by URL (F2). Answers stream in as Markdown; the status
line shows time to first token, tokens/s and the device's GPU while they do,
and energy per answer at the end. Conversations are kept in SQLite
(sparktui.services.conversations) and reopened with ctrl+o.

The shell builds `ChatPane(session, id="chat-pane")`. Endpoints are searched when the
tab is first shown, then as links join and devices (re)connect (RediscoveringPane).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Select
from textual.worker import WorkerCancelled

from sparktui.core.aio import within
from sparktui.core.sanitize import strip_control
from sparktui.services.chat import AnswerStream, ChatRequest, ChatService
from sparktui.services.conversations import (
    DB_NAME,
    Conversation,
    ConversationStore,
    Message,
    title_from,
)
from sparktui.services.endpoints import (
    Endpoint,
    EndpointConnector,
    EndpointSpec,
    load_manual_endpoints,
    manual_spec,
    save_manual_endpoint,
)
from sparktui.services.secrets import SecretStore, SecretsUnavailable
from sparktui.services.session import Session
from sparktui.services.telemetry import TelemetryService
from sparktui.ui import readings
from sparktui.ui.chat.endpoint import ChatEndpointScreen, EndpointForm
from sparktui.ui.chat.history import ChatHistoryScreen, HistoryResult
from sparktui.ui.chat.input import ChatInput
from sparktui.ui.chat.message import ChatMessageView
from sparktui.ui.chat.status import ChatStatus, final_text, gpu_text, live_text
from sparktui.ui.widgets.pane_common import PaneIntro, RediscoveringPane

log = logging.getLogger(__name__)

PURPOSE = ("Talk to the models served on your devices (vLLM, NIM, SGLang, TensorRT-LLM, "
           "llama.cpp, Ollama: any OpenAI-compatible endpoint), through the device's SSH "
           "connection: no port is opened on the Spark.")
DETAILS = ("Pick an endpoint and a model above, type below and press enter. "
           "esc stops an answer · ctrl+r finds endpoints again · F2 adds one by URL or sets "
           "its API key · ctrl+o saved conversations · ctrl+t a new one · y copies the last "
           "answer.")
STATUS_HZ = 4  # the live figures need no more; more would only cost CPU


class ChatPane(RediscoveringPane):
    """Endpoints and models on top, the conversation in the middle, the prompt below."""

    HELP_SCOPE = "Chat tab"

    BINDINGS = [
        Binding("escape", "stop", "Stop", id="chat.stop",
                tooltip="Stop the answer being generated (the partial text is kept); "
                "the focus stays in the prompt"),
        Binding("i", "focus_input", "Type", id="chat.focus_input",
                tooltip="Go to the prompt box"),
        Binding("ctrl+t", "new_chat", "New chat", id="chat.new",
                tooltip="Start a new conversation"),
        Binding("ctrl+o", "history", "Chats", id="chat.history",
                tooltip="Saved conversations: reopen, rename, export, delete"),
        Binding("ctrl+r", "discover", "Find endpoints", id="chat.discover",
                tooltip="Look for model servers on the devices again"),
        Binding("f2", "endpoint", "Endpoint…", id="chat.endpoint",
                tooltip="Add an endpoint by URL, or set an endpoint's API key"),
        Binding("y", "copy_last", "Copy answer", show=False, id="chat.copy_last",
                tooltip="Copy the last answer (OSC 52)"),
    ]

    def __init__(self, session: Session, *, store: ConversationStore | None = None,
                 secrets: SecretStore | None = None, **kwargs) -> None:
        super().__init__(session, **kwargs)
        history = session.data_dir / DB_NAME if session.data_dir else None
        self.store = store or ConversationStore(history)
        self.secrets = secrets or session.secrets
        self.connector = EndpointConnector(self.fleet.get, self.secrets)
        self.chat = ChatService(self.connector)
        self.endpoints: dict[str, Endpoint] = {}
        self.manual: list[EndpointSpec] = []
        self.conversation: Conversation | None = None
        self.answer: AnswerStream | None = None
        self._answer_worker = None
        self._wanted: tuple[str | None, str | None] = (None, None)  # endpoint id, model
        self._status_timer = None
        self._discover_notes: list[str] = []
        self._store_checked = False
        # kept, not queried: the answer's worker reports its end after the tab may
        # have lost its children (the app closing mid-answer)
        self.status_line = ChatStatus("", id="chat-status")

    def compose(self) -> ComposeResult:
        with Horizontal(id="chat-bar"):
            # no type-to-search: a letter on a focused picker must reach the pane's keys
            # (i to type, the tab numbers), not open the menu
            yield Select([], prompt="endpoint (ctrl+r to find)", id="chat-endpoint",
                         type_to_search=False)
            yield Select([], prompt="model", id="chat-model", type_to_search=False)
        with Horizontal(id="chat-options"):
            yield Input(placeholder="system prompt (optional)", id="chat-system")
            yield Input(placeholder="temperature", type="number", id="chat-temperature")
            yield Input(placeholder="max tokens", type="integer", id="chat-max-tokens")
        with VerticalScroll(id="chat-log"):
            yield PaneIntro("Chat", PURPOSE, DETAILS, classes="pane-intro")
        yield self.status_line
        yield ChatInput(id="chat-input")

    def on_mount(self) -> None:
        self.query_one("#chat-log", VerticalScroll).anchor()
        self._load_manual_endpoints()
        self.set_interval(1.0, self._show_staleness)  # the age moves on; nothing when live

    async def _ready_store(self) -> ConversationStore:
        """The store, opened on first use: a session that never chats writes no file."""
        if self._store_checked:
            return self.store
        self._store_checked = True
        try:
            await self.store.open()
        except Exception as exc:  # a broken or newer file: chat still works, unsaved
            log.exception("chat history unavailable")
            self.notify(f"chat history not available, this session is not saved: {exc}",
                        severity="warning", timeout=15, markup=False)
            self.store = await ConversationStore(_memory_path()).open()
        return self.store

    @work(group="chat-config", exit_on_error=False)
    async def _load_manual_endpoints(self) -> None:
        try:
            self.manual, problems = await asyncio.to_thread(load_manual_endpoints,
                                                            self._config_path())
        except OSError as exc:
            problems = [f"endpoints not read: {exc}"]
        for problem in problems:
            self.notify(problem, title="configuration", severity="warning", markup=False)

    async def on_unmount(self) -> None:
        await self._stop_answer()
        worker = self._answer_worker
        if worker is not None and not worker.is_finished:
            try:  # let the partial answer be saved before the store closes
                await within(worker.wait(), 3)
            except WorkerCancelled:
                pass  # cancelled with the app: its `finally` has saved the partial answer
            except Exception:
                log.exception("the answer being streamed was not saved cleanly")
        await self.connector.close()
        await self.store.close()

    def _config_path(self) -> Path:
        return self.session.config.path

    # -- devices and endpoints (searched when shown and as devices connect) -----------
    @work(group="chat-discover", exclusive=True, exit_on_error=False)
    async def discover(self) -> None:
        status = self.status_line
        status.show("looking for model endpoints…")
        links = [link for link in self.fleet.links
                 if link.transport is not None and link.transport.is_alive()]
        results = await asyncio.gather(*(self.connector.discover_device(link)
                                         for link in links))
        manual = await asyncio.gather(*(self.connector.probe(spec) for spec in self.manual))
        found: dict[str, Endpoint] = {}
        notes: list[str] = []
        for result in results:
            found.update((e.id, e) for e in result.endpoints)
            notes += [f"{result.device}: {note}" for note in result.notes]
        found.update((e.id, e) for e in manual)
        self.endpoints = found
        self._discover_notes = notes
        self._fill_endpoints()
        answering = [e for e in found.values() if e.error is None]
        searched = ", ".join(link.name for link in links) or "no connected device"
        status.show(Text(f"{len(answering)} endpoint{'s' * (len(answering) != 1)} found "
                         f"({searched})" + (f" · {'; '.join(notes)}" if notes else "")
                         + " · F2 adds one by URL"))

    def _endpoint_label(self, endpoint: Endpoint) -> Text:
        spec = endpoint.spec
        where = spec.device or "direct"
        label = Text(f"{strip_control(spec.name, max_line=40)}")
        if spec.name != f"{where}:{spec.base.host_port[1]}":
            label.append(f" ({where})", style="dim")
        if self._stale_label(endpoint):
            label.append(" · STALE: device not connected", style="dim")
        elif endpoint.error:
            label.append(" - no answer", style="dim")
        elif spec.note:
            label.append(f" · {strip_control(spec.note, max_line=40)}", style="dim")
        return label

    def _stale_label(self, endpoint: Endpoint) -> str | None:
        """STALE with the age, while the endpoint's device is not connected."""
        link = self.fleet.get(endpoint.spec.device) if endpoint.spec.device else None
        return None if link is None else readings.link_stale_label(link, "last seen")

    def device_dropped(self) -> None:
        self._fill_endpoints()  # the labels say which endpoints' devices are gone
        self._show_staleness()

    def _show_staleness(self) -> None:
        """The selected endpoint's device is gone: say so, with the age (every second)."""
        endpoint = self.selected_endpoint()
        stale = None if endpoint is None or self.streaming else self._stale_label(endpoint)
        if endpoint is not None and stale is not None:
            text = Text(f"{strip_control(endpoint.spec.name, max_line=40)}: ")
            text.append(stale, style="bold")
            self.status_line.show(text)

    def _fill_endpoints(self) -> None:
        select = self.query_one("#chat-endpoint", Select)
        current = select.value if select.value is not Select.NULL else None
        wanted = self._wanted[0] or current
        options = [(self._endpoint_label(e), e.id) for e in self.endpoints.values()]
        with select.prevent(Select.Changed):
            select.set_options(options)
        choice = wanted if wanted in self.endpoints else next(
            (e.id for e in self.endpoints.values() if e.error is None), None)
        if choice is not None:
            select.value = choice
        self._fill_models(self.endpoints.get(choice) if choice else None)

    def _fill_models(self, endpoint: Endpoint | None) -> None:
        select = self.query_one("#chat-model", Select)
        models = endpoint.models if endpoint is not None else ()
        current = select.value if select.value is not Select.NULL else None
        wanted = self._wanted[1] or current
        with select.prevent(Select.Changed):
            select.set_options([(Text(m), m) for m in models])
            if models:
                select.value = wanted if wanted in models else models[0]

    @on(Select.Changed, "#chat-endpoint")
    def _endpoint_chosen(self, event: Select.Changed) -> None:
        self._wanted = (None, None)  # the user's own choice wins from now on
        endpoint = self.endpoints.get(str(event.value)) if event.value is not Select.NULL else None
        self._fill_models(endpoint)
        if endpoint is not None and self._stale_label(endpoint):
            self._show_staleness()
        elif endpoint is not None and endpoint.error:
            self.status_line.show(Text(f"{endpoint.spec.describe()}: {endpoint.error}"))

    def selected_endpoint(self) -> Endpoint | None:
        value = self.query_one("#chat-endpoint", Select).value
        return self.endpoints.get(str(value)) if value is not Select.NULL else None

    def selected_model(self) -> str | None:
        value = self.query_one("#chat-model", Select).value
        return str(value) if value is not Select.NULL else None

    def _telemetry(self, device: str | None) -> TelemetryService | None:
        """The device's TelemetryService, from the session's hub."""
        link = self.fleet.get(device) if device else None
        return None if link is None else self.session.telemetry.attach(link)

    # -- sending ------------------------------------------------------------------------
    def _options(self) -> tuple[str, float | None, int | None]:
        system = self.query_one("#chat-system", Input).value
        temperature_text = self.query_one("#chat-temperature", Input).value.strip()
        tokens_text = self.query_one("#chat-max-tokens", Input).value.strip()
        temperature = max_tokens = None
        try:
            temperature = float(temperature_text) if temperature_text else None
        except ValueError:
            self.notify(f"temperature {temperature_text!r} is not a number: the server's "
                        "default is used", severity="warning", markup=False)
        try:
            max_tokens = int(tokens_text) if tokens_text else None
        except ValueError:
            self.notify(f"max tokens {tokens_text!r} is not a whole number: no limit is sent",
                        severity="warning", markup=False)
        if max_tokens is not None and max_tokens <= 0:
            max_tokens = None
        return system, temperature, max_tokens

    @on(ChatInput.Send)
    async def _send(self, event: ChatInput.Send) -> None:
        event.stop()
        if self.answer is not None and not self.answer.finished.is_set():
            self.notify("still answering: esc stops it", timeout=3)
            return
        endpoint, model = self.selected_endpoint(), self.selected_model()
        if endpoint is not None and (stale := self._stale_label(endpoint)):
            self.notify(f"Not sent ({stale.strip()}); the text stays in the box.",
                        severity="warning", markup=False)
            return
        if endpoint is None or model is None:
            # the text stays in the box: nothing was sent
            self.notify("pick an endpoint and a model first (ctrl+r finds endpoints, "
                        "F2 adds one)", severity="warning", timeout=6)
            return
        prompt = event.text
        await self._ready_store()
        self.query_one(ChatInput).clear()
        system, temperature, max_tokens = self._options()
        settings = {"endpoint": endpoint.id, "model": model, "system_prompt": system,
                    "temperature": temperature, "max_tokens": max_tokens}
        if self.conversation is None:
            self.conversation = await self.store.create(title_from(prompt), **settings)
        else:
            await self.store.update(self.conversation.id, **settings)
            for name, value in settings.items():
                setattr(self.conversation, name, value)
        user = await self.store.add_message(self.conversation.id, Message("user", prompt))
        self.conversation.messages.append(user)
        await self._mount_message(user)
        request = ChatRequest(model, self.conversation.api_messages(), temperature, max_tokens)
        reply = await self.store.add_message(self.conversation.id, Message(
            "assistant", "", status="streaming", model=model))
        self.conversation.messages.append(reply)
        view = await self._mount_message(reply)
        stream = await self.chat.answer(endpoint.spec, request,
                                        telemetry=self._telemetry(endpoint.spec.device))
        self.answer = stream
        self._answer_worker = self.run_worker(self._stream_answer(stream, view, reply, prompt),
                                              group="chat-answer", exit_on_error=False)

    async def _mount_message(self, message: Message) -> ChatMessageView:
        log_view = self.query_one("#chat-log", VerticalScroll)
        self.query_one(".pane-intro").display = False
        view = ChatMessageView(message)
        await log_view.mount(view)
        return view

    async def _stream_answer(self, stream: AnswerStream, view: ChatMessageView,
                             reply: Message, prompt: str) -> None:
        markdown = view.start_stream()
        self._status_timer = self.set_interval(1 / STATUS_HZ, self._tick_status)
        try:
            async for piece in stream:
                markdown.write(piece)
        finally:
            if not stream.finished.is_set():
                await stream.stop()  # cancelled (the app is closing): close the HTTP stream
            await view.end_stream()
            if self._status_timer is not None:
                self._status_timer.stop()
                self._status_timer = None
            await asyncio.shield(self._answer_done(stream, view, reply, prompt))

    def _tick_status(self) -> None:
        stream = self.answer
        if stream is None or stream.finished.is_set():
            return
        meter = stream.meter
        self.status_line.show(live_text(stream.figures, stream.clock(), stream.spec.device,
                                        meter.latest if meter else None))

    async def _answer_done(self, stream: AnswerStream, view: ChatMessageView, reply: Message,
                           prompt: str) -> None:
        outcome = stream.outcome
        reply.content = stream.text
        reply.status = outcome.status
        reply.error = outcome.error
        reply.figures = stream.figures.as_dict() if stream.figures.first_token else None
        await self.store.save_message(reply)
        error = None
        if outcome.error and self.conversation is not None:
            error = await self.store.add_message(self.conversation.id,
                                                 Message("error", outcome.error))
            self.conversation.messages.append(error)
        if not (self.is_attached and view.is_attached):
            return  # the tab or the message is being removed: saved, nothing to show
        view.refresh_footer()
        status = final_text(stream.figures, outcome.status, outcome.notes)
        if stream.meter is not None:
            status.append_text(gpu_text(stream.spec.device, stream.meter.latest))
        self.status_line.show(status)
        if error is not None:
            await self._mount_message(error)
            box = self.query_one(ChatInput)
            if not reply.content and not box.text.strip():
                box.text = prompt  # nothing came back: the prompt is ready to send again

    async def _stop_answer(self) -> None:
        stream = self.answer
        if stream is not None and not stream.finished.is_set():
            await stream.stop()

    # -- conversations ---------------------------------------------------------------------
    async def _show_conversation(self, conversation: Conversation | None) -> None:
        log_view = self.query_one("#chat-log", VerticalScroll)
        await log_view.query(ChatMessageView).remove()
        self.conversation = conversation
        self.query_one(".pane-intro").display = conversation is None or not \
            conversation.messages
        if conversation is None:
            return
        await log_view.mount_all([ChatMessageView(m) for m in conversation.messages])
        log_view.anchor()
        self.query_one("#chat-system", Input).value = conversation.system_prompt
        self.query_one("#chat-temperature", Input).value = (
            "" if conversation.temperature is None else f"{conversation.temperature:g}")
        self.query_one("#chat-max-tokens", Input).value = (
            "" if conversation.max_tokens is None else str(conversation.max_tokens))
        self._wanted = (conversation.endpoint, conversation.model)
        if conversation.endpoint in self.endpoints:
            self._fill_endpoints()
        elif conversation.endpoint:
            self.status_line.show(Text(
                f"this conversation used {conversation.endpoint}, not found now; "
                "ctrl+r looks again"))

    async def open_conversation(self, conversation_id: int) -> bool:
        if self.answer is not None and not self.answer.finished.is_set():
            await self._stop_answer()
        conversation = await self.store.get(conversation_id)
        if conversation is None:
            return False
        await self._show_conversation(conversation)
        return True

    async def action_new_chat(self) -> None:
        await self._stop_answer()
        await self._show_conversation(None)
        self.query_one(ChatInput).focus()

    async def action_history(self) -> None:
        await self._ready_store()
        current = self.conversation.id if self.conversation else None

        async def closed(result: HistoryResult | None) -> None:
            if result is None:
                return
            if current is not None and current in result.deleted:
                await self._show_conversation(None)
            if result.open_id is not None:
                await self.open_conversation(result.open_id)

        self.app.push_screen(ChatHistoryScreen(self.store, current), callback=closed)

    # -- actions -----------------------------------------------------------------------------
    @property
    def streaming(self) -> bool:
        """An answer is arriving now: quitting cuts it short."""
        return self.answer is not None and not self.answer.finished.is_set()

    async def action_stop(self) -> None:
        if self.streaming:
            await self._stop_answer()
            return
        # nothing to stop: the focus stays where it is. Moving it out of the prompt put
        # it where the next word's letters ran app keys (q quit); Tab leaves the prompt.

    def action_focus_input(self) -> None:
        self.query_one(ChatInput).focus()

    def action_discover(self) -> None:
        self.activated = True
        self.discover()

    def action_copy_last(self) -> None:
        views = [v for v in self.query(ChatMessageView) if v.message.role == "assistant"]
        if views:
            views[-1].action_copy()

    def action_endpoint(self) -> None:
        self.run_worker(self._endpoint_screen(), group="chat-endpoint-screen", exclusive=True,
                        exit_on_error=False)

    async def _endpoint_screen(self) -> None:
        endpoint = self.selected_endpoint()
        keyring_problem = await self.secrets.problem()
        devices = [link.name for link in self.fleet.links]
        screen = ChatEndpointScreen(devices, endpoint.spec if endpoint else None,
                                    keyring_problem, kept_in=self.secrets.kept_in)
        form = await self.app.push_screen_wait(screen)
        if form is not None:
            await self._apply_endpoint_form(form)

    async def _apply_endpoint_form(self, form: EndpointForm) -> None:
        if form.key_for is not None:
            await self._store_key(form.key_for, form.key or "")
            return
        assert form.url is not None
        await self.use_endpoint(manual_spec(form.url, device=form.device, name=form.name))

    async def use_endpoint(self, spec: EndpointSpec) -> None:
        """Save `spec` in the config, probe it and pick it (the form, the deploy's offer)."""
        try:
            await asyncio.to_thread(save_manual_endpoint, self._config_path(), spec)
        except Exception as exc:  # a broken config file: the endpoint still works this session
            self.notify(f"endpoint not saved in the config: {exc}", severity="warning",
                        markup=False)
        self.manual = [s for s in self.manual if s.id != spec.id] + [spec]
        note = f" ({spec.note})" if spec.note else ""
        self.notify(f"using {spec.describe()}{note}", timeout=8, markup=False)
        endpoint = await self.connector.probe(spec)
        self.endpoints[spec.id] = endpoint
        self._wanted = (spec.id, None)
        self._fill_endpoints()
        if endpoint.error:
            self.status_line.show(Text(f"{spec.describe()}: {endpoint.error}"))

    async def _store_key(self, spec: EndpointSpec, key: str) -> None:
        try:
            if key:
                await self.secrets.set(spec.secret_name, key)
            else:
                await self.secrets.delete(spec.secret_name)
        except SecretsUnavailable as exc:
            # no keyring: keep the key for this session only, in memory
            self.connector.set_session_key(spec.id, key or None)
            self.notify(f"{exc}; the key is kept for this session only", severity="warning",
                        timeout=15, markup=False)
        else:
            self.notify("API key removed" if not key else
                        f"API key saved in {self.secrets.kept_in}", timeout=5)
        await self.connector.forget(spec.id)  # the next request carries the new key
        endpoint = await self.connector.probe(spec)
        self.endpoints[spec.id] = endpoint
        self._wanted = (spec.id, self.selected_model())
        self._fill_endpoints()


def _memory_path():
    from pathlib import Path

    return Path(":memory:")

