"""The administrator's access key pair, in the AWS shared-credentials format (0600)."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path

from cacheyard.cli.settings import DEFAULT_REGION, Settings
from cacheyard.domain.iam import new_access_key_id, new_secret


@dataclass(frozen=True)
class KeyPair:
    access_key_id: str
    secret_access_key: str = field(repr=False)


def new_key_pair() -> KeyPair:
    return KeyPair(new_access_key_id(), new_secret())


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


def configured_region(settings: Settings) -> str:
    """The region the service wrote to the AWS config file beside the credentials."""
    for line in (
        settings.config_file.read_text().splitlines() if settings.config_file.exists() else []
    ):
        key, _, value = line.partition("=")
        if key.strip() == "region":
            return value.strip()
    return DEFAULT_REGION
