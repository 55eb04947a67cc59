"""The tool path of the backends: a strands-agents Agent streamed as StreamChunks.

The system messages become the agent's system prompt, earlier turns its
history and the last user turn its prompt; the agent calls the named tools
of :mod:`.tools` as the model asks, and its events are turned into
:class:`~.base.StreamChunk` values. Cancelling the consuming task cancels
the agent, which closes the HTTP stream to the model server.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Any, Literal, cast

from strands import Agent
from strands.agent.conversation_manager import NullConversationManager
from strands.models.model import Model
from strands.types.content import ContentBlock, Message

from trollama.brain.backends.base import BackendError, ChatMessage, StreamChunk
from trollama.brain.backends.images import TOOL_RESULT_PREFIX, image_format
from trollama.brain.backends.tools import TOOLS


async def stream_agent(
    model: Model,
    messages: Sequence[ChatMessage],
    tools: Sequence[str],
    to_error: Callable[[BaseException], BackendError],
) -> AsyncIterator[StreamChunk]:
    """Run an Agent over ``messages`` with ``tools`` and stream what it says.

    Failures are raised as the :class:`~.base.BackendError` ``to_error`` makes."""
    agent, prompt = build_agent(model, messages, tools)
    try:
        events_stream = cast(AsyncGenerator[dict[str, Any]], agent.stream_async(prompt))
        async with contextlib.aclosing(events_stream) as events:
            async for event in events:
                chunk = chunk_for(event)
                if chunk is not None:
                    yield chunk
    except Exception as exc:
        raise to_error(exc) from exc


def build_agent(
    model: Model, messages: Sequence[ChatMessage], tools: Sequence[str]
) -> tuple[Agent, list[ContentBlock] | None]:
    """An Agent holding the conversation, and the prompt that continues it."""
    unknown = [name for name in tools if name not in TOOLS]
    if unknown:
        raise ValueError(f"unknown tools: {', '.join(unknown)}")
    system = "\n\n".join(m.content for m in messages if m.role == "system") or None
    turns = [strands_message(m) for m in messages if m.role != "system"]
    prompt = turns.pop()["content"] if turns and turns[-1]["role"] == "user" else None
    agent = Agent(
        model=model,
        messages=turns,
        tools=[TOOLS[name] for name in tools],
        system_prompt=system,
        callback_handler=None,
        conversation_manager=NullConversationManager(),
        retry_strategy=None,
    )
    return agent, prompt


def strands_message(message: ChatMessage) -> Message:
    """A strands message for one earlier turn."""
    text = message.content
    if message.role == "tool":
        text = TOOL_RESULT_PREFIX + text
    content: list[ContentBlock] = [{"text": text}] if text else []
    content += [_image_block(image) for image in message.images]
    role: Literal["user", "assistant"] = "assistant" if message.role == "assistant" else "user"
    return {"role": role, "content": content or [{"text": " "}]}


def _image_block(encoded: str) -> ContentBlock:
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("an attached image is not valid base64") from exc
    image = {"format": image_format(data), "source": {"bytes": data}}
    return cast(ContentBlock, {"image": image})


def chunk_for(event: dict[str, Any]) -> StreamChunk | None:
    """The StreamChunk for one agent event, ``None`` for events that carry none."""
    if isinstance(event.get("data"), str) and event["data"]:
        return StreamChunk(text=event["data"])
    if isinstance(event.get("reasoningText"), str) and event["reasoningText"]:
        return StreamChunk(thinking=event["reasoningText"])
    tool_name = _tool_started(event.get("event"))
    if tool_name is not None:
        return StreamChunk(tool=tool_name)
    if "result" in event:
        usage = event["result"].metrics.accumulated_usage
        return StreamChunk(
            done=True,
            prompt_tokens=int(usage.get("inputTokens", 0)),
            completion_tokens=int(usage.get("outputTokens", 0)),
        )
    return None


def _tool_started(raw: object) -> str | None:
    if not isinstance(raw, dict):
        return None
    start = raw.get("contentBlockStart", {}).get("start", {})
    name = start.get("toolUse", {}).get("name") if isinstance(start, dict) else None
    return name if isinstance(name, str) else None
