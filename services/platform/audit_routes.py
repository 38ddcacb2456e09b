"""Every service's internal audit routes: its own chain, for the gateway to merge.

`GET /internal/audit` and `GET /internal/audit/verify` need `audit:read`: the gateway
calls them with the auditor's own token, which the service verifies itself like any
other. They are not in the gateway's route table, so the gateway never forwards a
caller to them; the public routes are `/v1/audit` and `/v1/audit/verify` at the
gateway (gateway/audit.py), which answer for the whole system. The auditor's look is on
record once, in the gateway's chain (`audit.read`, with the citizen looked up), not again
in every service's.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from .audit import AuditEntry, ChainReport, entries_after, verify_chain_report
from .auth import requires
from .db import DbSession
from .pagination import MAX_LIMIT
from .scopes import Scope

AuditRead = requires(Scope.audit_read)
# Above any seq a chain will reach: "after every entry at this instant".
MAX_SEQ = 2**31 - 1  # seq is a 32-bit INTEGER column

router = APIRouter(prefix="/internal/audit", include_in_schema=False)


class AuditEntryOut(BaseModel):
    at: datetime
    actor: str
    role: str
    action: str
    resource: str
    citizen_id: uuid.UUID | None
    purpose: str
    outcome: str
    request_id: str
    hash: str
    service: str
    seq: int


class ServiceEntries(BaseModel):
    service: str
    items: list[AuditEntryOut]


class ChainOut(BaseModel):
    ok: bool
    entries: int
    head_seq: int | None
    head_hash: str | None
    broken_at_seq: int | None = None
    problem: str | None = None
    # After audit retention: the chain starts at this entry; the entries stamped before
    # `retained_before` were deleted by retention (`sikkerby retention run`).
    starts_at_seq: int | None = None
    retained_before: datetime | None = None

    @classmethod
    def of(cls, report: ChainReport) -> ChainOut:
        return cls(ok=report.ok, entries=report.entries, head_seq=report.head_seq,
                   head_hash=report.head_hash, broken_at_seq=report.broken_at_seq,
                   problem=report.problem, starts_at_seq=report.starts_at_seq,
                   retained_before=report.retained_before)


def entry_out(entry: AuditEntry, service: str) -> AuditEntryOut:
    return AuditEntryOut(
        at=entry.at, actor=entry.actor, role=entry.role, action=entry.action,
        resource=entry.resource, citizen_id=entry.citizen_id, purpose=entry.purpose,
        outcome=entry.outcome, request_id=entry.request_id, hash=entry.hash,
        service=service, seq=entry.seq or 0,
    )


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@router.get("", response_model=ServiceEntries)
def read_entries(
    request: Request,
    session: DbSession,
    _: AuditRead,
    citizen_id: uuid.UUID | None = None,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    after_at: datetime | None = None,
    after_seq: Annotated[int, Query(ge=-1, le=MAX_SEQ)] = -1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT + 1)] = 50,
) -> ServiceEntries:
    """This service's entries in (at, seq) order, strictly after (after_at, after_seq)."""
    after = (_aware(after_at), after_seq) if after_at is not None else None
    entries = entries_after(session, citizen_id=citizen_id, start=_aware(start),
                            end=_aware(end), after=after, limit=limit)  # type: ignore[arg-type]
    service = request.app.state.service.value
    return ServiceEntries(service=service, items=[entry_out(e, service) for e in entries])


@router.get("/verify", response_model=ChainOut)
def verify(
    session: DbSession,
    _: AuditRead,
    anchor_seq: Annotated[int | None, Query(ge=1)] = None,
    anchor_hash: Annotated[str | None, Query(pattern="^[0-9a-f]{16,64}$")] = None,
) -> ChainOut:
    """Recompute this service's chain; with an anchor, also check that it is still there."""
    anchor = (anchor_seq, anchor_hash) if anchor_seq is not None and anchor_hash else None
    return ChainOut.of(verify_chain_report(session, anchor))
