"""Leaderboards on Redis sorted sets, ranked in real time with O(log n) calls.

Ties are broken by who reached the score first, exactly and without touching
the score: the sorted-set member is ``<tiebreak><player>``, where ``tiebreak``
is ``MAX_SEQ - seq`` as 15 zero-padded digits and ``seq`` comes from a
per-board counter incremented each time a player's score changes. Redis orders
equal scores by member bytes, and ``ZREVRANGE``/``ZREVRANK`` walk them in
reverse, so among equal scores the smallest ``seq`` (the earliest) ranks
first. Why not a composite float (``score * 2**k + time``): a double has 53
bits, so it either loses score precision or time precision, and cumulative
boards could no longer use ``ZINCRBY``. Here the score stays the real double
the caller gave (or the exact sum Redis computed) and is returned as is.

A hash maps each player to their current member. Every operation that needs
both runs as one small Lua script, so a submit is atomic (compare or add, new
member, index) and a rank never reads a member that was just replaced. Each
script does a constant number of O(log n) sorted-set operations.

Keys share a hash tag (``leaderboard:{name:season}:...``) so a board lives in
one slot of a Redis cluster. A seasonal board (``season_ttl``) expires as a
whole ``season_ttl`` seconds after its first submission.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, cast

import redis
import redis.asyncio as aioredis

Mode = Literal["best", "sum"]

_TIEBREAK_DIGITS = 15
_MAX_SEQ = 10**_TIEBREAK_DIGITS - 1  # far below 2**53: exact in Lua's doubles

_SUBMIT = f"""
local old = redis.call('HGET', KEYS[2], ARGV[1])
local oldscore = false
if old then oldscore = redis.call('ZSCORE', KEYS[1], old) end
local newscore
if oldscore and ARGV[3] == 'best' then
  if tonumber(ARGV[2]) <= tonumber(oldscore) then return {{0, oldscore}} end
  newscore = ARGV[2]
elseif oldscore then
  if tonumber(ARGV[2]) == 0 then return {{0, oldscore}} end
  newscore = redis.call('ZINCRBY', KEYS[1], ARGV[2], old)
else
  newscore = ARGV[2]
end
local seq = redis.call('INCR', KEYS[3])
local member = string.format('%0{_TIEBREAK_DIGITS}d', {_MAX_SEQ} - seq) .. ARGV[1]
if old then redis.call('ZREM', KEYS[1], old) end
redis.call('ZADD', KEYS[1], newscore, member)
redis.call('HSET', KEYS[2], ARGV[1], member)
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  for _, key in ipairs(KEYS) do
    if redis.call('PTTL', key) == -1 then redis.call('PEXPIRE', key, ttl) end
  end
