"""The DynamoDB item store (AWS, DynamoDB Local or any compatible endpoint).

Uses boto3's low-level client from worker threads (``asyncio.to_thread``),
with short timeouts and few retries so a dead endpoint fails in seconds.
Every table is ``pk`` (HASH) + ``sk`` (RANGE), on-demand billing, with TTL on
``expires_at``. Expired items are filtered out on every read and count as
absent in conditions, because DynamoDB deletes them only eventually (and the
emulators never do).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import threading
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from trollama.common.store import items as rules
from trollama.common.store.base import (
    MAX_BATCH_GET_KEYS,
    TTL_ATTRIBUTE,
    Check,
    ConditionFailed,
    Delete,
    Item,
    ItemStore,
    ItemTooLarge,
    Page,
    Put,
    StoreUnavailable,
    Table,
    TransactOp,
    Update,
)
from trollama.common.store.conditions import Condition, evaluate
from trollama.common.store.dynamodb_expressions import (
    Expression,
    WireItem,
    from_wire,
    to_wire,
    wire_key,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

#: Seconds to wait for a TCP connection to the endpoint.
CONNECT_TIMEOUT_SECONDS = 2.0
#: Seconds to wait for a response once connected.
READ_TIMEOUT_SECONDS = 10.0
#: Attempts per request, the first included (botocore "standard" retry mode).
MAX_ATTEMPTS = 3
#: HTTP connections kept to the endpoint.
MAX_POOL_CONNECTIONS = 16
#: DynamoDB's limit on puts in one BatchWriteItem call.
MAX_BATCH_WRITE_ITEMS = 25
#: Rounds of retrying unprocessed batch keys/items or conflicting transactions.
MAX_RETRY_ROUNDS = 8
#: First back-off pause between those rounds, in seconds (doubles each round).
RETRY_BASE_SECONDS = 0.05
#: Longest back-off pause, in seconds.
RETRY_MAX_SECONDS = 1.0
#: Items read per request while a filter drops items (it runs before the limit).
FILTERED_PAGE_ITEMS = 100
#: Longest wait for a new table to become ACTIVE, in seconds.
TABLE_ACTIVE_TIMEOUT_SECONDS = 120.0
#: Pause between two looks at a table's status, in seconds.
TABLE_POLL_SECONDS = 0.1
#: Tries at removing an expired leftover before an update gives up.
MAX_EXPIRED_RETRIES = 3
#: DynamoDB's rule for table names (the prefix must keep names valid).
TABLE_PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{0,200}$")
#: Attribute named by an update that changes nothing (REMOVE of a missing attribute
#: is a no-op; an UpdateItem without an expression crashes moto).
NOOP_ATTRIBUTE = "__trollama_noop__"
#: Error codes that mean the service is overloaded or failing.
UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)


_SESSION_LOCK = threading.Lock()


@functools.cache
def _boto_session() -> boto3.session.Session:
    """One boto3 session for every store: a session loads the service model
    (~150 ms) once, so clients are cheap. It holds no credentials of its own."""
    return boto3.session.Session()


@dataclass(frozen=True)
class _Range:
    """One partition's sort-key range for a query."""

    table: Table
    pk: str
    prefix: str
    start_after: str | None
    descending: bool


