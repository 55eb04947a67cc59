"""The request log and the scripted faults (429 storms, injected errors)."""

from __future__ import annotations

import fnmatch
import hashlib
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trollama.testkit.fake_discord.payloads import Json, error
from trollama.testkit.fake_discord.records import GatewayFrame, RecordedRequest

#: REST requests remembered (oldest dropped first).
MAX_RECORDED_REQUESTS = 5_000
#: Gateway frames remembered (oldest dropped first).
MAX_RECORDED_FRAMES = 5_000
#: Scripted faults (429s, errors) that may wait for their requests at once.
MAX_PENDING_FAULTS = 100
#: Bucket size the fake advertises on successful requests (it never throttles by itself).
ADVERTISED_BUCKET_LIMIT = 50
#: Seconds until the advertised bucket resets.
ADVERTISED_RESET_SECONDS = 1.0
#: Discord's requests go through Google's load balancer; discord.py honours a 429 only with it.
VIA = "1.1 google"


@dataclass
class Fault:
    """The next ``remaining`` requests matching ``pattern`` fail."""

    pattern: str
    remaining: int
    status: int
    body: Json
    retry_after: float | None = None
    is_global: bool = False

    def matches(self, method: str, path: str, route: str | None) -> bool:
        candidates = [f"{method} {path}"] + ([f"{method} {route}"] if route else [])
        return any(fnmatch.fnmatchcase(c, self.pattern) for c in candidates)


@dataclass
class Answer:
    """A scripted response: status, JSON body, extra headers."""

    status: int
    body: Json
    headers: dict[str, str] = field(default_factory=dict)


def bucket_of(route: str | None) -> str:
    """A stable rate-limit bucket hash for a route template."""
    return hashlib.sha256((route or "?").encode()).hexdigest()[:16]


def ratelimit_headers(route: str | None, *, remaining: int, reset_after: float) -> dict[str, str]:
    """The ``X-RateLimit-*`` headers Discord sends with every response."""
    return {
        "Via": VIA,
        "X-RateLimit-Limit": str(ADVERTISED_BUCKET_LIMIT),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        "X-RateLimit-Bucket": bucket_of(route),
    }


def normal_headers(route: str | None) -> dict[str, str]:
    return ratelimit_headers(
        route, remaining=ADVERTISED_BUCKET_LIMIT - 1, reset_after=ADVERTISED_RESET_SECONDS
    )


def _rate_limited(fault: Fault, route: str | None) -> Answer:
    retry_after = fault.retry_after or 0.0
    headers = ratelimit_headers(route, remaining=0, reset_after=retry_after)
    headers["Retry-After"] = str(math.ceil(retry_after))
    headers["X-RateLimit-Scope"] = "global" if fault.is_global else "user"
    if fault.is_global:
        headers["X-RateLimit-Global"] = "true"
    return Answer(429, fault.body, headers)


class Recorder:
    """Every REST request and gateway frame, plus the pending faults."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.requests: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED_REQUESTS)
        self.frames: deque[GatewayFrame] = deque(maxlen=MAX_RECORDED_FRAMES)
        #: Gateway frames the fake did not understand.
        self.unknown_frames: deque[GatewayFrame] = deque(maxlen=MAX_RECORDED_FRAMES)
        #: Exceptions the fake raised while answering (its own bugs), as text.
        self.internal_errors: deque[str] = deque(maxlen=MAX_RECORDED_FRAMES)
        self._faults: list[Fault] = []

    def record(self, request: RecordedRequest) -> None:
        self.requests.append(request)

    def record_frame(
        self, op: int | None, data: Any, session_id: str | None, *, known: bool
    ) -> None:
        frame = GatewayFrame(op, data, session_id, self._clock())
        self.frames.append(frame)
        if not known:
            self.unknown_frames.append(frame)

    def _add(self, fault: Fault) -> None:
        if len(self._faults) >= MAX_PENDING_FAULTS:
            raise ValueError(f"more than {MAX_PENDING_FAULTS} scripted faults are pending")
        self._faults.append(fault)

    def rate_limit(self, pattern: str, count: int, retry_after: float, is_global: bool) -> None:
        body = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": is_global,
        }
        self._add(Fault(pattern, count, 429, body, retry_after, is_global))

    def fail(self, pattern: str, count: int, status: int, code: int, message: str) -> None:
        self._add(Fault(pattern, count, status, error(code, message)))

    def fault_for(self, method: str, path: str, route: str | None) -> Answer | None:
        """The scripted answer for this request, if a pending fault matches it."""
        self._faults = [f for f in self._faults if f.remaining > 0]
        for fault in self._faults:
            if fault.matches(method, path, route):
                fault.remaining -= 1
                if fault.status == 429:
                    return _rate_limited(fault, route)
                return Answer(fault.status, fault.body, {"Via": VIA})
        return None
