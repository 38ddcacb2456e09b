"""Row locks that serialise what must not race. Always taken in this order, so two
transactions never wait for each other in a circle: citizen's cap, contract, cohort, and
last the place (the provider), only by placements that must look at everyone there."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, select


def insert_if_absent(session: Session, model: type[SQLModel], values: dict[str, Any],
                     key: list[str]) -> bool:
    """Insert a row unless one with the same key exists. True if this call inserted it.
    Concurrent callers wait on the key (PostgreSQL) or the write lock (SQLite)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (insert(model).values(**values).on_conflict_do_nothing(index_elements=key)
                 .returning(*(getattr(model, k) for k in key)))
    return session.execute(statement).first() is not None


def lock_row(session: Session, model: type[SQLModel], **key: Any) -> Any:
    statement = select(model).with_for_update()
    for name, value in key.items():
        statement = statement.where(getattr(model, name) == value)
    return session.exec(statement).first()


def lock_site(session: Session, provider_id: uuid.UUID) -> None:
    """Serialise the placements at one provider that check who else is there (PostgreSQL:
    a transaction-scoped advisory lock keyed by the provider; SQLite: BEGIN IMMEDIATE
    already). Two rivals placed at once under different contracts would otherwise each
    miss the other."""
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(provider_id.bytes[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
