"""The relay's link to the brain: one WebSocket, kept open, that loses no request.

:class:`BrainLink` connects to ``WS /ws/discord`` with the relay's shared
secret, reconnects with jittered exponential backoff until stopped, and
remembers every submitted request until its terminal frame (``done`` or
``error``) has been handed to the request's handler. After every (re)connect
it sends each unfinished request again with the same ``request_id``: the brain
treats the id as an idempotency key, so this re-attaches to the request (live
frames, or the stored final answer) and never asks twice.

Frames reach each request's handler in order, from a per-request task, so a
slow handler delays only its own request. Deltas are checked against their
``seq``: a handler only ever sees contiguous text of one attempt. After a
reconnect, deltas of an attempt whose start was missed are held back until the
next attempt starts (announced by a ``retrying`` status, synthesized by the
link when the brain's own one was missed) or the ``done`` frame brings the
whole text.

Connection state is an explicit state machine (:class:`LinkState`)::

    disconnected → connecting → connected → disconnected → … → closed
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException
from websockets.uri import parse_uri

from trollama.common.protocol import (
    MAX_FRAME_BYTES,
    CancelFrame,
    DeltaFrame,
    DoneFrame,
    ErrorCode,
    ErrorFrame,
    PingFrame,
    PongFrame,
    PositionFrame,
    RequestFrame,
    ServerFrame,
    StatusFrame,
    StatusKind,
    server_frame_adapter,
)

log = logging.getLogger(__name__)

#: Seconds to open the WebSocket (TCP connect plus the HTTP upgrade).
CONNECT_TIMEOUT_SECONDS = 10.0
#: Seconds between keepalive pings, and the seconds their pong may take.
PING_INTERVAL_SECONDS = 20.0
PING_TIMEOUT_SECONDS = 20.0
#: Seconds the closing handshake may take.
CLOSE_TIMEOUT_SECONDS = 5.0
#: Seconds the brain may take to answer the first ping (which proves the credential).
HANDSHAKE_TIMEOUT_SECONDS = 10.0
#: Frames buffered per request while its handler is busy (then the link waits).
MAX_BUFFERED_FRAMES = 1000
#: Seconds one handler call may take before it is abandoned (and logged).
HANDLER_TIMEOUT_SECONDS = 30.0
#: Share of a backoff delay taken away at random, so relays don't reconnect in lockstep.
JITTER_FRACTION = 0.5
#: WebSocket close code with which the brain refuses a credential.
CLOSE_UNAUTHORIZED = 4401
#: HTTP statuses that refuse the credential at the upgrade (a proxy in front of the brain).
REFUSED_HTTP_STATUSES = frozenset({401, 403})
MASK = "***"

LINK_FULL_RESTARTING = (
    "Too many requests are waiting while the assistant restarts. Please try again in a minute."
)
LINK_FULL_BUSY = "Too many requests are in progress right now. Please try again in a minute."
RESYNC_MESSAGE = "Reconnected to the assistant; the answer starts again."


class LinkState(StrEnum):
    """Where the link to the brain stands."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    CLOSED = "closed"


_TRANSITIONS: dict[LinkState, frozenset[LinkState]] = {
    LinkState.DISCONNECTED: frozenset({LinkState.CONNECTING, LinkState.CLOSED}),
    LinkState.CONNECTING: frozenset(
        {LinkState.CONNECTED, LinkState.DISCONNECTED, LinkState.CLOSED}
    ),
    LinkState.CONNECTED: frozenset({LinkState.DISCONNECTED, LinkState.CLOSED}),
    LinkState.CLOSED: frozenset(),
}

FrameHandler = Callable[[ServerFrame], Awaitable[None]]
StateCallback = Callable[[LinkState], Awaitable[None] | None]


class LinkStateError(RuntimeError):
    """An operation or transition the link's current state does not allow."""


class LinkFull(Exception):
    """Too many requests are unfinished; ``message`` is safe to show users."""

    def __init__(self, message: str = LINK_FULL_RESTARTING) -> None:
        super().__init__(message)
        self.message = message


class _Refused(Exception):
    """The brain refused the relay's credential."""


@dataclass(eq=False)
class _Pending:
    """One submitted request, remembered until its terminal frame is delivered."""

    request: RequestFrame
    handler: FrameHandler
    inbox: asyncio.Queue[ServerFrame]
    delivery: asyncio.Task[None] | None = None
    #: The next delta expected; None: wait for an attempt to start (seq 0).
    next_seq: int | None = 0
    #: Deltas of the current attempt were handed on (the handler shows text).
    streamed: bool = False
    #: The terminal frame arrived: never sent again, no later frame accepted.
    finished: bool = False

    @property
    def request_id(self) -> str:
        return self.request.request_id


