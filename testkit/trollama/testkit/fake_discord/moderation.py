"""Members, bans and roles: kick, ban, unban, member edits (nick, roles, timeout),
with Discord's permission and role-hierarchy checks and its audit-log reasons.

Every change dispatches the gateway event Discord sends for it
(GUILD_MEMBER_REMOVE, GUILD_BAN_ADD / _REMOVE, GUILD_MEMBER_UPDATE,
GUILD_ROLE_CREATE / _UPDATE). A refused request gets Discord's 403 with code
50013 "Missing Permissions".
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from urllib.parse import unquote

from aiohttp import web

from trollama.testkit.fake_discord import payloads
from trollama.testkit.fake_discord.actions import Actions
from trollama.testkit.fake_discord.gateway import Dispatch, Intent
from trollama.testkit.fake_discord.payloads import Json
from trollama.testkit.fake_discord.records import AuditLogRecord, BanRecord, RoleRecord
from trollama.testkit.fake_discord.rest import (
    ApiError,
    Handler,
    body_of,
    fail,
    json_response,
    no_content,
    route,
    snowflake,
)
from trollama.testkit.fake_discord.state import (
    ADMINISTRATOR,
    BAN_MEMBERS,
    KICK_MEMBERS,
    MANAGE_NICKNAMES,
    MANAGE_ROLES,
    MODERATE_MEMBERS,
    Member,
)

AUDIT_REASON_HEADER = "X-Audit-Log-Reason"
#: Longest timeout Discord allows, in seconds (28 days).
MAX_TIMEOUT_SECONDS = 28 * 24 * 3600
#: Most message history a ban may delete, in seconds (7 days).
MAX_DELETE_MESSAGE_SECONDS = 7 * 24 * 3600
#: Characters in a nickname.
MAX_NICK_CHARACTERS = 32
#: Bans one list request returns at most, and by default.
MAX_BANS_PER_PAGE = 1000
#: Member fields a PATCH may change in the fake.
EDITABLE_MEMBER_FIELDS = ("nick", "roles", "communication_disabled_until")


def audit_reason(request: web.Request) -> str | None:
    """The decoded ``X-Audit-Log-Reason`` header (discord.py percent-encodes it)."""
    raw = request.headers.get(AUDIT_REASON_HEADER)
    return None if raw is None else unquote(raw)


def missing_permissions() -> ApiError:
    return ApiError(403, payloads.error(50013, "Missing Permissions"))


class ModerationApi:
    """REST handlers for members and bans, and the role changes tests make."""

    def __init__(self, actions: Actions) -> None:
        self.actions = actions
        self.state = actions.state
        self.bot = actions.bot

    def routes(self) -> list[tuple[str, str, Handler]]:
        member = "/guilds/{guild_id}/members/{user_id}"
        ban = "/guilds/{guild_id}/bans/{user_id}"
        return [
            (*route("DELETE", member), self.kick),
            (*route("PATCH", member), self.edit_member),
            (*route("PUT", member + "/roles/{role_id}"), self.add_member_role),
            (*route("DELETE", member + "/roles/{role_id}"), self.remove_member_role),
            (*route("GET", "/guilds/{guild_id}/bans"), self.list_bans),
            (*route("GET", ban), self.get_ban),
            (*route("PUT", ban), self.ban),
            (*route("DELETE", ban), self.unban),
        ]

    # ----------------------------------------------------------- checks
    def _guild_id(self, request: web.Request) -> int:
        guild_id = snowflake(request, "guild_id")
        if guild_id not in self.state.guilds:
            fail(404, 10004, "Unknown Guild")
        return guild_id

    def _member(self, request: web.Request) -> Member:
        key = (self._guild_id(request), snowflake(request, "user_id"))
        member = self.state.members.get(key)
        if member is None:
            fail(404, 10007, "Unknown Member")
        return member

    def _require(self, guild_id: int, permission: int) -> None:
        if not self.state.permissions(guild_id, self.bot.id) & permission:
            raise missing_permissions()

    def _require_rank(self, guild_id: int, target_id: int) -> None:
        if not self.state.outranks(guild_id, self.bot.id, target_id):
            raise missing_permissions()

    def _audit(
        self,
        request: web.Request,
        guild_id: int,
        action: str,
        target_id: int,
        changes: tuple[str, ...] = (),
    ) -> None:
        record = AuditLogRecord(
            guild_id,
            action,
            self.bot.id,
            target_id,
            audit_reason(request),
            self.state.clock(),
            changes,
        )
        self.state.audit_log.append(record)

    # ----------------------------------------------------------- kick and bans
    async def kick(self, request: web.Request) -> web.Response:
        member = self._member(request)
        self._require(member.guild_id, KICK_MEMBERS)
        self._require_rank(member.guild_id, member.user_id)
        await self.remove_member(member)
        self._audit(request, member.guild_id, "member_kick", member.user_id)
        return no_content()

    async def remove_member(self, member: Member) -> None:
        """Drop the membership and dispatch GUILD_MEMBER_REMOVE."""
        del self.state.members[member.guild_id, member.user_id]
        data = {"guild_id": str(member.guild_id), "user": self._user(member.user_id)}
        await self.actions.gateway.dispatch(
            Dispatch("GUILD_MEMBER_REMOVE", data, Intent.GUILD_MEMBERS)
        )

    def _user(self, user_id: int) -> Json:
        return payloads.user(self.state.users[user_id])

    async def ban(self, request: web.Request) -> web.Response:
        guild_id, user_id = self._guild_id(request), snowflake(request, "user_id")
        if user_id not in self.state.users:
            fail(404, 10013, "Unknown User")
        self._require(guild_id, BAN_MEMBERS)
        seconds = self._delete_seconds(request)
        member = self.state.members.get((guild_id, user_id))
        if member is not None:
            self._require_rank(guild_id, user_id)
            await self.remove_member(member)
        reason = audit_reason(request)
        self.state.bans[guild_id, user_id] = BanRecord(
            guild_id, user_id, reason, self.state.clock()
        )
        await self._delete_recent_messages(guild_id, user_id, seconds)
        await self._dispatch_ban("GUILD_BAN_ADD", guild_id, user_id)
        self._audit(request, guild_id, "member_ban_add", user_id)
        return no_content()

    @staticmethod
    def _delete_seconds(request: web.Request) -> int:
        raw = request.query.get("delete_message_seconds", "0")
        if not raw.isdigit() or int(raw) > MAX_DELETE_MESSAGE_SECONDS:
            raise ApiError(
                400,
                payloads.field_error(
                    "delete_message_seconds",
                    "NUMBER_TYPE_MAX",
                    f"Value must be less than or equal to {MAX_DELETE_MESSAGE_SECONDS}.",
                ),
            )
        return int(raw)

    async def _delete_recent_messages(self, guild_id: int, user_id: int, seconds: int) -> None:
        since = self.state.clock() - seconds
        recent = [
            m
            for m in list(self.state.messages.values())
            if m.guild_id == guild_id
            and m.author_id == user_id
            and m.created_at >= since
            and not m.deleted
        ]
        for message in recent if seconds else []:
            await self.actions.delete_message(message)

    async def _dispatch_ban(self, event: str, guild_id: int, user_id: int) -> None:
        data = {"guild_id": str(guild_id), "user": self._user(user_id)}
        await self.actions.gateway.dispatch(Dispatch(event, data, Intent.GUILD_MODERATION))

    async def unban(self, request: web.Request) -> web.Response:
        guild_id, user_id = self._guild_id(request), snowflake(request, "user_id")
        self._require(guild_id, BAN_MEMBERS)
        if self.state.bans.pop((guild_id, user_id), None) is None:
            fail(404, 10026, "Unknown Ban")
        await self._dispatch_ban("GUILD_BAN_REMOVE", guild_id, user_id)
        self._audit(request, guild_id, "member_ban_remove", user_id)
        return no_content()

    async def list_bans(self, request: web.Request) -> web.Response:
        guild_id = self._guild_id(request)
        self._require(guild_id, BAN_MEMBERS)
        query = request.query
        limit = min(int(query.get("limit", MAX_BANS_PER_PAGE)), MAX_BANS_PER_PAGE)
        bans = sorted(
            (b for (g, _), b in self.state.bans.items() if g == guild_id),
            key=lambda b: b.user_id,
        )
        if "after" in query:
            bans = [b for b in bans if b.user_id > int(query["after"])][:limit]
        elif "before" in query:
            bans = [b for b in bans if b.user_id < int(query["before"])][-limit:]
        else:
            bans = bans[:limit]
        return json_response([payloads.ban(self.state, b) for b in bans])

    async def get_ban(self, request: web.Request) -> web.Response:
        guild_id, user_id = self._guild_id(request), snowflake(request, "user_id")
        self._require(guild_id, BAN_MEMBERS)
        record = self.state.bans.get((guild_id, user_id))
        if record is None:
            fail(404, 10026, "Unknown Ban")
        return json_response(payloads.ban(self.state, record))

    # ----------------------------------------------------------- member edits
    async def edit_member(self, request: web.Request) -> web.Response:
        member = self._member(request)
        changes = body_of(request)
        unsupported = sorted(set(changes) - set(EDITABLE_MEMBER_FIELDS))
        if unsupported:
            raise ApiError(
                400,
                payloads.field_error(
                    unsupported[0], "UNSUPPORTED", "The fake Discord cannot change this field"
                ),
            )
        if "nick" in changes:
            self._check_nick(member, changes["nick"])
        if "roles" in changes:
            role_ids = self._check_roles(member, changes["roles"])
        if "communication_disabled_until" in changes:
            until = self._check_timeout(member, changes["communication_disabled_until"])
        # Only now that every check passed: nothing changes on a refusal.
        if "nick" in changes:
            member.nick = changes["nick"] or None
        if "roles" in changes:
            member.role_ids = role_ids
        if "communication_disabled_until" in changes:
            member.communication_disabled_until = until
        await self._member_updated(request, member, tuple(sorted(changes)))
        return json_response(payloads.member(self.state, member.guild_id, member.user_id))

    async def add_member_role(self, request: web.Request) -> web.Response:
        return await self._change_role(request, added=True)

    async def remove_member_role(self, request: web.Request) -> web.Response:
        return await self._change_role(request, added=False)

    async def _change_role(self, request: web.Request, *, added: bool) -> web.Response:
        member = self._member(request)
        role_id = snowflake(request, "role_id")
        others = [r for r in member.role_ids if r != role_id]
        member.role_ids = self._check_roles(member, [*others, role_id] if added else others)
        await self._member_updated(request, member, ("roles",))
        return no_content()

    def _check_nick(self, member: Member, nick: object) -> None:
        self._require(member.guild_id, MANAGE_NICKNAMES)
        self._require_rank(member.guild_id, member.user_id)
        if nick is not None and (not isinstance(nick, str) or len(nick) > MAX_NICK_CHARACTERS):
            raise ApiError(
                400, payloads.field_error("nick", "BASE_TYPE_BAD_LENGTH", "Must be 32 or fewer.")
            )

    def _check_roles(self, member: Member, value: object) -> list[int]:
        """The new role ids; each role added or removed must be below the bot's top role."""
        self._require(member.guild_id, MANAGE_ROLES)
        if not isinstance(value, list):
            raise ApiError(400, payloads.field_error("roles", "BASE_TYPE_ARRAY", "Must be a list."))
        wanted = [int(r) for r in value]
        for role_id in set(wanted) ^ set(member.role_ids):
            role = self.state.roles.get(role_id)
            if role is None or role.guild_id != member.guild_id or role_id == member.guild_id:
                raise ApiError(
                    400, payloads.field_error("roles", "UNKNOWN_ROLE", f"Unknown role {role_id}")
                )
            if role.bot_id is not None or role.position >= self._bot_top(member.guild_id):
                raise missing_permissions()
        return list(dict.fromkeys(wanted))

    def _bot_top(self, guild_id: int) -> int:
        if self.state.guilds[guild_id].owner_id == self.bot.id:
            return 1 << 30
        return self.state.top_position(guild_id, self.bot.id)

    def _check_timeout(self, member: Member, value: object) -> float | None:
        """Discord: Moderate Members, rank, never an administrator, at most 28 days ahead."""
        self._require(member.guild_id, MODERATE_MEMBERS)
        self._require_rank(member.guild_id, member.user_id)
        if self.state.permissions(member.guild_id, member.user_id) & ADMINISTRATOR:
            raise missing_permissions()
        if value is None:
            return None
        until = _parse_time(value)
        if until is None or until - self.state.clock() > MAX_TIMEOUT_SECONDS:
            raise ApiError(
                400,
                payloads.field_error(
                    "communication_disabled_until",
                    "BASE_TYPE_BAD_DATETIME",
                    "Timeouts may last at most 28 days.",
                ),
            )
        return until

    async def _member_updated(
        self, request: web.Request, member: Member, changes: tuple[str, ...]
    ) -> None:
        guild_id = member.guild_id
        data = {**payloads.member(self.state, guild_id, member.user_id), "guild_id": str(guild_id)}
        await self.actions.gateway.dispatch(
            Dispatch("GUILD_MEMBER_UPDATE", data, Intent.GUILD_MEMBERS)
        )
        action = "member_role_update" if changes == ("roles",) else "member_update"
        self._audit(request, guild_id, action, member.user_id, changes)

    # ----------------------------------------------------------- roles (test controls)
    async def create_role(
        self, guild_id: int, name: str, permissions: int, position: int | None
    ) -> RoleRecord:
        """A new role (GUILD_ROLE_CREATE); roles it pushes up get GUILD_ROLE_UPDATE."""
        before = {r.id: r.position for r in self.state.guild_roles(guild_id)}
        role = self.state.add_role(guild_id, name, permissions, position=position)
        moved = [
            r
            for r in self.state.guild_roles(guild_id)
            if before.get(r.id, r.position) != r.position
        ]
        for other in moved:
            await self._dispatch_role("GUILD_ROLE_UPDATE", other)
        await self._dispatch_role("GUILD_ROLE_CREATE", role)
        return role

    async def update_role(
        self, role_id: int, *, permissions: int | None, position: int | None
    ) -> RoleRecord:
        """Change a role's permissions or position (GUILD_ROLE_UPDATE)."""
        role = self.state.roles.get(role_id)
        if role is None:
            raise LookupError(f"no role with id {role_id}")
        if position is not None and position != role.position:
            role = await self._move(role, position)
        if permissions is not None:
            role = replace(role, permissions=permissions)
        self.state.roles[role.id] = role
        await self._dispatch_role("GUILD_ROLE_UPDATE", role)
        return role

    async def _move(self, role: RoleRecord, position: int) -> RoleRecord:
        """Take the role out of the order and put it back at ``position``."""
        others = sorted(
            (
                r
                for r in self.state.guild_roles(role.guild_id)
                if r.id not in (role.id, role.guild_id)
            ),
            key=lambda r: r.position,
        )
        at = max(1, min(position, len(others) + 1))
        others.insert(at - 1, role)
        for index, other in enumerate(others, start=1):
            if other.position != index and other.id != role.id:
                self.state.roles[other.id] = replace(other, position=index)
                await self._dispatch_role("GUILD_ROLE_UPDATE", self.state.roles[other.id])
        return replace(role, position=at)

    async def _dispatch_role(self, event: str, role: RoleRecord) -> None:
        data = {"guild_id": str(role.guild_id), "role": payloads.role(role)}
        await self.actions.gateway.dispatch(Dispatch(event, data, Intent.GUILDS))


def _parse_time(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None
