"""Slash-command and button-click interactions: building injected ones, and the
callback and webhook endpoints a bot answers them through (responses, defers,
message updates, followups)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from enum import IntEnum
from typing import Any

from aiohttp import web

from trollama.testkit.fake_discord import limits, payloads
from trollama.testkit.fake_discord.payloads import Json
from trollama.testkit.fake_discord.records import (
    InteractionRecord,
    InteractionResponseKind,
    InteractionResponseRecord,
)
from trollama.testkit.fake_discord.rest import (
    BODY,
    ApiError,
    Handler,
    RestApi,
    body_of,
    check,
    fail,
    json_response,
    no_content,
    route,
    snowflake,
)
from trollama.testkit.fake_discord.state import (
    EPHEMERAL_FLAG,
    LOADING_FLAG,
    DiscordState,
    StoredInteraction,
    StoredMessage,
)

#: Seconds an interaction has for its first answer (then Discord forgets it).
INTERACTION_ACK_SECONDS = 3.0
#: Seconds an interaction token stays valid for followups and edits.
INTERACTION_TOKEN_SECONDS = 15 * 60
#: Interaction types.
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4
#: Application command option types.
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER = 3, 4, 5, 6, 7, 8, 9, 10


class Callback(IntEnum):
    """Interaction callback types."""

    CHANNEL_MESSAGE = 4
    DEFERRED_CHANNEL_MESSAGE = 5
    #: Component interactions only: acknowledge, edit the message later (or not).
    DEFERRED_UPDATE_MESSAGE = 6
    #: Component interactions only: edit the message the component is on.
    UPDATE_MESSAGE = 7
    AUTOCOMPLETE_RESULT = 8
    MODAL = 9


_ALLOWED_CALLBACKS = {
    APPLICATION_COMMAND: {
        Callback.CHANNEL_MESSAGE,
        Callback.DEFERRED_CHANNEL_MESSAGE,
        Callback.MODAL,
    },
    MESSAGE_COMPONENT: {
        Callback.CHANNEL_MESSAGE,
        Callback.DEFERRED_CHANNEL_MESSAGE,
        Callback.DEFERRED_UPDATE_MESSAGE,
        Callback.UPDATE_MESSAGE,
        Callback.MODAL,
    },
    AUTOCOMPLETE: {Callback.AUTOCOMPLETE_RESULT},
}


# ------------------------------------------------------------------ building
def build_interaction(
    state: DiscordState,
    command_name: str,
    options: Mapping[str, Any],
    *,
    user_id: int,
    channel_id: int,
    focused: str | None,
) -> InteractionRecord:
    """An interaction for a synced command; ``focused`` makes it an autocomplete.

    ``command_name`` may name a subcommand (``"memory show"``). Raises
    ``LookupError`` for a command that was never synced and ``ValueError`` for
    options the command does not have."""
    guild_id = state.guild_of(channel_id)
    top, *path = command_name.split()
    command = _find_command(state, guild_id, top)
    schema, wrap = _descend(command, path)
    builder = _OptionBuilder(state, command_name, guild_id, user_id)
    data: Json = {
        "id": command["id"],
        "name": top,
        "type": 1,
        "options": wrap(builder.options(schema, options, focused)),
    }
    if builder.resolved:
        data["resolved"] = builder.resolved
    if command.get("guild_id"):
        data["guild_id"] = command["guild_id"]
    return InteractionRecord(
        id=state.ids.next(),
        token=secrets.token_urlsafe(48),
        type=AUTOCOMPLETE if focused else APPLICATION_COMMAND,
        command_name=command_name,
        user_id=user_id,
        channel_id=channel_id,
        guild_id=guild_id,
        data=data,
        created_at=state.clock(),
    )


def build_click(
    state: DiscordState, message: StoredMessage, custom_id: str, *, user_id: int
) -> InteractionRecord:
    """A user clicks the component ``custom_id`` of ``message`` (a MESSAGE_COMPONENT
    interaction). Raises ``LookupError`` when the message has no such component and
    ``ValueError`` when it is disabled (Discord's client would not let anyone click it)."""
    component = find_component(message.components, custom_id)
    if component is None:
        raise LookupError(f"message {message.id} has no component {custom_id!r}")
    if component.get("disabled"):
        raise ValueError(f"component {custom_id!r} of message {message.id} is disabled")
    return InteractionRecord(
        id=state.ids.next(),
        token=secrets.token_urlsafe(48),
        type=MESSAGE_COMPONENT,
        command_name=custom_id,
        user_id=user_id,
        channel_id=message.channel_id,
        guild_id=message.guild_id,
        data={"custom_id": custom_id, "component_type": component["type"]},
        created_at=state.clock(),
        message_id=message.id,
    )


def find_component(components: list[Json], custom_id: str) -> Json | None:
    """The component with ``custom_id`` in (nested) components, if any."""
    for component in components:
        if component.get("custom_id") == custom_id:
            return component
        found = find_component(component.get("components") or [], custom_id)
        if found is not None:
            return found
    return None


def _find_command(state: DiscordState, guild_id: int | None, name: str) -> Json:
    scopes = ([guild_id] if guild_id is not None else []) + [None]
    for scope in scopes:
        for command in state.commands.get(scope, []):
            if command["name"] == name and command.get("type", 1) == 1:
                return command
    raise LookupError(f"/{name} was never synced to the fake Discord")


def _descend(command: Json, path: list[str]) -> tuple[Json, Any]:
    """The (sub)command the path names, and how to nest its options."""
    wrappers: list[tuple[int, str]] = []
    node = command
    for name in path:
        children = {
            o["name"]: o
            for o in node.get("options") or []
            if o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)
        }
        if name not in children:
            raise LookupError(f"/{command['name']} has no subcommand {name!r}")
        node = children[name]
        wrappers.append((node["type"], name))

    def wrap(values: list[Json]) -> list[Json]:
        for kind, name in reversed(wrappers):
            values = [{"type": kind, "name": name, "options": values}]
        return values

    return node, wrap


