"""Secrets at rest: AES-256-GCM under a key kept in a 0600 file beside the database.

SigV4 needs the secret access key itself (it is an HMAC key), so it cannot be
stored hashed. Each secret is sealed with a fresh nonce and bound to the row it
belongs to (the associated data), so a sealed value copied to another row does
not open. Whoever reads the database file alone learns no secret.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "secrets.key"
_NONCE = 12


class SecretKeyError(Exception):
    """The key file is unusable, or is not the key the stored secrets were sealed with."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def open(cls, path: Path) -> SecretBox:
        """The key in ``path``, made (readable by its owner only) if there is none yet.

        A new key is written to a temporary file and linked into place, so a crash
        never leaves a partial key file behind.
        """
        if not path.exists():
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secrets-")
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode())
                    handle.flush()
                    os.fsync(handle.fileno())
                with contextlib.suppress(FileExistsError):  # another opener was first
                    os.link(temporary, path)
            finally:
                os.unlink(temporary)
        os.chmod(path, 0o600)
        return cls(_read_key(path))

    def seal(self, secret: str, context: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, secret.encode(), context.encode())

    def unseal(self, sealed: bytes, context: str) -> str:
        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], context.encode()).decode()
        except InvalidTag:
            raise SecretKeyError(
                f"The secret of {context} does not open with this key file: the database "
                f"was written with another {KEY_FILE}."
            ) from None


def _read_key(path: Path) -> bytes:
    try:
        key = base64.b64decode(path.read_text().strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise SecretKeyError(f"{path} does not hold a 256-bit key.")
    return key
