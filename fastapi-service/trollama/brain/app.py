"""The FastAPI application: wiring of services, routes and lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from trollama.brain.api import http, ws
from trollama.brain.services import Services


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
    app.include_router(http.router)
    app.include_router(ws.router)
    return app
