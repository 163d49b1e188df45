"""Serving: scrape every model endpoint of a device for what its engine is doing.

Each endpoint found on a device (sparktui.services.endpoints) is read through
the same per-endpoint HTTP client as chat, i.e. over the device's one SSH
connection: a GET on a forward, no process started on the device. Per scrape:
- /metrics; Prometheus text is vLLM, SGLang or llama.cpp (by metric prefix),
  JSON is TRT-LLM's iteration stats; llama.cpp also gets /slots;
- an Ollama endpoint (no metrics page) gets /api/ps.
The figures (sparktui.core.serving) are published to listeners after every
round, and the charted ones go into a History like the Telemetry tab's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from sparktui.core.aio import within
from sparktui.core.history import History
from sparktui.core.prom import MetricsError, Scrape, parse_prometheus
from sparktui.core.sanitize import strip_control
from sparktui.core.serving import (
    LATENCY_WINDOW_S,
    RATE_WINDOW_S,
    ScrapeHistory,
    ServingFigures,
    SlotUse,
    engine_of,
    from_ollama_ps,
    from_prometheus,
    from_trtllm_stats,
    parse_slots,
)
from sparktui.services.endpoints import (
    MAX_MODELS_BODY,
    Endpoint,
    EndpointConnector,
    EndpointError,
    EndpointSpec,
    describe_transport_error,
    get_bounded,
)

log = logging.getLogger(__name__)

SCRAPE_PERIOD_S = 2.0
SCRAPE_TIMEOUT_S = 5.0
HISTORY_S = 600.0
#: figures charted per endpoint: (metric key, ServingFigures -> value)
CHARTED: dict[str, Callable[[ServingFigures], float | None]] = {
    "running": lambda f: f.running,
    "waiting": lambda f: f.waiting,
    "kv_cache_pct": lambda f: f.kv_cache_pct,
    "generation_tps": lambda f: f.generation_tps,
    "prompt_tps": lambda f: f.prompt_tps,
    "ttft_p95": lambda f: f.ttft.p95 if f.ttft else None,
    "itl_p50": lambda f: (f.itl.p50 if f.itl.p50 is not None else f.itl.mean) if f.itl else None,
    "e2e_p95": lambda f: f.e2e.p95 if f.e2e else None,
}

NO_METRICS_HINT = ("no metrics page: start vLLM as is, SGLang with --enable-metrics, "
                   "llama-server with --metrics")


@dataclass(frozen=True)
class EndpointServing:
    """The latest reading of one endpoint: its figures, or why there are none."""

    endpoint: Endpoint
    figures: ServingFigures | None = None
    error: str | None = None
    t: float = field(default_factory=time.monotonic)

    @property
    def id(self) -> str:
        return self.endpoint.id

    def as_dict(self) -> dict[str, object]:
        spec = self.endpoint.spec
        return {"endpoint": spec.url, "device": spec.device, "name": spec.name,
                "container": spec.note, "models": list(self.endpoint.models),
                "error": self.error,
                "figures": self.figures.as_dict() if self.figures is not None else None}


Listener = Callable[[list[EndpointServing]], None]


class EndpointScraper:
    """Reads one endpoint, remembering enough scrapes for rates and windowed percentiles."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.history = ScrapeHistory()
        self.engine: str | None = None

    async def scrape(self, connector: EndpointConnector,
                     timeout: float = SCRAPE_TIMEOUT_S) -> EndpointServing:
        spec = self.endpoint.spec
        try:
            client = await connector.client(spec)
            if self.endpoint.kind == "ollama":
                return await self._ollama(client, spec, timeout)
            return await self._metrics(client, spec, timeout)
        except EndpointError as exc:
            return EndpointServing(self.endpoint, error=str(exc))
        except httpx.HTTPError as exc:
            self.history.reset()
            return EndpointServing(self.endpoint, error=describe_transport_error(
                exc, "{}:{}".format(*spec.base.host_port)))

    async def _ollama(self, client: httpx.AsyncClient, spec: EndpointSpec,
                      timeout: float) -> EndpointServing:
        status, body = await _get(client, root_url(client, spec, "/api/ps"), timeout)
        data = _json(body) if status == 200 else None
        figures = from_ollama_ps(data, time.monotonic())
        if figures is None:
            return EndpointServing(self.endpoint, error=f"GET /api/ps answered {status}")
        return EndpointServing(self.endpoint, figures)

    async def _metrics(self, client: httpx.AsyncClient, spec: EndpointSpec,
                       timeout: float) -> EndpointServing:
        status, body = await _get(client, root_url(client, spec, "/metrics"), timeout,
                                  MAX_METRICS_BODY)
        now = time.monotonic()
        if status != 200:
            figures = ServingFigures(engine="openai", t=now, models=self.endpoint.models,
                                     notes=(f"GET /metrics answered {status}: "
                                            f"{NO_METRICS_HINT}",))
            return EndpointServing(self.endpoint, figures)
        text = body.decode("utf-8", "replace")
        if text.lstrip().startswith(("[", "{")):
            figures = from_trtllm_stats(_json(body), now)
            if figures is None:
                return EndpointServing(self.endpoint, error="/metrics answered JSON that is "
                                                            "not TRT-LLM iteration stats")
            self.engine = "trtllm"
            return EndpointServing(self.endpoint, _with_models(figures, self.endpoint))
        try:
            samples = parse_prometheus(text)
        except MetricsError as exc:
            return EndpointServing(self.endpoint, error=strip_control(str(exc), max_line=160))
        engine = engine_of(samples)
        if engine is None:
            figures = ServingFigures(engine="openai", t=now, models=self.endpoint.models,
                                     notes=("/metrics has no vLLM, SGLang or llama.cpp "
                                            "metrics",))
            return EndpointServing(self.endpoint, figures)
        if engine != self.engine:
            self.history.reset()
            self.engine = engine
        slots = await self._slots(client, spec, timeout) if engine == "llamacpp" else None
        scrape = Scrape(now, samples)
        figures = from_prometheus(engine, scrape,
                                  rate_from=self.history.since(scrape, RATE_WINDOW_S),
                                  latency_from=self.history.since(scrape, LATENCY_WINDOW_S),
                                  slots=slots)
        self.history.add(scrape)
        return EndpointServing(self.endpoint, _with_models(figures, self.endpoint))

    async def _slots(self, client: httpx.AsyncClient, spec: EndpointSpec,
                     timeout: float) -> SlotUse | None:
        try:
            status, body = await _get(client, root_url(client, spec, "/slots"), timeout)
        except (httpx.HTTPError, EndpointError, TimeoutError):
            return None  # the slots are a bonus: /metrics answered
        return parse_slots(_json(body)) if status == 200 else None


