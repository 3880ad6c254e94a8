"""Server-side sessions for Flask: a ``SessionInterface`` over :class:`SessionStore`.

Set ``app.session_interface = RedisSessionInterface(store)`` and use
``flask.session`` as usual. The cookie holds only the session id; the cookie
attributes follow Flask's ``SESSION_COOKIE_*`` settings, except that
SameSite defaults to ``Lax`` (Flask's own default is unset) and HttpOnly
stays on unless configured off.

What is written back, and why, mirrors the Starlette middleware: a new
non-empty session is created with a fresh id; a changed one (compared with a
JSON snapshot, so nested in-place changes count) is saved; an emptied one
(``session.clear()``: logout) is deleted with its cookie; an unchanged one
costs nothing, because loading it already renewed its TTL. A permanent
session (``session.permanent = True``) gets a cookie with
``PERMANENT_SESSION_LIFETIME``. :func:`rotate_session` (call it at login)
moves the session to a fresh id when the response is sent, so an id planted
before authentication is worthless after it.
"""

from __future__ import annotations

import json
from typing import Any

import flask
from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from cacheyard.client.sessions import SessionData, SessionStore, is_valid_session_id


def _snapshot(data: SessionData) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


class RedisSession(CallbackDict[str, Any], SessionMixin):
    """``flask.session``: a dict that remembers its id and how it was loaded."""

    def __init__(self, data: SessionData | None = None, session_id: str | None = None) -> None:
        def on_update(session: CallbackDict[str, Any]) -> None:
            self.modified = True

        super().__init__(data or {}, on_update)
        self.session_id = session_id
        self.new = session_id is None
        self.modified = False
        self.rotate_requested = False
        self.loaded = _snapshot(dict(self))

    def changed(self) -> bool:
        return self.modified or _snapshot(dict(self)) != self.loaded


def rotate_session() -> None:
    """Give the current session a fresh id when this response is sent (session
    fixation: call it when a user logs in)."""
    current = flask.session
    if isinstance(current, RedisSession):
        current.rotate_requested = True
        current.modified = True


class RedisSessionInterface(SessionInterface):
    """Flask sessions kept in Redis through a :class:`SessionStore`."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    def open_session(self, app: Flask, request: Request) -> RedisSession:
        session_id = request.cookies.get(self.get_cookie_name(app))
        if session_id is not None and is_valid_session_id(session_id):
            data = self.store.load(session_id)
            if data is not None:
                return RedisSession(data, session_id)
        return RedisSession()

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, RedisSession):
            return
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        secure = self.get_cookie_secure(app)
        samesite = self.get_cookie_samesite(app) or "Lax"
        httponly = self.get_cookie_httponly(app)
        response.vary.add("Cookie")
        if not session:
            if session.session_id is not None:
                self.store.delete(session.session_id)
                response.delete_cookie(
                    name,
                    domain=domain,
                    path=path,
                    secure=secure,
                    httponly=httponly,
                    samesite=samesite,
                )
            return
        if session.rotate_requested and session.session_id is not None:
            self.store.delete(session.session_id)
            session.session_id = None  # saved below under a fresh id
        if not session.changed():
            return
        if session.session_id is None:
            session.session_id = self.store.create(dict(session))
        else:
            self.store.save(session.session_id, dict(session))
        response.set_cookie(
            name,
            session.session_id,
            expires=self.get_expiration_time(app, session),
            domain=domain,
            path=path,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
        )
