"""/userinfo, /serverinfo and /serverstats end to end against the fake Discord and a brain."""

from __future__ import annotations

from typing import Any

from trollama.relay.utility import MAX_ROLES_SHOWN, NOT_TRACKED
from trollama.testkit.fake_discord import InteractionRecord, UserRecord


async def embed_of(stack: Any, interaction: InteractionRecord) -> dict[str, Any]:
    """The embed the command finally showed, with its fields by name."""
    fake = stack.discord

    def final() -> dict[str, Any] | None:
        for response in reversed(fake.interaction_responses(interaction.id)):
            body = response.data.get("data") or response.data
            if body.get("embeds"):
                embed: dict[str, Any] = body["embeds"][0]
                return embed
        return None

    embed: dict[str, Any] = await fake.wait_for(final, timeout=10)
    embed["by_name"] = {f["name"]: f["value"] for f in embed.get("fields", [])}
    return embed


async def known_to_relay(stack: Any, user: UserRecord) -> None:
    guild = stack.bot.get_guild(stack.discord.guild.id)
    await stack.discord.wait_for(lambda: guild.get_member(user.id) is not None)


async def test_userinfo_describes_a_member_or_yourself(stack: Any) -> None:
    fake = stack.discord
    bob = await embed_of(
        stack, await fake.interaction("userinfo", {"member": fake.bob}, user=fake.alice)
    )
    assert bob["title"] == "Bob"
    fields = bob["by_name"]
    assert fields["ID"] == f"`{fake.bob.id}`" and fields["Username"] == "bob"
    assert fields["Bot"] == "no" and fields["Top roles"] == "none"
    assert fields["Account created"].startswith("<t:") and fields["Joined this server"].startswith(
        "<t:"
    )
    me = await embed_of(stack, await fake.interaction("userinfo", user=fake.alice))
    assert me["title"] == "Alice" and me["by_name"]["Top roles"] == f"<@&{fake.admin_role.id}>"
    bot = await embed_of(
        stack, await fake.interaction("userinfo", {"member": fake.bot_user}, user=fake.bob)
    )
    assert bot["by_name"]["Bot"] == "yes"


async def test_userinfo_lists_at_most_ten_roles(stack: Any) -> None:
    fake = stack.discord
    roles = [await fake.add_role(f"role {n}", 0, position=1) for n in range(MAX_ROLES_SHOWN + 2)]
    many = await fake.add_user("many", role_ids=[r.id for r in roles])
    await known_to_relay(stack, many)
    embed = await embed_of(
        stack, await fake.interaction("userinfo", {"member": many}, user=fake.alice)
    )
    listed = embed["by_name"]["Top roles"]
    assert listed.count("<@&") == MAX_ROLES_SHOWN and listed.endswith(" and 2 more")
    assert listed.startswith(f"<@&{roles[0].id}>")  # the first one added ends up highest


async def test_serverinfo(stack: Any) -> None:
    fake = stack.discord
    embed = await embed_of(stack, await fake.interaction("serverinfo", user=fake.bob))
    fields = embed["by_name"]
    assert embed["title"] == "Test Guild"
    assert fields["Owner"] == f"<@{fake.alice.id}>"
    assert (fields["Members"], fields["Roles"]) == ("3", "3")
    assert fields["Emojis"] == "1 of 50"
    assert fields["Boosts"] == "level 0, 0 boosts"
    assert fields["Channels"] == "1 text"
    assert fields["Created"].startswith("<t:")


async def test_serverstats_counts_humans_bots_channels_and_the_queue(stack: Any) -> None:
    fake = stack.discord
    await fake.add_channel("random")
    helper = await fake.add_user("helper")
    await known_to_relay(stack, helper)
    embed = await embed_of(stack, await fake.interaction("serverstats", user=fake.bob))
    fields = embed["by_name"]
    assert embed["title"] == "Test Guild: statistics"
    assert fields["Members"] == "4"
    assert fields["Humans and bots"] == "3 humans · 1 bot"
    assert fields["Online"] == NOT_TRACKED
    assert fields["Channels"] == "2 text"
    assert fields["Assistant queue"] == "0 waiting · 0 running (room for 50)"
