"""The scripting model shared by the fake model servers."""

from __future__ import annotations

import pytest

from trollama.testkit.script import (
    ROUTE_PROMPT_PHRASE,
    ChatView,
    ModelScript,
    Reply,
    build_view,
    route_for,
    tokenize,
)


def _view(user: str = "hello", *, model: str = "gpt-oss:20b", system: str = "") -> ChatView:
    return build_view(model, [("system", system), ("user", user)])


def test_tokens_keep_their_trailing_space_and_join_back() -> None:
    text = "Hello  there,\nfriend. "
    tokens = tokenize(text)
    assert tokens[:2] == ["Hello  ", "there,\n"]
    assert "".join(tokens) == text


def test_first_matching_rule_wins_and_times_limits_it() -> None:
    script = ModelScript(default=Reply(text="default"))
    script.add(Reply(text="once"), user_contains="weather", times=1)
    script.add(Reply(text="always"), user_contains="weather")
    assert script.reply_for(_view("what weather?")).text == "once"
    assert script.reply_for(_view("what weather?")).text == "always"
    assert script.reply_for(_view("something else")).text == "default"


def test_rules_match_on_model_and_system_prompt() -> None:
    script = ModelScript(default=Reply(text="default"))
    script.add(Reply(text="big"), model="gpt-oss:120b")
    script.add(Reply(text="persona"), system_contains="You are Trolly")
    assert script.reply_for(_view(model="gpt-oss:120b")).text == "big"
    assert script.reply_for(_view(system="You are Trolly, a bot")).text == "persona"
    assert script.reply_for(_view()).text == "default"


def test_a_rule_can_wait_for_a_tool_result() -> None:
    script = ModelScript()
    script.add(Reply(text="done"), tool_result_contains="42")
    view = build_view("m", [("user", "compute"), ("assistant", ""), ("tool", "42")])
    assert view.last_tool_result == "42"
    assert script.reply_for(view).text == "done"


@pytest.mark.parametrize(
    ("question", "route"),
    [
        ("Solve the equation x^2 = 4", "MATH"),
        ("What is the integral of sin x?", "MATH"),
        ("Write a function that reverses a list", "SIMPLE_CODE"),
        ("Design a system for a chat service with a clean architecture", "COMPLEX_CODE"),
        ("Search the latest news about GPUs", "RESEARCH"),
        ("Why is the sky blue? Compare both theories", "REASONING"),
        ("hey, how are you?", "SELF_HANDLE"),
    ],
)
def test_demo_routes_by_keyword(question: str, route: str) -> None:
    assert route_for(question) == route
    view = _view(question, system=f"Classify the request. {ROUTE_PROMPT_PHRASE}.")
    assert ModelScript().reply_for(view).text == route


def test_demo_answer_says_it_is_simulated_and_is_deterministic() -> None:
    script = ModelScript(demo_ttft_seconds=0.2, demo_tokens_per_second=30.0)
    first = script.reply_for(_view("Tell me about otters"))
    assert first.text.startswith("[simulated model gpt-oss:20b]")
    assert "simulated model server" in first.text
    assert "Tell me about otters" in first.text
    assert (first.ttft_seconds, first.tokens_per_second) == (0.2, 30.0)
    assert script.reply_for(_view("Tell me about otters")) == first


def test_reply_helpers_build_tool_calls_and_errors() -> None:
    calling = Reply.calling(("calculate", {"expression": "1+1"}))
    assert calling.tool_calls[0].name == "calculate"
    assert dict(calling.tool_calls[0].arguments) == {"expression": "1+1"}
    pairs = Reply(tool_calls=[("current_time", {})])  # type: ignore[arg-type]
    assert pairs.tool_calls[0].name == "current_time"
    failing = Reply.failing(500, "boom")
    assert failing.error is not None
    assert (failing.error.status, failing.error.message) == (500, "boom")
