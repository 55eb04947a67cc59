"""A fake Ollama server speaking the HTTP API the ``ollama`` client uses.

Serves ``/api/chat`` and ``/api/generate`` (NDJSON streaming or one JSON
object), ``/api/tags``, ``/api/ps``, ``/api/embed``, ``/api/show`` and
``/api/version``, answering from a :class:`~trollama.testkit.script.ModelScript`.

Run it on its own (for ``./start.sh --demo``)::

    python -m trollama.testkit.fake_ollama --port 11435 --ttft-ms 150 --tokens-per-second 40
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from trollama.testkit.script import (
    ChatView,
    ModelScript,
    Reply,
    ToolCall,
    build_view,
    count_tokens,
)
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

#: Ollama's own default keep-alive, in seconds.
DEFAULT_KEEP_ALIVE_SECONDS = 300.0
#: Length of the fake's embedding vectors.
EMBED_DIMENSIONS = 256
#: Inputs one ``/api/embed`` call may carry.
MAX_EMBED_INPUTS = 512
#: Version the fake reports (an Ollama release with ``thinking`` and ``/api/embed``).
OLLAMA_VERSION = "0.13.5"
#: Context length the fake reports in ``/api/show``.
REPORTED_CONTEXT_LENGTH = 131072
#: Bytes per parameter of a 4-bit quantised model, for sizes in tags and ps.
BYTES_PER_PARAMETER = 0.6
#: ``expires_at`` shown for a model kept loaded forever (negative keep_alive).
FOREVER = datetime(2318, 1, 1, tzinfo=UTC)
NDJSON = "application/x-ndjson"

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PARAMETERS = re.compile(r":(?:.*?)(\d+(?:\.\d+)?)b\b")


@dataclass(frozen=True)
class _Generation:
    """One chat or generate request, validated."""

    model: str
    view: ChatView
    reply: Reply
    stream: bool
    think: bool
    limit: int | None
    #: ``None`` keeps the model loaded forever; 0 unloads it after the answer.
    keep_alive: float | None
    #: The streamed field: ``message`` (chat) or ``response`` (generate).
    chat: bool


class FakeOllama(FakeModelServer):
    """A scripted Ollama server on 127.0.0.1 (see :class:`FakeModelServer`).

    ``load_seconds`` is how long loading a model that is not loaded takes.
    """

    kind = "Ollama"

    def __init__(
        self,
        script: ModelScript | None = None,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        models: Iterable[str] = DEFAULT_MODELS,
        accept_any_model: bool = False,
        context_length: int | None = None,
        load_seconds: float = 0.0,
    ) -> None:
        super().__init__(
            script,
            host=host,
            port=port,
            models=models,
            accept_any_model=accept_any_model,
            context_length=context_length,
        )
        self.load_seconds = load_seconds
        #: Loaded model -> when it expires (``FOREVER`` when kept for good).
        self._loaded: dict[str, datetime] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self._root),
            web.post("/api/chat", self._chat),
            web.post("/api/generate", self._generate),
            web.get("/api/tags", self._tags),
            web.get("/api/ps", self._ps),
            web.post("/api/embed", self._embed),
            web.post("/api/show", self._show),
            web.get("/api/version", self._version),
        ]

    # ----------------------------------------------------------- simple endpoints
    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": OLLAMA_VERSION})

    async def _tags(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [_tag_entry(name) for name in self.models]})

    async def _ps(self, request: web.Request) -> web.Response:
        self._expire()
        entries = [_ps_entry(name, expires) for name, expires in self._loaded.items()]
        return web.json_response({"models": entries})

    async def _show(self, request: web.Request) -> web.Response:
        body = self.body_of(request) or {}
        model = str(body.get("model") or body.get("name") or "")
        if not self.knows(model):
            return _not_found(model)
        return web.json_response(_show_entry(model))

    async def _embed(self, request: web.Request) -> web.Response:
        body = self.body_of(request) or {}
        model = str(body.get("model") or "")
        if not model:
            return _error(400, "model is required")
        if not self.knows(model):
            return _not_found(model)
        raw = body.get("input", "")
        inputs = [raw] if isinstance(raw, str) else [str(item) for item in raw or []]
        if len(inputs) > MAX_EMBED_INPUTS:
            return _error(400, f"at most {MAX_EMBED_INPUTS} inputs per request")
        dimensions = _dimensions(body.get("dimensions"))
        load_ns = await self._load(model, _keep_alive_or_default(body.get("keep_alive")))
        return web.json_response(
            {
                "model": model,
                "embeddings": [embed_text(text, dimensions) for text in inputs],
                "total_duration": load_ns,
                "load_duration": load_ns,
                "prompt_eval_count": sum(count_tokens(text) for text in inputs),
            }
        )

    # ----------------------------------------------------------- chat and generate
    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = self.body_of(request)
        if body is None:
            return _error(400, "invalid JSON body")
        pairs = [_message_pair(m) for m in body.get("messages") or [] if isinstance(m, dict)]
        return await self._serve(request, body, pairs, chat=True)

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        body = self.body_of(request)
        if body is None:
            return _error(400, "invalid JSON body")
        if not body.get("prompt") and not body.get("images"):
            return await self._load_or_unload(body)
        pairs = [("system", str(body.get("system") or "")), ("user", str(body["prompt"]))]
        return await self._serve(request, body, pairs, chat=False)

    async def _load_or_unload(self, body: dict[str, Any]) -> web.Response:
        model = str(body.get("model") or "")
        if not self.knows(model):
            return _not_found(model)
        keep_alive = _keep_alive_or_default(body.get("keep_alive"))
        if keep_alive == 0:
            self._loaded.pop(model, None)
            return web.json_response(_final(model, "unload", chat=False))
        await self._load(model, keep_alive)
        return web.json_response(_final(model, "load", chat=False))

    async def _serve(
        self,
        request: web.Request,
        body: dict[str, Any],
        pairs: list[tuple[str, str]],
        *,
        chat: bool,
    ) -> web.StreamResponse:
        rejection, generation = self._prepare(body, pairs, chat=chat)
        if generation is None:
            return rejection or _error(400, "invalid request")
        started = time.monotonic()
        load_ns = await self._load(generation.model, generation.keep_alive)
        answer = self._stream if generation.stream else self._whole
        response = await self.guard_stream(
            request, lambda: answer(request, generation, started, load_ns)
        )
        await self._after_answer(generation)
        return response

    def _prepare(
        self, body: dict[str, Any], pairs: list[tuple[str, str]], *, chat: bool
    ) -> tuple[web.Response | None, _Generation | None]:
        model = str(body.get("model") or "")
        if not model:
            return _error(400, "model is required"), None
        if not self.knows(model):
            return _not_found(model), None
        try:
            keep_alive = parse_keep_alive(body.get("keep_alive"))
        except ValueError as exc:
            return _error(400, str(exc)), None
        view = build_view(model, pairs)
        if self.over_context(view.prompt_tokens):
            return _error(400, "the input length exceeds the context length"), None
        reply = self.script.reply_for(view)
        if reply.error is not None:
            return _error(reply.error.status, reply.error.message), None
        options = body.get("options")
        limit = options.get("num_predict") if isinstance(options, dict) else None
        generation = _Generation(
            model=model,
            view=view,
            reply=reply,
            stream=body.get("stream", True) is not False,
            think=body.get("think") is not False,
            limit=limit if isinstance(limit, int) and limit >= 0 else None,
            keep_alive=keep_alive,
            chat=chat,
        )
        return None, generation

    async def _stream(
        self, request: web.Request, gen: _Generation, started: float, load_ns: int
    ) -> web.StreamResponse:
        tokens, cut = plan_tokens(gen.reply, thinking=gen.think, limit=gen.limit)
        response = web.StreamResponse(headers={"Content-Type": NDJSON})
        await response.prepare(request)
        stop_at = gen.reply.disconnect_after_tokens
        async for index, token in paced(gen.reply, tokens):
            if index == stop_at:
                self.abort(request)
                return response
            await _write_line(response, _token_frame(gen, token))
        if stop_at is not None and len(tokens) <= stop_at:
            self.abort(request)
            return response
        if gen.reply.tool_calls and gen.chat:
            await _write_line(response, _tool_frame(gen.model, gen.reply.tool_calls))
        await _write_line(response, self._done_frame(gen, tokens, cut, started, load_ns))
        await response.write_eof()
        return response

    async def _whole(
        self, request: web.Request, gen: _Generation, started: float, load_ns: int
    ) -> web.StreamResponse:
        tokens, cut = plan_tokens(gen.reply, thinking=gen.think, limit=gen.limit)
        await wait_whole_answer(gen.reply, len(tokens))
        if gen.reply.disconnect_after_tokens is not None:
            self.abort(request)
            return web.StreamResponse()
        frame = self._done_frame(gen, tokens, cut, started, load_ns)
        answer = "".join(t.text for t in tokens if not t.thinking)
        thinking = "".join(t.text for t in tokens if t.thinking)
        if gen.chat:
            frame["message"] = _message(answer, thinking, gen.reply.tool_calls)
        else:
            frame["response"] = answer
            if thinking:
                frame["thinking"] = thinking
        return web.json_response(frame)

    def _done_frame(
        self,
        gen: _Generation,
        tokens: Sequence[PlannedToken],
        cut: bool,
        started: float,
        load_ns: int,
    ) -> dict[str, Any]:
        frame = _final(gen.model, "length" if cut else "stop", chat=gen.chat)
        eval_count = gen.reply.eval_count
        prompt_count = gen.reply.prompt_eval_count
        total_ns = int((time.monotonic() - started) * 1e9)
        frame.update(
            total_duration=total_ns,
            load_duration=load_ns,
            prompt_eval_count=prompt_count
            if prompt_count is not None
            else max(gen.view.prompt_tokens, 1),
            prompt_eval_duration=0,
            eval_count=eval_count
            if eval_count is not None
            else len(tokens) + len(gen.reply.tool_calls),
            eval_duration=max(total_ns - load_ns, 0),
        )
        return frame

    # ----------------------------------------------------------- loaded models
    async def _load(self, model: str, keep_alive: float | None) -> int:
        """Mark ``model`` loaded; returns the load duration in nanoseconds."""
        self._expire()
        load_ns = 0
        if model not in self._loaded and self.load_seconds > 0:
            await asyncio.sleep(self.load_seconds)
            load_ns = int(self.load_seconds * 1e9)
        self._loaded[model] = _expiry(keep_alive)
        return load_ns

    async def _after_answer(self, gen: _Generation) -> None:
        if gen.keep_alive == 0:
            self._loaded.pop(gen.model, None)
        elif gen.model in self._loaded:
            self._loaded[gen.model] = _expiry(gen.keep_alive)

    def _expire(self) -> None:
        now = datetime.now(UTC)
        for name in [name for name, expires in self._loaded.items() if expires <= now]:
            del self._loaded[name]


# ------------------------------------------------------------------ frames
def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _message(content: str, thinking: str = "", calls: Sequence[ToolCall] = ()) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    if calls:
        message["tool_calls"] = [
            {"function": {"name": call.name, "arguments": dict(call.arguments)}} for call in calls
        ]
    return message


def _token_frame(gen: _Generation, token: PlannedToken) -> dict[str, Any]:
    frame: dict[str, Any] = {"model": gen.model, "created_at": _now(), "done": False}
    if gen.chat:
        frame["message"] = _message("", token.text) if token.thinking else _message(token.text)
    elif token.thinking:
        frame.update(response="", thinking=token.text)
    else:
        frame["response"] = token.text
    return frame


def _tool_frame(model: str, calls: Sequence[ToolCall]) -> dict[str, Any]:
    return {"model": model, "created_at": _now(), "message": _message("", "", calls), "done": False}


def _final(model: str, reason: str, *, chat: bool) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "model": model,
        "created_at": _now(),
        "done": True,
        "done_reason": reason,
    }
    if chat:
        frame["message"] = _message("")
    else:
        frame["response"] = ""
    return frame


async def _write_line(response: web.StreamResponse, frame: dict[str, Any]) -> None:
    await response.write(json.dumps(frame).encode() + b"\n")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _not_found(model: str) -> web.Response:
    return _error(404, f"model '{model}' not found")


def _message_pair(message: dict[str, Any]) -> tuple[str, str]:
    content = message.get("content")
    return str(message.get("role") or ""), content if isinstance(content, str) else ""


# ------------------------------------------------------------------ keep_alive
def parse_keep_alive(value: object) -> float | None:
    """Seconds a model stays loaded; ``None`` means forever (negative value).

    Accepts what Ollama accepts: a number of seconds or a Go duration
    (``"5m"``, ``"1h30m"``, ``"-1"``); absent means Ollama's default."""
    if value is None:
        return DEFAULT_KEEP_ALIVE_SECONDS
    if isinstance(value, bool):
        raise ValueError(f"invalid keep_alive: {value!r}")
    if isinstance(value, int | float):
        return None if value < 0 else float(value)
    if isinstance(value, str):
        return _parse_duration(value.strip())
    raise ValueError(f"invalid keep_alive: {value!r}")


