"""REST for the relay outbox and the persona's background jobs.

* ``GET /api/relay/outbox`` / ``DELETE /api/relay/outbox/{id}`` — the relay
  (shared secret only) collects what the brain wants said or shown, and
  acknowledges each item once carried out.
* ``GET /api/admin/jobs`` and ``POST /api/admin/jobs/{name}/run`` — an admin
  (JWT with ``adm``) or the relay sees the jobs and runs one now.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Response, status
from pydantic import BaseModel

from trollama.brain.api.deps import AdminDep, CallerDep, ServicesDep, require_admin
from trollama.brain.api.schemas import ErrorResponse
from trollama.brain.auth import Caller, CallerKind
from trollama.brain.persona.jobs import JOB_NAMES, JobName, PersonaJobs
from trollama.brain.persona.leases import LeaseBusy
from trollama.brain.persona.outbox import (
    MAX_ITEM_ID_CHARS,
    MAX_OUTBOX_PAGE,
    Outbox,
    OutboxItem,
)
from trollama.brain.services import Services

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api")

#: Items returned by one outbox read unless the relay asks for another number.
DEFAULT_OUTBOX_PAGE = 20


class OutboxPage(BaseModel):
    items: list[OutboxItem]


class JobRun(BaseModel):
    job: JobName
    result: dict[str, Any]


class JobState(BaseModel):
    job: JobName
    last_run_at: float | None
    last_run_day: str | None
    #: The brain running it right now, if any.
    running_on: str | None


class JobList(BaseModel):
    jobs: list[JobState]


def require_relay(caller: CallerDep) -> Caller:
    if caller.kind is not CallerKind.RELAY:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only the relay collects the outbox")
    return caller


def _outbox(services: ServicesDep) -> Outbox:
    return Outbox(services.store)


def _jobs(services: Services) -> PersonaJobs:
    if services.jobs is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "background jobs are not set up")
    return services.jobs


OutboxDep = Annotated[Outbox, Depends(_outbox)]
RelayOnly = [Depends(require_relay)]


@router.get("/relay/outbox", dependencies=RelayOnly)
async def list_outbox(
    outbox: OutboxDep,
    limit: Annotated[int, Query(ge=1, le=MAX_OUTBOX_PAGE)] = DEFAULT_OUTBOX_PAGE,
) -> OutboxPage:
    """Items waiting for the relay, oldest first."""
    return OutboxPage(items=await outbox.pending(limit))


@router.delete(
    "/relay/outbox/{item_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=RelayOnly
)
async def ack_outbox(
    item_id: Annotated[str, Path(min_length=1, max_length=MAX_ITEM_ID_CHARS)], outbox: OutboxDep
) -> Response:
    """The relay carried the item out (an unknown id is fine: acknowledging is idempotent)."""
    await outbox.ack(item_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/admin/jobs", dependencies=[Depends(require_admin)])
async def list_jobs(services: ServicesDep) -> JobList:
    """Each background job's last completed run, and where it runs now."""
    jobs = _jobs(services)
    states = []
    for name in JOB_NAMES:
        record = await jobs.leases.last_run(name)
        states.append(
            JobState(
                job=name,
                last_run_at=record.last_run_at if record else None,
                last_run_day=record.last_run_day if record else None,
                running_on=await jobs.leases.holder_of(name),
            )
        )
    return JobList(jobs=states)


@router.post(
    "/admin/jobs/{name}/run",
    responses={
        404: {"model": ErrorResponse, "description": "no such job"},
        409: {"model": ErrorResponse, "description": "the job is running elsewhere"},
    },
)
async def run_job(
    name: Annotated[str, Path(max_length=32)],
    services: ServicesDep,
    caller: AdminDep,
    x_acting_user: Annotated[str | None, Header(max_length=64)] = None,
) -> JobRun:
    """Run a background job now and return what it did (``daily`` is mood drift,
    consolidation and status together)."""
    job = _job_name(name)
    jobs = _jobs(services)
    log.info("job %s run by hand", name, extra={"acting_user": x_acting_user or caller.user_id})
    try:
        result = await jobs.run(job)
    except LeaseBusy as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return JobRun(job=job, result=result)


def _job_name(name: str) -> JobName:
    for job in JOB_NAMES:
        if job == name:
            return job
    raise HTTPException(
        status.HTTP_404_NOT_FOUND, f"no job {name!r}; the jobs are: {', '.join(JOB_NAMES)}"
    )
