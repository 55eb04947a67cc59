"""Moderation end to end: the real relay against the fake Discord and a real brain."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from trollama.brain.app import create_app
from trollama.brain.community.audit import AuditEntry, AuditLog
from trollama.brain.services import Services, build_services
from trollama.common.store.sqlite import SqliteStore
from trollama.relay.bot import RelayBot
from trollama.relay.brain_api import AuditEntry as RelayAuditEntry
from trollama.relay.brain_api import BrainApi
from trollama.relay.moderation import AuditOutbox, Moderation
from trollama.relay.settings import RelaySettings
from trollama.testkit.brain import brain_settings
from trollama.testkit.discord_fixtures import running_client
from trollama.testkit.fake_discord import FakeDiscord, InteractionRecord, UserRecord
from trollama.testkit.fake_discord.state import BAN_MEMBERS, KICK_MEMBERS, MODERATE_MEMBERS
from trollama.testkit.ports import free_port

MODERATOR_PERMISSIONS = KICK_MEMBERS | BAN_MEMBERS | MODERATE_MEMBERS
REASON = "spamming links in #general"


async def moderators(stack: Any) -> UserRecord:
    """The bot may moderate; ``carol`` holds a moderator role below admin and the bot."""
    fake = stack.discord
    await fake.edit_role(
        fake.bot_role.id, permissions=fake.bot_role.permissions | MODERATOR_PERMISSIONS
    )
    role = await fake.add_role("moderator", MODERATOR_PERMISSIONS, position=1)
    carol: UserRecord = await fake.add_user("carol", role_ids=[role.id])
    await known_to_relay(stack, carol)
    return carol


async def known_to_relay(stack: Any, user: UserRecord) -> None:
    guild = stack.bot.get_guild(stack.discord.guild.id)
    await stack.discord.wait_for(lambda: guild.get_member(user.id) is not None)


async def answer(stack: Any, interaction: InteractionRecord) -> str:
    """The text the invoker finally sees (the last response), once it is there."""
    fake = stack.discord

    def final() -> str:
        responses = fake.interaction_responses(interaction.id)
        texts = [
            r.data.get("content") or (r.data.get("data") or {}).get("content") for r in responses
        ]
        return next((t for t in reversed(texts) if t), "")

    text: str = await fake.wait_for(final, timeout=10)
    return text


async def audit_entries(stack: Any, count: int) -> list[AuditEntry]:
    """The guild's audit entries in the brain, newest first, once there are ``count``."""
    log = AuditLog(stack.brain.store)
    guild = str(stack.discord.guild.id)
    for _ in range(500):
        entries = await log.recent(guild)
        if len(entries) >= count:
            return entries
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} audit entries in the brain")


def deletes(fake: FakeDiscord) -> list[Any]:
    return fake.requests("DELETE", "/guilds/{guild_id}/members/{user_id}")


async def test_a_moderator_kicks_bob_with_a_reason(stack: Any) -> None:
    fake = stack.discord
    carol = await moderators(stack)
    kick = await fake.interaction("kick", {"member": fake.bob, "reason": REASON}, user=carol)
    text = await answer(stack, kick)
    assert "was kicked" in text and REASON in text
    assert fake.member(fake.guild.id, fake.bob) is None
    assert [e.action for e in fake.audit_log()] == ["member_kick"]
    assert fake.audit_reasons() == [f"carol: {REASON}"]
    assert fake.interaction_responses(kick.id)[-1].data.get("flags") == 64  # only carol sees it
    (entry,) = await audit_entries(stack, 1)
    assert (entry.action, entry.outcome, entry.reason) == ("kick", "done", REASON)
    assert (entry.moderator_id, entry.target_id) == (str(carol.id), str(fake.bob.id))
    assert entry.target_name == "bob"


