"""Who may talk to the bot: allow and block lists of users, roles and channels."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import discord

from trollama.relay.settings import RelaySettings


def parse_ids(raw: str) -> frozenset[int]:
    """Comma- or space-separated Discord ids; anything else is ignored."""
    parts = raw.replace(",", " ").split()
    return frozenset(int(p) for p in parts if p.isdigit())


@dataclass(frozen=True)
class AccessRules:
    allowed_users: frozenset[int] = frozenset()
    blocked_users: frozenset[int] = frozenset()
    allowed_roles: frozenset[int] = frozenset()
    blocked_roles: frozenset[int] = frozenset()
    allowed_channels: frozenset[int] = frozenset()
    blocked_channels: frozenset[int] = frozenset()

    @classmethod
    def from_settings(cls, settings: RelaySettings) -> AccessRules:
        return cls(
            allowed_users=parse_ids(settings.allowed_user_ids),
            blocked_users=parse_ids(settings.blocked_user_ids),
            allowed_roles=parse_ids(settings.allowed_role_ids),
            blocked_roles=parse_ids(settings.blocked_role_ids),
            allowed_channels=parse_ids(settings.allowed_channel_ids),
            blocked_channels=parse_ids(settings.blocked_channel_ids),
        )

    def permits(self, user_id: int, role_ids: Iterable[int], channel_ids: Iterable[int]) -> bool:
        """Blocks win over allows; an empty allow list allows everyone.

        ``channel_ids`` holds the channel and, for a thread, its parent."""
        roles, channels = frozenset(role_ids), frozenset(channel_ids)
        if user_id in self.blocked_users or roles & self.blocked_roles:
            return False
        if channels & self.blocked_channels:
            return False
        if self.allowed_users and user_id not in self.allowed_users:
            return False
        if self.allowed_roles and not roles & self.allowed_roles:
            return False
        return not self.allowed_channels or bool(channels & self.allowed_channels)


def is_bot_admin(member: object, settings: RelaySettings) -> bool:
    """A bot admin: a server member with Administrator or Manage Server, or one of
    the ``ADMIN_ROLE_IDS`` roles. Outside a server (a DM) nobody is."""
    if not isinstance(member, discord.Member):
        return False
    permissions = member.guild_permissions
    if permissions.administrator or permissions.manage_guild:
        return True
    return bool({role.id for role in member.roles} & parse_ids(settings.admin_role_ids))
