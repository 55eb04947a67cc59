"""Turning model-server failures into the backend errors of :mod:`.base`.

Messages name the server (without credentials) and the model, never the
server's raw error text: that stays on the exception chain for the logs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pydantic

from trollama.brain.backends.base import (
    BackendError,
    BackendUnavailable,
    ContextOverflow,
)

#: Phrases model servers use when a prompt does not fit the context window
#: (Ollama, llama.cpp, vLLM, SGLang, OpenAI), lower case.
OVERFLOW_PHRASES: tuple[str, ...] = (
    "context length",
    "context window",
    "context_length_exceeded",
    "maximum context",
    "exceeds the available context",
    "exceeded max context",
    "max_model_len",
    "too many tokens",
    "prompt is too long",
)
#: Exceptions wrapped inside one another that are examined, at most.
MAX_CHAIN_DEPTH = 16

#: Maps one exception to a backend error, or ``None`` when it does not know it.
ErrorMapper = Callable[[BaseException], BackendError | None]


def public_url(url: str) -> str:
    """``url`` without user name or password, safe for messages and logs."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def is_context_overflow(text: str) -> bool:
    """True when an error text says the prompt exceeds the context window."""
    lowered = text.lower()
    return any(phrase in lowered for phrase in OVERFLOW_PHRASES)


def overflow(model: str) -> ContextOverflow:
    """The error for a conversation too long for ``model``."""
    return ContextOverflow(f"The conversation is too long for the model {model}.")


def refused(server: str, status: int) -> BackendError:
    """A request the server rejected for good (a 4xx other than 404)."""
    error = BackendError(f"{server} refused the request (HTTP {status}).")
    error.retryable = False
    return error


def status_error(server: str, status: int) -> BackendError:
    """The error for an HTTP error status that is not 404 or a context overflow."""
    if status < 0:
        return BackendUnavailable(f"{server} failed while answering.")
    if status >= 500 or status in (408, 429):
        return BackendUnavailable(f"{server} failed to answer (HTTP {status}).")
    return refused(server, status)


def transport_error(exc: BaseException, server: str) -> BackendError | None:
    """Map network-level failures (refused, timed out, dropped, unreadable)."""
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return BackendUnavailable(f"{server} did not answer in time.")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return BackendUnavailable(f"{server} dropped the connection mid-answer.")
    if isinstance(exc, httpx.TransportError | ConnectionError):
        return BackendUnavailable(f"{server} is not reachable.")
    if isinstance(exc, json.JSONDecodeError | pydantic.ValidationError):
        return BackendUnavailable(f"{server} sent an answer that could not be read.")
    return None


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it wraps (``original_exception``, ``__cause__``)."""
    current: BaseException | None = exc
    for _ in range(MAX_CHAIN_DEPTH):
        if current is None:
            return
        yield current
        wrapped = getattr(current, "original_exception", None)
        current = wrapped if isinstance(wrapped, BaseException) else current.__cause__


def map_error(exc: BaseException, mapper: ErrorMapper, server: str) -> BackendError:
    """The backend error for ``exc``, looking through wrapping exceptions."""
    for cause in causes(exc):
        if isinstance(cause, BackendError):
            return cause
        mapped = mapper(cause)
        if mapped is not None:
            return mapped
    error = BackendError(f"{server} failed unexpectedly.")
    error.retryable = False
    return error
