"""The Starlette application: routes, and the cache patterns wired to the database."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from cacheyard.client.cache_aside import AsyncCacheAside
from cacheyard.client.connect import AsyncConnection, CacheEndpoints, connect_async
from cacheyard.client.integrations.starlette import SessionMiddleware, rotate_session
from cacheyard.client.leaderboard import AsyncLeaderboard
from cacheyard.client.retry import RetryPolicy
from cacheyard.client.sessions import AsyncSessionStore
from cacheyard.client.write_through import AsyncWriteThrough

from . import pages
from .db import PAGE_SIZE, USERS, Database

BOARD = "asteroids"
log = logging.getLogger("examples.shop")


class Shop:
    """What the routes share: the database and the cache patterns over one connection.

    Everything goes through the primary endpoint (``conn.writer``): the
    cache-aside fills, sessions (``GETEX`` slides the TTL: a write) and the
    leaderboard all write, and a player expects to see their own score at
    once. The connection's retry policy rides through a failover: a command
    caught while the primary endpoint moves is sent again on the new primary.
    """

    def __init__(self, db: Database, conn: AsyncConnection) -> None:
        self.db = db
        self.conn = conn
        self.catalog = AsyncCacheAside(conn.writer, namespace="shop-catalog", ttl=300.0)
        self.prices = AsyncWriteThrough(self.catalog)
        self.sessions = AsyncSessionStore(conn.writer, prefix="shop-session", ttl=1800)
        self.board = AsyncLeaderboard(conn.writer, BOARD, mode="best", namespace="shop-board")

    async def restore_board(self) -> None:
        """Rebuild the board from the scores table when the cache lost it (a new cache)."""
        if await self.board.size() == 0:
            for username, score in self.db.scores():
                await self.board.submit(username, score)


def _user(request: Request) -> tuple[str, str] | None:
    """(username, display name) of the signed-in user."""
    session: dict[str, Any] = request.state.session
    if "user" in session:
        return str(session["user"]), str(session["name"])
    return None


def _display(request: Request) -> str | None:
    found = _user(request)
    return None if found is None else found[1]


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (no python-multipart needed)."""
    fields = parse_qs((await request.body()).decode(), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _shop(request: Request) -> Shop:
    shop: Shop = request.app.state.shop
    return shop


def _page(request: Request, title: str, page: str, body: str, source: str = "") -> HTMLResponse:
    return HTMLResponse(pages.layout(title, page, _display(request), body, source))


async def home(request: Request) -> Response:
    return RedirectResponse("/products", status_code=303)


async def catalog(request: Request) -> Response:
    shop = _shop(request)
    try:
        page = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        page = 1
    source = "cache"

    async def load() -> dict[str, Any]:
        nonlocal source
        source = "database"
        return {"pages": shop.db.product_pages(), "products": shop.db.products_page(page)}

    found = await shop.catalog.get(f"page:{page}", load)
    assert found is not None
    body = pages.catalog(found["products"], page, found["pages"])
    return _page(request, f"Catalog, page {page}", "catalog", body, source)


async def product(request: Request) -> Response:
    shop = _shop(request)
    product_id = int(request.path_params["product_id"])
    source = "cache"

    async def load() -> dict[str, Any] | None:
        nonlocal source
        source = "database"
        return shop.db.product(product_id)

    item: dict[str, Any] | None = await shop.catalog.get(f"product:{product_id}", load)
    if item is None:  # cached as missing too (negative caching)
        return HTMLResponse(
            pages.layout("Not found", "error", _display(request), pages.error("No such product.")),
            status_code=404,
        )
    body = pages.product(item, _user(request) is not None)
    return _page(request, item["name"], "product", body, source)


async def set_price(request: Request) -> Response:
    shop = _shop(request)
    product_id = int(request.path_params["product_id"])
    if _user(request) is None:
        return RedirectResponse("/login", status_code=303)
    try:
        cents = int((await _form(request)).get("price_cents", ""))
    except ValueError:
        cents = 0
    current = shop.db.product(product_id)
    if current is None or cents <= 0:
        message = "No such product." if current is None else "Enter a price in cents."
        return HTMLResponse(
            pages.layout("Price not changed", "error", _display(request), pages.error(message)),
            status_code=400,
        )

    async def commit() -> dict[str, Any]:
        return shop.db.set_price(product_id, cents)

    # the database first, then the cache (the cache never keeps a rejected value)
    await shop.prices.write(f"product:{product_id}", {**current, "price_cents": cents}, commit)
    await shop.catalog.invalidate(f"page:{(product_id - 1) // PAGE_SIZE + 1}")
    return RedirectResponse(f"/products/{product_id}", status_code=303)


async def login_form(request: Request) -> Response:
    body = pages.login(demo=[(u, p) for u, (_, p) in USERS.items()])
    return _page(request, "Log in", "login", body)


async def login(request: Request) -> Response:
    form = await _form(request)
    username = form.get("username", "").strip()
    name = _shop(request).db.check_login(username, form.get("password", ""))
    if name is None:
        body = pages.login("Wrong user name or password.", [(u, p) for u, (_, p) in USERS.items()])
        return HTMLResponse(pages.layout("Log in", "login", None, body), status_code=401)
    session: dict[str, Any] = request.state.session
    session.clear()
    session.update(user=username, name=name)
    rotate_session(request)  # a session id planted before the login is worthless after it
    return RedirectResponse("/products", status_code=303)


async def logout(request: Request) -> Response:
    request.state.session.clear()  # the middleware deletes the session and the cookie
    return RedirectResponse("/products", status_code=303)


async def leaderboard(request: Request) -> Response:
    shop = _shop(request)
    user = _user(request)
    top = await shop.board.top(10)
    mine = None if user is None else await shop.board.entry(user[0])
    return _page(request, "Asteroids leaderboard", "leaderboard",
                 pages.leaderboard(top, mine, user is not None))  # fmt: skip


async def submit_score(request: Request) -> Response:
    shop = _shop(request)
    user = _user(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    try:
        score = int((await _form(request)).get("score", ""))
    except ValueError:
        score = -1
    if score < 0:
        body = pages.error("A score is a whole number, 0 or more.")
        return HTMLResponse(
            pages.layout("Score not saved", "error", user[1], body), status_code=400
        )
    shop.db.add_score(user[0], score)
    await shop.board.submit(user[0], score)
    return RedirectResponse("/leaderboard", status_code=303)


async def cache_unavailable(request: Request, exc: Exception) -> Response:
    """What a user sees when the cache stays unreachable past the client's retries, which
    already ride a failover (a moving endpoint, READONLY, NOREPLICAS)."""
    log.warning("%s %s failed: %r", request.method, request.url.path, exc)
    body = pages.error(f"The cache is unavailable, please try again ({type(exc).__name__}).")
    return HTMLResponse(pages.layout("Unavailable", "error", None, body), status_code=503)


def create_app(
    endpoints: CacheEndpoints, database: Path | str, retry: RetryPolicy | None = None
) -> Starlette:
    db = Database(database)
    db.setup()
    conn = connect_async(endpoints, socket_timeout=2.0, retry=retry)
    shop = Shop(db, conn)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await shop.restore_board()
        try:
            yield
        finally:
            await conn.aclose()
            db.close()

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/products", catalog),
            Route("/products/{product_id:int}", product),
            Route("/products/{product_id:int}/price", set_price, methods=["POST"]),
            Route("/login", login_form, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/leaderboard", leaderboard, methods=["GET"]),
            Route("/leaderboard", submit_score, methods=["POST"]),
        ],
        middleware=[Middleware(SessionMiddleware, store=shop.sessions, cookie_name="shop")],
        exception_handlers={RedisError: cache_unavailable},
        lifespan=lifespan,
    )
    app.state.shop = shop
    return app
