"""REST endpoints: chat over HTTP, request status, conversations, admin, health."""

from __future__ import annotations

import dataclasses
import functools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Response, status
from fastapi.responses import JSONResponse, StreamingResponse

from trollama.brain.admission import MaintenanceState
from trollama.brain.api.deps import (
    AdminDep,
    CallerDep,
    ServicesDep,
    require_relay_or_admin,
)
from trollama.brain.api.schemas import (
    ChatRequest,
    ConversationAction,
    ConversationResult,
    ErrorResponse,
    ModelInfo,
    ModelPreference,
    ModelsResponse,
    RequestStatus,
    StreamLine,
)
from trollama.brain.auth import Caller, CallerKind
from trollama.brain.backends.base import ModelBackend
from trollama.brain.context.summarizer import SummarizerError
from trollama.brain.gateway import Watch
from trollama.brain.queue import QueueStats
from trollama.brain.services import Services
from trollama.common.health import (
    ComponentHealth,
    HealthReport,
    HealthStatus,
    overall,
    run_checks,
)
from trollama.common.logging import request_id_var
from trollama.common.protocol import DoneFrame, ErrorCode, ErrorFrame, RequestFrame

router = APIRouter()
VERSION = "0.1.0"
SERVICE_NAME = "trollama-brain"

#: HTTP status for each error a submission can meet before it is queued.
SUBMIT_ERROR_STATUS = {
    ErrorCode.MAINTENANCE: status.HTTP_503_SERVICE_UNAVAILABLE,
    ErrorCode.QUEUE_FULL: status.HTTP_503_SERVICE_UNAVAILABLE,
    ErrorCode.RATE_LIMITED: status.HTTP_429_TOO_MANY_REQUESTS,
    ErrorCode.INVALID_FRAME: status.HTTP_409_CONFLICT,
}
#: Seconds a client is told to wait after a retryable refusal.
RETRY_AFTER_SECONDS = 30
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "unknown id"}
}


@router.post(
    "/api/chat",
    response_model=None,
    responses={
        200: {"model": StreamLine, "description": "NDJSON stream: one server frame per line"},
        401: {"model": ErrorResponse},
        429: {"model": ErrorFrame},
        503: {"model": ErrorFrame},
    },
    summary="Send a message and stream the answer",
)
async def chat(body: ChatRequest, caller: CallerDep, services: ServicesDep) -> Response:
    """Queue the message, then stream its frames as NDJSON until the answer is done."""
    request = _request_frame(body, caller)
    request_id_var.set(request.request_id)  # this task serves only this request
    watch = services.gateway.watch(request.request_id)
    answer = await services.gateway.submit(request, caller)
    if isinstance(answer, ErrorFrame):
        watch.close()
        return _refusal(answer)
    return StreamingResponse(
        _ndjson(answer.model_dump_json(), watch, just_accepted=not answer.duplicate),
        media_type="application/x-ndjson",
    )


def _request_frame(body: ChatRequest, caller: Caller) -> RequestFrame:
    user_id = caller.user_id if caller.kind is CallerKind.USER else body.user_id
    if not user_id:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "user_id is required")
    return RequestFrame(
        request_id=body.request_id or f"http-{uuid.uuid4().hex}",
        user_id=user_id,
        user_name=body.user_name,
        conversation_id=body.conversation_id or f"web-{uuid.uuid4().hex}",
        content=body.content,
        attachments=body.attachments,
        model_override=body.model_override,
        is_admin=caller.is_admin,
    )


def _refusal(error: ErrorFrame) -> JSONResponse:
    code = SUBMIT_ERROR_STATUS.get(error.code, status.HTTP_400_BAD_REQUEST)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if error.retryable else None
    return JSONResponse(error.model_dump(mode="json"), status_code=code, headers=headers)


async def _ndjson(first: str, watch: Watch, *, just_accepted: bool) -> AsyncIterator[str]:
    yield first + "\n"
    async for frame in watch.frames(just_accepted=just_accepted):
        yield frame.model_dump_json() + "\n"


@router.get("/api/requests/{request_id}", responses=NOT_FOUND)
async def request_status(
    request_id: str, caller: CallerDep, services: ServicesDep
) -> RequestStatus:
    """Where a request stands: position and ETA while queued, the answer when done."""
    return await _status(services, request_id, caller)


@router.delete("/api/requests/{request_id}", responses=NOT_FOUND)
async def cancel_request(
    request_id: str, caller: CallerDep, services: ServicesDep
) -> RequestStatus:
    """Cancel a queued or running request."""
    refused = await services.gateway.cancel(request_id, caller)
    if refused is not None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, refused.message)
    return await _status(services, request_id, caller)


