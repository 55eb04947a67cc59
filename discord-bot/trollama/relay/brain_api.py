"""The relay's REST calls to the brain: conversation commands, model choice, health.

Every failure is a :class:`BrainApiError` whose ``message`` is safe to show
users as is: :class:`ConversationNotFound` (404), :class:`UnknownModel` (422),
and :class:`BrainUnavailable` for everything else (down, too slow, refused
credential, an answer it should not give); the details go to the log, never
the secret.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

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
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        response = await self._send(method, path, json=json, timeout=timeout, headers=headers)
        if response.is_success:
            return response
        factory = (errors or {}).get(response.status_code)
        if factory is not None:
            raise factory(_detail(response))
        raise _status_error(response)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            return await self._client.request(method, path, json=json, headers=headers, **extra)
        except httpx.TimeoutException as exc:
            log.warning("the brain did not answer %s %s in time", method, path)
            raise BrainUnavailable(TIMEOUT_MESSAGE) from exc
        except httpx.TransportError as exc:
            log.warning("cannot reach the brain for %s %s: %s", method, path, type(exc).__name__)
            raise BrainUnavailable(UNAVAILABLE_MESSAGE) from exc

    # ---- moderation audit and polls

    async def record_audit(self, entry: AuditEntry) -> None:
        """Write one moderation attempt to the audit log (a retry stores nothing new)."""
        body = entry.model_dump(mode="json")
        await self._call("POST", "/api/moderation/audit", json=body, errors=_AUDIT_ERRORS)

    async def audit_entries(self, guild_id: str, limit: int) -> list[AuditEntry]:
        """The guild's newest audit entries, newest first."""
        query = urlencode({"guild_id": guild_id, "limit": limit})
        response = await self._call("GET", f"/api/moderation/audit?{query}")
        return _parse(_AuditPage, response).entries

    async def create_poll(self, poll: NewPoll) -> Poll:
        """Open a poll whose message is posted (PollRefused: too many open, invalid)."""
        body = poll.model_dump(mode="json")
        errors = {409: _refused, 422: _refused}
        response = await self._call("POST", "/api/polls", json=body, errors=errors)
        return _parse(Poll, response)

    async def vote(
        self, poll_id: str, user_id: str, option: int, *, timeout: float | None = None
    ) -> VoteOutcome:
        """Count the user's vote (replacing an earlier one); PollClosed after the deadline."""
        path = f"/api/polls/{_segment(poll_id)}/votes"
        body = {"user_id": user_id, "option": option}
        response = await self._call("POST", path, json=body, errors=_POLL_ERRORS, timeout=timeout)
        return _parse(VoteOutcome, response)

    async def poll(self, poll_id: str) -> Poll:
        """A poll with its counts so far."""
        response = await self._call("GET", f"/api/polls/{_segment(poll_id)}", errors=_POLL_ERRORS)
        return _parse(Poll, response)

    async def open_polls(self) -> list[Poll]:
        """Every open poll, soonest deadline first (to re-arm timers after a restart)."""
        response = await self._call("GET", "/api/polls?open=true")
        return _parse(_PollList, response).polls

    async def close_poll(self, poll_id: str) -> PollResult:
        """Close the poll (idempotent) and return its result."""
        path = f"/api/polls/{_segment(poll_id)}/close"
        return _parse(PollResult, await self._call("POST", path, errors=_POLL_ERRORS))

    async def queue_stats(self) -> QueueSnapshot:
        """How many requests wait and run in the brain's queue."""
        return _parse(QueueSnapshot, await self._call("GET", "/api/admin/queue/stats"))

    # ---- persona, memory and admin

    async def memory_export(self, user_id: str) -> MemoryExport:
        """Everything the brain keeps about the user (profile, facts, relationship)."""
        response = await self._persona_call("GET", f"/api/users/{_segment(user_id)}/memories")
        return _parse(MemoryExport, response)

    async def forget_memory(self, user_id: str, fact_id: str) -> None:
        """Delete one of the user's facts (EntryNotFound when it is not theirs or gone)."""
        path = f"/api/users/{_segment(user_id)}/memories/{_segment(fact_id)}"
        await self._persona_call("DELETE", path)

    async def forget_all_memories(self, user_id: str) -> int:
        """Delete every fact about the user; how many there were."""
        path = f"/api/users/{_segment(user_id)}/memories"
        return _parse(_Deleted, await self._persona_call("DELETE", path)).deleted

    async def identity_entries(self, acting_user: str) -> list[IdentityInfo]:
        """The bot's identity entries, oldest first."""
        response = await self._persona_call("GET", "/api/admin/identity", acting_user=acting_user)
        return _parse(_IdentityList, response).entries

    async def add_identity(self, acting_user: str, kind: str, text: str) -> IdentityInfo:
        """Add a trait, a piece of lore or a fact & quirk."""
        body = {"kind": kind, "text": text}
        response = await self._persona_call(
            "POST", "/api/admin/identity", acting_user=acting_user, json=body
        )
        return _parse(IdentityInfo, response)

    async def edit_identity(
        self, acting_user: str, entry_id: str, *, text: str | None = None, kind: str | None = None
    ) -> IdentityInfo:
        """Change an identity entry's text or kind."""
        body = _given(text=text, kind=kind)
        path = f"/api/admin/identity/{_segment(entry_id)}"
        response = await self._persona_call("PATCH", path, acting_user=acting_user, json=body)
        return _parse(IdentityInfo, response)

    async def remove_identity(self, acting_user: str, entry_id: str) -> None:
        """Delete an identity entry."""
        path = f"/api/admin/identity/{_segment(entry_id)}"
        await self._persona_call("DELETE", path, acting_user=acting_user)

    async def user_memories(self, acting_user: str, user_id: str) -> list[FactInfo]:
        """A user's active facts, oldest first (EntryNotFound for a user never seen)."""
        path = f"/api/admin/users/{_segment(user_id)}/memories"
        return _parse(
            _FactList, await self._persona_call("GET", path, acting_user=acting_user)
        ).facts

    async def add_user_memory(
        self, acting_user: str, user_id: str, fact: str, category: str | None = None
    ) -> SavedFact:
        """Remember a fact about a user."""
        path = f"/api/admin/users/{_segment(user_id)}/memories"
        body = _given(fact=fact, category=category)
        response = await self._persona_call("POST", path, acting_user=acting_user, json=body)
        return _parse(SavedFact, response)

    async def edit_user_memory(
        self,
        acting_user: str,
        user_id: str,
        fact_id: str,
        *,
        fact: str | None = None,
        category: str | None = None,
    ) -> SavedFact:
        """Change a fact's text or category."""
        path = f"/api/admin/users/{_segment(user_id)}/memories/{_segment(fact_id)}"
        body = _given(fact=fact, category=category)
        response = await self._persona_call("PATCH", path, acting_user=acting_user, json=body)
        return _parse(SavedFact, response)

    async def remove_user_memory(self, acting_user: str, user_id: str, fact_id: str) -> None:
        """Forget one fact about a user."""
        path = f"/api/admin/users/{_segment(user_id)}/memories/{_segment(fact_id)}"
        await self._persona_call("DELETE", path, acting_user=acting_user)

    async def clear_user_memories(self, acting_user: str, user_id: str) -> int:
        """Forget every fact about a user; how many there were."""
        path = f"/api/admin/users/{_segment(user_id)}/memories"
        response = await self._persona_call("DELETE", path, acting_user=acting_user)
        return _parse(_Deleted, response).deleted

    async def relationship(self, acting_user: str, user_id: str) -> RelationshipInfo:
        """How the bot feels about a user."""
        path = f"/api/admin/users/{_segment(user_id)}/relationship"
        response = await self._persona_call("GET", path, acting_user=acting_user)
        return _parse(RelationshipInfo, response)

    async def set_relationship(
        self, acting_user: str, user_id: str, values: Mapping[str, float]
    ) -> RelationshipInfo:
        """Set some of anger, rapport, trust and formality."""
        path = f"/api/admin/users/{_segment(user_id)}/relationship"
        response = await self._persona_call(
            "PATCH", path, acting_user=acting_user, json=dict(values)
        )
        return _parse(RelationshipInfo, response)

    async def reset_relationship(self, acting_user: str, user_id: str) -> RelationshipInfo:
        """Back to the default values; returns them."""
        path = f"/api/admin/users/{_segment(user_id)}/relationship"
        response = await self._persona_call("DELETE", path, acting_user=acting_user)
        return _parse(RelationshipInfo, response)

    async def state_values(self, acting_user: str) -> dict[str, StateValue]:
        """Every global state key and its value."""
        response = await self._persona_call("GET", "/api/admin/state", acting_user=acting_user)
        return _parse(_StateValues, response).values

    async def set_state(self, acting_user: str, key: str, value: StateValue) -> None:
        """Set a global state key."""
        path = f"/api/admin/state/{_segment(key)}"
        await self._persona_call("PUT", path, acting_user=acting_user, json={"value": value})

    async def remove_state(self, acting_user: str, key: str) -> None:
        """Delete a global state key."""
        await self._persona_call(
            "DELETE", f"/api/admin/state/{_segment(key)}", acting_user=acting_user
        )

    async def update_channel(
        self,
        acting_user: str,
        channel_id: str,
        *,
        guild_id: str | None = None,
        log_opt_out: bool | None = None,
        proactive: bool | None = None,
    ) -> ChannelInfo:
        """Opt a channel out of the message log, or switch proactive engagement."""
        path = f"/api/admin/channels/{_segment(channel_id)}"
        body = _given(guild_id=guild_id, log_opt_out=log_opt_out, proactive=proactive)
        response = await self._persona_call("PATCH", path, acting_user=acting_user, json=body)
        return _parse(ChannelInfo, response)

    async def log_messages(self, messages: Sequence[Mapping[str, Any]]) -> LogResult:
        """Send a batch (at most 100) of channel messages to the short-term log."""
        body = {"messages": list(messages)}
        return _parse(LogResult, await self._persona_call("POST", "/api/log/messages", json=body))

    async def outbox(self, limit: int) -> list[OutboxItem]:
        """What the brain wants said or shown, oldest first."""
        response = await self._persona_call("GET", f"/api/relay/outbox?limit={int(limit)}")
        return _parse(_Outbox, response).items

    async def ack_outbox(self, item_id: str) -> None:
        """Done with an outbox item (idempotent)."""
        await self._persona_call("DELETE", f"/api/relay/outbox/{_segment(item_id)}")

    async def _persona_call(
        self, method: str, path: str, *, acting_user: str | None = None, json: Any = None
    ) -> httpx.Response:
        """``_call`` with the acting Discord user's header; 404 and 422 become
        :class:`EntryNotFound` and :class:`ValueRefused` with the brain's words."""
        headers = {ACTING_USER_HEADER: acting_user} if acting_user else None
        return await self._call(method, path, json=json, errors=_PERSONA_ERRORS, headers=headers)


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


