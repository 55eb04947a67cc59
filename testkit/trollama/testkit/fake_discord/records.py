"""What a test reads back from the fake Discord: immutable snapshots.

Every time (``at``, ``created_at``, ...) is a Unix time in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class UserRecord:
    """A Discord user (a human or the bot)."""

    id: int
    username: str
    global_name: str | None = None
    bot: bool = False

    @property
    def mention(self) -> str:
        """The mention markup, ``<@id>``."""
        return f"<@{self.id}>"


@dataclass(frozen=True)
class RoleRecord:
    """A guild role; ``permissions`` is Discord's permission bit set."""

    id: int
    guild_id: int
    name: str
    permissions: int
    position: int = 1
    #: Set on the managed role Discord gives a bot when it joins.
    bot_id: int | None = None


@dataclass(frozen=True)
class GuildRecord:
    """A guild (server)."""

    id: int
    name: str
    owner_id: int


@dataclass(frozen=True)
class EmojiRecord:
    """A custom guild emoji."""

    id: int
    guild_id: int
    name: str
    animated: bool = False

    @property
    def key(self) -> str:
        """How reactions name it: ``name:id``."""
        return f"{self.name}:{self.id}"


@dataclass(frozen=True)
class ChannelRecord:
    """A guild text channel (type 0) or a DM channel (type 1)."""

    id: int
    type: int
    name: str
    guild_id: int | None = None
    position: int = 0
    topic: str | None = None
    #: The other user of a DM channel.
    recipient_id: int | None = None


@dataclass(frozen=True)
class ThreadRecord:
    """A thread as it is now."""

    id: int
    guild_id: int
    parent_id: int
    owner_id: int
    name: str
    #: 11 public, 12 private.
    type: int
    archived: bool
    locked: bool
    auto_archive_duration: int
    message_count: int
    created_at: float
    #: The message it was started from (same id as the thread), if any.
    starter_message_id: int | None


@dataclass(frozen=True)
class AttachmentRecord:
    """A file attached to a message, with its bytes."""

    id: int
    filename: str
    data: bytes = field(repr=False)
    content_type: str | None
    url: str

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class EditRecord:
    """One edit of a message: its content afterwards and when it happened."""

    content: str
    at: float
    embeds: tuple[dict[str, Any], ...] = ()
    #: The message's components (action rows of buttons) after the edit.
    components: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class MessageRecord:
    """A message as it is now (``content`` is the final content)."""

    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    content: str
    created_at: float
    edited_at: float | None
    #: Discord's message type (0 default, 19 reply, 18 thread created, 20 slash command).
    type: int
    embeds: tuple[dict[str, Any], ...]
    attachments: tuple[AttachmentRecord, ...]
    #: The message this one replies to.
    reference_id: int | None
    mention_ids: tuple[int, ...]
    deleted: bool
    #: Only the invoking user sees it (an ephemeral interaction response).
    ephemeral: bool
    #: The interaction this message answers, if any.
    interaction_id: int | None
    #: Edits in order, with their times.
    edits: tuple[EditRecord, ...]
    nonce: str | int | None = None
    #: Components (action rows of buttons) as they are now.
    components: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ReactionEvent:
    """A reaction added or removed; ``emoji`` is the character or ``name:id``."""

    message_id: int
    emoji: str
    user_id: int
    added: bool
    at: float


@dataclass(frozen=True)
class UploadRecord:
    """A file the client uploaded with a message."""

    message_id: int
    channel_id: int
    filename: str
    data: bytes = field(repr=False)
    content_type: str | None
    at: float


@dataclass(frozen=True)
class InteractionRecord:
    """An interaction the test injected (type 2 command, 3 button click, 4 autocomplete)."""

    id: int
    token: str
    type: int
    command_name: str
    user_id: int
    channel_id: int
    guild_id: int | None
    #: The ``data`` object sent to the client.
    data: dict[str, Any]
    created_at: float
    #: The message whose component was clicked (type 3 only).
    message_id: int | None = None


InteractionResponseKind = Literal[
    "callback", "followup", "edit_original", "delete_original", "edit_followup", "delete_followup"
]


@dataclass(frozen=True)
class InteractionResponseRecord:
    """One answer the client gave to an interaction."""

    interaction_id: int
    kind: InteractionResponseKind
    #: The callback type (4 message, 5 deferred, 8 autocomplete, ...); ``None`` for webhook calls.
    callback_type: int | None
    #: The JSON body the client sent (``payload_json`` for uploads).
    data: dict[str, Any]
    #: The message created or edited, if any.
    message_id: int | None
    at: float


@dataclass(frozen=True)
class CommandSyncRecord:
    """A bulk overwrite of application commands (``guild_id`` ``None`` = global)."""

    guild_id: int | None
    commands: tuple[dict[str, Any], ...]
    at: float


@dataclass(frozen=True)
class PresenceRecord:
    """A presence update the client sent over the gateway (op 3)."""

    status: str | None
    activities: tuple[dict[str, Any], ...]
    afk: bool
    since: int | None
    at: float


@dataclass(frozen=True)
class TypingRecord:
    """A typing indicator the client triggered."""

    channel_id: int
    at: float


@dataclass(frozen=True)
class GatewayFrame:
    """A frame the client sent over the gateway (tokens redacted)."""

    op: int | None
    data: Any
    session_id: str | None
    at: float


@dataclass(frozen=True)
class RecordedRequest:
    """One REST request; ``path`` is relative to the API base (``/channels/1/messages``)."""

    method: str
    path: str
    #: The matched route template (``/channels/{channel_id}/messages``); ``None`` if unknown.
    route: str | None
    query: dict[str, str]
    #: The parsed JSON body (``payload_json`` for multipart); ``None`` if none.
    body: Any
    #: ``(filename, size in bytes)`` of uploaded files.
    files: tuple[tuple[str, int], ...]
    status: int
    at: float
    #: The ``X-Audit-Log-Reason`` header, decoded; ``None`` if absent.
    audit_reason: str | None = None

    @property
    def unknown(self) -> bool:
        """True when the fake did not understand the request."""
        return self.route is None


@dataclass(frozen=True)
class MemberRecord:
    """A user's membership of a guild as it is now."""

    guild_id: int
    user_id: int
    role_ids: tuple[int, ...]
    nick: str | None
    joined_at: float
    #: Unix time until which the member is timed out (``None``: not timed out).
    communication_disabled_until: float | None = None


@dataclass(frozen=True)
class BanRecord:
    """A ban in a guild, with the audit-log reason the client gave."""

    guild_id: int
    user_id: int
    reason: str | None
    at: float


@dataclass(frozen=True)
class AuditLogRecord:
    """One entry of a guild's audit log, written by a moderation request of the bot.

    ``action`` is ``member_kick``, ``member_ban_add``, ``member_ban_remove``,
    ``member_update`` (nick, timeout) or ``member_role_update``; ``changes``
    names what a member update changed."""

    guild_id: int
    action: str
    user_id: int
    target_id: int
    reason: str | None
    at: float
    changes: tuple[str, ...] = ()