end
return {{1, newscore}}
"""

_RANK = """
local member = redis.call('HGET', KEYS[2], ARGV[1])
if not member then return false end
local rank = redis.call('ZREVRANK', KEYS[1], member)
if not rank then return false end
return {rank, redis.call('ZSCORE', KEYS[1], member)}
"""

_AROUND = """
local member = redis.call('HGET', KEYS[2], ARGV[1])
if not member then return false end
local rank = redis.call('ZREVRANK', KEYS[1], member)
if not rank then return false end
local n = tonumber(ARGV[2])
local first = math.max(rank - n, 0)
return {first, redis.call('ZREVRANGE', KEYS[1], first, rank + n, 'WITHSCORES')}
"""

_REMOVE = """
local member = redis.call('HGET', KEYS[2], ARGV[1])
if not member then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('ZREM', KEYS[1], member)
"""


@dataclass(frozen=True)
class Entry:
    """One player on a board: ``rank`` is 1-based, ``score`` the real score."""

    player: str
    score: float
    rank: int


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _player(member: Any) -> str:
    return _text(member)[_TIEBREAK_DIGITS:]


def _entries(pairs: list[tuple[Any, Any]], first_rank: int) -> list[Entry]:
    return [
        Entry(_player(member), float(score), first_rank + i)
        for i, (member, score) in enumerate(pairs)
    ]


def _flat_pairs(flat: list[Any]) -> list[tuple[Any, Any]]:
    return list(zip(flat[0::2], flat[1::2], strict=True))


class _Board:
    """Names, arguments and reply parsing shared by the sync and asyncio boards."""

    def __init__(
        self,
        name: str,
        mode: Mode,
        season: str | None,
        season_ttl: float | None,
        namespace: str,
    ) -> None:
        if mode not in ("best", "sum"):
            raise ValueError(f"mode must be 'best' or 'sum', not {mode!r}")
        if season_ttl is not None and season_ttl <= 0:
            raise ValueError("season_ttl must be positive")
        self.name = name
        self.mode = mode
        self.season = season
        self.season_ttl = season_ttl
        tag = name if season is None else f"{name}:{season}"
        base = f"{namespace}:{{{tag}}}"
        self.scores_key = f"{base}:scores"
        self.keys = [self.scores_key, f"{base}:players", f"{base}:seq"]

    def submit_args(self, player: str, score: float) -> list[str]:
        value = float(score)
        if not math.isfinite(value):
            raise ValueError("score must be finite")
        ttl_ms = 0 if self.season_ttl is None else max(1, round(self.season_ttl * 1000))
        return [player, repr(value), self.mode, str(ttl_ms)]

    @staticmethod
    def submitted(reply: Any) -> float:
        return float(_text(reply[1]))

    @staticmethod
    def ranked(player: str, reply: Any) -> Entry | None:
        if not reply:
            return None
        return Entry(player, float(_text(reply[1])), int(reply[0]) + 1)

    @staticmethod
    def around(reply: Any) -> list[Entry]:
        if not reply:
            return []
        return _entries(_flat_pairs(list(reply[1])), int(reply[0]) + 1)

    @staticmethod
    def window(number: int, size: int) -> tuple[int, int]:
        if number < 1 or size < 1:
            raise ValueError("page number and size start at 1")
        start = (number - 1) * size
        return start, start + size - 1


class Leaderboard:
    """A board over a synchronous ``redis.Redis`` client.

    ``mode="best"`` keeps each player's highest score; ``mode="sum"`` adds
    every submission. Boards with different ``name`` (or ``season``) are
    independent.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        name: str,
        mode: Mode = "best",
        season: str | None = None,
        season_ttl: float | None = None,
        namespace: str = "leaderboard",
    ) -> None:
        self.redis = redis_client
        self._board = _Board(name, mode, season, season_ttl, namespace)
        self._submit = redis_client.register_script(_SUBMIT)
        self._rank = redis_client.register_script(_RANK)
        self._around = redis_client.register_script(_AROUND)
        self._remove = redis_client.register_script(_REMOVE)

    @property
    def keys(self) -> list[str]:
        """The Redis keys of this board (scores, player index, sequence)."""
        return list(self._board.keys)

    def submit(self, player: str, score: float) -> float:
        """Record a score; the player's score on the board afterwards."""
        reply = self._submit(keys=self._board.keys, args=self._board.submit_args(player, score))
        return self._board.submitted(reply)

    def top(self, n: int = 10) -> list[Entry]:
        if n < 1:
            return []
        return self.page(1, n)

    def page(self, number: int, size: int) -> list[Entry]:
        """Page ``number`` (1-based) of ``size`` entries."""
        start, stop = self._board.window(number, size)
        pairs = self.redis.zrevrange(self._board.scores_key, start, stop, withscores=True)
        return _entries(cast(list[tuple[Any, Any]], pairs), start + 1)

    def entry(self, player: str) -> Entry | None:
        """The player's rank and score together, or ``None`` if not on the board."""
        return self._board.ranked(player, self._rank(keys=self._board.keys, args=[player]))

    def rank(self, player: str) -> int | None:
        """1-based rank, or ``None`` if the player is not on the board."""
        found = self.entry(player)
        return None if found is None else found.rank

    def score(self, player: str) -> float | None:
        found = self.entry(player)
        return None if found is None else found.score

    def around(self, player: str, n: int) -> list[Entry]:
        """Up to ``n`` neighbours above and ``n`` below, with the player between."""
        reply = self._around(keys=self._board.keys, args=[player, max(n, 0)])
        return self._board.around(reply)

    def remove(self, player: str) -> bool:
        return bool(self._remove(keys=self._board.keys, args=[player]))

    def size(self) -> int:
        return int(self.redis.zcard(self._board.scores_key))

    def clear(self) -> None:
        self.redis.delete(*self._board.keys)


class AsyncLeaderboard:
    """The same board over a ``redis.asyncio.Redis`` client."""

    def __init__(
        self,
        redis_client: aioredis.Redis,
        name: str,
        mode: Mode = "best",
        season: str | None = None,
        season_ttl: float | None = None,
        namespace: str = "leaderboard",
    ) -> None:
        self.redis = redis_client
        self._board = _Board(name, mode, season, season_ttl, namespace)
        self._submit = redis_client.register_script(_SUBMIT)
        self._rank = redis_client.register_script(_RANK)
        self._around = redis_client.register_script(_AROUND)
        self._remove = redis_client.register_script(_REMOVE)

    @property
    def keys(self) -> list[str]:
        return list(self._board.keys)

    async def submit(self, player: str, score: float) -> float:
        args = self._board.submit_args(player, score)
        return self._board.submitted(await self._submit(keys=self._board.keys, args=args))

    async def top(self, n: int = 10) -> list[Entry]:
        if n < 1:
            return []
        return await self.page(1, n)

    async def page(self, number: int, size: int) -> list[Entry]:
        start, stop = self._board.window(number, size)
        pairs = await self.redis.zrevrange(self._board.scores_key, start, stop, withscores=True)
        return _entries(cast(list[tuple[Any, Any]], pairs), start + 1)

    async def entry(self, player: str) -> Entry | None:
        reply = await self._rank(keys=self._board.keys, args=[player])
        return self._board.ranked(player, reply)

    async def rank(self, player: str) -> int | None:
        found = await self.entry(player)
        return None if found is None else found.rank

    async def score(self, player: str) -> float | None:
        found = await self.entry(player)
        return None if found is None else found.score

    async def around(self, player: str, n: int) -> list[Entry]:
        reply = await self._around(keys=self._board.keys, args=[player, max(n, 0)])
        return self._board.around(reply)

    async def remove(self, player: str) -> bool:
        return bool(await self._remove(keys=self._board.keys, args=[player]))

    async def size(self) -> int:
        return int(await self.redis.zcard(self._board.scores_key))

    async def clear(self) -> None:
        await self.redis.delete(*self._board.keys)
