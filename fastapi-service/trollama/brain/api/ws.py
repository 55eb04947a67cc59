"""WebSocket endpoints: ``/ws/discord`` for the relay, ``/ws/chat`` for other clients.

One connection carries many requests. Each frame is validated on its own: a
bad frame gets an ``error`` frame and the connection (and everyone else's)
keeps going. Connection state is explicit: open → closing → closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from enum import StrEnum

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.websockets import WebSocketState

from trollama.brain.api.deps import resolve_caller
from trollama.brain.auth import AuthError, Caller, CallerKind
from trollama.brain.gateway import Watch
from trollama.brain.services import Services
from trollama.common.logging import request_id_var
from trollama.common.protocol import (
    MAX_FRAME_BYTES,
    CancelFrame,
    ClientFrame,
    ErrorCode,
    ErrorFrame,
    PingFrame,
    PongFrame,
    PositionFrame,
    RequestFrame,
    ServerFrame,
    client_frame_adapter,
)
from trollama.common.store.base import StoreError

log = logging.getLogger(__name__)
router = APIRouter()

#: Requests one connection may watch at once.
MAX_WATCHES_PER_CONNECTION = 256
#: WebSocket close code for a refused credential (4000-4999 are the application's).
CLOSE_UNAUTHORIZED = 4401
#: Validation errors quoted back in an invalid-frame message.
MAX_REPORTED_ERRORS = 3
STORE_DOWN_MESSAGE = "The assistant's storage is unavailable right now. Please try again shortly."
INTERNAL_MESSAGE = "The assistant hit an internal error. Please try again."


class ConnectionState(StrEnum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class Session:
    """One client connection and the requests it watches."""

    def __init__(self, ws: WebSocket, caller: Caller, services: Services) -> None:
        self.ws = ws
        self.caller = caller
        self.services = services
        self.state = ConnectionState.OPEN
        self._send_lock = asyncio.Lock()
        self._watches: dict[str, asyncio.Task[None]] = {}

    async def send(self, frame: ServerFrame) -> None:
        if self.state is not ConnectionState.OPEN:
            return
        async with self._send_lock:
            try:
                await self.ws.send_text(frame.model_dump_json())
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.state = ConnectionState.CLOSING

    async def run(self) -> None:
        try:
            while self.state is ConnectionState.OPEN:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                await self.handle(message.get("text"), message.get("bytes"))
        except WebSocketDisconnect:
            pass
        finally:
            self.state = ConnectionState.CLOSED
            for task in self._watches.values():
                task.cancel()
            await asyncio.gather(*self._watches.values(), return_exceptions=True)

    async def handle(self, text: str | None, data: bytes | None) -> None:
        if text is None:
            await self._invalid("binary frames are not supported; send JSON text frames")
            return
        if len(text) > MAX_FRAME_BYTES:
            await self._invalid(f"frame larger than {MAX_FRAME_BYTES} bytes")
            return
        try:
            frame = client_frame_adapter.validate_json(text)
        except ValidationError as exc:
            await self._invalid(_describe(exc))
            return
        try:
            await self._dispatch(frame)
        except StoreError:
            log.exception("store failure while handling a frame")
            await self.send(_failure(frame, STORE_DOWN_MESSAGE))
        except Exception:
            log.exception("unexpected failure while handling a frame")
            await self.send(_failure(frame, INTERNAL_MESSAGE))

    async def _dispatch(self, frame: ClientFrame) -> None:
        match frame:
            case RequestFrame():
                # Lines about this request (and the watch task it starts) carry its id.
                token = request_id_var.set(frame.request_id)
                try:
                    await self._request(frame)
                finally:
                    request_id_var.reset(token)
            case CancelFrame():
                refused = await self.services.gateway.cancel(frame.request_id, self.caller)
                if refused is not None:
                    await self.send(refused)
            case PositionFrame():
                await self.send(await self.services.gateway.position(frame.request_id))
            case PingFrame():
                await self.send(PongFrame())

    async def _request(self, frame: RequestFrame) -> None:
        if len(self._watches) >= MAX_WATCHES_PER_CONNECTION:
            await self.send(
                ErrorFrame(
                    request_id=frame.request_id,
                    code=ErrorCode.RATE_LIMITED,
                    message="too many requests in flight on this connection",
                    retryable=True,
                )
            )
            return
        gateway = self.services.gateway
        watch = gateway.watch(frame.request_id)
        answer = await gateway.submit(frame, self.caller)
        await self.send(answer)
        if isinstance(answer, ErrorFrame):
            watch.close()
            return
        previous = self._watches.pop(frame.request_id, None)
        if previous is not None:
            previous.cancel()
        self._watches[frame.request_id] = asyncio.create_task(
            self._forward(watch, just_accepted=not answer.duplicate)
        )

    async def _forward(self, watch: Watch, *, just_accepted: bool) -> None:
        try:
            async for frame in watch.frames(just_accepted=just_accepted):
                await self.send(frame)
        except Exception:
            log.exception("watching a request failed")
        finally:
            self._watches.pop(watch.request_id, None)

    async def _invalid(self, message: str) -> None:
        await self.send(ErrorFrame(code=ErrorCode.INVALID_FRAME, message=message))


def _failure(frame: ClientFrame, message: str) -> ErrorFrame:
    return ErrorFrame(
        request_id=getattr(frame, "request_id", None),
        code=ErrorCode.INTERNAL,
        message=message,
        retryable=True,
    )


def _describe(exc: ValidationError) -> str:
    """A short description of what was wrong, without echoing the input."""
    parts = []
    for error in exc.errors(include_input=False)[:MAX_REPORTED_ERRORS]:
        where = ".".join(str(p) for p in error["loc"]) or "frame"
        parts.append(f"{where}: {error['msg']}")
    return "invalid frame: " + "; ".join(parts)


async def _serve(ws: WebSocket, *, relay_only: bool) -> None:
    services: Services = ws.app.state.services
    authorization = ws.headers.get("authorization")
    token = ws.query_params.get("token")
    if authorization is None and token:
        authorization = f"Bearer {token}"
    await ws.accept()
    try:
        caller = resolve_caller(services, authorization)
        if relay_only and caller.kind is not CallerKind.RELAY:
            raise AuthError("this endpoint is for the Discord relay")
    except AuthError as exc:
        await ws.send_text(
            ErrorFrame(code=ErrorCode.UNAUTHORIZED, message=str(exc)).model_dump_json()
        )
        await ws.close(code=CLOSE_UNAUTHORIZED, reason="unauthorized")
        return
    services.websocket_connections += 1
    services.metrics.websockets.inc()
    try:
        await Session(ws, caller, services).run()
    finally:
        services.websocket_connections -= 1
        services.metrics.websockets.dec()
        if ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError):
                await ws.close()


@router.websocket("/ws/discord")
async def relay_socket(ws: WebSocket) -> None:
    """The relay's connection (bearer: the relay shared secret)."""
    await _serve(ws, relay_only=True)


@router.websocket("/ws/chat")
async def chat_socket(ws: WebSocket) -> None:
    """Other clients (bearer JWT, in the Authorization header or ``?token=``)."""
    await _serve(ws, relay_only=False)