# ---- moderation audit and polls: bodies and errors

POLL_NOT_FOUND_MESSAGE = "That poll does not exist any more."
POLL_CLOSED_MESSAGE = "This poll has closed."
POLL_REFUSED_MESSAGE = "The assistant refused that poll."


class PollNotFound(BrainApiError):
    """The brain knows no such poll (never created, or expired)."""


class PollClosed(BrainApiError):
    """The poll is closed or past its deadline."""


class PollRefused(BrainApiError):
    """The brain refused the request (too many open polls, invalid option, a vote race)."""


class AuditEntry(BaseModel):
    """One moderation attempt: ``outcome`` is done, refused or failed."""

    entry_id: str
    guild_id: str
    action: Literal["kick", "ban", "mute", "unmute"]
    outcome: Literal["done", "refused", "failed"]
    moderator_id: str
    moderator_name: str = ""
    target_id: str
    target_name: str = ""
    reason: str = ""
    detail: str = ""
    at: datetime


class _AuditPage(BaseModel):
    entries: list[AuditEntry]


class NewPoll(BaseModel):
    guild_id: str
    channel_id: str
    message_id: str
    author_id: str
    question: str
    options: list[str]
    duration_seconds: float


class Poll(BaseModel):
    poll_id: str
    guild_id: str
    channel_id: str
    message_id: str
    question: str
    options: list[str]
    closes_at: datetime
    closed: bool = False
    counts: list[int]


