"""Typed settings base shared by every service.

Each service subclasses :class:`ServiceSettings` and adds its own fields. Values
come from the environment (and a ``.env`` file at the repository root when one
exists). Secrets fail closed: a secret that is empty or still holds a known
placeholder refuses to load unless ``DEV_MODE`` is on, and the error names the
setting but never prints its value.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[3]

#: Placeholder values that ship in examples and must never reach production.
PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "change-me-in-production",
        "change-me-in-production-use-a-long-random-string",
        "secret",
        "dev-secret",
        "your_discord_bot_token_here",
    }
)
#: Shortest secret accepted outside dev mode, in characters.
MIN_SECRET_CHARS = 16


class InsecureSettingError(ValueError):
    """A secret setting holds a default, placeholder or too-short value."""


StoreBackend = Literal["sqlite", "dynamodb"]


class StoreSettings(BaseSettings):
    """Where persistent state lives (shared by every service that stores)."""

    model_config = SettingsConfigDict(
        env_file=REPO_ROOT / ".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
    )

    store_backend: StoreBackend = "sqlite"
    sqlite_path: Path = REPO_ROOT / "data" / "trollama.db"
    dynamodb_endpoint: str | None = None
    dynamodb_region: str = "us-east-1"
    dynamodb_access_key: SecretStr | None = None
    dynamodb_secret_key: SecretStr | None = None
    store_table_prefix: str = "trollama_"


class ServiceSettings(BaseSettings):
    """Base for every service's settings object."""

    model_config = SettingsConfigDict(
        env_file=REPO_ROOT / ".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
    )

    #: Names of the fields that hold secrets; subclasses extend this.
    secret_fields: ClassVar[tuple[str, ...]] = ()

    dev_mode: bool = False
    log_level: str = "INFO"
    log_json: bool = True
    #: Ship every log line to the logging service (spooled to disk while it is down).
    log_shipping: bool = True
    log_service_host: str = "127.0.0.1"
    log_service_port: int = 9999
    log_spool_dir: Path = REPO_ROOT / "logs" / "spool"
    store: StoreSettings = Field(default_factory=StoreSettings)

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> ServiceSettings:
        if self.dev_mode:
            return self
        for name in self.secret_fields:
            value = getattr(self, name)
            raw = value.get_secret_value() if isinstance(value, SecretStr) else value
            if raw is None or str(raw).strip().lower() in PLACEHOLDER_SECRETS:
                raise InsecureSettingError(
                    f"{name.upper()} is unset or a placeholder; set a real secret "
                    "(or DEV_MODE=true for local development)"
                )
            if len(str(raw)) < MIN_SECRET_CHARS:
                raise InsecureSettingError(
                    f"{name.upper()} is shorter than {MIN_SECRET_CHARS} characters"
                )
        return self

    def public_dump(self) -> dict[str, Any]:
        """The settings with every secret masked, safe to log or show."""
        return self.model_dump(mode="json")


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def refusal(exc: ValidationError) -> str:
    """Why settings were refused, in one line, never quoting a value."""
    return "; ".join(str(error["msg"]) for error in exc.errors(include_input=False))


def load_settings(cls: type[SettingsT], program: str) -> SettingsT | None:
    """The settings from the environment, or None after one line on stderr saying why not."""
    try:
        return cls()
    except ValidationError as exc:
        print(f"{program}: configuration refused: {refusal(exc)}", file=sys.stderr)
        return None
