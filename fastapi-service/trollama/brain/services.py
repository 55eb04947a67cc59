"""Everything the brain runs, built from its settings and started together.

Tests and benchmarks build the same object with their own store or backends
(dependency injection), so no code path differs between them and production.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from trollama.brain.admission import Admission, MaintenanceMode, MaintenanceState, RateLimiter
from trollama.brain.backends.base import ModelBackend
from trollama.brain.backends.ollama import OllamaBackend
from trollama.brain.backends.registry import BackendRegistry
from trollama.brain.context.builder import ContextBuilder
from trollama.brain.context.history import ConversationStore
from trollama.brain.context.summarizer import Summarizer
from trollama.brain.gateway import Gateway
from trollama.brain.hub import StreamHub
from trollama.brain.metrics import BrainMetrics
from trollama.brain.persona.bundle import Persona, build_persona
from trollama.brain.persona.jobs import JobSchedule, PersonaJobs
from trollama.brain.persona.outbox import Outbox
from trollama.brain.persona.prompt import PromptBudgets
from trollama.brain.pipeline import Pipeline
from trollama.brain.preferences import UserPreferences
from trollama.brain.queue import NodeRegistry, RequestQueue
from trollama.brain.routing.classifier import Router
from trollama.brain.routing.profiles import Profile, load_profile
from trollama.brain.routing.routes import parse_route
from trollama.brain.settings import BrainSettings
from trollama.common.log_shipping import ShippingHandler
from trollama.common.store.base import ItemStore
from trollama.common.store.factory import open_store
from trollama.common.tasks import cancel_and_wait

log = logging.getLogger(__name__)

#: Seconds the summarizer may take before the builder falls back to truncation.
SUMMARIZER_TIMEOUT_SECONDS = 60.0


@dataclass
class Services:
    settings: BrainSettings
    node_id: str
    store: ItemStore
    profile: Profile
    backends: BackendRegistry
    queue: RequestQueue
    nodes: NodeRegistry
    hub: StreamHub
    admission: Admission
    conversations: ConversationStore
    preferences: UserPreferences
    builder: ContextBuilder
    router: Router
    pipeline: Pipeline
    gateway: Gateway
    persona: Persona
    #: Prometheus metrics of this brain (its own registry).
    metrics: BrainMetrics
    #: The persona's background jobs (scheduled only when background_jobs_enabled).
    jobs: PersonaJobs | None = None
    #: The handler shipping this process's logs to the logging service (set by __main__).
    log_shipping: ShippingHandler | None = None
    started_at: float = field(default_factory=time.time)
    websocket_connections: int = 0
    _heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.store.ensure_tables()
        identity_file = self.settings.persona_identity_file
        await self.persona.seed_identity(Path(identity_file) if identity_file else None)
        await self.nodes.beat()
        self._heartbeat = asyncio.create_task(self._beat_forever(), name="node-heartbeat")
        await self.pipeline.start()
        if self.jobs is not None and self.settings.background_jobs_enabled:
            self.jobs.start()
        log.info(
            "brain started",
            extra={"node_id": self.node_id, "profile": self.profile.name},
        )

    async def stop(self) -> None:
        if self.jobs is not None:
            await self.jobs.stop()
        await self.pipeline.stop()
        await cancel_and_wait(self._heartbeat)
        await self.backends.close_all()
        await self.store.close()

    async def _beat_forever(self) -> None:
        """Beat until cancelled; a store hiccup costs one beat, not the loop."""
        while True:
            try:
                await self.nodes.run()
            except Exception:
                log.warning("node heartbeat failed", exc_info=True)
                await asyncio.sleep(self.settings.node_heartbeat_seconds)


def default_node_id(settings: BrainSettings) -> str:
    return settings.node_id or f"{settings.brain_host}:{settings.brain_port}"


def build_backends(settings: BrainSettings, profile: Profile) -> BackendRegistry:
    """The model servers of the settings, mapped to the profile's models."""
    backends: dict[str, ModelBackend] = {
        "ollama": OllamaBackend(
            settings.ollama_host,
            keep_alive_seconds=settings.ollama_keep_alive,
            connect_timeout=settings.model_connect_timeout,
            read_timeout=settings.model_read_timeout,
        )
    }
    if settings.sglang_endpoint:
        # the openai SDK takes a second to import: only when a server is configured
        from trollama.brain.backends.openai_compat import OpenAICompatBackend

        backends["openai"] = OpenAICompatBackend(
            settings.sglang_endpoint.rstrip("/") + "/v1",
            api_key=settings.openai_api_key.get_secret_value(),
            connect_timeout=settings.model_connect_timeout,
            read_timeout=settings.model_read_timeout,
        )
    model_backends = {
        model: backend
        for model in profile.models
        if (backend := profile.backend_for(model)) in backends
    }
    return BackendRegistry(backends, model_backends, default_backend="ollama")