class _OptionBuilder:
    """Option values as Discord sends them, with the ``resolved`` entities."""

    def __init__(
        self, state: DiscordState, command_name: str, guild_id: int | None, user_id: int
    ) -> None:
        self.state = state
        self.command_name = command_name
        self.guild_id = guild_id
        self.user_id = user_id
        self.resolved: Json = {}

    def options(self, schema: Json, values: Mapping[str, Any], focused: str | None) -> list[Json]:
        known = {o["name"]: o["type"] for o in schema.get("options") or []}
        if focused is not None and focused not in values:
            values = {**values, focused: ""}
        self._check(schema, values, focused)
        built = []
        for name, value in values.items():
            if name == focused:
                built.append(
                    {"name": name, "type": known[name], "value": str(value), "focused": True}
                )
            else:
                built.append(
                    {"name": name, "type": known[name], "value": self.value(known[name], value)}
                )
        return built

    def _check(self, schema: Json, values: Mapping[str, Any], focused: str | None) -> None:
        known = {o["name"]: o for o in schema.get("options") or [] if o["type"] not in (1, 2)}
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(
                f"/{self.command_name} has no option(s) {sorted(unknown)}; it has {sorted(known)}"
            )
        missing = {n for n, o in known.items() if o.get("required")} - set(values)
        if missing and focused is None:
            raise ValueError(f"/{self.command_name} needs option(s) {sorted(missing)}")

    def value(self, kind: int, value: Any) -> Any:
        simple = {STRING: str, INTEGER: int, BOOLEAN: bool, NUMBER: float}
        if kind in simple:
            return simple[kind](value)
        entity_id = int(getattr(value, "id", value))
        if kind in (USER, MENTIONABLE) and entity_id in self.state.users:
            self._resolve_user(entity_id)
        elif kind in (ROLE, MENTIONABLE) and entity_id in self.state.roles:
            self._add("roles", entity_id, payloads.role(self.state.roles[entity_id]))
        elif kind == CHANNEL and self.state.knows_channel(entity_id):
            self._add(
                "channels",
                entity_id,
                payloads.resolved_channel(self.state, entity_id, self.user_id),
            )
        else:
            raise ValueError(
                f"option type {kind} with value {value!r} is not supported by the fake"
            )
        return str(entity_id)

    def _resolve_user(self, user_id: int) -> None:
        self._add("users", user_id, payloads.user(self.state.users[user_id]))
        if self.guild_id is not None and (self.guild_id, user_id) in self.state.members:
            member = payloads.member(self.state, self.guild_id, user_id, with_user=False)
            self._add("members", user_id, member)

    def _add(self, kind: str, entity_id: int, payload: Json) -> None:
        self.resolved.setdefault(kind, {})[str(entity_id)] = payload