def _parse_duration(text: str) -> float | None:
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return None if seconds < 0 else seconds
    if text.startswith("-"):
        return None
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f'time: invalid duration "{text}"')
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _keep_alive_or_default(value: object) -> float | None:
    try:
        return parse_keep_alive(value)
    except ValueError:
        return DEFAULT_KEEP_ALIVE_SECONDS


def _expiry(keep_alive: float | None) -> datetime:
    if keep_alive is None:
        return FOREVER
    return datetime.now(UTC) + timedelta(seconds=keep_alive)


# ------------------------------------------------------------------ model metadata
def parameter_count(model: str) -> int:
    """Parameters of a model guessed from its tag (``gpt-oss:20b`` → 20e9)."""
    match = _PARAMETERS.search(model.lower())
    return int(float(match.group(1)) * 1e9) if match else 7_000_000_000


def model_size_bytes(model: str) -> int:
    """Approximate size of a 4-bit quantised model, in bytes."""
    return int(parameter_count(model) * BYTES_PER_PARAMETER)


def _details(model: str) -> dict[str, Any]:
    family = model.split(":", 1)[0]
    billions = parameter_count(model) / 1e9
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": f"{billions:g}B",
        "quantization_level": "Q4_K_M",
    }


def _digest(model: str) -> str:
    return hashlib.sha256(model.encode()).hexdigest()


