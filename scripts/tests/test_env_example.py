"""`.env.example` documents every setting, so the operator's reference stays true.

Add each new service's settings class to ``SETTINGS_CLASSES``; the test then
fails until every one of its fields has a line in `.env.example`.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = REPO_ROOT / ".env.example"
START_SCRIPT = REPO_ROOT / "start.sh"

#: "module:Class" of every settings object whose fields must be documented.
SETTINGS_CLASSES = (
    "trollama.common.settings:StoreSettings",
    "trollama.brain.settings:BrainSettings",
    "trollama.relay.settings:RelaySettings",
    "trollama.logsink.settings:LogSinkSettings",
    "trollama.monitor.settings:MonitorSettings",
)


def _load(path: str) -> type[BaseSettings]:
    module_name, class_name = path.split(":")
    cls: object = getattr(importlib.import_module(module_name), class_name)
    assert isinstance(cls, type)
    assert issubclass(cls, BaseSettings), f"{path} is not a settings class"
    return cls


def _is_nested_settings(annotation: object) -> bool:
    """Fields holding another settings object are documented through that class."""
    return isinstance(annotation, type) and issubclass(annotation, BaseSettings)


def env_names(cls: type[BaseSettings]) -> list[str]:
    """The environment variable names of a settings class, upper case."""
    prefix = str(cls.model_config.get("env_prefix") or "")
    names = []
    for name, field in cls.model_fields.items():
        if _is_nested_settings(field.annotation):
            continue
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        names.append((alias or field.alias or f"{prefix}{name}").upper())
    return names


def documented_names(text: str) -> set[str]:
    """Names set in the example, commented (`# NAME=default`) or not."""
    return set(re.findall(r"^#?[ \t]*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def generated_secrets(script: str) -> list[str]:
    """The secrets start.sh writes into a new .env."""
    match = re.search(r"^GENERATED_SECRETS=\(([^)]*)\)", script, flags=re.MULTILINE)
    assert match, "start.sh no longer declares GENERATED_SECRETS=(...)"
    return match.group(1).split()


@pytest.mark.parametrize("class_path", SETTINGS_CLASSES)
def test_every_setting_is_in_env_example(class_path: str) -> None:
    documented = documented_names(ENV_EXAMPLE.read_text(encoding="utf-8"))
    missing = [name for name in env_names(_load(class_path)) if name not in documented]
    assert not missing, f".env.example lacks {missing} (fields of {class_path})"


def test_nested_settings_are_skipped_but_their_fields_documented() -> None:
    names = env_names(_load("trollama.brain.settings:BrainSettings"))
    assert "STORE" not in names
    assert "BRAIN_PORT" in names
    assert "DEV_MODE" in names


def test_generated_secrets_are_empty_placeholders() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for name in generated_secrets(START_SCRIPT.read_text(encoding="utf-8")):
        assert f"{name}=" in lines, f"start.sh fills {name}= but .env.example lacks that line"


def test_example_holds_no_secret_values() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for name in generated_secrets(START_SCRIPT.read_text(encoding="utf-8")):
        assert re.search(rf"^{name}=\S", text, flags=re.MULTILINE) is None
