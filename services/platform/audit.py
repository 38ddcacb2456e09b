"""The audit writer: append-only, hash-chained entries of who touched what.

A rule calls `record_access(session, principal, ...)`; the entry waits in the session and
is chained and inserted by the transaction dependency just before commit, so an audited
write and its audit entry commit together, and the chain lock is held only for the
moment it takes to append. When the request is refused, the same entries are written with
the refusal as outcome, in a transaction of their own.

Each entry's `hash` is SHA-256 over the previous entry's hash and the entry's fields, so
a changed or deleted entry breaks every hash after it (`verify_chain`). A chain alone
cannot show that its last entries were deleted: `verify_chain_report` also checks an
anchor, a head recorded by an earlier verification (see gateway/audit.py).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Engine, and_, insert, or_, text
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, select

from .columns import Timestamp
from .middleware import request_id_var

GENESIS_HASH = "0" * 64
# Any constant works: it names the lock that serialises appends to the chain (PostgreSQL).
_CHAIN_LOCK_KEY = 0x5A1CE4B7


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"

    seq: int | None = Field(default=None, primary_key=True)
    at: datetime = Timestamp(index=True)
    actor: str = Field(max_length=200)
    role: str = Field(max_length=40)
    action: str = Field(max_length=100)
    resource: str = Field(max_length=300)
    citizen_id: uuid.UUID | None = Field(default=None, index=True)
    purpose: str = Field(max_length=100)
    outcome: str = Field(max_length=100)
    request_id: str = Field(max_length=128)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class AuditCut(SQLModel, table=True):
    """A retention cut: the entries before `first_kept_seq` were deleted, on purpose.

    The chain then starts at that entry, whose `prev_hash` names the last deleted one:
    verification starts from the latest cut (`prev_hash`) instead of the genesis hash. The
    append-only trigger lets only entries below the latest cut be deleted, and the
    application's database role may not write here (migrations.common)."""

    __tablename__ = "audit_cut"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Timestamp()
    before: datetime = Timestamp()  # the entries stamped before this went
    first_kept_seq: int
    prev_hash: str = Field(max_length=64)
    entries_deleted: int
    request_id: str = Field(max_length=128)


class Actor(Protocol):
    client_id: str
    role: str


@dataclass(frozen=True)
class PendingEntry:
    at: datetime
    actor: str
    role: str
    action: str
    resource: str
    citizen_id: uuid.UUID | None
    purpose: str
    outcome: str
    request_id: str


def record_access(
    session: Session,
    actor: Actor,
    *,
    action: str,
    resource: str,
    purpose: str,
    citizen_id: uuid.UUID | None = None,
) -> None:
    """Note an access to personal data; it is written when the transaction ends."""
    session.info.setdefault("audit_pending", []).append(
        PendingEntry(
            at=datetime.now(UTC),
            actor=actor.client_id,
            role=actor.role,
            action=action,
            resource=resource,
            citizen_id=citizen_id,
            purpose=purpose,
            outcome="success",
            request_id=request_id_var.get(),
        )
    )


