"""Admin REST for the bot's persona and its memory of people.

Identity entries, any user's memory facts, relationship metrics and profile,
global state keys and channel settings. Callers: an admin (JWT with
``adm: true``) or the relay (shared secret; it checks Discord admin rights
itself and names the Discord user in ``X-Acting-User``, which is logged with
every change). Changes apply to the very next reply: nothing is cached.

Errors: an unknown entry, user, fact or key is a 404, a refused value a 422,
a caller without admin rights a 403; every ``detail`` is a sentence to show.
Memory facts never leave the brain with their embedding.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, status
from pydantic import BaseModel, ConfigDict, Field

from trollama.brain.api.deps import AdminDep, ServicesDep, require_admin
from trollama.brain.api.schemas import ErrorResponse
from trollama.brain.persona.bundle import Persona
from trollama.brain.persona.channels import ChannelSettings
from trollama.brain.persona.embedder import EmbeddingError
from trollama.brain.persona.errors import InvalidEntry, UnknownEntry
from trollama.brain.persona.facts import MemoryFact, checked_fact, new_fact
from trollama.brain.persona.identity import IdentityEntry, IdentityKind
from trollama.brain.persona.profiles import UserProfile
from trollama.brain.persona.relationships import RANGES, Relationship, RelationshipChange
from trollama.brain.persona.state import StateValue
from trollama.brain.persona.vectors import encode
from trollama.common.protocol import MAX_ID_CHARS

log = logging.getLogger(__name__)

#: Header the relay names the acting Discord user in (kept in the log, never trusted for rights).
ACTING_USER_HEADER = "X-Acting-User"
#: Longest text accepted in a request body before the repositories' own checks, in
#: characters (a fact is cut to MAX_FACT_CHARS after whitespace is collapsed).
MAX_INPUT_CHARS = 4000
PERSONA_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "unknown user, entry, fact or key"},
    422: {"model": ErrorResponse, "description": "the value is refused"},
}
#: HTTP status of each persona error (PersonaError itself: 400).
PERSONA_ERROR_STATUS: dict[type[Exception], int] = {
    UnknownEntry: status.HTTP_404_NOT_FOUND,
    InvalidEntry: status.HTTP_422_UNPROCESSABLE_CONTENT,
}
NOT_EMBEDDED_NOTICE = "Stored without an embedding (the embedding model failed: {reason})."

router = APIRouter(
    prefix="/api/admin",
    tags=["admin: persona and memory"],
    dependencies=[Depends(require_admin)],
)
#: A Discord user id, or any other id a client names a user or channel by.
PathId = Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS)]


# ------------------------------------------------------------------ bodies


class FactView(BaseModel):
    """A memory fact as the API shows it (never its embedding)."""

    fact_id: str
    user_id: str
    fact: str
    category: str
    first_mentioned: float
    last_mentioned: float
    reference_count: int
    source_message_ids: list[str]
    superseded_by: str | None
    #: Whether the fact has an embedding (ranks by similarity in prompts).
    embedded: bool

    @classmethod
    def of(cls, fact: MemoryFact) -> FactView:
        body = fact.model_dump(exclude={"embedding", "embedding_model"})
        return cls(**body, embedded=fact.embedding is not None)


class FactList(BaseModel):
    user_id: str
    facts: list[FactView]


class FactSaved(BaseModel):
    """The fact as stored, and a notice when something was not as asked."""

    fact: FactView
    notice: str | None = None


class FactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fact: str = Field(max_length=MAX_INPUT_CHARS)
    category: str | None = Field(default=None, max_length=MAX_INPUT_CHARS)


class FactPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fact: str | None = Field(default=None, max_length=MAX_INPUT_CHARS)
    category: str | None = Field(default=None, max_length=MAX_INPUT_CHARS)


class Deleted(BaseModel):
    deleted: int


class IdentityList(BaseModel):
    entries: list[IdentityEntry]


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: IdentityKind
    text: str = Field(max_length=MAX_INPUT_CHARS)


class IdentityPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: IdentityKind | None = None
    text: str | None = Field(default=None, max_length=MAX_INPUT_CHARS)


class RelationshipPatch(BaseModel):
    """New values; unset ones keep theirs (ranges are checked with a clear message)."""

    model_config = ConfigDict(extra="forbid")

    anger: float | None = None
    rapport: float | None = None
    trust: float | None = None
    formality: float | None = None


class StateValues(BaseModel):
    values: dict[str, StateValue]


class StateEntry(BaseModel):
    key: str
    value: StateValue


class StateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: StateValue


class ChannelPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    log_opt_out: bool | None = None
    proactive: bool | None = None
    guild_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)


# ------------------------------------------------------------------ errors and helpers


def acting_user(
    caller: AdminDep,
    x_acting_user: Annotated[
        str | None, Header(alias=ACTING_USER_HEADER, max_length=MAX_ID_CHARS)
    ] = None,
) -> str:
    """Who is making the change, for the log: the Discord user the relay names, or the JWT's."""
    return x_acting_user or caller.user_id or str(caller.kind)


