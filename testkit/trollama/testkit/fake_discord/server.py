"""The fake Discord server: REST + gateway on 127.0.0.1, injection and read API.

It runs in the caller's event loop (``async with FakeDiscord() as fake``) or
in a background thread with its own loop (``fake.start_in_thread()``), so a
relay started as a subprocess can reach it too. Its async methods work from
any event loop; its read methods from any thread.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web

from trollama.testkit.fake_discord import payloads
from trollama.testkit.fake_discord.actions import Actions, FileUpload, NewMessage, files_from
from trollama.testkit.fake_discord.gateway import HEARTBEAT_INTERVAL_MS, Dispatch, Gateway, Intent
from trollama.testkit.fake_discord.interactions import (
    InteractionApi,
    build_click,
    build_interaction,
)
from trollama.testkit.fake_discord.moderation import ModerationApi, audit_reason
from trollama.testkit.fake_discord.recorder import Recorder, normal_headers
from trollama.testkit.fake_discord.records import (
    AuditLogRecord,
    BanRecord,
    ChannelRecord,
    CommandSyncRecord,
    EditRecord,
    GatewayFrame,
    InteractionRecord,
    InteractionResponseRecord,
    MemberRecord,
    MessageRecord,
    PresenceRecord,
    ReactionEvent,
    RecordedRequest,
    RoleRecord,
    ThreadRecord,
    TypingRecord,
    UploadRecord,
    UserRecord,
)
from trollama.testkit.fake_discord.rest import (
    API_PREFIX,
    BODY,
    MAX_REQUEST_BYTES,
    ApiError,
    Body,
    Handler,
    RestApi,
    json_response,
    read_body,
)
from trollama.testkit.fake_discord.state import (
    ADMINISTRATOR,
    BOT_PERMISSIONS,
    DiscordState,
    StoredMessage,
)

LOOPBACK = "127.0.0.1"
#: The one bot token the fake accepts unless told otherwise (not a secret).
DEFAULT_TOKEN = "fake-discord-bot-token"  # noqa: S105
#: Seconds to wait for the background thread to start, stop or answer.
THREAD_TIMEOUT_SECONDS = 10.0
#: Seconds ``wait_for`` waits by default, and between two checks.
DEFAULT_WAIT_SECONDS = 5.0
POLL_SECONDS = 0.01
GATEWAY_PATH = "/gateway"
RESUME_GATEWAY_PATH = "/gateway-resume"
_UNAUTHORIZED = {"message": "401: Unauthorized", "code": 0}
_NOT_FOUND = {"message": "404: Not Found", "code": 0}

T = TypeVar("T")
Author = UserRecord | int | str


class FakeDiscord:
    """A protocol-level fake Discord for the unmodified discord.py client.

    It starts with a guild "Test Guild" owned by ``alice`` (who also has the
    ``admin`` role and owns the application), a text channel ``general``, the
    member ``bob``, the bot user with its managed role, and a custom emoji
    ``trollface``. It accepts exactly one bot token, ``token``.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        host: str = LOOPBACK,
        port: int = 0,
        bot_name: str = "Trollama",
        heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        self._host, self._port = host, port
        self.state = DiscordState(clock)
        self.recorder = Recorder(clock)
        self._build_world(bot_name)
        self.gateway = Gateway(
            self.state,
            self.recorder,
            token=token,
            bot=self.bot_user,
            resume_url=lambda: self.resume_gateway_url,
            heartbeat_interval_ms=heartbeat_interval_ms,
        )
        self.actions = Actions(self.state, self.gateway, self.bot_user, lambda: self.url)
        self.rest = RestApi(self.actions, lambda: self.gateway_url)
        self._interaction_api = InteractionApi(self.rest)
        self.moderation = ModerationApi(self.actions)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: _LoopThread | None = None

    def _build_world(self, bot_name: str) -> None:
        state = self.state
        self.bot_user = state.add_user(bot_name, bot=True)
        self.alice = state.add_user("alice", global_name="Alice")
        self.bob = state.add_user("bob", global_name="Bob")
        self.guild = state.add_guild("Test Guild", owner_id=self.alice.id)
        self.admin_role = state.add_role(self.guild.id, "admin", ADMINISTRATOR)
        self.bot_role = state.add_role(
            self.guild.id, bot_name, BOT_PERMISSIONS, bot_id=self.bot_user.id
        )
        self.general = state.add_channel(self.guild.id, "general")
        self.emoji = state.add_emoji(self.guild.id, "trollface")
        state.add_member(self.guild.id, self.bot_user.id, [self.bot_role.id])
        state.add_member(self.guild.id, self.alice.id, [self.admin_role.id])
        state.add_member(self.guild.id, self.bob.id)
        state.application_owner_id = self.alice.id

    # ----------------------------------------------------------- addresses
    @property
    def url(self) -> str:
        """Base URL of the server, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self._host}:{self._port}"

    @property
    def api_base(self) -> str:
        """For ``DISCORD_API_BASE`` / ``discord.http.Route.BASE``."""
        return self.url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """For ``DISCORD_GATEWAY_URL`` / ``DiscordWebSocket.DEFAULT_GATEWAY``."""
        return f"ws://{self._host}:{self._port}{GATEWAY_PATH}"

    @property
    def resume_gateway_url(self) -> str:
        """Where READY tells clients to resume (a different path, like Discord)."""
        return f"ws://{self._host}:{self._port}{RESUME_GATEWAY_PATH}"

    # ----------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Listen on ``host:port`` (port 0 picks a free one) in the running loop."""
        app = web.Application(middlewares=[self._middleware], client_max_size=MAX_REQUEST_BYTES)
        routes = [
            *self.rest.routes(),
            *self._interaction_api.routes(),
            *self.moderation.routes(),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        app.router.add_get(GATEWAY_PATH, self.gateway.handle)
        app.router.add_get(RESUME_GATEWAY_PATH, self.gateway.handle)
        app.router.add_get(
            r"/attachments/{channel_id:\d+}/{attachment_id:\d+}/{filename}", self._cdn
        )
        runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.1, access_log=None
        )
        await runner.setup()
        sock = _bound_socket(self._host, self._port)
        self._port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        self._runner, self._loop = runner, asyncio.get_running_loop()

    async def stop(self) -> None:
        """Close every gateway socket and stop listening."""
        self.gateway.drop_connections()
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

    def start_in_thread(self) -> Self:
        """Serve from a background thread with its own event loop."""
        thread = _LoopThread()
        thread.start()
        try:
            thread.run(self.start())
        except BaseException:
            thread.stop()
            raise
        self._thread = thread
        return self

    def stop_thread(self) -> None:
        """Stop a fake started with :meth:`start_in_thread` (idempotent)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.run(self.stop())
            thread.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_thread()

    # ----------------------------------------------------------- HTTP plumbing
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        arrived = self.state.clock()
        template = self._template(request)
        if template in (GATEWAY_PATH, RESUME_GATEWAY_PATH):
            # Recorded on arrival: the handler returns only when the socket closes.
            self._record(request, template, Body(), 101, arrived)
            return await handler(request)
        if template is None or not request.path.startswith(API_PREFIX):
            response = await self._plain(request, handler, template)
            self._record(request, template, Body(), response.status, arrived)
            return response
        body = Body()
        try:
            body = request[BODY] = await read_body(request)
            response = await self._api(request, handler, template)
        except ApiError as exc:
            response = json_response(exc.body, exc.status)
        except Exception as exc:
            # A bug in the fake: fail the test rather than let discord.py retry a 500.
            self.recorder.internal_errors.append(f"{request.method} {request.path}: {exc!r}")
            response = json_response(payloads.error(0, f"fake Discord failed: {exc!r}"), 400)
        for key, value in normal_headers(template).items():
            response.headers.setdefault(key, value)
        self._record(request, template, body, response.status, arrived)
        return response

    async def _plain(
        self,
        request: web.Request,
        handler: Handler,
        template: str | None,
    ) -> web.StreamResponse:
        if template is None:
            return json_response(_NOT_FOUND, 404)
        return await handler(request)

    async def _api(
        self,
        request: web.Request,
        handler: Handler,
        template: str,
    ) -> web.StreamResponse:
        needs_token = not template.startswith(("/interactions/", "/webhooks/"))
        if needs_token and request.headers.get("Authorization") != f"Bot {self.token}":
            return json_response(_UNAUTHORIZED, 401)
        fault = self.recorder.fault_for(request.method, _relative(request.path), template)
        if fault is not None:
            response = json_response(fault.body, fault.status)
            response.headers.update(fault.headers)
            return response
        return await handler(request)

    @staticmethod
    def _template(request: web.Request) -> str | None:
        """The matched route template relative to the API base; ``None`` if unknown."""
        if request.match_info.http_exception is not None:
            return None
        return _relative(request.match_info.route.resource.canonical)  # type: ignore[union-attr]

    def _record(
        self, request: web.Request, template: str | None, body: Body, status: int, at: float
    ) -> None:
        files = tuple((f.filename, len(f.data)) for f in body.files)
        self.recorder.record(
            RecordedRequest(
                request.method,
                _relative(request.path),
                template,
                dict(request.query),
                body.json,
                files,
                status,
                at,
                audit_reason(request),
            )
        )

    async def _cdn(self, request: web.Request) -> web.Response:
        attachment = self.actions.attachments.get(int(request.match_info["attachment_id"]))
        if attachment is None:
            return web.Response(status=404)
        return web.Response(
            body=attachment.data, content_type=attachment.content_type or "application/octet-stream"
        )

    # ----------------------------------------------------------- running on the fake's loop
    async def _on_loop(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a coroutine on the fake's loop and await it from any loop."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the fake Discord is not running")
        if asyncio.get_running_loop() is loop:
            return await make()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(make(), loop))

    def _read(self, read: Callable[[], T]) -> T:
        """Run a state read on the fake's loop thread (directly when already there)."""
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running() or _running_loop() is loop:
            return read()

        async def run() -> T:
            return read()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(THREAD_TIMEOUT_SECONDS)

    def _user_id(self, author: Author) -> int:
        if isinstance(author, UserRecord):
            return author.id
        if isinstance(author, int):
            if author not in self.state.users:
                raise LookupError(f"no user with id {author}")
            return author
        for user in self.state.users.values():
            if user.username == author:
                return user.id
        raise LookupError(f"no user named {author!r}")

    # ----------------------------------------------------------- injection
    async def user_message(
        self,
        channel_id: int,
        author: Author,
        content: str,
        *,
        mentions_bot: bool = False,
        reference: int | MessageRecord | None = None,
        attachments: Iterable[FileUpload | tuple[str, bytes]] | None = None,
    ) -> MessageRecord:
        """A human posts in a channel or thread (MESSAGE_CREATE); returns the message.

        ``mentions_bot`` prefixes the bot's mention unless the content has it;
        ``reference`` makes it a reply (which mentions the replied-to author)."""

        async def run() -> MessageRecord:
            if not self.state.knows_channel(channel_id):
                raise LookupError(f"no channel or thread with id {channel_id}")
            mention = self.bot_user.mention
            text = f"{mention} {content}" if mentions_bot and mention not in content else content
            new = NewMessage(
                content=text, files=files_from(attachments), reference=self._reference(reference)
            )
            await self.rest.reopen_thread(channel_id)
            message = await self.actions.create_message(channel_id, self._user_id(author), new)
            return message.snapshot()

        return await self._on_loop(run)

    def _reference(self, reference: int | MessageRecord | None) -> payloads.Json | None:
        if reference is None:
            return None
        message_id = reference.id if isinstance(reference, MessageRecord) else reference
        return self.rest.reference_to({"message_id": message_id})

    async def dm(
        self,
        author: Author,
        content: str,
        *,
        attachments: Iterable[FileUpload | tuple[str, bytes]] | None = None,
    ) -> MessageRecord:
        """A human sends the bot a direct message; returns the message."""

        async def run() -> MessageRecord:
            user_id = self._user_id(author)
            channel = self.state.dm_channel(user_id)
            new = NewMessage(content=content, files=files_from(attachments))
            return (await self.actions.create_message(channel.id, user_id, new)).snapshot()

        return await self._on_loop(run)

    async def user_reaction(
        self, message_id: int, author: Author, emoji: str, *, added: bool = True
    ) -> None:
        """A human adds (or removes) a reaction (``👍`` or a custom ``name:id``)."""

        async def run() -> None:
            message = self._stored(message_id)
            key = self.actions.emoji_key(emoji)
            if key is None:
                raise ValueError(f"unknown emoji {emoji!r}")
            await self.actions.react(message, key, self._user_id(author), added=added)

        await self._on_loop(run)

    async def interaction(
        self,
        command_name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: Author,
        channel_id: int | None = None,
        focused: str | None = None,
    ) -> InteractionRecord:
        """A user runs a synced slash command (INTERACTION_CREATE); ``focused``
        names the option being typed, which makes it an autocomplete interaction.

        Options are given by name; user, channel and role options take records
        or ids. ``channel_id`` defaults to ``general``."""

        async def run() -> InteractionRecord:
            record = build_interaction(
                self.state,
                command_name,
                options or {},
                user_id=self._user_id(user),
                channel_id=channel_id if channel_id is not None else self.general.id,
                focused=focused,
            )
            stored = self.state.store_interaction(record)
            data = payloads.interaction(self.state, stored, self.bot_user.id)
            await self.gateway.dispatch(Dispatch("INTERACTION_CREATE", data))
            return record

        return await self._on_loop(run)

    async def click(self, message_id: int, custom_id: str, *, user: Author) -> InteractionRecord:
        """A user clicks a button of a message (INTERACTION_CREATE, type 3 MESSAGE_COMPONENT).

        Raises ``LookupError`` when the message has no component ``custom_id`` and
        ``ValueError`` when that component is disabled."""

        async def run() -> InteractionRecord:
            message = self._stored(message_id)
            if message.deleted:
                raise LookupError(f"message {message_id} was deleted")
            record = build_click(self.state, message, custom_id, user_id=self._user_id(user))
            stored = self.state.store_interaction(record)
            data = payloads.interaction(self.state, stored, self.bot_user.id)
            await self.gateway.dispatch(Dispatch("INTERACTION_CREATE", data))
            return record

        return await self._on_loop(run)

    async def add_role(
        self, name: str, permissions: int, *, position: int | None = None
    ) -> RoleRecord:
        """A new role in the guild (GUILD_ROLE_CREATE): at the top, or at ``position``
        (1 is just above ``@everyone``; the roles from there up move up one)."""

        async def run() -> RoleRecord:
            return await self.moderation.create_role(self.guild.id, name, permissions, position)

        role = await self._on_loop(run)
        self._refresh_roles()
        return role

    async def edit_role(
        self, role_id: int, *, permissions: int | None = None, position: int | None = None
    ) -> RoleRecord:
        """Change a role's permission bits or position (GUILD_ROLE_UPDATE)."""

        async def run() -> RoleRecord:
            return await self.moderation.update_role(
                role_id, permissions=permissions, position=position
            )

        role = await self._on_loop(run)
        self._refresh_roles()
        return role

    def _refresh_roles(self) -> None:
        """Keep ``admin_role`` and ``bot_role`` equal to the current records."""
        self.admin_role = self._read(lambda: self.state.roles[self.admin_role.id])
        self.bot_role = self._read(lambda: self.state.roles[self.bot_role.id])

    async def add_channel(self, name: str, *, topic: str | None = None) -> ChannelRecord:
        """A new text channel in the guild (CHANNEL_CREATE)."""

        async def run() -> ChannelRecord:
            channel = self.state.add_channel(self.guild.id, name, topic=topic)
            data = payloads.channel(self.state, channel)
            await self.gateway.dispatch(Dispatch("CHANNEL_CREATE", data, Intent.GUILDS))
            return channel

        return await self._on_loop(run)

    async def add_user(self, username: str, *, role_ids: Iterable[int] = ()) -> UserRecord:
        """A new human member of the guild (GUILD_MEMBER_ADD)."""

        async def run() -> UserRecord:
            user = self.state.add_user(username)
            self.state.add_member(self.guild.id, user.id, role_ids)
            data = {
                **payloads.member(self.state, self.guild.id, user.id),
                "guild_id": str(self.guild.id),
            }
            await self.gateway.dispatch(Dispatch("GUILD_MEMBER_ADD", data, Intent.GUILD_MEMBERS))
            return user

        return await self._on_loop(run)

    async def reconnect(self) -> int:
        """Ask connected clients to reconnect (op 7); returns how many were asked."""
        return await self._on_loop(self.gateway.reconnect)

    async def drop_connection(self) -> int:
        """Cut every gateway connection abruptly; returns how many."""

        async def run() -> int:
            return self.gateway.drop_connections()

        return await self._on_loop(run)

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send op 9 (Invalid Session) to connected clients."""
        await self._on_loop(lambda: self.gateway.invalidate_sessions(resumable=resumable))

    async def rate_limit(
        self,
        route_pattern: str,
        *,
        count: int = 1,
        retry_after: float = 0.2,
        is_global: bool = False,
    ) -> None:
        """The next ``count`` requests matching ``route_pattern`` get a 429.

        The pattern is ``"METHOD path"`` with ``*`` wildcards, matched against
        the concrete path (``"PATCH /channels/123/messages/*"``) and the route
        template (``"PATCH /channels/{channel_id}/messages/{message_id}"``)."""

        async def run() -> None:
            self.recorder.rate_limit(route_pattern, count, retry_after, is_global)

        await self._on_loop(run)

    async def fail_requests(
        self, route_pattern: str, *, status: int, code: int, message: str, count: int = 1
    ) -> None:
        """The next ``count`` matching requests get ``status`` with Discord's error body
        (e.g. ``status=403, code=50013, message="Missing Permissions"``)."""

        async def run() -> None:
            self.recorder.fail(route_pattern, count, status, code, message)

        await self._on_loop(run)

    async def wait_for(
        self, condition: Callable[[], T], *, timeout: float = DEFAULT_WAIT_SECONDS
    ) -> T:
        """Poll ``condition`` (which may use the read methods) until it is truthy."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (value := condition()):
            if loop.time() > deadline:
                raise TimeoutError(f"condition still false after {timeout} s")
            await asyncio.sleep(POLL_SECONDS)
        return value

    # ----------------------------------------------------------- reading
    def _stored(self, message_id: int) -> StoredMessage:
        message = self.state.messages.get(message_id)
        if message is None:
            raise LookupError(f"no message with id {message_id}")
        return message

    def messages(self, channel_id: int, *, include_deleted: bool = False) -> list[MessageRecord]:
        """The messages of a channel, thread or DM, oldest first, as they are now."""

        def read() -> list[MessageRecord]:
            history = self.state.channel_history(channel_id)
            return [m.snapshot() for m in history if include_deleted or not m.deleted]

        return self._read(read)

    def message(self, message_id: int) -> MessageRecord:
        """One message as it is now (deleted ones too)."""
        return self._read(lambda: self._stored(message_id).snapshot())

    def edits(self, message_id: int) -> list[EditRecord]:
        """The edits of a message in order, each with its content and time."""
        return list(self.message(message_id).edits)

    def threads(self, parent_id: int | None = None) -> list[ThreadRecord]:
        """Threads in creation order (of one parent channel when given)."""

        def read() -> list[ThreadRecord]:
            threads = self.state.threads.values()
            return [t.snapshot() for t in threads if parent_id is None or t.parent_id == parent_id]

        return self._read(read)

    def thread(self, thread_id: int) -> ThreadRecord:
        return self._read(lambda: self.state.threads[thread_id].snapshot())

    def dm_channel_id(self, user: Author) -> int | None:
        """The DM channel between the bot and ``user``, if one exists."""
        return self._read(lambda: self.state.dm_channels.get(self._user_id(user)))

    def reactions(self, message_id: int) -> list[ReactionEvent]:
        """Reactions added and removed on a message, in order."""
        return self._read(
            lambda: [e for e in self.state.reaction_events if e.message_id == message_id]
        )

    def current_reactions(self, message_id: int) -> dict[str, list[int]]:
        """Emoji -> ids of the users whose reaction is on the message now."""
        return self._read(
            lambda: {k: list(v) for k, v in self._stored(message_id).reactions.items()}
        )

    def interaction_responses(self, interaction_id: int) -> list[InteractionResponseRecord]:
        """How the client answered an interaction (callback, followups, edits)."""
        return self._read(lambda: list(self.state.interactions[interaction_id].responses))

    def uploads(self, channel_id: int | None = None) -> list[UploadRecord]:
        """Files uploaded with messages, in order (of one channel when given)."""
        return self._read(
            lambda: [
                u for u in self.state.uploads if channel_id is None or u.channel_id == channel_id
            ]
        )

    def typing(self, channel_id: int | None = None) -> list[TypingRecord]:
        return self._read(
            lambda: [
                t for t in self.state.typing if channel_id is None or t.channel_id == channel_id
            ]
        )

    def presence_updates(self) -> list[PresenceRecord]:
        """Presences sent over the gateway (op 3, and the one in IDENTIFY)."""
        return self._read(lambda: list(self.state.presences))

    def member(self, guild_id: int, user: Author) -> MemberRecord | None:
        """A user's membership of a guild as it is now (``None``: not a member)."""

        def read() -> MemberRecord | None:
            member = self.state.members.get((guild_id, self._user_id(user)))
            return None if member is None else member.snapshot()

        return self._read(read)

    def roles(self, guild_id: int | None = None) -> list[RoleRecord]:
        """The roles of a guild (default: the test guild), lowest first."""
        guild = self.guild.id if guild_id is None else guild_id
        return self._read(
            lambda: sorted(self.state.guild_roles(guild), key=lambda r: (r.position, r.id))
        )

    def bans(self, guild_id: int | None = None) -> list[BanRecord]:
        """The bans of a guild (default: the test guild), with their reasons."""
        guild = self.guild.id if guild_id is None else guild_id
        return self._read(lambda: [b for (g, _), b in self.state.bans.items() if g == guild])

    def audit_log(self, guild_id: int | None = None) -> list[AuditLogRecord]:
        """Audit-log entries the bot's moderation requests wrote, oldest first."""
        return self._read(
            lambda: [e for e in self.state.audit_log if guild_id is None or e.guild_id == guild_id]
        )

    def audit_reasons(self) -> list[str]:
        """Every ``X-Audit-Log-Reason`` the client sent, decoded, in order."""
        return self._read(
            lambda: [r.audit_reason for r in self.recorder.requests if r.audit_reason is not None]
        )

    def commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """The synced application commands of a scope (``None`` = global)."""
        return self._read(lambda: list(self.state.commands.get(guild_id, [])))

    def command_syncs(self) -> list[CommandSyncRecord]:
        return self._read(lambda: list(self.state.command_syncs))

    def requests(
        self, method: str | None = None, route: str | None = None
    ) -> list[RecordedRequest]:
        """Recorded REST requests, optionally of one method and route template."""

        def read() -> list[RecordedRequest]:
            return [
                r
                for r in self.recorder.requests
                if (method is None or r.method == method) and (route is None or r.route == route)
            ]

        return self._read(read)

    def gateway_frames(self, op: int | None = None) -> list[GatewayFrame]:
        """Frames clients sent over the gateway (tokens redacted)."""
        return self._read(lambda: [f for f in self.recorder.frames if op is None or f.op == op])

    @property
    def connected_sessions(self) -> int:
        """Gateway sessions with an open socket."""
        return self._read(lambda: self.gateway.connected_sessions)

    def problems(self) -> list[str]:
        """Requests and gateway frames the fake did not understand, and its own errors."""

        def read() -> list[str]:
            unknown = [f"{r.method} {r.path}" for r in self.recorder.requests if r.unknown]
            frames = [f"gateway op {f.op}" for f in self.recorder.unknown_frames]
            return unknown + frames + [f"fake error: {e}" for e in self.recorder.internal_errors]

        return self._read(read)


def _relative(path: str) -> str:
    return path.removeprefix(API_PREFIX) if path.startswith(API_PREFIX) else path


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _bound_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class _LoopThread:
    """A daemon thread running its own event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fake-discord", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the thread's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(THREAD_TIMEOUT_SECONDS)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(THREAD_TIMEOUT_SECONDS)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