def _tag_entry(model: str) -> dict[str, Any]:
    return {
        "name": model,
        "model": model,
        "modified_at": "2026-01-01T00:00:00Z",
        "size": model_size_bytes(model),
        "digest": _digest(model),
        "details": _details(model),
    }


def _ps_entry(model: str, expires: datetime) -> dict[str, Any]:
    size = model_size_bytes(model)
    return {
        "name": model,
        "model": model,
        "size": size,
        "digest": _digest(model),
        "details": _details(model),
        "expires_at": expires.isoformat().replace("+00:00", "Z"),
        "size_vram": size,
        "context_length": REPORTED_CONTEXT_LENGTH,
    }


def _capabilities(model: str) -> list[str]:
    if "embed" in model:
        return ["embedding"]
    capabilities = ["completion", "tools"]
    if "ocr" in model or "vision" in model or "ministral" in model:
        capabilities.append("vision")
    if model.startswith(("gpt-oss", "deepseek-r1", "nemotron")):
        capabilities.append("thinking")
    return capabilities


def _show_entry(model: str) -> dict[str, Any]:
    family = model.split(":", 1)[0]
    return {
        "modelfile": f"# Modelfile of the SIMULATED model {model}\nFROM {model}\n",
        "parameters": "temperature 0.7",
        "template": "{{ .Prompt }}",
        "details": _details(model),
        "model_info": {
            "general.architecture": family,
            "general.parameter_count": parameter_count(model),
            f"{family}.context_length": REPORTED_CONTEXT_LENGTH,
        },
        "capabilities": _capabilities(model),
        "modified_at": "2026-01-01T00:00:00Z",
    }


# ------------------------------------------------------------------ embeddings
def embed_text(text: str, dimensions: int = EMBED_DIMENSIONS) -> list[float]:
    """A deterministic unit vector: a hashed, signed bag of lower-cased words."""
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "big") % dimensions
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0.0:
        vector[0] = 1.0
        return vector
    return [v / norm for v in vector]


def _dimensions(value: object) -> int:
    if isinstance(value, int) and 0 < value <= EMBED_DIMENSIONS * 16:
        return value
    return EMBED_DIMENSIONS


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the demo default as a SIMULATED Ollama server until Ctrl-C."""
    args = cli_arguments("A SIMULATED Ollama server (no real model).", 11435, argv)
    server = FakeOllama(
        demo_script(args), host=args.host, port=args.port, accept_any_model=args.accept_any_model
    )
    asyncio.run(serve_until_signalled(server))


if __name__ == "__main__":
    main()
