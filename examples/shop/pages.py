"""Server-rendered HTML: small functions, every value escaped."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

from cacheyard.client.leaderboard import Entry

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 1rem auto; }
nav a, nav form { margin-right: 1rem; display: inline; }
table { border-collapse: collapse; } td, th { padding: .2rem .6rem; text-align: left; }
.source { font-size: .85rem; color: #555; } .error { color: #a00; }
"""


def price(cents: int) -> str:
    return f"${cents // 100}.{cents % 100:02d}"


def layout(title: str, page: str, user: str | None, body: str, source: str = "") -> str:
    """The whole document; ``page`` names it for tests (``<main data-page=...>``)."""
    if user is None:
        who = '<span id="user">Not signed in</span> <a id="login-link" href="/login">Log in</a>'
    else:
        who = (
            f'<span id="user">Signed in as {escape(user)}</span> '
            '<form method="post" action="/logout"><button id="logout">Log out</button></form>'
        )
    marker = f'<p class="source" id="source">served from {escape(source)}</p>' if source else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · Cacheyard shop</title>
<style>{_STYLE}</style></head>
<body>
<nav><a href="/products">Catalog</a><a href="/leaderboard">Leaderboard</a>{who}</nav>
<main id="page" data-page="{escape(page)}">
<h1>{escape(title)}</h1>
{body}
{marker}
</main>
</body></html>"""


def catalog(products: Iterable[dict[str, Any]], page: int, pages: int) -> str:
    rows = "".join(
        f'<tr><td><a href="/products/{p["id"]}">{escape(p["name"])}</a></td>'
        f'<td class="price">{price(p["price_cents"])}</td></tr>'
        for p in products
    )
    links = " ".join(
        f"<strong>{n}</strong>" if n == page else f'<a href="/products?page={n}">{n}</a>'
        for n in range(1, pages + 1)
    )
    return (
        f'<table id="products"><tr><th>Product</th><th>Price</th></tr>{rows}</table>'
        f'<p id="pages">Page {links}</p>'
    )


def product(item: dict[str, Any], signed_in: bool) -> str:
    form = (
        f'<form method="post" action="/products/{item["id"]}/price">'
        '<label>New price (cents) <input name="price_cents" type="number" min="1" required>'
        '</label> <button id="set-price">Update price</button></form>'
        if signed_in
        else "<p>Log in to change the price.</p>"
    )
    return (
        f'<p id="description">{escape(item["description"])}</p>'
        f'<p>Price: <span id="price">{price(item["price_cents"])}</span></p>{form}'
    )


def login(error: str | None = None, demo: Iterable[tuple[str, str]] = ()) -> str:
    message = f'<p class="error" id="login-error">{escape(error)}</p>' if error else ""
    accounts = ", ".join(f"{escape(u)} / {escape(p)}" for u, p in demo)
    return f"""{message}
<form method="post" action="/login" id="login-form">
<p><label>User <input name="username" id="username" autocomplete="username" required></label></p>
<p><label>Password <input name="password" id="password" type="password" required></label></p>
<p><button id="login-submit">Log in</button></p>
</form>
<p>Demo accounts: {accounts}</p>"""


def leaderboard(top: list[Entry], mine: Entry | None, signed_in: bool) -> str:
    rows = "".join(
        f"<tr><td>{e.rank}</td><td>{escape(e.player)}</td><td>{e.score:g}</td></tr>" for e in top
    )
    if not signed_in:
        you = '<p id="rank">Log in to submit scores.</p>'
    elif mine is None:
        you = '<p id="rank">You are not on the board yet.</p>'
    else:
        you = f'<p id="rank">Your rank: {mine.rank} (best score {mine.score:g})</p>'
    form = (
        '<form method="post" action="/leaderboard" id="score-form">'
        '<label>Score <input name="score" id="score" type="number" min="0" required></label> '
        '<button id="submit-score">Submit</button></form>'
        if signed_in
        else ""
    )
    return (
        f'{you}{form}<h2>Top 10</h2><table id="top"><tr><th>#</th><th>Player</th>'
        f"<th>Score</th></tr>{rows}</table>"
    )


def error(message: str) -> str:
    return f'<p class="error" id="error">{escape(message)}</p>'
