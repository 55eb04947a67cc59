"""The fake Discord's world: guilds, users, roles, channels, threads, messages.

Plain data and mutations, no I/O. Only the fake's event loop changes it; tests
read it through :class:`~trollama.testkit.fake_discord.FakeDiscord`, which
returns immutable snapshots (:mod:`.records`).
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from trollama.testkit.fake_discord.records import (
    AttachmentRecord,
    AuditLogRecord,
    BanRecord,
    ChannelRecord,
    CommandSyncRecord,
    EditRecord,
    EmojiRecord,
    GuildRecord,
    InteractionRecord,
    InteractionResponseRecord,
    MemberRecord,
    MessageRecord,
    PresenceRecord,
    ReactionEvent,
    RoleRecord,
    ThreadRecord,
    TypingRecord,
    UploadRecord,
    UserRecord,
)

#: Discord's epoch (2015-01-01T00:00:00Z) in Unix milliseconds.
DISCORD_EPOCH_MS = 1_420_070_400_000
#: Messages the fake keeps (oldest dropped first).
MAX_STORED_MESSAGES = 20_000
#: Interactions the fake keeps (oldest dropped first).
MAX_STORED_INTERACTIONS = 1_000
#: Entries kept in each event log (reactions, uploads, typing, presence, syncs).
MAX_LOG_ENTRIES = 10_000

# Permission bits (https://discord.com/developers/docs/topics/permissions).
KICK_MEMBERS = 1 << 1
BAN_MEMBERS = 1 << 2
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
MANAGE_THREADS = 1 << 34
CREATE_PUBLIC_THREADS = 1 << 35
MANAGE_NICKNAMES = 1 << 27
MANAGE_ROLES = 1 << 28
SEND_MESSAGES_IN_THREADS = 1 << 38
MODERATE_MEMBERS = 1 << 40
ALL_PERMISSIONS = (1 << 51) - 1
#: What ``@everyone`` may do in the default guild.
EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS
    | CREATE_PUBLIC_THREADS
    | SEND_MESSAGES_IN_THREADS
)
#: What the bot's managed role grants (the relay's invite permissions).
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_THREADS | MANAGE_MESSAGES

#: Message flag: only the invoking user sees the message.
EPHEMERAL_FLAG = 1 << 6
#: Message flag: the "Bot is thinking..." placeholder of a deferred interaction.
LOADING_FLAG = 1 << 7

TEXT_CHANNEL = 0
DM_CHANNEL = 1
PUBLIC_THREAD = 11
PRIVATE_THREAD = 12
#: Minutes of inactivity before a thread archives itself, when not given.
DEFAULT_AUTO_ARCHIVE_MINUTES = 1440


class Snowflakes:
    """Makes increasing Discord ids whose timestamp is the creation time."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._last = 0

    def next(self) -> int:
        stamp = int(self._clock() * 1000) - DISCORD_EPOCH_MS
        self._last = max(stamp << 22, self._last + 1)
        return self._last


def snowflake_time(snowflake: int) -> float:
    """The Unix time encoded in a Discord id."""
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000.0


@dataclass
class Member:
    """A user's membership of a guild."""

    guild_id: int
    user_id: int
    role_ids: list[int]
    joined_at: float
    nick: str | None = None
    #: Unix time until which the member is timed out.
    communication_disabled_until: float | None = None

    def snapshot(self) -> MemberRecord:
        return MemberRecord(
            guild_id=self.guild_id,
            user_id=self.user_id,
            role_ids=tuple(self.role_ids),
            nick=self.nick,
            joined_at=self.joined_at,
            communication_disabled_until=self.communication_disabled_until,
        )


@dataclass
class StoredThread:
    """A thread and its mutable state."""

    id: int
    guild_id: int
    parent_id: int
    owner_id: int
    name: str
    type: int
    auto_archive_duration: int
    created_at: float
    starter_message_id: int | None
    archived: bool = False
    locked: bool = False
    archive_timestamp: float = 0.0
    message_count: int = 0
    rate_limit_per_user: int = 0
    member_ids: set[int] = field(default_factory=set)

    def snapshot(self) -> ThreadRecord:
        return ThreadRecord(
            id=self.id,
            guild_id=self.guild_id,
            parent_id=self.parent_id,
            owner_id=self.owner_id,
            name=self.name,
            type=self.type,
            archived=self.archived,
            locked=self.locked,
            auto_archive_duration=self.auto_archive_duration,
            message_count=self.message_count,
            created_at=self.created_at,
            starter_message_id=self.starter_message_id,
        )


