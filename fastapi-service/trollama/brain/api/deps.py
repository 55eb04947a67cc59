"""FastAPI dependencies, as named ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from trollama.brain.auth import AuthError, Caller, CallerKind, authenticate
from trollama.brain.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def resolve_caller(services: Services, authorization: str | None) -> Caller:
    settings = services.settings
    return authenticate(
        authorization,
        relay_secret=settings.relay_shared_secret.get_secret_value(),
        jwt_secret=settings.jwt_secret_key.get_secret_value(),
        algorithm=settings.jwt_algorithm,
    )


def get_caller(
    services: ServicesDep, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    try:
        return resolve_caller(services, authorization)
    except AuthError as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from exc


CallerDep = Annotated[Caller, Depends(get_caller)]


def require_admin(caller: CallerDep) -> Caller:
    if not caller.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin rights required")
    return caller


AdminDep = Annotated[Caller, Depends(require_admin)]


def require_relay_or_admin(caller: CallerDep) -> Caller:
    if caller.kind is not CallerKind.RELAY and not caller.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "relay or admin rights required")
    return caller
