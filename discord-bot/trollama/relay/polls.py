"""Polls: /poll posts a question with one button per option; one vote per user
(clicking another option changes the vote); at the deadline the message shows
the result and loses its buttons.

Poll state lives in the brain. A button's custom id is ``poll:<poll id>:<option>``
and a :class:`discord.ui.DynamicItem` (discord.py's persistent view for ids that
carry their state) answers every such click, also on messages posted before
the relay restarted. When the relay starts it re-arms the deadline timers of
the open polls; one already past its deadline closes at once. A click on a
poll that has closed shows its result in the message.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Self, TypeVar

import discord
from discord import app_commands
from discord.ext import commands
from discord.utils import escape_markdown, format_dt, utcnow

from trollama.relay.brain_api import (
    BrainApiError,
    BrainUnavailable,
    NewPoll,
    Poll,
    PollClosed,
    PollResult,
    VoteOutcome,
)

if TYPE_CHECKING:
    from trollama.relay.bot import RelayBot

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Longest poll, in minutes (7 days); the shortest is 1.
MAX_POLL_MINUTES = 7 * 24 * 60
#: Seconds in one minute of /poll (tests shorten a poll through ``Polls.seconds_per_minute``).
SECONDS_PER_MINUTE = 60.0
#: Options a poll has at least and at most (one button each).
MIN_OPTIONS = 2
MAX_OPTIONS = 10
OPTION_SEPARATOR = "|"
#: Longest question and option, in characters (an option is a button label: Discord's 80).
MAX_QUESTION_CHARS = 300
MAX_OPTION_CHARS = 80
#: Longest ``options`` text of /poll, in characters.
MAX_OPTIONS_INPUT_CHARS = MAX_OPTIONS * (MAX_OPTION_CHARS + 3)
#: Seconds a vote may take at the brain (a click must be answered within Discord's 3 s).
VOTE_TIMEOUT_SECONDS = 2.0
#: Deadline timers the relay runs at once (more open polls close when clicked).
MAX_ARMED_POLLS = 1000
#: Seconds before retrying the brain, doubling up to the maximum.
RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 300.0
#: One emoji per option.
KEYCAPS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣", "🔟")
CUSTOM_ID_PREFIX = "poll"
CUSTOM_ID_TEMPLATE = re.compile(r"poll:(?P<poll_id>[0-9a-f]{1,64}):(?P<option>[0-9])")
NO_MENTIONS = discord.AllowedMentions.none()


def parse_options(raw: str) -> list[str]:
    """The options of ``a | b | c``; ValueError with a message users can read."""
    options = [part.strip() for part in raw.split(OPTION_SEPARATOR) if part.strip()]
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        raise ValueError(
            f"A poll needs {MIN_OPTIONS} to {MAX_OPTIONS} options separated by "
            f"`{OPTION_SEPARATOR}`, like `pizza | pasta | salad`."
        )
    if any(len(option) > MAX_OPTION_CHARS for option in options):
        raise ValueError(f"Each option may have at most {MAX_OPTION_CHARS} characters.")
    if len({option.casefold() for option in options}) != len(options):
        raise ValueError("Each option must be different.")
    return options


def custom_id(poll_id: str, option: int) -> str:
    return f"{CUSTOM_ID_PREFIX}:{poll_id}:{option}"


def open_text(poll: Poll) -> str:
    """The poll message while votes are open."""
    lines = [f"📊 **{escape_markdown(poll.question)}**", ""]
    lines += [f"{KEYCAPS[i]} {escape_markdown(o)}" for i, o in enumerate(poll.options)]
    lines += [
        "",
        f"Closes {format_dt(poll.closes_at, 'R')} · one vote each; click again to change it.",
    ]
    return "\n".join(lines)


def result_text(result: PollResult) -> str:
    """The poll message once closed: counts, shares and the winner or the tie."""
    lines = [f"📊 **{escape_markdown(result.question)}** — closed", ""]
    for index, (option, count) in enumerate(zip(result.options, result.counts, strict=True)):
        share = round(100 * count / result.total) if result.total else 0
        trophy = " 🏆" if index in result.winners else ""
        votes = "vote" if count == 1 else "votes"
        lines.append(
            f"{KEYCAPS[index]} {escape_markdown(option)} — **{count}** {votes} ({share}%){trophy}"
        )
    lines += ["", outcome_line(result)]
    return "\n".join(lines)


def outcome_line(result: PollResult) -> str:
    names = [f"**{escape_markdown(result.options[i])}**" for i in result.winners]
    if not names:
        return "No votes were cast."
    top = result.counts[result.winners[0]]
    if len(names) == 1:
        return f"🏆 Winner: {names[0]} with {top} of {result.total} votes."
    each = "vote" if top == 1 else "votes"
    return f"🤝 Tie between {', '.join(names[:-1])} and {names[-1]} ({top} {each} each)."


def vote_text(outcome: VoteOutcome, labels: dict[int, str]) -> str:
    """What the voter reads (only they see it)."""
    chosen = f"**{escape_markdown(labels.get(outcome.option, str(outcome.option + 1)))}**"
    if outcome.previous is None:
        return f"🗳️ You voted for {chosen}."
    if outcome.previous == outcome.option:
        return f"You already voted for {chosen}."
    before = escape_markdown(labels.get(outcome.previous, str(outcome.previous + 1)))
    return f"🔁 You changed your vote from **{before}** to {chosen}."


def option_labels(message: discord.Message | None) -> dict[int, str]:
    """Option index → button label, read from the poll message's buttons."""
    labels: dict[int, str] = {}
    for row in message.components if message is not None else []:
        for item in getattr(row, "children", []):
            match = CUSTOM_ID_TEMPLATE.fullmatch(getattr(item, "custom_id", None) or "")
            if match is not None:
                labels[int(match["option"])] = getattr(item, "label", None) or ""
    return labels


class PollButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=CUSTOM_ID_TEMPLATE
):
    """One option's button; its custom id names the poll and the option."""

    def __init__(self, poll_id: str, option: int, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label,
                emoji=KEYCAPS[option],
                custom_id=custom_id(poll_id, option),
                style=discord.ButtonStyle.secondary,
            )
        )
        self.poll_id = poll_id
        self.option = option

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        return cls(match["poll_id"], int(match["option"]), getattr(item, "label", None))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client = interaction.client
        polls = client.get_cog("Polls") if isinstance(client, commands.Bot) else None
        if not isinstance(polls, Polls):
            await interaction.response.send_message("Polls are switched off.", ephemeral=True)
            return
        await polls.vote(interaction, self.poll_id, self.option)


def poll_view(poll: Poll) -> discord.ui.View:
    """One button per option (rows of five)."""
    view = discord.ui.View(timeout=None)
    for index, option in enumerate(poll.options):
        view.add_item(PollButton(poll.poll_id, index, option))
    return view


class Polls(commands.Cog):
    """/poll, the votes, and the deadline timers."""

    def __init__(self, bot: RelayBot) -> None:
        self.bot = bot
        #: Seconds one minute of /poll lasts (a test hook; production keeps 60).
        self.seconds_per_minute = SECONDS_PER_MINUTE
        self.retry_seconds = RETRY_SECONDS
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._rearm: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(PollButton)
        if self.bot.serve:
            self._rearm = asyncio.create_task(self.rearm_open_polls(), name="poll-rearm")

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(PollButton)
        tasks = [t for t in (self._rearm, *self._timers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._timers.clear()

    @property
    def armed(self) -> set[str]:
        """Ids of the polls whose deadline timer runs."""
        return set(self._timers)

    # ------------------------------------------------------------ /poll
    @app_commands.command(name="poll", description="Ask a question; members vote with buttons")
    @app_commands.guild_only()
    @app_commands.describe(
        question="what to ask",
        options=f"{MIN_OPTIONS} to {MAX_OPTIONS} choices separated by {OPTION_SEPARATOR}",
        minutes=f"how long voting stays open (1 to {MAX_POLL_MINUTES}: 7 days)",
    )
    async def poll(
        self,
        interaction: discord.Interaction,
        question: app_commands.Range[str, 1, MAX_QUESTION_CHARS],
        options: app_commands.Range[str, 3, MAX_OPTIONS_INPUT_CHARS],
        minutes: app_commands.Range[int, 1, MAX_POLL_MINUTES],
    ) -> None:
        try:
            choices = parse_options(options)
        except ValueError as exc:
            await interaction.response.send_message(f"⚠️ {exc}", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        text = await self._post(interaction, question.strip(), choices, minutes)
        await interaction.followup.send(text, ephemeral=True)

    async def _post(
        self, interaction: discord.Interaction, question: str, options: list[str], minutes: int
    ) -> str:
        """Post the message, store the poll, add the buttons; the answer for the author."""
        channel, guild = interaction.channel, interaction.guild
        if guild is None or not isinstance(channel, discord.abc.Messageable) or not question:
            return "⚠️ Polls work in a server's text channels, with a question."
        try:
            message = await channel.send(
                f"📊 **{escape_markdown(question)}** — setting up…", allowed_mentions=NO_MENTIONS
            )
        except discord.HTTPException:
            return "⚠️ I can't post in this channel."
        new = NewPoll(
            guild_id=str(guild.id),
            channel_id=str(message.channel.id),
            message_id=str(message.id),
            author_id=str(interaction.user.id),
            question=question,
            options=options,
            duration_seconds=minutes * self.seconds_per_minute,
        )
        try:
            poll = await self.bot.api.create_poll(new)
        except BrainApiError as exc:
            await _delete_quietly(message)
            return f"⚠️ {exc.message}"
        await message.edit(
            content=open_text(poll), view=poll_view(poll), allowed_mentions=NO_MENTIONS
        )
        self.arm(poll)
        return f"📊 Poll posted; it closes {format_dt(poll.closes_at, 'R')}."

    # ------------------------------------------------------------ votes
    async def vote(self, interaction: discord.Interaction[Any], poll_id: str, option: int) -> None:
        """Count a click as the user's vote and tell them privately."""
        try:
            outcome = await self.bot.api.vote(
                poll_id, str(interaction.user.id), option, timeout=VOTE_TIMEOUT_SECONDS
            )
        except PollClosed:
            await self._show_closed(interaction, poll_id)
            return
        except BrainApiError as exc:
            await interaction.response.send_message(f"⚠️ {exc.message}", ephemeral=True)
            return
        text = vote_text(outcome, option_labels(interaction.message))
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def _show_closed(self, interaction: discord.Interaction[Any], poll_id: str) -> None:
        """A click after the deadline: the message shows the result instead (the click's answer)."""
        try:
            result = await self.bot.api.close_poll(poll_id)
        except BrainApiError:
            await interaction.response.send_message("This poll has closed.", ephemeral=True)
            return
        timer = self._timers.pop(poll_id, None)
        if timer is not None:
            timer.cancel()
        await interaction.response.edit_message(
            content=result_text(result), view=None, allowed_mentions=NO_MENTIONS
        )

    # ------------------------------------------------------------ deadlines
    def arm(self, poll: Poll) -> None:
        """Close ``poll`` at its deadline (at once when that has passed)."""
        if poll.poll_id in self._timers:
            return
        if len(self._timers) >= MAX_ARMED_POLLS:
            log.warning(
                "%d poll timers run already; poll %s closes when clicked",
                MAX_ARMED_POLLS,
                poll.poll_id,
            )
            return
        task = asyncio.create_task(self._close_at_deadline(poll), name=f"poll-{poll.poll_id}")
        self._timers[poll.poll_id] = task
        task.add_done_callback(lambda done: self._forget(poll.poll_id, done))

    def _forget(self, poll_id: str, task: asyncio.Task[None]) -> None:
        if self._timers.get(poll_id) is task:
            del self._timers[poll_id]

    async def rearm_open_polls(self) -> None:
        """Arm the timers of every open poll (retrying until the brain answers)."""
        polls = await self._retrying(self.bot.api.open_polls, "list the open polls")
        for poll in polls or []:
            self.arm(poll)
        log.info("re-armed %d open polls", len(polls or []))

    async def _close_at_deadline(self, poll: Poll) -> None:
        delay = (poll.closes_at - utcnow()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        result = await self._retrying(
            lambda: self.bot.api.close_poll(poll.poll_id), f"close poll {poll.poll_id}"
        )
        if result is not None:
            await self._show_result(poll, result)

    async def _retrying(self, call: Callable[[], Awaitable[T]], what: str) -> T | None:
        """``await call()`` until the brain answers; None when it refuses for good."""
        delay = self.retry_seconds
        while True:
            try:
                return await call()
            except BrainUnavailable:
                log.warning(
                    "cannot %s: the assistant is unreachable; retrying in %.0f s", what, delay
                )
            except BrainApiError as exc:
                log.warning("cannot %s: %s", what, exc.message)
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)

    async def _show_result(self, poll: Poll, result: PollResult) -> None:
        channel = self.bot.get_partial_messageable(
            int(poll.channel_id), guild_id=int(poll.guild_id)
        )
        message = channel.get_partial_message(int(poll.message_id))
        try:
            await message.edit(content=result_text(result), view=None, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.warning("cannot show the result of poll %s: HTTP %s", poll.poll_id, exc.status)


async def _delete_quietly(message: discord.Message) -> None:
    try:
        await message.delete()
    except discord.HTTPException:
        log.warning("cannot delete the message of a poll that was not created")
