"""REST endpoints for the relay's community features: the moderation audit log and polls.

Callers: the relay (shared secret) or an admin (JWT).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from trollama.brain.api.deps import ServicesDep, require_relay_or_admin
from trollama.brain.api.schemas import ErrorResponse
from trollama.brain.community.audit import (
    DEFAULT_AUDIT_PAGE,
    MAX_AUDIT_PAGE,
    AuditEntry,
    AuditEntryIn,
    AuditLog,
    AuditPage,
)
from trollama.brain.community.polls import (
    MAX_OPEN_POLLS_LISTED,
    InvalidVote,
    Poll,
    PollClosed,
    PollCreate,
    PollList,
    PollNotFound,
    PollResult,
    PollStore,
    TooManyOpenPolls,
    VoteConflict,
    VoteIn,
    VoteOutcome,
)
from trollama.common.protocol import Identifier

router = APIRouter(prefix="/api", dependencies=[Depends(require_relay_or_admin)])

#: HTTP status for each poll error.
POLL_ERROR_STATUS: dict[type[Exception], int] = {
    PollNotFound: status.HTTP_404_NOT_FOUND,
    PollClosed: status.HTTP_409_CONFLICT,
    VoteConflict: status.HTTP_429_TOO_MANY_REQUESTS,
    TooManyOpenPolls: status.HTTP_409_CONFLICT,
    InvalidVote: status.HTTP_422_UNPROCESSABLE_CONTENT,
}
POLL_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "unknown poll"},
    409: {"model": ErrorResponse, "description": "closed, or too many open polls"},
    429: {"model": ErrorResponse, "description": "a user's votes raced each other; try again"},
}


def _audit_log(services: ServicesDep) -> AuditLog:
    return AuditLog(services.store)


def _polls(services: ServicesDep) -> PollStore:
    return PollStore(services.store)


AuditLogDep = Annotated[AuditLog, Depends(_audit_log)]
PollsDep = Annotated[PollStore, Depends(_polls)]


# ------------------------------------------------------------ moderation audit log


@router.post("/moderation/audit")
async def record_audit_entry(entry: AuditEntryIn, audit: AuditLogDep) -> AuditEntry:
    """Log a moderation attempt (done, refused or failed); a retry with the same
    ``entry_id`` and ``at`` stores nothing new."""
    return await audit.record(entry)


@router.get("/moderation/audit")
async def audit_entries(
    guild_id: Identifier,
    audit: AuditLogDep,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE)] = DEFAULT_AUDIT_PAGE,
) -> AuditPage:
    """A guild's newest moderation entries, newest first."""
    return AuditPage(guild_id=guild_id, entries=await audit.recent(guild_id, limit))


# ------------------------------------------------------------ polls


@router.post("/polls", responses=POLL_ERRORS)
async def create_poll(body: PollCreate, polls: PollsDep) -> Poll:
    """Open a poll whose message is already posted."""
    return await polls.create(body)


@router.get("/polls")
async def list_polls(
    polls: PollsDep,
    open: bool = True,
    guild_id: Identifier | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_OPEN_POLLS_LISTED)] = MAX_OPEN_POLLS_LISTED,
) -> PollList:
    """Open polls, soonest deadline first (a restarted relay re-arms their timers).

    Closed polls are not listed; read one with ``GET /api/polls/{poll_id}``."""
    if not open:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "only open polls can be listed (open=true)"
        )
    return PollList(polls=await polls.open_polls(guild_id=guild_id, limit=limit))


@router.get("/polls/{poll_id}", responses=POLL_ERRORS)
async def get_poll(poll_id: Identifier, polls: PollsDep) -> Poll:
    """A poll with its vote counts so far."""
    return await polls.get(poll_id)


@router.post("/polls/{poll_id}/votes", responses=POLL_ERRORS)
async def vote(poll_id: Identifier, body: VoteIn, polls: PollsDep) -> VoteOutcome:
    """Count a user's vote; a second vote replaces the first (``previous`` says which)."""
    return await polls.vote(poll_id, body.user_id, body.option)


@router.post("/polls/{poll_id}/close", responses=POLL_ERRORS)
async def close_poll(poll_id: Identifier, polls: PollsDep) -> PollResult:
    """Close the poll and return its result (idempotent: the same result every time)."""
    return await polls.close(poll_id)
