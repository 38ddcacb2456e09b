"""Individual weekly hours caps: set by a caseworker from a concrete assessment, with a
reason, an author and a kept history. A cap cannot go below hours already scheduled."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlmodel import Session, select

from services.platform.problems import Conflict, NotFound
from services.platform.scopes import Role
from services.platform.tokens import Principal

from .audit import audit_citizen
from .locks import insert_if_absent, lock_row
from .models import HoursCap, HoursCapChange, Placement
from .schedule import busiest_week_from
from .schemas import HoursCapSet, to_tenths
from .weeks import monday_of


class HoursCapBelowScheduled(Conflict):
    code, title = "hours_cap_below_scheduled", "Hours already scheduled exceed the new cap"


def lock_cap(session: Session, citizen_id: uuid.UUID) -> HoursCap | None:
    """The citizen's cap row, locked: every change to the citizen's scheduled hours
    takes this lock first (PostgreSQL row lock; SQLite's write lock covers it)."""
    return lock_row(session, HoursCap, citizen_id=citizen_id)


def citizen_placements(session: Session, citizen_id: uuid.UUID, first: date | None = None,
                       last: date | None = None) -> list[Placement]:
    """The citizen's placements whose period meets [first, last] (either end open)."""
    statement = select(Placement).where(Placement.citizen_id == citizen_id)
    if first is not None:
        statement = statement.where(Placement.ends_on >= first)
    if last is not None:
        statement = statement.where(Placement.starts_on <= last)
    return list(session.exec(statement))


def set_cap(session: Session, principal: Principal, citizen_id: uuid.UUID,
            data: HoursCapSet, today: date) -> HoursCap:
    audit_citizen(session, principal, "hours_cap.set", citizen_id)
    tenths = to_tenths(data.weekly_hours)
    now = datetime.now(UTC)
    first_cap = insert_if_absent(
        session, HoursCap, {"citizen_id": citizen_id, "weekly_tenths": tenths,
                            "reason": data.reason, "set_by": principal.client_id,
                            "set_at": now}, ["citizen_id"])
    cap = lock_cap(session, citizen_id)
    if first_cap:
        previous = None
    else:
        monday = monday_of(today)
        busiest = busiest_week_from(citizen_placements(session, citizen_id, first=monday),
                                    monday)
        if busiest is not None and busiest[1] > tenths:
            raise HoursCapBelowScheduled(
                f"{busiest[1] / 10:g} hours are scheduled in {busiest[0]}.",
                week=busiest[0], scheduled_hours=busiest[1] / 10)
        previous = cap.weekly_tenths
        cap.weekly_tenths, cap.reason = tenths, data.reason
        cap.set_by, cap.set_at = principal.client_id, now
    session.add(cap)
    session.add(HoursCapChange(citizen_id=citizen_id, weekly_tenths=tenths,
                               previous_tenths=previous, reason=data.reason,
                               set_by=principal.client_id, set_at=now))
    session.flush()
    return cap


def get_cap(session: Session, principal: Principal, citizen_id: uuid.UUID
            ) -> tuple[HoursCap, list[HoursCapChange]]:
    if principal.role is Role.provider:
        raise NotFound("No hours cap.")  # providers see placements, not caps
    audit_citizen(session, principal, "hours_cap.read", citizen_id)
    cap = session.get(HoursCap, citizen_id)
    if cap is None:
        raise NotFound("No hours cap has been set for this citizen.")
    history = list(session.exec(select(HoursCapChange)
                                .where(HoursCapChange.citizen_id == citizen_id)
                                .order_by(HoursCapChange.set_at)))
    return cap, history
