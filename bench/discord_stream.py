"""The Discord relay streaming 20 answers at once at production pacing.

Everything but Discord and the model is the real stack:

* the relay (``RelayBot``) runs in this process with production pacing
  (``STREAM_CHUNK_INTERVAL=1.1``, the default 0.8 s merge window) and logs in
  to the protocol-level fake Discord (a background thread of this process);
* a real brain (``python -m trollama.brain``, SQLite store, one worker per
  user so all answers stream at once) runs as a child process;
* the model is a scripted fake Ollama in a second child process (this file run
  with ``--serve-model PORT``: a ``FakeOllama`` whose answer to each question
  is a fixed text of ``--answer-tokens`` tokens naming the question, 100 ms
  to the first token, 50 tokens/s; the router's classification call gets
  ``SELF_HANDLE`` at the same pace).

Round 1: every user mentions the bot in ``#general`` at about the same time
(one new thread each). Round 2: once every answer is complete, every user
writes again in their thread. Printed per round and overall:

* **user message → first visible text** (p50/p95): from the user's message to
  the first send or edit in the thread that shows answer text, not a status
  line (⏳ 🧭 🤔 ✍️ ...);
* **model first token → first visible text** (p50/p95). The fake model logs
  the wall-clock time (``time.time``) at which it picks the reply to a
  request, then sleeps the TTFT and writes the first token, so the first token
  left the model at about that time + TTFT (error: the sleep's overshoot, about
  a millisecond). Discord-side times are the fake Discord's arrival times of
  the relay's requests (``time.time`` too, same machine clock);
* **edits per answer** (mean, max), counting status edits;
* **busiest channel**: the most sends + edits one channel received in any 5 s
  window (and, for information, all its REST operations: reactions, thread
  creation);
* **final-text mismatches**: every answer's messages in Discord must equal the
  model's text; a non-zero count is a bug.

Targets (printed, not asserted): first visible text within 250 ms of the
model's first token at p95; at most 5 sends + edits per channel per 5 s. The
last line is ``first_text_p95_ms=X max_edits_5s=Y`` (model first token → first
visible text p95, over all answers).

    uv run python bench/discord_stream.py [--users 20] [--rounds 2] [--ttft-ms 100]
        [--tokens-per-second 50] [--answer-tokens 150]
"""

from __future__ import annotations

import os
import sys

# bench/logging.py (the issue names it) would shadow the standard library's
# ``logging`` for scripts run from this folder: drop the folder from the path.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import asyncio
import math
import re
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from aiohttp import web

from trollama.relay.bot import RelayBot
from trollama.relay.settings import RelaySettings
from trollama.testkit.brain import BrainProcess, fresh_secrets
from trollama.testkit.discord_fixtures import running_client
from trollama.testkit.fake_discord import FakeDiscord, RecordedRequest, UserRecord
from trollama.testkit.fake_ollama import FakeOllama
from trollama.testkit.ports import free_port
from trollama.testkit.script import ROUTE_PROMPT_PHRASE, ChatView, ModelScript, Reply
from trollama.testkit.server import serve_until_signalled
from trollama.testkit.stats import percentile

#: Seconds between two edits/sends in one channel: the production setting.
STREAM_CHUNK_INTERVAL = 1.1
#: Width of the sliding window for operations per channel, in seconds.
WINDOW_SECONDS = 5.0
#: Target: first visible text at most this many ms after the model's first token (p95).
TARGET_FIRST_TEXT_MS = 250.0
#: Target: at most this many sends + edits per channel per window.
TARGET_OPS_PER_WINDOW = 5
#: Seconds a round may take until every answer is complete in Discord.
ROUND_TIMEOUT_SECONDS = 45.0
#: Seconds between two looks at the fake Discord while waiting for answers.
POLL_SECONDS = 0.25
#: Seconds the relay may take to connect to the brain.
CONNECT_TIMEOUT_SECONDS = 15.0
#: Seconds the model server may take to start.
MODEL_START_SECONDS = 30.0
#: Model calls the fake model server remembers.
MAX_MODEL_CALLS = 10_000
#: Where the fake model server serves its call log.
MODEL_LOG_PATH = "/bench/calls"
#: How every status line the renderer shows starts (answer text never does here).
STATUS_PREFIXES = ("⏳", "🧭", "🤔", "✍", "🔧", "🔁", "🔄", "❌", "🤷")
#: Tags a question, e.g. ``u07r2`` (user 7, round 2); the model's answer names it.
TAG = re.compile(r"\bu\d+r\d+\b")
WARM_UP_TAG = "u999r0"
#: Length of the warm-up answer, in tokens.
WARM_UP_TOKENS = 10
FILLER = ("llamas", "graze", "on", "the", "high", "Andean", "plateau", "and", "hum", "softly")
SEND = re.compile(r"^/channels/(\d+)/messages$")
EDIT = re.compile(r"^/channels/(\d+)/messages/\d+$")
ANY_CHANNEL_OP = re.compile(r"^/channels/(\d+)/")


