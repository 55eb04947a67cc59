"""The brain's settings: one typed object, read from the environment / .env."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from trollama.brain.persona.quiet_hours import parse_quiet_hours
from trollama.common.settings import ServiceSettings

ProfileName = Literal["conservative", "balanced", "performance"]


class BrainSettings(ServiceSettings):
    secret_fields: ClassVar[tuple[str, ...]] = ("relay_shared_secret", "jwt_secret_key")

    # --- network
    brain_host: str = "127.0.0.1"
    brain_port: int = 8001
    #: Stable identity of this brain process (defaults to host:port).
    node_id: str | None = None

    # --- secrets
    relay_shared_secret: SecretStr = SecretStr("")
    jwt_secret_key: SecretStr = SecretStr("")
    jwt_algorithm: str = "HS256"

    # --- model servers
    ollama_host: str = "http://127.0.0.1:11434"
    ollama_default_model: str = "gpt-oss:20b"
    #: Seconds a model stays loaded after a request (0 = unload at once).
    ollama_keep_alive: int = 300
    #: OpenAI-compatible server (SGLang, vLLM); models of the profile marked
    #: ``openai`` are served there.
    sglang_endpoint: str | None = None
    openai_api_key: SecretStr = SecretStr("not-needed")
    #: Tried once when the routed model's backend fails before any text streamed.
    fallback_model: str | None = None
    #: Seconds to wait for a model server to connect / between two streamed chunks.
    model_connect_timeout: float = 5.0
    model_read_timeout: float = 300.0
    #: Set by ``./start.sh --demo``: the model server is the simulated one.
    model_server_simulated: bool = False

    # --- routing
    vram_profile: ProfileName = "conservative"
    #: Route used when the classifier fails or answers something unknown.
    router_default_route: str = "SELF_HANDLE"
    router_timeout_seconds: float = 20.0

    # --- queue
    max_queue_size: int = 50
    max_retries: int = 3
    visibility_timeout: int = 1200
    retry_backoff_seconds: float = 2.0
    #: Requests processed at once by this brain.
    worker_concurrency: int = 2
    #: Seconds between two looks at the store for work from other brains.
    queue_poll_seconds: float = 0.5
    #: Seconds between node heartbeats; a node silent for 3 beats is dead.
    node_heartbeat_seconds: float = 5.0

    # --- conversation context
    #: Token count of a thread's history above which older turns are summarized.
    context_summary_threshold_tokens: int = 6000
    #: Messages kept verbatim after a summary.
    context_keep_last_messages: int = 10

    # --- admission
    maintenance_mode: bool = False
    maintenance_mode_hard: bool = False
    #: Requests one user may submit per minute (0 = no limit).
    user_rate_limit_per_minute: int = 20

    # --- persona and memory
    #: TOML file the bot's identity is seeded from on first start (empty = the
    #: built-in one); after that the store owns the identity.
    persona_identity_file: str = ""
    #: Tokens of memory facts put into one prompt (the most relevant first).
    memory_token_budget: int = 400
    #: Tokens of the channel's last 24 hours put into a prompt outside threads.
    channel_context_token_budget: int = 1500
    #: Seconds to wait for the embedding model before ranking facts without it.
    embedding_timeout_seconds: float = 5.0
    #: Length of the memory embeddings asked of the model (models such as
    #: qwen3-embedding can shorten theirs; 0 = the model's full length). Shorter
    #: vectors keep each stored fact small and ranking fast.
    embedding_dimensions: int = Field(default=256, ge=0, le=8192)

    # --- background jobs (one brain runs each, by a lease in the store)
    #: Run the jobs below in this brain (another brain holding the lease runs them otherwise).
    background_jobs_enabled: bool = True
    #: Hour of the day (UTC) for the daily memory consolidation and mood drift.
    consolidation_hour_utc: int = Field(default=4, ge=0, le=23)
    #: Minutes between two proactive-engagement rounds.
    proactive_interval_minutes: float = Field(default=30.0, gt=0)
    #: Chance that the bot speaks in an enabled channel in one round (0..1).
    proactive_chance: float = Field(default=0.10, ge=0, le=1)
    #: Hours (UTC, "start-end", e.g. "23-7") when the bot never speaks unprompted.
    quiet_hours_utc: str = ""

    @field_validator("quiet_hours_utc")
    @classmethod
    def _valid_quiet_hours(cls, value: str) -> str:
        parse_quiet_hours(value)  # raises with the expected form in the message
        return value
