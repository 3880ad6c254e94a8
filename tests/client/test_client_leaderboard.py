"""Leaderboards against a Redis created through Cacheyard, checked by brute force.

The reference ranks by score, then by the submission index at which a player
reached that score: exactly the order the library promises.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis
from client_caches import Caches
from service_helpers import wait_for

from cacheyard.client.leaderboard import AsyncLeaderboard, Entry, Leaderboard, Mode

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def client(caches: Caches) -> Iterator[redis.Redis]:
    connection = redis.Redis(host=caches.redis_address, port=6379, socket_timeout=5)
    yield connection
    connection.close()


def namespace() -> str:
    return f"lb-test-{uuid.uuid4().hex}"


def reference(submissions: list[tuple[str, float]], mode: Mode) -> list[Entry]:
    scores: dict[str, float] = {}
    reached: dict[str, int] = {}
    for when, (player, score) in enumerate(submissions):
        if player not in scores or (mode == "best" and score > scores[player]):
            scores[player], reached[player] = score, when
        elif mode == "sum" and score != 0:
            scores[player], reached[player] = scores[player] + score, when
    order = sorted(scores, key=lambda p: (-scores[p], reached[p]))
    return [Entry(p, scores[p], i + 1) for i, p in enumerate(order)]


@pytest.mark.parametrize("mode", ["best", "sum"])
def test_matches_a_brute_force_ranking(client: redis.Redis, mode: Mode) -> None:
    rng = random.Random(f"leaderboard-{mode}")
    players = [f"player-{i:03d}" for i in range(300)]
    high = 40 if mode == "best" else 6  # few distinct values: many ties
    submissions = [(rng.choice(players), float(rng.randint(0, high))) for _ in range(2000)]
    board = Leaderboard(client, "game", mode=mode, namespace=namespace())

    returned: dict[str, float] = {}
    for player, score in submissions:
        returned[player] = board.submit(player, score)

    expected = reference(submissions, mode)
    by_player = {e.player: e for e in expected}
    assert returned == {p: e.score for p, e in by_player.items()}
    assert board.size() == len(expected)
    assert board.top(10) == expected[:10]
    assert board.top(len(expected) + 5) == expected
    for size in (7, 50):
        pages = [board.page(n, size) for n in range(1, len(expected) // size + 3)]
        assert [e for page in pages for e in page] == expected
        assert pages[-1] == []
    for entry in expected:
        assert board.entry(entry.player) == entry
        assert board.rank(entry.player) == entry.rank
        assert board.score(entry.player) == entry.score
    for entry in expected[:5] + rng.sample(expected, 40) + expected[-5:]:
        i = entry.rank - 1
        assert board.around(entry.player, 3) == expected[max(i - 3, 0) : i + 4]
    assert board.rank("nobody") is None and board.around("nobody", 2) == []


def test_ties_go_to_who_reached_the_score_first(client: redis.Redis) -> None:
    board = Leaderboard(client, "ties", namespace=namespace())
    board.submit("alice", 10)
    board.submit("bob", 10)
    assert [e.player for e in board.top(2)] == ["alice", "bob"]
    board.submit("bob", 11)
    board.submit("alice", 11)
    assert [e.player for e in board.top(2)] == ["bob", "alice"]
    assert board.submit("bob", 5) == 11  # best-of keeps the max, and bob's time
    board.submit("bob", 11)
    assert [(e.player, e.score, e.rank) for e in board.top(2)] == [
        ("bob", 11.0, 1),
        ("alice", 11.0, 2),
    ]


def test_cumulative_scores_keep_fractions_and_negatives(client: redis.Redis) -> None:
    board = Leaderboard(client, "sum", mode="sum", namespace=namespace())
    assert board.submit("carol", 1.25) == 1.25
    assert board.submit("carol", -0.5) == 0.75
    assert board.submit("dave", 0.75) == 0.75
    assert [e.player for e in board.top(2)] == ["carol", "dave"]
    assert board.remove("carol") and not board.remove("carol")
    assert board.top(5) == [Entry("dave", 0.75, 1)]


def test_boards_are_independent(client: redis.Redis) -> None:
    ns = namespace()
    easy = Leaderboard(client, "easy", namespace=ns)
    hard = Leaderboard(client, "hard", namespace=ns)
    spring = Leaderboard(client, "easy", season="spring", namespace=ns)
    easy.submit("ann", 5)
    hard.submit("ann", 1)
    hard.submit("ben", 3)
    spring.submit("cid", 9)
    assert easy.top(5) == [Entry("ann", 5.0, 1)]
    assert hard.top(5) == [Entry("ben", 3.0, 1), Entry("ann", 1.0, 2)]
    assert spring.top(5) == [Entry("cid", 9.0, 1)]
    easy.clear()
    assert easy.size() == 0 and hard.size() == 2 and spring.size() == 1


def test_a_seasonal_board_expires(client: redis.Redis) -> None:
    ns = namespace()
    season = Leaderboard(client, "weekly", season="w48", season_ttl=1.0, namespace=ns)
    forever = Leaderboard(client, "weekly", namespace=ns)
    season.submit("eve", 3)
    season.submit("fay", 4)
    forever.submit("eve", 3)
    ttls = [client.pttl(key) for key in season.keys]
    assert all(0 < ttl <= 1000 for ttl in ttls), ttls
    assert all(client.ttl(key) == -1 for key in forever.keys)
    season.submit("eve", 9)  # a later submission does not extend the season
    assert all(client.pttl(key) <= 1000 for key in season.keys)

    wait_for(lambda: not client.exists(*season.keys), timeout=10)
    assert season.top(5) == [] and season.rank("eve") is None
    assert forever.top(5) == [Entry("eve", 3.0, 1)]


async def test_asyncio_board_with_decoded_responses(caches: Caches) -> None:
    connection = aioredis.Redis(host=caches.redis_address, port=6379, decode_responses=True)
    try:
        board = AsyncLeaderboard(connection, "async", mode="sum", namespace=namespace())
        for player, score in [("gus", 2), ("hal", 3), ("gus", 1), ("ivy", 3)]:
            await board.submit(player, score)
        expected = [Entry("hal", 3.0, 1), Entry("gus", 3.0, 2), Entry("ivy", 3.0, 3)]
        assert await board.top(3) == expected
        assert await board.page(2, 2) == expected[2:]
        assert await board.entry("gus") == expected[1]
        assert await board.rank("ivy") == 3 and await board.score("hal") == 3.0
        assert await board.around("hal", 1) == expected[:2]
        assert await board.size() == 3
        assert await board.remove("hal")
        await board.clear()
        assert await board.top(3) == []
    finally:
        await connection.aclose()
