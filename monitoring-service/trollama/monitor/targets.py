"""The services the monitor polls, parsed from ``MONITOR_TARGETS``.

The setting is a comma-separated list of ``name=url`` pairs, each URL a
service's health endpoint, e.g. ``brain=http://127.0.0.1:8001/health``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Most targets one monitor polls (each poll round fans out to all of them).
MAX_TARGETS = 50
#: A target name: letters, digits, dash and underscore, up to 40 characters.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


@dataclass(frozen=True)
class Target:
    """One polled service: its display name and its health URL."""

    name: str
    url: str


def parse_targets(raw: str) -> list[Target]:
    """The targets in ``raw``; ValueError naming the first bad entry."""
    entries = [part.strip() for part in raw.split(",") if part.strip()]
    if not entries:
        raise ValueError("MONITOR_TARGETS lists no target")
    if len(entries) > MAX_TARGETS:
        raise ValueError(f"MONITOR_TARGETS lists more than {MAX_TARGETS} targets")
    targets = [_parse_entry(entry) for entry in entries]
    names = [t.name for t in targets]
    if len(names) != len(set(names)):
        raise ValueError("MONITOR_TARGETS names a target twice")
    return targets


def _parse_entry(entry: str) -> Target:
    name, sep, url = entry.partition("=")
    name, url = name.strip(), url.strip()
    if not sep or not NAME_PATTERN.match(name):
        raise ValueError("MONITOR_TARGETS has an entry that is not name=url")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"MONITOR_TARGETS entry {name!r} needs an http:// or https:// URL")
    return Target(name=name, url=url)