class _PollList(BaseModel):
    polls: list[Poll]


class PollResult(BaseModel):
    """``winners`` holds the most-voted options (several: a tie; none: no votes)."""

    poll_id: str
    question: str
    options: list[str]
    counts: list[int]
    total: int
    winners: list[int]


class VoteOutcome(BaseModel):
    """``previous``: the option the user had voted for before, if any."""

    poll_id: str
    option: int
    previous: int | None = None


class QueueSnapshot(BaseModel):
    queued: int
    running: int
    max_size: int


def _poll_error(kind: type[BrainApiError], fallback: str) -> ErrorFactory:
    def make(detail: Any) -> BrainApiError:
        return kind(detail if isinstance(detail, str) and detail else fallback)

    return make


_refused = _poll_error(PollRefused, POLL_REFUSED_MESSAGE)
_POLL_ERRORS: dict[int, ErrorFactory] = {
    404: _poll_error(PollNotFound, POLL_NOT_FOUND_MESSAGE),
    409: _poll_error(PollClosed, POLL_CLOSED_MESSAGE),
    422: _refused,
    429: _refused,
}
#: An entry the brain calls invalid will never be stored: not worth a retry.
_AUDIT_ERRORS: dict[int, ErrorFactory] = {422: _poll_error(BrainApiError, FAILED_MESSAGE)}


