"""VRAM profiles: which models a machine runs and which model serves each route.

The data lives in ``profiles.toml`` beside this module (the one place to edit
models); this module loads and checks it. ``VRAM_PROFILE`` picks one of
:func:`profile_names`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from enum import IntEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from trollama.brain.routing.routes import Route

#: The packaged model catalogue and profiles.
PROFILES_PATH = Path(__file__).with_name("profiles.toml")
#: Catalogue files kept parsed at once (the packaged one, plus test files).
MAX_CACHED_CATALOGUES = 4

Backend = Literal["ollama", "openai"]
Thinking = Literal["none", "boolean", "level"]
ModelKind = Literal["chat", "embedding"]


class Priority(IntEnum):
    """How much the VRAM orchestrator protects a loaded model (higher = evicted later)."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3


def _priority_from_name(value: object) -> object:
    if isinstance(value, str):
        try:
            return Priority[value.upper()]
        except KeyError:
            names = ", ".join(p.name for p in Priority)
            raise ValueError(f"unknown priority {value!r}; valid: {names}") from None
    return value


PriorityName = Annotated[Priority, BeforeValidator(_priority_from_name)]


class ProfileError(ValueError):
    """The profile name is unknown or the profiles file is inconsistent."""


class UnknownModel(KeyError):
    """A model that is not in the active profile's roster."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown model"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Capabilities(_Strict):
    """What a model can do."""

    tools: bool
    thinking: Thinking
    vision: bool

    @property
    def supports_thinking(self) -> bool:
        return self.thinking != "none"


class ModelSpec(_Strict):
    """One model of a profile's roster."""

    name: str
    size_gb: float = Field(gt=0)
    backend: Backend
    kind: ModelKind
    capabilities: Capabilities
    priority: Priority


class _CatalogueEntry(_Strict):
    size_gb: float = Field(gt=0)
    backend: Backend
    kind: ModelKind = "chat"
    tools: bool
    thinking: Thinking
    vision: bool


class _Tasks(_Strict):
    router: str
    summarization: str
    embedding: str
    post_processing: str


class _ProfileEntry(_Strict):
    description: str
    vram_soft_limit_gb: float = Field(gt=0)
    vram_hard_limit_gb: float = Field(gt=0)
    openai_reserved_gb: float = Field(ge=0)
    roster: dict[str, PriorityName]
    routes: dict[Route, str]
    tasks: _Tasks


class _Catalogue(_Strict):
    models: dict[str, _CatalogueEntry]
    profiles: dict[str, _ProfileEntry]


class Profile(_Strict):
    """A machine profile: its model roster, VRAM limits and model assignments."""

    name: str
    description: str
    #: Ollama models above this total (GB) start being evicted.
    vram_soft_limit_gb: float
    #: Ollama models never exceed this total (GB).
    vram_hard_limit_gb: float
    #: Memory (GB) held by the OpenAI-compatible server, outside the limits above.
    openai_reserved_gb: float
    roster: Mapping[str, ModelSpec]
    routes: Mapping[Route, str]
    router_model: str
    summarization_model: str
    embedding_model: str
    post_processing_model: str

    @property
    def models(self) -> list[str]:
        """Models a user may pick for chat (``/model`` autocomplete), roster order."""
        return [name for name, spec in self.roster.items() if spec.kind == "chat"]

    def model_for(self, route: Route) -> str:
        """The model that serves ``route`` in this profile."""
        return self.routes[route]

    def has_model(self, model: str) -> bool:
        return model in self.roster

    def spec(self, model: str) -> ModelSpec:
        """The roster entry of ``model``; :class:`UnknownModel` when absent."""
        try:
            return self.roster[model]
        except KeyError:
            raise UnknownModel(
                f"model {model!r} is not in the {self.name!r} profile; "
                f"available: {', '.join(self.roster)}"
            ) from None

    def backend_for(self, model: str) -> str:
        """``"ollama"`` or ``"openai"``: the server kind that serves ``model``."""
        return self.spec(model).backend


def profile_names(path: Path = PROFILES_PATH) -> tuple[str, ...]:
    """The profiles defined in the profiles file, sorted."""
    return tuple(sorted(_load_catalogue(path).profiles))


def load_profile(name: str, *, path: Path = PROFILES_PATH) -> Profile:
    """The profile called ``name`` (case-insensitive).

    Raises :class:`ProfileError` naming the valid profiles when it is unknown,
    or saying what is inconsistent in the file."""
    catalogue = _load_catalogue(path)
    key = name.strip().lower()
    entry = catalogue.profiles.get(key)
    if entry is None:
        valid = ", ".join(sorted(catalogue.profiles))
        raise ProfileError(f"unknown profile {name!r}; valid profiles: {valid}")
    return _build_profile(key, entry, catalogue.models)


@lru_cache(maxsize=MAX_CACHED_CATALOGUES)
def _load_catalogue(path: Path) -> _Catalogue:
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        return _Catalogue.model_validate(data)
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ProfileError(f"cannot load profiles from {path}: {exc}") from exc


def _build_profile(
    name: str, entry: _ProfileEntry, catalogue: Mapping[str, _CatalogueEntry]
) -> Profile:
    roster = {model: _spec(name, model, prio, catalogue) for model, prio in entry.roster.items()}
    profile = Profile(
        name=name,
        description=entry.description,
        vram_soft_limit_gb=entry.vram_soft_limit_gb,
        vram_hard_limit_gb=entry.vram_hard_limit_gb,
        openai_reserved_gb=entry.openai_reserved_gb,
        roster=roster,
        routes=entry.routes,
        router_model=entry.tasks.router,
        summarization_model=entry.tasks.summarization,
        embedding_model=entry.tasks.embedding,
        post_processing_model=entry.tasks.post_processing,
    )
    _check(profile)
    return profile


def _spec(
    profile: str, model: str, priority: Priority, catalogue: Mapping[str, _CatalogueEntry]
) -> ModelSpec:
    entry = catalogue.get(model)
    if entry is None:
        raise ProfileError(f"profile {profile!r}: model {model!r} is not in [models]")
    caps = Capabilities(tools=entry.tools, thinking=entry.thinking, vision=entry.vision)
    return ModelSpec(
        name=model,
        size_gb=entry.size_gb,
        backend=entry.backend,
        kind=entry.kind,
        capabilities=caps,
        priority=priority,
    )


def _check(profile: Profile) -> None:
    """Refuse a profile whose assignments cannot work."""
    missing = [r.value for r in Route if r not in profile.routes]
    if missing:
        raise ProfileError(f"profile {profile.name!r}: no model for routes {missing}")
    if profile.vram_soft_limit_gb > profile.vram_hard_limit_gb:
        raise ProfileError(f"profile {profile.name!r}: VRAM soft limit exceeds the hard limit")
    chat_tasks = [*profile.routes.values(), profile.router_model, profile.summarization_model]
    for model in [*chat_tasks, profile.post_processing_model, profile.embedding_model]:
        if not profile.has_model(model):
            raise ProfileError(f"profile {profile.name!r}: {model!r} is not in its roster")
    if any(profile.roster[m].kind != "chat" for m in chat_tasks):
        raise ProfileError(f"profile {profile.name!r}: an embedding model is assigned to chat")
    if not profile.roster[profile.model_for(Route.VISION)].capabilities.vision:
        raise ProfileError(f"profile {profile.name!r}: the VISION model cannot see images")
