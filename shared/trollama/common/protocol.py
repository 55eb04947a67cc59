"""WebSocket protocol between clients (relay, web chat, CLI) and the brain.

Every frame is one JSON object with a ``type`` discriminator. The prose
description, with examples, lives in ``docs/protocol.md``; keep both in step.

Client → brain: ``request``, ``cancel``, ``position``, ``ping``.
Brain → client: ``accepted``, ``status``, ``delta``, ``done``, ``error``, ``pong``.
"""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

PROTOCOL_VERSION = 1
#: Largest message text accepted, in characters (Discord allows 4,000 with Nitro).
MAX_CONTENT_CHARS = 16_000
#: Largest raw WebSocket frame the brain reads, in bytes (attachments are base64).
MAX_FRAME_BYTES = 16 * 1024 * 1024
#: Longest client-chosen identifier, in characters.
MAX_ID_CHARS = 128
#: Most attachments on one request.
MAX_ATTACHMENTS = 10
#: Largest attachment, in bytes (MAX_FILE_SIZE_MB in the reference settings).
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
#: Custom emoji names sent with one request, and the longest name (Discord: 32).
MAX_EMOJIS = 50
MAX_EMOJI_NAME_CHARS = 32
#: Base64 characters that encode MAX_ATTACHMENT_BYTES.
MAX_ATTACHMENT_B64_CHARS = (MAX_ATTACHMENT_BYTES + 2) // 3 * 4

Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^[\w:.@#-]+$")]


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Attachment(_Frame):
    """A file sent with a request (image for vision, text file inlined)."""

    filename: str = Field(max_length=256)
    content_type: str = Field(max_length=128)
    size_bytes: int = Field(ge=0, le=MAX_ATTACHMENT_BYTES)
    data_b64: str | None = Field(default=None, max_length=MAX_ATTACHMENT_B64_CHARS)
    url: str | None = Field(default=None, max_length=2048)

    @field_validator("data_b64")
    @classmethod
    def _valid_base64(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("attachment data is not valid base64") from None
        return value


class Artifact(_Frame):
    """A file produced by the brain for the user (code, document)."""

    filename: str
    content_type: str
    content: str


class Usage(_Frame):
    prompt_tokens: int = 0
    completion_tokens: int = 0


# ---------------------------------------------------------------- client → brain


class RequestFrame(_Frame):
    """Ask the assistant something. ``request_id`` is the idempotency key:
    sending the same id again never creates a second request; it re-attaches
    to the first one (and replays its result when already finished)."""

    type: Literal["request"] = "request"
    request_id: Identifier
    user_id: Identifier
    user_name: str = Field(default="", max_length=100)
    conversation_id: Identifier
    channel_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    guild_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    content: str = Field(max_length=MAX_CONTENT_CHARS)
    attachments: list[Attachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    model_override: str | None = Field(default=None, max_length=100)
    is_admin: bool = False
    #: Names of the server's custom emoji the answer may use as ``:name:``.
    emojis: list[Annotated[str, Field(max_length=MAX_EMOJI_NAME_CHARS)]] = Field(
        default_factory=list, max_length=MAX_EMOJIS
    )


class CancelFrame(_Frame):
    """Cancel a queued or running request."""

    type: Literal["cancel"] = "cancel"
    request_id: Identifier


class PositionFrame(_Frame):
    """Ask for a request's current queue position and ETA."""

    type: Literal["position"] = "position"
    request_id: Identifier


class PingFrame(_Frame):
    type: Literal["ping"] = "ping"


ClientFrame = Annotated[
    RequestFrame | CancelFrame | PositionFrame | PingFrame, Field(discriminator="type")
]
client_frame_adapter: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


# ---------------------------------------------------------------- brain → client


class RequestState(StrEnum):
    """Lifecycle of a request: queued → running → done | failed | cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (RequestState.DONE, RequestState.FAILED, RequestState.CANCELLED)


class AcceptedFrame(_Frame):
    """The request is persisted; nothing accepted is ever dropped."""

    type: Literal["accepted"] = "accepted"
    request_id: str
    position: int = Field(ge=0, description="0 = running now; 1 = next")
    eta_seconds: float = Field(ge=0)
    duplicate: bool = Field(default=False, description="the id was already known")
    notice: str | None = Field(default=None, description="e.g. the soft-maintenance message")


class StatusKind(StrEnum):
    QUEUED = "queued"
    ROUTING = "routing"
    THINKING = "thinking"
    TOOL = "tool"
    GENERATING = "generating"
    RETRYING = "retrying"


class StatusFrame(_Frame):
    """Progress while waiting. ``retrying`` means: discard any partial text
    received so far, the answer starts again from the beginning."""

    type: Literal["status"] = "status"
    request_id: str
    status: StatusKind
    message: str = ""
    position: int | None = None
    eta_seconds: float | None = None
    route: str | None = None
    model: str | None = None


class DeltaFrame(_Frame):
    """A piece of the answer, in order; ``seq`` starts at 0 per attempt."""

    type: Literal["delta"] = "delta"
    request_id: str
    seq: int = Field(ge=0)
    text: str


class DoneFrame(_Frame):
    """The answer is complete; ``text`` is the whole answer (think tags removed)."""

    type: Literal["done"] = "done"
    request_id: str
    text: str
    route: str | None = None
    model: str | None = None
    usage: Usage = Field(default_factory=Usage)
    artifacts: list[Artifact] = Field(default_factory=list)


class ErrorCode(StrEnum):
    INVALID_FRAME = "invalid_frame"
    UNAUTHORIZED = "unauthorized"
    QUEUE_FULL = "queue_full"
    MAINTENANCE = "maintenance"
    RATE_LIMITED = "rate_limited"
    BUDGET_EXCEEDED = "budget_exceeded"
    NOT_FOUND = "not_found"
    CANCELLED = "cancelled"
    MODEL_UNAVAILABLE = "model_unavailable"
    FAILED = "failed"
    INTERNAL = "internal"


class ErrorFrame(_Frame):
    """Something went wrong. ``message`` is safe to show to the user as is."""

    type: Literal["error"] = "error"
    request_id: str | None = None
    code: ErrorCode
    message: str
    retryable: bool = False


class PongFrame(_Frame):
    type: Literal["pong"] = "pong"


ServerFrame = Annotated[
    AcceptedFrame | StatusFrame | DeltaFrame | DoneFrame | ErrorFrame | PongFrame,
    Field(discriminator="type"),
]
server_frame_adapter: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)
