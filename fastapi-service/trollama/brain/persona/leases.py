"""Job leases: one brain at a time runs each background job.

Layout in :attr:`Table.JOB_LEASES`:

* ``lease`` / ``<job>`` — who holds the job (``holder``) and until when
  (``lease_until``, epoch seconds). Taken with a conditional put that holds
  only when the lease is free, expired, or already the taker's; renewed while
  the job runs; deleted at the end.
* ``done`` / ``<job>`` — the job's last completed run (``last_run_day``,
  ``last_run_at``), so two brains, or a restart, never run the same day's job
  twice.

Lease times come from each brain's wall clock: brains sharing a store need
clocks within a few seconds of each other (NTP), far less than a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from trollama.common.store.base import ConditionFailed, ItemStore, StoreError, Table
from trollama.common.store.conditions import Eq, Lt, NotExists, Or
from trollama.common.tasks import cancel_and_wait

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds a lease lasts unless renewed.
DEFAULT_LEASE_SECONDS = 120.0
#: Renewals per lease period (renewing at a third leaves two chances to succeed).
RENEWALS_PER_LEASE = 3

_LEASE_PK = "lease"
_DONE_PK = "done"


class LeaseBusy(Exception):
    """Another brain holds the job's lease."""


class LeaseLost(Exception):
    """The lease was taken over while the job ran; the job was stopped."""


@dataclass(frozen=True)
class JobRecord:
    """A job's last completed run."""

    job: str
    last_run_at: float
    last_run_day: str | None


class JobLeases:
    """Leases and run records of the background jobs, held as ``holder``."""

    def __init__(
        self, store: ItemStore, *, holder: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self.holder = holder
        self._clock = clock

    async def acquire(self, job: str, seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
        """Take (or extend) the lease on ``job``; False when another holder has it."""
        now = self._clock()
        free_or_mine = Or([NotExists(), Lt("lease_until", now), Eq("holder", self.holder)])
        item = {"pk": _LEASE_PK, "sk": job, "holder": self.holder, "lease_until": now + seconds}
        try:
            await self._store.put(Table.JOB_LEASES, item, condition=free_or_mine)
        except ConditionFailed:
            return False
        return True

    async def renew(self, job: str, seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
        """Extend a lease this holder has; False when it was lost."""
        try:
            await self._store.update(
                Table.JOB_LEASES,
                _LEASE_PK,
                job,
                set={"lease_until": self._clock() + seconds},
                condition=Eq("holder", self.holder),
            )
        except ConditionFailed:
            return False
        return True

    async def release(self, job: str) -> None:
        """Give the lease up (nothing happens when another holder has it)."""
        with contextlib.suppress(ConditionFailed):
            await self._store.delete(
                Table.JOB_LEASES, _LEASE_PK, job, condition=Eq("holder", self.holder)
            )

    async def holder_of(self, job: str) -> str | None:
        """Who holds an unexpired lease on ``job`` now."""
        item = await self._store.get(Table.JOB_LEASES, _LEASE_PK, job)
        if item is None or float(item["lease_until"]) < self._clock():
            return None
        return str(item["holder"])

    async def last_run(self, job: str) -> JobRecord | None:
        item = await self._store.get(Table.JOB_LEASES, _DONE_PK, job)
        if item is None:
            return None
        day = item.get("last_run_day")
        return JobRecord(job, float(item["last_run_at"]), str(day) if day else None)

    async def record_run(self, job: str, *, day: str | None = None) -> None:
        """Record a completed run (``day``: the daily run it was, ``YYYY-MM-DD``)."""
        item: dict[str, object] = {"pk": _DONE_PK, "sk": job, "last_run_at": self._clock()}
        if day is not None:
            item["last_run_day"] = day
        await self._store.put(Table.JOB_LEASES, item)

    async def run_exclusive(
        self,
        job: str,
        work: Callable[[], Awaitable[T]],
        *,
        seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> T:
        """Run ``work`` holding the lease on ``job``, renewing it meanwhile.

        Raises :class:`LeaseBusy` when another brain holds it, and
        :class:`LeaseLost` (after cancelling ``work``) when it is taken over."""
        if not await self.acquire(job, seconds):
            raise LeaseBusy(f"another brain is running {job!r}")
        task = asyncio.ensure_future(work())
        lost = asyncio.Event()
        renewer = asyncio.create_task(self._keep(job, seconds, task, lost), name=f"lease-{job}")
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if lost.is_set() and current is not None and not current.cancelling():
                raise LeaseLost(f"the lease on {job!r} was lost while it ran") from None
            raise
        finally:
            await cancel_and_wait(renewer)
            with contextlib.suppress(StoreError):
                await self.release(job)

    async def _keep(
        self, job: str, seconds: float, task: asyncio.Future[Any], lost: asyncio.Event
    ) -> None:
        """Renew until ``task`` ends; cancel it if the lease goes to another holder."""
        while not task.done():
            await asyncio.sleep(seconds / RENEWALS_PER_LEASE)
            try:
                renewed = await self.renew(job, seconds)
            except StoreError:
                log.warning("renewing the lease on %s failed; trying again", job, exc_info=True)
                continue
            if not renewed:
                log.error("lost the lease on %s; stopping the job", job)
                lost.set()
                task.cancel()
                return
