"""Figures beside the status tiles: queue depth, tokens, store stats, log cleanup.

* the brain's queue depth and token counts come from its Prometheus text at
  ``/metrics`` on the same origin as its health URL;
* the logging service's cleanup status comes from its health JSON;
* store stats are today's sample counts, open alerts and a store ping.

Every source may be missing or down: its figures are then None, never an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, Field

from trollama.monitor.samples import SampleRepository
from trollama.monitor.targets import Target

#: The target name whose ``/metrics`` feeds the queue and token figures.
BRAIN_TARGET = "brain"
#: The target name whose health JSON carries the log cleanup status.
LOGGING_TARGET = "logging"
#: Most token rows shown (one per route, model and direction).
MAX_TOKEN_ROWS = 50
#: Longest metrics text read, in bytes.
MAX_METRICS_BYTES = 2 * 1024 * 1024
QUEUE_DEPTH_METRIC = "trollama_queue_depth"
TOKENS_METRIC = "trollama_tokens_total"

log = logging.getLogger(__name__)


class TokenRow(BaseModel):
    route: str
    model: str
    direction: str
    tokens: float


class BrainFigures(BaseModel):
    reachable: bool = False
    queue_depth: float | None = None
    tokens: list[TokenRow] = Field(default_factory=list)


class CleanupFigures(BaseModel):
    reachable: bool = False
    last_cleanup_at: Any = None
    files_deleted: int | None = None
    fallback_active: bool | None = None


class StoreFigures(BaseModel):
    reachable: bool = False
    samples_today: dict[str, int] = Field(default_factory=dict)
    open_alerts: int = 0


class Extras(BaseModel):
    """Everything ``GET /api/extras`` returns."""

    collected_at: float | None = None
    brain: BrainFigures = Field(default_factory=BrainFigures)
    logging: CleanupFigures = Field(default_factory=CleanupFigures)
    store: StoreFigures = Field(default_factory=StoreFigures)


def metrics_url(health_url: str) -> str:
    """The ``/metrics`` URL on the same origin as a health URL."""
    parts = urlsplit(health_url)
    return urlunsplit((parts.scheme, parts.netloc, "/metrics", "", ""))


def parse_brain_metrics(text: str) -> BrainFigures:
    """Queue depth (summed over label sets) and tokens per route/model/direction."""
    depth: float | None = None
    rows: list[TokenRow] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == QUEUE_DEPTH_METRIC:
                depth = (depth or 0.0) + sample.value
            elif sample.name == TOKENS_METRIC and len(rows) < MAX_TOKEN_ROWS:
                rows.append(_token_row(sample.labels, sample.value))
    return BrainFigures(reachable=True, queue_depth=depth, tokens=rows)


def _token_row(labels: Mapping[str, str], value: float) -> TokenRow:
    return TokenRow(
        route=labels.get("route", "?"),
        model=labels.get("model", "?"),
        direction=labels.get("direction", "?"),
        tokens=value,
    )


def parse_cleanup(report: Any) -> CleanupFigures:
    """The cleanup counters from a logging-service health report (``info`` or top level)."""
    if not isinstance(report, dict):
        return CleanupFigures(reachable=True)
    info = report.get("info")
    source: dict[str, Any] = info if isinstance(info, dict) else {}
    pick = {k: source.get(k, report.get(k)) for k in CleanupFigures.model_fields}
    files = pick.get("files_deleted")
    fallback = pick.get("fallback_active")
    return CleanupFigures(
        reachable=True,
        last_cleanup_at=pick.get("last_cleanup_at"),
        files_deleted=files if isinstance(files, int) and not isinstance(files, bool) else None,
        fallback_active=fallback if isinstance(fallback, bool) else None,
    )


class ExtrasCollector:
    """Gathers the extras once per poll round and keeps the latest."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        targets: Sequence[Target],
        samples: SampleRepository,
        store_ping: Callable[[], Awaitable[bool]],
        open_alerts: Callable[[], int],
        *,
        timeout: float,
    ) -> None:
        self._client = client
        self._urls = {t.name: t.url for t in targets}
        self._samples = samples
        self._store_ping = store_ping
        self._open_alerts = open_alerts
        self._timeout = timeout
        self.latest = Extras()

    async def collect(self) -> Extras:
        """Fetch every figure concurrently; each source is bounded by the timeout."""
        brain, cleanup, store = await asyncio.gather(self._brain(), self._cleanup(), self._store())
        self.latest = Extras(collected_at=time.time(), brain=brain, logging=cleanup, store=store)
        return self.latest

    async def _brain(self) -> BrainFigures:
        url = self._urls.get(BRAIN_TARGET)
        if url is None:
            return BrainFigures()
        text = await self._get_text(metrics_url(url))
        try:
            return parse_brain_metrics(text) if text is not None else BrainFigures()
        except ValueError:
            return BrainFigures(reachable=True)

    async def _cleanup(self) -> CleanupFigures:
        url = self._urls.get(LOGGING_TARGET)
        text = await self._get_text(url) if url is not None else None
        if text is None:
            return CleanupFigures()
        try:
            return parse_cleanup(json.loads(text))
        except ValueError:
            return CleanupFigures(reachable=True)

    async def _store(self) -> StoreFigures:
        try:
            async with asyncio.timeout(self._timeout):
                ok = bool(await self._store_ping())
                counts = {n: await self._samples.count_today(n) for n in self._urls}
        except Exception:  # a store failure is a figure, not a crash
            return StoreFigures()
        return StoreFigures(reachable=ok, samples_today=counts, open_alerts=self._open_alerts())

    async def _get_text(self, url: str) -> str | None:
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.get(url)
        except (TimeoutError, httpx.HTTPError):
            return None
        if response.status_code not in (200, 503) or len(response.content) > MAX_METRICS_BYTES:
            return None
        return response.text
