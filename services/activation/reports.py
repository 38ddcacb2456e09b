"""Aggregate reports: activation per ISO week, the monthly share sanctioned, spending per
year. Computed by SQL aggregates over placements, attendance and cases; who was enrolled
comes from the citizens service. No report names a person."""

from __future__ import annotations

import calendar
import re
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from services.platform.clock import LOCAL_ZONE
from services.platform.fields import FIRST_DAY, LAST_DAY
from services.platform.sqldates import day, days_between, greatest, least

from .models import AttendanceRecord, HoursCap, Placement, SanctionCase, SanctionDecision

UTILITY = ("utility_work",)
INTERNSHIP_OR_SUBSIDY = ("company_internship", "wage_subsidy")
_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}")


def _occupies(first: date, last: date) -> ColumnElement[bool]:
    """SQL for: the placement occupies a day in [first, last] (ending frees the end date)."""
    return and_(
        Placement.starts_on <= day(last),
        or_(and_(Placement.ended_on.is_(None), Placement.ends_on >= day(first)),  # type: ignore[union-attr]
            and_(Placement.ended_on > day(first),  # type: ignore[operator]
                 Placement.ended_on > Placement.starts_on)))  # type: ignore[operator]


def _ratio(part: int, whole: int, digits: int = 2) -> float:
    return round(part / whole, digits) if whole else 0.0


def _current_decision() -> ColumnElement[bool]:
    later = aliased(SanctionDecision)
    return ~exists().where(later.replaces_id == SanctionDecision.id)


def activation_report(session: Session, monday: date, label: str,
                      enrolled: list[uuid.UUID]) -> dict[str, Any]:
    sunday = monday + timedelta(days=6)
    in_week = _occupies(monday, sunday)
    of_enrolled = Placement.citizen_id.in_(enrolled)  # type: ignore[attr-defined]
    scheduled, utility, internship = session.execute(select(
        func.coalesce(func.sum(Placement.weekly_tenths), 0),
        func.count(func.distinct(case((Placement.offer_type.in_(UTILITY),  # type: ignore[attr-defined]
                                       Placement.citizen_id)))),
        func.count(func.distinct(case((Placement.offer_type.in_(INTERNSHIP_OR_SUBSIDY),  # type: ignore[attr-defined]
                                       Placement.citizen_id)))),
    ).where(in_week, of_enrolled)).one()
    average_cap = session.execute(select(func.avg(HoursCap.weekly_tenths)).where(
        HoursCap.citizen_id.in_(enrolled))).scalar_one()  # type: ignore[attr-defined]
    absences = session.execute(select(func.count()).where(
        AttendanceRecord.current.is_(True),  # type: ignore[attr-defined]
        AttendanceRecord.status == "absent_unexcused",
        AttendanceRecord.day.between(day(monday), day(sunday)))).scalar_one()  # type: ignore[attr-defined]
    in_week_cases = SanctionCase.occurred_on.between(day(monday), day(sunday))  # type: ignore[attr-defined]
    open_cases, decided = session.execute(select(
        func.count(case((SanctionCase.status.in_(("open", "hearing")), 1))),  # type: ignore[attr-defined]
        func.count(case((SanctionCase.status == "decided", 1))),
    ).where(in_week_cases)).one()
    sanctioned = session.execute(select(func.count(func.distinct(SanctionCase.id))).join(
        SanctionDecision, SanctionDecision.case_id == SanctionCase.id).where(
        in_week_cases, SanctionDecision.outcome == "sanction", _current_decision())
    ).scalar_one()
    citizens = len(enrolled)
    return {
        "week": label, "citizens": citizens,
        "average_scheduled_hours": round(scheduled / 10 / citizens, 1) if citizens else 0.0,
        "average_cap": round(float(average_cap) / 10, 1) if average_cap is not None else None,
        "share_utility_work": _ratio(utility, citizens),
        "share_internship_or_wage_subsidy": _ratio(internship, citizens),
        "absences_unexcused": absences,
        "sanction_cases": {"open": open_cases, "decided": decided, "sanctioned": sanctioned},
    }


