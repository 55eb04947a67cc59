"""The persona's background jobs, and the schedule that runs them.

* **daily**, at ``consolidation_hour_utc``: mood drift → memory consolidation
  → dynamic status;
* **proactive**, every ``proactive_interval_minutes``: one proactive round.

Every brain with ``background_jobs_enabled`` looks at the schedule every
:data:`TICK_SECONDS`; a lease in the store (:mod:`.leases`) lets one brain
run each job, and the recorded last run (``last_run_day`` for the daily job)
keeps a second brain, or a restart, from running the same day's job twice.
Each job can also be run by hand (:meth:`PersonaJobs.run`, and
``POST /api/admin/jobs/{name}/run``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, get_args

from trollama.brain.admission import Admission
from trollama.brain.backends.base import ModelBackend
from trollama.brain.persona.bundle import Persona
from trollama.brain.persona.consolidation import (
    DEFAULT_CONCURRENCY,
    ConsolidationReport,
    Consolidator,
)
from trollama.brain.persona.extraction import (
    DEFAULT_MODEL_TIMEOUT_SECONDS,
    FactExtractor,
    JobModel,
)
from trollama.brain.persona.leases import JobLeases, JobRecord, LeaseBusy
from trollama.brain.persona.mood import Mood, drift_mood
from trollama.brain.persona.outbox import Outbox
from trollama.brain.persona.proactive import ProactiveEngagement, ProactiveReport
from trollama.brain.persona.quiet_hours import QuietHours, quiet_hours_or_none
from trollama.brain.persona.status import DynamicStatus, StatusReport
from trollama.brain.settings import BrainSettings
from trollama.common.store.base import ItemStore
from trollama.common.tasks import cancel_and_wait

log = logging.getLogger(__name__)

T = TypeVar("T")
JobName = Literal["daily", "mood", "consolidation", "status", "proactive"]
JOB_NAMES: tuple[JobName, ...] = get_args(JobName)

#: Seconds between two looks at the schedule.
TICK_SECONDS = 30.0
#: Seconds after start before the first look (the brain settles first).
STARTUP_DELAY_SECONDS = 60.0
#: Seconds before a daily run that failed is tried again.
RETRY_SECONDS = 900.0
#: Seconds a job's lease lasts between renewals.
JOB_LEASE_SECONDS = 120.0


@dataclass(frozen=True)
class JobSchedule:
    consolidation_hour_utc: int = 4
    proactive_interval_seconds: float = 1800.0
    proactive_chance: float = 0.10
    quiet_hours: QuietHours | None = None

    @classmethod
    def from_settings(cls, settings: BrainSettings) -> JobSchedule:
        """The schedule of the settings (invalid quiet hours are logged and ignored)."""
        return cls(
            consolidation_hour_utc=settings.consolidation_hour_utc,
            proactive_interval_seconds=settings.proactive_interval_minutes * 60,
            proactive_chance=settings.proactive_chance,
            quiet_hours=quiet_hours_or_none(settings.quiet_hours_utc),
        )


def utc_day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


class PersonaJobs:
    """Runs the persona's background jobs on a schedule, or on demand."""

    def __init__(
        self,
        persona: Persona,
        store: ItemStore,
        *,
        backend_for: Callable[[str], ModelBackend],
        summarization_model: str,
        admission: Admission,
        outbox: Outbox,
        schedule: JobSchedule,
        node_id: str,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        model_timeout_seconds: float = DEFAULT_MODEL_TIMEOUT_SECONDS,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.persona = persona
        self.outbox = outbox
        self.schedule = schedule
        self.leases = JobLeases(store, holder=f"{node_id}/{secrets.token_hex(4)}", clock=clock)
        self._clock = clock
        self._rng = rng or random.Random()
        self._sleep = sleep
        model = JobModel(backend_for, summarization_model, timeout_seconds=model_timeout_seconds)
        self.consolidator = Consolidator(
            persona, store, FactExtractor(model), concurrency=concurrency, clock=clock
        )
        self.status = DynamicStatus(persona, model, outbox)
        self.proactive = ProactiveEngagement(
            persona,
            model,
            outbox,
            admission,
            chance=schedule.proactive_chance,
            quiet_hours=schedule.quiet_hours,
            rng=self._rng,
            clock=clock,
        )
        self._task: asyncio.Task[None] | None = None
        self._retry_daily_after = 0.0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start looking at the schedule (after :data:`STARTUP_DELAY_SECONDS`)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run_forever(), name="persona-jobs")

    async def stop(self) -> None:
        """Stop the schedule; a job cut short resumes at its next run."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run_forever(self) -> None:
        await self._sleep(STARTUP_DELAY_SECONDS)
        while True:
            try:
                await self.tick()
            except Exception:  # a store hiccup costs one tick, not the schedule
                log.warning("background jobs: tick failed", exc_info=True)
            await self._sleep(TICK_SECONDS)

    # ------------------------------------------------------------------ schedule
    async def tick(self) -> list[JobName]:
        """Run whatever is due now; the names of the jobs that ran."""
        ran: list[JobName] = []
        day = self.due_day()
        if (
            day is not None
            and self._clock() >= self._retry_daily_after
            and await self._scheduled(
                "daily", lambda: self._daily_pending(day), lambda: self._daily_run(day)
            )
        ):
            ran.append("daily")
        proactive = self._recorded("proactive", self.proactive.run_round)
        if await self._scheduled("proactive", self._proactive_pending, proactive):
            ran.append("proactive")
        return ran

    def due_day(self) -> str | None:
        """Today (UTC) once the consolidation hour has come, else None."""
        now = self._clock()
        hour = datetime.fromtimestamp(now, UTC).hour
        return utc_day(now) if hour >= self.schedule.consolidation_hour_utc else None

    async def _daily_pending(self, day: str) -> bool:
        record = await self.leases.last_run("daily")
        return record is None or record.last_run_day != day

    async def _proactive_pending(self) -> bool:
        record = await self.leases.last_run("proactive")
        interval = self.schedule.proactive_interval_seconds
        return record is None or self._clock() - record.last_run_at >= interval

    async def _scheduled(
        self,
        job: JobName,
        pending: Callable[[], Awaitable[bool]],
        work: Callable[[], Awaitable[object]],
    ) -> bool:
        """Run ``work`` when ``pending`` says so, checked again under the lease
        (another brain may have just done it); True when it ran."""
        if not await pending():
            return False

        async def when_still_pending() -> bool:
            if not await pending():
                return False
            await work()
            return True

        try:
            return await self.leases.run_exclusive(
                job, when_still_pending, seconds=JOB_LEASE_SECONDS
            )
        except LeaseBusy:
            return False
        except Exception:
            log.exception("background job %s failed", job)
            if job == "daily":
                self._retry_daily_after = self._clock() + RETRY_SECONDS
            return False

    # ------------------------------------------------------------------ the jobs
    async def run(self, name: JobName) -> dict[str, Any]:
        """Run one job now (an admin's request); what it did.

        Raises :class:`LeaseBusy` when another brain is running it."""
        if name == "daily":
            return await self.run_daily()
        if name == "mood":
            return _mood_dict(await self.run_mood_drift())
        if name == "consolidation":
            return (await self.run_consolidation()).as_dict()
        if name == "status":
            return (await self.run_status()).as_dict()
        return (await self.run_proactive()).as_dict()

    async def run_daily(self, day: str | None = None) -> dict[str, Any]:
        """Mood drift, consolidation and status, recorded as ``day``'s run (default today)."""
        return await self._exclusive("daily", lambda: self._daily_run(day))

    async def _daily_run(self, day: str | None) -> dict[str, Any]:
        day = day or utc_day(self._clock())
        mood = await self.run_mood_drift(day)
        consolidation = await self.run_consolidation()
        status = await self.run_status()
        await self.leases.record_run("daily", day=day)
        return {
            "day": day,
            "mood": _mood_dict(mood),
            "consolidation": consolidation.as_dict(),
            "status": status.as_dict(),
        }

    async def run_mood_drift(self, day: str | None = None) -> Mood:
        """Drift the mood once for ``day`` (default today); again the same day is a no-op."""
        return await drift_mood(self.persona.state, day or utc_day(self._clock()), self._rng)

    async def run_consolidation(self) -> ConsolidationReport:
        """Consolidate every message logged before now (see :mod:`.consolidation`)."""
        return await self._exclusive("consolidation", self.consolidator.run)

    async def run_status(self) -> StatusReport:
        """Generate a new status and post it for the relay."""
        return await self._exclusive("status", self.status.refresh)

    async def run_proactive(self) -> ProactiveReport:
        """One proactive round over the enabled channels."""
        return await self._exclusive("proactive", self.proactive.run_round)

    async def _exclusive(self, job: JobName, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` under the job's lease (:class:`LeaseBusy` when another brain has it)."""
        if job != "daily":  # the daily run records its day itself
            work = self._recorded(job, work)
        return await self.leases.run_exclusive(job, work, seconds=JOB_LEASE_SECONDS)

    def _recorded(
        self, job: JobName, work: Callable[[], Awaitable[T]]
    ) -> Callable[[], Awaitable[T]]:
        """``work``, recording the job's completed run after it."""

        async def recorded() -> T:
            result = await work()
            await self.leases.record_run(job)
            return result

        return recorded

    async def last_runs(self) -> dict[JobName, JobRecord | None]:
        """Each job's last completed run."""
        return {name: await self.leases.last_run(name) for name in JOB_NAMES}


def _mood_dict(mood: Mood) -> dict[str, Any]:
    return {
        "anger": mood.anger,
        "energy": mood.energy,
        "cheer": mood.cheer,
        "date": mood.date,
        "described": mood.describe(),
    }
