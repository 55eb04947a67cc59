"""Discord's documented limits, enforced like the real API (400 + error JSON).

Each check returns Discord's error body, or ``None`` when the input is valid.
"""

from __future__ import annotations

import re
from typing import Any

from trollama.testkit.fake_discord.payloads import Json, error, field_error

#: Characters in a message's content.
MAX_MESSAGE_CHARACTERS = 2000
#: Embeds in one message.
MAX_EMBEDS = 10
#: Characters across all of a message's embeds.
MAX_EMBED_TOTAL_CHARACTERS = 6000
#: Characters per embed part.
EMBED_PART_LIMITS: dict[str, int] = {"title": 256, "description": 4096}
#: Fields per embed and characters per field name / value.
MAX_EMBED_FIELDS = 25
MAX_EMBED_FIELD_NAME = 256
MAX_EMBED_FIELD_VALUE = 1024
#: Files in one message.
MAX_FILES_PER_MESSAGE = 10
#: Bytes of all files in one request (Discord's default upload limit, 10 MiB).
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: Characters in a thread name.
MAX_THREAD_NAME = 100
#: Action rows in one message, and components in one row.
MAX_ACTION_ROWS = 5
MAX_ROW_COMPONENTS = 5
#: Characters in a component's ``custom_id`` and a button's label.
MAX_CUSTOM_ID = 100
MAX_BUTTON_LABEL = 80
#: Component types: action row, button; button style "link" (no custom_id).
ACTION_ROW, BUTTON, LINK_STYLE = 1, 2, 5
#: Minutes a thread may be set to auto-archive after.
AUTO_ARCHIVE_MINUTES = (60, 1440, 4320, 10080)
#: Application command limits.
MAX_COMMANDS = 100
MAX_COMMAND_NAME = 32
MAX_COMMAND_DESCRIPTION = 100
MAX_COMMAND_OPTIONS = 25
MAX_CHOICES = 25
MAX_CHOICE_NAME = 100
MAX_CHOICE_STRING_VALUE = 100

_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")
_SUBCOMMAND_TYPES = (1, 2)

EMPTY_MESSAGE = error(50006, "Cannot send an empty message")
TOO_LARGE = error(40005, "Request entity too large")


