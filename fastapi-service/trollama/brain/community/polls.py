"""Polls: a question, 2 to 10 options, one vote per user, and a deadline.

Layout in :attr:`Table.POLLS`:

* ``poll#<poll id>`` / ``poll`` — the poll, its vote counts (``count_<n>``) and
  whether it is closed;
* ``poll#<poll id>`` / ``vote#<user id>`` — one user's vote (an option index);
* ``open`` / ``<closes at, epoch ms, 15 digits>#<poll id>`` — the open polls by
  deadline, so a restarted relay can re-arm its timers; deleted when the poll closes.

A vote is one transaction: the user's vote item (guarded by the vote it
replaces) and the poll's counts (guarded by the poll being open and before
its deadline), so counts always equal the stored votes and nothing is counted
after the deadline. Closing is idempotent and returns the same result every time.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from trollama.common.protocol import Identifier
from trollama.common.store.base import (
    TTL_ATTRIBUTE,
    ConditionFailed,
    Delete,
    Item,
    ItemStore,
    Put,
    Table,
    TransactOp,
    Update,
)
from trollama.common.store.conditions import And, Eq, Gt, NotExists

#: Options a poll has at least and at most (Discord: 5 rows of 5 buttons).
MIN_OPTIONS = 2
MAX_OPTIONS = 10
#: Longest question, in characters.
MAX_QUESTION_CHARS = 300
#: Longest option, in characters (Discord's button label limit).
MAX_OPTION_CHARS = 80
#: Shortest and longest poll, in seconds (the Discord command allows 1 minute to 7 days).
MIN_POLL_SECONDS = 1.0
MAX_POLL_SECONDS = 7 * 24 * 3600.0
#: Open polls one guild may have at once.
MAX_OPEN_POLLS_PER_GUILD = 25
#: Open polls one listing returns at most.
MAX_OPEN_POLLS_LISTED = 500
#: Days a poll and its votes are kept after its deadline.
POLL_RETENTION_DAYS = 30
#: Tries of a vote that races another vote of the same user.
MAX_VOTE_ATTEMPTS = 3

POLL_KEY = "poll"
VOTE_PREFIX = "vote#"
OPEN_PARTITION = "open"
_SECONDS_PER_DAY = 86_400
_TIMESTAMP_DIGITS = 15

Option = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_OPTION_CHARS)
]


class PollError(Exception):
    """A poll request that cannot be served; the message is safe to show users."""


class PollNotFound(PollError):
    pass


class PollClosed(PollError):
    pass


class InvalidVote(PollError):
    pass


class TooManyOpenPolls(PollError):
    pass


class VoteConflict(PollError):
    """Votes of the same user kept racing each other."""


class PollCreate(BaseModel):
    """A new poll; its message is already posted (``message_id``)."""

    model_config = ConfigDict(extra="forbid")

    guild_id: Identifier
    channel_id: Identifier
    message_id: Identifier
    author_id: Identifier
    question: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION_CHARS)
    ]
    options: list[Option] = Field(min_length=MIN_OPTIONS, max_length=MAX_OPTIONS)
    duration_seconds: float = Field(ge=MIN_POLL_SECONDS, le=MAX_POLL_SECONDS)

    @field_validator("options")
    @classmethod
    def _distinct(cls, options: list[str]) -> list[str]:
        if len({o.casefold() for o in options}) != len(options):
            raise ValueError("options must differ from each other")
        return options


class Poll(BaseModel):
    """A poll as stored, with its vote counts so far."""

    poll_id: str
    guild_id: str
    channel_id: str
    message_id: str
    author_id: str
    question: str
    options: list[str]
    created_at: datetime
    closes_at: datetime
    closed: bool = False
    closed_at: datetime | None = None
    #: Votes per option, in option order.
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)


class PollResult(BaseModel):
    """A closed poll's outcome; ``winners`` holds the most-voted options (several: a tie)."""

    poll_id: str
    question: str
    options: list[str]
    counts: list[int]
    total: int
    winners: list[int]
    closed_at: datetime | None


class PollList(BaseModel):
    polls: list[Poll]


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Identifier
    option: int = Field(ge=0, lt=MAX_OPTIONS)


class VoteOutcome(BaseModel):
    """``previous`` is the option the user had voted for before, if any."""

    poll_id: str
    option: int
    previous: int | None = None

    @property
    def changed(self) -> bool:
        return self.previous is not None and self.previous != self.option


def result_of(poll: Poll) -> PollResult:
    """The outcome of the votes so far."""
    top = max(poll.counts)
    winners = [i for i, count in enumerate(poll.counts) if count == top] if top else []
    return PollResult(
        poll_id=poll.poll_id,
        question=poll.question,
        options=poll.options,
        counts=poll.counts,
        total=poll.total,
        winners=winners,
        closed_at=poll.closed_at,
    )


def _partition(poll_id: str) -> str:
    return f"poll#{poll_id}"


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _open_key(poll: Poll) -> str:
    return f"{_millis(poll.closes_at):0{_TIMESTAMP_DIGITS}d}#{poll.poll_id}"


def _expiry(poll: Poll) -> int:
    return int(poll.closes_at.timestamp()) + POLL_RETENTION_DAYS * _SECONDS_PER_DAY


def _poll_item(poll: Poll) -> Item:
    fields = poll.model_dump(mode="json", exclude={"counts"})
    counts = {f"count_{i}": n for i, n in enumerate(poll.counts)}
    return {
        "pk": _partition(poll.poll_id),
        "sk": POLL_KEY,
        **fields,
        **counts,
        "closes_at_ms": _millis(poll.closes_at),
        TTL_ATTRIBUTE: _expiry(poll),
    }