class DynamoStore(ItemStore):
    """Item store on DynamoDB. Safe to share between tasks."""

    def __init__(
        self,
        *,
        endpoint_url: str | None,
        region: str,
        access_key: str | None,
        secret_key: str | None,
        table_prefix: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not TABLE_PREFIX_PATTERN.match(table_prefix):
            raise ValueError("table_prefix may hold only letters, digits, '_', '.', '-'")
        config = Config(
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            max_pool_connections=MAX_POOL_CONNECTIONS,
        )
        with _SESSION_LOCK:  # botocore sessions are not thread-safe
            self._client: DynamoDBClient = _boto_session().client(
                "dynamodb",
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                config=config,
            )
        self._where = _public_url(endpoint_url) if endpoint_url else f"DynamoDB in {region}"
        self._prefix = table_prefix
        self._clock = clock

    # ------------------------------------------------------------ plumbing

    def _name(self, table: Table) -> str:
        return f"{self._prefix}{table.value}"

    async def _call(self, method: Callable[..., Any], /, **kwargs: Any) -> Any:
        """Run one client call in a worker thread, translating its errors."""
        try:
            return await asyncio.to_thread(method, **kwargs)
        except ClientError as exc:
            raise self._translate(exc) from None
        except NoCredentialsError:
            raise StoreUnavailable(
                "no DynamoDB credentials found; set DYNAMODB_ACCESS_KEY and DYNAMODB_SECRET_KEY"
            ) from None
        except BotoCoreError as exc:
            raise StoreUnavailable(
                f"DynamoDB endpoint {self._where} is unreachable ({type(exc).__name__})"
            ) from None

    def _translate(self, exc: ClientError) -> Exception:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "ConditionalCheckFailedException":
            return ConditionFailed()
        if code == "ValidationException" and "size" in message and "exceeded" in message:
            return ItemTooLarge(f"DynamoDB refused the item: {message}")
        if code == "ValidationException":
            return ValueError(f"DynamoDB refused the request: {message}")
        if code == "ResourceNotFoundException":
            return StoreUnavailable(
                f"a table is missing at {self._where}; run scripts/init_storage.py"
            )
        if code in UNAVAILABLE_CODES or status >= 500:
            return StoreUnavailable(f"DynamoDB endpoint {self._where} failed ({code or status})")
        return StoreUnavailable(f"DynamoDB endpoint {self._where} refused the request ({code})")

    def _live(self, wire: WireItem | None, now: float) -> Item | None:
        if wire is None:
            return None
        item = from_wire(wire)
        return None if rules.is_expired(item, now) else item

    # ------------------------------------------------------------ tables

    async def existing_tables(self) -> set[Table]:
        """The logical tables that already exist at the endpoint."""
        names: set[str] = set()
        args: dict[str, Any] = {}
        while True:
            page = await self._call(self._client.list_tables, **args)
            names.update(page.get("TableNames", []))
            if "LastEvaluatedTableName" not in page:
                break
            args = {"ExclusiveStartTableName": page["LastEvaluatedTableName"]}
        return {t for t in Table if self._name(t) in names}

    async def ensure_tables(self) -> None:
        existing = await self.existing_tables()
        await asyncio.gather(*(self._ensure_table(t, t in existing) for t in Table))

    async def _ensure_table(self, table: Table, exists: bool) -> None:
        if not exists:
            await self._create_table(table)
        await self._wait_active(table)
        await self._ensure_ttl(table)

    async def _create_table(self, table: Table) -> None:
        try:
            await asyncio.to_thread(
                self._client.create_table,
                TableName=self._name(table),
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise self._translate(exc) from None  # else: created meanwhile by another process
        except BotoCoreError as exc:
            raise StoreUnavailable(f"DynamoDB endpoint {self._where} is unreachable") from exc

    async def _wait_active(self, table: Table) -> None:
        deadline = time.monotonic() + TABLE_ACTIVE_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            found = await self._call(self._client.describe_table, TableName=self._name(table))
            if found["Table"]["TableStatus"] == "ACTIVE":
                return
            await asyncio.sleep(TABLE_POLL_SECONDS)
        raise StoreUnavailable(f"table {self._name(table)} did not become ACTIVE in time")

    async def _ensure_ttl(self, table: Table) -> None:
        """Let DynamoDB delete expired items eventually; reads hide them anyway."""
        name = self._name(table)
        try:
            found = await self._call(self._client.describe_time_to_live, TableName=name)
            status = found.get("TimeToLiveDescription", {}).get("TimeToLiveStatus")
            if status in ("ENABLED", "ENABLING"):
                return
            await self._call(
                self._client.update_time_to_live,
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
            )
        except (ValueError, StoreUnavailable) as exc:
            log.warning(
                "TTL could not be enabled on %s (%s); reads still hide expired items", name, exc
            )

    async def drop_tables(self) -> None:
        """Delete every table of this prefix, data included (tests and teardown)."""
        for table in await self.existing_tables():
            await self._call(self._client.delete_table, TableName=self._name(table))

    # ------------------------------------------------------------ reads

    async def get(self, table: Table, pk: str, sk: str, *, consistent: bool = True) -> Item | None:
        rules.check_key(pk, sk)
        now = self._clock()
        found = await self._call(
            self._client.get_item,
            TableName=self._name(table),
            Key=wire_key(pk, sk),
            ConsistentRead=consistent,
        )
        return self._live(found.get("Item"), now)

    async def _get_raw(self, table: Table, pk: str, sk: str) -> Item | None:
        """The stored item even when expired."""
        found = await self._call(
            self._client.get_item,
            TableName=self._name(table),
            Key=wire_key(pk, sk),
            ConsistentRead=True,
        )
        wire = found.get("Item")
        return from_wire(wire) if wire is not None else None

    async def batch_get(self, table: Table, keys: Sequence[tuple[str, str]]) -> list[Item]:
        for pk, sk in keys:
            rules.check_key(pk, sk)
        unique = rules.dedupe_keys(keys)
        now, found = self._clock(), {}
        for start in range(0, len(unique), MAX_BATCH_GET_KEYS):
            for item in await self._batch_get_chunk(
                table, unique[start : start + MAX_BATCH_GET_KEYS]
            ):
                if not rules.is_expired(item, now):
                    found[(item["pk"], item["sk"])] = item
        return [found[key] for key in keys if key in found]

    async def _batch_get_chunk(self, table: Table, keys: list[tuple[str, str]]) -> list[Item]:
        name = self._name(table)
        request: dict[str, Any] = {
            name: {"Keys": [wire_key(pk, sk) for pk, sk in keys], "ConsistentRead": True}
        }
        got: list[Item] = []
        for round_ in range(MAX_RETRY_ROUNDS):
            answer = await self._call(self._client.batch_get_item, RequestItems=request)
            got.extend(from_wire(w) for w in answer.get("Responses", {}).get(name, []))
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                return got
            await _backoff(round_)
        raise StoreUnavailable(f"DynamoDB endpoint {self._where} kept keys unprocessed")

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
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        page_size = limit if limit is None or filter is None else max(limit, FILTERED_PAGE_ITEMS)
        found: list[Item] = []
        range_ = _Range(table, pk, sk_prefix, start_after, descending)
        async with aclosing(self._scan(range_, filter, page_size)) as items:
            async for item in items:
                found.append(item)
                if len(found) == limit:
                    break
        full = limit is not None and len(found) == limit
        return Page(items=found, last_sk=found[-1]["sk"] if full else None)

    async def count(
        self,
        table: Table,
        pk: str,
        *,
        sk_prefix: str = "",
        filter: Condition | None = None,
    ) -> int:
        range_ = _Range(table, pk, sk_prefix, None, False)
        if filter is not None:
            async with aclosing(self._scan(range_, filter, None)) as items:
                return sum([1 async for _ in items])
        args = self._query_args(range_, self._clock(), None)
        args["Select"] = "COUNT"
        total = 0
        while True:
            answer = await self._call(self._client.query, **args)
            total += int(answer.get("Count", 0))
            if "LastEvaluatedKey" not in answer:
                return total
            args["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    async def _scan(
        self, range_: _Range, filter_: Condition | None, page_size: int | None
    ) -> AsyncGenerator[Item, None]:
        """Live items of the range that pass the filter, in order, page by page."""
        now = self._clock()
        args = self._query_args(range_, now, page_size)
        while True:
            answer = await self._call(self._client.query, **args)
            for item in map(from_wire, answer.get("Items", [])):
                if not item["sk"].startswith(range_.prefix):
                    return  # left the prefix range (only when start_after is set)
                if rules.is_expired(item, now) or (filter_ and not evaluate(filter_, item)):
                    continue
                yield item
            if "LastEvaluatedKey" not in answer:
                return
            args["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def _query_args(self, range_: _Range, now: float, page_size: int | None) -> dict[str, Any]:
        """Query arguments: key range, TTL filter, order, consistent reads.

        With ``start_after`` the key condition is ``sk > start_after`` (``<``
        descending) and the prefix is checked while reading, because DynamoDB
        takes one sort-key condition and rejects an ExclusiveStartKey outside it.
        """
        expr = Expression()
        condition = f"{expr.name('pk')} = {expr.value(range_.pk)}"
        start = _effective_start(range_)
        if start is not None:
            operator = "<" if range_.descending else ">"
            condition += f" AND {expr.name('sk')} {operator} {expr.value(start)}"
        elif range_.prefix:
            condition += f" AND begins_with({expr.name('sk')}, {expr.value(range_.prefix)})"
        args: dict[str, Any] = {
            "TableName": self._name(range_.table),
            "KeyConditionExpression": condition,
            "FilterExpression": expr.not_expired(now),
            "ScanIndexForward": not range_.descending,
            "ConsistentRead": True,
        }
        if page_size is not None:
            args["Limit"] = page_size
        return args | expr.request_args()

    # ------------------------------------------------------------ writes

    async def put(self, table: Table, item: Item, *, condition: Condition | None = None) -> None:
        rules.check_item(item)
        await self._call(self._client.put_item, **self._put_args(Put(table, item, condition)))

    def _put_args(self, op: Put) -> dict[str, Any]:
        args: dict[str, Any] = {"TableName": self._name(op.table), "Item": to_wire(op.item)}
        if op.condition is not None:
            expr = Expression()
            args["ConditionExpression"] = expr.write_condition(op.condition, self._clock())
            args |= expr.request_args()
        return args

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
        op = rules.update_op(table, pk, sk, set, add, remove, condition)
        rules.check_item({"pk": pk, "sk": sk, **op.set})
        for _ in range(MAX_EXPIRED_RETRIES):
            try:
                answer = await self._call(
                    self._client.update_item, ReturnValues="ALL_NEW", **self._update_args(op)
                )
            except ConditionFailed:
                if not await self._purge_leftover(op):
                    raise
                continue
            return from_wire(answer["Attributes"])
        raise ConditionFailed("the item kept changing while expired leftovers were removed")

    def _update_args(self, op: Update) -> dict[str, Any]:
        """UpdateItem arguments; the condition also refuses an expired leftover
        (the update must start from a fresh item, see :meth:`_purge_leftover`)."""
        expr, now = Expression(), self._clock()
        clauses = []
        if op.set:
            sets = (f"{expr.name(k)} = {expr.value(v)}" for k, v in op.set.items())
            clauses.append("SET " + ", ".join(sets))
        if op.add:
            adds = (f"{expr.name(k)} {expr.value(v)}" for k, v in op.add.items())
            clauses.append("ADD " + ", ".join(adds))
        if op.remove or not clauses:
            names = op.remove or [NOOP_ATTRIBUTE]
            clauses.append("REMOVE " + ", ".join(expr.name(n) for n in names))
        guard = expr.not_expired(now)
        if op.condition is not None:
            guard = f"{expr.write_condition(op.condition, now)} AND {guard}"
        return {
            "TableName": self._name(op.table),
            "Key": wire_key(op.pk, op.sk),
            "UpdateExpression": " ".join(clauses),
            "ConditionExpression": guard,
        } | expr.request_args()

    async def _purge_leftover(self, op: Update) -> bool:
        """Delete an expired item that blocked ``op``; False when the failure was real."""
        raw = await self._get_raw(op.table, op.pk, op.sk)
        if raw is None or not rules.is_expired(raw, self._clock()):
            return False
        if op.condition is not None and not evaluate(op.condition, None):
            return False
        expr = Expression()
        with contextlib.suppress(ConditionFailed):  # replaced meanwhile: the retry decides
            await self._call(
                self._client.delete_item,
                TableName=self._name(op.table),
                Key=wire_key(op.pk, op.sk),
                ConditionExpression=expr.expired(self._clock()),
                **expr.request_args(),
            )
        return True

    async def delete(
        self, table: Table, pk: str, sk: str, *, condition: Condition | None = None
    ) -> bool:
        rules.check_key(pk, sk)
        args = self._delete_args(Delete(table, pk, sk, condition))
        answer = await self._call(self._client.delete_item, ReturnValues="ALL_OLD", **args)
        return bool(answer.get("Attributes"))

    def _delete_args(self, op: Delete | Check) -> dict[str, Any]:
        args: dict[str, Any] = {"TableName": self._name(op.table), "Key": wire_key(op.pk, op.sk)}
        if op.condition is not None:
            expr = Expression()
            args["ConditionExpression"] = expr.write_condition(op.condition, self._clock())
            args |= expr.request_args()
        return args

    async def batch_put(self, table: Table, items: Sequence[Item]) -> None:
        for item in items:
            rules.check_item(item)
        latest = {(item["pk"], item["sk"]): item for item in items}  # one put per key per call
        unique = list(latest.values())
        for start in range(0, len(unique), MAX_BATCH_WRITE_ITEMS):
            await self._batch_put_chunk(table, unique[start : start + MAX_BATCH_WRITE_ITEMS])

    async def _batch_put_chunk(self, table: Table, items: list[Item]) -> None:
        name = self._name(table)
        request: dict[str, Any] = {name: [{"PutRequest": {"Item": to_wire(i)}} for i in items]}
        for round_ in range(MAX_RETRY_ROUNDS):
            answer = await self._call(self._client.batch_write_item, RequestItems=request)
            request = answer.get("UnprocessedItems") or {}
            if not request:
                return
            await _backoff(round_)
        raise StoreUnavailable(f"DynamoDB endpoint {self._where} kept items unprocessed")

    async def transact(self, ops: Sequence[TransactOp]) -> None:
        rules.check_transaction(ops)
        for round_ in range(MAX_RETRY_ROUNDS):
            reasons = await self._transact_once(ops)
            if reasons is None:
                return
            if not await self._retryable(ops, reasons):
                raise StoreUnavailable(f"DynamoDB endpoint {self._where} cancelled a transaction")
            await _backoff(round_)
        raise StoreUnavailable(f"DynamoDB endpoint {self._where} kept conflicting transactions")

    async def _transact_once(self, ops: Sequence[TransactOp]) -> list[dict[str, Any]] | None:
        """Send the transaction; None on success, else the cancellation reasons."""
        try:
            await asyncio.to_thread(
                self._client.transact_write_items,
                TransactItems=[self._transact_item(op) for op in ops],  # type: ignore[misc]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise self._translate(exc) from None
            reasons: list[dict[str, Any]] = exc.response.get("CancellationReasons", [])  # type: ignore[assignment]
            return reasons
        except BotoCoreError as exc:
            raise StoreUnavailable(f"DynamoDB endpoint {self._where} is unreachable") from exc
        return None

    async def _retryable(self, ops: Sequence[TransactOp], reasons: list[dict[str, Any]]) -> bool:
        """Raise for the first real failure; True when a retry may succeed."""
        for index, reason in enumerate(reasons):
            code, message = reason.get("Code", ""), reason.get("Message", "")
            if code == "ValidationError":
                if "size" in message and "exceeded" in message:
                    raise ItemTooLarge(f"operation {index}: {message}")
                raise ValueError(f"DynamoDB refused operation {index}: {message}")
            if code != "ConditionalCheckFailed":
                continue
            op = ops[index]
            if not (isinstance(op, Update) and await self._purge_leftover(op)):
                raise ConditionFailed(f"condition of operation {index} failed", index)
        codes = {reason.get("Code") for reason in reasons}
        return bool(codes & {"ConditionalCheckFailed", "TransactionConflict"})

    def _transact_item(self, op: TransactOp) -> dict[str, Any]:
        if isinstance(op, Put):
            return {"Put": self._put_args(op)}
        if isinstance(op, Update):
            return {"Update": self._update_args(op)}
        if isinstance(op, Delete):
            return {"Delete": self._delete_args(op)}
        return {"ConditionCheck": self._delete_args(op)}

    # ------------------------------------------------------------ upkeep

    async def ping(self) -> bool:
        try:
            await self._call(self._client.list_tables, Limit=1)
        except StoreUnavailable:
            return False
        return True

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)


def _public_url(url: str) -> str:
    """The endpoint URL without any user:password part, safe for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _effective_start(range_: _Range) -> str | None:
    """The start key worth sending: None when the whole prefix range lies ahead."""
    start, prefix = range_.start_after, range_.prefix
    if start is None or not prefix or start.startswith(prefix):
        return start
    range_ahead = (start < prefix) != range_.descending
    return None if range_ahead else start  # else nothing is left: the first item read stops


async def _backoff(round_: int) -> None:
    await asyncio.sleep(min(RETRY_BASE_SECONDS * 2**round_, RETRY_MAX_SECONDS))
