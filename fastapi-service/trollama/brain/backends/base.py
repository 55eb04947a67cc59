"""The interface every model backend implements.

The pipeline, the router and the summarizer only see :class:`ModelBackend`;
which server serves which model is decided by :mod:`.registry` from the active
profile. Cancelling the consuming task (or closing the iterator) must close
the HTTP stream to the model server promptly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str
    #: Base64-encoded images (vision models only).
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class GenerationOptions:
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    #: Structured output: the answer must be JSON matching this JSON Schema.
    json_schema: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class StreamChunk:
    """One piece of a streamed answer.

    ``text`` is answer text as the model produced it (it may still contain
    ``<think>`` tags: filtering is the pipeline's job); ``thinking`` is text
    from a separate reasoning channel; ``tool`` names a tool being called.
    The last chunk has ``done=True`` and the token counts."""

    text: str = ""
    thinking: str = ""
    tool: str | None = None
    done: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call; ``run`` gets the arguments the model chose."""

    name: str
    description: str
    parameters: dict[str, object] = field(default_factory=dict)


class BackendError(Exception):
    """The model server failed. ``message`` is safe to show to users."""

    retryable: bool = True


class BackendUnavailable(BackendError):
    """Connection refused, timed out, or a 5xx answer."""


class ModelNotFound(BackendError):
    retryable = False


class ContextOverflow(BackendError):
    retryable = False


class ModelBackend(ABC):
    """A model server."""

    #: Short name used in settings, profiles and health ("ollama", "openai").
    name: str

    @abstractmethod
    def stream_chat(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        options: GenerationOptions | None = None,
    ) -> AsyncIterator[StreamChunk]:
        """Stream the answer, ending with a chunk whose ``done`` is True."""

    @abstractmethod
    def stream_with_tools(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        tools: Sequence[str],
        *,
        options: GenerationOptions | None = None,
    ) -> AsyncIterator[StreamChunk]:
        """Like :meth:`stream_chat`, but the model may call the named tools
        (from :mod:`.tools`); runs through a strands-agents Agent."""

    async def complete(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        options: GenerationOptions | None = None,
    ) -> str:
        """The whole answer text at once (router, summarizer)."""
        parts = [c.text async for c in self.stream_chat(model, messages, options=options)]
        return "".join(parts)

    async def embed(
        self, model: str, texts: Sequence[str], *, dimensions: int | None = None
    ) -> list[list[float]]:
        """One embedding vector per text (Ollama /api/embed, OpenAI /v1/embeddings);
        ``dimensions`` asks a model that supports it for shorter vectors."""
        raise BackendError(f"The {self.name} server does not serve embeddings.")

    @abstractmethod
    async def list_models(self) -> list[str]:
        """Models the server has (Ollama /api/tags, OpenAI /v1/models)."""

    @abstractmethod
    async def ping(self) -> bool:
        """True when the server answers."""

    @abstractmethod
    async def close(self) -> None: ...