def month_bounds(month: str) -> tuple[date, date]:
    """The first and last day of a month written `2026-11`; ValueError if there is none."""
    if not _MONTH.fullmatch(month):  # ASCII digits only, as for weeks (weeks.py)
        raise ValueError("a month is written YYYY-MM, e.g. 2026-11")
    year, number = (int(part) for part in month.split("-"))
    first = date(year, number, 1)
    last = date(year, number, calendar.monthrange(year, number)[1])
    # The dates every service takes (services.platform.fields.Day): the citizens service
    # is asked who was enrolled in the month.
    if first < FIRST_DAY or last > LAST_DAY:
        raise ValueError(f"a month from {FIRST_DAY} to {LAST_DAY}")
    return first, last


def sanction_share_report(session: Session, month: str, first: date, last: date,
                          enrolled: list[uuid.UUID]) -> dict[str, Any]:
    """The share of citizens enrolled in the month who were sanctioned in it (a current
    `sanction` decision made that month)."""
    start = datetime.combine(first, time.min, tzinfo=LOCAL_ZONE)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=LOCAL_ZONE)
    sanctioned = session.execute(select(func.count(func.distinct(SanctionCase.citizen_id)))
                                 .join(SanctionDecision,
                                       SanctionDecision.case_id == SanctionCase.id)
                                 .where(SanctionDecision.outcome == "sanction",
                                        _current_decision(),
                                        SanctionDecision.decided_at >= start,
                                        SanctionDecision.decided_at < end,
                                        SanctionCase.citizen_id.in_(enrolled))  # type: ignore[attr-defined]
                                 ).scalar_one()
    return {"month": month, "enrolled": len(enrolled), "sanctioned": sanctioned,
            "share": _ratio(sanctioned, len(enrolled), 3)}


def spending_report(session: Session, year: int, today: date, budget_ore: int,
                    full_year_persons: float | None) -> dict[str, Any]:
    """Committed: the copied weekly price for every placement day in the year. Spent: the
    same up to today. Forecast: spent so far, straight on to the year's end."""
    dialect = session.get_bind().dialect.name
    jan1, next_jan1 = date(year, 1, 1), date(year + 1, 1, 1)
    cutoff = min(max(today + timedelta(days=1), jan1), next_jan1)  # first day not yet spent
    # The first day a placement no longer occupies (date + integer is a date in PostgreSQL).
    end_excl = func.coalesce(Placement.ended_on, Placement.ends_on + 1) \
        if dialect == "postgresql" else func.coalesce(
            Placement.ended_on, func.date(Placement.ends_on, "+1 day"))
    first = greatest(dialect, Placement.starts_on, day(jan1))
    committed_days = days_between(dialect, first, least(dialect, end_excl, day(next_jan1)))
    spent_days = days_between(dialect, first, least(dialect, end_excl, day(cutoff)))

    def positive(days: ColumnElement[Any]) -> ColumnElement[Any]:
        return case((days > 0, days), else_=0)

    rows = session.execute(select(
        Placement.contract_id, Placement.provider_id, func.count(),
        func.coalesce(func.sum(positive(committed_days) * Placement.weekly_price_ore), 0),
        func.coalesce(func.sum(positive(spent_days) * Placement.weekly_price_ore), 0),
    ).where(_occupies(jan1, next_jan1 - timedelta(days=1)))
        .group_by(Placement.contract_id, Placement.provider_id)).all()
    contracts = [{"contract_id": str(contract_id), "provider_id": str(provider_id),
                  "placements": count, "committed_ore": round(committed / 7),
                  "spent_ore": round(spent / 7)}
                 for contract_id, provider_id, count, committed, spent in rows]
    committed_ore = sum(c["committed_ore"] for c in contracts)
    spent_ore = sum(c["spent_ore"] for c in contracts)
    elapsed = (cutoff - jan1).days
    days_in_year = (next_jan1 - jan1).days
    if elapsed >= days_in_year:
        forecast = spent_ore
    elif elapsed <= 0:
        forecast = committed_ore
    else:
        forecast = round(spent_ore / elapsed * days_in_year)
    return {
        "year": year, "budget_ore": budget_ore, "committed_ore": committed_ore,
        "spent_ore": spent_ore, "forecast_ore": forecast,
        "cost_per_full_year_person_ore": round(spent_ore / full_year_persons)
        if full_year_persons else None,
        "contracts": sorted(contracts, key=lambda c: c["contract_id"]),
    }
