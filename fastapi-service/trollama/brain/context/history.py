"""Conversation history and summaries, one conversation per Discord thread or chat.

Layout in :attr:`Table.CONVERSATIONS`, partition = conversation id:

* ``msg#<epoch ms, 15 digits>#<message id>`` — one message; the sort key
  orders messages by time;
* ``id#<message id>`` — a marker written in the same transaction, so that a
  retried request never stores its user or assistant turn twice;
* ``meta`` — last update and the closed flag.

:attr:`Table.SUMMARIES` holds at most one item per conversation (sort key
``summary``): the running summary and the key of the last message it covers.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from trollama.common.store.base import (
    MAX_TRANSACT_ITEMS,
    ConditionFailed,
    Delete,
    Item,
    ItemStore,
    Put,
    Table,
    TransactOp,
    Update,
)
from trollama.common.store.conditions import Le, NotExists, Or

logger = logging.getLogger(__name__)

#: Most messages read from one conversation at once (the history window).
MAX_HISTORY_MESSAGES = 200
#: Longest stored message, in characters; longer answers are cut (keeps every
#: item under the store's 400 KB limit even for 4-byte characters).
MAX_STORED_CONTENT_CHARS = 60_000
#: Longest message or request identifier, in characters.
MAX_MESSAGE_ID_CHARS = 128
#: Pages of up to MAX_TRANSACT_ITEMS items deleted by one reset (bounds the loop).
MAX_DELETE_PAGES = 10_000

MESSAGE_PREFIX = "msg#"
MARKER_PREFIX = "id#"
META_KEY = "meta"
SUMMARY_KEY = "summary"
#: Digits of the millisecond timestamp in a message's sort key.
_TIMESTAMP_DIGITS = 15

MessageRole = Literal["user", "assistant"]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


#: A timestamp in UTC (naive values are taken as UTC).
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class StoredMessage(BaseModel):
    """One turn of a conversation as stored."""

    model_config = ConfigDict(frozen=True)

    message_id: str = Field(min_length=1, max_length=MAX_MESSAGE_ID_CHARS)
    role: MessageRole
    content: str
    user_id: str = ""
    #: When the turn happened (naive values are taken as UTC).
    created_at: UtcDatetime = Field(default_factory=_now)
    #: Token count (the model server's, or an estimate); 0 = unknown.
    tokens: int = Field(default=0, ge=0)
    request_id: str | None = None

    @property
    def sort_key(self) -> str:
        """The message's sort key: time first, so history reads in order."""
        millis = int(self.created_at.timestamp() * 1000)
        return f"{MESSAGE_PREFIX}{millis:0{_TIMESTAMP_DIGITS}d}#{self.message_id}"


class Summary(BaseModel):
    """The running summary of a conversation's older messages."""

    model_config = ConfigDict(frozen=True)

    text: str
    #: The newest message the summary covers, by id and by sort key.
    last_message_id: str
    last_message_key: str
    #: Messages folded into the summary so far (over all summarizations).
    message_count: int = Field(default=0, ge=0)
    tokens: int = Field(default=0, ge=0)
    model: str = ""
    created_at: UtcDatetime = Field(default_factory=_now)