def too_long(path: str, limit: int) -> Json:
    return field_error(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def message_body(body: Json, file_sizes: list[int]) -> Json | None:
    """Check a create or edit message body (content, embeds, files)."""
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        return field_error("content", "BASE_TYPE_STRING", "Must be a string.")
    if content is not None and len(content) > MAX_MESSAGE_CHARACTERS:
        return too_long("content", MAX_MESSAGE_CHARACTERS)
    if len(file_sizes) > MAX_FILES_PER_MESSAGE:
        return field_error("files", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    if sum(file_sizes) > MAX_UPLOAD_BYTES:
        return TOO_LARGE
    return embeds(body.get("embeds")) or components(body.get("components"))


def embeds(value: Any) -> Json | None:
    """Check the ``embeds`` list of a message body."""
    if value is None:
        return None
    if len(value) > MAX_EMBEDS:
        return too_long("embeds", MAX_EMBEDS)
    total = 0
    for index, embed in enumerate(value):
        problem = _embed(index, embed)
        if problem is not None:
            return problem
        total += _embed_characters(embed)
    if total > MAX_EMBED_TOTAL_CHARACTERS:
        return field_error(
            "embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
        )
    return None


def _embed(index: int, embed: Json) -> Json | None:
    for part, limit in EMBED_PART_LIMITS.items():
        if len(embed.get(part) or "") > limit:
            return too_long(f"embeds.{index}.{part}", limit)
    fields = embed.get("fields") or []
    if len(fields) > MAX_EMBED_FIELDS:
        return too_long(f"embeds.{index}.fields", MAX_EMBED_FIELDS)
    for number, item in enumerate(fields):
        if len(item.get("name") or "") > MAX_EMBED_FIELD_NAME:
            return too_long(f"embeds.{index}.fields.{number}.name", MAX_EMBED_FIELD_NAME)
        if len(item.get("value") or "") > MAX_EMBED_FIELD_VALUE:
            return too_long(f"embeds.{index}.fields.{number}.value", MAX_EMBED_FIELD_VALUE)
    return None


def _embed_characters(embed: Json) -> int:
    fields = embed.get("fields") or []
    parts = [embed.get("title"), embed.get("description")]
    parts += [(embed.get("footer") or {}).get("text"), (embed.get("author") or {}).get("name")]
    parts += [f.get("name") for f in fields] + [f.get("value") for f in fields]
    return sum(len(p or "") for p in parts)


def components(value: Any) -> Json | None:
    """Check a message's action rows of buttons (other component kinds pass unchecked)."""
    if not value:
        return None
    rows = [r for r in value if r.get("type") == ACTION_ROW]
    if len(rows) > MAX_ACTION_ROWS:
        return too_long("components", MAX_ACTION_ROWS)
    seen: set[str] = set()
    for index, row in enumerate(value):
        problem = _row(f"components.{index}", row, seen)
        if problem is not None:
            return problem
    return None


def _row(path: str, row: Json, seen: set[str]) -> Json | None:
    if row.get("type") != ACTION_ROW:
        return None
    items = row.get("components") or []
    if len(items) > MAX_ROW_COMPONENTS:
        return too_long(f"{path}.components", MAX_ROW_COMPONENTS)
    for number, item in enumerate(items):
        problem = _button(f"{path}.components.{number}", item, seen)
        if problem is not None:
            return problem
    return None


def _button(path: str, item: Json, seen: set[str]) -> Json | None:
    if item.get("type") != BUTTON:
        return None
    if len(item.get("label") or "") > MAX_BUTTON_LABEL:
        return too_long(f"{path}.label", MAX_BUTTON_LABEL)
    if item.get("style") == LINK_STYLE:
        return None
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return field_error(f"{path}.custom_id", "BASE_TYPE_REQUIRED", "This field is required")
    if len(custom_id) > MAX_CUSTOM_ID:
        return too_long(f"{path}.custom_id", MAX_CUSTOM_ID)
    if custom_id in seen:
        return field_error(
            "components",
            "COMPONENT_CUSTOM_ID_DUPLICATED",
            "Component custom id cannot be duplicated",
        )
    seen.add(custom_id)
    return None


def thread_body(body: Json) -> Json | None:
    """Check a start-thread body (name, auto-archive duration)."""
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        return field_error("name", "BASE_TYPE_REQUIRED", "This field is required")
    if len(name) > MAX_THREAD_NAME:
        return too_long("name", MAX_THREAD_NAME)
    duration = body.get("auto_archive_duration")
    if duration is not None and duration not in AUTO_ARCHIVE_MINUTES:
        return field_error(
            "auto_archive_duration",
            "BASE_TYPE_CHOICES",
            f"Value must be one of {AUTO_ARCHIVE_MINUTES}.",
        )
    return None


def commands(value: Any) -> Json | None:
    """Check a bulk overwrite of application commands."""
    if not isinstance(value, list):
        return field_error("_", "BASE_TYPE_ARRAY", "Must be an array.")
    if len(value) > MAX_COMMANDS:
        return too_long("_", MAX_COMMANDS)
    keys = [(c.get("type", 1), c.get("name")) for c in value]
    if len(set(keys)) != len(keys):
        return field_error(
            "_", "APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique"
        )
    for index, command in enumerate(value):
        problem = _command(str(index), command)
        if problem is not None:
            return problem
    return None


def _command(path: str, command: Json) -> Json | None:
    chat_input = command.get("type", 1) == 1
    problem = _name_and_description(path, command, slash=chat_input)
    if problem is None and chat_input:
        problem = _options(f"{path}.options", command.get("options") or [])
    return problem


def _name_and_description(path: str, item: Json, *, slash: bool) -> Json | None:
    name = item.get("name") or ""
    if slash and (not _COMMAND_NAME.match(name) or name != name.lower()):
        return field_error(
            f"{path}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
        )
    if not slash and not 1 <= len(name) <= MAX_COMMAND_NAME:
        return too_long(f"{path}.name", MAX_COMMAND_NAME)
    description = item.get("description") or ""
    if slash and not 1 <= len(description) <= MAX_COMMAND_DESCRIPTION:
        return field_error(
            f"{path}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )
    return None


def _options(path: str, options: list[Json]) -> Json | None:
    if len(options) > MAX_COMMAND_OPTIONS:
        return too_long(path, MAX_COMMAND_OPTIONS)
    required = [bool(o.get("required")) for o in options if o.get("type") not in _SUBCOMMAND_TYPES]
    if required != sorted(required, reverse=True):
        return field_error(
            path,
            "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
            "Required options must be placed before non-required options",
        )
    for index, option in enumerate(options):
        problem = _option(f"{path}.{index}", option)
        if problem is not None:
            return problem
    return None


def _option(path: str, option: Json) -> Json | None:
    problem = _name_and_description(path, option, slash=True)
    if problem is not None:
        return problem
    if option.get("type") in _SUBCOMMAND_TYPES:
        return _options(f"{path}.options", option.get("options") or [])
    if option.get("autocomplete") and option.get("choices"):
        return field_error(
            path,
            "APPLICATION_COMMAND_OPTION_CHOICES_AUTOCOMPLETE",
            "Autocomplete cannot be set with choices",
        )
    return choices(f"{path}.choices", option.get("choices") or [])


def choices(path: str, value: list[Json]) -> Json | None:
    """Check command option choices or autocomplete results."""
    if len(value) > MAX_CHOICES:
        return too_long(path, MAX_CHOICES)
    for index, choice in enumerate(value):
        name = choice.get("name") or ""
        if not 1 <= len(name) <= MAX_CHOICE_NAME:
            return field_error(
                f"{path}.{index}.name",
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        item = choice.get("value")
        if isinstance(item, str) and len(item) > MAX_CHOICE_STRING_VALUE:
            return too_long(f"{path}.{index}.value", MAX_CHOICE_STRING_VALUE)
    return None
