"""Alerts: raised when a target goes down or degrades, resolved when it recovers.

Layout in :data:`Table.ALERTS`:

* open alerts: partition ``open``, sort key the target name — at most one open
  alert per target, enforced by the store (a conditional put), so a restarted
  or second monitor never duplicates one;
* history: partition ``history``, sort key ``<started ms>#<id>``, written when
  an alert resolves (one transaction with the delete of the open item) and
  kept :data:`HISTORY_TTL_SECONDS`.

:class:`AlertEngine` is the per-target state machine; it reads the open
alerts back from the store when it starts.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import BaseModel

from trollama.common.store.base import ConditionFailed, Delete, ItemStore, Put, Table
from trollama.common.store.conditions import Eq, NotExists
from trollama.monitor.notifier import AlertEvent, WebhookNotifier
from trollama.monitor.samples import SK_DIGITS, Sample, State

#: How long resolved alerts are kept, in seconds (30 days).
HISTORY_TTL_SECONDS = 30 * 24 * 3600
#: Most alerts one listing returns.
MAX_ALERTS_LISTED = 200
OPEN_PK = "open"
HISTORY_PK = "history"

log = logging.getLogger(__name__)


class Alert(BaseModel):
    """One alert: open while ``resolved_at`` is None."""

    id: str
    target: str
    kind: str
    started_at: float
    message: str
    resolved_at: float | None = None


class AlertRepository:
    """The only code touching the alerts table."""

    def __init__(self, store: ItemStore) -> None:
        self._store = store

    async def open_alert(self, alert: Alert) -> bool:
        """Store a new open alert; False when the target already has one."""
        item = {"pk": OPEN_PK, "sk": alert.target, **alert.model_dump()}
        try:
            await self._store.put(Table.ALERTS, item, condition=NotExists())
        except ConditionFailed:
            return False
        return True

    async def resolve(self, alert: Alert) -> None:
        """Move the (already resolved) alert from open to history atomically."""
        history = {
            "pk": HISTORY_PK,
            "sk": f"{round(alert.started_at * 1000):0{SK_DIGITS}d}#{alert.id}",
            **alert.model_dump(),
            "expires_at": int((alert.resolved_at or alert.started_at) + HISTORY_TTL_SECONDS),
        }
        try:
            await self._store.transact(
                [
                    Delete(Table.ALERTS, OPEN_PK, alert.target, condition=Eq("id", alert.id)),
                    Put(Table.ALERTS, history),
                ]
            )
        except ConditionFailed:
            log.info("alert %s for %s was already resolved elsewhere", alert.id, alert.target)

    async def open_alerts(self) -> list[Alert]:
        """Every open alert, by target name."""
        page = await self._store.query(Table.ALERTS, OPEN_PK, limit=MAX_ALERTS_LISTED)
        return [_alert(item) for item in page.items]

    async def history(self, limit: int) -> list[Alert]:
        """Resolved alerts, newest first."""
        page = await self._store.query(
            Table.ALERTS, HISTORY_PK, limit=min(limit, MAX_ALERTS_LISTED), descending=True
        )
        return [_alert(item) for item in page.items]

    async def listing(self, limit: int) -> list[Alert]:
        """Open alerts (newest first), then the history, ``limit`` in all."""
        limit = max(1, min(limit, MAX_ALERTS_LISTED))
        opened = sorted(await self.open_alerts(), key=lambda a: a.started_at, reverse=True)
        rest = limit - len(opened)
        return (opened + (await self.history(rest) if rest > 0 else []))[:limit]


def _alert(item: dict[str, object]) -> Alert:
    fields = {k: v for k, v in item.items() if k in Alert.model_fields}
    return Alert.model_validate(fields)


def iso(at: float) -> str:
    """Epoch seconds as ISO 8601 UTC."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


class AlertEngine:
    """Per-target state machine: ok → (N bad samples) → alert open → (up) → resolved."""

    def __init__(
        self,
        repo: AlertRepository,
        notifier: WebhookNotifier,
        *,
        raise_after: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repo = repo
        self._notifier = notifier
        self._raise_after = raise_after
        self._clock = clock
        self._open: dict[str, Alert] = {}
        self._bad_streak: dict[str, int] = {}

    async def load(self) -> None:
        """Read the open alerts back from the store (after a restart)."""
        self._open = {a.target: a for a in await self._repo.open_alerts()}

    def open_for(self, target: str) -> Alert | None:
        """The target's open alert, if any."""
        return self._open.get(target)

    @property
    def open_count(self) -> int:
        """How many alerts are open."""
        return len(self._open)

    async def observe(self, sample: Sample) -> None:
        """Feed one sample: may raise, change or resolve the target's alert."""
        current = self._open.get(sample.target)
        if sample.state is State.UP:
            self._bad_streak[sample.target] = 0
            if current is not None:
                await self._resolve(current, f"{sample.target} recovered")
            return
        streak = self._bad_streak.get(sample.target, 0) + 1
        self._bad_streak[sample.target] = streak
        if current is not None and current.kind == sample.state.value:
            return
        if streak < self._raise_after:
            return
        if current is not None:
            await self._resolve(current, f"{sample.target} is now {sample.state.value}")
        await self._raise(sample)

    async def _raise(self, sample: Sample) -> None:
        alert = Alert(
            id=uuid.uuid4().hex,
            target=sample.target,
            kind=sample.state.value,
            started_at=sample.at,
            message=f"{sample.target} is {sample.state.value}: {sample.reason}",
        )
        if not await self._repo.open_alert(alert):
            await self.load()  # another monitor (or a past run) holds it
            return
        self._open[alert.target] = alert
        log.warning("alert raised: %s", alert.message)
        self._notifier.notify(_event(alert, "raised", alert.started_at))

    async def _resolve(self, alert: Alert, message: str) -> None:
        resolved = alert.model_copy(update={"resolved_at": self._clock()})
        await self._repo.resolve(resolved)
        self._open.pop(alert.target, None)
        log.info("alert resolved: %s", message)
        assert resolved.resolved_at is not None
        self._notifier.notify(
            AlertEvent(
                target=alert.target, state="resolved", message=message, at=iso(resolved.resolved_at)
            )
        )


def _event(alert: Alert, state: str, at: float) -> AlertEvent:
    return AlertEvent.model_validate(
        {"target": alert.target, "state": state, "message": alert.message, "at": iso(at)}
    )