def _poll_from(item: Item) -> Poll:
    counts = [int(item.get(f"count_{i}", 0)) for i in range(len(item["options"]))]
    known = Poll.model_fields.keys() - {"counts"}
    return Poll.model_validate({**{k: item[k] for k in known if k in item}, "counts": counts})


class PollStore:
    """Polls and votes through an item store."""

    def __init__(self, store: ItemStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def create(self, new: PollCreate) -> Poll:
        """Store a new open poll; TooManyOpenPolls when its guild has too many."""
        open_here = await self._store.count(
            Table.POLLS, OPEN_PARTITION, filter=Eq("guild_id", new.guild_id)
        )
        if open_here >= MAX_OPEN_POLLS_PER_GUILD:
            raise TooManyOpenPolls(
                f"This server already has {MAX_OPEN_POLLS_PER_GUILD} open polls; "
                "wait for one to close."
            )
        now = self._now()
        poll = Poll(
            poll_id=uuid.uuid4().hex,
            **new.model_dump(exclude={"duration_seconds"}),
            created_at=now,
            closes_at=datetime.fromtimestamp(now.timestamp() + new.duration_seconds, UTC),
            counts=[0] * len(new.options),
        )
        index: Item = {"pk": OPEN_PARTITION, "sk": _open_key(poll), "poll_id": poll.poll_id}
        index["guild_id"] = poll.guild_id
        await self._store.transact(
            [
                Put(Table.POLLS, _poll_item(poll), NotExists()),
                Put(Table.POLLS, index, NotExists()),
            ]
        )
        return poll

    async def get(self, poll_id: str) -> Poll:
        """The poll with its counts so far; PollNotFound when unknown or expired."""
        item = await self._store.get(Table.POLLS, _partition(poll_id), POLL_KEY)
        if item is None:
            raise PollNotFound("That poll does not exist (any more).")
        return _poll_from(item)

    async def vote(self, poll_id: str, user_id: str, option: int) -> VoteOutcome:
        """Count the user's vote, replacing their earlier one."""
        for _ in range(MAX_VOTE_ATTEMPTS):
            poll = await self._open_poll(poll_id)
            if not 0 <= option < len(poll.options):
                raise InvalidVote(f"This poll has options 0 to {len(poll.options) - 1}.")
            vote_key = VOTE_PREFIX + user_id
            old = await self._store.get(Table.POLLS, _partition(poll_id), vote_key)
            previous = int(old["option"]) if old is not None else None
            outcome = VoteOutcome(poll_id=poll_id, option=option, previous=previous)
            if previous == option:
                return outcome
            try:
                await self._store.transact(self._vote_ops(poll, user_id, option, previous))
            except ConditionFailed:
                continue  # another vote of this user, or the deadline, came first: look again
            return outcome
        await self._open_poll(poll_id)
        raise VoteConflict("Your vote clashed with another one; please click again.")

    def _vote_ops(
        self, poll: Poll, user_id: str, option: int, previous: int | None
    ) -> list[TransactOp]:
        pk = _partition(poll.poll_id)
        now = self._now()
        vote: Item = {"pk": pk, "sk": VOTE_PREFIX + user_id, "user_id": user_id}
        vote.update(option=option, at=now.isoformat(), **{TTL_ATTRIBUTE: _expiry(poll)})
        guard = NotExists() if previous is None else Eq("option", previous)
        add: dict[str, int | float] = {f"count_{option}": 1}
        if previous is not None:
            add[f"count_{previous}"] = -1
        still_open = And([Eq("closed", False), Gt("closes_at_ms", _millis(now))])
        return [
            Put(Table.POLLS, vote, guard),
            Update(Table.POLLS, pk, POLL_KEY, add=add, condition=still_open),
        ]

    async def _open_poll(self, poll_id: str) -> Poll:
        poll = await self.get(poll_id)
        if poll.closed or poll.closes_at <= self._now():
            raise PollClosed("This poll has closed.")
        return poll

    async def close(self, poll_id: str) -> PollResult:
        """Close the poll (if it is not closed yet) and return its result."""
        poll = await self.get(poll_id)
        if poll.closed:
            return result_of(poll)
        ops: list[TransactOp] = [
            Update(
                Table.POLLS,
                _partition(poll_id),
                POLL_KEY,
                set={"closed": True, "closed_at": self._now().isoformat()},
                condition=Eq("closed", False),
            ),
            Delete(Table.POLLS, OPEN_PARTITION, _open_key(poll)),
        ]
        with contextlib.suppress(ConditionFailed):  # closed meanwhile: the same result
            await self._store.transact(ops)
        return result_of(await self.get(poll_id))

    async def open_polls(
        self, *, guild_id: str | None = None, limit: int = MAX_OPEN_POLLS_LISTED
    ) -> list[Poll]:
        """Open polls, soonest deadline first (also those past their deadline, not closed yet)."""
        limit = min(limit, MAX_OPEN_POLLS_LISTED)
        if limit <= 0:
            return []
        condition = None if guild_id is None else Eq("guild_id", guild_id)
        page = await self._store.query(Table.POLLS, OPEN_PARTITION, limit=limit, filter=condition)
        keys = [(_partition(str(item["poll_id"])), POLL_KEY) for item in page.items]
        polls = [_poll_from(item) for item in await self._store.batch_get(Table.POLLS, keys)]
        await self._forget_expired(page.items, {poll.poll_id for poll in polls})
        return [poll for poll in polls if not poll.closed]

    async def _forget_expired(self, index: list[Item], found: set[str]) -> None:
        """Drop index entries whose poll expired unclosed (they would count as open forever)."""
        for item in index:
            if item["poll_id"] not in found:
                await self._store.delete(Table.POLLS, OPEN_PARTITION, str(item["sk"]))
