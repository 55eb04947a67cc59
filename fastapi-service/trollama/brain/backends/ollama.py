"""The Ollama backend, on the official ``ollama`` client.

Streams ``/api/chat``, maps Ollama's separate ``thinking`` channel, and
manages which models are loaded (``/api/generate`` with ``keep_alive``,
``/api/ps``) for the VRAM orchestrator.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import httpx
import ollama

from trollama.brain.backends.base import (
    BackendError,
    BackendUnavailable,
    ChatMessage,
    GenerationOptions,
    ModelBackend,
    ModelNotFound,
    StreamChunk,
)
from trollama.brain.backends.errors import (
    is_context_overflow,
    map_error,
    overflow,
    public_url,
    status_error,
    transport_error,
)
from trollama.brain.backends.images import is_agent_overflow

if TYPE_CHECKING:
    from strands.models.ollama import OllamaModel

#: Connections open to the model server at once (streams beyond wait for one).
MAX_MODEL_CONNECTIONS = 256
#: Idle connections kept for reuse; as many as concurrent streams avoids reconnecting.
MAX_IDLE_MODEL_CONNECTIONS = 128
#: Seconds ``ping`` waits for the server.
PING_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class LoadedModel:
    """A model the Ollama server holds in memory (``/api/ps``)."""

    name: str
    size_bytes: int
    vram_bytes: int
    #: When Ollama unloads it unless used again (``None`` if not reported).
    expires_at: datetime | None


class OllamaBackend(ModelBackend):
    """Models served by one Ollama server."""

    name = "ollama"

    def __init__(
        self,
        host: str,
        *,
        keep_alive_seconds: int,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self.host = host
        self._server = f"The Ollama server at {public_url(host)}"
        self._keep_alive = keep_alive_seconds
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        # One connection pool, shared with the per-call clients of strands' OllamaModel.
        self._transport = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(
                max_connections=MAX_MODEL_CONNECTIONS,
                max_keepalive_connections=MAX_IDLE_MODEL_CONNECTIONS,
            )
        )
        self._client = ollama.AsyncClient(host, timeout=self._timeout, transport=self._transport)

    async def stream_chat(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        options: GenerationOptions | None = None,
    ) -> AsyncIterator[StreamChunk]:
        try:
            stream = await self._client.chat(
                model=model,
                messages=[_message(m) for m in messages],
                options=_options(options),
                format=_format(options),
                keep_alive=self._keep_alive,
                stream=True,
            )
            async with contextlib.aclosing(
                cast(AsyncGenerator[ollama.ChatResponse], stream)
            ) as parts:
                async for part in parts:
                    for chunk in _chunks(part):
                        yield chunk
                    if part.done:
                        return
        except Exception as exc:
            raise self._error(exc, model) from exc
        raise BackendUnavailable(f"{self._server} ended the answer early.")

    def stream_with_tools(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        tools: Sequence[str],
        *,
        options: GenerationOptions | None = None,
    ) -> AsyncIterator[StreamChunk]:
        strands_model = self._strands_model(model, options or GenerationOptions())
        from trollama.brain.backends import agent  # strands loads on first tool use

        return agent.stream_agent(
            strands_model, messages, tools, lambda exc: self._error(exc, model)
        )

    async def embed(
        self, model: str, texts: Sequence[str], *, dimensions: int | None = None
    ) -> list[list[float]]:
        try:
            response = await self._client.embed(
                model=model, input=list(texts), keep_alive=self._keep_alive, dimensions=dimensions
            )
        except Exception as exc:
            raise self._error(exc, model) from exc
        vectors = [list(vector) for vector in response.embeddings]
        if len(vectors) != len(texts):
            raise BackendUnavailable(f"{self._server} returned the wrong number of embeddings.")
        return vectors

    async def list_models(self) -> list[str]:
        try:
            listing = await self._client.list()
        except Exception as exc:
            raise self._error(exc, "") from exc
        return [entry.model for entry in listing.models if entry.model]

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(PING_TIMEOUT_SECONDS):
                await self._client.list()
        except Exception:
            return False
        return True

    async def load(self, model: str) -> None:
        """Load ``model`` into memory, kept for the configured keep-alive."""
        await self._generate_empty(model, self._keep_alive)

    async def unload(self, model: str) -> None:
        """Unload ``model`` from memory now."""
        await self._generate_empty(model, 0)

    async def loaded(self) -> list[LoadedModel]:
        """The models the server holds in memory now."""
        try:
            running = await self._client.ps()
        except Exception as exc:
            raise self._error(exc, "") from exc
        return [
            LoadedModel(
                name=entry.model or entry.name or "",
                size_bytes=int(entry.size or 0),
                vram_bytes=int(entry.size_vram or 0),
                expires_at=entry.expires_at,
            )
            for entry in running.models
        ]

    async def close(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]  # ollama leaves it unannotated

    # ------------------------------------------------------------------ internals
    async def _generate_empty(self, model: str, keep_alive: int) -> None:
        try:
            await self._client.generate(model=model, keep_alive=keep_alive)
        except Exception as exc:
            raise self._error(exc, model) from exc

    def _strands_model(self, model: str, options: GenerationOptions) -> OllamaModel:
        from strands.models.ollama import OllamaModel

        return OllamaModel(
            self.host,
            ollama_client_args={"timeout": self._timeout, "transport": self._transport},
            model_id=model,
            keep_alive=float(self._keep_alive),
            temperature=options.temperature,
            top_p=options.top_p,
            max_tokens=options.max_tokens,
            stop_sequences=list(options.stop) or None,
        )

    def _error(self, exc: BaseException, model: str) -> BackendError:
        return map_error(exc, lambda cause: self._known_error(cause, model), self._server)

    def _known_error(self, exc: BaseException, model: str) -> BackendError | None:
        if isinstance(exc, ollama.ResponseError):
            if is_context_overflow(str(exc.error)):
                return overflow(model)
            if exc.status_code == 404:
                return ModelNotFound(f"{self._server} does not have the model {model}.")
            return status_error(self._server, exc.status_code)
        if is_agent_overflow(exc):
            return overflow(model)
        return transport_error(exc, self._server)


def _message(message: ChatMessage) -> dict[str, Any]:
    payload: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.images:
        payload["images"] = list(message.images)
    return payload


def _options(options: GenerationOptions | None) -> dict[str, Any]:
    if options is None:
        return {}
    values = {
        "temperature": options.temperature,
        "top_p": options.top_p,
        "num_predict": options.max_tokens,
        "stop": list(options.stop) or None,
    }
    return {key: value for key, value in values.items() if value is not None}


def _format(options: GenerationOptions | None) -> dict[str, Any] | None:
    """Ollama's ``format``: a JSON Schema the answer must follow."""
    if options is None or options.json_schema is None:
        return None
    return dict(options.json_schema)


def _chunks(part: ollama.ChatResponse) -> list[StreamChunk]:
    text = part.message.content or ""
    thinking = part.message.thinking or ""
    chunks = [StreamChunk(text=text, thinking=thinking)] if text or thinking else []
    if part.done:
        chunks.append(
            StreamChunk(
                done=True,
                prompt_tokens=part.prompt_eval_count or 0,
                completion_tokens=part.eval_count or 0,
            )
        )
    return chunks
