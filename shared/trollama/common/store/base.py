"""The item store: the one interface every persistent byte goes through.

Modelled on DynamoDB's data model so that both backends behave the same:

* a **table** holds items addressed by a partition key ``pk`` and a sort key
  ``sk`` (both strings);
* an **item** is a JSON-compatible dict (str, int, float, bool, None, list,
  dict) that always contains its ``pk`` and ``sk``;
* **conditions** (:mod:`.conditions`) guard writes; a failed guard raises
  :class:`ConditionFailed` and changes nothing;
* **transactions** apply up to :data:`MAX_TRANSACT_ITEMS` writes atomically;
* **TTL**: an item whose ``expires_at`` (epoch seconds) lies in the past is
  invisible to every read, exactly as if it had been deleted (AWS deletes
  expired items lazily, moto never does, and DynamoDB Local may delete them by
  its own wall clock even when the store was given another clock).

Backends: :mod:`.sqlite` (embedded default) and :mod:`.dynamodb` (boto3). One
contract test suite (``shared/tests/store/``) runs against both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from trollama.common.store.conditions import Condition

Item = dict[str, Any]

#: DynamoDB's item size limit, in bytes; both backends enforce it.
MAX_ITEM_BYTES = 400 * 1024
#: DynamoDB's limit on writes in one transaction.
MAX_TRANSACT_ITEMS = 100
#: DynamoDB's limit on keys in one BatchGetItem call (backends split larger batches).
MAX_BATCH_GET_KEYS = 100
#: The attribute holding an item's expiry time, in epoch seconds.
TTL_ATTRIBUTE = "expires_at"
#: Attribute names the store owns.
KEY_ATTRIBUTES = ("pk", "sk")


class Table(StrEnum):
    """Logical tables (DESIGN.md). Physical names get the configured prefix."""

    USERS = "users"
    AUTH_METHODS = "auth_methods"
    CONVERSATIONS = "conversations"
    SUMMARIES = "summaries"
    QUEUE = "queue"
    PERSONA = "persona"
    MEMORY_FACTS = "memory_facts"
    RELATIONSHIPS = "relationships"
    GLOBAL_STATE = "global_state"
    SHORT_TERM_LOG = "short_term_log"
    MESSAGE_ARCHIVE = "message_archive"
    TOKEN_USAGE = "token_usage"  # noqa: S105 - a table name
    ARTIFACTS = "artifacts"
    WEBPAGE_CHUNKS = "webpage_chunks"
    MONITORING_SAMPLES = "monitoring_samples"
    ALERTS = "alerts"
    NODES = "nodes"
    USER_PROFILES = "user_profiles"
    CHANNEL_SETTINGS = "channel_settings"
    OUTBOX = "outbox"
    JOB_LEASES = "job_leases"
    AUDIT_LOG = "audit_log"
    POLLS = "polls"


class StoreError(Exception):
    """Base of every error the store raises."""


class ConditionFailed(StoreError):
    """A write's condition did not hold; nothing was written.

    For a transaction, ``index`` is the position of the first operation whose
    condition failed, when the backend can tell."""

    def __init__(self, message: str = "condition failed", index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class ItemTooLarge(StoreError):
    """The item exceeds :data:`MAX_ITEM_BYTES`."""


class StoreUnavailable(StoreError):
    """The backend cannot be reached or answered with a server error."""


@dataclass(frozen=True)
class Put:
    table: Table
    item: Item
    condition: Condition | None = None


@dataclass(frozen=True)
class Update:
    """Set, add to (numbers, created at 0), and remove attributes of one item.

    Without a condition an update creates a missing item (an upsert), as
    DynamoDB's UpdateItem does."""

    table: Table
    pk: str
    sk: str
    set: Item = field(default_factory=dict)
    add: dict[str, int | float] = field(default_factory=dict)
    remove: Sequence[str] = ()
    condition: Condition | None = None


@dataclass(frozen=True)
class Delete:
    table: Table
    pk: str
    sk: str
    condition: Condition | None = None


@dataclass(frozen=True)
class Check:
    """A condition on an item that the transaction does not write."""

    table: Table
    pk: str
    sk: str
    condition: Condition


TransactOp = Put | Update | Delete | Check


@dataclass(frozen=True)
class Page:
    items: list[Item]
    #: Pass as ``start_after`` to read the next page; None when done.
    last_sk: str | None


class ItemStore(ABC):
    """Async item store. Implementations must be safe to share between tasks."""

    @abstractmethod
    async def ensure_tables(self) -> None:
        """Create every :class:`Table` (and its TTL and indexes) if missing. Idempotent."""

    @abstractmethod
    async def get(self, table: Table, pk: str, sk: str, *, consistent: bool = True) -> Item | None:
        """The item, or None when missing or expired."""

    @abstractmethod
    async def put(self, table: Table, item: Item, *, condition: Condition | None = None) -> None:
        """Write the whole item (replacing any old one) if ``condition`` holds."""

    @abstractmethod
    async def update(
        self,
        table: Table,
        pk: str,
        sk: str,
        *,
        set: Item | None = None,
        add: dict[str, int | float] | None = None,
        remove: Sequence[str] = (),
        condition: Condition | None = None,
    ) -> Item:
        """Apply the changes and return the item as it is afterwards."""

    @abstractmethod
    async def delete(
        self, table: Table, pk: str, sk: str, *, condition: Condition | None = None
    ) -> bool:
        """Delete the item; True when an item (expired or not) was there."""

    @abstractmethod
    async def query(
        self,
        table: Table,
        pk: str,
        *,
        sk_prefix: str = "",
        start_after: str | None = None,
        limit: int | None = None,
        descending: bool = False,
        filter: Condition | None = None,
    ) -> Page:
        """Items of one partition in sort-key order.

        ``filter`` applies before ``limit`` (unlike a raw DynamoDB Query):
        a page holds up to ``limit`` matching items."""

    @abstractmethod
    async def count(
        self,
        table: Table,
        pk: str,
        *,
        sk_prefix: str = "",
        filter: Condition | None = None,
    ) -> int:
        """How many unexpired items of the partition match."""

    @abstractmethod
    async def batch_get(self, table: Table, keys: Sequence[tuple[str, str]]) -> list[Item]:
        """The items that exist, in the order of ``keys``."""

    @abstractmethod
    async def batch_put(self, table: Table, items: Sequence[Item]) -> None:
        """Write many items unconditionally (not atomic as a whole)."""

    @abstractmethod
    async def transact(self, ops: Sequence[TransactOp]) -> None:
        """Apply every op or none; ConditionFailed when any condition fails."""

    @abstractmethod
    async def ping(self) -> bool:
        """True when the backend answers."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and threads."""
