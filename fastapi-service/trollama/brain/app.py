"""The FastAPI application: wiring of services, routes and lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from trollama.brain.api import admin_persona, community, http, message_log, outbox, user_memory, ws
from trollama.brain.api.errors import status_mapped
from trollama.brain.api.metrics import router as metrics_router
from trollama.brain.api.ws import STORE_DOWN_MESSAGE
from trollama.brain.community.polls import PollError
from trollama.brain.persona.errors import PersonaError
from trollama.brain.services import Services
from trollama.common.http_metrics import HttpMetricsMiddleware
from trollama.common.store.base import StoreError


def create_app(services: Services) -> FastAPI:
    """An app serving ``services``; they start and stop with it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    app = FastAPI(
        title="Trollama brain",
        version=http.VERSION,
        summary="Queue, route and stream answers from local models.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.add_exception_handler(StoreError, _store_unavailable)
    app.add_exception_handler(PersonaError, status_mapped(admin_persona.PERSONA_ERROR_STATUS))
    app.add_exception_handler(PollError, status_mapped(community.POLL_ERROR_STATUS))
    app.include_router(http.router)
    app.include_router(ws.router)
    app.include_router(community.router)
    app.include_router(admin_persona.router)
    app.include_router(user_memory.router)
    app.include_router(message_log.router)
    app.include_router(outbox.router)
    app.include_router(metrics_router)
    app.add_middleware(HttpMetricsMiddleware, metrics=services.metrics.http)
    return app


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """A store failure is the service's problem, said plainly (never a stack trace)."""
    logging.getLogger(__name__).error("store failure serving %s", request.url.path, exc_info=exc)
    return JSONResponse(
        {"detail": STORE_DOWN_MESSAGE}, status_code=503, headers={"Retry-After": "30"}
    )
