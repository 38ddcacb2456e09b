"""The enrolment report: the questions the unit is asked again and again (DOMAIN.md),
answered from the enrolment periods by SQL aggregates, never by loading every citizen.

Definitions (as of day D):
- enrolled since start: persons with a period that began on or before D;
- active: persons with a period that began on or before D and has no exit on or before D
  (the exit day is the first day not enrolled);
- exited: the others of those who enrolled; each counts once, by the reason of their
  latest exit on or before D;
- full-year persons: enrolled days from 1 January of D's year through D, summed over
  persons, divided by the days in that span;
- every count from 1 to 4 is null (small-cell protection).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Date, case, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from .models import Enrolment
from .schemas import EnrolmentReport, ExitGroups, ExitReason, ExitReasons

SMALL_CELL_MAX = 4
EXIT_GROUPS = {
    "job_or_education": (ExitReason.job, ExitReason.education),
    "benefit_ended": (ExitReason.benefit_ended,),
    "other": (ExitReason.imprisonment, ExitReason.death, ExitReason.moved, ExitReason.other),
}


def suppress(count: int) -> int | None:
    return None if 1 <= count <= SMALL_CELL_MAX else count


def _day(value: date) -> ColumnElement[Any]:
    # A bound date (not CAST: SQLite would turn '2025-01-31' into the number 2025).
    return literal(value, Date)


def _days_between(dialect: str, start: ColumnElement[Any], end: ColumnElement[Any]
                  ) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return end - start  # date - date is an integer number of days
    return func.julianday(end) - func.julianday(start)


def _least(dialect: str, *values: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.least(*values) if dialect == "postgresql" else func.min(*values)


def _greatest(dialect: str, *values: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.greatest(*values) if dialect == "postgresql" else func.max(*values)


def enrolment_report(session: Session, as_of: date) -> EnrolmentReport:
    dialect = session.get_bind().dialect.name
    day = _day(as_of)
    started = Enrolment.enrolled_on <= day
    active_now = or_(Enrolment.exited_on.is_(None), Enrolment.exited_on > day)  # type: ignore[union-attr]

    # Periods never overlap, so at most one is active per person: count(*) is persons.
    persons, active = session.execute(
        select(func.count(func.distinct(Enrolment.citizen_id)),
               func.count(case((active_now, 1))))
        .where(started)
    ).one()

    # Each person's latest period begun by D; for those not active, its exit reason.
    latest = (
        select(Enrolment.exit_reason.label("reason"),  # type: ignore[attr-defined]
               Enrolment.exited_on.label("exited_on"),  # type: ignore[union-attr]
               func.row_number().over(partition_by=Enrolment.citizen_id,
                                      order_by=Enrolment.enrolled_on.desc()).label("n"))
        .where(started)
        .subquery()
    )
    reason_counts = dict(session.execute(
        select(latest.c.reason, func.count())
        .where(latest.c.n == 1, latest.c.exited_on <= day)
        .group_by(latest.c.reason)
    ).all())
    exited = persons - active

    year_start = as_of.replace(month=1, day=1)
    span_days = (as_of - year_start).days + 1
    # Enrolled days in [year_start, D]: from max(enrolled_on, 1 Jan) up to the day before
    # min(exited_on, D + 1).
    period_end = _least(dialect, func.coalesce(Enrolment.exited_on, _day(as_of + timedelta(1))),
                        _day(as_of + timedelta(1)))
    period_start = _greatest(dialect, Enrolment.enrolled_on, _day(year_start))
    enrolled_days = session.execute(
        select(func.coalesce(func.sum(_days_between(dialect, period_start, period_end)), 0))
        .where(started,
               or_(Enrolment.exited_on.is_(None),  # type: ignore[union-attr]
                   Enrolment.exited_on > _day(year_start)))
    ).scalar_one()

    by_reason = {reason.value: int(reason_counts.get(reason.value, 0)) for reason in ExitReason}
    return EnrolmentReport(
        as_of=as_of,
        enrolled_since_start=suppress(persons),
        active=suppress(active),
        exited=suppress(exited),
        exits=ExitGroups(**{
            group: suppress(sum(by_reason[r.value] for r in reasons))
            for group, reasons in EXIT_GROUPS.items()
        }),
        exit_reasons=ExitReasons(**{k: suppress(v) for k, v in by_reason.items()}),
        full_year_persons=round(float(enrolled_days) / span_days, 2),
    )