async def _status(services: Services, request_id: str, caller: Caller) -> RequestStatus:
    item = await services.queue.get(request_id)
    if item is None or (caller.kind is CallerKind.USER and item.user_id != caller.user_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown request")
    position = await services.queue.position(request_id)
    return RequestStatus(
        request_id=item.request_id,
        conversation_id=item.conversation_id,
        state=item.state.value,
        position=position.position if position else None,
        eta_seconds=position.eta_seconds if position else None,
        route=item.route,
        model=item.model,
        attempts=item.attempts,
        result=DoneFrame.model_validate(item.result) if item.result else None,
        error=ErrorFrame.model_validate(item.error) if item.error else None,
    )


@router.post(
    "/api/conversations/{conversation_id}/{action}",
    responses=NOT_FOUND,
    dependencies=[Depends(require_relay_or_admin)],
)
async def conversation_action(
    conversation_id: str, action: ConversationAction, services: ServicesDep
) -> ConversationResult:
    """Reset (forget the history), summarize, or close a conversation."""
    conversations = services.conversations
    if not await conversations.exists(conversation_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown conversation")
    if action is ConversationAction.RESET:
        await conversations.reset(conversation_id)
        return ConversationResult(
            conversation_id=conversation_id, action=action, message="History cleared."
        )
    if action is ConversationAction.CLOSE:
        await conversations.close(conversation_id)
        return ConversationResult(
            conversation_id=conversation_id,
            action=action,
            message="Conversation closed and its history deleted.",
        )
    try:
        result = await services.builder.summarize_now(conversation_id)
    except SummarizerError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    message = "Nothing new to summarize." if result.new_messages == 0 else "Summarized."
    return ConversationResult(
        conversation_id=conversation_id, action=action, summary=result.summary, message=message
    )


@router.get("/api/models")
async def models(services: ServicesDep, _caller: CallerDep) -> ModelsResponse:
    """The active profile's models (for a model picker)."""
    profile = services.profile
    return ModelsResponse(
        profile=profile.name,
        models=[
            ModelInfo(
                name=name,
                backend=profile.backend_for(name),
                size_gb=profile.spec(name).size_gb,
                routes=[str(route) for route, model in profile.routes.items() if model == name],
            )
            for name in profile.models
        ],
    )


@router.get("/api/users/{user_id}/model")
async def get_model_preference(
    user_id: str, caller: CallerDep, services: ServicesDep
) -> ModelPreference:
    """The model this user chose (null: the router chooses)."""
    _require_self(caller, user_id)
    return ModelPreference(model=await services.preferences.model(user_id))


@router.put(
    "/api/users/{user_id}/model",
    responses={422: {"model": ErrorResponse, "description": "not a model of the profile"}},
)
async def set_model_preference(
    user_id: str, body: ModelPreference, caller: CallerDep, services: ServicesDep
) -> ModelPreference:
    """Use this model for the user's requests (null goes back to automatic routing)."""
    _require_self(caller, user_id)
    if body.model is not None and body.model not in services.profile.models:
        choices = ", ".join(services.profile.models)
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{body.model} is not a model of the {services.profile.name} profile: {choices}",
        )
    await services.preferences.set_model(user_id, body.model)
    return body


def _require_self(caller: Caller, user_id: str) -> None:
    if caller.kind is CallerKind.USER and caller.user_id != user_id and not caller.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "you can only change your own settings")


@router.get("/api/admin/queue/stats")
async def queue_stats(services: ServicesDep, _admin: AdminDep) -> QueueStats:
    """Waiting and running requests, wait times and service times."""
    return await services.queue.stats()


@router.get("/api/admin/maintenance")
async def get_maintenance(services: ServicesDep, _admin: AdminDep) -> MaintenanceState:
    """The maintenance mode in force."""
    return await services.admission.maintenance()


@router.put("/api/admin/maintenance")
async def set_maintenance(
    state: MaintenanceState, services: ServicesDep, _admin: AdminDep
) -> MaintenanceState:
    """Switch maintenance: off, soft (queue and tell users) or hard (refuse)."""
    await services.admission.set_maintenance(state)
    return state


@router.get("/health")
async def health(services: ServicesDep, response: Response) -> HealthReport:
    """Status of the brain and its dependencies (store, model server, queue)."""
    components = await run_checks(
        {
            "store": lambda: _check_store(services),
            "model_server": lambda: _check_models(services),
            **_other_model_servers(services),
            "queue": lambda: _check_queue(services),
        }
    )
    report = HealthReport(
        status=overall(components, critical=frozenset({"store"})),
        service=SERVICE_NAME,
        version=VERSION,
        uptime_seconds=round(time.time() - services.started_at, 1),
        components=components,
        info={
            "node_id": services.node_id,
            "profile": services.profile.name,
            "simulated_model_server": services.settings.model_server_simulated,
            "running": services.pipeline.running,
            "websocket_connections": services.websocket_connections,
            **_shipping_info(services),
        },
    )
    if report.status is HealthStatus.UNHEALTHY:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return report


def _shipping_info(services: Services) -> dict[str, object]:
    """The log shipping counters (lines spooled while the logging service is away)."""
    if services.log_shipping is None:
        return {}
    return {"log_shipping": dataclasses.asdict(services.log_shipping.stats())}


async def _check_store(services: Services) -> ComponentHealth:
    ok = await services.store.ping()
    return ComponentHealth(status=HealthStatus.HEALTHY if ok else HealthStatus.UNHEALTHY)


async def _check_models(services: Services) -> ComponentHealth:
    backend = services.backends.backend_for(services.profile.router_model)
    ok = await backend.ping()
    detail = f"{backend.name}{' (simulated)' if services.settings.model_server_simulated else ''}"
    return ComponentHealth(
        status=HealthStatus.HEALTHY if ok else HealthStatus.UNHEALTHY, detail=detail
    )


def _other_model_servers(services: Services) -> dict[str, Callable[[], Awaitable[ComponentHealth]]]:
    """A check per configured model server besides the router's (``model_server_<name>``)."""
    main = services.backends.backend_for(services.profile.router_model)
    return {
        f"model_server_{backend.name}": functools.partial(_check_backend, backend)
        for backend in services.backends.all()
        if backend is not main
    }


async def _check_backend(backend: ModelBackend) -> ComponentHealth:
    ok = await backend.ping()
    return ComponentHealth(
        status=HealthStatus.HEALTHY if ok else HealthStatus.DEGRADED, detail=backend.name
    )


async def _check_queue(services: Services) -> ComponentHealth:
    stats = await services.queue.stats()
    full = stats.queued >= stats.max_size
    return ComponentHealth(
        status=HealthStatus.DEGRADED if full else HealthStatus.HEALTHY,
        detail=f"{stats.queued} waiting, {stats.running} running",
    )
