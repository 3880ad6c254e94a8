"""The session integrations driven by each framework's own test client: login
sets a session, the next request sees it, logout deletes it, and an expired
session is gone."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import flask
import pytest
import redis
import redis.asyncio as aioredis
from client_caches import Caches
from service_helpers import wait_for
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from cacheyard.client.integrations import flask as flask_sessions
from cacheyard.client.integrations.flask import RedisSessionInterface
from cacheyard.client.integrations.starlette import SessionMiddleware, rotate_session
from cacheyard.client.sessions import AsyncSessionStore, SessionStore

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def client(caches: Caches) -> Iterator[redis.Redis]:
    connection = redis.Redis(host=caches.redis_address, port=6379, socket_timeout=5)
    yield connection
    connection.close()


def session_keys(client: redis.Redis, prefix: str) -> list[str]:
    return sorted(k.decode() for k in client.scan_iter(match=f"{prefix}:*"))


def starlette_app(address: str, prefix: str, ttl: int, max_age: int | None = None) -> Starlette:
    connection = aioredis.Redis(host=address, port=6379)
    store = AsyncSessionStore(connection, prefix=prefix, ttl=ttl)

    async def login(request: Request) -> PlainTextResponse:
        request.state.session["user"] = request.query_params["user"]
        return PlainTextResponse("welcome")

    async def add(request: Request) -> PlainTextResponse:
        request.state.session.setdefault("cart", []).append(request.query_params["item"])
        return PlainTextResponse("added")

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse(request.state.session)

    async def logout(request: Request) -> PlainTextResponse:
        request.state.session.clear()
        return PlainTextResponse("bye")

    async def elevate(request: Request) -> PlainTextResponse:
        request.state.session["admin"] = True
        rotate_session(request)
        return PlainTextResponse("elevated")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await connection.aclose()

    return Starlette(
        routes=[
            Route("/login", login, methods=["POST"]),
            Route("/add", add, methods=["POST"]),
            Route("/whoami", whoami),
            Route("/logout", logout, methods=["POST"]),
            Route("/elevate", elevate, methods=["POST"]),
        ],
        middleware=[Middleware(SessionMiddleware, store=store, cookie_name="sid", max_age=max_age)],
        lifespan=lifespan,
    )


def flask_app(client: redis.Redis, prefix: str, ttl: int) -> flask.Flask:
    app = flask.Flask("sessions-under-test")
    app.session_interface = RedisSessionInterface(SessionStore(client, prefix=prefix, ttl=ttl))
    app.config["SESSION_COOKIE_NAME"] = "sid"

    @app.post("/login")
    def login() -> str:
        flask.session["user"] = flask.request.args["user"]
        return "welcome"

    @app.post("/add")
    def add() -> str:
        flask.session.setdefault("cart", []).append(flask.request.args["item"])
        return "added"

    @app.post("/elevate")
    def elevate() -> str:
        flask.session["admin"] = True
        flask_sessions.rotate_session()
        return "elevated"

    @app.get("/whoami")
    def whoami() -> dict[str, Any]:
        return dict(flask.session)

    @app.post("/logout")
    def logout() -> str:
        flask.session.clear()
        return "bye"

    return app


class Browser:
    """The two frameworks' test clients behind one small interface."""

    def __init__(self, post: Callable[[str], Any], get: Callable[[str], Any]) -> None:
        self.post = post
        self.get = get

    def whoami(self) -> Any:
        return self.json(self.get("/whoami"))

    @staticmethod
    def json(response: Any) -> Any:
        body = response.json  # a method on httpx, a property on werkzeug
        return body() if callable(body) else body

    def set_cookie(self, response: Any) -> str:
        return str(response.headers.get("set-cookie", ""))


def flows(client: redis.Redis, prefix: str, browser: Browser) -> None:
    """Login, next request, nested change, logout: the same for every framework."""
    first = browser.get("/whoami")
    assert browser.json(first) == {} and browser.set_cookie(first) == ""
    assert session_keys(client, prefix) == []  # an empty session is never stored

    login = browser.post("/login?user=ann")
    cookie = browser.set_cookie(login)
    assert cookie.startswith("sid=") and "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    (key,) = session_keys(client, prefix)
    assert cookie.split(";")[0].removeprefix("sid=") == key.removeprefix(f"{prefix}:")

    assert browser.whoami() == {"user": "ann"}
    browser.post("/add?item=apple")
    browser.post("/add?item=pear")
    assert browser.whoami() == {"user": "ann", "cart": ["apple", "pear"]}
    assert session_keys(client, prefix) == [key]  # the same session, updated in place

    logout = browser.post("/logout")
    assert "sid=" in browser.set_cookie(logout)
    assert session_keys(client, prefix) == []
    assert browser.whoami() == {}