# ------------------------------------------------------------------ answering
class InteractionApi:
    """``/interactions/{id}/{token}/callback`` and ``/webhooks/{app}/{token}...``."""

    def __init__(self, rest: RestApi) -> None:
        self.rest = rest
        self.actions = rest.actions
        self.state = rest.state
        self.bot = rest.bot

    def routes(self) -> list[tuple[str, str, Handler]]:
        hook = "/webhooks/{application_id}/{token}"
        return [
            (*route("POST", "/interactions/{interaction_id:\\d+}/{token}/callback"), self.callback),
            (*route("POST", hook), self.followup),
            (*route("GET", hook + "/messages/@original"), self.get_message),
            (*route("PATCH", hook + "/messages/@original"), self.edit_message),
            (*route("DELETE", hook + "/messages/@original"), self.delete_message),
            (*route("GET", hook + "/messages/{message_id}"), self.get_message),
            (*route("PATCH", hook + "/messages/{message_id}"), self.edit_message),
            (*route("DELETE", hook + "/messages/{message_id}"), self.delete_message),
        ]

    # ----------------------------------------------------------- callback
    def _for_callback(self, request: web.Request) -> StoredInteraction:
        stored = self.state.interactions.get(snowflake(request, "interaction_id"))
        if stored is None or stored.record.token != request.match_info["token"]:
            fail(404, 10062, "Unknown interaction")
        if stored.callback_type is not None:
            fail(400, 40060, "Interaction has already been acknowledged.")
        if self.state.clock() - stored.record.created_at > INTERACTION_ACK_SECONDS:
            fail(404, 10062, "Unknown interaction")
        return stored

    async def callback(self, request: web.Request) -> web.Response:
        stored = self._for_callback(request)
        body = body_of(request)
        kind, data = body.get("type"), body.get("data") or {}
        if kind not in _ALLOWED_CALLBACKS[stored.record.type]:
            raise ApiError(
                400,
                payloads.field_error(
                    "type", "INTERACTION_CALLBACK_TYPE_INVALID", "Invalid callback type"
                ),
            )
        message = await self._answer(request, stored, Callback(kind), data)
        stored.callback_type = kind
        self._record(stored, "callback", kind, body, message)
        return json_response(self._callback_body(stored, kind, message))

    async def _answer(
        self, request: web.Request, stored: StoredInteraction, kind: Callback, data: Json
    ) -> StoredMessage | None:
        if kind is Callback.AUTOCOMPLETE_RESULT:
            check(limits.choices("data.choices", data.get("choices") or []))
            return None
        if kind is Callback.MODAL:
            return None
        if kind in (Callback.DEFERRED_UPDATE_MESSAGE, Callback.UPDATE_MESSAGE):
            return await self._update(request, stored, kind, data)
        flags = int(data.get("flags") or 0) & EPHEMERAL_FLAG
        if kind is Callback.DEFERRED_CHANNEL_MESSAGE:
            data, flags = {}, flags | LOADING_FLAG
        new = self.rest.message_from(
            {**data, "flags": flags},
            request[BODY].files,
            allow_empty=kind is Callback.DEFERRED_CHANNEL_MESSAGE,
            webhook_id=self.bot.id,
            interaction_id=stored.record.id,
            type=payloads.SLASH_COMMAND_MESSAGE_TYPE,
        )
        message = await self.actions.create_message(stored.record.channel_id, self.bot.id, new)
        stored.original_message_id = message.id
        return message

    async def _update(
        self, request: web.Request, stored: StoredInteraction, kind: Callback, data: Json
    ) -> StoredMessage | None:
        """Types 6 and 7: the clicked message becomes the interaction's original
        response (``@original`` edits it); type 7 edits it now."""
        message = self.state.messages.get(stored.record.message_id or 0)
        if message is None or message.deleted:
            fail(404, 10008, "Unknown Message")
        stored.original_message_id = message.id
        if kind is Callback.DEFERRED_UPDATE_MESSAGE:
            return None
        await self.rest.apply_edit_body(data, request[BODY].files, message)
        return message

    def _callback_body(
        self, stored: StoredInteraction, kind: int, message: StoredMessage | None
    ) -> Json:
        interaction: Json = {
            "id": str(stored.record.id),
            "type": stored.record.type,
            "response_message_loading": kind == Callback.DEFERRED_CHANNEL_MESSAGE,
            "response_message_ephemeral": bool(message and message.flags & EPHEMERAL_FLAG),
        }
        resource: Json = {"type": kind}
        if message is not None:
            interaction["response_message_id"] = str(message.id)
            resource["message"] = payloads.message(self.state, message, viewer_id=self.bot.id)
        return {"interaction": interaction, "resource": resource}

    def _record(
        self,
        stored: StoredInteraction,
        kind: InteractionResponseKind,
        callback_type: int | None,
        body: Json,
        message: StoredMessage | None,
    ) -> None:
        stored.responses.append(
            InteractionResponseRecord(
                stored.record.id,
                kind,
                callback_type,
                body,
                message.id if message else None,
                self.state.clock(),
            )
        )

    # ----------------------------------------------------------- webhooks
    def _for_webhook(self, request: web.Request) -> StoredInteraction:
        if snowflake(request, "application_id") != self.bot.id:
            fail(404, 10015, "Unknown Webhook")
        interaction_id = self.state.interaction_tokens.get(request.match_info["token"])
        stored = self.state.interactions.get(interaction_id or 0)
        if stored is None or stored.callback_type is None:
            fail(404, 10015, "Unknown Webhook")
        if self.state.clock() - stored.record.created_at > INTERACTION_TOKEN_SECONDS:
            fail(401, 50027, "Invalid Webhook Token")
        return stored

    def _loading_original(self, stored: StoredInteraction) -> StoredMessage | None:
        message = self.state.messages.get(stored.original_message_id or 0)
        if message is None or message.deleted or not message.flags & LOADING_FLAG:
            return None
        return message

    async def followup(self, request: web.Request) -> web.Response:
        stored = self._for_webhook(request)
        original = self._loading_original(stored)
        if original is not None:
            # The first followup after a defer replaces the "thinking" message.
            original.flags &= ~LOADING_FLAG
            await self.rest.apply_edit(request, original)
            message = original
        else:
            new = self.rest.new_message(
                request, webhook_id=self.bot.id, interaction_id=stored.record.id
            )
            message = await self.actions.create_message(stored.record.channel_id, self.bot.id, new)
            stored.followup_ids.append(message.id)
        self._record(stored, "followup", None, body_of(request), message)
        if request.query.get("wait") not in ("1", "true", "True"):
            return no_content()
        return json_response(payloads.message(self.state, message, viewer_id=self.bot.id))

    def _webhook_message(
        self, request: web.Request, stored: StoredInteraction
    ) -> tuple[StoredMessage, bool]:
        original = "message_id" not in request.match_info
        message_id = stored.original_message_id if original else snowflake(request, "message_id")
        owned = [stored.original_message_id, *stored.followup_ids]
        message = self.state.messages.get(message_id or 0)
        if message is None or message.deleted or message.id not in owned:
            fail(404, 10008, "Unknown Message")
        return message, message.id == stored.original_message_id

    async def get_message(self, request: web.Request) -> web.Response:
        message, _ = self._webhook_message(request, self._for_webhook(request))
        return json_response(payloads.message(self.state, message, viewer_id=self.bot.id))

    async def edit_message(self, request: web.Request) -> web.Response:
        stored = self._for_webhook(request)
        message, is_original = self._webhook_message(request, stored)
        message.flags &= ~LOADING_FLAG
        await self.rest.apply_edit(request, message)
        self._record(
            stored,
            "edit_original" if is_original else "edit_followup",
            None,
            body_of(request),
            message,
        )
        return json_response(payloads.message(self.state, message, viewer_id=self.bot.id))

    async def delete_message(self, request: web.Request) -> web.Response:
        stored = self._for_webhook(request)
        message, is_original = self._webhook_message(request, stored)
        await self.actions.delete_message(message)
        self._record(
            stored, "delete_original" if is_original else "delete_followup", None, {}, message
        )
        return no_content()
