"""The relay's REST calls to the brain: conversation commands, model choice, health.

Every failure is a :class:`BrainApiError` whose ``message`` is safe to show
users as is: :class:`ConversationNotFound` (404), :class:`UnknownModel` (422),
and :class:`BrainUnavailable` for everything else (down, too slow, refused
credential, an answer it should not give); the details go to the log, never
the secret.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)

#: Seconds a summary may take (the brain asks a model and gives up after 60 s).
SUMMARIZE_TIMEOUT_SECONDS = 90.0
#: The relay's WebSocket path on the brain, removed to find the REST base URL.
RELAY_WS_PATH = "/ws/discord"
_HTTP_SCHEMES = {"ws": "http", "wss": "https"}

UNAVAILABLE_MESSAGE = "The assistant is unreachable right now. Please try again in a minute."
TIMEOUT_MESSAGE = "The assistant did not answer in time. Please try again in a minute."
REFUSED_MESSAGE = "The assistant refused this bot's credentials. Please tell a server admin."
NOT_FOUND_MESSAGE = "The assistant has no conversation here yet (nothing has been said)."
UNKNOWN_MODEL_MESSAGE = "That model is not available."
FAILED_MESSAGE = "The assistant could not do that right now. Please try again."

ConversationAction = Literal["reset", "summarize", "close"]
_Body = TypeVar("_Body", bound=BaseModel)


class BrainApiError(Exception):
    """A call to the brain failed; ``message`` is safe to show users."""

    def __init__(self, message: str = FAILED_MESSAGE) -> None:
        super().__init__(message)
        self.message = message


class BrainUnavailable(BrainApiError):
    """The brain is down, unreachable, too slow, failing or answering nonsense."""


class BrainRefused(BrainUnavailable):
    """The brain refused the relay's shared secret (an operator must fix the setting)."""


class ConversationNotFound(BrainApiError):
    """The brain knows no conversation with this id."""


class UnknownModel(BrainApiError):
    """The model is not one of the active profile's (the message lists the valid ones)."""


class _ModelEntry(BaseModel):
    name: str


class _ModelsBody(BaseModel):
    models: list[_ModelEntry]


class _Preference(BaseModel):
    model: str | None = None


class _ConversationBody(BaseModel):
    summary: str | None = None


ErrorFactory = Callable[[Any], BrainApiError]


def http_base(ws_url: str) -> str:
    """The brain's REST base URL from its relay WebSocket URL.

    ``ws://host:8001/ws/discord`` → ``http://host:8001`` (``wss`` → ``https``;
    a path prefix in front of ``/ws/discord`` is kept)."""
    parts = urlsplit(ws_url)
    scheme = _HTTP_SCHEMES.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError("the brain's URL must be a ws:// or wss:// URL")
    path = parts.path.rstrip("/").removesuffix(RELAY_WS_PATH)
    return urlunsplit((scheme, parts.netloc, path, "", ""))


class BrainApi:
    """The brain's REST API, called with the relay's shared secret."""

    def __init__(self, base_url: str, secret: str, *, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        # trust_env=False: the brain is on the relay's network, never behind an
        # internet proxy named in the environment.
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {secret}"},
            timeout=timeout,
            trust_env=False,
        )

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    async def __aenter__(self) -> BrainApi:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------ conversations

    async def reset(self, conversation_id: str) -> None:
        """Forget the conversation's history."""
        await self._conversation(conversation_id, "reset")

    async def summarize(self, conversation_id: str) -> str | None:
        """Summarize the conversation now; its summary (None when there is none yet)."""
        body = await self._conversation(
            conversation_id, "summarize", timeout=SUMMARIZE_TIMEOUT_SECONDS
        )
        return body.summary

    async def close(self, conversation_id: str) -> None:
        """Close the conversation and delete its history."""
        await self._conversation(conversation_id, "close")

    async def _conversation(
        self, conversation_id: str, action: ConversationAction, *, timeout: float | None = None
    ) -> _ConversationBody:
        path = f"/api/conversations/{_segment(conversation_id)}/{action}"
        errors = {404: lambda _detail: ConversationNotFound(NOT_FOUND_MESSAGE)}
        response = await self._call("POST", path, errors=errors, timeout=timeout)
        return _parse(_ConversationBody, response)

    # ------------------------------------------------------------ models

    async def models(self) -> list[str]:
        """Names of the active profile's models."""
        body = _parse(_ModelsBody, await self._call("GET", "/api/models"))
        return [model.name for model in body.models]

    async def get_model(self, user_id: str) -> str | None:
        """The model the user chose (None: the router chooses)."""
        response = await self._call("GET", f"/api/users/{_segment(user_id)}/model")
        return _parse(_Preference, response).model

    async def set_model(self, user_id: str, model: str | None) -> None:
        """Use ``model`` for the user's requests (None goes back to automatic routing)."""
        path = f"/api/users/{_segment(user_id)}/model"
        errors = {422: _unknown_model}
        await self._call("PUT", path, json={"model": model}, errors=errors)

    # ------------------------------------------------------------ health

    async def health(self) -> dict[str, Any]:
        """The brain's health report (also when it reports itself unhealthy)."""
        response = await self._send("GET", "/health")
        if response.status_code not in (httpx.codes.OK, httpx.codes.SERVICE_UNAVAILABLE):
            raise _status_error(response)
        report = _json(response)
        if not isinstance(report, dict):
            raise BrainUnavailable(FAILED_MESSAGE)
        return report

    # ------------------------------------------------------------ plumbing

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        errors: Mapping[int, ErrorFactory] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        response = await self._send(method, path, json=json, timeout=timeout)
        if response.is_success:
            return response
        factory = (errors or {}).get(response.status_code)
        if factory is not None:
            raise factory(_detail(response))
        raise _status_error(response)

    async def _send(
        self, method: str, path: str, *, json: Any = None, timeout: float | None = None
    ) -> httpx.Response:
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            return await self._client.request(method, path, json=json, **extra)
        except httpx.TimeoutException as exc:
            log.warning("the brain did not answer %s %s in time", method, path)
            raise BrainUnavailable(TIMEOUT_MESSAGE) from exc
        except httpx.TransportError as exc:
            log.warning("cannot reach the brain for %s %s: %s", method, path, type(exc).__name__)
            raise BrainUnavailable(UNAVAILABLE_MESSAGE) from exc


def _segment(value: str) -> str:
    """``value`` quoted as one path segment."""
    return quote(value, safe="")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        log.warning("the brain answered %s with a body that is not JSON", response.url.path)
        raise BrainUnavailable(FAILED_MESSAGE) from None


def _parse(model: type[_Body], response: httpx.Response) -> _Body:
    try:
        return model.model_validate(_json(response))
    except ValidationError:
        log.warning("the brain's answer to %s has an unexpected shape", response.url.path)
        raise BrainUnavailable(FAILED_MESSAGE) from None


def _detail(response: httpx.Response) -> Any:
    """The ``detail`` of an error body (a string, or FastAPI's validation list)."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("detail") if isinstance(body, dict) else None


def _unknown_model(detail: Any) -> BrainApiError:
    return UnknownModel(detail if isinstance(detail, str) and detail else UNKNOWN_MODEL_MESSAGE)


def _status_error(response: httpx.Response) -> BrainApiError:
    status = response.status_code
    log.warning("the brain answered %s with HTTP %d", response.url.path, status)
    if status in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
        return BrainRefused(REFUSED_MESSAGE)
    return BrainUnavailable(FAILED_MESSAGE)