def expiry(client: redis.Redis, prefix: str, browser: Browser) -> None:
    browser.post("/login?user=bob")
    assert browser.whoami() == {"user": "bob"}
    wait_for(lambda: not session_keys(client, prefix), timeout=5)
    assert browser.whoami() == {}


def test_starlette_middleware(caches: Caches, client: redis.Redis) -> None:
    prefix = f"web-test-{uuid.uuid4().hex}"
    with TestClient(starlette_app(caches.redis_address, prefix, ttl=600)) as web:
        flows(client, prefix, Browser(web.post, web.get))


def test_starlette_session_expires(caches: Caches, client: redis.Redis) -> None:
    prefix = f"web-test-{uuid.uuid4().hex}"
    with TestClient(starlette_app(caches.redis_address, prefix, ttl=1)) as web:
        expiry(client, prefix, Browser(web.post, web.get))


def test_starlette_ignores_a_forged_cookie(caches: Caches, client: redis.Redis) -> None:
    prefix = f"web-test-{uuid.uuid4().hex}"
    with TestClient(starlette_app(caches.redis_address, prefix, ttl=600)) as web:
        web.cookies.set("sid", "../../etc/passwd")
        assert web.get("/whoami").json() == {}
        web.cookies.set("sid", "x" * 43)  # well formed, but never issued
        assert web.get("/whoami").json() == {}
        assert session_keys(client, prefix) == []


def test_starlette_persistent_cookie_slides(caches: Caches, client: redis.Redis) -> None:
    prefix = f"web-test-{uuid.uuid4().hex}"
    with TestClient(starlette_app(caches.redis_address, prefix, ttl=600, max_age=600)) as web:
        login = web.post("/login?user=cy").headers["set-cookie"]
        assert "Max-Age=600" in login
        again = web.get("/whoami")
        assert again.json() == {"user": "cy"}
        assert again.headers["set-cookie"].split(";")[0] == login.split(";")[0]
        assert "Max-Age=600" in again.headers["set-cookie"]


def test_flask_session_interface(client: redis.Redis) -> None:
    prefix = f"web-test-{uuid.uuid4().hex}"
    with flask_app(client, prefix, ttl=600).test_client() as web:
        flows(client, prefix, Browser(web.post, web.get))


def test_flask_session_expires(client: redis.Redis) -> None:
    prefix = f"web-test-{uuid.uuid4().hex}"
    with flask_app(client, prefix, ttl=1).test_client() as web:
        expiry(client, prefix, Browser(web.post, web.get))


def test_starlette_rotates_the_session_id_on_request(caches: Caches, client: redis.Redis) -> None:
    """After a login (rotate_session) the old id is worthless: no session fixation."""
    app = starlette_app(caches.redis_address, "rotate", ttl=60)
    with TestClient(app) as browser:
        browser.post("/login", params={"user": "alice"})
        planted = browser.cookies["sid"]
        assert browser.post("/elevate").text == "elevated"
        fresh = browser.cookies["sid"]
        assert fresh != planted
        assert browser.get("/whoami").json() == {"user": "alice", "admin": True}
        browser.cookies.clear()
        browser.cookies.set("sid", planted)
        assert browser.get("/whoami").json() == {}


def test_flask_rotates_the_session_id_on_request(client: redis.Redis) -> None:
    """After rotate_session() the old id is worthless: no session fixation."""
    prefix = f"web-test-{uuid.uuid4().hex}"
    with flask_app(client, prefix, ttl=600).test_client() as web:
        web.post("/login?user=alice")
        planted = web.get_cookie("sid")
        assert planted is not None
        assert web.post("/elevate").text == "elevated"
        fresh = web.get_cookie("sid")
        assert fresh is not None and fresh.value != planted.value
        assert web.get("/whoami").json == {"user": "alice", "admin": True}
        assert len(session_keys(client, prefix)) == 1  # the planted id is gone
        web.set_cookie("sid", planted.value)
        assert web.get("/whoami").json == {}
