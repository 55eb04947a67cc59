"""The fake's REST API (``/api/v10``): users, applications, commands, channels,
messages, threads, reactions, typing and DMs, with Discord's error bodies."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from aiohttp import BodyPartReader, web

from trollama.testkit.fake_discord import limits, payloads
from trollama.testkit.fake_discord.actions import Actions, FileUpload, NewMessage
from trollama.testkit.fake_discord.payloads import Json, error
from trollama.testkit.fake_discord.records import TypingRecord
from trollama.testkit.fake_discord.state import (
    DM_CHANNEL,
    EPHEMERAL_FLAG,
    TEXT_CHANNEL,
    DiscordState,
    StoredMessage,
    StoredThread,
)

API_PREFIX = f"/api/v{payloads.API_VERSION}"
#: Messages one history request returns at most, and by default.
MAX_HISTORY_LIMIT = 100
DEFAULT_HISTORY_LIMIT = 50


@dataclass(frozen=True)
class Body:
    """A parsed request body: JSON (``payload_json`` for multipart) and files."""

    json: Any = None
    files: tuple[FileUpload, ...] = ()


BODY = web.RequestKey("fake_discord_body", Body)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Largest request body, in bytes (uploads plus the JSON payload).
MAX_REQUEST_BYTES = limits.MAX_UPLOAD_BYTES + 1024 * 1024


class ApiError(Exception):
    """Answer the request with Discord's error ``body`` and ``status``."""

    def __init__(self, status: int, body: Json) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body


def fail(status: int, code: int, message: str) -> NoReturn:
    raise ApiError(status, error(code, message))


