"""Idempotency keys for machine POSTs (attendance, threat assessments, conflicts).

The key is claimed in the same transaction as the write it protects: if the write rolls
back, so does the claim, and a retry runs afresh. The same key with the same body gives
the first answer again; with another body it is 409 `idempotency_key_reused`. Two
concurrent requests with one key serialise on the primary key (PostgreSQL waits for the
first to commit) or on the write lock (SQLite).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel, select

from .columns import Timestamp
from .crypto import KeyedHasher
from .problems import IdempotencyKeyReused, Unprocessable

_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


class IdempotencyKey(SQLModel, table=True):
    __tablename__ = "idempotency_key"

    client_id: str = Field(primary_key=True, max_length=200)
    key: str = Field(primary_key=True, max_length=200)
    request_hash: str = Field(max_length=64)
    status_code: int | None = None
    response_body: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Timestamp()


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: Any


def request_fingerprint(hasher: KeyedHasher, method: str, path: str, body: bytes) -> str:
    """A keyed hash of the request: a body can hold a CPR number, and a plain hash of
    a CPR number is found by trying them all."""
    return hasher.hash(f"{method}\x00{path}\x00{body.decode('utf-8', 'replace')}",
                       purpose="idempotency")


def claim_idempotency_key(
    session: Session, client_id: str, key: str, fingerprint: str
) -> StoredResponse | None:
    """Claim `key` for this request. Returns the stored answer when it was used before
    with the same request, None when the caller should go on and do the work."""
    if not _VALID_KEY.match(key):
        raise Unprocessable("Idempotency-Key must be 1-200 visible ASCII characters.",
                            loc=("header", "Idempotency-Key"))
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(IdempotencyKey)
        .values(client_id=client_id, key=key, request_hash=fingerprint,
                created_at=datetime.now(UTC))
        .on_conflict_do_nothing(index_elements=["client_id", "key"])
        .returning(IdempotencyKey.key)
    )
    if session.execute(statement).first() is not None:
        return None
    existing = session.exec(
        select(IdempotencyKey).where(
            IdempotencyKey.client_id == client_id, IdempotencyKey.key == key
        )
    ).one()
    if existing.request_hash != fingerprint or existing.status_code is None:
        raise IdempotencyKeyReused()
    return StoredResponse(existing.status_code, json.loads(existing.response_body or "null"))


def store_idempotent_response(
    session: Session, client_id: str, key: str, status_code: int, body: Any
) -> None:
    row = session.get(IdempotencyKey, (client_id, key))
    if row is None:  # pragma: no cover - claim_idempotency_key ran first in this transaction
        raise RuntimeError("idempotency key was not claimed")
    row.status_code = status_code
    row.response_body = json.dumps(body, default=str, separators=(",", ":"))
    session.add(row)
    session.flush()
