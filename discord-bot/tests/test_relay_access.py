"""Allow and block lists, and the small text rules of triggers."""

from __future__ import annotations

from trollama.relay.access import AccessRules, parse_ids
from trollama.relay.triggers import THREAD_NAME_LIMIT, strip_mentions, thread_name


def test_parse_ids_ignores_junk() -> None:
    assert parse_ids("1, 2 x3  4;DROP") == frozenset({1, 2})


def test_empty_rules_allow_everyone() -> None:
    assert AccessRules().permits(1, [], [10])


def test_blocks_win_over_allows() -> None:
    rules = AccessRules(allowed_users=frozenset({1}), blocked_roles=frozenset({99}))
    assert rules.permits(1, [5], [10])
    assert not rules.permits(1, [99], [10])
    assert not rules.permits(2, [], [10])


def test_channel_rules_consider_a_threads_parent() -> None:
    rules = AccessRules(allowed_channels=frozenset({10}), blocked_channels=frozenset({11}))
    assert rules.permits(1, [], [555, 10])  # a thread inside channel 10
    assert not rules.permits(1, [], [555, 11])
    assert not rules.permits(1, [], [12])


def test_role_allow_list() -> None:
    rules = AccessRules(allowed_roles=frozenset({7}))
    assert rules.permits(1, [7, 8], [1]) and not rules.permits(1, [8], [1])


def test_mentions_are_stripped_and_thread_names_fit() -> None:
    assert strip_mentions("<@42> hello <@!42>there", 42) == "hello there"
    assert thread_name("  what is   2+2?\nsecond line") == "what is 2+2?"
    assert thread_name("") == "Conversation"
    long = thread_name("word " * 100)
    assert len(long) <= THREAD_NAME_LIMIT and long.endswith("…")
