"""Server-side sessions for Starlette and FastAPI, as a pure ASGI middleware.

The cookie carries only the session id (HttpOnly, SameSite=Lax); the data
stays in Redis through :class:`~cacheyard.client.sessions.AsyncSessionStore`,
so any web server behind the load balancer can serve the next request.

Handlers read and change ``request.state.session`` (a plain dict). When the
response starts, the middleware writes back only what changed (compared with
a JSON snapshot, so in-place changes to nested values count too):

* a new non-empty session is created, with a fresh id, and its cookie set;
* a changed session is saved under its id (which restarts its TTL);
* a session emptied by the handler (``.clear()``: logout) is deleted and its
  cookie expired;
* an unchanged session costs nothing more: loading it already renewed its
  TTL (sliding sessions).

A pure ASGI middleware (rather than ``BaseHTTPMiddleware``) so streaming
responses and background tasks are left alone.
"""

from __future__ import annotations

import json
from http.cookies import SimpleCookie
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cacheyard.client.sessions import AsyncSessionStore, SessionData, is_valid_session_id

_EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"


def _snapshot(data: SessionData) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def rotate_session(request: HTTPConnection) -> None:
    """Ask for a fresh session id when this response is sent. Call it on login, so an id
    planted before authentication (session fixation) is worthless after it."""
    request.state.rotate_session = True


class SessionMiddleware:
    """Keeps ``request.state.session`` in a :class:`AsyncSessionStore`.

    ``max_age`` (seconds) makes the cookie persistent, renewed with every
    response; by default it is a browser-session cookie and the store's TTL
    decides when a session ends.
    """

    def __init__(
        self,
        app: ASGIApp,
        store: AsyncSessionStore,
        cookie_name: str = "session",
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        max_age: int | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.cookie_name = cookie_name
        self.path = path
        self.domain = domain
        self.secure = secure
        self.max_age = max_age

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session_id: str | None = HTTPConnection(scope).cookies.get(self.cookie_name)
        loaded: SessionData | None = None
        if session_id is not None and is_valid_session_id(session_id):
            loaded = await self.store.load(session_id)
        if loaded is None:
            session_id = None
        before = _snapshot(loaded or {})
        state: dict[str, Any] = scope.setdefault("state", {})
        state["session"] = dict(loaded or {})

        async def send_with_session(message: Message) -> None:
            if message["type"] == "http.response.start":
                current = session_id
                if current is not None and state.pop("rotate_session", False):
                    current = await self.store.rotate(current)
                cookie = await self._commit(current, before, state.get("session") or {})
                if current != session_id and current is not None and cookie is None:
                    cookie = self._cookie(current)
                if cookie is not None:
                    MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        await self.app(scope, receive, send_with_session)

    async def _commit(
        self, session_id: str | None, before: str, session: SessionData
    ) -> str | None:
        """Write back what the handler changed; the Set-Cookie value, if any."""
        if not session:
            if session_id is None:
                return None
            await self.store.delete(session_id)
            return self._cookie("", expire=True)
        if session_id is None:
            return self._cookie(await self.store.create(session))
        if _snapshot(session) != before:
            await self.store.save(session_id, session)
        # a persistent cookie slides with the session, or the browser would drop it first
        return self._cookie(session_id) if self.max_age is not None else None

    def _cookie(self, value: str, expire: bool = False) -> str:
        jar: SimpleCookie = SimpleCookie()
        jar[self.cookie_name] = value
        morsel = jar[self.cookie_name]
        morsel["path"] = self.path
        morsel["httponly"] = True
        morsel["samesite"] = "Lax"
        if self.secure:
            morsel["secure"] = True
        if self.domain is not None:
            morsel["domain"] = self.domain
        if expire:
            morsel["max-age"] = 0
            morsel["expires"] = _EXPIRED
        elif self.max_age is not None:
            morsel["max-age"] = self.max_age
        return morsel.OutputString()