def _with_models(figures: ServingFigures, endpoint: Endpoint) -> ServingFigures:
    if figures.models or not endpoint.models:
        return figures
    from dataclasses import replace

    return replace(figures, models=endpoint.models)


def root_url(client: httpx.AsyncClient, spec: EndpointSpec, path: str) -> httpx.URL:
    """A path under the server root (not the /v1 API root) on the endpoint's own client."""
    root = spec.base.root.split("://", 1)[1].partition("/")[2]
    return client.base_url.copy_with(path="/" + (root + path).lstrip("/"))


#: a busy vLLM's /metrics with every histogram is a few hundred KB
MAX_METRICS_BODY = 8 * 1024 * 1024


async def _get(client: httpx.AsyncClient, url: httpx.URL, timeout: float,
               limit: int = MAX_MODELS_BODY) -> tuple[int, bytes]:
    """Bounded in size and total time (see endpoints.get_bounded); a tarpit times out."""
    try:
        return await get_bounded(client, url, timeout, limit)
    except TimeoutError as exc:
        raise EndpointError(f"{url.path}: no complete answer in {timeout:g} s") from exc


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


class ServingMonitor:
    """Scrapes a set of endpoints every period and keeps their recent history.

    The endpoint list comes from whoever discovers them (`set_endpoints`);
    one round reads every endpoint concurrently, then listeners hear the
    whole list once.
    """

    def __init__(self, connector: EndpointConnector, *, period_s: float = SCRAPE_PERIOD_S,
                 history_s: float = HISTORY_S) -> None:
        self.connector = connector
        self.period_s = period_s
        self.history = History(history_s, period_s)
        self._scrapers: dict[str, EndpointScraper] = {}
        self._latest: list[EndpointServing] = []
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def latest(self) -> list[EndpointServing]:
        return list(self._latest)

    def last_samples(self, endpoint_id: str) -> dict | None:
        """The samples of an endpoint's newest Prometheus scrape (as read, for checks)."""
        scraper = self._scrapers.get(endpoint_id)
        if scraper is None or not scraper.history.scrapes:
            return None
        return scraper.history.scrapes[-1].samples

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def set_endpoints(self, endpoints: list[Endpoint]) -> None:
        wanted = {e.id: e for e in endpoints}
        for gone in [key for key in self._scrapers if key not in wanted]:
            del self._scrapers[gone]
            self.history.forget(gone)
        for key, endpoint in wanted.items():
            scraper = self._scrapers.get(key)
            if scraper is None:
                self._scrapers[key] = EndpointScraper(endpoint)
            else:
                scraper.endpoint = endpoint
        self._wake.set()

    async def scrape_all(self) -> list[EndpointServing]:
        scrapers = list(self._scrapers.values())
        results = list(await asyncio.gather(*(s.scrape(self.connector) for s in scrapers)))
        for result in results:
            if result.figures is not None:
                for metric, pick in CHARTED.items():
                    self.history.record((result.id, metric), result.figures.t,
                                        pick(result.figures))
        self._latest = results
        for listener in list(self._listeners):
            try:
                listener(results)
            except Exception:  # one broken listener must not stop the scrapes
                log.exception("serving listener failed")
        return results

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="serving-monitor")

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.scrape_all()
            except Exception:
                log.exception("serving scrape round failed")
            self._wake.clear()
            delay = max(0.1, self.period_s - (time.monotonic() - started))
            try:
                await within(self._wake.wait(), delay)
            except TimeoutError:
                pass

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
