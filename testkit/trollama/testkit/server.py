"""What both fake model servers share: lifecycle, recording, pacing, the CLI.

A fake runs either in the caller's event loop (``async with FakeOllama() as
fake``) or in a thread with its own loop (``fake.start_in_thread()``), so a
brain running in a subprocess can reach it too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from aiohttp import web

from trollama.testkit.script import ModelScript, Reply, tokenize

LOOPBACK = "127.0.0.1"
#: Requests remembered by a fake (oldest dropped first).
MAX_RECORDED_REQUESTS = 1000
#: Largest request body a fake accepts, in bytes (images arrive base64-encoded).
MAX_REQUEST_BYTES = 64 * 1024 * 1024
#: Seconds a fake waits for in-flight handlers when it stops.
SHUTDOWN_TIMEOUT_SECONDS = 0.1
#: Seconds to wait for a threaded fake to start or stop.
THREAD_TIMEOUT_SECONDS = 10.0
#: Models a fake knows unless told otherwise (the reference rosters).
DEFAULT_MODELS: tuple[str, ...] = (
    "gpt-oss:20b",
    "gpt-oss:120b",
    "rnj-1:8b",
    "ministral-3:14b",
    "deepseek-ocr:3b",
    "qwen3-embedding:4b",
    "devstral-2:123b",
    "deepseek-r1:70b",
    "devstral-small-2:24b",
    "nemotron-3-nano:30b",
)

_BODY_KEY = web.RequestKey("trollama_body", object)
_ABORTED = web.RequestKey("trollama_aborted", bool)


@dataclass(frozen=True)
class RecordedRequest:
    """One request a fake received: its parsed JSON body (``None`` if none)."""

    method: str
    path: str
    body: Any
    #: Unix time the request arrived.
    at: float


@dataclass(frozen=True)
class PlannedToken:
    """One token to stream, on the answer (``text``) or reasoning channel."""

    text: str
    thinking: bool = False


class FakeModelServer(ABC):
    """Base of the fake model servers; subclasses add the routes."""

    #: Shown in logs and by the CLI ("Ollama", "OpenAI-compatible").
    kind: str = "model"

    def __init__(
        self,
        script: ModelScript | None = None,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        models: Iterable[str] = DEFAULT_MODELS,
        accept_any_model: bool = False,
        context_length: int | None = None,
        max_recorded_requests: int = MAX_RECORDED_REQUESTS,
    ) -> None:
        self.script = script if script is not None else ModelScript()
        self.models: tuple[str, ...] = tuple(models)
        self.accept_any_model = accept_any_model
        #: Prompt tokens (words) above which a request is refused as too long.
        self.context_length = context_length
        self._host = host
        self._port = port
        self._requests: deque[RecordedRequest] = deque(maxlen=max_recorded_requests)
        self._disconnects = 0
        self._lock = threading.Lock()
        self._disconnected = threading.Condition(self._lock)
        self._runner: web.AppRunner | None = None
        self._closing = False

    # ----------------------------------------------------------- lifecycle
    @abstractmethod
    def routes(self) -> list[web.RouteDef]:
        """The HTTP routes this fake serves."""

    async def start(self) -> None:
        """Listen on ``host:port`` (port 0 picks a free one)."""
        self._closing = False
        app = web.Application(
            middlewares=[self._record_middleware], client_max_size=MAX_REQUEST_BYTES
        )
        app.add_routes(self.routes())
        runner = web.AppRunner(
            app,
            handler_cancellation=True,
            shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
            access_log=None,
        )
        await runner.setup()
        sock = _bound_socket(self._host, self._port)
        self._port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def stop(self) -> None:
        """Stop listening and drop open connections."""
        self._closing = True
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def start_in_thread(self) -> ServerThread[Self]:
        """Serve from a background thread with its own event loop."""
        handle = ServerThread(self)
        handle.start()
        return handle

    # ----------------------------------------------------------- inspection
    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self._host}:{self._port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far (a bounded, oldest-first copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def client_disconnects(self) -> int:
        """Responses the client abandoned before they were complete."""
        with self._lock:
            return self._disconnects

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests for one path, e.g. ``/api/chat``."""
        return [r for r in self.requests if r.path == path]

    def wait_for_disconnects(self, count: int = 1, timeout: float = 1.0) -> bool:
        """Block until ``count`` streams were abandoned, or ``timeout`` seconds passed.

        From async code: ``await asyncio.to_thread(fake.wait_for_disconnects)``."""
        with self._disconnected:
            return self._disconnected.wait_for(lambda: self._disconnects >= count, timeout)

    def knows(self, model: str) -> bool:
        """True when this fake serves ``model``."""
        return self.accept_any_model or model in self.models

    # ----------------------------------------------------------- helpers for handlers
    @web.middleware
    async def _record_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            with contextlib.suppress(ValueError):
                body = json.loads(await request.read())
        request[_BODY_KEY] = body
        with self._lock:
            self._requests.append(RecordedRequest(request.method, request.path, body, time.time()))
        return await handler(request)

    @staticmethod
    def body_of(request: web.Request) -> dict[str, Any] | None:
        """The parsed JSON object of the request, ``None`` if it is not one."""
        body = request.get(_BODY_KEY)
        return body if isinstance(body, dict) else None

    async def guard_stream(
        self, request: web.Request, stream: Callable[[], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Run ``stream``, counting a client that went away before the end."""
        try:
            return await stream()
        except (ConnectionResetError, asyncio.CancelledError):
            if not self._closing and not request.get(_ABORTED):
                with self._disconnected:
                    self._disconnects += 1
                    self._disconnected.notify_all()
            raise

    @staticmethod
    def abort(request: web.Request) -> None:
        """Drop the connection at once (a scripted mid-stream failure)."""
        request[_ABORTED] = True
        if request.transport is not None:
            request.transport.abort()

    def over_context(self, prompt_tokens: int) -> bool:
        """True when a prompt is longer than the configured context."""
        return self.context_length is not None and prompt_tokens > self.context_length


def plan_tokens(
    reply: Reply, *, thinking: bool = True, limit: int | None = None
) -> tuple[list[PlannedToken], bool]:
    """The tokens to stream for ``reply`` and whether ``limit`` cut them."""
    tokens = [PlannedToken(t, thinking=True) for t in tokenize(reply.thinking)] if thinking else []
    tokens += [PlannedToken(t) for t in tokenize(reply.text)]
    if limit is not None and 0 <= limit < len(tokens):
        return tokens[:limit], True
    return tokens, False


async def paced(
    reply: Reply, tokens: Sequence[PlannedToken]
) -> AsyncIterator[tuple[int, PlannedToken]]:
    """Yield ``(index, token)`` after the time to first token, at the token rate."""
    await asyncio.sleep(reply.ttft_seconds)
    delay = 1.0 / reply.tokens_per_second if reply.tokens_per_second else 0.0
    for index, token in enumerate(tokens):
        if index and delay:
            await asyncio.sleep(delay)
        yield index, token


async def wait_whole_answer(reply: Reply, token_count: int) -> None:
    """Sleep as long as streaming ``token_count`` tokens would take."""
    rate = reply.tokens_per_second
    await asyncio.sleep(reply.ttft_seconds + (max(token_count - 1, 0) / rate if rate else 0.0))


def _bound_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


S = TypeVar("S", bound=FakeModelServer)


class ServerThread(Generic[S]):
    """A fake serving from a background thread; ``stop()`` ends it."""

    def __init__(self, server: S) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"fake-{server.kind}", daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def script(self) -> ModelScript:
        return self.server.script

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.server.requests

    @property
    def client_disconnects(self) -> int:
        return self.server.client_disconnects

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return self.server.requests_to(path)

    def wait_for_disconnects(self, count: int = 1, timeout: float = 1.0) -> bool:
        return self.server.wait_for_disconnects(count, timeout)

    def start(self) -> None:
        """Start the thread and wait until the server listens."""
        self._thread.start()
        if not self._ready.wait(THREAD_TIMEOUT_SECONDS):
            raise TimeoutError(f"the fake {self.server.kind} server did not start")
        if self._error is not None:
            self._thread.join(THREAD_TIMEOUT_SECONDS)
            raise self._error

    def stop(self) -> None:
        """Stop the server and its thread (idempotent)."""
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop)
        future.result(THREAD_TIMEOUT_SECONDS)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(THREAD_TIMEOUT_SECONDS)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            _drain_loop(self._loop)


def _drain_loop(loop: asyncio.AbstractEventLoop) -> None:
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


# ------------------------------------------------------------------ CLI
def cli_arguments(
    description: str, default_port: int, argv: Sequence[str] | None
) -> argparse.Namespace:
    """Parse the command line shared by the fake servers."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--ttft-ms", type=float, default=150.0, help="time to first token")
    parser.add_argument("--tokens-per-second", type=float, default=40.0)
    parser.add_argument("--accept-any-model", action="store_true")
    return parser.parse_args(argv)


def demo_script(args: argparse.Namespace) -> ModelScript:
    """A script serving the demo default at the CLI's pace."""
    rate = args.tokens_per_second if args.tokens_per_second > 0 else None
    return ModelScript(demo_ttft_seconds=args.ttft_ms / 1000.0, demo_tokens_per_second=rate)


async def serve_until_signalled(server: FakeModelServer) -> None:
    """Serve until SIGINT or SIGTERM, announcing the simulated server."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        print(
            f"SIMULATED {server.kind} model server (no real model) listening on {server.url}",
            flush=True,
        )
        await stop.wait()
    print(f"SIMULATED {server.kind} model server stopped", flush=True)
