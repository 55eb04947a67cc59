"""A fake OpenAI-compatible server (what SGLang and vLLM expose).

Serves ``POST /v1/chat/completions`` (server-sent events or one JSON
object) and ``GET /v1/models``, answering from a
:class:`~trollama.testkit.script.ModelScript`; errors use OpenAI's JSON
error shape.

Run it on its own (for ``./start.sh --demo``)::

    python -m trollama.testkit.fake_openai --port 30001 --ttft-ms 150 --tokens-per-second 40
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from trollama.testkit.script import ChatView, ModelScript, Reply, ToolCall, build_view
from trollama.testkit.server import (
    DEFAULT_MODELS,
    LOOPBACK,
    FakeModelServer,
    PlannedToken,
    cli_arguments,
    demo_script,
    paced,
    plan_tokens,
    serve_until_signalled,
    wait_whole_answer,
)

#: Characters of tool-call arguments sent per streamed delta.
ARGUMENT_FRAGMENT_CHARS = 8
SSE = "text/event-stream"
_OWNER = "trollama-simulated"
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "invalid_request_error",
}


@dataclass(frozen=True)
class _Completion:
    """One chat-completion request, validated."""

    id: str
    model: str
    view: ChatView
    reply: Reply
    stream: bool
    include_usage: bool
    limit: int | None


class FakeOpenAI(FakeModelServer):
    """A scripted OpenAI-compatible server on 127.0.0.1 (see :class:`FakeModelServer`)."""

    kind = "OpenAI-compatible"

    def __init__(
        self,
        script: ModelScript | None = None,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        models: Iterable[str] = DEFAULT_MODELS,
        accept_any_model: bool = False,
        context_length: int | None = None,
    ) -> None:
        super().__init__(
            script,
            host=host,
            port=port,
            models=models,
            accept_any_model=accept_any_model,
            context_length=context_length,
        )
        self._ids = itertools.count(1)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/health", self._health),
            web.get("/v1/models", self._models),
            web.post("/v1/chat/completions", self._completions),
        ]

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="")

    async def _models(self, request: web.Request) -> web.Response:
        created = int(time.time())
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": _OWNER}
            for name in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = self.body_of(request)
        if body is None:
            return openai_error(400, "The request body is not valid JSON.")
        rejection, completion = self._prepare(body)
        if completion is None:
            return rejection or openai_error(400, "Invalid request.")
        if completion.stream:
            return await self.guard_stream(request, lambda: self._stream(request, completion))
        return await self.guard_stream(request, lambda: self._whole(request, completion))

    def _prepare(self, body: dict[str, Any]) -> tuple[web.Response | None, _Completion | None]:
        model = str(body.get("model") or "")
        if not model:
            return openai_error(400, "you must provide a model parameter", param="model"), None
        if not self.knows(model):
            return _model_not_found(model), None
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        view = build_view(model, [(str(m.get("role") or ""), _text_of(m)) for m in messages])
        if self.over_context(view.prompt_tokens):
            return self._context_exceeded(view.prompt_tokens), None
        reply = self.script.reply_for(view)
        if reply.error is not None:
            error = reply.error
            return openai_error(error.status, error.message, code=error.code), None
        options = body.get("stream_options")
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        completion = _Completion(
            id=f"chatcmpl-fake{next(self._ids):06d}",
            model=model,
            view=view,
            reply=reply,
            stream=body.get("stream") is True,
            include_usage=isinstance(options, dict) and options.get("include_usage") is True,
            limit=limit if isinstance(limit, int) and limit >= 0 else None,
        )
        return None, completion

    def _context_exceeded(self, prompt_tokens: int) -> web.Response:
        message = (
            f"This model's maximum context length is {self.context_length} tokens. "
            f"However, your messages resulted in {prompt_tokens} tokens. "
            "Please reduce the length of the messages."
        )
        return openai_error(400, message, code="context_length_exceeded", param="messages")

    async def _stream(self, request: web.Request, comp: _Completion) -> web.StreamResponse:
        tokens, cut = plan_tokens(comp.reply, limit=comp.limit)
        response = web.StreamResponse(headers={"Content-Type": SSE, "Cache-Control": "no-cache"})
        await response.prepare(request)
        stop_at = comp.reply.disconnect_after_tokens
        await _send(response, _chunk(comp, {"role": "assistant", "content": ""}))
        async for index, token in paced(comp.reply, tokens):
            if index == stop_at:
                self.abort(request)
                return response
            await _send(response, _chunk(comp, _token_delta(token)))
        if stop_at is not None and len(tokens) <= stop_at:
            self.abort(request)
            return response
        for delta in _tool_deltas(comp.id, comp.reply.tool_calls):
            await _send(response, _chunk(comp, delta))
        await _send(response, _chunk(comp, {}, _finish_reason(comp.reply, cut)))
        if comp.include_usage:
            await _send(response, {**_envelope(comp), "choices": [], "usage": _usage(comp, tokens)})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _whole(self, request: web.Request, comp: _Completion) -> web.StreamResponse:
        tokens, cut = plan_tokens(comp.reply, limit=comp.limit)
        await wait_whole_answer(comp.reply, len(tokens))
        if comp.reply.disconnect_after_tokens is not None:
            self.abort(request)
            return web.StreamResponse()
        choice = {
            "index": 0,
            "message": _whole_message(comp.id, tokens, comp.reply.tool_calls),
            "logprobs": None,
            "finish_reason": _finish_reason(comp.reply, cut),
        }
        envelope = {**_envelope(comp), "object": "chat.completion"}
        return web.json_response({**envelope, "choices": [choice], "usage": _usage(comp, tokens)})


# ------------------------------------------------------------------ frames
def _envelope(comp: _Completion) -> dict[str, Any]:
    return {
        "id": comp.id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": comp.model,
        "system_fingerprint": None,
    }


def _chunk(comp: _Completion, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    chunk = {**_envelope(comp), "choices": [choice]}
    if comp.include_usage:
        chunk["usage"] = None
    return chunk


def _token_delta(token: PlannedToken) -> dict[str, Any]:
    return {"reasoning_content": token.text} if token.thinking else {"content": token.text}


def _call_id(completion_id: str, index: int) -> str:
    return f"call_{completion_id.removeprefix('chatcmpl-')}_{index}"


def _tool_deltas(completion_id: str, calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """Tool calls as OpenAI streams them: id and name first, then argument fragments."""
    deltas: list[dict[str, Any]] = []
    for index, call in enumerate(calls):
        head = {"name": call.name, "arguments": ""}
        deltas.append(_tool_delta(index, head, call_id=_call_id(completion_id, index)))
        arguments = json.dumps(dict(call.arguments))
        for start in range(0, len(arguments), ARGUMENT_FRAGMENT_CHARS):
            fragment = {"arguments": arguments[start : start + ARGUMENT_FRAGMENT_CHARS]}
            deltas.append(_tool_delta(index, fragment))
    return deltas


def _tool_delta(index: int, function: dict[str, str], call_id: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": function}
    if call_id is not None:
        call.update(id=call_id, type="function")
    return {"tool_calls": [call]}


def _whole_message(
    completion_id: str, tokens: Sequence[PlannedToken], calls: Sequence[ToolCall]
) -> dict[str, Any]:
    content = "".join(t.text for t in tokens if not t.thinking)
    reasoning = "".join(t.text for t in tokens if t.thinking)
    message: dict[str, Any] = {"role": "assistant", "content": content or None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = [
            {
                "id": _call_id(completion_id, index),
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(dict(call.arguments))},
            }
            for index, call in enumerate(calls)
        ]
    return message


def _finish_reason(reply: Reply, cut: bool) -> str:
    if reply.tool_calls:
        return "tool_calls"
    return "length" if cut else "stop"


def _usage(comp: _Completion, tokens: Sequence[PlannedToken]) -> dict[str, int]:
    reply = comp.reply
    prompt = reply.prompt_eval_count
    prompt = prompt if prompt is not None else max(comp.view.prompt_tokens, 1)
    completion = reply.eval_count
    completion = completion if completion is not None else len(tokens) + len(reply.tool_calls)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


async def _send(response: web.StreamResponse, payload: dict[str, Any]) -> None:
    await response.write(b"data: " + json.dumps(payload).encode() + b"\n\n")


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def openai_error(
    status: int, message: str, *, code: str | None = None, param: str | None = None
) -> web.Response:
    """An error response in OpenAI's shape."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    error = {"message": message, "type": kind, "param": param, "code": code}
    return web.json_response({"error": error}, status=status)


def _model_not_found(model: str) -> web.Response:
    message = f"The model `{model}` does not exist or you do not have access to it."
    return openai_error(404, message, code="model_not_found", param="model")


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the demo default as a SIMULATED OpenAI-compatible server until Ctrl-C."""
    args = cli_arguments("A SIMULATED OpenAI-compatible server (no real model).", 30001, argv)
    server = FakeOpenAI(
        demo_script(args), host=args.host, port=args.port, accept_any_model=args.accept_any_model
    )
    asyncio.run(serve_until_signalled(server))


if __name__ == "__main__":
    main()