def check(problem: Json | None) -> None:
    """Raise a 400 (413 for too large a body) when a limit check found a problem."""
    if problem is not None:
        raise ApiError(413 if problem is limits.TOO_LARGE else 400, problem)


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON with ``Content-Type: application/json`` exactly (discord.py checks it)."""
    return web.Response(
        body=json.dumps(data).encode(), status=status, content_type="application/json"
    )


def no_content() -> web.Response:
    return web.Response(status=204)


def body_of(request: web.Request) -> Json:
    """The JSON object of the request (empty when there is none)."""
    value = request[BODY].json
    return value if isinstance(value, dict) else {}


def snowflake(request: web.Request, name: str) -> int:
    return int(request.match_info[name])


def route(method: str, path: str) -> tuple[str, str]:
    """A REST route under the API prefix; ``{x_id}`` parts match digits only."""
    for name in ("channel_id", "message_id", "user_id", "guild_id", "application_id", "role_id"):
        path = path.replace("{" + name + "}", "{" + name + r":\d+}")
    return method, API_PREFIX + path


async def read_body(request: web.Request) -> Body:
    """JSON, or multipart with ``payload_json`` and ``files[n]`` parts."""
    if not request.body_exists:
        return Body()
    if request.content_type.startswith("multipart/"):
        return await _read_multipart(request)
    raw = await request.read()
    return Body(_json(raw)) if raw else Body()


def _json(raw: bytes | bytearray) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, error(50109, "The request body contains invalid JSON.")) from None


async def _read_multipart(request: web.Request) -> Body:
    payload: Any = None
    files: list[FileUpload] = []
    total = 0
    async for part in await request.multipart():
        if not isinstance(part, BodyPartReader):
            continue
        data = bytearray()
        while chunk := await part.read_chunk():
            data += chunk
            total += len(chunk)
            if total > MAX_REQUEST_BYTES:
                raise ApiError(413, limits.TOO_LARGE)
        if part.name == "payload_json":
            payload = _json(data)
        elif part.filename is not None:
            files.append(
                FileUpload(part.filename, bytes(data), mimetypes.guess_type(part.filename)[0])
            )
    return Body(payload, tuple(files))


class RestApi:
    """Handlers for the REST routes (interactions and webhooks live in :mod:`.interactions`)."""

    def __init__(self, actions: Actions, gateway_url: Callable[[], str]) -> None:
        self.actions = actions
        self.state: DiscordState = actions.state
        self.bot = actions.bot
        self._gateway_url = gateway_url

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            (*route("GET", "/users/@me"), self.get_me),
            (*route("GET", "/users/{user_id}"), self.get_user),
            (*route("POST", "/users/@me/channels"), self.create_dm),
            (*route("GET", "/oauth2/applications/@me"), self.get_application),
            (*route("GET", "/applications/@me"), self.get_application),
            (*route("GET", "/gateway"), self.get_gateway),
            (*route("GET", "/gateway/bot"), self.get_gateway),
            (*route("GET", "/applications/{application_id}/commands"), self.get_commands),
            (*route("PUT", "/applications/{application_id}/commands"), self.put_commands),
            (
                *route("GET", "/applications/{application_id}/guilds/{guild_id}/commands"),
                self.get_commands,
            ),
            (
                *route("PUT", "/applications/{application_id}/guilds/{guild_id}/commands"),
                self.put_commands,
            ),
            (*route("GET", "/guilds/{guild_id}"), self.get_guild),
            (*route("GET", "/guilds/{guild_id}/channels"), self.get_guild_channels),
            (*route("GET", "/guilds/{guild_id}/members/{user_id}"), self.get_member),
            (*route("GET", "/channels/{channel_id}"), self.get_channel),
            (*route("PATCH", "/channels/{channel_id}"), self.edit_channel),
            (*route("POST", "/channels/{channel_id}/typing"), self.typing),
            (*route("GET", "/channels/{channel_id}/messages"), self.history),
            (*route("POST", "/channels/{channel_id}/messages"), self.create_message),
            (*route("GET", "/channels/{channel_id}/messages/{message_id}"), self.get_message),
            (*route("PATCH", "/channels/{channel_id}/messages/{message_id}"), self.edit_message),
            (*route("DELETE", "/channels/{channel_id}/messages/{message_id}"), self.delete_message),
            (
                *route("POST", "/channels/{channel_id}/messages/{message_id}/threads"),
                self.thread_from_message,
            ),
            (*route("POST", "/channels/{channel_id}/threads"), self.thread_without_message),
            (*route("PUT", "/channels/{channel_id}/thread-members/@me"), self.join_thread),
            (*route("DELETE", "/channels/{channel_id}/thread-members/@me"), self.leave_thread),
            (
                *route("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"),
                self.add_reaction,
            ),
            (
                *route(
                    "DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"
                ),
                self.remove_own_reaction,
            ),
            (
                *route(
                    "DELETE",
                    "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}",
                ),
                self.remove_reaction,
            ),
        ]

    # ----------------------------------------------------------- lookups
    def channel_id(self, request: web.Request) -> int:
        """The path's channel, which must exist (else 404 Unknown Channel)."""
        channel_id = snowflake(request, "channel_id")
        if not self.state.knows_channel(channel_id):
            fail(404, 10003, "Unknown Channel")
        return channel_id

    def message(self, request: web.Request) -> StoredMessage:
        """The path's message, which must exist (else 404 Unknown Message)."""
        message = self.state.live_message(
            self.channel_id(request), snowflake(request, "message_id")
        )
        if message is None:
            fail(404, 10008, "Unknown Message")
        return message

    def open_thread_check(self, channel_id: int, *, sending: bool = False) -> None:
        """Refuse changes in an archived thread; a new message reopens an unlocked one."""
        thread = self.state.threads.get(channel_id)
        if thread is None or not thread.archived:
            return
        if not sending or thread.locked:
            fail(400, 50083, "Thread is archived")

    # ----------------------------------------------------------- users and application
    async def get_me(self, request: web.Request) -> web.Response:
        return json_response(payloads.user(self.bot))

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.state.users.get(snowflake(request, "user_id"))
        if user is None:
            fail(404, 10013, "Unknown User")
        return json_response(payloads.user(user))

    async def get_application(self, request: web.Request) -> web.Response:
        owner_id = self.state.application_owner_id or self.bot.id
        return json_response(payloads.application(self.bot, self.state.users[owner_id]))

    async def get_gateway(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return json_response(
            {"url": self._gateway_url(), "shards": 1, "session_start_limit": limit}
        )

    async def create_dm(self, request: web.Request) -> web.Response:
        recipient = body_of(request).get("recipient_id")
        if not str(recipient).isdigit() or int(str(recipient)) not in self.state.users:
            fail(404, 10013, "Unknown User")
        channel = self.state.dm_channel(int(str(recipient)))
        return json_response(payloads.channel(self.state, channel))

    # ----------------------------------------------------------- commands
    def _command_scope(self, request: web.Request) -> int | None:
        if snowflake(request, "application_id") != self.bot.id:
            fail(403, 50001, "Missing Access")
        if "guild_id" not in request.match_info:
            return None
        guild_id = snowflake(request, "guild_id")
        if guild_id not in self.state.guilds:
            fail(404, 10004, "Unknown Guild")
        return guild_id

    async def get_commands(self, request: web.Request) -> web.Response:
        return json_response(self.state.commands.get(self._command_scope(request), []))

    async def put_commands(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        commands = request[BODY].json
        check(limits.commands(commands))
        extra: Json = {"application_id": str(self.bot.id), "version": str(self.state.ids.next())}
        if scope is not None:
            extra["guild_id"] = str(scope)
        synced = self.state.sync_commands(scope, [{**c, **extra} for c in commands])
        return json_response(synced)

    # ----------------------------------------------------------- guilds
    def _guild_id(self, request: web.Request) -> int:
        guild_id = snowflake(request, "guild_id")
        if guild_id not in self.state.guilds:
            fail(404, 10004, "Unknown Guild")
        return guild_id

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = payloads.guild_create(self.state, self._guild_id(request))
        for key in ("channels", "threads", "members", "voice_states", "presences", "joined_at"):
            guild.pop(key, None)
        return json_response(guild)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        guild_id = self._guild_id(request)
        channels = [c for c in self.state.channels.values() if c.guild_id == guild_id]
        return json_response([payloads.channel(self.state, c) for c in channels])

    async def get_member(self, request: web.Request) -> web.Response:
        guild_id, user_id = self._guild_id(request), snowflake(request, "user_id")
        if (guild_id, user_id) not in self.state.members:
            fail(404, 10007, "Unknown Member")
        return json_response(payloads.member(self.state, guild_id, user_id))

    # ----------------------------------------------------------- channels
    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(payloads.any_channel(self.state, self.channel_id(request)))

    async def edit_channel(self, request: web.Request) -> web.Response:
        channel_id = self.channel_id(request)
        changes = body_of(request)
        thread = self.state.threads.get(channel_id)
        if thread is None:
            # Only threads: the bot's role lacks Manage Channels, as in the relay's invite.
            fail(403, 50013, "Missing Permissions")
        name = changes.get("name", thread.name)
        check(
            limits.thread_body(
                {"name": name, "auto_archive_duration": changes.get("auto_archive_duration")}
            )
        )
        await self.actions.update_thread(thread, changes)
        return json_response(payloads.thread(self.state, thread))

    async def typing(self, request: web.Request) -> web.Response:
        self.state.typing.append(TypingRecord(self.channel_id(request), self.state.clock()))
        return no_content()

    # ----------------------------------------------------------- messages
    async def history(self, request: web.Request) -> web.Response:
        messages = self.state.channel_history(self.channel_id(request))
        visible = [m for m in messages if not m.deleted and not m.flags & EPHEMERAL_FLAG]
        query = request.query
        limit = min(int(query.get("limit", DEFAULT_HISTORY_LIMIT)), MAX_HISTORY_LIMIT)
        if "after" in query:
            chosen = [m for m in visible if m.id > int(query["after"])][:limit]
        else:
            before = int(query.get("before", 0)) or None
            chosen = [m for m in visible if before is None or m.id < before][-limit:]
        chosen.sort(key=lambda m: m.id, reverse=True)
        viewer = self.bot.id
        return json_response([payloads.message(self.state, m, viewer_id=viewer) for m in chosen])

    async def get_message(self, request: web.Request) -> web.Response:
        return json_response(
            payloads.message(self.state, self.message(request), viewer_id=self.bot.id)
        )

    async def create_message(self, request: web.Request) -> web.Response:
        channel_id = self.channel_id(request)
        self._check_recipient(channel_id)
        new = self.new_message(request)
        self.open_thread_check(channel_id, sending=True)
        await self.reopen_thread(channel_id)
        message = await self.actions.create_message(channel_id, self.bot.id, new)
        return json_response(payloads.message(self.state, message, viewer_id=self.bot.id))

    def _check_recipient(self, channel_id: int) -> None:
        channel = self.state.channels.get(channel_id)
        if channel is not None and channel.type == DM_CHANNEL:
            recipient = self.state.users.get(channel.recipient_id or 0)
            if recipient is None or recipient.bot:
                fail(400, 50007, "Cannot send messages to this user")

    async def reopen_thread(self, channel_id: int) -> None:
        thread = self.state.threads.get(channel_id)
        if thread is not None and thread.archived:
            await self.actions.update_thread(thread, {"archived": False})

    def new_message(self, request: web.Request, **extra: Any) -> NewMessage:
        """The validated message body of a request."""
        return self.message_from(body_of(request), request[BODY].files, **extra)

    def message_from(
        self, body: Json, files: tuple[FileUpload, ...], *, allow_empty: bool = False, **extra: Any
    ) -> NewMessage:
        """A validated message body (content, embeds, files, reply, mentions)."""
        check(limits.message_body(body, [len(f.data) for f in files]))
        content = body.get("content") or ""
        has_content = (
            content.strip()
            or body.get("embeds")
            or body.get("components")
            or files
            or body.get("sticker_ids")
        )
        if not has_content and not body.get("poll") and not allow_empty:
            raise ApiError(400, limits.EMPTY_MESSAGE)
        return NewMessage(
            content=content,
            embeds=tuple(body.get("embeds") or ()),
            files=files,
            reference=self.reference_to(body.get("message_reference")),
            allowed_mentions=body.get("allowed_mentions"),
            nonce=body.get("nonce"),
            flags=int(body.get("flags") or 0),
            components=tuple(body.get("components") or ()),
            tts=bool(body.get("tts")),
            **extra,
        )

    def reference_to(self, reference: Json | None) -> Json | None:
        if not reference or reference.get("message_id") is None:
            return None
        target = self.state.messages.get(int(reference["message_id"]))
        if target is None or target.deleted:
            if reference.get("fail_if_not_exists", True):
                raise ApiError(
                    400,
                    payloads.field_error(
                        "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                    ),
                )
            return None
        resolved: Json = {
            "type": 0,
            "message_id": str(target.id),
            "channel_id": str(target.channel_id),
        }
        if target.guild_id is not None:
            resolved["guild_id"] = str(target.guild_id)
        return resolved

    async def edit_message(self, request: web.Request) -> web.Response:
        message = self.message(request)
        if message.author_id != self.bot.id:
            fail(403, 50005, "Cannot edit a message authored by another user")
        self.open_thread_check(message.channel_id)
        await self.apply_edit(request, message)
        return json_response(payloads.message(self.state, message, viewer_id=self.bot.id))

    async def apply_edit(self, request: web.Request, message: StoredMessage) -> None:
        """Validate and apply an edit request (content, embeds, components, attachments)."""
        await self.apply_edit_body(body_of(request), request[BODY].files, message)

    async def apply_edit_body(
        self, body: Json, files: tuple[FileUpload, ...], message: StoredMessage
    ) -> None:
        """Validate and apply an edit body (content, embeds, components, kept and new
        attachments); also the data of an UPDATE_MESSAGE interaction callback."""
        check(limits.message_body(body, [len(f.data) for f in files]))
        kept = message.attachments
        if "attachments" in body or files:
            listed = {str(a.get("id")) for a in body.get("attachments") or []}
            kept = [a for a in message.attachments if str(a.id) in listed]
        new_content = (body.get("content") or "") if "content" in body else None
        new_embeds = (body.get("embeds") or []) if "embeds" in body else None
        new_components = (body.get("components") or []) if "components" in body else None
        final_content = message.content if new_content is None else new_content
        final_embeds = message.embeds if new_embeds is None else new_embeds
        final_components = message.components if new_components is None else new_components
        shown = final_content.strip() or final_embeds or final_components
        if not shown and not kept and not files:
            raise ApiError(400, limits.EMPTY_MESSAGE)
        message.attachments = kept + [self.actions.attach(message, f) for f in files]
        if "flags" in body:
            message.flags = int(body["flags"] or 0) | (message.flags & EPHEMERAL_FLAG)
        await self.actions.edit_message(message, new_content, new_embeds, new_components)

    async def delete_message(self, request: web.Request) -> web.Response:
        message = self.message(request)
        self.open_thread_check(message.channel_id)
        await self.actions.delete_message(message)
        return no_content()

    # ----------------------------------------------------------- threads
    async def thread_from_message(self, request: web.Request) -> web.Response:
        message = self.message(request)
        self._check_thread_parent(message.channel_id)
        if message.thread_id is not None:
            fail(400, 160004, "A thread has already been created for this message")
        body = body_of(request)
        check(limits.thread_body(body))
        thread = await self.actions.start_thread(
            message.channel_id, self.bot.id, body, starter=message
        )
        return json_response(self._thread_with_member(thread))

    async def thread_without_message(self, request: web.Request) -> web.Response:
        channel_id = self.channel_id(request)
        self._check_thread_parent(channel_id)
        body = body_of(request)
        check(limits.thread_body(body))
        if body.get("type", 12) not in (11, 12):
            raise ApiError(
                400,
                payloads.field_error("type", "BASE_TYPE_CHOICES", "Value must be one of (11, 12)."),
            )
        thread = await self.actions.start_thread(channel_id, self.bot.id, {"type": 12, **body})
        return json_response(self._thread_with_member(thread))

    def _check_thread_parent(self, channel_id: int) -> None:
        channel = self.state.channels.get(channel_id)
        if channel is None or channel.type != TEXT_CHANNEL:
            fail(400, 50024, "Cannot execute action on this channel type")

    def _thread_with_member(self, thread: StoredThread) -> Json:
        payload = payloads.thread(self.state, thread)
        payload["member"] = {
            "id": str(thread.id),
            "user_id": str(self.bot.id),
            "join_timestamp": payloads.iso(thread.created_at),
            "flags": 0,
        }
        return payload

    async def join_thread(self, request: web.Request) -> web.Response:
        thread = self.state.threads.get(self.channel_id(request))
        if thread is None:
            fail(400, 50024, "Cannot execute action on this channel type")
        thread.member_ids.add(self.bot.id)
        return no_content()

    async def leave_thread(self, request: web.Request) -> web.Response:
        thread = self.state.threads.get(self.channel_id(request))
        if thread is None:
            fail(400, 50024, "Cannot execute action on this channel type")
        thread.member_ids.discard(self.bot.id)
        return no_content()

    # ----------------------------------------------------------- reactions
    def _emoji(self, request: web.Request) -> str:
        key = self.actions.emoji_key(request.match_info["emoji"])
        if key is None:
            fail(400, 10014, "Unknown Emoji")
        return key

    async def add_reaction(self, request: web.Request) -> web.Response:
        return await self._react(request, self.bot.id, added=True)

    async def remove_own_reaction(self, request: web.Request) -> web.Response:
        return await self._react(request, self.bot.id, added=False)

    async def remove_reaction(self, request: web.Request) -> web.Response:
        return await self._react(request, snowflake(request, "user_id"), added=False)

    async def _react(self, request: web.Request, user_id: int, *, added: bool) -> web.Response:
        message = self.message(request)
        emoji = self._emoji(request)
        self.open_thread_check(message.channel_id)
        await self.actions.react(message, emoji, user_id, added=added)
        return no_content()
