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

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from services.platform.sqldates import day, days_between, greatest, least

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


def enrolment_report(session: Session, as_of: date) -> EnrolmentReport:
    dialect = session.get_bind().dialect.name
    as_of_day = day(as_of)
    year_start = as_of.replace(month=1, day=1)
    day_after = day(as_of + timedelta(days=1))

    # A person's latest period as of D: begun by D, and no later one begun by D. Exactly
    # one per person who has enrolled, so counting these periods counts persons.
    latest = and_(Enrolment.enrolled_on <= as_of_day,
                  or_(Enrolment.next_enrolled_on.is_(None),  # type: ignore[union-attr]
                      Enrolment.next_enrolled_on > as_of_day))
    active = and_(latest, or_(Enrolment.exited_on.is_(None),  # type: ignore[union-attr]
                              Enrolment.exited_on > as_of_day))
    # Enrolled days in [1 Jan, D]: from max(enrolled_on, 1 Jan) to the day before
    # min(exited_on, D + 1); periods outside the span add nothing.
    period_start = greatest(dialect, Enrolment.enrolled_on, day(year_start))
    period_end = least(dialect, func.coalesce(Enrolment.exited_on, day_after), day_after)
    days = days_between(dialect, period_start, period_end)

    def count_where(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    # One pass over the periods: every figure is a conditional aggregate.
    columns = [
        count_where(latest).label("persons"),
        count_where(active).label("active"),
        func.coalesce(func.sum(case((days > 0, days), else_=0)), 0).label("days"),
        *(count_where(and_(latest, Enrolment.exited_on <= as_of_day,
                           Enrolment.exit_reason == reason.value)).label(reason.value)
          for reason in ExitReason),
    ]
    row = session.execute(select(*columns).where(Enrolment.enrolled_on <= as_of_day)).one()

    persons, active_count = int(row.persons), int(row.active)
    by_reason = {reason.value: int(getattr(row, reason.value)) for reason in ExitReason}
    span_days = (as_of - year_start).days + 1
    return EnrolmentReport(
        as_of=as_of,
        enrolled_since_start=suppress(persons),
        active=suppress(active_count),
        exited=suppress(persons - active_count),
        exits=ExitGroups(**{
            group: suppress(sum(by_reason[r.value] for r in reasons))
            for group, reasons in EXIT_GROUPS.items()
        }),
        exit_reasons=ExitReasons(**{k: suppress(v) for k, v in by_reason.items()}),
        full_year_persons=round(float(row.days) / span_days, 2),
    )
