"""Point the unmodified discord.py client at another Discord-compatible server.

Used when ``DISCORD_API_BASE`` and ``DISCORD_GATEWAY_URL`` are set (tests run
the relay against the test kit's fake Discord this way). Both settings are
class attributes of discord.py, so this affects every client in the process.
"""

from __future__ import annotations

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route


def point_discord_at(api_base: str, gateway_url: str) -> None:
    """Send REST calls to ``api_base`` (e.g. ``http://127.0.0.1:PORT/api/v10``)
    and open the gateway WebSocket at ``gateway_url``."""
    Route.BASE = api_base.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
