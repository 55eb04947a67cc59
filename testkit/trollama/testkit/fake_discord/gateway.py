"""The fake gateway: HELLO, heartbeats, IDENTIFY, RESUME, dispatches, op 7/8/9.

Frames are plain JSON text (discord.py asks for ``zlib-stream`` but only
decompresses binary frames). Each session numbers its dispatches and keeps
the last ones, so a client that resumes gets what it missed, like Discord.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Any

from aiohttp import WSMsgType, web

from trollama.testkit.fake_discord import payloads
from trollama.testkit.fake_discord.payloads import Json
from trollama.testkit.fake_discord.recorder import Recorder
from trollama.testkit.fake_discord.records import PresenceRecord, UserRecord
from trollama.testkit.fake_discord.state import DiscordState

#: Discord's heartbeat interval, in milliseconds.
HEARTBEAT_INTERVAL_MS = 41_250
#: Dispatches a session keeps for RESUME (older ones make a resume fail).
MAX_REPLAY_EVENTS = 1_000
#: Sessions kept for RESUME (oldest dropped first).
MAX_SESSIONS = 32
#: Largest frame a client may send, in bytes (Discord's limit).
MAX_FRAME_BYTES = 4096
TRACE = ["fake-discord"]


class Op(IntEnum):
    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


class Close(IntEnum):
    """Gateway close codes the fake uses."""

    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    INVALID_INTENTS = 4013


class Intent(IntFlag):
    """The gateway intents that decide what the fake dispatches."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_MODERATION = 1 << 2
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    MESSAGE_CONTENT = 1 << 15


#: Close codes after which Discord forgets the session (a clean close).
_FINAL_CLOSE_CODES = (1000, 1001)


@dataclass
class Session:
    """One identified gateway session; ``socket`` is ``None`` while disconnected."""

    id: str
    intents: int
    seq: int = 0
    socket: web.WebSocketResponse | None = None
    replay: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=MAX_REPLAY_EVENTS))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def wants(self, intent: Intent | None) -> bool:
        return intent is None or bool(self.intents & intent)


@dataclass
class Connection:
    """One open WebSocket and the session it carries."""

    socket: web.WebSocketResponse
    request: web.Request
    session: Session | None = None


@dataclass(frozen=True)
class Dispatch:
    """A gateway event; ``redacted`` is what bots without the message content intent get."""

    event: str
    data: Json
    intent: Intent | None = None
    redacted: Json | None = None

    def data_for(self, session: Session) -> Json:
        if self.redacted is not None and not session.intents & Intent.MESSAGE_CONTENT:
            return self.redacted
        return self.data


def _frame(op: Op, data: Any, *, seq: int | None = None, event: str | None = None) -> str:
    return json.dumps({"op": int(op), "d": data, "s": seq, "t": event})


def _redact(data: Any) -> Any:
    if isinstance(data, dict) and "token" in data:
        return {**data, "token": "<redacted>"}
    return data