ActingUser = Annotated[str, Depends(acting_user)]


def _record(actor: str, action: str, target: str) -> None:
    log.info("admin change", extra={"by": actor, "action": action, "target": target})


async def require_known_user(persona: Persona, user_id: str) -> None:
    """UnknownEntry unless the bot has a profile, memories or a relationship with ``user_id``."""
    if await persona.profiles.get(user_id) is not None or await persona.facts.count(user_id):
        return
    if (await persona.relationships.get(user_id)).updated_at is None:
        raise UnknownEntry(f"no user {user_id!r} is known (never seen, nothing remembered)")


async def embedding_of(persona: Persona, text: str) -> tuple[str | None, str | None]:
    """The encoded embedding of ``text``, or None and a notice saying why there is none."""
    try:
        vector = await persona.embedder.embed_one(text)
    except EmbeddingError as exc:
        log.warning("storing a fact without an embedding: %s", exc)
        return None, NOT_EMBEDDED_NOTICE.format(reason=exc)
    return encode(vector), None


# ------------------------------------------------------------------ identity


@router.get("/identity")
async def list_identity(services: ServicesDep) -> IdentityList:
    """Every identity entry (traits, lore, facts & quirks), oldest first."""
    return IdentityList(entries=await services.persona.identity.entries())


@router.post("/identity", responses=PERSONA_ERRORS)
async def add_identity(body: IdentityIn, services: ServicesDep, actor: ActingUser) -> IdentityEntry:
    """Add an identity entry; the next reply carries it."""
    entry = await services.persona.identity.add(body.kind, body.text)
    _record(actor, "identity.add", entry.entry_id)
    return entry


@router.get("/identity/{entry_id}", responses=PERSONA_ERRORS)
async def get_identity(entry_id: str, services: ServicesDep) -> IdentityEntry:
    """One identity entry."""
    return await services.persona.identity.get(entry_id)


@router.patch("/identity/{entry_id}", responses=PERSONA_ERRORS)
async def edit_identity(
    entry_id: str, body: IdentityPatch, services: ServicesDep, actor: ActingUser
) -> IdentityEntry:
    """Change an entry's text or kind."""
    if body.text is None and body.kind is None:
        raise InvalidEntry("nothing to change: give text or kind")
    entry = await services.persona.identity.update(entry_id, text=body.text, kind=body.kind)
    _record(actor, "identity.edit", entry_id)
    return entry


@router.delete("/identity/{entry_id}", responses=PERSONA_ERRORS)
async def remove_identity(entry_id: str, services: ServicesDep, actor: ActingUser) -> Deleted:
    """Delete an identity entry."""
    await services.persona.identity.delete(entry_id)
    _record(actor, "identity.remove", entry_id)
    return Deleted(deleted=1)


# ------------------------------------------------------------------ a user's memories


@router.get("/users/{user_id}/memories", responses=PERSONA_ERRORS)
async def list_memories(
    user_id: PathId, services: ServicesDep, include_superseded: bool = False
) -> FactList:
    """The user's memory facts, oldest first (superseded ones on request)."""
    persona = services.persona
    await require_known_user(persona, user_id)
    facts = await persona.facts.facts(user_id, include_superseded=include_superseded)
    return FactList(user_id=user_id, facts=[FactView.of(f) for f in facts])


@router.post("/users/{user_id}/memories", responses=PERSONA_ERRORS)
async def add_memory(
    user_id: PathId, body: FactIn, services: ServicesDep, actor: ActingUser
) -> FactSaved:
    """Remember a fact about the user (embedded now; without an embedding if that fails)."""
    persona = services.persona
    await require_known_user(persona, user_id)
    text = checked_fact(body.fact)
    embedding, notice = await embedding_of(persona, text)
    fact = new_fact(
        user_id,
        text,
        at=time.time(),
        category=body.category,
        embedding=embedding,
        embedding_model=persona.embedder.label if embedding else None,
    )
    await persona.facts.add(fact)
    _record(actor, "memory.add", f"{user_id}/{fact.fact_id}")
    return FactSaved(fact=FactView.of(fact), notice=notice)


@router.delete("/users/{user_id}/memories", responses=PERSONA_ERRORS)
async def clear_memories(user_id: PathId, services: ServicesDep, actor: ActingUser) -> Deleted:
    """Forget every fact about the user (superseded ones too)."""
    persona = services.persona
    await require_known_user(persona, user_id)
    deleted = await persona.facts.delete_all(user_id)
    _record(actor, "memory.clear", user_id)
    return Deleted(deleted=deleted)


@router.get("/users/{user_id}/memories/{fact_id}", responses=PERSONA_ERRORS)
async def get_memory(user_id: PathId, fact_id: str, services: ServicesDep) -> FactView:
    """One memory fact."""
    return FactView.of(await services.persona.facts.get(user_id, fact_id))


