"""Rules every backend applies the same way: key and size limits, TTL, updates.

Both backends call these helpers so that a mistake (an empty key, an item too
large, an update that touches a key attribute) fails identically on SQLite and
on DynamoDB, before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from trollama.common.store.base import (
    KEY_ATTRIBUTES,
    MAX_ITEM_BYTES,
    MAX_TRANSACT_ITEMS,
    TTL_ATTRIBUTE,
    Check,
    Delete,
    Item,
    ItemTooLarge,
    Put,
    Table,
    TransactOp,
    Update,
)
from trollama.common.store.conditions import Condition

#: DynamoDB's limit on a partition key value, in UTF-8 bytes.
MAX_PK_BYTES = 2048
#: DynamoDB's limit on a sort key value, in UTF-8 bytes.
MAX_SK_BYTES = 1024

Key = tuple[str, str]


def encode(item: Item) -> str:
    """The item as compact JSON (the form SQLite stores and the size limit measures)."""
    return json.dumps(item, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def check_key(pk: object, sk: object) -> None:
    """Refuse keys DynamoDB would refuse: non-strings, empty strings, too long."""
    for name, value, limit in (("pk", pk, MAX_PK_BYTES), ("sk", sk, MAX_SK_BYTES)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
        if len(value.encode()) > limit:
            raise ValueError(f"{name} is longer than {limit} bytes")


def check_item(item: Item) -> str:
    """Validate a whole item and return its JSON encoding."""
    check_key(item.get("pk"), item.get("sk"))
    try:
        data = encode(item)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"item is not JSON-compatible: {exc}") from None
    size = len(data.encode())
    if size > MAX_ITEM_BYTES:
        raise ItemTooLarge(f"item is {size} bytes; the limit is {MAX_ITEM_BYTES}")
    return data


def expiry_of(item: Item) -> float | None:
    """The item's expiry time in epoch seconds, or None (TTL ignores non-numbers)."""
    value = item.get(TTL_ATTRIBUTE)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def is_expired(item: Item, now: float) -> bool:
    """True when the item's TTL lies in the past (it must then look absent)."""
    expiry = expiry_of(item)
    return expiry is not None and expiry < now


def check_update(set_: Item, add: dict[str, int | float], remove: Sequence[str]) -> None:
    """Refuse updates DynamoDB would refuse: key attributes, overlapping paths, bad ADDs."""
    names = [*set_, *add, *remove]
    if any(name in KEY_ATTRIBUTES for name in names):
        raise ValueError("an update cannot change pk or sk")
    if len(names) != len(set(names)):
        raise ValueError("an attribute appears more than once in set/add/remove")
    for name, delta in add.items():
        if isinstance(delta, bool) or not isinstance(delta, int | float):
            raise ValueError(f"add[{name!r}] must be a number")


def apply_update(
    current: Item | None,
    key: Key,
    set_: Item,
    add: dict[str, int | float],
    remove: Sequence[str],
) -> Item:
    """The item after the update (``current`` None means a fresh item)."""
    new: Item = dict(current) if current is not None else {"pk": key[0], "sk": key[1]}
    new.update(set_)
    for name, delta in add.items():
        old = new.get(name, 0)
        if isinstance(old, bool) or not isinstance(old, int | float):
            raise ValueError(f"cannot add to {name!r}: it is not a number")
        new[name] = old + delta
    for name in remove:
        new.pop(name, None)
    return new


def op_key(op: TransactOp) -> tuple[Table, str, str]:
    """The (table, pk, sk) a transaction operation touches."""
    if isinstance(op, Put):
        return op.table, op.item.get("pk", ""), op.item.get("sk", "")
    return op.table, op.pk, op.sk


def check_transaction(ops: Sequence[TransactOp]) -> None:
    """Refuse transactions DynamoDB would refuse: too many ops, one item twice."""
    if not ops:
        raise ValueError("a transaction needs at least one operation")
    if len(ops) > MAX_TRANSACT_ITEMS:
        raise ValueError(f"a transaction holds at most {MAX_TRANSACT_ITEMS} operations")
    keys = [op_key(op) for op in ops]
    if len(keys) != len(set(keys)):
        raise ValueError("a transaction cannot touch the same item twice")
    for op in ops:
        _check_op(op)


def _check_op(op: TransactOp) -> None:
    if isinstance(op, Put):
        check_item(op.item)
    elif isinstance(op, Update):
        check_key(op.pk, op.sk)
        check_update(op.set, op.add, op.remove)
        check_item({"pk": op.pk, "sk": op.sk, **op.set})
    else:
        assert isinstance(op, Delete | Check)
        check_key(op.pk, op.sk)


def dedupe_keys(keys: Iterable[Key]) -> list[Key]:
    """Keys in first-seen order without repeats (DynamoDB rejects duplicate keys)."""
    return list(dict.fromkeys(keys))


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``.

    None when no such string exists (the prefix is all U+10FFFF). Code-point
    order equals UTF-8 byte order, which both SQLite and DynamoDB sort by.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if 0xD800 <= code <= 0xDFFF:
            code = 0xE000  # surrogates cannot be encoded; skip over them
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


def update_op(
    table: Table,
    pk: str,
    sk: str,
    set_: Item | None,
    add: dict[str, int | float] | None,
    remove: Sequence[str],
    condition: Condition | None,
) -> Update:
    """The checked :class:`Update` both backends apply (same refusals everywhere)."""
    op = Update(table, pk, sk, set=set_ or {}, add=add or {}, remove=remove, condition=condition)
    check_key(pk, sk)
    check_update(op.set, op.add, op.remove)
    return op
