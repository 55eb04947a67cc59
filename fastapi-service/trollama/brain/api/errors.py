"""Domain errors as HTTP answers, registered once on the app (no try/except per route)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import Request, status
from fastapi.responses import JSONResponse

ExceptionHandler = Callable[[Request, Exception], Awaitable[JSONResponse]]


def status_mapped(
    statuses: Mapping[type[Exception], int], default: int = status.HTTP_400_BAD_REQUEST
) -> ExceptionHandler:
    """A handler answering ``{"detail": str(exc)}`` with the status of the first
    matching class in ``statuses`` (``default`` otherwise). The errors it serves
    must carry messages that are safe to show."""

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        codes = [code for kind, code in statuses.items() if isinstance(exc, kind)]
        return JSONResponse({"detail": str(exc)}, status_code=(codes or [default])[0])

    return handle
