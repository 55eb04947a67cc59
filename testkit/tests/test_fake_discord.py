"""The fake Discord against the real, unmodified discord.py client."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands
from discord.http import Route

from trollama.testkit.discord_fixtures import RunClient, running_client
from trollama.testkit.fake_discord import FakeDiscord, FileUpload
from trollama.testkit.fake_discord.limits import MAX_MESSAGE_CHARACTERS

#: Seconds a test waits for something the client or the fake will observe.
DEADLINE_SECONDS = 5.0
EDIT_ROUTE = "PATCH /channels/{channel_id}/messages/{message_id}"


def relay_intents(*, message_content: bool = True) -> discord.Intents:
    """The intents the relay uses: defaults plus message content and members."""
    intents = discord.Intents.default()
    intents.message_content = message_content
    intents.members = True
    return intents


def make_bot(**options: Any) -> commands.Bot:
    return commands.Bot(command_prefix="!", intents=relay_intents(**options))


def collect(client: commands.Bot, event: str) -> list[Any]:
    """Every dispatch of ``event`` (its first argument), in order."""
    seen: list[Any] = []

    async def listener(*args: Any) -> None:
        seen.append(args[0] if args else None)

    client.add_listener(listener, f"on_{event}")
    return seen


async def eventually(condition: Callable[[], Any]) -> Any:
    """Wait until ``condition()`` is truthy and return it."""
    deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
    while not (value := condition()):
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)
    return value


def general(client: discord.Client, fake: FakeDiscord) -> discord.TextChannel:
    channel = client.get_channel(fake.general.id)
    assert isinstance(channel, discord.TextChannel)
    return channel


# ------------------------------------------------------------------ login, ready, intents
async def test_login_ready_and_guild_contents(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot = make_bot()
    await run_discord_client(bot)
    assert bot.user is not None
    assert bot.user.id == fake_discord.bot_user.id
    guild = bot.get_guild(fake_discord.guild.id)
    assert guild is not None
    assert guild.name == "Test Guild"
    assert [c.name for c in guild.text_channels] == ["general"]
    alice = guild.get_member(fake_discord.alice.id)
    bob = guild.get_member(fake_discord.bob.id)
    assert alice is not None and bob is not None
    assert [r.name for r in alice.roles] == ["@everyone", "admin"]
    assert alice.guild_permissions.administrator
    assert not bob.guild_permissions.administrator
    assert guild.me.guild_permissions.create_public_threads
    assert [e.name for e in guild.emojis] == ["trollface"]
    identify = fake_discord.gateway_frames(op=2)[0].data
    assert identify["intents"] == relay_intents().value
    assert identify["token"] == "<redacted>"
    assert [(r.method, r.route) for r in fake_discord.requests()][:2] == [
        ("GET", "/users/@me"),
        ("GET", "/oauth2/applications/@me"),
    ]


async def test_wrong_token_raises_login_failure(fake_discord: FakeDiscord) -> None:
    bot = make_bot()
    saved = Route.BASE
    Route.BASE = fake_discord.api_base
    try:
        with pytest.raises(discord.LoginFailure):
            await bot.login("not-the-token")
    finally:
        Route.BASE = saved
        await bot.close()
    assert [r.status for r in fake_discord.requests("GET", "/users/@me")] == [401]


async def test_on_message_gets_content_with_the_message_content_intent(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot = make_bot()
    seen = collect(bot, "message")
    await run_discord_client(bot)
    sent = await fake_discord.user_message(
        fake_discord.general.id, fake_discord.alice, "hello there"
    )
    message = (await eventually(lambda: seen))[0]
    assert message.id == sent.id
    assert message.content == "hello there"
    assert message.author.id == fake_discord.alice.id
    assert isinstance(message.author, discord.Member)
    assert bot.user not in message.mentions


async def test_without_the_content_intent_only_mentions_carry_content(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot = make_bot(message_content=False)
    seen = collect(bot, "message")
    await run_discord_client(bot)
    await fake_discord.user_message(fake_discord.general.id, fake_discord.bob, "not for you")
    await fake_discord.user_message(
        fake_discord.general.id, fake_discord.bob, "for you", mentions_bot=True
    )
    await eventually(lambda: len(seen) == 2)
    assert seen[0].content == ""
    assert seen[1].content == f"<@{fake_discord.bot_user.id}> for you"
    assert bot.user in seen[1].mentions


# ------------------------------------------------------------------ messages
async def test_send_edit_reply_are_recorded_and_echoed(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot = make_bot()
    seen, edited = collect(bot, "message"), collect(bot, "raw_message_edit")
    await run_discord_client(bot)
    question = await fake_discord.user_message(
        fake_discord.general.id, fake_discord.alice, "question?"
    )
    channel = general(bot, fake_discord)
    sent = await channel.send("first draft")
    await sent.edit(content="second draft")
    await sent.edit(content="final answer")
    reply = await channel.get_partial_message(question.id).reply("a reply")
    assert [m.content for m in fake_discord.messages(fake_discord.general.id)] == [
        "question?",
        "final answer",
        "a reply",
    ]
    edits = fake_discord.edits(sent.id)
    assert [e.content for e in edits] == ["second draft", "final answer"]
    assert edits[0].at <= edits[1].at
    stored_reply = fake_discord.message(reply.id)
    assert stored_reply.reference_id == question.id
    assert stored_reply.type == 19
    await eventually(lambda: len(seen) == 3 and len(edited) == 2)
    assert [m.author.id for m in seen] == [fake_discord.alice.id, bot.user.id, bot.user.id]  # type: ignore[union-attr]
    assert edited[-1].data["content"] == "final answer"
    assert (await channel.fetch_message(sent.id)).content == "final answer"


async def test_delete_and_history(fake_discord: FakeDiscord, run_discord_client: RunClient) -> None:
    bot = make_bot()
    deleted = collect(bot, "raw_message_delete")
    await run_discord_client(bot)
    channel = general(bot, fake_discord)
    kept = await channel.send("kept")
    gone = await channel.send("gone")
    await gone.delete()
    assert [m.content async for m in channel.history(limit=10)] == ["kept"]
    assert [m.id for m in fake_discord.messages(fake_discord.general.id)] == [kept.id]
    assert fake_discord.message(gone.id).deleted
    await eventually(lambda: deleted)
    assert deleted[0].message_id == gone.id


async def test_over_long_content_is_rejected_like_discord(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot = make_bot()
    await run_discord_client(bot)
    channel = general(bot, fake_discord)
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * (MAX_MESSAGE_CHARACTERS + 1))
    assert too_long.value.status == 400
    assert too_long.value.code == 50035
    assert "2000 or fewer" in too_long.value.text
    ok = await channel.send("x" * MAX_MESSAGE_CHARACTERS)
    with pytest.raises(discord.HTTPException) as edit_too_long:
        await ok.edit(content="y" * (MAX_MESSAGE_CHARACTERS + 1))
    assert edit_too_long.value.code == 50035
    with pytest.raises(discord.HTTPException) as empty:
        await channel.send("   ")
    assert empty.value.code == 50006
    assert [len(m.content) for m in fake_discord.messages(fake_discord.general.id)] == [
        MAX_MESSAGE_CHARACTERS
    ]
    assert fake_discord.edits(ok.id) == []


async def test_uploads_and_attachments_keep_their_bytes(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot = make_bot()
    seen = collect(bot, "message")
    await run_discord_client(bot)
    data = bytes(range(256)) + b"\r\n--boundary-like\r\n"
    await general(bot, fake_discord).send(
        "a file", file=discord.File(io.BytesIO(data), filename="answer.md")
    )
    upload = fake_discord.uploads(fake_discord.general.id)[0]
    assert (upload.filename, upload.data, upload.content_type) == (
        "answer.md",
        data,
        "text/markdown",
    )
    picture = FileUpload("cat.png", b"\x89PNG fake", "image/png")
    await fake_discord.user_message(
        fake_discord.general.id, fake_discord.bob, "look", attachments=[picture]
    )
    incoming = (await eventually(lambda: [m for m in seen if m.author.id == fake_discord.bob.id]))[
        0
    ]
    assert [(a.filename, a.content_type) for a in incoming.attachments] == [
        ("cat.png", "image/png")
    ]
    assert await incoming.attachments[0].read() == b"\x89PNG fake"


async def test_typing_is_recorded(fake_discord: FakeDiscord, run_discord_client: RunClient) -> None:
    bot = make_bot()
    await run_discord_client(bot)
    async with general(bot, fake_discord).typing():
        pass
    assert [t.channel_id for t in fake_discord.typing()] == [fake_discord.general.id]


# ------------------------------------------------------------------ threads, reactions, DMs
async def test_thread_from_a_message_archive_and_reopen(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot = make_bot()
    created = collect(bot, "thread_create")
    await run_discord_client(bot)
    question = await fake_discord.user_message(
        fake_discord.general.id, fake_discord.alice, "explain threads", mentions_bot=True
    )
    starter = general(bot, fake_discord).get_partial_message(question.id)
    thread = await starter.create_thread(name="explain threads")
    assert thread.id == question.id
    await thread.send("here you go")
    await fake_discord.user_message(thread.id, fake_discord.alice, "thanks")
    record = fake_discord.threads(fake_discord.general.id)[0]
    assert (record.name, record.starter_message_id, record.type) == (
        "explain threads",
        question.id,
        11,
    )
    assert [m.content for m in fake_discord.messages(thread.id)] == ["here you go", "thanks"]
    await eventually(lambda: created)
    assert created[0].id == thread.id
    fetched = await bot.fetch_channel(thread.id)
    assert isinstance(fetched, discord.Thread)
    assert fetched.parent_id == fake_discord.general.id
    with pytest.raises(discord.HTTPException) as twice:
        await starter.create_thread(name="again")
    assert twice.value.code == 160004

    answer = fake_discord.messages(thread.id)[0]
    await thread.edit(archived=True, locked=False)
    assert fake_discord.thread(thread.id).archived
    with pytest.raises(discord.HTTPException) as archived:
        await thread.get_partial_message(answer.id).edit(content="too late")
    assert archived.value.code == 50083
    await thread.send("back again")
    assert not fake_discord.thread(thread.id).archived


async def test_thread_without_a_message(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot = make_bot()
    await run_discord_client(bot)
    channel = general(bot, fake_discord)
    thread = await channel.create_thread(name="side room", type=discord.ChannelType.public_thread)
    assert isinstance(thread, discord.Thread)
    assert fake_discord.thread(thread.id).starter_message_id is None
    announcement = fake_discord.messages(fake_discord.general.id)[-1]
    assert (announcement.type, announcement.content) == (18, "side room")
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.create_thread(name="n" * 101, type=discord.ChannelType.public_thread)
    assert too_long.value.code == 50035


async def test_reactions_over_time(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot = make_bot()
    added = collect(bot, "raw_reaction_add")
    await run_discord_client(bot)
    question = await fake_discord.user_message(
        fake_discord.general.id, fake_discord.alice, "react to me"
    )
    message = await general(bot, fake_discord).fetch_message(question.id)
    await message.add_reaction("⏳")
    await message.add_reaction(fake_discord.emoji.key)
    await message.remove_reaction("⏳", bot.user)  # type: ignore[arg-type]
    await message.add_reaction("✅")
    await fake_discord.user_reaction(question.id, fake_discord.bob, "✅")
    events = [(e.emoji, e.added) for e in fake_discord.reactions(question.id)]
    assert events == [
        ("⏳", True),
        (fake_discord.emoji.key, True),
        ("⏳", False),
        ("✅", True),
        ("✅", True),
    ]
    me, bob = fake_discord.bot_user.id, fake_discord.bob.id
    assert fake_discord.current_reactions(question.id) == {
        fake_discord.emoji.key: [me],
        "✅": [me, bob],
    }
    with pytest.raises(discord.HTTPException) as unknown:
        await message.add_reaction("<:nope:123>")
    assert unknown.value.code == 10014
    await eventually(lambda: len(added) == 4)
    assert added[-1].user_id == bob
    refreshed = await general(bot, fake_discord).fetch_message(question.id)
    assert {str(r.emoji): (r.count, r.me) for r in refreshed.reactions}["✅"] == (2, True)


async def test_direct_messages_both_ways(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot = make_bot()
    seen = collect(bot, "message")
    await run_discord_client(bot)
    await fake_discord.dm(fake_discord.bob, "psst")
    incoming = (await eventually(lambda: seen))[0]
    assert isinstance(incoming.channel, discord.DMChannel)
    assert incoming.content == "psst"
    await incoming.channel.send("hi bob")
    bob = await bot.fetch_user(fake_discord.bob.id)
    await bob.send("again")
    dm_id = fake_discord.dm_channel_id(fake_discord.bob)
    assert dm_id == incoming.channel.id
    assert [m.content for m in fake_discord.messages(dm_id)] == ["psst", "hi bob", "again"]
    with pytest.raises(discord.HTTPException) as to_bot:
        await (await bot.fetch_user(fake_discord.bot_user.id)).send("me?")
    assert to_bot.value.code == 50007


# ------------------------------------------------------------------ slash commands
def add_commands(bot: commands.Bot, calls: list[str]) -> None:
    @bot.tree.command(name="ask")
    @app_commands.describe(question="What to ask", model="Which model")
    async def ask(interaction: discord.Interaction, question: str, model: str = "auto") -> None:
        """Ask the bot."""
        calls.append(f"{question}|{model}")
        await interaction.response.send_message(f"asked {question} with {model}")

    @ask.autocomplete("model")
    async def models(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        names = ["auto", "gpt-oss:20b", "qwen3:8b"]
        return [app_commands.Choice(name=n, value=n) for n in names if n.startswith(current)]

    @bot.tree.command(name="slow")
    async def slow(interaction: discord.Interaction, ephemeral: bool = False) -> None:
        """Defer, then follow up."""
        await interaction.response.defer(ephemeral=ephemeral, thinking=True)
        await interaction.followup.send("done")
        await interaction.followup.send("and more")
        await interaction.edit_original_response(content="done (edited)")

    @bot.tree.command(name="whois")
    async def whois(interaction: discord.Interaction, member: discord.Member) -> None:
        """Name a member."""
        await interaction.response.send_message(member.name, ephemeral=True)


async def start_with_commands(fake: FakeDiscord, run: RunClient) -> tuple[commands.Bot, list[str]]:
    bot, calls = make_bot(), list[str]()
    add_commands(bot, calls)
    await run(bot)
    await bot.tree.sync()
    await bot.tree.sync(guild=discord.Object(fake.guild.id))
    return bot, calls


async def test_command_sync_is_recorded(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot, _ = await start_with_commands(fake_discord, run_discord_client)
    assert sorted(c["name"] for c in fake_discord.commands()) == ["ask", "slow", "whois"]
    assert fake_discord.commands(fake_discord.guild.id) == []
    ask = next(c for c in fake_discord.commands() if c["name"] == "ask")
    assert [
        (o["name"], o.get("required", False), o.get("autocomplete", False)) for o in ask["options"]
    ] == [
        ("question", True, False),
        ("model", False, True),
    ]
    assert [s.guild_id for s in fake_discord.command_syncs()] == [None, fake_discord.guild.id]
    resynced = await bot.tree.sync()
    assert {c.id for c in resynced} == {int(c["id"]) for c in fake_discord.commands()}


async def test_bad_command_definitions_are_refused(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot = make_bot()
    await run_discord_client(bot)
    assert bot.application_id is not None
    payload = [{"name": "Bad Name", "description": "x", "type": 1}]
    with pytest.raises(discord.HTTPException) as refused:
        await bot.http.bulk_upsert_global_commands(bot.application_id, payload)
    assert refused.value.code == 50035


async def test_injected_command_is_answered(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot, calls = await start_with_commands(fake_discord, run_discord_client)
    seen = collect(bot, "message")
    interaction = await fake_discord.interaction(
        "ask", {"question": "why?"}, user=fake_discord.alice
    )
    responses = await fake_discord.wait_for(
        lambda: fake_discord.interaction_responses(interaction.id)
    )
    assert calls == ["why?|auto"]
    assert (responses[0].kind, responses[0].callback_type) == ("callback", 4)
    answer = fake_discord.message(responses[0].message_id or 0)
    assert (answer.content, answer.type, answer.interaction_id) == (
        "asked why? with auto",
        20,
        interaction.id,
    )
    echoed = await eventually(lambda: seen)
    assert echoed[0].interaction_metadata.user.id == fake_discord.alice.id
    with pytest.raises(ValueError, match="no option"):
        await fake_discord.interaction("ask", {"question": "q", "nope": 1}, user=fake_discord.alice)
    with pytest.raises(LookupError):
        await fake_discord.interaction("never-synced", user=fake_discord.alice)


async def test_member_option_is_resolved_and_ephemeral_reply_stays_private(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot, _ = await start_with_commands(fake_discord, run_discord_client)
    seen = collect(bot, "message")
    interaction = await fake_discord.interaction(
        "whois", {"member": fake_discord.bob}, user=fake_discord.alice
    )
    responses = await eventually(lambda: fake_discord.interaction_responses(interaction.id))
    answer = fake_discord.message(responses[0].message_id or 0)
    assert (answer.content, answer.ephemeral) == ("bob", True)
    await fake_discord.user_message(fake_discord.general.id, fake_discord.bob, "after")
    await eventually(lambda: seen)
    assert [m.content for m in seen] == ["after"]


async def test_defer_then_followups_and_edit(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    await start_with_commands(fake_discord, run_discord_client)
    interaction = await fake_discord.interaction("slow", user=fake_discord.bob)
    responses = await eventually(
        lambda: (
            len(fake_discord.interaction_responses(interaction.id)) == 4
            and fake_discord.interaction_responses(interaction.id)
        )
    )
    assert [(r.kind, r.callback_type) for r in responses] == [
        ("callback", 5),
        ("followup", None),
        ("followup", None),
        ("edit_original", None),
    ]
    original, first, second, edited = (r.message_id for r in responses)
    assert original == first == edited != second
    assert fake_discord.message(original or 0).content == "done (edited)"
    assert fake_discord.message(second or 0).content == "and more"
    assert [e.content for e in fake_discord.edits(original or 0)] == ["done", "done (edited)"]


async def test_autocomplete_is_answered(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    await start_with_commands(fake_discord, run_discord_client)
    interaction = await fake_discord.interaction(
        "ask", {"question": "q", "model": "gpt"}, user=fake_discord.alice, focused="model"
    )
    responses = await eventually(lambda: fake_discord.interaction_responses(interaction.id))
    assert responses[0].callback_type == 8
    assert responses[0].data["data"]["choices"] == [{"name": "gpt-oss:20b", "value": "gpt-oss:20b"}]


# ------------------------------------------------------------------ rate limits
async def test_a_429_storm_on_edits_is_waited_out_and_nothing_is_lost(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot = make_bot()
    await run_discord_client(bot)
    message = await general(bot, fake_discord).send("0")
    await fake_discord.rate_limit(EDIT_ROUTE, count=3, retry_after=0.2)
    for step in range(1, 4):
        await message.edit(content=str(step))
    statuses = [
        r.status
        for r in fake_discord.requests("PATCH", "/channels/{channel_id}/messages/{message_id}")
    ]
    assert statuses == [429, 429, 429, 200, 200, 200]
    assert [e.content for e in fake_discord.edits(message.id)] == ["1", "2", "3"]
    assert fake_discord.message(message.id).content == "3"


async def test_injected_errors_reach_the_client(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot = make_bot()
    await run_discord_client(bot)
    await fake_discord.fail_requests(
        "POST /channels/*/messages", status=403, code=50013, message="Missing Permissions"
    )
    with pytest.raises(discord.Forbidden) as forbidden:
        await general(bot, fake_discord).send("nope")
    assert forbidden.value.code == 50013
    await general(bot, fake_discord).send("yes")
    assert [m.content for m in fake_discord.messages(fake_discord.general.id)] == ["yes"]


# ------------------------------------------------------------------ gateway
async def test_op7_reconnect_resumes_on_the_resume_url(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot = make_bot()
    resumed, seen = collect(bot, "resumed"), collect(bot, "message")
    await run_discord_client(bot)
    assert await fake_discord.reconnect() == 1
    await eventually(lambda: resumed)
    resume = fake_discord.gateway_frames(op=6)
    assert len(resume) == 1
    assert len(fake_discord.gateway_frames(op=2)) == 1
    sockets = [
        r.route for r in fake_discord.requests("GET") if (r.route or "").startswith("/gateway")
    ]
    assert sockets == ["/gateway", "/gateway-resume"]
    await fake_discord.user_message(fake_discord.general.id, fake_discord.alice, "still there?")
    await eventually(lambda: seen)


async def test_a_dropped_connection_resumes_without_losing_events(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot = make_bot()
    resumed, seen = collect(bot, "resumed"), collect(bot, "message")
    await run_discord_client(bot, reconnect=True)
    assert await fake_discord.drop_connection() == 1
    await fake_discord.user_message(fake_discord.general.id, fake_discord.alice, "sent while away")
    await eventually(lambda: resumed)
    await eventually(lambda: seen)
    assert [m.content for m in seen] == ["sent while away"]
    assert fake_discord.connected_sessions == 1


class QuickIdentifyBot(commands.Bot):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py waits 5 s before identifying again; not needed against the fake."""


