"""The JSON shapes Discord sends and discord.py 2.7 parses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from trollama.testkit.fake_discord.records import (
    AttachmentRecord,
    BanRecord,
    ChannelRecord,
    EmojiRecord,
    RoleRecord,
    UserRecord,
)
from trollama.testkit.fake_discord.state import (
    DM_CHANNEL,
    DiscordState,
    StoredInteraction,
    StoredMessage,
    StoredThread,
    snowflake_time,
)

#: Gateway and REST API version the fake speaks.
API_VERSION = 10
#: Largest upload the fake reports to interactions, in bytes (Discord's default 10 MiB).
ATTACHMENT_SIZE_LIMIT_BYTES = 10 * 1024 * 1024
#: Message type of an interaction's original response (CHAT_INPUT_COMMAND).
SLASH_COMMAND_MESSAGE_TYPE = 20
Json = dict[str, Any]


def iso(timestamp: float) -> str:
    """Discord's ISO-8601 timestamp format."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def error(code: int, message: str, errors: Json | None = None) -> Json:
    """Discord's error body (``errors`` holds per-field details)."""
    body: Json = {"code": code, "message": message}
    if errors is not None:
        body["errors"] = errors
    return body


def field_error(path: str, code: str, message: str) -> Json:
    """A 50035 "Invalid Form Body" error for one field (``path`` like ``content`` or ``name``)."""
    errors: Json = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        errors = {part: errors}
    return error(50035, "Invalid Form Body", errors)


def user(record: UserRecord) -> Json:
    return {
        "id": str(record.id),
        "username": record.username,
        "discriminator": "0",
        "global_name": record.global_name,
        "avatar": None,
        "bot": record.bot,
        "public_flags": 0,
        "flags": 0,
    }


def role(record: RoleRecord) -> Json:
    payload: Json = {
        "id": str(record.id),
        "name": record.name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "position": record.position,
        "permissions": str(record.permissions),
        "managed": record.bot_id is not None,
        "mentionable": False,
        "flags": 0,
        "icon": None,
        "unicode_emoji": None,
    }
    if record.bot_id is not None:
        payload["tags"] = {"bot_id": str(record.bot_id)}
    return payload


def emoji(record: EmojiRecord) -> Json:
    return {
        "id": str(record.id),
        "name": record.name,
        "roles": [],
        "require_colons": True,
        "managed": False,
        "animated": record.animated,
        "available": True,
    }


def partial_emoji(state: DiscordState, key: str) -> Json:
    """The emoji object of a reaction key (a character or ``name:id``)."""
    name, _, emoji_id = key.partition(":")
    if not emoji_id:
        return {"id": None, "name": key}
    record = state.emojis.get(int(emoji_id))
    return {"id": emoji_id, "name": name, "animated": bool(record and record.animated)}


def member(state: DiscordState, guild_id: int, user_id: int, *, with_user: bool = True) -> Json:
    stored = state.members.get((guild_id, user_id))
    payload: Json = {
        "roles": [str(r) for r in (stored.role_ids if stored else [])],
        "joined_at": iso(stored.joined_at if stored else state.clock()),
        "nick": stored.nick if stored else None,
        "avatar": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "premium_since": None,
        "communication_disabled_until": _timeout_until(stored.communication_disabled_until)
        if stored
        else None,
    }
    if with_user:
        payload["user"] = user(state.users[user_id])
    return payload


def _timeout_until(until: float | None) -> str | None:
    return None if until is None else iso(until)


def ban(state: DiscordState, record: BanRecord) -> Json:
    """A ban as ``GET /guilds/{guild_id}/bans`` lists it."""
    return {"reason": record.reason, "user": user(state.users[record.user_id])}


def channel(state: DiscordState, record: ChannelRecord) -> Json:
    if record.type == DM_CHANNEL:
        recipient = state.users[record.recipient_id or 0]
        return {
            "id": str(record.id),
            "type": DM_CHANNEL,
            "last_message_id": _last_message_id(state, record.id),
            "recipients": [user(recipient)],
            "flags": 0,
        }
    return {
        "id": str(record.id),
        "type": record.type,
        "guild_id": str(record.guild_id),
        "name": record.name,
        "position": record.position,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": record.topic,
        "last_message_id": _last_message_id(state, record.id),
        "rate_limit_per_user": 0,
        "default_auto_archive_duration": 1440,
        "flags": 0,
    }