def answer_for(tag: str, tokens: int) -> str:
    """The model's answer to the question tagged ``tag``: ``tokens`` words."""
    filler = (FILLER[i % len(FILLER)] for i in range(max(tokens - 2, 0)))
    return " ".join(["Answer", f"{tag}:", *filler])


def question(tag: str) -> str:
    return f"{tag} tell me about llamas"


# ---------------------------------------------------------------- the model server (child)


@dataclass(frozen=True)
class ModelCall:
    """One chat request the fake model answered; ``at`` is when it picked the reply."""

    at: float
    tag: str | None
    router: bool


class BenchScript(ModelScript):
    """Answers every question with its fixed text and logs when each call started."""

    def __init__(self, ttft_seconds: float, tokens_per_second: float, answer_tokens: int) -> None:
        super().__init__()
        self.ttft_seconds = ttft_seconds
        self.tokens_per_second = tokens_per_second
        self.answer_tokens = answer_tokens
        self.calls: deque[ModelCall] = deque(maxlen=MAX_MODEL_CALLS)

    def reply_for(self, view: ChatView) -> Reply:
        router = ROUTE_PROMPT_PHRASE in view.system
        found = TAG.search(view.last_user)
        tag = found.group(0) if found else None
        self.calls.append(ModelCall(time.time(), tag, router))
        tokens = WARM_UP_TOKENS if tag == WARM_UP_TAG else self.answer_tokens
        text = "SELF_HANDLE" if router else answer_for(tag or "untagged", tokens)
        return Reply(
            text=text, ttft_seconds=self.ttft_seconds, tokens_per_second=self.tokens_per_second
        )


class BenchOllama(FakeOllama):
    """The fake Ollama plus ``GET /bench/calls``: the script's call log as JSON."""

    def __init__(self, script: BenchScript, port: int) -> None:
        super().__init__(script, port=port)
        self.bench_script = script

    def routes(self) -> list[web.RouteDef]:
        return [*super().routes(), web.get(MODEL_LOG_PATH, self._calls)]

    async def _calls(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(call) for call in self.bench_script.calls])


def serve_model(args: argparse.Namespace) -> None:
    script = BenchScript(args.ttft_ms / 1000, args.tokens_per_second, args.answer_tokens)
    asyncio.run(serve_until_signalled(BenchOllama(script, args.serve_model)))


def start_model_server(port: int, args: argparse.Namespace, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, str(Path(__file__).resolve()), "--serve-model", str(port),
        "--ttft-ms", str(args.ttft_ms), "--tokens-per-second", str(args.tokens_per_second),
        "--answer-tokens", str(args.answer_tokens),
    ]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=out)


async def wait_for_url(url: str) -> None:
    deadline = time.monotonic() + MODEL_START_SECONDS
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                await client.get(url, timeout=1)
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
    raise TimeoutError(url)


async def model_calls(model_url: str) -> list[ModelCall]:
    async with httpx.AsyncClient() as client:
        response = await client.get(model_url + MODEL_LOG_PATH, timeout=10)
    return [ModelCall(**call) for call in response.json()]


# ---------------------------------------------------------------- the relay and the users


@dataclass
class Ask:
    """One question; its answer is the bot's messages in ``channel_id`` in [asked_at, until)."""

    tag: str
    round: int
    user: UserRecord
    channel_id: int
    asked_at: float
    until: float = math.inf