# ---- persona, memory and admin: bodies and errors

#: Header naming the Discord user an admin call is made for (the brain logs it).
ACTING_USER_HEADER = "X-Acting-User"
ENTRY_NOT_FOUND_MESSAGE = "The assistant has no such entry."
VALUE_REFUSED_MESSAGE = "The assistant refused that value."

StateValue = str | int | float | bool


class EntryNotFound(BrainApiError):
    """No such identity entry, memory, user or state key (the message says which)."""


class ValueRefused(BrainApiError):
    """The brain refused a value: too long, out of range, nothing to change."""


class IdentityInfo(BaseModel):
    entry_id: str
    kind: str
    text: str


class FactInfo(BaseModel):
    """A memory fact as the brain shows it (never with its embedding)."""

    model_config = ConfigDict(extra="allow")

    fact_id: str
    fact: str
    category: str
    reference_count: int = 1
    superseded_by: str | None = None
    embedded: bool = False


class SavedFact(BaseModel):
    fact: FactInfo
    notice: str | None = None


class RelationshipInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    anger: float
    rapport: float
    trust: float
    formality: float


class MemoryExport(BaseModel):
    """Everything the brain keeps about one user; unknown fields are kept for the export file."""

    model_config = ConfigDict(extra="allow")

    user_id: str
    facts: list[FactInfo]
    relationship: RelationshipInfo


class ChannelInfo(BaseModel):
    channel_id: str
    log_opt_out: bool
    proactive: bool


class LogResult(BaseModel):
    logged: int
    skipped_opted_out: int


class OutboxItem(BaseModel):
    """Something the brain wants the relay to do: ``say`` text in a channel, or show
    it as the bot's ``presence``."""

    id: str
    kind: str
    channel_id: str | None = None
    text: str
    created_at: float = 0.0


class _Outbox(BaseModel):
    items: list[OutboxItem]


class _IdentityList(BaseModel):
    entries: list[IdentityInfo]


class _FactList(BaseModel):
    facts: list[FactInfo]


class _Deleted(BaseModel):
    deleted: int


class _StateValues(BaseModel):
    values: dict[str, StateValue]


def _given(**values: Any) -> dict[str, Any]:
    """The values that are not None (a PATCH body changes only those)."""
    return {key: value for key, value in values.items() if value is not None}


def _persona_error(kind: type[BrainApiError], fallback: str) -> ErrorFactory:
    def make(detail: Any) -> BrainApiError:
        if isinstance(detail, str) and detail:
            return kind(detail[0].upper() + detail[1:])
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            problem = detail[0]  # FastAPI's validation error: where, and what is wrong
            where = ".".join(str(part) for part in problem.get("loc", [])[1:])
            return kind(f"{fallback} ({where}: {problem.get('msg', 'invalid')})")
        return kind(fallback)

    return make


_PERSONA_ERRORS: dict[int, ErrorFactory] = {
    404: _persona_error(EntryNotFound, ENTRY_NOT_FOUND_MESSAGE),
    422: _persona_error(ValueRefused, VALUE_REFUSED_MESSAGE),
}
