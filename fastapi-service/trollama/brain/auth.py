"""Who is calling: the relay (shared secret) or a user (bearer JWT).

The relay speaks for many Discord users, so it is trusted to name the user on
each request. A JWT names exactly one user (``sub``) and whether they are an
admin (``adm``); requests made with it are always attributed to that user.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from enum import StrEnum

from jose import ExpiredSignatureError, JWTError, jwt

#: Lifetime of a token minted for development, in seconds.
DEV_TOKEN_TTL_SECONDS = 8 * 3600


class CallerKind(StrEnum):
    RELAY = "relay"
    USER = "user"


@dataclass(frozen=True)
class Caller:
    kind: CallerKind
    #: The user a JWT names; None for the relay.
    user_id: str | None = None
    is_admin: bool = False


class AuthError(Exception):
    """Authentication failed; the message is safe to return to the caller."""


def relay_secret_matches(given: str, expected: str) -> bool:
    """Constant-time comparison; an empty expected secret never matches."""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def mint_token(
    user_id: str,
    secret: str,
    *,
    algorithm: str = "HS256",
    admin: bool = False,
    ttl_seconds: int = DEV_TOKEN_TTL_SECONDS,
    now: float | None = None,
) -> str:
    """A signed token for ``user_id`` (the auth service mints the real ones)."""
    issued = int(time.time() if now is None else now)
    claims = {"sub": user_id, "adm": admin, "iat": issued, "exp": issued + ttl_seconds}
    return str(jwt.encode(claims, secret, algorithm=algorithm))


def decode_token(token: str, secret: str, *, algorithm: str = "HS256") -> Caller:
    """The caller a bearer token names, or AuthError saying why not."""
    try:
        claims = jwt.decode(token, secret, algorithms=[algorithm])
    except ExpiredSignatureError as exc:
        raise AuthError("token expired; log in again") from exc
    except JWTError as exc:
        raise AuthError("invalid token") from exc
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise AuthError("invalid token: no subject")
    return Caller(CallerKind.USER, user_id=subject, is_admin=claims.get("adm") is True)


def authenticate(
    authorization: str | None, *, relay_secret: str, jwt_secret: str, algorithm: str
) -> Caller:
    """Resolve an ``Authorization: Bearer …`` value to a caller."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise AuthError("missing bearer credentials")
    credential = authorization[len("bearer ") :].strip()
    if relay_secret_matches(credential, relay_secret):
        return Caller(CallerKind.RELAY, is_admin=True)
    return decode_token(credential, jwt_secret, algorithm=algorithm)
