"""A user's own memory: see everything the bot keeps about you, and delete it.

Callers: the user themself (a JWT whose ``sub`` is the user), the relay
(shared secret, acting for the Discord user who ran ``/memory``), or an admin.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel

from trollama.brain.api.admin_persona import PERSONA_ERRORS, Deleted, FactView, PathId
from trollama.brain.api.deps import CallerDep, ServicesDep
from trollama.brain.auth import Caller, CallerKind
from trollama.brain.persona.profiles import UserProfile
from trollama.brain.persona.relationships import Relationship

router = APIRouter(prefix="/api/users", tags=["your memory"])

NOT_YOURS_MESSAGE = "you can only see and delete your own memories"


class MemoryExport(BaseModel):
    """Everything the bot remembers about one user (facts without embeddings)."""

    user_id: str
    exported_at: float
    #: Every name the user was seen under; null when never seen.
    profile: UserProfile | None
    #: Every fact, superseded ones included (``superseded_by`` names the newer fact).
    facts: list[FactView]
    relationship: Relationship


def require_self_or_relay(caller: Caller, user_id: str) -> None:
    """403 unless the caller is the relay, an admin, or the user themself."""
    if caller.kind is CallerKind.RELAY or caller.is_admin or caller.user_id == user_id:
        return
    raise HTTPException(status.HTTP_403_FORBIDDEN, NOT_YOURS_MESSAGE)


@router.get("/{user_id}/memories")
async def export_memories(
    user_id: PathId, caller: CallerDep, services: ServicesDep
) -> MemoryExport:
    """Everything the bot keeps about the user: profile, memory facts, relationship."""
    require_self_or_relay(caller, user_id)
    persona = services.persona
    facts = await persona.facts.facts(user_id, include_superseded=True)
    return MemoryExport(
        user_id=user_id,
        exported_at=time.time(),
        profile=await persona.profiles.get(user_id),
        facts=[FactView.of(fact) for fact in facts],
        relationship=await persona.relationships.get(user_id),
    )


@router.delete("/{user_id}/memories/{fact_id}", responses=PERSONA_ERRORS)
async def forget_memory(
    user_id: PathId, fact_id: str, caller: CallerDep, services: ServicesDep
) -> Deleted:
    """Forget one fact about the user (404 when there is no such fact)."""
    require_self_or_relay(caller, user_id)
    await services.persona.facts.delete(user_id, fact_id)
    return Deleted(deleted=1)


@router.delete("/{user_id}/memories")
async def forget_all_memories(user_id: PathId, caller: CallerDep, services: ServicesDep) -> Deleted:
    """Forget every fact about the user; how many there were."""
    require_self_or_relay(caller, user_id)
    return Deleted(deleted=await services.persona.facts.delete_all(user_id))
