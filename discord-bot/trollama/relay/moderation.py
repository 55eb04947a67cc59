"""Moderation: /kick /ban /mute /unmute, and /audit to read what was done.

Who may act: the invoker needs Discord's matching permission (Kick Members, Ban
Members, Timeout Members); nobody acts on themselves, the bot or the server
owner, nor on a member whose highest role is not below the invoker's (the
owner excepted) and the bot's. Discord's own refusal (HTTP 403) becomes a
plain message. Every attempt, done, refused or failed, goes to the brain's
audit log through :class:`AuditOutbox`, which keeps entries while the brain
is away (bounded) and sends them when it is back; the action never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands
from discord.utils import escape_markdown, format_dt, utcnow

from trollama.common.tasks import cancel_and_wait
from trollama.relay.brain_api import AuditEntry, BrainApi, BrainApiError, BrainUnavailable

if TYPE_CHECKING:
    from trollama.relay.bot import RelayBot

log = logging.getLogger(__name__)

#: Discord's limit on an audit-log reason, in characters.
MAX_REASON_CHARS = 512
#: Discord's longest timeout: 28 days, in minutes.
MAX_TIMEOUT_MINUTES = 28 * 24 * 60
#: Days of a banned member's messages Discord may delete.
MAX_DELETE_MESSAGE_DAYS = 7
SECONDS_PER_DAY = 86_400
#: Entries /audit shows at most, and by default.
MAX_AUDIT_SHOWN = 25
DEFAULT_AUDIT_SHOWN = 10
#: Discord's limit on a message's content, in characters.
MAX_MESSAGE_CHARS = 2000
#: Longest name and detail the brain keeps, in characters.
MAX_NAME_CHARS = 100
MAX_DETAIL_CHARS = 300
#: Audit entries kept while the brain is unreachable (the oldest are dropped beyond).
MAX_BUFFERED_AUDIT_ENTRIES = 500
#: Seconds between two tries to send kept audit entries.
AUDIT_RETRY_SECONDS = 5.0
#: Seconds a stopping relay spends sending the entries it still holds.
STOP_FLUSH_SECONDS = 2.0

Action = Literal["kick", "ban", "mute", "unmute"]
Outcome = Literal["done", "refused", "failed"]
OUTCOME_ICONS: dict[str, str] = {"done": "✅", "refused": "⛔", "failed": "⚠️"}
NO_MENTIONS = discord.AllowedMentions.none()


@dataclass(frozen=True)
class ActionRule:
    """What an action needs, and how to talk about it."""

    action: Action
    #: The attribute of :class:`discord.Permissions` it needs.
    permission: str
    #: The permission as Discord's settings name it.
    permission_name: str
    verb: str
    done: str


RULES: dict[Action, ActionRule] = {
    "kick": ActionRule("kick", "kick_members", "Kick Members", "kick", "kicked"),
    "ban": ActionRule("ban", "ban_members", "Ban Members", "ban", "banned"),
    "mute": ActionRule("mute", "moderate_members", "Timeout Members", "mute", "muted"),
    "unmute": ActionRule("unmute", "moderate_members", "Timeout Members", "unmute", "unmuted"),
}


def shown(member: discord.abc.User) -> str:
    """A member's name, safe inside a message."""
    return escape_markdown(member.display_name)


def refusal(
    rule: ActionRule, moderator: discord.Member, target: discord.Member, me: discord.Member
) -> str | None:
    """Why the bot refuses this action, or None when Discord's rules allow it."""
    guild = moderator.guild
    if not getattr(moderator.guild_permissions, rule.permission):
        return f"You need the **{rule.permission_name}** permission to {rule.verb} members."
    if target.id == moderator.id:
        return f"You can't {rule.verb} yourself."
    if target.id == me.id:
        return f"I won't {rule.verb} myself."
    if target.id == guild.owner_id:
        return f"The server owner can't be {rule.done}."
    if moderator.id != guild.owner_id and target.top_role >= moderator.top_role:
        return f"**{shown(target)}**'s highest role is not below yours."
    if target.top_role >= me.top_role:
        return (
            f"**{shown(target)}**'s highest role is not below mine: "
            "move my role up in Server Settings → Roles."
        )
    if not getattr(me.guild_permissions, rule.permission):
        return f"I need the **{rule.permission_name}** permission: please ask a server admin."
    return None


def discord_reason(moderator: discord.Member, reason: str) -> str:
    """The reason Discord's audit log shows (the bot is the actor there, so name the moderator)."""
    return f"{moderator.name}: {reason}"[:MAX_REASON_CHARS]


@dataclass(frozen=True)
class Attempt:
    """One moderation request: who, on whom, why."""

    rule: ActionRule
    moderator: discord.Member
    target: discord.Member
    reason: str
    detail: str = ""

    def entry(self, outcome: Outcome, detail: str = "") -> AuditEntry:
        """The audit entry of this attempt with ``outcome``."""
        return AuditEntry(
            entry_id=uuid.uuid4().hex,
            guild_id=str(self.moderator.guild.id),
            action=self.rule.action,
            outcome=outcome,
            moderator_id=str(self.moderator.id),
            moderator_name=str(self.moderator)[:MAX_NAME_CHARS],
            target_id=str(self.target.id),
            target_name=str(self.target)[:MAX_NAME_CHARS],
            reason=self.reason[:MAX_REASON_CHARS],
            detail="; ".join(d for d in (self.detail, detail) if d)[:MAX_DETAIL_CHARS],
            at=utcnow(),
        )


