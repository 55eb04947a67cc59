"""Quiet hours: a daily span of UTC hours when the bot never speaks unprompted.

Written ``"start-end"`` in whole hours, ``start`` included and ``end``
excluded: ``"23-7"`` is quiet from 23:00 to 06:59 (it wraps past midnight),
``"1-5"`` from 01:00 to 04:59. An empty text means no quiet hours.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

log = logging.getLogger(__name__)

HOURS_PER_DAY = 24
_PATTERN = re.compile(r"^\s*(\d{1,2})\s*-\s*(\d{1,2})\s*$")


class InvalidQuietHours(ValueError):
    """The text is not ``start-end`` with two different hours 0–24."""


@dataclass(frozen=True)
class QuietHours:
    start: int
    end: int

    def contains_hour(self, hour: int) -> bool:
        """True when the whole hour ``hour`` (0–23, UTC) is quiet."""
        if self.start < self.end:
            return self.start <= hour < self.end
        return hour >= self.start or hour < self.end

    def contains(self, at: float) -> bool:
        """True when the epoch time ``at`` falls in the quiet hours."""
        return self.contains_hour(datetime.fromtimestamp(at, UTC).hour)

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


def parse_quiet_hours(text: str) -> QuietHours | None:
    """``"23-7"`` → QuietHours(23, 7); ``""`` → None; anything else raises
    :class:`InvalidQuietHours` with a message naming the expected form."""
    if not text.strip():
        return None
    match = _PATTERN.match(text)
    if match is None:
        raise InvalidQuietHours(f"quiet hours {text!r}: expected 'start-end', e.g. '23-7'")
    start, end = (int(part) for part in match.groups())
    if start > HOURS_PER_DAY or end > HOURS_PER_DAY:
        raise InvalidQuietHours(f"quiet hours {text!r}: hours run from 0 to 24")
    start, end = start % HOURS_PER_DAY, end % HOURS_PER_DAY
    if start == end:
        raise InvalidQuietHours(f"quiet hours {text!r}: start and end must differ")
    return QuietHours(start, end)


def quiet_hours_or_none(text: str) -> QuietHours | None:
    """Like :func:`parse_quiet_hours`, but an invalid text is logged and means none."""
    try:
        return parse_quiet_hours(text)
    except InvalidQuietHours as exc:
        log.error("%s; proactive engagement runs without quiet hours", exc)
        return None
