"""The moderation audit log: who did what to whom in a guild, and why.

Layout in :attr:`Table.AUDIT_LOG`, partition ``guild#<guild id>``; sort key
``<epoch ms, 15 digits>#<entry id>``: time-ordered, unique, and the same when
a client retries the same entry (the relay sends its own entry id and the time
of the action), so a retried write never stores an entry twice. Every attempt
is logged, also the refused and failed ones. Entries expire after
:data:`AUDIT_RETENTION_DAYS`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from trollama.common.protocol import Identifier
from trollama.common.store.base import TTL_ATTRIBUTE, ConditionFailed, Item, ItemStore, Table
from trollama.common.store.conditions import NotExists

log = logging.getLogger(__name__)

#: Discord's limit on an audit-log reason, in characters.
MAX_REASON_CHARS = 512
#: Longest user or moderator name kept, in characters.
MAX_NAME_CHARS = 100
#: Longest free-text detail (why a request was refused, a duration), in characters.
MAX_DETAIL_CHARS = 300
#: Entries one read returns at most, and by default.
MAX_AUDIT_PAGE = 100
DEFAULT_AUDIT_PAGE = 20
#: Days an entry is kept.
AUDIT_RETENTION_DAYS = 365
_SECONDS_PER_DAY = 86_400
#: Digits of the millisecond timestamp in a sort key.
_TIMESTAMP_DIGITS = 15


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: A timestamp in UTC (naive values are taken as UTC).
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class ModerationAction(StrEnum):
    KICK = "kick"
    BAN = "ban"
    MUTE = "mute"
    UNMUTE = "unmute"


class AuditOutcome(StrEnum):
    """``done``: Discord applied it; ``refused``: the bot's rules stopped it;
    ``failed``: Discord refused or failed."""

    DONE = "done"
    REFUSED = "refused"
    FAILED = "failed"


class AuditEntryIn(BaseModel):
    """One moderation attempt, as a client reports it."""

    model_config = ConfigDict(extra="forbid")

    entry_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="the client's id for this entry; sending it again stores nothing new",
    )
    guild_id: Identifier
    action: ModerationAction
    outcome: AuditOutcome
    moderator_id: Identifier
    moderator_name: str = Field(default="", max_length=MAX_NAME_CHARS)
    target_id: Identifier
    target_name: str = Field(default="", max_length=MAX_NAME_CHARS)
    reason: str = Field(default="", max_length=MAX_REASON_CHARS)
    detail: str = Field(default="", max_length=MAX_DETAIL_CHARS)
    at: UtcDatetime | None = Field(default=None, description="when it happened; default now")


class AuditEntry(AuditEntryIn):
    """One stored moderation attempt."""

    at: UtcDatetime


class AuditPage(BaseModel):
    guild_id: str
    #: Newest first.
    entries: list[AuditEntry]


def _partition(guild_id: str) -> str:
    return f"guild#{guild_id}"


def sort_key(entry: AuditEntry) -> str:
    """Time first (newest-first reads), then the entry id (unique)."""
    millis = int(entry.at.timestamp() * 1000)
    return f"{millis:0{_TIMESTAMP_DIGITS}d}#{entry.entry_id}"


class AuditLog:
    """Reads and writes the audit log through an item store."""

    def __init__(self, store: ItemStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def record(self, entry: AuditEntryIn) -> AuditEntry:
        """Store the entry (once: a retry with the same id and time changes nothing)."""
        at = entry.at or datetime.fromtimestamp(self._clock(), UTC)
        stored = AuditEntry.model_validate({**entry.model_dump(), "at": at})
        item: Item = {
            "pk": _partition(stored.guild_id),
            "sk": sort_key(stored),
            **stored.model_dump(mode="json"),
            TTL_ATTRIBUTE: int(at.timestamp()) + AUDIT_RETENTION_DAYS * _SECONDS_PER_DAY,
        }
        try:
            await self._store.put(Table.AUDIT_LOG, item, condition=NotExists())
        except ConditionFailed:
            log.info("audit entry %s already stored", stored.entry_id)
        return stored

    async def recent(self, guild_id: str, limit: int = DEFAULT_AUDIT_PAGE) -> list[AuditEntry]:
        """The guild's newest entries, newest first (at most :data:`MAX_AUDIT_PAGE`)."""
        limit = min(limit, MAX_AUDIT_PAGE)
        if limit <= 0:
            return []
        page = await self._store.query(
            Table.AUDIT_LOG, _partition(guild_id), limit=limit, descending=True
        )
        return [AuditEntry.model_validate(_fields(item)) for item in page.items]


def _fields(item: Item) -> Item:
    """The entry's own attributes (without keys and expiry)."""
    return {k: v for k, v in item.items() if k not in ("pk", "sk", TTL_ATTRIBUTE)}