class AuditOutbox:
    """Sends audit entries to the brain in order, in the background.

    While the brain is unreachable the entries wait here (at most
    ``max_entries``; the oldest are dropped with a warning beyond) and are
    retried every ``retry_seconds``."""

    def __init__(
        self,
        api: BrainApi,
        *,
        retry_seconds: float = AUDIT_RETRY_SECONDS,
        max_entries: int = MAX_BUFFERED_AUDIT_ENTRIES,
    ) -> None:
        self.api = api
        self.retry_seconds = retry_seconds
        self.max_entries = max_entries
        self._entries: deque[AuditEntry] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Entries not written to the brain yet."""
        return len(self._entries)

    def add(self, entry: AuditEntry) -> None:
        """Queue an entry for the brain (never blocks)."""
        if len(self._entries) >= self.max_entries:
            dropped = self._entries.popleft()
            log.warning(
                "audit buffer full (%d entries, the assistant is unreachable): "
                "dropped the %s entry of %s",
                self.max_entries,
                dropped.action,
                dropped.at.isoformat(),
            )
        self._entries.append(entry)
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-outbox")

    async def stop(self) -> None:
        """Stop sending; entries still held get one last, short chance."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self._entries:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flush(), STOP_FLUSH_SECONDS)
        if self._entries:
            log.warning(
                "%d audit entries were never written: the assistant is unreachable",
                len(self._entries),
            )

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not await self.flush():
                await asyncio.sleep(self.retry_seconds)
                self._wake.set()

    async def flush(self) -> bool:
        """Send the held entries in order; False when the brain is unreachable."""
        while self._entries:
            entry = self._entries[0]
            try:
                await self.api.record_audit(entry)
            except BrainUnavailable:
                return False
            except BrainApiError:
                log.warning("the assistant refused the %s audit entry; dropped", entry.action)
            self._entries.popleft()
        return True


def audit_text(entries: Sequence[AuditEntry], *, pending: int) -> str:
    """Entries as lines, newest first, within one message."""
    footer = f"\n_{pending} newer entries wait for the assistant._" if pending else ""
    if not entries:
        return "No moderation actions recorded yet." + footer
    lines: list[str] = []
    budget = MAX_MESSAGE_CHARS - len(footer) - 40
    for index, entry in enumerate(entries):
        line = audit_line(entry)
        if sum(len(x) + 1 for x in lines) + len(line) > budget:
            lines.append(f"… and {len(entries) - index} more")
            break
        lines.append(line)
    return "\n".join(lines) + footer


def audit_line(entry: AuditEntry) -> str:
    icon = OUTCOME_ICONS.get(entry.outcome, "•")
    target = escape_markdown(entry.target_name or entry.target_id)
    moderator = escape_markdown(entry.moderator_name or entry.moderator_id)
    reason = f" — {escape_markdown(entry.reason)}" if entry.reason else ""
    detail = f" ({escape_markdown(entry.detail)})" if entry.detail else ""
    when = format_dt(entry.at, "f")
    return f"{when} {icon} **{entry.action}** {target} by {moderator}{reason}{detail}"