def backoff_delay(nominal: float) -> float:
    """A delay between ``nominal × (1 − JITTER_FRACTION)`` and ``nominal`` seconds."""
    return nominal * (1 - JITTER_FRACTION * random.random())


def mask(text: str, secret: str) -> str:
    """``text`` with ``secret`` replaced by ``***``."""
    return text.replace(secret, MASK) if secret else text


class _MaskingLogger(logging.LoggerAdapter[logging.Logger]):
    """Masks the secret in the websockets library's debug lines (they list request headers)."""

    def __init__(self, logger: logging.Logger, secret: str) -> None:
        super().__init__(logger, {})
        self._secret = secret

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            self.logger.log(level, "%s", mask(text, self._secret), **kwargs)


class BrainLink:
    """A WebSocket link to the brain that reconnects and re-sends unfinished requests.

    ``max_pending`` bounds the unfinished requests (connected or not): past it,
    :meth:`submit` raises :class:`LinkFull`. ``on_state`` is called (and awaited
    when it returns an awaitable) on every state change.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        max_pending: int,
        backoff_initial: float = 0.5,
        backoff_max: float = 15.0,
        on_state: StateCallback | None = None,
    ) -> None:
        _check_url(url)
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        if not 0 < backoff_initial <= backoff_max:
            raise ValueError("backoff delays must satisfy 0 < backoff_initial <= backoff_max")
        self.url = url
        self._secret = secret
        self._max_pending = max_pending
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._on_state = on_state
        self.state = LinkState.DISCONNECTED
        #: When the current connection was made (None while not connected).
        self.connected_since: datetime | None = None
        #: Connections made after the first one.
        self.reconnects = 0
        #: The brain refused the secret at the last attempt (cleared on success).
        self.refused = False
        #: Why the last attempt failed, for the health endpoint (never the secret).
        self.last_error: str | None = None
        self._connections = 0
        self._failures_in_row = 0
        self._pending: dict[str, _Pending] = {}
        #: Cancels of pending requests to send once connected (an ordered set).
        self._cancels: dict[str, None] = {}
        self._conn: ClientConnection | None = None
        self._send_lock = asyncio.Lock()
        self._stopping = False
        self._runner: asyncio.Task[None] | None = None
        self._ws_logger = _MaskingLogger(logging.getLogger("websockets.client"), secret)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect in the background; returns at once (see ``state`` and ``on_state``)."""
        self._require_open("start")
        if self._runner is not None:
            raise LinkStateError("Cannot start the link twice")
        self._runner = asyncio.create_task(self._run(), name="brain-link")

    async def stop(self) -> None:
        """Close the connection and forget unfinished requests (no more frames arrive)."""
        if self.state is LinkState.CLOSED or self._stopping:
            return
        self._stopping = True
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        self._conn = None
        me = asyncio.current_task()  # stop() may be called from a handler
        deliveries = [
            e.delivery
            for e in self._pending.values()
            if e.delivery is not None and e.delivery is not me
        ]
        for task in deliveries:
            task.cancel()
        await asyncio.gather(*deliveries, return_exceptions=True)
        self._pending.clear()
        self._cancels.clear()
        await self._set_state(LinkState.CLOSED)

    # ------------------------------------------------------------ requests

    async def submit(self, request: RequestFrame, handler: FrameHandler) -> None:
        """Send ``request`` (or keep it until connected); its frames go to ``handler``.

        Raises :class:`LinkFull` when ``max_pending`` requests are unfinished and
        :class:`ValueError` when the request id is already pending."""
        self._require_open("submit")
        async with self._send_lock:
            if request.request_id in self._pending:
                raise ValueError(f"request {request.request_id} is already pending")
            if len(self._pending) >= self._max_pending:
                connected = self.state is LinkState.CONNECTED
                raise LinkFull(LINK_FULL_BUSY if connected else LINK_FULL_RESTARTING)
            entry = _Pending(request, handler, asyncio.Queue(MAX_BUFFERED_FRAMES))
            entry.delivery = asyncio.create_task(
                self._deliver(entry), name=f"brain-link-{request.request_id}"
            )
            self._pending[request.request_id] = entry
            await self._send(request)

    async def cancel(self, request_id: str) -> None:
        """Cancel a request (sent once connected when the link is down)."""
        self._require_open("cancel")
        async with self._send_lock:
            if await self._send(CancelFrame(request_id=request_id)):
                return
            if request_id in self._pending:
                self._cancels[request_id] = None
            else:
                log.debug("cancel of %s dropped: not connected, not pending", request_id)

    async def position(self, request_id: str) -> None:
        """Ask where a request stands (answered to its handler by a ``status`` frame).

        Does nothing while disconnected: the re-sent request's ``accepted`` frame
        carries the position after the reconnect."""
        self._require_open("position")
        async with self._send_lock:
            await self._send(PositionFrame(request_id=request_id))

    def pending(self) -> int:
        """Requests whose terminal frame has not been handed to their handler yet."""
        return len(self._pending)

    # ------------------------------------------------------------ connection loop

    async def _run(self) -> None:
        """Connect, serve, and reconnect with backoff, until cancelled by :meth:`stop`."""
        delay = self._backoff_initial
        while True:
            await self._set_state(LinkState.CONNECTING)
            try:
                async with self._connect() as conn:
                    await self._handshake(conn)
                    await self._attach(conn)
                    delay = self._backoff_initial
                    await self._serve(conn)
            except _Refused as exc:
                self._report_refusal(str(exc))
                delay = self._backoff_max
            except (OSError, TimeoutError, WebSocketException) as exc:
                if _is_refusal(exc):
                    self._report_refusal(str(exc))
                    delay = self._backoff_max
                else:
                    self._report_failure(exc)
            except Exception as exc:
                log.exception("the link to the brain failed unexpectedly")
                self._report_failure(exc)
            finally:
                self._conn = None
            await self._set_state(LinkState.DISCONNECTED)
            await asyncio.sleep(backoff_delay(delay))
            delay = min(delay * 2, self._backoff_max)

    def _connect(self) -> connect:
        # proxy=None: the brain sits on the relay's private network, never behind
        # the proxy the environment may name for the internet.
        return connect(
            self.url,
            additional_headers={"Authorization": f"Bearer {self._secret}"},
            max_size=MAX_FRAME_BYTES,
            open_timeout=CONNECT_TIMEOUT_SECONDS,
            ping_interval=PING_INTERVAL_SECONDS,
            ping_timeout=PING_TIMEOUT_SECONDS,
            close_timeout=CLOSE_TIMEOUT_SECONDS,
            proxy=None,
            logger=self._ws_logger,
        )

    async def _handshake(self, conn: ClientConnection) -> None:
        """Ping and wait for the pong: proof that the brain accepted the secret."""
        try:
            await conn.send(PingFrame().model_dump_json())
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_SECONDS):
                while True:
                    frame = self._parse(await conn.recv())
                    if isinstance(frame, PongFrame):
                        return
                    if isinstance(frame, ErrorFrame) and frame.code is ErrorCode.UNAUTHORIZED:
                        raise _Refused(frame.message)
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == CLOSE_UNAUTHORIZED:
                raise _Refused(exc.rcvd.reason or "unauthorized") from None
            raise

    async def _attach(self, conn: ClientConnection) -> None:
        """Re-send every unfinished request and queued cancel, then go live."""
        async with self._send_lock:
            for entry in list(self._pending.values()):
                if not entry.finished:
                    entry.next_seq = None  # deltas resume only at an attempt's start
                    await conn.send(entry.request.model_dump_json())
            for request_id in list(self._cancels):
                await conn.send(CancelFrame(request_id=request_id).model_dump_json())
            self._cancels.clear()
            self._conn = conn
        self._connections += 1
        self.reconnects = self._connections - 1
        self.refused, self.last_error, self._failures_in_row = False, None, 0
        await self._set_state(LinkState.CONNECTED)
        log.info(
            "connected to the brain at %s (%d unfinished requests re-sent)",
            self.url,
            len(self._pending),
        )

    async def _serve(self, conn: ClientConnection) -> None:
        """Route the brain's frames until the connection closes."""
        try:
            async for raw in conn:
                frame = self._parse(raw)
                if frame is not None:
                    await self._route(frame)
        finally:
            self._conn = None
        close = conn.close_code
        log.warning("the connection to the brain closed (code %s); reconnecting", close)

    def _report_refusal(self, reason: str) -> None:
        self.last_error = "the brain refused the relay's secret (check RELAY_SHARED_SECRET)"
        if not self.refused:
            log.error("%s: %s", self.last_error, mask(reason, self._secret))
        self.refused = True

    def _report_failure(self, exc: BaseException) -> None:
        self.last_error = mask(f"{type(exc).__name__}: {exc}", self._secret)
        self._failures_in_row += 1
        level = logging.WARNING if self._failures_in_row == 1 else logging.DEBUG
        log.log(level, "cannot reach the brain at %s: %s", self.url, self.last_error)

    async def _set_state(self, new: LinkState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise LinkStateError(f"Cannot go from {self.state} to {new}")
        self.state = new
        self.connected_since = datetime.now(UTC) if new is LinkState.CONNECTED else None
        if self._on_state is None:
            return
        try:
            result = self._on_state(new)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("the link's state callback failed")

    def _require_open(self, operation: str) -> None:
        if self.state is LinkState.CLOSED:
            raise LinkStateError(f"Cannot {operation} once the link is closed")

    # ------------------------------------------------------------ frames

    async def _send(self, frame: RequestFrame | CancelFrame | PositionFrame) -> bool:
        """Send now when connected; False when not (the caller keeps what matters)."""
        conn = self._conn
        if conn is None:
            return False
        try:
            await conn.send(frame.model_dump_json())
        except ConnectionClosed:
            log.debug("%s frame not sent: the connection closed", frame.type)
            return False
        return True

    def _parse(self, raw: str | bytes) -> ServerFrame | None:
        try:
            return server_frame_adapter.validate_json(raw)
        except ValidationError as exc:
            count = exc.error_count()
            log.warning("ignored a frame from the brain that is not valid (%d errors)", count)
            return None

    async def _route(self, frame: ServerFrame) -> None:
        if isinstance(frame, PongFrame):
            return
        if frame.request_id is None:
            log.warning("the brain reported an error: %s (%s)", frame.message, frame.code)
            return
        entry = self._pending.get(frame.request_id)
        if entry is None or entry.finished:
            log.debug("ignored a %s frame for request %s", frame.type, frame.request_id)
            return
        for accepted in _admit(entry, frame):
            await entry.inbox.put(accepted)

    async def _deliver(self, entry: _Pending) -> None:
        """Hand frames to the handler in order; forget the request after its terminal."""
        try:
            while True:
                frame = await entry.inbox.get()
                await self._call(entry, frame)
                if isinstance(frame, DoneFrame | ErrorFrame):
                    return
        finally:
            if self._pending.get(entry.request_id) is entry:
                del self._pending[entry.request_id]
            self._cancels.pop(entry.request_id, None)

    async def _call(self, entry: _Pending, frame: ServerFrame) -> None:
        try:
            async with asyncio.timeout(HANDLER_TIMEOUT_SECONDS):
                await entry.handler(frame)
        except TimeoutError:
            log.error(
                "handler of %s took over %s s on a %s frame; skipped",
                entry.request_id,
                HANDLER_TIMEOUT_SECONDS,
                frame.type,
            )
        except Exception:
            log.exception("handler of %s failed on a %s frame", entry.request_id, frame.type)


def _admit(entry: _Pending, frame: ServerFrame) -> list[ServerFrame]:
    """The frames to hand on for ``frame`` (none, it, or a retrying status and it)."""
    if isinstance(frame, DeltaFrame):
        return _admit_delta(entry, frame)
    if isinstance(frame, StatusFrame) and frame.status is StatusKind.RETRYING:
        entry.next_seq, entry.streamed = 0, False
    elif isinstance(frame, DoneFrame | ErrorFrame):
        entry.finished = True
    return [frame]


def _admit_delta(entry: _Pending, frame: DeltaFrame) -> list[ServerFrame]:
    if entry.next_seq is not None and frame.seq == entry.next_seq:
        entry.next_seq += 1
        entry.streamed = True
        return [frame]
    if entry.next_seq is None and frame.seq == 0:
        # an attempt starts whose retrying status was missed (a reconnect)
        restart: list[ServerFrame] = []
        if entry.streamed:
            restart.append(_resync_status(entry.request_id))
        entry.next_seq, entry.streamed = 1, True
        return [*restart, frame]
    if entry.next_seq is not None and frame.seq > entry.next_seq:
        entry.next_seq = None  # a gap: hold text back until the next attempt or done
    log.debug("delta %d of %s held back (out of sequence)", frame.seq, entry.request_id)
    return []


def _resync_status(request_id: str) -> StatusFrame:
    return StatusFrame(request_id=request_id, status=StatusKind.RETRYING, message=RESYNC_MESSAGE)


def _is_refusal(exc: BaseException) -> bool:
    return isinstance(exc, InvalidStatus) and exc.response.status_code in REFUSED_HTTP_STATUSES


def _check_url(url: str) -> None:
    try:
        parse_uri(url)
    except InvalidURI:
        raise ValueError("the brain's URL must be a ws:// or wss:// URL") from None