@dataclass
class StoredMessage:
    """A message and its mutable state (content, edits, reactions)."""

    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    content: str
    created_at: float
    type: int = 0
    embeds: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[AttachmentRecord] = field(default_factory=list)
    reference: dict[str, Any] | None = None
    mention_ids: list[int] = field(default_factory=list)
    mention_role_ids: list[int] = field(default_factory=list)
    mention_everyone: bool = False
    flags: int = 0
    nonce: str | int | None = None
    tts: bool = False
    components: list[dict[str, Any]] = field(default_factory=list)
    webhook_id: int | None = None
    interaction_id: int | None = None
    edited_at: float | None = None
    deleted: bool = False
    edits: list[EditRecord] = field(default_factory=list)
    #: Emoji key -> ids of the users who reacted, in order.
    reactions: dict[str, list[int]] = field(default_factory=dict)
    #: The thread started from this message.
    thread_id: int | None = None

    @property
    def reference_id(self) -> int | None:
        if self.reference is None or "message_id" not in self.reference:
            return None
        return int(self.reference["message_id"])

    def snapshot(self) -> MessageRecord:
        return MessageRecord(
            id=self.id,
            channel_id=self.channel_id,
            guild_id=self.guild_id,
            author_id=self.author_id,
            content=self.content,
            created_at=self.created_at,
            edited_at=self.edited_at,
            type=self.type,
            embeds=tuple(self.embeds),
            attachments=tuple(self.attachments),
            reference_id=self.reference_id,
            mention_ids=tuple(self.mention_ids),
            deleted=self.deleted,
            ephemeral=bool(self.flags & EPHEMERAL_FLAG),
            interaction_id=self.interaction_id,
            edits=tuple(self.edits),
            nonce=self.nonce,
            components=tuple(self.components),
        )


@dataclass
class StoredInteraction:
    """An injected interaction and how the client answered it."""

    record: InteractionRecord
    callback_type: int | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    responses: list[InteractionResponseRecord] = field(default_factory=list)


