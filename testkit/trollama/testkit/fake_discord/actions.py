"""What happens in the fake Discord, wherever it comes from (REST, webhooks, tests).

Each action changes the state and dispatches the gateway event real Discord
sends for it (the bot sees its own messages too).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import quote

from trollama.testkit.fake_discord import payloads
from trollama.testkit.fake_discord.gateway import Dispatch, Gateway, Intent
from trollama.testkit.fake_discord.payloads import Json
from trollama.testkit.fake_discord.records import AttachmentRecord, UploadRecord, UserRecord
from trollama.testkit.fake_discord.state import (
    DEFAULT_AUTO_ARCHIVE_MINUTES,
    EPHEMERAL_FLAG,
    PUBLIC_THREAD,
    DiscordState,
    StoredMessage,
    StoredThread,
)

#: Attachments whose bytes the fake serves (oldest forgotten first).
MAX_SERVED_ATTACHMENTS = 2_000
#: Message types.
DEFAULT_MESSAGE = 0
THREAD_CREATED_MESSAGE = 18
REPLY_MESSAGE = 19

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


@dataclass(frozen=True)
class FileUpload:
    """A file to attach: its name, bytes and optional MIME type."""

    filename: str
    data: bytes
    content_type: str | None = None


@dataclass(frozen=True)
class NewMessage:
    """Everything a new message needs besides its channel and author."""

    content: str = ""
    embeds: tuple[Json, ...] = ()
    files: tuple[FileUpload, ...] = ()
    reference: Json | None = None
    allowed_mentions: Json | None = None
    nonce: str | int | None = None
    type: int | None = None
    flags: int = 0
    components: tuple[Json, ...] = ()
    tts: bool = False
    webhook_id: int | None = None
    interaction_id: int | None = None


class Actions:
    """State changes plus their gateway events."""

    def __init__(
        self, state: DiscordState, gateway: Gateway, bot: UserRecord, base_url: Callable[[], str]
    ) -> None:
        self.state = state
        self.gateway = gateway
        self.bot = bot
        self._base_url = base_url
        self.attachments: OrderedDict[int, AttachmentRecord] = OrderedDict()

    # ----------------------------------------------------------- messages
    async def create_message(
        self, channel_id: int, author_id: int, new: NewMessage
    ) -> StoredMessage:
        """Store a message and dispatch MESSAGE_CREATE (not for ephemeral ones)."""
        state = self.state
        message = StoredMessage(
            id=state.ids.next(),
            channel_id=channel_id,
            guild_id=state.guild_of(channel_id),
            author_id=author_id,
            content=new.content,
            created_at=state.clock(),
            type=new.type if new.type is not None else self._message_type(new),
            embeds=list(new.embeds),
            reference=new.reference,
            flags=new.flags,
            nonce=new.nonce,
            tts=new.tts,
            components=list(new.components),
            webhook_id=new.webhook_id,
            interaction_id=new.interaction_id,
        )
        message.attachments = [self.attach(message, f) for f in new.files]
        self._set_mentions(message, new.allowed_mentions)
        state.store_message(message)
        if not message.flags & EPHEMERAL_FLAG:
            await self.dispatch_message("MESSAGE_CREATE", message)
        return message

    @staticmethod
    def _message_type(new: NewMessage) -> int:
        return REPLY_MESSAGE if new.reference is not None else DEFAULT_MESSAGE

    def attach(self, message: StoredMessage, upload: FileUpload) -> AttachmentRecord:
        attachment_id = self.state.ids.next()
        path = f"/attachments/{message.channel_id}/{attachment_id}/{quote(upload.filename)}"
        record = AttachmentRecord(
            attachment_id,
            upload.filename,
            upload.data,
            upload.content_type,
            self._base_url() + path,
        )
        self.attachments[attachment_id] = record
        while len(self.attachments) > MAX_SERVED_ATTACHMENTS:
            self.attachments.popitem(last=False)
        self.state.uploads.append(
            UploadRecord(
                message.id,
                message.channel_id,
                upload.filename,
                upload.data,
                upload.content_type,
                self.state.clock(),
            )
        )
        return record

    def _set_mentions(self, message: StoredMessage, allowed: Json | None) -> None:
        """Mentions as Discord resolves them, filtered by ``allowed_mentions``."""
        parse = allowed.get("parse", []) if allowed is not None else ["users", "roles", "everyone"]
        users = [
            int(u) for u in _USER_MENTION.findall(message.content) if int(u) in self.state.users
        ]
        if allowed is not None and "users" not in parse:
            explicit = {int(u) for u in allowed.get("users", [])}
            users = [u for u in users if u in explicit]
        if message.reference_id is not None and (allowed is None or allowed.get("replied_user")):
            replied = self.state.messages.get(message.reference_id)
            users += [replied.author_id] if replied is not None else []
        message.mention_ids = list(dict.fromkeys(users))
        roles = [
            int(r) for r in _ROLE_MENTION.findall(message.content) if int(r) in self.state.roles
        ]
        message.mention_role_ids = roles if "roles" in parse else []
        message.mention_everyone = "everyone" in parse and "@everyone" in message.content

    async def edit_message(
        self,
        message: StoredMessage,
        content: str | None,
        embeds: list[Json] | None,
        components: list[Json] | None = None,
    ) -> None:
        """Record an edit and dispatch MESSAGE_UPDATE (``None`` keeps a part as it is)."""
        self.state.edit_message(message, content, embeds, components)
        if not message.flags & EPHEMERAL_FLAG:
            await self.dispatch_message("MESSAGE_UPDATE", message)

    async def delete_message(self, message: StoredMessage) -> None:
        message.deleted = True
        if message.flags & EPHEMERAL_FLAG:
            return
        data: Json = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
        await self.gateway.dispatch(Dispatch("MESSAGE_DELETE", data, self._message_intent(message)))

    async def dispatch_message(self, event: str, message: StoredMessage) -> None:
        data = payloads.message(self.state, message, viewer_id=self.bot.id)
        redacted = None if self._sees_content(message) else payloads.without_content(data)
        await self.gateway.dispatch(Dispatch(event, data, self._message_intent(message), redacted))

    def _sees_content(self, message: StoredMessage) -> bool:
        """Content a bot gets without the message content intent: DMs, its own, mentions of it."""
        return (
            message.guild_id is None
            or message.author_id == self.bot.id
            or self.bot.id in message.mention_ids
        )

    @staticmethod
    def _message_intent(message: StoredMessage) -> Intent:
        return Intent.DIRECT_MESSAGES if message.guild_id is None else Intent.GUILD_MESSAGES

    # ----------------------------------------------------------- threads
    async def start_thread(
        self,
        parent_id: int,
        owner_id: int,
        body: Json,
        *,
        starter: StoredMessage | None = None,
    ) -> StoredThread:
        """Create a thread (from ``starter`` when given) and dispatch THREAD_CREATE."""
        state = self.state
        thread = StoredThread(
            id=starter.id if starter is not None else state.ids.next(),
            guild_id=state.guild_of(parent_id) or 0,
            parent_id=parent_id,
            owner_id=owner_id,
            name=body["name"],
            type=PUBLIC_THREAD if starter is not None else int(body.get("type") or PUBLIC_THREAD),
            auto_archive_duration=int(
                body.get("auto_archive_duration") or DEFAULT_AUTO_ARCHIVE_MINUTES
            ),
            created_at=state.clock(),
            starter_message_id=starter.id if starter is not None else None,
            rate_limit_per_user=int(body.get("rate_limit_per_user") or 0),
            member_ids={owner_id},
        )
        state.threads[thread.id] = thread
        state.channel_messages[thread.id] = []
        if starter is not None:
            starter.thread_id = thread.id
        created = payloads.thread(state, thread, newly_created=True)
        await self.gateway.dispatch(Dispatch("THREAD_CREATE", created, Intent.GUILDS))
        if starter is None and thread.type == PUBLIC_THREAD:
            await self._announce_thread(thread)
        return thread

    async def _announce_thread(self, thread: StoredThread) -> None:
        """The "started a thread" system message Discord posts in the parent channel."""
        reference = {"channel_id": str(thread.id), "guild_id": str(thread.guild_id)}
        new = NewMessage(content=thread.name, reference=reference, type=THREAD_CREATED_MESSAGE)
        await self.create_message(thread.parent_id, thread.owner_id, new)

    async def update_thread(self, thread: StoredThread, changes: Json) -> None:
        """Apply a channel PATCH to a thread and dispatch THREAD_UPDATE."""
        for key in ("name", "locked", "auto_archive_duration", "rate_limit_per_user"):
            if key in changes:
                setattr(thread, key, changes[key])
        if "archived" in changes and bool(changes["archived"]) != thread.archived:
            thread.archived = bool(changes["archived"])
            thread.archive_timestamp = self.state.clock()
        updated = payloads.thread(self.state, thread)
        await self.gateway.dispatch(Dispatch("THREAD_UPDATE", updated, Intent.GUILDS))

    # ----------------------------------------------------------- reactions
    async def react(self, message: StoredMessage, emoji: str, user_id: int, *, added: bool) -> None:
        """Add or remove a reaction and dispatch MESSAGE_REACTION_ADD / _REMOVE."""
        if not self.state.react(message, emoji, user_id, added=added):
            return
        data: Json = {
            "user_id": str(user_id),
            "channel_id": str(message.channel_id),
            "message_id": str(message.id),
            "emoji": payloads.partial_emoji(self.state, emoji),
            "burst": False,
            "type": 0,
        }
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
            if added:
                data["member"] = payloads.member(self.state, message.guild_id, user_id)
        if added:
            data["message_author_id"] = str(message.author_id)
        event = "MESSAGE_REACTION_ADD" if added else "MESSAGE_REACTION_REMOVE"
        guild = message.guild_id is not None
        intent = Intent.GUILD_MESSAGE_REACTIONS if guild else Intent.DIRECT_MESSAGE_REACTIONS
        await self.gateway.dispatch(Dispatch(event, data, intent))

    def emoji_key(self, raw: str) -> str | None:
        """The reaction key of an emoji from a URL (``👍`` or ``name:id``); ``None`` if unknown."""
        _, _, emoji_id = raw.partition(":")
        if emoji_id:
            known = emoji_id.isdigit() and int(emoji_id) in self.state.emojis
            return f"{self.state.emojis[int(emoji_id)].name}:{emoji_id}" if known else None
        return raw if raw and not raw.isascii() else None


def files_from(uploads: Iterable[FileUpload | tuple[str, bytes]] | None) -> tuple[FileUpload, ...]:
    """Normalise ``(filename, bytes)`` pairs to :class:`FileUpload`."""
    return tuple(u if isinstance(u, FileUpload) else FileUpload(u[0], u[1]) for u in uploads or ())
