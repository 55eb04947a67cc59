"""Every persona and memory repository, built together from one store."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trollama.brain.backends.base import ModelBackend
from trollama.brain.persona.channels import ChannelSettingsStore
from trollama.brain.persona.embedder import Embedder
from trollama.brain.persona.facts import MemoryFacts
from trollama.brain.persona.identity import (
    DEFAULT_IDENTITY_FILE,
    IdentityStore,
    read_identity_file,
)
from trollama.brain.persona.message_log import MessageLog
from trollama.brain.persona.profiles import UserProfiles
from trollama.brain.persona.relationships import Relationships
from trollama.brain.persona.state import GlobalState
from trollama.common.store.base import ItemStore

log = logging.getLogger(__name__)


@dataclass
class Persona:
    identity: IdentityStore
    profiles: UserProfiles
    facts: MemoryFacts
    relationships: Relationships
    state: GlobalState
    channels: ChannelSettingsStore
    log: MessageLog
    embedder: Embedder

    async def seed_identity(self, path: Path | None) -> bool:
        """Seed the identity from ``path`` (or the built-in file) unless it ever was."""
        entries = read_identity_file(path or DEFAULT_IDENTITY_FILE)
        seeded = await self.identity.seed(entries)
        if seeded:
            log.info("identity seeded", extra={"entries": len(entries)})
        return seeded


def build_persona(
    store: ItemStore,
    *,
    backend_for: Callable[[str], ModelBackend],
    embedding_model: str,
    embedding_timeout_seconds: float,
    embedding_dimensions: int | None = None,
    clock: Callable[[], float] = time.time,
) -> Persona:
    return Persona(
        identity=IdentityStore(store, clock=clock),
        profiles=UserProfiles(store, clock=clock),
        facts=MemoryFacts(store, clock=clock),
        relationships=Relationships(store, clock=clock),
        state=GlobalState(store, clock=clock),
        channels=ChannelSettingsStore(store, clock=clock),
        log=MessageLog(store, clock=clock),
        embedder=Embedder(
            backend_for,
            embedding_model,
            timeout_seconds=embedding_timeout_seconds,
            dimensions=embedding_dimensions,
        ),
    )
