"""Will a model fit on a device now: the one weighing behind `sparktui fit` and the deploy form.

The models on disk are listed once per FitCheck (one exec, on the user's action:
opening the deploy form, running `fit`), each config.json is read once (one
exec), and the budget is MemFree and MemAvailable from the telemetry host
stream as they are at the moment of weighing, so re-weighing costs the device
nothing. The model is found by name (`sparktui fit`) or in a server's command
line (the deploy form: core.serve_shape), and a model the command asks for that
is not on disk is weighed with its size missing, never as 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sparktui.core.fit import FitInput, FitVerdict, gib, weigh
from sparktui.core.model_cache import CachedModel, ModelListing
from sparktui.core.serve_shape import ServeShape, find_model, requested_model, serve_shape
from sparktui.services.models_disk import ModelStore


def mem_total(telemetry: Any) -> int | None:
    host = telemetry.latest.host if telemetry is not None else None
    return host.mem_total if host is not None else None


def memory_now(telemetry: Any) -> tuple[int | None, int | None]:
    """(MemFree, MemAvailable) from a TelemetryService's host stream; None when not known."""
    host = telemetry.latest.host if telemetry is not None else None
    if host is None:
        return None, None
    return host.mem_free, host.mem_available


@dataclass(frozen=True)
class CommandFit:
    """The verdict for a server's command line, with what it was weighed from."""

    model: str | None  # the model weighed (None: the command names none)
    cached: CachedModel | None  # it, on the device's disk
    shape: ServeShape
    verdict: FitVerdict | None  # None when there was no model to weigh

    @property
    def arithmetic(self) -> tuple[str, ...]:
        """The shape's sources, then the verdict's arithmetic, one line each."""
        return self.shape.notes + (self.verdict.arithmetic if self.verdict else ())


class FitCheck:
    """Weighs the models of one device (its ModelStore) against its memory now."""

    def __init__(self, store: ModelStore, telemetry: Any = None) -> None:
        self.store = store
        self.telemetry = telemetry  # a TelemetryService, for MemFree / MemAvailable
        self.listing: ModelListing | None = None
        self._configs: dict[str, dict[str, Any] | None] = {}

    async def load(self) -> ModelListing:
        """List the models on disk (one exec); raises RuntimeError when it cannot."""
        self.listing = await self.store.refresh()
        return self.listing

    def find(self, name: str) -> CachedModel | None:
        models = self.listing.models if self.listing is not None else []
        return next((m for m in models if m.name == name), None)

    async def config(self, model: CachedModel) -> dict[str, Any] | None:
        """Its config.json, read once (one exec); None when there is none to read."""
        if model.id not in self._configs:
            self._configs[model.id] = await self.store.read_config(model)
        return self._configs[model.id]

    def known_config(self, model: CachedModel) -> tuple[bool, dict[str, Any] | None]:
        """(read already, the config) without reading: for weighing on every keystroke."""
        return model.id in self._configs, self._configs.get(model.id)

    def weigh(self, model_name: str, model: CachedModel | None, config: dict[str, Any] | None,
              *, context: int, concurrency: int, kv_dtype: str,
              shape: ServeShape | None = None) -> FitVerdict:
        free, available = memory_now(self.telemetry)
        reserve, detail = None, ""
        total = mem_total(self.telemetry)
        if shape is not None and shape.reserve_fraction is not None and total is not None:
            reserve = int(shape.reserve_fraction * total)
            detail = (f"vLLM: {shape.reserve_fraction:g} x MemTotal {gib(total)}, "
                      f"{shape.reserve_source}")
        return weigh(FitInput(model_name, model.size_bytes if model is not None else None,
                              config, context, concurrency, kv_dtype, free, available,
                              reserve_bytes=reserve, reserve_detail=detail))

    def for_command(self, command: str, env: Mapping[str, str] | None = None) -> CommandFit:
        """Weigh what `command` serves with the configs read so far (no I/O)."""
        shape = serve_shape(command)
        names = [m.name for m in self.listing.models] if self.listing is not None else []
        found = find_model(command, env, names)
        name = found or requested_model(command, env)
        if name is None:
            return CommandFit(None, None, shape, None)
        cached = self.find(found) if found is not None else None
        config = self.known_config(cached)[1] if cached is not None else None
        verdict = self.weigh(name, cached, config, context=shape.context_tokens,
                             concurrency=shape.concurrency, kv_dtype=shape.kv_dtype,
                             shape=shape)
        return CommandFit(name, cached, shape, verdict)
