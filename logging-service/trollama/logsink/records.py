"""Classifying one received line: a record to write, or why it is dropped.

Only JSON is parsed, never pickle: a record is a JSON object with a string
``level`` and a ``msg``, as ``JsonFormatter`` writes it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

#: Days a record's timestamp may lie ahead of the sink's clock (skewed hosts).
MAX_FUTURE_SKEW_DAYS = 1
_LEVELS = logging.getLevelNamesMapping()


class Outcome(StrEnum):
    """What became of a received line (the ``outcome`` label of the metric)."""

    WRITTEN = "written"
    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    BINARY = "binary"
    FAILED = "failed"


@dataclass(frozen=True)
class Record:
    """A valid line, its numeric level and the day directory it belongs to."""

    raw: bytes
    level: int
    day: date


def parse_line(raw: bytes, arrival: datetime, retention_days: int) -> Record | Outcome:
    """The record in ``raw``, or the outcome saying why it is dropped."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Outcome.BINARY
    try:
        entry = json.loads(text)
    except (ValueError, RecursionError):
        return Outcome.MALFORMED
    if not isinstance(entry, dict):
        return Outcome.MALFORMED
    level, has_msg = entry.get("level"), "msg" in entry
    if not isinstance(level, str) or not has_msg:
        return Outcome.MALFORMED
    day = record_day(entry.get("ts"), arrival, retention_days)
    return Record(raw=raw, level=_LEVELS.get(level.upper(), logging.INFO), day=day)


def record_day(ts: object, arrival: datetime, retention_days: int) -> date:
    """The UTC day of ``ts``; the arrival day when it is missing, invalid or out of range."""
    today = arrival.astimezone(UTC).date()
    if not isinstance(ts, str):
        return today
    try:
        stamp = datetime.fromisoformat(ts)
    except ValueError:
        return today
    day = (stamp if stamp.tzinfo is None else stamp.astimezone(UTC)).date()
    oldest = today - timedelta(days=retention_days)
    newest = today + timedelta(days=MAX_FUTURE_SKEW_DAYS)
    return day if oldest <= day <= newest else today
