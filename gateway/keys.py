"""The gateway's signing keys: a small key file, the JWKS, and rotation.

The file holds every key still needed: the active one signs, retired ones stay published
in the JWKS until every token they signed has expired, then `sikkerby keys rotate`
prunes them. Key objects are built once per load: python-jose re-parses a PEM on every
call otherwise, which costs tens of milliseconds per token.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwk
from jose.backends.base import Key

from services.platform.settings import MAX_TOKEN_LIFETIME_SECONDS, SettingsError
from services.platform.tokens import ALGORITHM

# Retired keys stay published this long after retirement: the longest token lifetime
# plus room for clock skew.
RETIRED_KEY_GRACE = timedelta(seconds=MAX_TOKEN_LIFETIME_SECONDS + 120)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Key
    public_key: Key
    public_jwk: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None


def _new_key_record(now: datetime) -> dict[str, Any]:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {"kid": f"{now:%Y%m%d}-{secrets.token_hex(4)}", "private_pem": pem,
            "created_at": now.isoformat(), "retired_at": None}


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=1)
    os.replace(tmp, path)


def ensure_key_file(path: Path, *, allow_generate: bool) -> None:
    if path.exists():
        return
    if not allow_generate:
        raise SettingsError(f"no signing key file at {path}; generated keys are refused here")
    _write_atomically(path, {"keys": [_new_key_record(datetime.now(UTC))]})


def rotate_keys(path: Path, now: datetime | None = None) -> str:
    """Add a new active key, retire the old one, prune keys no token can still need."""
    now = now or datetime.now(UTC)
    records = json.loads(path.read_text())["keys"] if path.exists() else []
    kept = []
    for record in records:
        if record["retired_at"] is None:
            record["retired_at"] = now.isoformat()
        if datetime.fromisoformat(record["retired_at"]) + RETIRED_KEY_GRACE > now:
            kept.append(record)
    new = _new_key_record(now)
    kept.append(new)
    _write_atomically(path, {"keys": kept})
    return new["kid"]


def _load(record: dict[str, Any]) -> SigningKey:
    private = jwk.construct(record["private_pem"], ALGORITHM)
    public = private.public_key()
    public_jwk = {**public.to_dict(), "kid": record["kid"], "use": "sig", "alg": ALGORITHM}
    retired = record.get("retired_at")
    return SigningKey(
        kid=record["kid"], private_key=private, public_key=public, public_jwk=public_jwk,
        created_at=datetime.fromisoformat(record["created_at"]),
        retired_at=datetime.fromisoformat(retired) if retired else None,
    )


class Keystore:
    """The loaded key file. Reloads when the file changes (after `keys rotate`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float = -1.0
        self._keys: dict[str, SigningKey] = {}
        self._active: SigningKey | None = None
        self.reload_if_changed()

    def reload_if_changed(self) -> None:
        mtime = self.path.stat().st_mtime
        if mtime == self._mtime:
            return
        with self._lock:
            records = json.loads(self.path.read_text())["keys"]
            keys = {r["kid"]: _load(r) for r in records}
            active = [k for k in keys.values() if k.retired_at is None]
            if not active:
                raise SettingsError("the signing key file has no active key")
            self._keys = keys
            self._active = max(active, key=lambda k: k.created_at)
            self._mtime = mtime

    @property
    def active(self) -> SigningKey:
        assert self._active is not None
        return self._active

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk for k in self._keys.values()]}

    async def public_key(self, kid: str) -> Key | None:
        key = self._keys.get(kid)
        if key is None:
            self.reload_if_changed()
            key = self._keys.get(kid)
        return key.public_key if key else None