class ConversationStore:
    """Reads and writes conversation history and summaries through an item store."""

    def __init__(self, store: ItemStore) -> None:
        self._store = store

    async def append(self, conversation_id: str, message: StoredMessage) -> bool:
        """Store ``message``; False (and nothing written) when its id is already stored.

        Appending to a closed conversation opens it again."""
        marker = {"pk": conversation_id, "sk": MARKER_PREFIX + message.message_id}
        marker["message_key"] = message.sort_key
        meta = Update(
            Table.CONVERSATIONS,
            conversation_id,
            META_KEY,
            set={"updated_at": _now().isoformat(), "closed": False},
        )
        ops: list[TransactOp] = [
            Put(Table.CONVERSATIONS, marker, NotExists()),
            Put(Table.CONVERSATIONS, _message_item(conversation_id, message), NotExists()),
            meta,
        ]
        try:
            await self._store.transact(ops)
        except ConditionFailed:
            logger.info("message %s already stored; not appended again", message.message_id)
            return False
        return True

    async def messages(
        self, conversation_id: str, limit: int = MAX_HISTORY_MESSAGES
    ) -> list[StoredMessage]:
        """The newest ``limit`` messages (at most :data:`MAX_HISTORY_MESSAGES`), oldest first."""
        limit = min(limit, MAX_HISTORY_MESSAGES)
        if limit <= 0:
            return []
        page = await self._store.query(
            Table.CONVERSATIONS,
            conversation_id,
            sk_prefix=MESSAGE_PREFIX,
            limit=limit,
            descending=True,
        )
        return [StoredMessage.model_validate(item) for item in reversed(page.items)]

    async def summary(self, conversation_id: str) -> Summary | None:
        item = await self._store.get(Table.SUMMARIES, conversation_id, SUMMARY_KEY)
        return None if item is None else Summary.model_validate(item)

    async def set_summary(self, conversation_id: str, summary: Summary) -> bool:
        """Store ``summary``; False when a summary covering newer messages is already there."""
        item: Item = {"pk": conversation_id, "sk": SUMMARY_KEY, **summary.model_dump(mode="json")}
        newer_or_equal = Or([NotExists(), Le("last_message_key", summary.last_message_key)])
        try:
            await self._store.put(Table.SUMMARIES, item, condition=newer_or_equal)
        except ConditionFailed:
            logger.info("kept the newer summary of conversation %s", conversation_id)
            return False
        return True

    async def reset(self, conversation_id: str) -> None:
        """Delete the conversation's history and summary (the thread stays open)."""
        await self._delete_prefix(conversation_id, MESSAGE_PREFIX)
        await self._delete_prefix(conversation_id, MARKER_PREFIX)
        await self._store.delete(Table.SUMMARIES, conversation_id, SUMMARY_KEY)

    async def close(self, conversation_id: str) -> None:
        """Delete history and summary and mark the conversation closed."""
        await self.reset(conversation_id)
        now = _now().isoformat()
        meta = {"updated_at": now, "closed": True, "closed_at": now}
        await self._store.update(Table.CONVERSATIONS, conversation_id, META_KEY, set=meta)

    async def exists(self, conversation_id: str) -> bool:
        """True for a conversation that has been written to and is not closed."""
        meta = await self._meta(conversation_id)
        return meta is not None and not meta.get("closed", False)

    async def is_closed(self, conversation_id: str) -> bool:
        """True for a conversation closed with :meth:`close` (False when unknown)."""
        meta = await self._meta(conversation_id)
        return meta is not None and bool(meta.get("closed", False))

    async def _meta(self, conversation_id: str) -> Item | None:
        return await self._store.get(Table.CONVERSATIONS, conversation_id, META_KEY)

    async def _delete_prefix(self, conversation_id: str, prefix: str) -> None:
        for _ in range(MAX_DELETE_PAGES):
            page = await self._store.query(
                Table.CONVERSATIONS, conversation_id, sk_prefix=prefix, limit=MAX_TRANSACT_ITEMS
            )
            if not page.items:
                return
            deletes = [Delete(Table.CONVERSATIONS, conversation_id, i["sk"]) for i in page.items]
            await self._store.transact(deletes)
        logger.error(
            "conversation %s: gave up deleting after %d pages", conversation_id, MAX_DELETE_PAGES
        )


def _message_item(conversation_id: str, message: StoredMessage) -> Item:
    fields: dict[str, Any] = message.model_dump(mode="json")
    if len(message.content) > MAX_STORED_CONTENT_CHARS:
        logger.warning(
            "message %s cut to %d characters for storage",
            message.message_id,
            MAX_STORED_CONTENT_CHARS,
        )
        fields["content"] = message.content[:MAX_STORED_CONTENT_CHARS]
    return {"pk": conversation_id, "sk": message.sort_key, **fields}
