"""Profiles hold the reference README's rosters, limits and assignments."""

from __future__ import annotations

from pathlib import Path

import pytest

from trollama.brain.routing.profiles import (
    PROFILES_PATH,
    Priority,
    ProfileError,
    UnknownModel,
    load_profile,
    profile_names,
)
from trollama.brain.routing.prompt_files import ROUTER_PROMPT_PATH, read_prompt, system_prompt_for
from trollama.brain.routing.routes import TOOL_ROUTES, Route, UnknownRoute, parse_route

EAGLE3 = "gpt-oss-120b-eagle3"

# route -> model, then router, summarization, embedding, post-processing.
EXPECTED = {
    "conservative": (
        {
            Route.SELF_HANDLE: "gpt-oss:20b",
            Route.MATH: "rnj-1:8b",
            Route.SIMPLE_CODE: "rnj-1:8b",
            Route.COMPLEX_CODE: "ministral-3:14b",
            Route.REASONING: "gpt-oss:20b",
            Route.RESEARCH: "gpt-oss:20b",
            Route.VISION: "ministral-3:14b",
        },
        ("gpt-oss:20b", "gpt-oss:20b", "qwen3-embedding:4b", "ministral-3:14b"),
    ),
    "balanced": (
        {
            Route.SELF_HANDLE: "gpt-oss:20b",
            Route.MATH: "gpt-oss:120b",
            Route.SIMPLE_CODE: "rnj-1:8b",
            Route.COMPLEX_CODE: "gpt-oss:120b",
            Route.REASONING: "gpt-oss:120b",
            Route.RESEARCH: "gpt-oss:120b",
            Route.VISION: "ministral-3:14b",
        },
        ("gpt-oss:20b", "gpt-oss:20b", "qwen3-embedding:4b", "ministral-3:14b"),
    ),
    "performance": (
        {route: EAGLE3 for route in Route if route is not Route.VISION}
        | {Route.VISION: "ministral-3:14b"},
        (EAGLE3, EAGLE3, "qwen3-embedding:4b", "ministral-3:14b"),
    ),
}


def test_the_three_profiles_exist() -> None:
    assert profile_names() == ("balanced", "conservative", "performance")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_route_and_task_assignments_follow_the_reference(name: str) -> None:
    routes, (router, summarization, embedding, post) = EXPECTED[name]
    profile = load_profile(name)
    assert {route: profile.model_for(route) for route in Route} == routes
    assert profile.router_model == router
    assert profile.summarization_model == summarization
    assert profile.embedding_model == embedding
    assert profile.post_processing_model == post


def test_rosters_match_the_reference() -> None:
    conservative = set(load_profile("conservative").roster)
    assert conservative == {
        "gpt-oss:20b",
        "rnj-1:8b",
        "ministral-3:14b",
        "deepseek-ocr:3b",
        "qwen3-embedding:4b",
    }
    balanced = set(load_profile("balanced").roster)
    assert balanced - conservative == {
        "gpt-oss:120b",
        "devstral-2:123b",
        "deepseek-r1:70b",
        "devstral-small-2:24b",
        "nemotron-3-nano:30b",
    }
    assert set(load_profile("performance").roster) == {
        EAGLE3,
        "ministral-3:14b",
        "qwen3-embedding:4b",
    }


@pytest.mark.parametrize(
    ("name", "soft", "hard", "reserved"),
    [("conservative", 12, 14, 0), ("balanced", 100, 110, 0), ("performance", 10, 12, 84)],
)
def test_vram_limits(name: str, soft: float, hard: float, reserved: float) -> None:
    profile = load_profile(name)
    assert (profile.vram_soft_limit_gb, profile.vram_hard_limit_gb) == (soft, hard)
    assert profile.openai_reserved_gb == reserved