class Gateway:
    """Serves the gateway WebSocket; ``dispatch`` sends an event to every session."""

    def __init__(
        self,
        state: DiscordState,
        recorder: Recorder,
        *,
        token: str,
        bot: UserRecord,
        resume_url: Callable[[], str],
        heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS,
    ) -> None:
        self._state = state
        self._recorder = recorder
        self._token = token
        self._bot = bot
        self._resume_url = resume_url
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._connections: list[Connection] = []

    # ----------------------------------------------------------- inspection
    @property
    def connected_sessions(self) -> int:
        """Sessions with an open socket (identified or resumed)."""
        return sum(1 for s in self._sessions.values() if s.socket is not None)

    # ----------------------------------------------------------- test controls
    async def dispatch(self, dispatch: Dispatch) -> None:
        """Send an event to every session that asked for it (buffered while disconnected)."""
        for session in list(self._sessions.values()):
            if session.wants(dispatch.intent):
                await self._deliver(session, dispatch.event, dispatch.data_for(session))

    async def reconnect(self) -> int:
        """Ask every connected client to reconnect (op 7); returns how many were asked."""
        sockets = [c.socket for c in self._connections if c.session is not None]
        for socket in sockets:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await socket.send_str(_frame(Op.RECONNECT, None))
        return len(sockets)

    async def invalidate_sessions(self, *, resumable: bool = False) -> None:
        """Send op 9 to every connected client (``False``: it must identify again)."""
        for connection in list(self._connections):
            if connection.session is not None and not resumable:
                self._sessions.pop(connection.session.id, None)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await connection.socket.send_str(_frame(Op.INVALID_SESSION, resumable))

    def drop_connections(self) -> int:
        """Cut every gateway socket abruptly (no close frame); returns how many."""
        dropped = 0
        for connection in list(self._connections):
            transport = connection.request.transport
            if transport is not None:
                transport.abort()
                dropped += 1
        return dropped

    # ----------------------------------------------------------- serving
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES)
        await socket.prepare(request)
        connection = Connection(socket, request)
        self._connections.append(connection)
        try:
            hello = {"heartbeat_interval": self._heartbeat_interval_ms, "_trace": TRACE}
            await socket.send_str(_frame(Op.HELLO, hello))
            async for message in socket:
                if message.type is not WSMsgType.TEXT:
                    break
                await self._on_text(connection, message.data)
        except ConnectionError:
            pass  # the client went away mid-answer
        except Exception as exc:
            # A bug in the fake: reported by FakeDiscord.problems(), the socket just closes.
            self._recorder.internal_errors.append(f"gateway: {exc!r}")
        finally:
            self._connections.remove(connection)
            self._detach(connection)
        return socket

    def _detach(self, connection: Connection) -> None:
        session = connection.session
        if session is None or session.socket is not connection.socket:
            return
        session.socket = None
        if connection.socket.close_code in _FINAL_CLOSE_CODES:
            self._sessions.pop(session.id, None)

    async def _on_text(self, connection: Connection, text: str) -> None:
        try:
            frame = json.loads(text)
            op, data = frame.get("op"), frame.get("d")
        except (ValueError, AttributeError):
            await connection.socket.close(code=Close.DECODE_ERROR, message=b"Decode error.")
            return
        session_id = connection.session.id if connection.session else None
        known = op in {int(o) for o in Op}
        self._recorder.record_frame(op, _redact(data), session_id, known=known)
        await self._on_op(connection, op, data)

    async def _on_op(self, connection: Connection, op: Any, data: Any) -> None:
        socket = connection.socket
        if op == Op.HEARTBEAT:
            await socket.send_str(_frame(Op.HEARTBEAT_ACK, None))
        elif op == Op.IDENTIFY:
            await self._identify(connection, data)
        elif op == Op.RESUME:
            await self._resume(connection, data)
        elif connection.session is None:
            await socket.close(code=Close.NOT_AUTHENTICATED, message=b"Not authenticated.")
        elif op == Op.PRESENCE_UPDATE:
            self._record_presence(data)
        elif op == Op.REQUEST_GUILD_MEMBERS:
            await self._members_chunk(connection.session, data)
        else:
            await socket.close(code=Close.UNKNOWN_OPCODE, message=b"Unknown opcode.")

    async def _identify(self, connection: Connection, data: Any) -> None:
        socket = connection.socket
        if connection.session is not None:
            await socket.close(code=Close.ALREADY_AUTHENTICATED, message=b"Already authenticated.")
            return
        if not isinstance(data, dict) or data.get("token") != self._token:
            await socket.close(code=Close.AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0:
            await socket.close(code=Close.INVALID_INTENTS, message=b"Invalid intent(s).")
            return
        if isinstance(data.get("presence"), dict):
            self._record_presence(data["presence"])
        await self._start_session(connection, Session(secrets.token_hex(16), intents))

    async def _start_session(self, connection: Connection, session: Session) -> None:
        self._sessions[session.id] = session
        self._evict()
        connection.session = session
        session.socket = connection.socket
        async with session.lock:
            ready = payloads.ready(self._state, self._bot, session.id, self._resume_url())
            await self._send_locked(session, "READY", ready)
            for guild_id in self._state.guilds:
                await self._send_locked(
                    session, "GUILD_CREATE", payloads.guild_create(self._state, guild_id)
                )

    def _evict(self) -> None:
        """Forget the oldest disconnected sessions beyond the bound."""
        while len(self._sessions) > MAX_SESSIONS:
            idle = [s.id for s in self._sessions.values() if s.socket is None]
            self._sessions.pop(idle[0] if idle else next(iter(self._sessions)))

    async def _resume(self, connection: Connection, data: Any) -> None:
        session = self._resumable(data)
        if session is None or connection.session is not None:
            await connection.socket.send_str(_frame(Op.INVALID_SESSION, False))
            return
        old = session.socket
        if old is not None and old is not connection.socket:
            await old.close(code=4009, message=b"Session replaced.")
        connection.session = session
        async with session.lock:
            session.socket = connection.socket
            for seq, text in session.replay:
                if seq > data["seq"]:
                    await connection.socket.send_str(text)
            await self._send_locked(session, "RESUMED", {"_trace": TRACE})

    def _resumable(self, data: Any) -> Session | None:
        """The session a RESUME names, if it can resume from the given sequence."""
        if not isinstance(data, dict) or data.get("token") != self._token:
            return None
        session = self._sessions.get(str(data.get("session_id")))
        seq = data.get("seq")
        if session is None or not isinstance(seq, int) or seq > session.seq:
            return None
        oldest = session.replay[0][0] if session.replay else session.seq + 1
        return session if seq >= oldest - 1 else None

    async def _deliver(self, session: Session, event: str, data: Json) -> None:
        async with session.lock:
            await self._send_locked(session, event, data)

    async def _send_locked(self, session: Session, event: str, data: Json) -> None:
        session.seq += 1
        text = _frame(Op.DISPATCH, data, seq=session.seq, event=event)
        session.replay.append((session.seq, text))
        socket = session.socket
        if socket is None or socket.closed:
            return
        try:
            await socket.send_str(text)
        except (ConnectionError, RuntimeError):
            session.socket = None

    def _record_presence(self, data: Any) -> None:
        data = data if isinstance(data, dict) else {}
        activities = data.get("activities") or ([data["game"]] if data.get("game") else [])
        self._state.presences.append(
            PresenceRecord(
                status=data.get("status"),
                activities=tuple(activities),
                afk=bool(data.get("afk")),
                since=data.get("since"),
                at=self._state.clock(),
            )
        )

    async def _members_chunk(self, session: Session, data: Any) -> None:
        """Answer op 8 with one GUILD_MEMBERS_CHUNK (by ``user_ids`` or name prefix)."""
        data = data if isinstance(data, dict) else {}
        guild_id = int(data.get("guild_id") or 0)
        wanted = {int(u) for u in data.get("user_ids") or []}
        found = self._matching_members(guild_id, data) if not wanted else []
        found += [m.user_id for m in self._state.guild_members(guild_id) if m.user_id in wanted]
        chunk: Json = {
            "guild_id": str(guild_id),
            "members": [payloads.member(self._state, guild_id, u) for u in found],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [str(u) for u in wanted - set(found)],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self._deliver(session, "GUILD_MEMBERS_CHUNK", chunk)

    def _matching_members(self, guild_id: int, data: Json) -> list[int]:
        query = str(data.get("query") or "").lower()
        limit = int(data.get("limit") or 0)
        users = self._state.users
        found = [
            m.user_id
            for m in self._state.guild_members(guild_id)
            if users[m.user_id].username.lower().startswith(query)
        ]
        return found[:limit] if limit else found