@asynccontextmanager
async def running_relay(fake: FakeDiscord, brain_url: str, secret: str) -> AsyncIterator[RelayBot]:
    settings = RelaySettings(
        _env_file=None,
        dev_mode=True,
        discord_token=fake.token,
        relay_shared_secret=secret,
        fastapi_ws_url=brain_url.replace("http://", "ws://") + "/ws/discord",
        relay_health_port=free_port(),
        stream_chunk_interval=STREAM_CHUNK_INTERVAL,
    )
    bot = RelayBot(settings)
    async with running_client(fake, bot):
        await fake.wait_for(
            lambda: str(bot.link.state) == "connected", timeout=CONNECT_TIMEOUT_SECONDS
        )
        yield bot


def drop_queued_reactions(bot: RelayBot) -> int:
    """Cancel the final ✅/❌ reactions still waiting for their channel's pacer; returns how many.

    Left alone, the relay spends up to a minute more on #general's reactions
    before it shuts down. There is no public handle on them: this reads the
    Conversations cog's private task set."""
    finishing: set[asyncio.Task[None]] = getattr(bot.get_cog("Conversations"), "_finishing", set())
    waiting = [task for task in finishing if not task.done()]
    for task in waiting:
        task.cancel()
    return len(waiting)


def shown(fake: FakeDiscord, ask: Ask) -> list[str]:
    """The bot's messages answering ``ask``, as they are now."""
    return [
        m.content
        for m in fake.messages(ask.channel_id)
        if m.author_id == fake.bot_user.id and ask.asked_at <= m.created_at < ask.until
    ]


async def wait_for_answers(fake: FakeDiscord, asks: Sequence[Ask], tokens: int) -> int:
    """Wait until every answer shows the model's whole text; returns how many never did."""
    deadline = time.monotonic() + ROUND_TIMEOUT_SECONDS
    pending = list(asks)
    while pending and time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS)
        pending = [a for a in pending if shown(fake, a) != [answer_for(a.tag, tokens)]]
    return len(pending)


async def warm_up(fake: FakeDiscord) -> None:
    """One answer in a DM first (its own channel), so start-up costs stay out of the numbers."""
    message = await fake.dm(fake.alice, question(WARM_UP_TAG))
    ask = Ask(WARM_UP_TAG, 0, fake.alice, message.channel_id, message.created_at)
    if await wait_for_answers(fake, [ask], WARM_UP_TOKENS):
        raise RuntimeError(f"the warm-up answer never completed: {shown(fake, ask)!r}")


async def first_round(fake: FakeDiscord, users: Sequence[UserRecord]) -> list[Ask]:
    """Every user mentions the bot in #general at once; each answer gets its own thread."""
    tags = [f"u{i:02d}r1" for i in range(len(users))]
    messages = await asyncio.gather(
        *(
            fake.user_message(fake.general.id, user, question(tag), mentions_bot=True)
            for user, tag in zip(users, tags, strict=True)
        )
    )
    # A thread started from a message has the message's id.
    return [
        Ask(tag, 1, user, m.id, m.created_at)
        for user, tag, m in zip(users, tags, messages, strict=True)
    ]


async def next_round(fake: FakeDiscord, previous: Sequence[Ask], round_no: int) -> list[Ask]:
    """Every user writes again in their thread, at once (no mention needed)."""
    tags = [f"{a.tag.rsplit('r', 1)[0]}r{round_no}" for a in previous]
    messages = await asyncio.gather(
        *(
            fake.user_message(a.channel_id, a.user, question(t))
            for a, t in zip(previous, tags, strict=True)
        )
    )
    for ask, message in zip(previous, messages, strict=True):
        ask.until = message.created_at
    return [
        Ask(tag, round_no, a.user, a.channel_id, m.created_at)
        for a, tag, m in zip(previous, tags, messages, strict=True)
    ]


# ---------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Op:
    """A send or edit the relay made (from the fake Discord's request log)."""

    channel_id: int
    at: float
    content: str
    edit: bool


@dataclass(frozen=True)
class Outcome:
    ask: Ask
    first_token_at: float | None
    visible_at: float | None
    edits: int
    model_calls: int
    matches: bool


def message_ops(requests: Sequence[RecordedRequest]) -> list[Op]:
    ops = []
    for r in requests:
        send = SEND.match(r.path) if r.method == "POST" else None
        edit = EDIT.match(r.path) if r.method == "PATCH" else None
        found = send or edit
        if found is None or r.status >= 300:
            continue
        content = r.body.get("content") if isinstance(r.body, dict) else None
        ops.append(Op(int(found.group(1)), r.at, str(content or ""), edit is not None))
    return ops


