"""Field encryption (AES-256-GCM, key id beside the ciphertext) and keyed hashes.

Stored form: `<kid>:<base64url(nonce || ciphertext+tag)>`. Decryption picks the key by
kid, so old rows stay readable after a new key becomes active. The associated data binds
a ciphertext to its column (and row), so it cannot be moved to another field unnoticed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .settings import Settings, SettingsError

NONCE_BYTES = 12


class DecryptionError(Exception):
    pass


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FieldCipher:
    def __init__(self, keys: dict[str, bytes], active_kid: str) -> None:
        if active_kid not in keys:
            raise SettingsError(f"active field key {active_kid!r} is not among the keys")
        for kid, key in keys.items():
            if len(key) != 32 or ":" in kid:
                raise SettingsError(f"field key {kid!r} must be 32 bytes with a kid without ':'")
        self._aead = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active_kid = active_kid

    def encrypt(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[self.active_kid].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{self.active_kid}:{_b64e(nonce + sealed)}"

    def decrypt(self, stored: str, *, context: str) -> str:
        kid, _, payload = stored.partition(":")
        aead = self._aead.get(kid)
        if aead is None:
            raise DecryptionError("unknown key id")
        raw = _b64d(payload)
        try:
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()).decode()
        except Exception as exc:  # InvalidTag: tampered, wrong key or wrong context
            raise DecryptionError("cannot decrypt") from exc


class KeyedHasher:
    """HMAC-SHA256 for lookups and uniqueness without storing the value in clear."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise SettingsError("the hash key must be at least 32 bytes")
        self._key = key

    def hash(self, value: str, *, purpose: str) -> str:
        return hmac.new(self._key, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()


def parse_field_keys(spec: str) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for entry in spec.split(","):
        kid, sep, key = entry.strip().partition(":")
        if not sep:
            raise SettingsError("SIKKERBY_FIELD_ENCRYPTION_KEYS must be 'kid:base64key,...'")
        keys[kid] = _b64d(key)
    return keys


def ensure_dev_secrets(settings: Settings) -> dict[str, str]:
    """Development only: generate the field and hash keys once, under data_dir/keys.

    Returns the environment variables that hand them to the services.
    """
    env: dict[str, str] = {}
    if settings.field_encryption_keys and settings.hash_key:
        return env
    if settings.env == "production":
        raise SettingsError("production needs SIKKERBY_FIELD_ENCRYPTION_KEYS and SIKKERBY_HASH_KEY")
    path = Path(settings.keys_dir) / "secrets.json"
    if path.exists():
        stored = json.loads(path.read_text())
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        kid = "k" + secrets.token_hex(4)
        stored = {
            "field_encryption_keys": f"{kid}:{_b64e(os.urandom(32))}",
            "field_encryption_active_key": kid,
            "hash_key": _b64e(os.urandom(32)),
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle)
    if not settings.field_encryption_keys:
        env["SIKKERBY_FIELD_ENCRYPTION_KEYS"] = stored["field_encryption_keys"]
        env["SIKKERBY_FIELD_ENCRYPTION_ACTIVE_KEY"] = stored["field_encryption_active_key"]
    if not settings.hash_key:
        env["SIKKERBY_HASH_KEY"] = stored["hash_key"]
    return env


def cipher_from_settings(settings: Settings) -> FieldCipher | None:
    if settings.field_encryption_keys is None:
        return None
    keys = parse_field_keys(settings.field_encryption_keys.get_secret_value())
    active = settings.field_encryption_active_key or next(iter(keys))
    return FieldCipher(keys, active)


def hasher_from_settings(settings: Settings) -> KeyedHasher | None:
    if settings.hash_key is None:
        return None
    return KeyedHasher(_b64d(settings.hash_key.get_secret_value()))
