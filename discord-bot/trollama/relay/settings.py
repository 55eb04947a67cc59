"""The relay's settings: one typed object, read from the environment / .env."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr

from trollama.common.settings import ServiceSettings


class RelaySettings(ServiceSettings):
    secret_fields: ClassVar[tuple[str, ...]] = ("discord_token", "relay_shared_secret")

    #: The bot token, from the environment only; never logged.
    discord_token: SecretStr = SecretStr("")
    #: The brain's relay WebSocket and its shared secret.
    fastapi_ws_url: str = "ws://127.0.0.1:8001/ws/discord"
    relay_shared_secret: SecretStr = SecretStr("")
    #: The relay's own health endpoint.
    relay_health_host: str = "127.0.0.1"
    relay_health_port: int = 9997

    #: Opt-in: another Discord-compatible server (tests, proxies).
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None

    #: Also answer messages that contain the bot's name (not only mentions).
    trigger_on_name: bool = False
    #: Comma-separated ids; empty allow lists allow everyone.
    allowed_user_ids: str = ""
    blocked_user_ids: str = ""
    allowed_role_ids: str = ""
    blocked_role_ids: str = ""
    allowed_channel_ids: str = ""
    blocked_channel_ids: str = ""
    #: Messages from one user in one thread within this many seconds become one request.
    merge_window_seconds: float = 0.8

    #: Seconds between two edits/sends in one channel (Discord allows 5 per 5 s).
    stream_chunk_interval: float = 1.1
    #: Largest attachment passed to the brain, in megabytes.
    max_file_size_mb: int = 10
    #: Guild whose slash commands sync instantly (development); empty = global.
    dev_guild_id: str = ""
    #: Requests kept while the brain is away.
    max_pending_requests: int = 100
    #: Comma-separated role ids whose members are bot admins (besides the
    #: Administrator and Manage Server permissions).
    admin_role_ids: str = ""
    #: Send every message in visible channels to the brain's short-term log
    #: (other bots excluded; channels can opt out with /channel logging).
    message_log_enabled: bool = True
