"""Retention in the activation service: placements and attendance, five years after the
citizen's exit.

The clock of a placement starts at the exit from the enrolment period it began in (the
citizen's latest period begun on or before the placement's start). While that period is
open, nothing goes; a later period does not keep an earlier one's placements alive. From
the day five years after that exit:

- attendance: every version of every day of the placement is deleted;
- the placement is anonymised, not deleted. What made it the citizen's goes: the citizen
  id (set to the nil id), the placement's own id (a fresh one, so that nothing left
  behind, such as a sanction case's `placement_id`, points at it any longer), the cohort,
  the end reason, the notice date, the author, and the creation time (coarsened to the
  start day, which no audit entry matches). What the accounts need stays: contract,
  provider, offer type, period, weekly hours and the copied price. The spending report of
  every year is therefore the same after retention as before (deleting the placements
  would have erased past years' committed and spent amounts and the cost per full-year
  person). The weekly activation report of a week whose placements are anonymised no
  longer counts their hours or offer types, and its unexcused absences for such days are
  gone with the attendance: those figures are not kept as aggregates (see the report);
- stored idempotent answers that name the placement (they list its attendance) are
  deleted.

Sanction cases, conversations, hours caps and rights guidance are not part of this rule.

This service does not own exits: the caller hands in each citizen's enrolment periods.
The `sikkerby retention run` command reads them from the citizens service's database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import NamedTuple

from sqlalchemy import delete, func, update
from sqlmodel import Session, select

from services.platform.audit import Actor, flush_pending_audit, record_access
from services.platform.clock import add_years
from services.platform.idempotency import IdempotencyKey

from .caps import lock_cap
from .models import AttendanceRecord, Placement

RETENTION_YEARS = 5
ANONYMOUS = uuid.UUID(int=0)
ANONYMISED_BY = "retention"
PURPOSE = "retention"
CHUNK = 500


class Period(NamedTuple):
    enrolled_on: date
    exited_on: date | None



def exit_of(starts_on: date, periods: Iterable[Period]) -> date | None:
    """The exit that ends the enrolment period a placement began in; None while that
    period is open, or when no period had begun by the placement's start."""
    begun = [p for p in periods if p.enrolled_on <= starts_on]
    return max(begun, key=lambda p: p.enrolled_on).exited_on if begun else None


def due(starts_on: date, periods: Iterable[Period], today: date) -> bool:
    exited = exit_of(starts_on, periods)
    return exited is not None and add_years(exited, RETENTION_YEARS) <= today


def _chunks(items: Sequence[uuid.UUID]) -> Iterable[Sequence[uuid.UUID]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def citizens_to_check(session: Session) -> list[uuid.UUID]:
    """Citizens who still have placements that are not anonymised."""
    return sorted(session.exec(select(Placement.citizen_id).distinct()
                               .where(Placement.citizen_id != ANONYMOUS)))


@dataclass
class Plan:
    placements: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)  # (id, citizen)
    attendance_versions: int = 0
    idempotency_keys: list[tuple[str, str]] = field(default_factory=list)  # (client, key)

    @property
    def citizens(self) -> list[uuid.UUID]:
        return sorted({citizen for _, citizen in self.placements})


def plan(session: Session, periods: Mapping[uuid.UUID, Sequence[tuple[date, date | None]]],
         today: date) -> Plan:
    """What is due on `today`, given each citizen's enrolment periods. Changes nothing."""
    known = {citizen: [Period(*p) for p in rows] for citizen, rows in periods.items()}
    result = Plan()
    for ids in _chunks(sorted(known)):
        rows = session.exec(select(Placement.id, Placement.citizen_id, Placement.starts_on)
                            .where(Placement.citizen_id.in_(ids))  # type: ignore[attr-defined]
                            .order_by(Placement.citizen_id, Placement.id))
        result.placements += [(pid, citizen) for pid, citizen, starts_on in rows
                              if due(starts_on, known[citizen], today)]
    placement_ids = [pid for pid, _ in result.placements]
    for ids in _chunks(placement_ids):
        result.attendance_versions += session.exec(
            select(func.count()).select_from(AttendanceRecord)
            .where(AttendanceRecord.placement_id.in_(ids))).one()  # type: ignore[attr-defined]
    if placement_ids:
        named = {str(pid) for pid in placement_ids}
        for client_id, key, body in session.exec(
                select(IdempotencyKey.client_id, IdempotencyKey.key,
                       IdempotencyKey.response_body)
                .where(IdempotencyKey.response_body.is_not(None))):  # type: ignore[union-attr]
            if any(pid in body for pid in named):
                result.idempotency_keys.append((client_id, key))
    return result


def apply(session: Session, due_now: Plan, actor: Actor, today: date) -> None:
    """Carry out a plan in the caller's transaction, and put it on record."""
    for citizen in due_now.citizens:
        lock_cap(session, citizen)  # the placement rules' lock order: the cap first
    for ids in _chunks([pid for pid, _ in due_now.placements]):
        session.execute(delete(AttendanceRecord)
                        .where(AttendanceRecord.placement_id.in_(ids)))  # type: ignore[attr-defined]
    for placement_id, _ in due_now.placements:
        starts_on = session.exec(select(Placement.starts_on)
                                 .where(Placement.id == placement_id)).one()
        session.execute(update(Placement).where(Placement.id == placement_id).values(
            id=uuid.uuid4(), citizen_id=ANONYMOUS, cohort_id=None, end_reason=None,
            absence_notice_given_on=None, created_by=ANONYMISED_BY,
            created_at=datetime.combine(starts_on, time.min, tzinfo=UTC)))
    for client_id, key in due_now.idempotency_keys:
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.client_id == client_id,
                                                     IdempotencyKey.key == key))
    for citizen in due_now.citizens:
        record_access(session, actor, action="retention.anonymise",
                      resource=f"citizen/{citizen}", purpose=PURPOSE, citizen_id=citizen)
    record_access(session, actor, action="retention.run",
                  resource=(f"retention/activation/{today}: "
                            f"placements={len(due_now.placements)} "
                            f"attendance={due_now.attendance_versions} "
                            f"idempotency={len(due_now.idempotency_keys)}"),
                  purpose=PURPOSE)
    flush_pending_audit(session)
    session.flush()
