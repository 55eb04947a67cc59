"""Secrets fail closed outside dev mode, and never appear in errors or dumps."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import SecretStr, ValidationError

from trollama.common.settings import ServiceSettings


class DemoSettings(ServiceSettings):
    secret_fields: ClassVar[tuple[str, ...]] = ("api_secret",)
    api_secret: SecretStr = SecretStr("")


@pytest.mark.parametrize("value", ["", "changeme", "change-me-in-production", "  SECRET "])
def test_placeholder_secret_refused_naming_the_setting(value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        DemoSettings(_env_file=None, api_secret=value)
    assert "API_SECRET" in str(refused.value)


def test_short_secret_refused_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as refused:
        DemoSettings(_env_file=None, api_secret="tiny-but-real")
    assert "shorter than" in str(refused.value)
    assert "tiny-but-real" not in str(refused.value)


def test_dev_mode_accepts_defaults() -> None:
    assert DemoSettings(_env_file=None, dev_mode=True).api_secret.get_secret_value() == ""


def test_real_secret_accepted_and_masked_in_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_SECRET", "a-real-secret-of-enough-length")
    settings = DemoSettings(_env_file=None)
    assert settings.api_secret.get_secret_value() == "a-real-secret-of-enough-length"
    assert "a-real-secret" not in repr(settings)
    assert "a-real-secret" not in str(settings.public_dump())
