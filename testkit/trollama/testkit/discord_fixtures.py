"""Pytest fixtures for the fake Discord (register as the plugin
``trollama.testkit.discord_fixtures``).

``fake_discord`` runs the fake in a background thread, so a relay may use it
from the test's event loop or as a subprocess (``DISCORD_API_BASE=fake.api_base``,
``DISCORD_GATEWAY_URL=fake.gateway_url``, ``DISCORD_TOKEN=fake.token``).
``run_discord_client`` starts an unmodified discord.py client against it::

    async def test_reply(fake_discord, run_discord_client):
        bot = commands.Bot(command_prefix="!", intents=intents)
        await run_discord_client(bot)  # logged in, connected, ready
        await fake_discord.user_message(fake_discord.general.id, fake_discord.alice, "hi")

A test fails at teardown when the fake saw requests it does not understand
or a client swallowed an exception in an event handler or command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import discord
import pytest
import pytest_asyncio
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from trollama.relay.endpoints import point_discord_at
from trollama.testkit.fake_discord import FakeDiscord

#: Seconds discord.py waits after the last GUILD_CREATE before "ready" (its default is 2).
FAST_GUILD_READY_SECONDS = 0.05
#: Seconds a client may take to log in, connect and become ready.
READY_TIMEOUT_SECONDS = 10.0
#: Swallowed exceptions kept per client run (the first ones are the telling ones).
MAX_SWALLOWED_ERRORS = 100
#: How discord.py reports an exception it swallowed (event handlers, commands, views).
_SWALLOWED_PREFIX = "Ignoring exception"


class SwallowedErrors(logging.Handler):
    """Collects the exceptions discord.py logs instead of raising."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        swallowed = str(record.msg).startswith(_SWALLOWED_PREFIX)
        if swallowed and len(self.records) < MAX_SWALLOWED_ERRORS:
            self.records.append(record)

    def describe(self) -> str:
        return "\n".join(
            f"{r.getMessage()}: {r.exc_info[1]!r}" if r.exc_info else r.getMessage()
            for r in self.records
        )


@dataclass
class RunningClient:
    """A discord.py client connected to the fake; ``errors`` are swallowed exceptions."""

    client: discord.Client
    task: asyncio.Task[None]
    errors: list[logging.LogRecord] = field(default_factory=list)


@contextlib.contextmanager
def _pointed_at(fake: FakeDiscord) -> Iterator[None]:
    """Point discord.py at the fake, restoring the real endpoints afterwards."""
    saved: tuple[str, yarl.URL] = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    point_discord_at(fake.api_base, fake.gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


@contextlib.asynccontextmanager
async def running_client(
    fake: FakeDiscord,
    client: discord.Client,
    *,
    reconnect: bool = False,
    token: str | None = None,
) -> AsyncIterator[RunningClient]:
    """Log ``client`` in, connect it and wait until it is ready; close it on exit.

    Raises ``AssertionError`` on exit if the client swallowed exceptions."""
    collector = SwallowedErrors()
    library_logger = logging.getLogger("discord")
    library_logger.addHandler(collector)
    # A private attribute, but the only way to shorten an already-built client's startup.
    client._connection.guild_ready_timeout = FAST_GUILD_READY_SECONDS
    try:
        with _pointed_at(fake):
            async with _connected(client, token or fake.token, reconnect=reconnect) as task:
                yield RunningClient(client, task, collector.records)
    finally:
        library_logger.removeHandler(collector)
    if collector.records:
        raise AssertionError(f"discord.py swallowed exceptions:\n{collector.describe()}")


@contextlib.asynccontextmanager
async def _connected(
    client: discord.Client, token: str, *, reconnect: bool
) -> AsyncIterator[asyncio.Task[None]]:
    """Login, a task for ``connect``, ready; then close and wait for the task."""
    try:
        await client.login(token)
        task = asyncio.create_task(client.connect(reconnect=reconnect))
    except BaseException:
        await client.close()
        raise
    try:
        await _until_ready(client, task)
        yield task
    finally:
        await client.close()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(task, READY_TIMEOUT_SECONDS)


async def _until_ready(client: discord.Client, task: asyncio.Task[None]) -> None:
    ready = asyncio.ensure_future(client.wait_until_ready())
    done, _ = await asyncio.wait(
        {ready, task}, timeout=READY_TIMEOUT_SECONDS, return_when=asyncio.FIRST_COMPLETED
    )
    if ready in done:
        return
    ready.cancel()
    if task in done:
        task.result()
        raise RuntimeError("the client stopped before it was ready")
    raise TimeoutError(f"the client was not ready within {READY_TIMEOUT_SECONDS} s")


@pytest.fixture
def fake_discord() -> Iterator[FakeDiscord]:
    """A fresh fake Discord in a background thread (see :class:`FakeDiscord`).

    Fails the test at teardown if it saw requests or gateway frames it does not understand."""
    fake = FakeDiscord().start_in_thread()
    try:
        yield fake
        problems = fake.problems()
    finally:
        fake.stop_thread()
    if problems:
        pytest.fail("the fake Discord did not understand:\n" + "\n".join(problems))


RunClient = Callable[..., Awaitable[RunningClient]]


@pytest_asyncio.fixture
async def run_discord_client(fake_discord: FakeDiscord) -> AsyncIterator[RunClient]:
    """``await run_discord_client(client, reconnect=False)`` starts a ready client.

    Every client is closed at teardown, which fails if one swallowed an exception."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(client: discord.Client, *, reconnect: bool = False) -> RunningClient:
            return await stack.enter_async_context(
                running_client(fake_discord, client, reconnect=reconnect)
            )

        yield start
