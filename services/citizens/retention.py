"""Retention and the citizens service: the exits that start other services' clocks.

Nothing here is deleted: the enrolment periods are what the enrolment report counts, and
its historical counts must not change. What this service gives the retention run is each
citizen's periods (dates only: no name, no CPR number), for the citizens that the
activation service still holds placements of.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date

from sqlmodel import Session, select

from services.platform.audit import Actor, flush_pending_audit, record_access

from .models import Enrolment

CHUNK = 500
PURPOSE = "retention"


def periods_of(session: Session, citizen_ids: Iterable[uuid.UUID]
               ) -> dict[uuid.UUID, list[tuple[date, date | None]]]:
    """(enrolled_on, exited_on) of each citizen's periods, oldest first. A citizen this
    service does not know has no entry."""
    ids = sorted(set(citizen_ids))
    periods: dict[uuid.UUID, list[tuple[date, date | None]]] = {}
    for start in range(0, len(ids), CHUNK):
        rows = session.exec(select(Enrolment.citizen_id, Enrolment.enrolled_on,
                                   Enrolment.exited_on)
                            .where(Enrolment.citizen_id.in_(ids[start:start + CHUNK]))  # type: ignore[attr-defined]
                            .order_by(Enrolment.citizen_id, Enrolment.enrolled_on))
        for citizen_id, enrolled_on, exited_on in rows:
            periods.setdefault(citizen_id, []).append((enrolled_on, exited_on))
    return periods


def record_run(session: Session, actor: Actor, *, today: date, citizens: int) -> None:
    """Put on record that the retention run read these periods (in the caller's
    transaction)."""
    record_access(session, actor, action="retention.run",
                  resource=f"retention/citizens/{today}: enrolment periods of "
                           f"{citizens} citizens read",
                  purpose=PURPOSE)
    flush_pending_audit(session)