def is_answer_text(content: str) -> bool:
    return bool(content.strip()) and not content.startswith(STATUS_PREFIXES)


def outcome(
    fake: FakeDiscord,
    ask: Ask,
    ops: Sequence[Op],
    calls: Sequence[ModelCall],
    args: argparse.Namespace,
) -> Outcome:
    mine = [o for o in ops if o.channel_id == ask.channel_id and ask.asked_at <= o.at < ask.until]
    visible = next((o.at for o in mine if is_answer_text(o.content)), None)
    answers = [c for c in calls if c.tag == ask.tag and not c.router]
    first_token = answers[0].at + args.ttft_ms / 1000 if answers else None
    matches = shown(fake, ask) == [answer_for(ask.tag, args.answer_tokens)]
    return Outcome(ask, first_token, visible, sum(o.edit for o in mine), len(answers), matches)


def busiest_window(times: Sequence[float], width: float = WINDOW_SECONDS) -> int:
    """The most times falling in any half-open window [t, t + width)."""
    ordered = sorted(times)
    best = start = 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


def busiest_channel(times_by_channel: dict[int, list[float]]) -> tuple[int, int]:
    """(channel id, operations) of the channel with the busiest window."""
    scored = [(busiest_window(times), channel) for channel, times in times_by_channel.items()]
    count, channel = max(scored, default=(0, 0))
    return channel, count


def report(label: str, outcomes: Sequence[Outcome]) -> float:
    """Prints one block; returns the model-first-token → first-text p95 in ms."""
    user_ms = [(o.visible_at - o.ask.asked_at) * 1000 for o in outcomes if o.visible_at]
    model_ms = [
        (o.visible_at - o.first_token_at) * 1000
        for o in outcomes
        if o.visible_at and o.first_token_at
    ]
    edits = [o.edits for o in outcomes]
    print(f"\n== {label}: {len(outcomes)} answers")
    print(
        f"   user message → first visible text      "
        f"p50={percentile(user_ms, 50):7.0f} ms  p95={percentile(user_ms, 95):7.0f} ms"
    )
    print(
        f"   model first token → first visible text "
        f"p50={percentile(model_ms, 50):7.0f} ms  p95={percentile(model_ms, 95):7.0f} ms"
    )
    print(f"   edits per answer: mean={statistics.fmean(edits):.1f}  max={max(edits)}")
    starts = [o.first_token_at for o in outcomes if o.first_token_at]
    if starts:
        print(
            f"   first tokens spread over {max(starts) - min(starts):.1f} s (first to last answer)"
        )
    missing = sum(1 for o in outcomes if o.visible_at is None or o.first_token_at is None)
    if missing:
        print(f"   answers without a visible text or a model call: {missing}")
    return percentile(model_ms, 95)


def channel_report(fake: FakeDiscord) -> int:
    """Prints the busiest channels; returns the most sends + edits in one window."""
    requests = fake.requests()
    messages: dict[int, list[float]] = defaultdict(list)
    for op in message_ops(requests):
        messages[op.channel_id].append(op.at)
    everything: dict[int, list[float]] = defaultdict(list)
    for r in requests:
        found = ANY_CHANNEL_OP.match(r.path)
        if found and r.method != "GET":
            everything[int(found.group(1))].append(r.at)
    channel, busiest = busiest_channel(messages)
    any_channel, any_busiest = busiest_channel(everything)
    print(f"\n== operations per channel in any {WINDOW_SECONDS:.0f} s window")
    print(f"   sends + edits: max {busiest} ({name_of(fake, channel)})")
    print(f"   all REST operations: max {any_busiest} ({name_of(fake, any_channel)})")
    return busiest


def name_of(fake: FakeDiscord, channel_id: int) -> str:
    if channel_id == fake.general.id:
        return "#general"
    return f"thread {channel_id}"


# ---------------------------------------------------------------- main


def brain_env(model_url: str, secrets: dict[str, str], work: Path, workers: int) -> dict[str, str]:
    return {
        "BRAIN_PORT": str(free_port()),
        "OLLAMA_HOST": model_url,
        "STORE_BACKEND": "sqlite",
        "SQLITE_PATH": str(work / "bench.db"),
        "RELAY_SHARED_SECRET": secrets["relay_shared_secret"],
        "JWT_SECRET_KEY": secrets["jwt_secret_key"],
        "WORKER_CONCURRENCY": str(workers),
        "LOG_LEVEL": "WARNING",
    }


