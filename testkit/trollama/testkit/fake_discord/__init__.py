"""A protocol-level fake Discord: the real, unmodified discord.py connects to it.

REST (``/api/v10``) and the gateway WebSocket run on 127.0.0.1; tests inject
user messages, DMs, slash commands, button clicks, roles, reconnects and 429
storms, and read back what the bot did (messages with their edit history and
components, threads, reactions, interaction responses, uploads, presences,
members, bans, audit-log reasons, every request)::

    async with FakeDiscord() as fake:
        point_discord_at(fake.api_base, fake.gateway_url)
        ...  # start the bot with fake.token
        await fake.user_message(fake.general.id, fake.alice, "hi", mentions_bot=True)
        reply = await fake.wait_for(lambda: fake.threads())
"""

from trollama.testkit.fake_discord.actions import FileUpload
from trollama.testkit.fake_discord.records import (
    AttachmentRecord,
    AuditLogRecord,
    BanRecord,
    ChannelRecord,
    CommandSyncRecord,
    EditRecord,
    EmojiRecord,
    GatewayFrame,
    GuildRecord,
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
from trollama.testkit.fake_discord.server import DEFAULT_TOKEN, FakeDiscord

__all__ = [
    "DEFAULT_TOKEN",
    "AttachmentRecord",
    "AuditLogRecord",
    "BanRecord",
    "ChannelRecord",
    "CommandSyncRecord",
    "EditRecord",
    "EmojiRecord",
    "FakeDiscord",
    "FileUpload",
    "GatewayFrame",
    "GuildRecord",
    "InteractionRecord",
    "InteractionResponseRecord",
    "MemberRecord",
    "MessageRecord",
    "PresenceRecord",
    "ReactionEvent",
    "RecordedRequest",
    "RoleRecord",
    "ThreadRecord",
    "TypingRecord",
    "UploadRecord",
    "UserRecord",
]
