"""``python -m trollama.relay``: run the Discord relay with settings from the environment."""

from __future__ import annotations

import asyncio
import sys

import discord

from trollama.common.logging import configure_logging, register_secret
from trollama.common.settings import load_settings
from trollama.relay.bot import RelayBot
from trollama.relay.endpoints import point_discord_at
from trollama.relay.settings import RelaySettings

EXIT_CONFIG = 2


async def run(settings: RelaySettings) -> int:
    token = settings.discord_token.get_secret_value()
    if settings.discord_api_base and settings.discord_gateway_url:
        point_discord_at(settings.discord_api_base, settings.discord_gateway_url)
    async with RelayBot(settings) as bot:
        try:
            await bot.start(token)
        except discord.LoginFailure:
            print("trollama-relay: Discord refused the token (DISCORD_TOKEN)", file=sys.stderr)
            return EXIT_CONFIG
    return 0


def main() -> int:
    settings = load_settings(RelaySettings, "trollama-relay")
    if settings is None:
        return EXIT_CONFIG
    for secret in (settings.discord_token, settings.relay_shared_secret):
        register_secret(secret.get_secret_value())
    configure_logging(
        "relay", level=settings.log_level, json_lines=settings.log_json, shipping=settings
    )
    return asyncio.run(run(settings))


if __name__ == "__main__":
    sys.exit(main())