async def test_a_member_without_permission_is_refused_and_nothing_happens(stack: Any) -> None:
    fake = stack.discord
    carol = await moderators(stack)
    kick = await fake.interaction("kick", {"member": carol, "reason": "revenge"}, user=fake.bob)
    assert "You need the **Kick Members** permission" in await answer(stack, kick)
    assert fake.member(fake.guild.id, carol) is not None
    assert deletes(fake) == [] and fake.audit_log() == []
    (entry,) = await audit_entries(stack, 1)
    assert (entry.outcome, entry.moderator_id, entry.reason) == (
        "refused",
        str(fake.bob.id),
        "revenge",
    )
    assert "Kick Members" in entry.detail


async def test_role_hierarchy_self_bot_and_owner_are_refused(stack: Any) -> None:
    fake = stack.discord
    carol = await moderators(stack)
    peer = await fake.add_user("dave", role_ids=[fake.roles()[1].id])  # the moderator role too
    senior = await fake.add_role("senior", 0)  # above the bot's role
    eve = await fake.add_user("eve", role_ids=[senior.id])
    await known_to_relay(stack, eve)
    cases = [
        (carol, carol, "can't kick yourself"),
        (carol, fake.bot_user, "won't kick myself"),
        (carol, fake.alice, "server owner can't be kicked"),
        (carol, peer, "highest role is not below yours"),
        (fake.alice, eve, "highest role is not below mine"),
    ]
    for moderator, target, expected in cases:
        kick = await fake.interaction("kick", {"member": target, "reason": "x"}, user=moderator)
        assert expected in await answer(stack, kick)
    assert deletes(fake) == []
    entries = await audit_entries(stack, len(cases))
    assert {e.outcome for e in entries} == {"refused"}


async def test_discords_403_becomes_a_clear_message(stack: Any) -> None:
    fake = stack.discord
    carol = await moderators(stack)
    await fake.fail_requests(
        "DELETE /guilds/*/members/*", status=403, code=50013, message="Missing Permissions"
    )
    kick = await fake.interaction("kick", {"member": fake.bob, "reason": REASON}, user=carol)
    text = await answer(stack, kick)
    assert "Discord refused to let me kick **Bob**" in text
    assert fake.member(fake.guild.id, fake.bob) is not None
    (entry,) = await audit_entries(stack, 1)
    assert (entry.outcome, entry.detail) == ("failed", "Discord: Missing Permissions")


async def test_ban_mute_and_unmute(stack: Any) -> None:
    fake = stack.discord
    carol = await moderators(stack)
    frank = await fake.add_user("frank")
    await known_to_relay(stack, frank)
    ban = await fake.interaction(
        "ban", {"member": fake.bob, "reason": "raid", "delete_message_days": 1}, user=carol
    )
    assert "was banned" in await answer(stack, ban)
    assert [(b.user_id, b.reason) for b in fake.bans()] == [(fake.bob.id, "carol: raid")]
    ban_request = fake.requests("PUT", "/guilds/{guild_id}/bans/{user_id}")[0]
    assert ban_request.query == {"delete_message_seconds": "86400"}

    mute = await fake.interaction(
        "mute", {"member": frank, "minutes": 10, "reason": "cool off"}, user=carol
    )
    assert "was muted" in await answer(stack, mute)
    muted = fake.member(fake.guild.id, frank)
    assert muted is not None and muted.communication_disabled_until is not None
    assert 590 < muted.communication_disabled_until - datetime.now(UTC).timestamp() <= 600

    unmute = await fake.interaction("unmute", {"member": frank}, user=carol)
    assert "was unmuted" in await answer(stack, unmute)
    freed = fake.member(fake.guild.id, frank)
    assert freed is not None and freed.communication_disabled_until is None
    again = await fake.interaction("unmute", {"member": frank}, user=carol)
    assert "is not muted" in await answer(stack, again)

    unprivileged = await fake.interaction(
        "mute", {"member": frank, "minutes": 1, "reason": "x"}, user=fake.bob
    )
    assert "Timeout Members" in await answer(stack, unprivileged)
    gina = await fake.add_user("gina", role_ids=[fake.admin_role.id])
    await known_to_relay(stack, gina)
    admin = await fake.interaction(
        "mute", {"member": gina, "minutes": 1, "reason": "x"}, user=fake.alice
    )
    assert "Administrators can't be muted" in await answer(stack, admin)
    entries = await audit_entries(stack, 6)
    assert [(e.action, e.outcome) for e in entries] == [
        ("mute", "refused"),
        ("mute", "refused"),
        ("unmute", "refused"),
        ("unmute", "done"),
        ("mute", "done"),
        ("ban", "done"),
    ]
    assert entries[4].detail == "10 min"


