"""Alert webhook: POST ``{target, state, message, at}`` as JSON, never blocking.

Each notification is sent in its own background task with a timeout; a
failure is logged (without the URL, which often embeds a token) and dropped.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

import httpx
from pydantic import BaseModel

#: Longest one webhook POST may take, in seconds.
WEBHOOK_TIMEOUT_SECONDS = 5.0
#: Most webhook POSTs in flight at once; more are dropped (and logged).
MAX_PENDING_WEBHOOKS = 100

log = logging.getLogger(__name__)


class AlertEvent(BaseModel):
    """The JSON body of a webhook call; ``at`` is ISO 8601 UTC."""

    target: str
    state: Literal["raised", "resolved"]
    message: str
    at: str


class WebhookNotifier:
    """Sends alert events to one URL; a blank URL turns it off."""

    def __init__(
        self, client: httpx.AsyncClient, url: str, *, timeout: float = WEBHOOK_TIMEOUT_SECONDS
    ) -> None:
        self._client = client
        self._url = url
        self._timeout = timeout
        self._pending: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed = 0

    def notify(self, event: AlertEvent) -> None:
        """Send ``event`` in the background; returns at once."""
        if not self._url:
            return
        if len(self._pending) >= MAX_PENDING_WEBHOOKS:
            log.warning(
                "alert webhook backlog full; dropped %s event for %s", event.state, event.target
            )
            return
        task = asyncio.create_task(self._send(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for the events in flight (used at shutdown and by tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def _send(self, event: AlertEvent) -> None:
        try:
            response = await self._client.post(
                self._url, json=event.model_dump(), timeout=self._timeout
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            self.failed += 1
            log.warning("alert webhook failed for %s: %s", event.target, type(exc).__name__)
            return
        self.sent += 1