@router.patch("/users/{user_id}/memories/{fact_id}", responses=PERSONA_ERRORS)
async def edit_memory(
    user_id: PathId, fact_id: str, body: FactPatch, services: ServicesDep, actor: ActingUser
) -> FactSaved:
    """Change a fact's text (embedded again) or category."""
    if body.fact is None and body.category is None:
        raise InvalidEntry("nothing to change: give fact or category")
    persona = services.persona
    await persona.facts.get(user_id, fact_id)  # a clear 404 before any embedding call
    text = checked_fact(body.fact) if body.fact is not None else None
    embedding, notice = await embedding_of(persona, text) if text else (None, None)
    fact = await persona.facts.edit(
        user_id,
        fact_id,
        text=text,
        category=body.category,
        embedding=embedding,
        embedding_model=persona.embedder.label if embedding else None,
    )
    _record(actor, "memory.edit", f"{user_id}/{fact_id}")
    return FactSaved(fact=FactView.of(fact), notice=notice)


@router.delete("/users/{user_id}/memories/{fact_id}", responses=PERSONA_ERRORS)
async def remove_memory(
    user_id: PathId, fact_id: str, services: ServicesDep, actor: ActingUser
) -> Deleted:
    """Forget one fact."""
    await services.persona.facts.delete(user_id, fact_id)
    _record(actor, "memory.remove", f"{user_id}/{fact_id}")
    return Deleted(deleted=1)


# ------------------------------------------------------------------ relationship and profile


@router.get("/users/{user_id}/relationship", responses=PERSONA_ERRORS)
async def get_relationship(user_id: PathId, services: ServicesDep) -> Relationship:
    """How the bot feels about the user (defaults for a user it never talked with)."""
    await require_known_user(services.persona, user_id)
    return await services.persona.relationships.get(user_id)


@router.patch("/users/{user_id}/relationship", responses=PERSONA_ERRORS)
async def set_relationship(
    user_id: PathId, body: RelationshipPatch, services: ServicesDep, actor: ActingUser
) -> Relationship:
    """Set anger, rapport, trust (0–10) or formality (−5…+5)."""
    await require_known_user(services.persona, user_id)
    relationship = await services.persona.relationships.set(user_id, _change(body))
    _record(actor, "relationship.set", user_id)
    return relationship


@router.delete("/users/{user_id}/relationship", responses=PERSONA_ERRORS)
async def reset_relationship(
    user_id: PathId, services: ServicesDep, actor: ActingUser
) -> Relationship:
    """Back to the defaults; returns them."""
    await require_known_user(services.persona, user_id)
    await services.persona.relationships.reset(user_id)
    _record(actor, "relationship.reset", user_id)
    return Relationship(user_id=user_id)


def _change(body: RelationshipPatch) -> RelationshipChange:
    for metric, value in body.model_dump(exclude_none=True).items():
        low, high, _ = RANGES[metric]
        if not low <= value <= high:
            raise InvalidEntry(f"{metric} must be between {low:g} and {high:g}, not {value:g}")
    return RelationshipChange.model_validate(body.model_dump(exclude_none=True))


@router.get("/users/{user_id}/profile", responses=PERSONA_ERRORS)
async def get_profile(user_id: PathId, services: ServicesDep) -> UserProfile:
    """The user's profile: every name they were seen under, and when."""
    return await services.persona.profiles.require(user_id)


# ------------------------------------------------------------------ global state


@router.get("/state")
async def list_state(services: ServicesDep) -> StateValues:
    """Every global state key and its value (the daily mood among them)."""
    return StateValues(values=await services.persona.state.items())


@router.get("/state/{key}", responses=PERSONA_ERRORS)
async def get_state(key: str, services: ServicesDep) -> StateEntry:
    """One state key."""
    return StateEntry(key=key, value=await services.persona.state.require(key))


@router.put("/state/{key}", responses=PERSONA_ERRORS)
async def set_state(
    key: str, body: StateIn, services: ServicesDep, actor: ActingUser
) -> StateEntry:
    """Set a key (text, number or true/false)."""
    await services.persona.state.set(key, body.value)
    _record(actor, "state.set", key)
    return StateEntry(key=key, value=body.value)


@router.delete("/state/{key}", responses=PERSONA_ERRORS)
async def remove_state(key: str, services: ServicesDep, actor: ActingUser) -> Deleted:
    """Delete a key."""
    await services.persona.state.delete(key)
    _record(actor, "state.remove", key)
    return Deleted(deleted=1)


# ------------------------------------------------------------------ channels


@router.get("/channels/{channel_id}")
async def get_channel(channel_id: PathId, services: ServicesDep) -> ChannelSettings:
    """A channel's settings (defaults for a channel never configured)."""
    return await services.persona.channels.get(channel_id)


@router.patch("/channels/{channel_id}")
async def update_channel(
    channel_id: PathId, body: ChannelPatch, services: ServicesDep, actor: ActingUser
) -> ChannelSettings:
    """Opt the channel out of (or back in to) the message log; switch proactive engagement."""
    settings = await services.persona.channels.update(
        channel_id,
        guild_id=body.guild_id,
        log_opt_out=body.log_opt_out,
        proactive=body.proactive,
    )
    _record(actor, "channel.update", channel_id)
    return settings
