"""The shop's database: SQLite from the standard library, created and seeded on start."""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import sqlite3
from pathlib import Path
from typing import Any

PBKDF2_ITERATIONS = 100_000
PAGE_SIZE = 10

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents > 0)
);
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    salt BLOB NOT NULL,
    password_hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS scores (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL REFERENCES users(username),
    score INTEGER NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
"""

#: username -> (display name, password): demo accounts, shown on the login page.
USERS = {
    "alice": ("Alice Liddell", "wonderland"),
    "bob": ("Bob Builder", "canwefixit"),
    "carol": ("Carol Danvers", "higherfurther"),
}

_ADJECTIVES = ["Cosy", "Sturdy", "Shiny", "Tiny", "Grand", "Swift", "Quiet", "Bright", "Wild"]
_NOUNS = ["Teapot", "Lamp", "Backpack", "Kettle", "Notebook", "Scarf", "Mug", "Chair", "Clock"]


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ITERATIONS)


class Database:
    """One SQLite connection; the app calls it from its event loop thread only."""

    def __init__(self, path: Path | str) -> None:
        self.conn = sqlite3.connect(str(path), check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.queries = 0  # how many times the app reached the database (shown on pages)

    def setup(self, products: int = 50) -> None:
        """Create the tables and seed them when empty (idempotent)."""
        with self.conn:
            self.conn.executescript(_SCHEMA)
            if self.conn.execute("SELECT COUNT(*) FROM products").fetchone()[0] == 0:
                rng = random.Random(6)
                for n in range(1, products + 1):
                    name = f"{_ADJECTIVES[n % len(_ADJECTIVES)]} {_NOUNS[n % len(_NOUNS)]} {n}"
                    self.conn.execute(
                        "INSERT INTO products (id, name, description, price_cents) "
                        "VALUES (?, ?, ?, ?)",
                        (n, name, f"The {name.lower()}, made to last.", rng.randint(199, 9999)),
                    )
            for username, (display_name, password) in USERS.items():
                salt = secrets.token_bytes(16)
                self.conn.execute(
                    "INSERT OR IGNORE INTO users VALUES (?, ?, ?, ?)",
                    (username, display_name, salt, hash_password(password, salt)),
                )

    def close(self) -> None:
        self.conn.close()

    def _all(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        self.queries += 1
        return [dict(row) for row in self.conn.execute(sql, args).fetchall()]

    def product_pages(self) -> int:
        self.queries += 1
        count = int(self.conn.execute("SELECT COUNT(*) FROM products").fetchone()[0])
        return max(1, -(-count // PAGE_SIZE))

    def products_page(self, page: int) -> list[dict[str, Any]]:
        return self._all(
            "SELECT id, name, price_cents FROM products ORDER BY id LIMIT ? OFFSET ?",
            PAGE_SIZE,
            (page - 1) * PAGE_SIZE,
        )

    def product(self, product_id: int) -> dict[str, Any] | None:
        found = self._all(
            "SELECT id, name, description, price_cents FROM products WHERE id = ?", product_id
        )
        return found[0] if found else None

    def set_price(self, product_id: int, price_cents: int) -> dict[str, Any]:
        """Commit the new price; the updated row (raises if the product does not exist)."""
        with self.conn:
            done = self.conn.execute(
                "UPDATE products SET price_cents = ? WHERE id = ?", (price_cents, product_id)
            )
        if done.rowcount != 1:
            raise LookupError(f"no product {product_id}")
        found = self.product(product_id)
        assert found is not None
        return found

    def check_login(self, username: str, password: str) -> str | None:
        """The user's display name if the password is right, else ``None``."""
        self.queries += 1
        row = self.conn.execute(
            "SELECT display_name, salt, password_hash FROM users WHERE username = ?", (username,)
        ).fetchone()
        # hash even for unknown users, so timing does not reveal which names exist
        salt = row["salt"] if row else b"\0" * 16
        expected = row["password_hash"] if row else b""
        if hmac.compare_digest(hash_password(password, salt), expected) and row:
            return str(row["display_name"])
        return None

    def add_score(self, username: str, score: int) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO scores (username, score) VALUES (?, ?)", (username, score)
            )

    def scores(self) -> list[tuple[str, int]]:
        """Every score ever submitted, oldest first."""
        return [
            (r["username"], int(r["score"]))
            for r in self._all("SELECT username, score FROM scores ORDER BY id")
        ]