async def converse(fake: FakeDiscord, args: argparse.Namespace) -> list[list[Ask]]:
    """The rounds of questions; returns the asks of each round."""
    users = [await fake.add_user(f"user{i:02d}") for i in range(args.users)]
    started = time.monotonic()
    await warm_up(fake)
    print(f"warm-up answer (DM) complete in {time.monotonic() - started:.1f} s")
    rounds: list[list[Ask]] = []
    for round_no in range(1, args.rounds + 1):
        started = time.monotonic()
        if round_no == 1:
            asks = await first_round(fake, users)
        else:
            asks = await next_round(fake, rounds[-1], round_no)
        unfinished = await wait_for_answers(fake, asks, args.answer_tokens)
        took = time.monotonic() - started
        print(f"round {round_no}: {len(asks)} answers complete in {took:.1f} s", end="")
        print(f" ({unfinished} did not complete)" if unfinished else "")
        rounds.append(asks)
    return rounds


async def main(args: argparse.Namespace) -> None:
    begun = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="trollama-bench-"))
    model_url = f"http://127.0.0.1:{(model_port := free_port())}"
    model = start_model_server(model_port, args, work / "model.log")
    secrets = fresh_secrets()
    env = brain_env(model_url, secrets, work, args.users)
    brain = BrainProcess(env, log_path=work / "brain.log").start()
    fake = FakeDiscord().start_in_thread()
    try:
        await wait_for_url(model_url + "/api/version")
        await brain.wait_healthy()
        print(f"model server and brain up in {time.monotonic() - begun:.1f} s")
        print(
            f"simulated model: TTFT {args.ttft_ms:.0f} ms, {args.tokens_per_second:.0f} tokens/s, "
            f"{args.answer_tokens}-token answers; {args.users} users, {args.rounds} round(s); "
            f"STREAM_CHUNK_INTERVAL={STREAM_CHUNK_INTERVAL} s"
        )
        async with running_relay(fake, brain.url, secrets["relay_shared_secret"]) as bot:
            rounds = await converse(fake, args)
            queued = drop_queued_reactions(bot)
            closing = time.monotonic()
        print(
            f"relay closed in {time.monotonic() - closing:.1f} s; {queued} final reactions "
            "still waiting for their channel's pacer were cancelled"
        )
        calls = await model_calls(model_url)
        ops = message_ops(fake.requests())
        results = [[outcome(fake, a, ops, calls, args) for a in asks] for asks in rounds]
        for number, outcomes in enumerate(results, start=1):
            report(f"round {number}", outcomes)
        everything = [o for outcomes in results for o in outcomes]
        p95 = report("all rounds", everything)
        busiest = channel_report(fake)
        mismatches = sum(not o.matches for o in everything)
        retried = sum(o.model_calls > 1 for o in everything)
        print(f"\nfinal text mismatches: {mismatches} of {len(everything)}")
        print(f"answers the model was asked for more than once: {retried}")
        print(f"fake Discord problems: {len(fake.problems())}")
        print(
            f"targets: first visible text ≤ {TARGET_FIRST_TEXT_MS:.0f} ms after the first token "
            f"(p95) — {'met' if p95 <= TARGET_FIRST_TEXT_MS else 'NOT met'}; "
            f"≤ {TARGET_OPS_PER_WINDOW} sends+edits per channel per {WINDOW_SECONDS:.0f} s — "
            f"{'met' if busiest <= TARGET_OPS_PER_WINDOW else 'NOT met'}"
        )
        print(f"whole run: {time.monotonic() - begun:.1f} s (logs in {work})")
        print(f"first_text_p95_ms={p95:.0f} max_edits_5s={busiest}")
    finally:
        fake.stop_thread()
        brain.stop()
        model.terminate()
        model.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="concurrent threads")
    parser.add_argument("--rounds", type=int, default=2, help="messages per thread")
    parser.add_argument("--ttft-ms", type=float, default=100.0)
    parser.add_argument("--tokens-per-second", type=float, default=50.0)
    parser.add_argument("--answer-tokens", type=int, default=150)
    parser.add_argument("--serve-model", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.serve_model is not None:
        serve_model(parsed)
    else:
        asyncio.run(main(parsed))
