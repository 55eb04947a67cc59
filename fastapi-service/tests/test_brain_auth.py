"""Relay secret and JWT authentication."""

from __future__ import annotations

import pytest

from trollama.brain.auth import (
    AuthError,
    CallerKind,
    authenticate,
    decode_token,
    mint_token,
    relay_secret_matches,
)

SECRET = "jwt-secret-for-tests-0123456789"
RELAY = "relay-secret-for-tests-0123456789"


def auth(header: str | None) -> object:
    return authenticate(header, relay_secret=RELAY, jwt_secret=SECRET, algorithm="HS256")


def test_relay_secret_and_user_token_resolve_to_callers() -> None:
    relay = auth(f"Bearer {RELAY}")
    user = auth(f"Bearer {mint_token('ada', SECRET, admin=True)}")
    assert relay.kind is CallerKind.RELAY  # type: ignore[attr-defined]
    assert (user.kind, user.user_id, user.is_admin) == (CallerKind.USER, "ada", True)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("Basic abc", "missing"),
        ("Bearer not-a-jwt", "invalid token"),
        ("Bearer " + mint_token("ada", "another-secret-entirely-000"), "invalid token"),
        ("Bearer " + mint_token("ada", SECRET, ttl_seconds=-1), "expired"),
    ],
)
def test_bad_credentials_are_refused_with_a_reason(header: str | None, reason: str) -> None:
    with pytest.raises(AuthError, match=reason):
        auth(header)


def test_empty_relay_secret_never_matches() -> None:
    assert not relay_secret_matches("", "")
    assert not relay_secret_matches("x", "")


def test_token_without_subject_is_invalid() -> None:
    from jose import jwt

    token = jwt.encode({"exp": 9_999_999_999}, SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="subject"):
        decode_token(token, SECRET)
