"""The short-term message log and the permanent message archive.

Every message in channels the bot can see (the relay sends them; other
bots' messages are not sent, the bot's own are) is written twice to
:attr:`Table.SHORT_TERM_LOG`:

* ``channel#<id>`` / ``<time>#<message id>`` — the channel's sliding 24-hour
  window, read into prompts; each item expires 24 hours after the message
  (TTL), so this view needs no clearing;
* ``pending#<author id>`` / ``<time>#<message id>`` — waiting for consolidation,
  which extracts facts from it, copies it into :attr:`Table.MESSAGE_ARCHIVE`
  (``channel#<id>#<YYYY-MM-DD>`` / ``<time>#<message id>``) and deletes it;

plus ``pending`` / ``<author id>`` listing the authors with pending messages.
Writing a message again (a retried batch) writes the same keys: no duplicates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from trollama.brain.persona.ids import time_key
from trollama.common.store.base import (
    MAX_TRANSACT_ITEMS,
    ConditionFailed,
    Delete,
    ItemStore,
    Page,
    Table,
)
from trollama.common.store.conditions import Le

#: How long a message stays in a channel's window, in seconds.
SHORT_TERM_SECONDS = 24 * 3600
#: Longest logged message, in characters (Discord's own limit with Nitro).
MAX_LOGGED_CHARS = 4000
#: Most messages read from a channel's window at once.
MAX_CHANNEL_MESSAGES = 200
#: Messages per page when reading pending messages.
PENDING_PAGE = 100

_PENDING_DIRECTORY = "pending"


class LoggedMessage(BaseModel):
    message_id: str = Field(min_length=1, max_length=128)
    channel_id: str = Field(min_length=1, max_length=128)
    guild_id: str | None = Field(default=None, max_length=128)
    author_id: str = Field(min_length=1, max_length=128)
    author_name: str = Field(default="", max_length=100)
    content: str = Field(max_length=MAX_LOGGED_CHARS)
    created_at: float
    #: Written by this bot (kept for context and archived, never mined for facts).
    from_bot: bool = False

    @property
    def sort_key(self) -> str:
        return f"{time_key(self.created_at)}#{self.message_id}"


def pending_key(author_id: str) -> str:
    return f"pending#{author_id}"


def archive_key(message: LoggedMessage) -> str:
    day = datetime.fromtimestamp(message.created_at, UTC).strftime("%Y-%m-%d")
    return f"channel#{message.channel_id}#{day}"


class MessageLog:
    def __init__(self, store: ItemStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def append(self, messages: Sequence[LoggedMessage]) -> None:
        """Log messages (idempotent per message id)."""
        items: list[dict[str, object]] = []
        authors: dict[str, float] = {}
        for message in messages:
            body = message.model_dump(mode="json")
            items.append(
                {
                    "pk": f"channel#{message.channel_id}",
                    "sk": message.sort_key,
                    "expires_at": int(message.created_at + SHORT_TERM_SECONDS) + 1,
                    **body,
                }
            )
            items.append({"pk": pending_key(message.author_id), "sk": message.sort_key, **body})
            authors[message.author_id] = max(
                authors.get(message.author_id, 0.0), message.created_at
            )
        # the messages before the directory: a consolidation that sees the
        # directory entry always finds the messages
        await self._store.batch_put(Table.SHORT_TERM_LOG, items)
        now = self._clock()
        await self._store.batch_put(
            Table.SHORT_TERM_LOG,
            [
                {"pk": _PENDING_DIRECTORY, "sk": author, "last_at": last, "listed_at": now}
                for author, last in authors.items()
            ],
        )

    async def channel_window(
        self, channel_id: str, *, limit: int = MAX_CHANNEL_MESSAGES
    ) -> list[LoggedMessage]:
        """The channel's messages of the last 24 hours, oldest first (the newest ``limit``)."""
        page = await self._store.query(
            Table.SHORT_TERM_LOG,
            f"channel#{channel_id}",
            limit=min(limit, MAX_CHANNEL_MESSAGES),
            descending=True,
        )
        return [_message(item) for item in reversed(page.items)]

    async def last_in_channel(self, channel_id: str) -> LoggedMessage | None:
        window = await self.channel_window(channel_id, limit=1)
        return window[-1] if window else None

    async def pending_authors(self, *, start_after: str | None = None, limit: int) -> Page:
        """A page of authors with messages waiting for consolidation."""
        return await self._store.query(
            Table.SHORT_TERM_LOG, _PENDING_DIRECTORY, start_after=start_after, limit=limit
        )

    async def pending(
        self,
        author_id: str,
        *,
        before: float,
        start_after: str | None = None,
        limit: int = PENDING_PAGE,
    ) -> list[LoggedMessage]:
        """The author's pending messages written before ``before``, oldest first."""
        page = await self._store.query(
            Table.SHORT_TERM_LOG,
            pending_key(author_id),
            start_after=start_after,
            limit=limit,
            filter=Le("created_at", before),
        )
        return [_message(item) for item in page.items]

    async def archive(self, messages: Sequence[LoggedMessage]) -> None:
        """Copy into the archive, then delete from the pending view (both idempotent)."""
        if not messages:
            return
        await self._store.batch_put(
            Table.MESSAGE_ARCHIVE,
            [
                {"pk": archive_key(m), "sk": m.sort_key, **m.model_dump(mode="json")}
                for m in messages
            ],
        )
        for start in range(0, len(messages), MAX_TRANSACT_ITEMS):
            chunk = messages[start : start + MAX_TRANSACT_ITEMS]
            await self._store.transact(
                [Delete(Table.SHORT_TERM_LOG, pending_key(m.author_id), m.sort_key) for m in chunk]
            )

    async def unlist_if_done(self, author_id: str, listed_at: float) -> bool:
        """Drop the author from the pending directory unless they wrote again
        since ``listed_at`` or still have pending messages; True when dropped."""
        if await self._store.count(Table.SHORT_TERM_LOG, pending_key(author_id)):
            return False
        try:
            await self._store.delete(
                Table.SHORT_TERM_LOG,
                _PENDING_DIRECTORY,
                author_id,
                condition=Le("listed_at", listed_at),
            )
        except ConditionFailed:
            return False
        return True

    async def archived(self, channel_id: str, day: str) -> list[LoggedMessage]:
        """One day of a channel's archive (``day`` as ``YYYY-MM-DD``), oldest first."""
        page = await self._store.query(
            Table.MESSAGE_ARCHIVE, f"channel#{channel_id}#{day}", limit=10_000
        )
        return [_message(item) for item in page.items]


def _message(item: dict[str, object]) -> LoggedMessage:
    return LoggedMessage.model_validate(item)
