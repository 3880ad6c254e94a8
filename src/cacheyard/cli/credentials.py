"""The first-start access key pair, in the AWS shared-credentials format."""

from __future__ import annotations

import configparser
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from cacheyard.cli.settings import Settings

_KEY_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


@dataclass(frozen=True)
class KeyPair:
    access_key_id: str
    secret_access_key: str


def new_key_pair() -> KeyPair:
    key = "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    return KeyPair(key, secret)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def write_files(settings: Settings, pair: KeyPair) -> None:
    _write_private(
        settings.credentials_file,
        "[default]\n"
        f"aws_access_key_id = {pair.access_key_id}\n"
        f"aws_secret_access_key = {pair.secret_access_key}\n",
    )
    _write_private(settings.config_file, f"[default]\nregion = {settings.region}\n")


def read_files(settings: Settings) -> KeyPair | None:
    if not settings.credentials_file.exists():
        return None
    parser = configparser.ConfigParser()
    parser.read(settings.credentials_file)
    if not parser.has_section("default"):
        return None
    section = parser["default"]
    return KeyPair(section["aws_access_key_id"], section["aws_secret_access_key"])
