"""Check a Discord bot token without starting the bot.

    uv run python scripts/test_token.py      # reads DISCORD_TOKEN from the environment / .env

Prints the bot's name and id, or a one-line reason; exits 0 when the token works.
The token itself is never printed.
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import discord
from pydantic import ValidationError

from trollama.relay.endpoints import point_discord_at
from trollama.relay.settings import RelaySettings


async def check(settings: RelaySettings) -> int:
    if settings.discord_api_base and settings.discord_gateway_url:
        point_discord_at(settings.discord_api_base, settings.discord_gateway_url)
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login(settings.discord_token.get_secret_value())
    except discord.LoginFailure:
        print("test_token: Discord refused the token (check DISCORD_TOKEN)", file=sys.stderr)
        return 1
    except (aiohttp.ClientError, discord.HTTPException, OSError) as exc:
        print(f"test_token: could not reach Discord ({type(exc).__name__})", file=sys.stderr)
        return 1
    finally:
        await client.close()
    user = client.user
    print(f"token OK: logged in as {user} (id {user.id if user else '?'})")
    return 0


def main() -> int:
    try:
        settings = RelaySettings(relay_shared_secret="x" * 32)  # only the token matters here
    except ValidationError as exc:
        print(f"test_token: {exc.errors(include_input=False)[0]['msg']}", file=sys.stderr)
        return 2
    return asyncio.run(check(settings))


if __name__ == "__main__":
    sys.exit(main())
