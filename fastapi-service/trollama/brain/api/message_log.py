"""The relay's message feed into the short-term log.

The relay sends every message in the channels it can see (other bots'
excluded, its own marked ``from_bot``), in batches; each author's name goes
into their profile (nickname history). Messages of a channel
that opted out of logging, or of a thread whose parent channel did, are
dropped here, so an opt-out applies to the very next message. Sending a
batch again stores nothing twice (messages are keyed by their id).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from trollama.brain.api.deps import CallerDep, ServicesDep
from trollama.brain.auth import Caller, CallerKind
from trollama.brain.persona.bundle import Persona
from trollama.brain.persona.message_log import LoggedMessage
from trollama.common.protocol import MAX_ID_CHARS

#: Most messages in one call.
MAX_MESSAGES_PER_CALL = 100

router = APIRouter(prefix="/api/log", tags=["message log"])


class FeedMessage(LoggedMessage):
    """A logged message, plus the parent channel of a thread (for the opt-out check)."""

    model_config = ConfigDict(extra="forbid")

    parent_channel_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)


class MessageBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[FeedMessage] = Field(max_length=MAX_MESSAGES_PER_CALL)


class LogResult(BaseModel):
    logged: int
    skipped_opted_out: int


def require_relay(caller: CallerDep) -> Caller:
    if caller.kind is not CallerKind.RELAY:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only the relay sends messages to the log")
    return caller


@router.post("/messages", dependencies=[Depends(require_relay)])
async def log_messages(batch: MessageBatch, services: ServicesDep) -> LogResult:
    """Keep messages in the short-term log (opted-out channels' are dropped)."""
    persona = services.persona
    opted_out = await _opted_out(persona, batch.messages)
    kept = [
        LoggedMessage.model_validate(m.model_dump(exclude={"parent_channel_id"}))
        for m in batch.messages
        if not {m.channel_id, m.parent_channel_id} & opted_out
    ]
    if kept:
        await persona.log.append(kept)
        await _record_names(persona, kept)
    return LogResult(logged=len(kept), skipped_opted_out=len(batch.messages) - len(kept))


async def _record_names(persona: Persona, messages: list[LoggedMessage]) -> None:
    """Every name a person is seen under goes into their profile (the bot's own
    messages are not people's)."""
    latest: dict[str, LoggedMessage] = {}
    for message in messages:
        if not message.from_bot and message.author_name:
            known = latest.get(message.author_id)
            if known is None or message.created_at >= known.created_at:
                latest[message.author_id] = message
    for author_id, message in latest.items():
        await persona.profiles.seen(author_id, message.author_name, at=message.created_at)


async def _opted_out(persona: Persona, messages: list[FeedMessage]) -> set[str | None]:
    """The channels among the messages' (and their parents') that opted out."""
    channels = {m.channel_id for m in messages} | {
        m.parent_channel_id for m in messages if m.parent_channel_id
    }
    return {c for c in channels if (await persona.channels.get(c)).log_opt_out}