def entry_hash(prev_hash: str, entry: PendingEntry | AuditEntry) -> str:
    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=UTC)
    canonical = json.dumps(
        [
            prev_hash,
            at.astimezone(UTC).isoformat(timespec="microseconds"),
            entry.actor,
            entry.role,
            entry.action,
            entry.resource,
            str(entry.citizen_id) if entry.citizen_id else None,
            entry.purpose,
            entry.outcome,
            entry.request_id,
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lock_chain(session: Session) -> None:
    # SQLite transactions here are BEGIN IMMEDIATE: already the only writer.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK_KEY})


def append_entries(session: Session, entries: list[PendingEntry]) -> None:
    if not entries:
        return
    _lock_chain(session)
    last = session.exec(select(AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()
    prev = last or GENESIS_HASH
    rows = []
    for entry in entries:
        digest = entry_hash(prev, entry)
        rows.append({**entry.__dict__, "prev_hash": prev, "hash": digest})
        prev = digest
    # One Core insert for the batch: an ORM object per entry cost about 5x as much, and
    # the gateway appends hundreds of entries a second.
    session.execute(insert(AuditEntry), rows)


def flush_pending_audit(session: Session) -> None:
    append_entries(session, session.info.pop("audit_pending", []))


def refusal_outcome(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return f"refused:{code}" if isinstance(code, str) else "error"


def write_entries(engine: Engine, entries: list[PendingEntry]) -> None:
    """Append entries in a transaction of their own."""
    if not entries:
        return
    with Session(engine) as session:
        append_entries(session, entries)
        session.commit()


def write_refused_audit(engine: Engine, pending: list[PendingEntry], exc: BaseException) -> None:
    outcome = refusal_outcome(exc)
    write_entries(engine, [PendingEntry(**{**entry.__dict__, "outcome": outcome})
                           for entry in pending])


@dataclass(frozen=True)
class ChainReport:
    """What verifying one database's chain found.

    `entries` counts every row; `intact` the rows before the first break. A chain is
    also broken when `anchor` (a head seen by an earlier verification: its seq and a
    prefix of its hash) is no longer in it: the chain alone cannot show that its last
    entries were deleted, an anchor kept elsewhere can.
    """

    ok: bool
    entries: int
    intact: int
    head_seq: int | None
    head_hash: str | None
    broken_at_seq: int | None = None
    problem: str | None = None  # "entry_changed_or_deleted" | "entries_missing_at_end"
    # After a retention cut: the chain starts at this entry; entries stamped before
    # `retained_before` were deleted by retention (and only those).
    starts_at_seq: int | None = None
    retained_before: datetime | None = None


def latest_cut(session: Session) -> AuditCut | None:
    return session.exec(select(AuditCut).order_by(AuditCut.id.desc()).limit(1)).first()  # type: ignore[union-attr]


def verify_chain_report(session: Session, anchor: tuple[int, str] | None = None, *,
                        through_seq: int | None = None) -> ChainReport:
    """Recompute every hash in order, streaming the rows: from the genesis hash, or from
    the latest retention cut, whose first kept entry must be the chain's first. With
    `through_seq`, only the entries up to that one."""
    cut = latest_cut(session)
    prev = cut.prev_hash if cut is not None else GENESIS_HASH
    entries = intact = 0
    broken_at: int | None = None
    head_seq: int | None = None
    # An anchor below the cut was a head before retention deleted it: nothing to look for.
    anchor_seen = anchor is not None and cut is not None and anchor[0] < cut.first_kept_seq
    columns = [getattr(AuditEntry, name) for name in (
        "seq", "at", "actor", "role", "action", "resource", "citizen_id", "purpose",
        "outcome", "request_id", "prev_hash", "hash")]
    statement = sa_select(*columns).order_by(AuditEntry.seq)
    if through_seq is not None:
        statement = statement.where(AuditEntry.seq <= through_seq)
    rows = session.connection().execute(statement.execution_options(yield_per=2000))
    for row in rows:
        if broken_at is None and (row.prev_hash != prev or entry_hash(prev, row) != row.hash
                                  or (entries == 0 and cut is not None
                                      and row.seq != cut.first_kept_seq)):
            broken_at = row.seq
        if broken_at is None:
            intact += 1
        if anchor is not None and row.seq == anchor[0]:
            anchor_seen = row.hash.startswith(anchor[1]) and broken_at is None
        # The next entry must name this one's hash as stored, changed or not.
        prev = row.hash
        head_seq = row.seq
        entries += 1
    problem = None
    if broken_at is not None:
        problem = "entry_changed_or_deleted"
    elif anchor is not None and not anchor_seen:
        problem, broken_at = "entries_missing_at_end", anchor[0]
    if cut is not None and entries == 0:  # the cut's first kept entry is gone too
        problem, broken_at = "entry_changed_or_deleted", cut.first_kept_seq
    return ChainReport(ok=problem is None, entries=entries, intact=intact, head_seq=head_seq,
                       head_hash=prev if head_seq is not None else None,
                       broken_at_seq=broken_at, problem=problem,
                       starts_at_seq=cut.first_kept_seq if cut is not None else None,
                       retained_before=cut.before if cut is not None else None)


def verify_chain(session: Session) -> tuple[bool, int]:
    """Recompute every hash in order. Returns (intact, number of entries before a break)."""
    report = verify_chain_report(session)
    return report.ok, report.intact


def entries_after(
    session: Session,
    *,
    citizen_id: uuid.UUID | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    after: tuple[datetime, int] | None = None,
    limit: int,
) -> list[AuditEntry]:
    """Entries in (at, seq) order: `start` <= at < `end`, strictly after `after`."""
    statement = select(AuditEntry)
    if citizen_id is not None:
        statement = statement.where(AuditEntry.citizen_id == citizen_id)
    if start is not None:
        statement = statement.where(AuditEntry.at >= start)
    if end is not None:
        statement = statement.where(AuditEntry.at < end)
    if after is not None:
        at, seq = after
        statement = statement.where(or_(AuditEntry.at > at,
                                        and_(AuditEntry.at == at, AuditEntry.seq > seq)))
    statement = statement.order_by(AuditEntry.at, AuditEntry.seq).limit(limit)
    return list(session.exec(statement))