async def test_audit_command_shows_recent_entries_to_server_managers(stack: Any) -> None:
    fake = stack.discord
    carol = await moderators(stack)
    kick = await fake.interaction("kick", {"member": fake.bob, "reason": REASON}, user=carol)
    await answer(stack, kick)
    await audit_entries(stack, 1)
    refused = await fake.interaction("audit", user=carol)
    assert "Manage Server" in await answer(stack, refused)
    shown = await fake.interaction("audit", {"limit": 5}, user=fake.alice)
    text = await answer(stack, shown)
    assert "**kick** bob by carol" in text and REASON in text
    assert fake.interaction_responses(shown.id)[-1].data.get("flags") == 64


# ------------------------------------------------------------------ the brain away
@asynccontextmanager
async def brain_on_port(services: Services, port: int) -> AsyncIterator[None]:
    """The brain served on a chosen port (the relay was told this address before)."""
    config = uvicorn.Config(
        create_app(services), host="127.0.0.1", port=port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the brain stopped while starting"
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def test_the_kick_happens_while_the_brain_is_away_and_its_entry_follows(
    fake_discord: FakeDiscord, fake_ollama: Any, tmp_path: Path
) -> None:
    fake = fake_discord
    port = free_port()
    settings = brain_settings(ollama_host=fake_ollama.url)
    relay = RelayBot(
        RelaySettings(
            _env_file=None,
            dev_mode=True,
            discord_token=fake.token,
            relay_shared_secret=settings.relay_shared_secret,
            fastapi_ws_url=f"ws://127.0.0.1:{port}/ws/discord",
            relay_health_port=free_port(),
        )
    )
    async with running_client(fake, relay):
        cog = relay.get_cog("Moderation")
        assert isinstance(cog, Moderation)
        cog.outbox.retry_seconds = 0.2
        stack = type("Stack", (), {"discord": fake, "bot": relay})()
        carol = await moderators(stack)
        kick = await fake.interaction("kick", {"member": fake.bob, "reason": REASON}, user=carol)
        assert "was kicked" in await answer(stack, kick)
        assert fake.member(fake.guild.id, fake.bob) is None
        # the entry is held (the brain is away); it may be queued just after the answer
        await fake.wait_for(lambda: cog.outbox.pending == 1, timeout=10)
        services = build_services(settings, store=SqliteStore(tmp_path / "brain.db"))
        async with brain_on_port(services, port):
            await fake.wait_for(lambda: cog.outbox.pending == 0, timeout=10)
            entries = await AuditLog(services.store).recent(str(fake.guild.id))
    assert [(e.action, e.reason) for e in entries] == [("kick", REASON)]


async def test_a_full_audit_buffer_drops_the_oldest_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = BrainApi(f"http://127.0.0.1:{free_port()}", "secret", timeout=1.0)
    outbox = AuditOutbox(api, max_entries=2)

    def entry(n: int) -> RelayAuditEntry:
        return RelayAuditEntry(
            entry_id=f"e{n}",
            guild_id="1",
            action="kick",
            outcome="done",
            moderator_id="2",
            target_id="3",
            at=datetime.now(UTC),
        )

    with caplog.at_level(logging.WARNING, logger="trollama.relay.moderation"):
        for n in range(3):
            outbox.add(entry(n))
        assert not await outbox.flush()
    await api.aclose()
    assert outbox.pending == 2
    assert any("audit buffer full" in r.getMessage() for r in caplog.records)
