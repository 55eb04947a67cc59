"""scripts/test_token.py and scripts/sync_commands.py against the fake Discord."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from trollama.testkit.fake_discord import FakeDiscord

SCRIPTS = Path(__file__).resolve().parents[1]
EXPECTED_COMMANDS = {
    # conversations
    *("help", "reset", "summarize", "close", "cancel", "model"),
    # memory and administration
    *("memory", "identity", "memories", "relationship", "state", "channel", "status"),
    # moderation and utility
    *("kick", "ban", "mute", "unmute", "audit", "poll", "userinfo", "serverinfo", "serverstats"),
}


async def run_script(name: str, fake: FakeDiscord, token: str, **extra: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "DISCORD_TOKEN": token,
        "DISCORD_API_BASE": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "RELAY_SHARED_SECRET": "a-relay-secret-long-enough-1234",
        **extra,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPTS / name),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def test_token_check_names_the_bot_and_never_prints_the_token(
    fake_discord: FakeDiscord,
) -> None:
    code, out = await run_script("test_token.py", fake_discord, fake_discord.token)
    assert code == 0, out
    assert "token OK" in out and "Trollama" in out
    assert fake_discord.token not in out


async def test_a_refused_token_is_one_clear_line(fake_discord: FakeDiscord) -> None:
    code, out = await run_script("test_token.py", fake_discord, "not-the-right-token-at-all")
    assert code == 1
    assert "refused the token" in out and "not-the-right-token" not in out


async def test_sync_commands_registers_every_command_in_the_dev_guild(
    fake_discord: FakeDiscord,
) -> None:
    guild = str(fake_discord.guild.id)
    code, out = await run_script(
        "sync_commands.py", fake_discord, fake_discord.token, DEV_GUILD_ID=guild
    )
    assert code == 0, out
    assert f"guild {guild}" in out
    assert {c["name"] for c in fake_discord.commands(fake_discord.guild.id)} == EXPECTED_COMMANDS