def test_backends_sizes_and_capabilities() -> None:
    performance = load_profile("performance")
    assert performance.backend_for(EAGLE3) == "openai"
    assert performance.backend_for("ministral-3:14b") == "ollama"
    eagle = performance.spec(EAGLE3)
    assert eagle.size_gb == 84
    assert eagle.capabilities.tools
    assert not eagle.capabilities.supports_thinking
    balanced = load_profile("balanced")
    assert balanced.spec("deepseek-r1:70b").capabilities.thinking == "boolean"
    assert balanced.spec("gpt-oss:20b").capabilities.thinking == "level"
    assert not balanced.spec("deepseek-r1:70b").capabilities.tools
    assert balanced.spec("deepseek-ocr:3b").capabilities.vision
    assert balanced.spec("rnj-1:8b").size_gb == pytest.approx(5.1)


def test_priorities_protect_the_router_and_eagle3() -> None:
    assert load_profile("performance").spec(EAGLE3).priority is Priority.CRITICAL
    for name in ("conservative", "balanced"):
        profile = load_profile(name)
        assert profile.spec(profile.router_model).priority is Priority.HIGH
        others = [s.priority for m, s in profile.roster.items() if m != profile.router_model]
        assert max(others) < Priority.HIGH


def test_models_for_autocomplete_leave_out_embedding_models() -> None:
    profile = load_profile("conservative")
    assert "qwen3-embedding:4b" in profile.roster
    assert "qwen3-embedding:4b" not in profile.models
    assert profile.models[0] == "gpt-oss:20b"
    assert len(profile.models) == 4


def test_unknown_profile_names_the_valid_ones() -> None:
    with pytest.raises(ProfileError, match="balanced, conservative, performance"):
        load_profile("turbo")
    assert load_profile(" Balanced ").name == "balanced"


def test_unknown_model_is_a_clear_error() -> None:
    profile = load_profile("conservative")
    assert not profile.has_model("gpt-oss:120b")
    with pytest.raises(UnknownModel, match=r"'gpt-oss:120b' is not in the 'conservative'"):
        profile.backend_for("gpt-oss:120b")


def _write_variant(tmp_path: Path, old: str, new: str) -> Path:
    text = PROFILES_PATH.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "profiles.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_a_profile_assigning_a_model_outside_its_roster_is_refused(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, 'MATH = "rnj-1:8b"', 'MATH = "gpt-oss:120b"')
    with pytest.raises(ProfileError, match="not in its roster"):
        load_profile("conservative", path=path)


def test_a_profile_missing_a_route_is_refused(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, 'MATH = "rnj-1:8b"\n', "")
    with pytest.raises(ProfileError, match="no model for routes"):
        load_profile("conservative", path=path)


def test_an_unknown_priority_is_refused(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, '"rnj-1:8b" = "NORMAL"', '"rnj-1:8b" = "URGENT"')
    with pytest.raises(ProfileError, match="unknown priority"):
        load_profile("conservative", path=path)


def test_route_names_parse_leniently() -> None:
    assert parse_route("self-handle") is Route.SELF_HANDLE
    assert parse_route(" simple code ") is Route.SIMPLE_CODE
    with pytest.raises(UnknownRoute, match="valid routes: SELF_HANDLE"):
        parse_route("CHAT")


def test_research_and_reasoning_use_tools() -> None:
    assert {Route.RESEARCH, Route.REASONING} == TOOL_ROUTES
    assert Route.RESEARCH.uses_tools
    assert not Route.MATH.uses_tools


def test_every_route_has_a_system_prompt() -> None:
    prompts = {route: " ".join(system_prompt_for(route).split()) for route in Route}
    assert all(len(text) > 100 for text in prompts.values())
    assert "Final answer" in prompts[Route.MATH]
    for route in (Route.SIMPLE_CODE, Route.COMPLEX_CODE):
        assert "```" in prompts[route]
        assert "language tag" in prompts[route]
    assert "cannot browse" in prompts[Route.RESEARCH]
    assert "Answer with exactly one route name" in read_prompt(ROUTER_PROMPT_PATH)
