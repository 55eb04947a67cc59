"""DynamoDB wire values and expressions for the DynamoDB backend.

* :func:`to_wire` / :func:`from_wire` convert items to DynamoDB attribute
  values and back (floats and ints travel as ``Decimal``; a number comes back
  as ``int`` when it has no fractional digits, else as ``float``);
* :class:`Expression` compiles a :mod:`.conditions` tree into a
  ConditionExpression, with every attribute name and value as a placeholder,
  so no name or value can ever be read as expression syntax.

Conditions see expired items as absent (:meth:`Expression.write_condition`):
neither DynamoDB Local nor moto deletes expired items, and AWS deletes lazily.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from trollama.common.store.base import TTL_ATTRIBUTE, Item
from trollama.common.store.conditions import (
    And,
    AttrExists,
    AttrNotExists,
    Condition,
    Eq,
    Exists,
    Ge,
    Gt,
    In,
    Le,
    Lt,
    Ne,
    Not,
    NotExists,
    Or,
    evaluate,
)

WireItem = dict[str, Any]

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
_COMPARATORS = {Lt: "<", Le: "<=", Gt: ">", Ge: ">="}


def _to_plain(value: Any) -> Any:
    """JSON-compatible value → what boto3's serializer accepts (floats as Decimal)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, list | tuple):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    raise ValueError(f"value of type {type(value).__name__} is not JSON-compatible")


def _from_plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, list):
        return [_from_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _from_plain(v) for k, v in value.items()}
    return value


def to_wire_value(value: Any) -> dict[str, Any]:
    """One value as a DynamoDB AttributeValue."""
    try:
        wire = cast(dict[str, Any], _SERIALIZER.serialize(_to_plain(value)))
    except (TypeError, ArithmeticError) as exc:
        raise ValueError(f"DynamoDB cannot store this value: {exc}") from None
    return wire


def to_wire(item: Item) -> WireItem:
    """An item as a DynamoDB attribute map."""
    return {name: to_wire_value(value) for name, value in item.items()}


def from_wire(wire: WireItem) -> Item:
    """A DynamoDB attribute map as a plain item."""
    return {name: _from_plain(_DESERIALIZER.deserialize(value)) for name, value in wire.items()}


def wire_key(pk: str, sk: str) -> WireItem:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


class Expression:
    """Collects placeholders while compiling one request's expressions."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, dict[str, Any]] = {}

    def name(self, attribute: str) -> str:
        """The placeholder for an attribute name (one per distinct name)."""
        for placeholder, existing in self.names.items():
            if existing == attribute:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        """A fresh placeholder holding ``value``."""
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = to_wire_value(value)
        return placeholder

    def request_args(self) -> dict[str, Any]:
        """ExpressionAttributeNames/Values for the request (omitted when empty)."""
        args: dict[str, Any] = {}
        if self.names:
            args["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            args["ExpressionAttributeValues"] = dict(self.values)
        return args

    # ---------------------------------------------------------- TTL-aware

    def expired(self, now: float) -> str:
        """True for an item that exists but whose TTL lies before ``now``."""
        ttl = self.name(TTL_ATTRIBUTE)
        return f"(attribute_type({ttl}, {self.value('N')}) AND {ttl} < {self.value(now)})"

    def not_expired(self, now: float) -> str:
        return f"(NOT {self.expired(now)})"

    def write_condition(self, condition: Condition, now: float) -> str:
        """``condition`` as seen on the live item: an expired item counts as absent."""
        pk, body = self.name("pk"), self.compile(condition)
        if evaluate(condition, None):
            return f"(attribute_not_exists({pk}) OR {self.expired(now)} OR {body})"
        return f"(attribute_exists({pk}) AND {self.not_expired(now)} AND {body})"

    # ---------------------------------------------------------- conditions

    def compile(self, condition: Condition) -> str:
        """The condition over the stored item, matching :func:`evaluate` exactly."""
        match condition:
            case Exists():
                return f"attribute_exists({self.name('pk')})"
            case NotExists():
                return f"attribute_not_exists({self.name('pk')})"
            case AttrExists(name):
                return f"attribute_exists({self.name(name)})"
            case AttrNotExists(name):
                return f"attribute_not_exists({self.name(name)})"
            case Eq(name, value):  # attribute_exists: moto treats a missing attribute as NULL
                n = self.name(name)
                return f"(attribute_exists({n}) AND {n} = {self.value(value)})"
            case Ne(name, value):
                n = self.name(name)
                return f"(attribute_not_exists({n}) OR {n} <> {self.value(value)})"
            case In(name, values):
                return self._in(name, values)
            case And(parts):
                return self._join(parts, " AND ", empty=self._always(True))
            case Or(parts):
                return self._join(parts, " OR ", empty=self._always(False))
            case Not(part):
                return f"(NOT {self.compile(part)})"
            case Lt() | Le() | Gt() | Ge():
                return self._compare(condition)
        raise TypeError(f"unknown condition {condition!r}")

    def _join(self, parts: Any, glue: str, *, empty: str) -> str:
        compiled = [self.compile(part) for part in parts]
        return f"({glue.join(compiled)})" if compiled else empty

    def _in(self, name: str, values: Any) -> str:
        if not values:
            return self._always(False)
        placeholders = ", ".join(self.value(v) for v in values)
        return f"{self.name(name)} IN ({placeholders})"

    def _compare(self, condition: Lt | Le | Gt | Ge) -> str:
        value = condition.value
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("comparisons take a number or a string")
        kind = "S" if isinstance(value, str) else "N"
        n = self.name(condition.name)
        # The type guard keeps the semantics of evaluate() (other kinds compare
        # false) and spares emulators that fail on mixed-type comparisons.
        operator = _COMPARATORS[type(condition)]
        return f"(attribute_type({n}, {self.value(kind)}) AND {n} {operator} {self.value(value)})"

    def _always(self, truth: bool) -> str:
        pk = self.name("pk")
        if truth:
            return f"(attribute_exists({pk}) OR attribute_not_exists({pk}))"
        return f"(attribute_exists({pk}) AND attribute_not_exists({pk}))"
