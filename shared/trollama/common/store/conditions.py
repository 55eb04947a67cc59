"""Backend-neutral write conditions.

A tiny expression tree that the SQLite backend evaluates in Python (inside
its write transaction) and the DynamoDB backend translates into a
ConditionExpression. Attribute names are top-level item attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Exists:
    """The item exists (and has not expired)."""


@dataclass(frozen=True)
class NotExists:
    """No item with that key exists (an expired item counts as absent)."""


@dataclass(frozen=True)
class AttrExists:
    name: str


@dataclass(frozen=True)
class AttrNotExists:
    name: str


@dataclass(frozen=True)
class Eq:
    name: str
    value: Any


@dataclass(frozen=True)
class Ne:
    name: str
    value: Any


@dataclass(frozen=True)
class Lt:
    name: str
    value: int | float | str


@dataclass(frozen=True)
class Le:
    name: str
    value: int | float | str


@dataclass(frozen=True)
class Gt:
    name: str
    value: int | float | str


@dataclass(frozen=True)
class Ge:
    name: str
    value: int | float | str


@dataclass(frozen=True)
class In:
    name: str
    values: Sequence[Any]


@dataclass(frozen=True)
class And:
    parts: Sequence[Condition]


@dataclass(frozen=True)
class Or:
    parts: Sequence[Condition]


@dataclass(frozen=True)
class Not:
    part: Condition


Condition = (
    Exists
    | NotExists
    | AttrExists
    | AttrNotExists
    | Eq
    | Ne
    | Lt
    | Le
    | Gt
    | Ge
    | In
    | And
    | Or
    | Not
)


def evaluate(condition: Condition, item: dict[str, Any] | None) -> bool:
    """Evaluate against an item (None = missing). Comparisons with a missing
    attribute or a value of another type are false, as in DynamoDB."""
    match condition:
        case Exists():
            return item is not None
        case NotExists():
            return item is None
        case AttrExists(name):
            return item is not None and name in item
        case AttrNotExists(name):
            return item is None or name not in item
        case Eq(name, value):
            return item is not None and name in item and item[name] == value
        case Ne(name, value):
            return item is None or name not in item or item[name] != value
        case In(name, values):
            return item is not None and name in item and item[name] in values
        case And(parts):
            return all(evaluate(p, item) for p in parts)
        case Or(parts):
            return any(evaluate(p, item) for p in parts)
        case Not(part):
            return not evaluate(part, item)
        case Lt() | Le() | Gt() | Ge():
            return _compare(condition, item)
    raise TypeError(f"unknown condition {condition!r}")


def _compare(condition: Lt | Le | Gt | Ge, item: dict[str, Any] | None) -> bool:
    if item is None or condition.name not in item:
        return False
    left, right = item[condition.name], condition.value
    numeric = (int, float)
    same_kind = (isinstance(left, numeric) and not isinstance(left, bool)) == (
        isinstance(right, numeric) and not isinstance(right, bool)
    ) and (isinstance(left, str) == isinstance(right, str))
    if not same_kind:
        return False
    match condition:
        case Lt():
            return bool(left < right)
        case Le():
            return bool(left <= right)
        case Gt():
            return bool(left > right)
        case Ge():
            return bool(left >= right)