def thread(state: DiscordState, stored: StoredThread, *, newly_created: bool = False) -> Json:
    payload: Json = {
        "id": str(stored.id),
        "guild_id": str(stored.guild_id),
        "parent_id": str(stored.parent_id),
        "owner_id": str(stored.owner_id),
        "name": stored.name,
        "type": stored.type,
        "last_message_id": _last_message_id(state, stored.id),
        "member_count": max(len(stored.member_ids), 1),
        "message_count": stored.message_count,
        "total_message_sent": stored.message_count,
        "rate_limit_per_user": stored.rate_limit_per_user,
        "flags": 0,
        "thread_metadata": {
            "archived": stored.archived,
            "auto_archive_duration": stored.auto_archive_duration,
            "archive_timestamp": iso(stored.archive_timestamp or stored.created_at),
            "locked": stored.locked,
            "create_timestamp": iso(stored.created_at),
        },
    }
    if newly_created:
        payload["newly_created"] = True
    return payload


def any_channel(state: DiscordState, channel_id: int) -> Json:
    """A channel, DM channel or thread by id (which must exist)."""
    stored = state.threads.get(channel_id)
    if stored is not None:
        return thread(state, stored)
    return channel(state, state.channels[channel_id])


def _last_message_id(state: DiscordState, channel_id: int) -> str | None:
    ids = state.channel_messages.get(channel_id)
    return str(ids[-1]) if ids else None