class Moderation(commands.Cog):
    """Kick, ban, mute and unmute members; every attempt is logged in the brain."""

    def __init__(self, bot: RelayBot) -> None:
        self.bot = bot
        self.outbox = AuditOutbox(bot.api)

    async def cog_load(self) -> None:
        if self.bot.serve:
            self.outbox.start()

    async def cog_unload(self) -> None:
        await self.outbox.stop()

    # ------------------------------------------------------------ commands
    @app_commands.command(name="kick", description="Remove a member from the server")
    @app_commands.guild_only()
    @app_commands.default_permissions(kick_members=True)
    @app_commands.describe(member="who to kick", reason="why (also shown in Discord's audit log)")
    async def kick(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        reason: app_commands.Range[str, 1, MAX_REASON_CHARS],
    ) -> None:
        async def act(attempt: Attempt) -> None:
            await member.kick(reason=discord_reason(attempt.moderator, reason))

        await self._moderate(interaction, "kick", member, reason, act)

    @app_commands.command(name="ban", description="Ban a member from the server")
    @app_commands.guild_only()
    @app_commands.default_permissions(ban_members=True)
    @app_commands.describe(
        member="who to ban",
        reason="why (also shown in Discord's audit log)",
        delete_message_days="delete their messages of the last days (0 to 7)",
    )
    async def ban(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        reason: app_commands.Range[str, 1, MAX_REASON_CHARS],
        delete_message_days: app_commands.Range[int, 0, MAX_DELETE_MESSAGE_DAYS] = 0,
    ) -> None:
        async def act(attempt: Attempt) -> None:
            await member.ban(
                reason=discord_reason(attempt.moderator, reason),
                delete_message_seconds=delete_message_days * SECONDS_PER_DAY,
            )

        detail = f"deleted {delete_message_days} days of messages" if delete_message_days else ""
        await self._moderate(interaction, "ban", member, reason, act, detail=detail)

    @app_commands.command(name="mute", description="Time a member out (they can read, not talk)")
    @app_commands.guild_only()
    @app_commands.default_permissions(moderate_members=True)
    @app_commands.describe(
        member="who to mute",
        minutes=f"for how long (1 to {MAX_TIMEOUT_MINUTES} minutes: 28 days)",
        reason="why (also shown in Discord's audit log)",
    )
    async def mute(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        minutes: app_commands.Range[int, 1, MAX_TIMEOUT_MINUTES],
        reason: app_commands.Range[str, 1, MAX_REASON_CHARS],
    ) -> None:
        async def act(attempt: Attempt) -> None:
            until = timedelta(minutes=minutes)
            await member.timeout(until, reason=discord_reason(attempt.moderator, reason))

        extra = "Administrators can't be muted." if member.guild_permissions.administrator else None
        await self._moderate(
            interaction, "mute", member, reason, act, detail=f"{minutes} min", extra=extra
        )

    @app_commands.command(name="unmute", description="End a member's timeout")
    @app_commands.guild_only()
    @app_commands.default_permissions(moderate_members=True)
    @app_commands.describe(member="who to unmute")
    async def unmute(self, interaction: discord.Interaction, member: discord.Member) -> None:
        async def act(attempt: Attempt) -> None:
            await member.timeout(None, reason=discord_reason(attempt.moderator, "unmuted"))

        extra = None if member.is_timed_out() else f"**{shown(member)}** is not muted."
        await self._moderate(interaction, "unmute", member, "", act, extra=extra)

    @app_commands.command(name="audit", description="Recent moderation actions in this server")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.describe(limit=f"how many (1 to {MAX_AUDIT_SHOWN})")
    async def audit(
        self,
        interaction: discord.Interaction,
        limit: app_commands.Range[int, 1, MAX_AUDIT_SHOWN] = DEFAULT_AUDIT_SHOWN,
    ) -> None:
        user, guild = interaction.user, interaction.guild
        permissions = user.guild_permissions if isinstance(user, discord.Member) else None
        if guild is None or not (
            permissions and (permissions.manage_guild or permissions.administrator)
        ):
            await interaction.response.send_message(
                "⛔ You need the **Manage Server** permission to read the audit log.",
                ephemeral=True,
            )
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            entries = await self.bot.api.audit_entries(str(guild.id), limit)
            text = audit_text(entries, pending=self.outbox.pending)
        except BrainApiError as exc:
            text = f"⚠️ {exc.message}"
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    # ------------------------------------------------------------ the common path
    async def _moderate(
        self,
        interaction: discord.Interaction,
        action: Action,
        target: discord.Member,
        reason: str,
        act: Callable[[Attempt], Awaitable[None]],
        *,
        detail: str = "",
        extra: str | None = None,
    ) -> None:
        """Check the rules, act, answer the moderator privately, log the attempt."""
        moderator, guild = interaction.user, interaction.guild
        if guild is None or not isinstance(moderator, discord.Member):
            await interaction.response.send_message(
                "Moderation works only in a server.", ephemeral=True
            )
            return
        attempt = Attempt(RULES[action], moderator, target, reason.strip(), detail)
        problem = self._problem(attempt, guild, extra)
        if problem is not None:
            self.outbox.add(attempt.entry("refused", problem))
            await interaction.response.send_message(
                f"⛔ {problem}", ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        outcome, text, why = await self._apply(attempt, act)
        self.outbox.add(attempt.entry(outcome, why))
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @staticmethod
    def _problem(attempt: Attempt, guild: discord.Guild, extra: str | None) -> str | None:
        if attempt.rule.action != "unmute" and not attempt.reason:
            return "Please give a reason."
        return refusal(attempt.rule, attempt.moderator, attempt.target, guild.me) or extra

    @staticmethod
    async def _apply(
        attempt: Attempt, act: Callable[[Attempt], Awaitable[None]]
    ) -> tuple[Outcome, str, str]:
        """Do it; the outcome, the moderator's message and the audit detail."""
        rule, name = attempt.rule, shown(attempt.target)
        try:
            await act(attempt)
        except discord.Forbidden:
            return (
                "failed",
                f"⛔ Discord refused to let me {rule.verb} **{name}**: my role must be above "
                f"theirs and have the **{rule.permission_name}** permission.",
                "Discord: Missing Permissions",
            )
        except discord.HTTPException as exc:
            log.warning("Discord failed a %s: HTTP %s", rule.action, exc.status)
            return (
                "failed",
                f"⚠️ Discord could not {rule.verb} **{name}** right now "
                f"(HTTP {exc.status}). Please try again.",
                f"Discord: HTTP {exc.status}",
            )
        because = f" Reason: {escape_markdown(attempt.reason)}" if attempt.reason else ""
        return "done", f"✅ **{name}** was {rule.done}.{because}", ""
