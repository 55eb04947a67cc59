"""Register the relay's slash commands with Discord, then exit.

    uv run python scripts/sync_commands.py

With DEV_GUILD_ID set, the commands are registered in that guild (instantly);
otherwise globally (Discord may take up to an hour to show changes). The relay
also syncs at every start; this script is for updating them without a restart.
"""

from __future__ import annotations

import asyncio
import sys

import discord

from trollama.common.settings import load_settings
from trollama.relay.bot import RelayBot
from trollama.relay.endpoints import point_discord_at
from trollama.relay.settings import RelaySettings


async def sync(settings: RelaySettings) -> int:
    if settings.discord_api_base and settings.discord_gateway_url:
        point_discord_at(settings.discord_api_base, settings.discord_gateway_url)
    bot = RelayBot(settings, serve=False)
    try:
        await bot.login(settings.discord_token.get_secret_value())
        synced = await bot.sync_commands()
    except discord.LoginFailure:
        print("sync_commands: Discord refused the token (check DISCORD_TOKEN)", file=sys.stderr)
        return 1
    finally:
        await bot.close()
    scope = f"guild {settings.dev_guild_id}" if settings.dev_guild_id else "globally"
    print(f"synced {len(synced)} commands {scope}: " + ", ".join(f"/{c.name}" for c in synced))
    return 0


def main() -> int:
    settings = load_settings(RelaySettings, "sync_commands")
    if settings is None:
        return 2
    return asyncio.run(sync(settings))


if __name__ == "__main__":
    sys.exit(main())