class DiscordState:
    """Everything the fake knows; see the module docstring."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.ids = Snowflakes(clock)
        #: Who owns the application (``GET /oauth2/applications/@me``).
        self.application_owner_id: int | None = None
        self.users: dict[int, UserRecord] = {}
        self.guilds: dict[int, GuildRecord] = {}
        self.roles: dict[int, RoleRecord] = {}
        self.emojis: dict[int, EmojiRecord] = {}
        self.members: dict[tuple[int, int], Member] = {}
        self.channels: dict[int, ChannelRecord] = {}
        self.threads: dict[int, StoredThread] = {}
        self.messages: OrderedDict[int, StoredMessage] = OrderedDict()
        self.channel_messages: dict[int, list[int]] = {}
        self.dm_channels: dict[int, int] = {}
        self.interactions: OrderedDict[int, StoredInteraction] = OrderedDict()
        self.interaction_tokens: dict[str, int] = {}
        #: Synced application commands by scope (``None`` = global).
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        self.command_syncs: deque[CommandSyncRecord] = deque(maxlen=MAX_LOG_ENTRIES)
        self.reaction_events: deque[ReactionEvent] = deque(maxlen=MAX_LOG_ENTRIES)
        self.uploads: deque[UploadRecord] = deque(maxlen=MAX_LOG_ENTRIES)
        self.typing: deque[TypingRecord] = deque(maxlen=MAX_LOG_ENTRIES)
        self.presences: deque[PresenceRecord] = deque(maxlen=MAX_LOG_ENTRIES)
        self.bans: dict[tuple[int, int], BanRecord] = {}
        self.audit_log: deque[AuditLogRecord] = deque(maxlen=MAX_LOG_ENTRIES)
        self._positions = itertools.count()

    # ----------------------------------------------------------- building
    def add_user(
        self, username: str, *, bot: bool = False, global_name: str | None = None
    ) -> UserRecord:
        user = UserRecord(self.ids.next(), username, global_name, bot)
        self.users[user.id] = user
        return user

    def add_guild(self, name: str, owner_id: int) -> GuildRecord:
        guild = GuildRecord(self.ids.next(), name, owner_id)
        self.guilds[guild.id] = guild
        # The @everyone role shares the guild's id.
        self.roles[guild.id] = RoleRecord(guild.id, guild.id, "@everyone", EVERYONE_PERMISSIONS, 0)
        return guild

    def add_role(
        self,
        guild_id: int,
        name: str,
        permissions: int,
        *,
        bot_id: int | None = None,
        position: int | None = None,
    ) -> RoleRecord:
        """A new role at the top, or at ``position`` (the roles from there up move up one)."""
        top = sum(1 for r in self.roles.values() if r.guild_id == guild_id)
        at = top if position is None else max(1, min(position, top))
        self.shift_roles(guild_id, at)
        role = RoleRecord(self.ids.next(), guild_id, name, permissions, at, bot_id)
        self.roles[role.id] = role
        return role

    def shift_roles(self, guild_id: int, from_position: int) -> list[RoleRecord]:
        """Move the guild's roles at ``from_position`` and above up by one; returns them."""
        moved = [
            replace(r, position=r.position + 1)
            for r in self.guild_roles(guild_id)
            if r.position >= from_position and r.id != guild_id
        ]
        self.roles.update((r.id, r) for r in moved)
        return moved

    def add_member(self, guild_id: int, user_id: int, role_ids: Iterable[int] = ()) -> Member:
        member = Member(guild_id, user_id, list(role_ids), self.clock())
        self.members[guild_id, user_id] = member
        return member

    def add_channel(self, guild_id: int, name: str, *, topic: str | None = None) -> ChannelRecord:
        channel = ChannelRecord(
            self.ids.next(), TEXT_CHANNEL, name, guild_id, next(self._positions), topic
        )
        self.channels[channel.id] = channel
        self.channel_messages[channel.id] = []
        return channel

    def add_emoji(self, guild_id: int, name: str, *, animated: bool = False) -> EmojiRecord:
        emoji = EmojiRecord(self.ids.next(), guild_id, name, animated)
        self.emojis[emoji.id] = emoji
        return emoji

    def dm_channel(self, user_id: int) -> ChannelRecord:
        """The DM channel between the bot and ``user_id`` (created once)."""
        channel_id = self.dm_channels.get(user_id)
        if channel_id is None:
            channel = ChannelRecord(self.ids.next(), DM_CHANNEL, "", recipient_id=user_id)
            self.channels[channel.id] = channel
            self.channel_messages[channel.id] = []
            self.dm_channels[user_id] = channel.id
            return channel
        return self.channels[channel_id]

    # ----------------------------------------------------------- lookups
    def guild_of(self, channel_id: int) -> int | None:
        """The guild a channel or thread belongs to (``None`` for DMs and unknown ids)."""
        if channel_id in self.threads:
            return self.threads[channel_id].guild_id
        channel = self.channels.get(channel_id)
        return channel.guild_id if channel else None

    def knows_channel(self, channel_id: int) -> bool:
        return channel_id in self.channels or channel_id in self.threads

    def guild_members(self, guild_id: int) -> list[Member]:
        return [m for (g, _), m in self.members.items() if g == guild_id]

    def guild_roles(self, guild_id: int) -> list[RoleRecord]:
        return [r for r in self.roles.values() if r.guild_id == guild_id]

    def permissions(self, guild_id: int, user_id: int) -> int:
        """The guild-level permissions of a member (roles and ownership)."""
        guild = self.guilds[guild_id]
        if guild.owner_id == user_id:
            return ALL_PERMISSIONS
        member = self.members.get((guild_id, user_id))
        role_ids = [guild_id, *(member.role_ids if member else [])]
        bits = 0
        for role_id in role_ids:
            role = self.roles.get(role_id)
            bits |= role.permissions if role else 0
        return ALL_PERMISSIONS if bits & ADMINISTRATOR else bits

    def top_position(self, guild_id: int, user_id: int) -> int:
        """The position of the member's highest role (0: only ``@everyone``)."""
        member = self.members.get((guild_id, user_id))
        roles = [self.roles.get(r) for r in (member.role_ids if member else [])]
        return max([0, *(r.position for r in roles if r is not None)])

    def outranks(self, guild_id: int, actor_id: int, target_id: int) -> bool:
        """Discord's role hierarchy: the owner outranks everyone and nobody outranks
        the owner; otherwise the actor's highest role must be above the target's."""
        owner = self.guilds[guild_id].owner_id
        if target_id == owner or actor_id == target_id:
            return False
        if actor_id == owner:
            return True
        return self.top_position(guild_id, actor_id) > self.top_position(guild_id, target_id)

    def live_message(self, channel_id: int, message_id: int) -> StoredMessage | None:
        """A message of a channel as the channel endpoints see it (not deleted, not ephemeral)."""
        message = self.messages.get(message_id)
        if message is None or message.deleted or message.channel_id != channel_id:
            return None
        # Ephemeral messages exist only for their interaction's webhook.
        return None if message.flags & EPHEMERAL_FLAG else message

    def channel_history(self, channel_id: int) -> list[StoredMessage]:
        """The messages of a channel or thread, oldest first."""
        ids = self.channel_messages.get(channel_id, [])
        return [self.messages[i] for i in ids if i in self.messages]

    # ----------------------------------------------------------- changes
    def store_message(self, message: StoredMessage) -> StoredMessage:
        """Keep a new message (dropping the oldest beyond the bound)."""
        self.messages[message.id] = message
        self.channel_messages.setdefault(message.channel_id, []).append(message.id)
        thread = self.threads.get(message.channel_id)
        if thread is not None:
            thread.message_count += 1
            thread.member_ids.add(message.author_id)
        while len(self.messages) > MAX_STORED_MESSAGES:
            _, oldest = self.messages.popitem(last=False)
            self.channel_messages[oldest.channel_id].remove(oldest.id)
        return message

    def edit_message(
        self,
        message: StoredMessage,
        content: str | None,
        embeds: list[dict[str, Any]] | None,
        components: list[dict[str, Any]] | None = None,
    ) -> None:
        """Apply an edit (``None`` keeps a part as it is) and record it."""
        if content is not None:
            message.content = content
        if embeds is not None:
            message.embeds = embeds
        if components is not None:
            message.components = components
        message.edited_at = self.clock()
        message.edits.append(
            EditRecord(
                message.content,
                message.edited_at,
                tuple(message.embeds),
                tuple(message.components),
            )
        )

    def store_interaction(self, record: InteractionRecord) -> StoredInteraction:
        stored = StoredInteraction(record)
        self.interactions[record.id] = stored
        self.interaction_tokens[record.token] = record.id
        while len(self.interactions) > MAX_STORED_INTERACTIONS:
            _, oldest = self.interactions.popitem(last=False)
            self.interaction_tokens.pop(oldest.record.token, None)
        return stored

    def react(self, message: StoredMessage, emoji: str, user_id: int, *, added: bool) -> bool:
        """Add or remove one reaction; False when nothing changed."""
        users = message.reactions.setdefault(emoji, [])
        if (user_id in users) == added:
            return False
        if added:
            users.append(user_id)
        else:
            users.remove(user_id)
            if not users:
                del message.reactions[emoji]
        self.reaction_events.append(ReactionEvent(message.id, emoji, user_id, added, self.clock()))
        return True

    def sync_commands(
        self, guild_id: int | None, commands: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Replace a scope's commands, keeping the ids of commands that stay."""
        old = {c["name"]: c["id"] for c in self.commands.get(guild_id, [])}
        synced = [{**c, "id": old.get(c["name"], str(self.ids.next()))} for c in commands]
        self.commands[guild_id] = synced
        self.command_syncs.append(CommandSyncRecord(guild_id, tuple(synced), self.clock()))
        return synced
