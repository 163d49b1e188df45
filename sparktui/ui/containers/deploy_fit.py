"""The deploy form's fit verdict: will the model in the command fit on the device now?

The same weighing as `sparktui fit` (services.fit_check): the models on the
device's disk are listed once when the form opens (and when the device
changes), the chosen model's config.json is read once, and every edit of the
command re-weighs at once with no I/O. Memory is re-read from the telemetry
stream every few seconds. The verdict is one line: fits / tight / won't fit /
can't tell, with the figures used and the missing ones shown as missing; the
arithmetic goes to the form (a `Weighed` message) for its log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.message import Message

from sparktui.core.fit import VERDICT_WORDS, gib
from sparktui.core.sanitize import strip_control
from sparktui.services.fit_check import CommandFit, FitCheck, memory_now
from sparktui.services.link import DeviceLink
from sparktui.services.models_disk import ModelStore
from sparktui.services.telemetry import TelemetryService
from sparktui.ui.widgets.repaint import LiveStatic
from sparktui.ui.widgets.worker_log import LogsWorkerFailures

log = logging.getLogger(__name__)

MEMORY_RECHECK_S = 5.0
VERDICT_STYLE = {"yes": "bold green", "tight": "bold yellow", "no": "bold red",
                 "unknown": "bold"}


class DeployFit(LogsWorkerFailures, LiveStatic):
    """One line: the verdict for the form's command on the chosen device."""

    @dataclass
    class Weighed(Message):
        """A new verdict (or none yet): its arithmetic, one line each."""

        lines: tuple[str, ...]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.check: FitCheck | None = None
        self.command = ""
        self.env: dict[str, str] = {}
        self.shm_size = ""
        self.problem: str | None = None  # why the models could not be listed
        self.result: CommandFit | None = None
        self._lines: tuple[str, ...] | None = None

    def on_mount(self) -> None:
        self.set_interval(MEMORY_RECHECK_S, self.show_verdict)  # memory moves; no I/O

    def set_device(self, link: DeviceLink, telemetry: TelemetryService | None) -> None:
        self.check = FitCheck(ModelStore(link), telemetry)
        self.problem = None
        self.show_verdict()
        self.list_models()

    def weigh(self, command: str, env: dict[str, str], shm_size: str = "") -> None:
        self.command, self.env, self.shm_size = command, env, shm_size
        self.show_verdict()

    @work(group="deploy-fit-list", exclusive=True, exit_on_error=False)
    async def list_models(self) -> None:
        check = self.check
        if check is None:
            return
        try:
            await check.load()
        except Exception as exc:  # the verdict says it cannot tell, and why
            log.warning("listing models on %s for the fit: %r", check.store.link.name, exc)
            self.problem = f"could not list the models on {check.store.link.name}: {exc}"
        self.show_verdict()

    @work(group="deploy-fit-config", exclusive=True, exit_on_error=False)
    async def read_config(self, check: FitCheck, result: CommandFit) -> None:
        if result.cached is not None:
            try:
                await check.config(result.cached)
            except Exception as exc:  # weighed without the KV cache, and the verdict says so
                log.warning("reading config.json of %s: %r", result.cached.name, exc)
        self.show_verdict()

    def show_verdict(self) -> None:
        check = self.check
        head = Text("Fit now: ", style="bold")
        if check is None:
            self._show(head + Text("no device"), ())
            return
        if check.listing is None:
            why = self.problem or f"reading the models on {check.store.link.name}…"
            self._show(head + Text("can't tell", style="bold") + Text(f" · {_safe(why)}"), ())
            return
        result = self.result = check.for_command(self.command, self.env)
        cached = result.cached
        if cached is not None and not check.known_config(cached)[0]:
            self.read_config(check, result)
        verdict = result.verdict
        if verdict is None:
            self._show(head + Text("can't tell", style="bold") + Text(
                " · the command names no model (this image picks its own): weigh one with "
                "`sparktui fit` or m on the Serving tab"), self._arithmetic(result))
            return
        free, available = memory_now(check.telemetry)
        kv = gib(verdict.kv_bytes) if verdict.kv_bytes is not None else "— (missing)"
        weights = gib(verdict.weights_bytes) if verdict.weights_bytes is not None \
            else "— (not on disk)"
        line = head + Text(VERDICT_WORDS[verdict.verdict].upper(),
                           style=VERDICT_STYLE[verdict.verdict])
        line += Text(f" · {_safe(result.model or '')}: needs {gib(verdict.need_bytes)} "
                     f"(weights {weights} + KV {kv} for {result.shape.context_tokens} x "
                     f"{result.shape.concurrency})"
                     + (f", vLLM takes {gib(verdict.reserve_bytes)}"
                        if verdict.reserve_bytes is not None else "")
                     + f" · MemFree {gib(free)}, MemAvailable "
                     f"{gib(available)} · {_safe(verdict.reason)}")
        self._show(line, self._arithmetic(result))

    def _arithmetic(self, result: CommandFit) -> tuple[str, ...]:
        if not self.shm_size:
            return result.arithmetic
        # /dev/shm is tmpfs in the same unified memory: it costs what is written to it
        return (*result.arithmetic, f"shared memory up to {_safe(self.shm_size)} comes from "
                "the same memory when used (not counted above)")

    def _show(self, line: Text, lines: tuple[str, ...]) -> None:
        self.show(line)
        if lines != self._lines:
            self._lines = lines
            self.post_message(self.Weighed(lines))


def _safe(text: str) -> str:
    """Device text (model names, paths, errors) as typed: never markup or escapes."""
    return strip_control(text, max_line=300)
