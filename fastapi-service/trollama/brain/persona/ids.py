"""Time-ordered identifiers and timestamp sort keys."""

from __future__ import annotations

import secrets

#: Digits of a microsecond timestamp in a sort key (good until the year 5138).
TIMESTAMP_DIGITS = 17


def time_key(at: float) -> str:
    """A sort key that orders by time: epoch microseconds, zero-padded."""
    return f"{max(0, round(at * 1_000_000)):0{TIMESTAMP_DIGITS}d}"


def new_id(at: float) -> str:
    """A unique id that sorts by creation time."""
    return f"{time_key(at)}{secrets.token_hex(4)}"
