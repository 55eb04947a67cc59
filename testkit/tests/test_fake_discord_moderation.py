"""The fake Discord's members, bans, roles, buttons and clicks, against the real discord.py."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from typing import Any

import discord
import pytest
from discord.ext import commands
from discord.http import Route

from trollama.testkit.discord_fixtures import RunClient
from trollama.testkit.fake_discord import FakeDiscord
from trollama.testkit.fake_discord.state import (
    ADMINISTRATOR,
    BAN_MEMBERS,
    KICK_MEMBERS,
    MANAGE_NICKNAMES,
    MANAGE_ROLES,
    MODERATE_MEMBERS,
)

DEADLINE_SECONDS = 5.0
MODERATION = KICK_MEMBERS | BAN_MEMBERS | MODERATE_MEMBERS | MANAGE_NICKNAMES | MANAGE_ROLES
REASON = "spam: ünïcødé / 100% off #deals"


def make_bot() -> commands.Bot:
    intents = discord.Intents.default()
    intents.message_content = True
    intents.members = True
    return commands.Bot(command_prefix="!", intents=intents)


async def eventually(condition: Callable[[], Any]) -> Any:
    deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
    while not (value := condition()):
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)
    return value


def collect(client: commands.Bot, event: str) -> list[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []

    async def listener(*args: Any) -> None:
        seen.append(args)

    client.add_listener(listener, f"on_{event}")
    return seen


async def started(
    fake: FakeDiscord, run: RunClient, *, grant: int = MODERATION
) -> tuple[commands.Bot, discord.Guild]:
    if grant:
        await fake.edit_role(fake.bot_role.id, permissions=fake.bot_role.permissions | grant)
    bot = make_bot()
    await run(bot)
    guild = bot.get_guild(fake.guild.id)
    assert guild is not None
    return bot, guild


def member_of(guild: discord.Guild, user_id: int) -> discord.Member:
    member = guild.get_member(user_id)
    assert member is not None
    return member


# ------------------------------------------------------------------ kick
async def test_kick_removes_the_member_and_keeps_the_reason(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    fake = fake_discord
    bot, guild = await started(fake, run_discord_client)
    removed = collect(bot, "member_remove")
    await member_of(guild, fake.bob.id).kick(reason=REASON)
    assert fake.member(fake.guild.id, fake.bob) is None
    await eventually(lambda: removed)
    assert removed[0][0].id == fake.bob.id
    assert guild.get_member(fake.bob.id) is None
    assert fake.audit_reasons() == [REASON]
    (entry,) = fake.audit_log()
    assert (entry.action, entry.target_id, entry.reason) == ("member_kick", fake.bob.id, REASON)
    assert fake.requests("DELETE", "/guilds/{guild_id}/members/{user_id}")[0].audit_reason == (
        REASON
    )


async def test_moderation_needs_the_permission_and_a_higher_role(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    fake = fake_discord
    _, guild = await started(fake, run_discord_client, grant=0)
    with pytest.raises(discord.Forbidden) as refused:
        await member_of(guild, fake.bob.id).kick(reason="no permission")
    assert refused.value.code == 50013 and refused.value.text == "Missing Permissions"
    await fake.edit_role(fake.bot_role.id, permissions=fake.bot_role.permissions | MODERATION)
    senior = await fake.add_role("senior", 0)  # at the top: above the bot's role
    dave = await fake.add_user("dave", role_ids=[senior.id])
    await eventually(lambda: guild.get_member(dave.id))
    for target in (fake.alice.id, dave.id):  # the owner, then a higher role
        with pytest.raises(discord.Forbidden):
            await member_of(guild, target).kick(reason="rank")
        with pytest.raises(discord.Forbidden):
            await member_of(guild, target).ban(reason="rank")
    assert fake.member(fake.guild.id, fake.bob) is not None
    assert fake.member(fake.guild.id, dave) is not None
    assert fake.audit_log() == [] and fake.bans() == []


# ------------------------------------------------------------------ bans
async def test_ban_lists_and_unban(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    fake = fake_discord
    bot, guild = await started(fake, run_discord_client)
    bans, unbans = collect(bot, "member_ban"), collect(bot, "member_unban")
    spam = await fake.user_message(fake.general.id, fake.bob, "buy now")
    await member_of(guild, fake.bob.id).ban(reason=REASON, delete_message_seconds=3600)
    assert [(b.user_id, b.reason) for b in fake.bans()] == [(fake.bob.id, REASON)]
    assert fake.member(fake.guild.id, fake.bob) is None
    assert fake.message(spam.id).deleted
    await eventually(lambda: bans)
    assert bans[0][1].id == fake.bob.id
    listed = [entry async for entry in guild.bans()]
    assert [(e.user.id, e.reason) for e in listed] == [(fake.bob.id, REASON)]
    assert (await guild.fetch_ban(discord.Object(fake.bob.id))).reason == REASON
    await guild.unban(discord.Object(fake.bob.id), reason="appeal accepted")
    assert fake.bans() == []
    await eventually(lambda: unbans)
    with pytest.raises(discord.NotFound) as missing:
        await guild.unban(discord.Object(fake.bob.id))
    assert missing.value.code == 10026
    actions = [(e.action, e.reason) for e in fake.audit_log()]
    assert actions == [("member_ban_add", REASON), ("member_ban_remove", "appeal accepted")]


# ------------------------------------------------------------------ member edits
async def test_timeouts_follow_discords_rules(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    fake = fake_discord
    bot, guild = await started(fake, run_discord_client)
    updates = collect(bot, "member_update")
    bob = member_of(guild, fake.bob.id)
    await bob.timeout(datetime.timedelta(minutes=10), reason="calm down")
    until = fake.member(fake.guild.id, fake.bob)
    assert until is not None and until.communication_disabled_until is not None
    now = datetime.datetime.now(datetime.UTC).timestamp()
    assert 590 < until.communication_disabled_until - now <= 600
    await eventually(lambda: updates)  # listeners run after the cache is updated
    assert updates[-1][1].timed_out_until is not None
    assert member_of(guild, fake.bob.id).is_timed_out()
    await member_of(guild, fake.bob.id).timeout(None)
    cleared = fake.member(fake.guild.id, fake.bob)
    assert cleared is not None and cleared.communication_disabled_until is None
    with pytest.raises(discord.HTTPException) as too_long:
        await bob.timeout(datetime.timedelta(days=29))
    assert too_long.value.status == 400
    eve = await fake.add_user("eve", role_ids=[fake.admin_role.id])  # below the bot, but admin
    await eventually(lambda: guild.get_member(eve.id))
    with pytest.raises(discord.Forbidden):
        await member_of(guild, eve.id).timeout(datetime.timedelta(minutes=1))
    entry = fake.audit_log()[0]
    assert (entry.action, entry.changes, entry.reason) == (
        "member_update",
        ("communication_disabled_until",),
        "calm down",
    )


async def test_nicknames_and_roles_below_the_bot(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    fake = fake_discord
    _, guild = await started(fake, run_discord_client)
    helper = await fake.add_role("helper", 0, position=1)
    senior = await fake.add_role("senior", 0)
    await eventually(lambda: guild.get_role(senior.id))
    bob = member_of(guild, fake.bob.id)
    await bob.edit(nick="bobby", reason="typo")
    await bob.add_roles(discord.Object(helper.id))
    record = fake.member(fake.guild.id, fake.bob)
    assert record is not None and (record.nick, record.role_ids) == ("bobby", (helper.id,))
    with pytest.raises(discord.Forbidden):
        await bob.add_roles(discord.Object(senior.id), atomic=False)
    with pytest.raises(discord.Forbidden):
        await bob.add_roles(discord.Object(fake.bot_role.id))
    await bob.remove_roles(discord.Object(helper.id))
    after = fake.member(fake.guild.id, fake.bob)
    assert after is not None and after.role_ids == ()


async def test_roles_added_at_a_position_push_the_others_up(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    fake = fake_discord
    _, guild = await started(fake, run_discord_client, grant=0)
    moderator = await fake.add_role("moderator", KICK_MEMBERS, position=1)
    order = ["@everyone", "moderator", "admin", fake.bot_role.name]
    assert [r.name for r in fake.roles()] == order
    await eventually(lambda: [r.name for r in guild.roles] == order)
    await fake.edit_role(moderator.id, position=3, permissions=ADMINISTRATOR)
    moved = ["@everyone", "admin", fake.bot_role.name, "moderator"]
    await eventually(lambda: [r.name for r in guild.roles] == moved)
    role = guild.get_role(moderator.id)
    assert role is not None and role.permissions.administrator
    assert fake.bot_role.position == 2


# ------------------------------------------------------------------ buttons and clicks
class Buttons(discord.ui.View):
    """Three buttons answering a click in the three ways a bot can."""

    def __init__(self) -> None:
        super().__init__(timeout=None)
        self.clicked: list[tuple[str, int | None]] = []

    @discord.ui.button(label="Quiet", custom_id="t:quiet")
    async def quiet(self, interaction: discord.Interaction, _: discord.ui.Button[Any]) -> None:
        self.clicked.append(("quiet", interaction.message.id if interaction.message else None))
        await interaction.response.defer()  # type 6
        await interaction.edit_original_response(content="edited after a quiet ack")

    @discord.ui.button(label="Done", custom_id="t:done", style=discord.ButtonStyle.success)
    async def done(self, interaction: discord.Interaction, _: discord.ui.Button[Any]) -> None:
        self.clicked.append(("done", interaction.user.id))
        await interaction.response.edit_message(content="all done", view=None)  # type 7

    @discord.ui.button(label="Ask", custom_id="t:ask")
    async def ask(self, interaction: discord.Interaction, _: discord.ui.Button[Any]) -> None:
        self.clicked.append(("ask", interaction.user.id))
        await interaction.response.send_message("only you see this", ephemeral=True)  # type 4


async def test_buttons_clicks_and_their_three_answers(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    fake = fake_discord
    _, guild = await started(fake, run_discord_client, grant=0)
    channel = guild.get_channel(fake.general.id)
    assert isinstance(channel, discord.TextChannel)
    view = Buttons()
    sent = await channel.send("pick one", view=view)
    components = fake.message(sent.id).components
    ids = [b["custom_id"] for row in components for b in row["components"]]
    assert ids == ["t:quiet", "t:done", "t:ask"]

    quiet = await fake.click(sent.id, "t:quiet", user=fake.bob)
    await eventually(lambda: fake.message(sent.id).content == "edited after a quiet ack")
    assert view.clicked[0] == ("quiet", sent.id)
    kinds = [(r.kind, r.callback_type) for r in fake.interaction_responses(quiet.id)]
    assert kinds == [("callback", 6), ("edit_original", None)]

    ask = await fake.click(sent.id, "t:ask", user=fake.alice)
    await eventually(lambda: fake.interaction_responses(ask.id))
    reply = fake.message(fake.interaction_responses(ask.id)[0].message_id or 0)
    assert reply.ephemeral and reply.content == "only you see this"

    done = await fake.click(sent.id, "t:done", user=fake.bob)
    await eventually(lambda: fake.message(sent.id).content == "all done")
    assert fake.interaction_responses(done.id)[0].callback_type == 7
    assert fake.message(sent.id).components == ()
    assert [len(e.components) for e in fake.message(sent.id).edits] == [1, 0]
    with pytest.raises(LookupError):
        await fake.click(sent.id, "t:done", user=fake.bob)


async def test_component_limits_and_disabled_buttons(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    fake = fake_discord
    bot, _ = await started(fake, run_discord_client, grant=0)
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=fake.general.id)

    def row(*buttons: dict[str, Any]) -> dict[str, Any]:
        return {"type": 1, "components": list(buttons)}

    def button(custom_id: str, **extra: Any) -> dict[str, Any]:
        return {"type": 2, "style": 1, "label": "x", "custom_id": custom_id, **extra}

    with pytest.raises(discord.HTTPException) as duplicated:
        await bot.http.request(route, json={"components": [row(button("a"), button("a"))]})
    assert duplicated.value.code == 50035
    with pytest.raises(discord.HTTPException):
        await bot.http.request(route, json={"components": [row(button("b" * 101))]})
    sent = await bot.http.request(
        route, json={"components": [row(button("on"), button("off", disabled=True))]}
    )
    with pytest.raises(ValueError, match="disabled"):
        await fake.click(int(sent["id"]), "off", user=fake.bob)
    with pytest.raises(LookupError):
        await fake.click(int(sent["id"]), "nope", user=fake.bob)
