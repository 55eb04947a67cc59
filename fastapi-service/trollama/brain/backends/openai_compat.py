"""The backend for OpenAI-compatible servers (SGLang, vLLM, TensorRT-LLM).

Streams ``/v1/chat/completions`` with the official ``openai`` client, asking
for the usage chunk at the end (``stream_options.include_usage``); maps the
``reasoning_content`` (or ``reasoning``) channel these servers add to
:attr:`StreamChunk.thinking`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import openai
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

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
from trollama.brain.backends.images import TOOL_RESULT_PREFIX, image_mime, is_agent_overflow

#: Seconds ``ping`` waits for the server.
PING_TIMEOUT_SECONDS = 3.0
#: Delta fields that carry reasoning text on OpenAI-compatible servers.
REASONING_FIELDS = ("reasoning_content", "reasoning")


class OpenAICompatBackend(ModelBackend):
    """Models served by one OpenAI-compatible server.

    ``base_url`` is the API root (``http://host:30000/v1``); a bare
    ``http://host:30000`` gets ``/v1`` appended."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        connect_timeout: float,
        read_timeout: float,
        name: str = "openai",
    ) -> None:
        self.name = name
        self.base_url = api_root(base_url)
        self._server = f"The model server at {public_url(self.base_url)}"
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=api_key,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            # The pipeline decides about retries and fallbacks.
            max_retries=0,
        )

    async def stream_chat(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        options: GenerationOptions | None = None,
    ) -> AsyncIterator[StreamChunk]:
        usage: tuple[int, int] = (0, 0)
        finished = False
        try:
            stream = await self._client.chat.completions.create(
                model=model,
                messages=[_message(m) for m in messages],
                stream=True,
                stream_options={"include_usage": True},
                **_params(options or GenerationOptions()),
            )
            async with stream:
                async for part in stream:
                    chunk, finished, usage = _read(part, finished, usage)
                    if chunk is not None:
                        yield chunk
        except Exception as exc:
            raise self._error(exc, model) from exc
        if not finished:
            raise BackendUnavailable(f"{self._server} ended the answer early.")
        yield StreamChunk(done=True, prompt_tokens=usage[0], completion_tokens=usage[1])

    def stream_with_tools(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        tools: Sequence[str],
        *,
        options: GenerationOptions | None = None,
    ) -> AsyncIterator[StreamChunk]:
        from strands.models.openai import OpenAIModel

        strands_model = OpenAIModel(
            client=self._client,
            model_id=model,
            params=_params(options or GenerationOptions()),
        )
        from trollama.brain.backends import agent  # strands loads on first tool use

        return agent.stream_agent(
            strands_model, messages, tools, lambda exc: self._error(exc, model)
        )

    async def embed(
        self, model: str, texts: Sequence[str], *, dimensions: int | None = None
    ) -> list[list[float]]:
        extra: dict[str, Any] = {} if dimensions is None else {"dimensions": dimensions}
        try:
            response = await self._client.embeddings.create(model=model, input=list(texts), **extra)
        except Exception as exc:
            raise self._error(exc, model) from exc
        vectors = [list(entry.embedding) for entry in sorted(response.data, key=lambda e: e.index)]
        if len(vectors) != len(texts):
            raise BackendUnavailable(f"{self._server} returned the wrong number of embeddings.")
        return vectors

    async def list_models(self) -> list[str]:
        try:
            return [entry.id async for entry in self._client.models.list()]
        except Exception as exc:
            raise self._error(exc, "") from exc

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(PING_TIMEOUT_SECONDS):
                await self._client.models.list()
        except Exception:
            return False
        return True

    async def close(self) -> None:
        await self._client.close()

    # ------------------------------------------------------------------ errors
    def _error(self, exc: BaseException, model: str) -> BackendError:
        return map_error(exc, lambda cause: self._known_error(cause, model), self._server)

    def _known_error(self, exc: BaseException, model: str) -> BackendError | None:
        if is_agent_overflow(exc):
            return overflow(model)
        if isinstance(exc, openai.APIStatusError):
            if exc.code == "context_length_exceeded" or is_context_overflow(exc.message):
                return overflow(model)
            if exc.status_code == 404:
                return ModelNotFound(f"{self._server} does not have the model {model}.")
            return status_error(self._server, exc.status_code)
        if isinstance(exc, openai.APITimeoutError):
            return BackendUnavailable(f"{self._server} did not answer in time.")
        if isinstance(exc, openai.APIConnectionError):
            return BackendUnavailable(f"{self._server} is not reachable.")
        if isinstance(exc, openai.APIError):
            if is_context_overflow(exc.message):
                return overflow(model)
            return BackendUnavailable(f"{self._server} failed while answering.")
        return transport_error(exc, self._server)


def api_root(base_url: str) -> str:
    """The API root: ``base_url``, with ``/v1`` appended when it has no path."""
    trimmed = base_url.rstrip("/")
    return trimmed if urlsplit(trimmed).path else f"{trimmed}/v1"


def _read(
    part: ChatCompletionChunk, finished: bool, usage: tuple[int, int]
) -> tuple[StreamChunk | None, bool, tuple[int, int]]:
    """One streamed chunk: (what to yield, finished yet, (prompt, completion) tokens)."""
    if part.usage is not None:
        usage = (part.usage.prompt_tokens, part.usage.completion_tokens)
    if not part.choices:
        return None, finished, usage
    choice = part.choices[0]
    finished = finished or choice.finish_reason is not None
    text = choice.delta.content or ""
    thinking = _reasoning(choice.delta)
    chunk = StreamChunk(text=text, thinking=thinking) if text or thinking else None
    return chunk, finished, usage


def _reasoning(delta: object) -> str:
    for field in REASONING_FIELDS:
        value = getattr(delta, field, None)
        if isinstance(value, str) and value:
            return value
    return ""


def _message(message: ChatMessage) -> ChatCompletionMessageParam:
    if message.role == "tool":
        # A tool result without the id of its call: replay it as text.
        return {"role": "user", "content": TOOL_RESULT_PREFIX + message.content}
    if not message.images:
        return cast(ChatCompletionMessageParam, {"role": message.role, "content": message.content})
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
    parts += [
        {
            "type": "image_url",
            "image_url": {"url": f"data:{image_mime(image)};base64,{image}"},
        }
        for image in message.images
    ]
    return cast(ChatCompletionMessageParam, {"role": "user", "content": parts})


def _params(options: GenerationOptions) -> dict[str, Any]:
    values: dict[str, Any] = {
        "temperature": options.temperature,
        "top_p": options.top_p,
        "max_tokens": options.max_tokens,
        "stop": list(options.stop) or None,
        "response_format": (
            {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": dict(options.json_schema)},
            }
            if options.json_schema is not None
            else None
        ),
    }
    return {key: value for key, value in values.items() if value is not None}