def build_services(
    settings: BrainSettings,
    *,
    store: ItemStore | None = None,
    backends: BackendRegistry | None = None,
) -> Services:
    node_id = default_node_id(settings)
    store = store or open_store(settings.store)
    profile = load_profile(settings.vram_profile)
    backends = backends or build_backends(settings, profile)
    metrics = BrainMetrics([*profile.models, *filter(None, [settings.fallback_model])])
    queue = RequestQueue(
        store,
        node_id=node_id,
        max_size=settings.max_queue_size,
        max_retries=settings.max_retries,
        visibility_timeout=settings.visibility_timeout,
        backoff_seconds=settings.retry_backoff_seconds,
        concurrency=settings.worker_concurrency,
    )
    nodes = NodeRegistry(store, node_id=node_id, heartbeat_seconds=settings.node_heartbeat_seconds)
    hub = StreamHub()
    initial = MaintenanceState(
        mode=MaintenanceMode.HARD
        if settings.maintenance_mode_hard
        else MaintenanceMode.SOFT
        if settings.maintenance_mode
        else MaintenanceMode.OFF
    )
    admission = Admission(
        store, initial=initial, rate_limiter=RateLimiter(settings.user_rate_limit_per_minute)
    )
    conversations = ConversationStore(store)
    preferences = UserPreferences(store)
    summarizer = Summarizer(
        backends.backend_for,
        profile.summarization_model,
        timeout_seconds=SUMMARIZER_TIMEOUT_SECONDS,
    )
    builder = ContextBuilder(
        conversations,
        summarizer,
        summary_threshold_tokens=settings.context_summary_threshold_tokens,
        keep_last_messages=settings.context_keep_last_messages,
    )
    router = Router(
        backends.backend_for,
        profile,
        default_route=parse_route(settings.router_default_route),
        timeout_seconds=settings.router_timeout_seconds,
    )
    persona = build_persona(
        store,
        backend_for=backends.backend_for,
        embedding_model=profile.embedding_model,
        embedding_timeout_seconds=settings.embedding_timeout_seconds,
        embedding_dimensions=settings.embedding_dimensions or None,
    )
    pipeline = Pipeline(
        queue=queue,
        hub=hub,
        router=router,
        builder=builder,
        conversations=conversations,
        backends=backends,
        profile=profile,
        preferences=preferences,
        persona=persona,
        prompt_budgets=PromptBudgets(
            memory_tokens=settings.memory_token_budget,
            channel_tokens=settings.channel_context_token_budget,
        ),
        fallback_model=settings.fallback_model,
        concurrency=settings.worker_concurrency,
        poll_seconds=settings.queue_poll_seconds,
        visibility_timeout=settings.visibility_timeout,
        metrics=metrics,
    )
    gateway = Gateway(queue=queue, hub=hub, admission=admission, pipeline=pipeline, metrics=metrics)
    jobs = PersonaJobs(
        persona,
        store,
        backend_for=backends.backend_for,
        summarization_model=profile.summarization_model,
        admission=admission,
        outbox=Outbox(store),
        schedule=JobSchedule.from_settings(settings),
        node_id=node_id,
    )
    return Services(
        settings=settings,
        node_id=node_id,
        store=store,
        profile=profile,
        backends=backends,
        queue=queue,
        nodes=nodes,
        hub=hub,
        admission=admission,
        conversations=conversations,
        preferences=preferences,
        builder=builder,
        router=router,
        pipeline=pipeline,
        gateway=gateway,
        persona=persona,
        metrics=metrics,
        jobs=jobs,
    )