def guild_create(state: DiscordState, guild_id: int) -> Json:
    """The full GUILD_CREATE payload (channels, roles, members, emojis, active threads)."""
    guild = state.guilds[guild_id]
    members = state.guild_members(guild_id)
    channels = [c for c in state.channels.values() if c.guild_id == guild_id]
    threads = [t for t in state.threads.values() if t.guild_id == guild_id and not t.archived]
    emojis = [e for e in state.emojis.values() if e.guild_id == guild_id]
    return {
        "id": str(guild.id),
        "name": guild.name,
        "owner_id": str(guild.owner_id),
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "features": [],
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "system_channel_id": str(channels[0].id) if channels else None,
        "system_channel_flags": 0,
        "afk_channel_id": None,
        "afk_timeout": 300,
        "joined_at": iso(snowflake_time(guild.id)),
        "large": False,
        "unavailable": False,
        "member_count": len(members),
        "roles": [role(r) for r in state.guild_roles(guild_id)],
        "emojis": [emoji(e) for e in emojis],
        "stickers": [],
        "channels": [channel(state, c) for c in channels],
        "threads": [thread(state, t) for t in threads],
        "members": [member(state, guild_id, m.user_id) for m in members],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def ready(state: DiscordState, bot: UserRecord, session_id: str, resume_url: str) -> Json:
    return {
        "v": API_VERSION,
        "user": {**user(bot), "verified": True, "mfa_enabled": False, "email": None},
        "guilds": [{"id": str(g), "unavailable": True} for g in state.guilds],
        "session_id": session_id,
        "session_type": "normal",
        "resume_gateway_url": resume_url,
        "shard": [0, 1],
        "application": {"id": str(bot.id), "flags": 0},
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "user_settings": {},
        "auth": {},
        "geo_ordered_rtc_regions": [],
    }


def application(bot: UserRecord, owner: UserRecord) -> Json:
    """``GET /oauth2/applications/@me``."""
    return {
        "id": str(bot.id),
        "name": bot.username,
        "icon": None,
        "description": "A bot running against the fake Discord.",
        "rpc_origins": [],
        "bot_public": True,
        "bot_require_code_grant": False,
        "bot": user(bot),
        "owner": user(owner),
        "team": None,
        "verify_key": "0" * 64,
        "flags": 0,
        "summary": "",
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": None,
    }


def attachment(record: AttachmentRecord) -> Json:
    payload: Json = {
        "id": str(record.id),
        "filename": record.filename,
        "size": record.size,
        "url": record.url,
        "proxy_url": record.url,
    }
    if record.content_type:
        payload["content_type"] = record.content_type
    return payload


def message(
    state: DiscordState, stored: StoredMessage, *, viewer_id: int, nested: bool = False
) -> Json:
    """A message as ``viewer_id`` (the bot) sees it; ``nested`` omits the replied-to message."""
    payload: Json = {
        "id": str(stored.id),
        "channel_id": str(stored.channel_id),
        "author": user(state.users[stored.author_id]),
        "content": stored.content,
        "timestamp": iso(stored.created_at),
        "edited_timestamp": None if stored.edited_at is None else iso(stored.edited_at),
        "tts": stored.tts,
        "mention_everyone": stored.mention_everyone,
        "mentions": [_mention(state, stored.guild_id, u) for u in stored.mention_ids],
        "mention_roles": [str(r) for r in stored.mention_role_ids],
        "attachments": [attachment(a) for a in stored.attachments],
        "embeds": list(stored.embeds),
        "components": list(stored.components),
        "pinned": False,
        "type": stored.type,
        "flags": stored.flags,
    }
    if stored.reactions:
        payload["reactions"] = [
            _reaction(state, k, v, viewer_id) for k, v in stored.reactions.items()
        ]
    _add_context(state, stored, payload, viewer_id=viewer_id, nested=nested)
    return payload


def _add_context(
    state: DiscordState, stored: StoredMessage, payload: Json, *, viewer_id: int, nested: bool
) -> None:
    """Guild, member, reply, thread and interaction fields, when they apply."""
    if stored.guild_id is not None:
        payload["guild_id"] = str(stored.guild_id)
        if stored.webhook_id is None:
            payload["member"] = member(state, stored.guild_id, stored.author_id, with_user=False)
    if stored.nonce is not None:
        payload["nonce"] = stored.nonce
    if stored.webhook_id is not None:
        payload["webhook_id"] = str(stored.webhook_id)
        payload["application_id"] = str(stored.webhook_id)
    if stored.reference is not None:
        payload["message_reference"] = stored.reference
        if not nested:
            payload["referenced_message"] = _referenced(state, stored, viewer_id)
    if stored.thread_id is not None and stored.thread_id in state.threads:
        payload["thread"] = thread(state, state.threads[stored.thread_id])
    interaction = state.interactions.get(stored.interaction_id or 0)
    if interaction is not None:
        payload["interaction_metadata"] = _interaction_metadata(state, interaction)


def _referenced(state: DiscordState, stored: StoredMessage, viewer_id: int) -> Json | None:
    referenced = state.messages.get(stored.reference_id or 0)
    if referenced is None or referenced.deleted:
        return None
    return message(state, referenced, viewer_id=viewer_id, nested=True)


def _mention(state: DiscordState, guild_id: int | None, user_id: int) -> Json:
    payload = user(state.users[user_id])
    if guild_id is not None and (guild_id, user_id) in state.members:
        payload["member"] = member(state, guild_id, user_id, with_user=False)
    return payload


def _reaction(state: DiscordState, key: str, user_ids: list[int], viewer_id: int) -> Json:
    return {
        "count": len(user_ids),
        "count_details": {"burst": 0, "normal": len(user_ids)},
        "me": viewer_id in user_ids,
        "me_burst": False,
        "burst_colors": [],
        "emoji": partial_emoji(state, key),
    }


def _interaction_metadata(state: DiscordState, interaction: StoredInteraction) -> Json:
    record = interaction.record
    owners = {"0": str(record.guild_id)} if record.guild_id else {"1": str(record.user_id)}
    return {
        "id": str(record.id),
        "type": record.type,
        "name": record.command_name,
        "user": user(state.users[record.user_id]),
        "authorizing_integration_owners": owners,
    }


def without_content(payload: Json) -> Json:
    """A message as a bot without the message content intent receives it."""
    return {**payload, "content": "", "embeds": [], "attachments": [], "components": []}


def interaction(state: DiscordState, stored: StoredInteraction, application_id: int) -> Json:
    """The INTERACTION_CREATE payload of an injected interaction."""
    record = stored.record
    payload: Json = {
        "id": str(record.id),
        "application_id": str(application_id),
        "type": record.type,
        "data": record.data,
        "token": record.token,
        "version": 1,
        "channel_id": str(record.channel_id),
        "channel": any_channel(state, record.channel_id),
        "app_permissions": str(_app_permissions(state, record.guild_id, application_id)),
        "locale": "en-US",
        "entitlements": [],
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT_BYTES,
    }
    clicked = state.messages.get(record.message_id or 0)
    if clicked is not None:
        payload["message"] = message(state, clicked, viewer_id=application_id)
    if record.guild_id is None:
        payload["user"] = user(state.users[record.user_id])
        payload["context"] = 1
        payload["authorizing_integration_owners"] = {"0": str(record.user_id)}
        return payload
    guild_member = member(state, record.guild_id, record.user_id)
    guild_member["permissions"] = str(state.permissions(record.guild_id, record.user_id))
    payload.update(
        guild_id=str(record.guild_id),
        guild={"id": str(record.guild_id), "locale": "en-US", "features": []},
        guild_locale="en-US",
        member=guild_member,
        context=0,
        authorizing_integration_owners={"0": str(record.guild_id)},
    )
    return payload


def _app_permissions(state: DiscordState, guild_id: int | None, bot_id: int) -> int:
    return state.permissions(guild_id, bot_id) if guild_id is not None else 0


def resolved_channel(state: DiscordState, channel_id: int, viewer_id: int) -> Json:
    """A channel as it appears in an interaction's ``resolved`` data."""
    payload = any_channel(state, channel_id)
    guild_id = state.guild_of(channel_id)
    payload["permissions"] = str(state.permissions(guild_id, viewer_id) if guild_id else 0)
    return payload