async def test_invalid_session_makes_the_client_identify_again(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot = QuickIdentifyBot(command_prefix="!", intents=relay_intents())
    ready = collect(bot, "ready")
    await run_discord_client(bot, reconnect=True)
    await fake_discord.invalidate_session()
    await eventually(lambda: len(fake_discord.gateway_frames(op=2)) == 2 and len(ready) == 2)


async def test_presence_and_member_requests(
    fake_discord: FakeDiscord, run_discord_client: RunClient
) -> None:
    bot = make_bot()
    await run_discord_client(bot)
    await bot.change_presence(status=discord.Status.idle, activity=discord.Game("chess"))
    update = (await eventually(fake_discord.presence_updates))[-1]
    assert update.status == "idle"
    assert update.activities[0]["name"] == "chess"
    guild = bot.get_guild(fake_discord.guild.id)
    assert guild is not None
    found = await guild.query_members("al", limit=5)
    assert [m.id for m in found] == [fake_discord.alice.id]


# ------------------------------------------------------------------ a client in another process
SUBPROCESS_CLIENT = textwrap.dedent(
    """
    import asyncio, os
    import discord
    from trollama.relay.endpoints import point_discord_at

    point_discord_at(os.environ["DISCORD_API_BASE"], os.environ["DISCORD_GATEWAY_URL"])
    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)

    @client.event
    async def on_ready():
        await client.get_channel(int(os.environ["CHANNEL_ID"])).send("hello from a subprocess")
        await client.close()

    client.run(os.environ["DISCORD_TOKEN"], log_handler=None)
    """
)


def test_a_client_in_a_subprocess_reaches_the_threaded_fake(fake_discord: FakeDiscord) -> None:
    env = {
        **os.environ,
        "DISCORD_API_BASE": fake_discord.api_base,
        "DISCORD_GATEWAY_URL": fake_discord.gateway_url,
        "DISCORD_TOKEN": fake_discord.token,
        "CHANNEL_ID": str(fake_discord.general.id),
    }
    done = subprocess.run(
        [sys.executable, "-c", SUBPROCESS_CLIENT],
        env=env,
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert [m.content for m in fake_discord.messages(fake_discord.general.id)] == [
        "hello from a subprocess"
    ]


# ------------------------------------------------------------------ strictness, in-loop mode
async def test_unknown_requests_are_404_and_reported() -> None:
    async with FakeDiscord() as fake:
        bot = make_bot()
        async with running_client(fake, bot):
            with pytest.raises(discord.NotFound):
                await bot.http.request(Route("GET", "/no/such/route"))
        assert fake.problems() == ["GET /no/such/route"]


async def trigger_failing_handler(fake: FakeDiscord, bot: commands.Bot) -> None:
    async with running_client(fake, bot) as running:
        await fake.user_message(fake.general.id, fake.alice, "boom")
        await eventually(lambda: running.errors)


async def test_swallowed_handler_exceptions_fail_the_client_run() -> None:
    async with FakeDiscord() as fake:
        bot = make_bot()

        @bot.event
        async def on_message(message: discord.Message) -> None:
            raise RuntimeError("handler bug")

        with pytest.raises(AssertionError, match="handler bug"):
            await trigger_failing_handler(fake, bot)
