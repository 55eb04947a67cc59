"""Bodies of the REST endpoints (the WebSocket frames live in trollama.common.protocol)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, RootModel

from trollama.common.protocol import (
    MAX_ATTACHMENTS,
    MAX_CONTENT_CHARS,
    Attachment,
    DoneFrame,
    ErrorFrame,
    Identifier,
    ServerFrame,
)


class ChatRequest(BaseModel):
    """One message to the assistant over HTTP."""

    model_config = ConfigDict(extra="forbid")

    content: str = Field(max_length=MAX_CONTENT_CHARS)
    conversation_id: Identifier | None = Field(
        default=None, description="omit to start a new conversation"
    )
    request_id: Identifier | None = Field(
        default=None, description="idempotency key; sending it again re-attaches"
    )
    user_id: Identifier | None = Field(
        default=None, description="only for the relay; a user's token names the user"
    )
    user_name: str = Field(default="", max_length=100)
    model_override: str | None = Field(default=None, max_length=100)
    attachments: list[Attachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)


class StreamLine(RootModel[ServerFrame]):
    """One line of the NDJSON stream: a server frame."""


class RequestStatus(BaseModel):
    request_id: str
    conversation_id: str
    state: str
    position: int | None = None
    eta_seconds: float | None = None
    route: str | None = None
    model: str | None = None
    attempts: int = 0
    result: DoneFrame | None = None
    error: ErrorFrame | None = None


class ConversationAction(StrEnum):
    RESET = "reset"
    SUMMARIZE = "summarize"
    CLOSE = "close"


class ConversationResult(BaseModel):
    conversation_id: str
    action: ConversationAction
    summary: str | None = None
    message: str


class ModelInfo(BaseModel):
    name: str
    backend: str
    size_gb: float | None = None
    routes: list[str] = Field(default_factory=list)


class ModelsResponse(BaseModel):
    profile: str
    models: list[ModelInfo]


class ErrorResponse(BaseModel):
    detail: str


class ModelPreference(BaseModel):
    """A user's model choice; ``model: null`` lets the router choose."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, max_length=100)
