"""ISO weeks and periods: pure functions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta

from services.platform.fields import FIRST_DAY, LAST_DAY

# ASCII digits only, like the routes' patterns: Python's and pydantic's `\d` take any
# script's digits too, where the same pattern in the document (ECMA-262) means [0-9].
_ISO_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")


def week_label(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def parse_week(label: str) -> date:
    """The Monday of an ISO week written `2026-W48`; ValueError if there is no such week."""
    match = _ISO_WEEK.fullmatch(label)
    if match is None:
        raise ValueError("an ISO week is written YYYY-Www, e.g. 2026-W48")
    monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
    # The dates every service takes (services.platform.fields.Day): the citizens service
    # is asked who was enrolled in the week.
    if not FIRST_DAY <= monday <= LAST_DAY - timedelta(days=6):
        raise ValueError(f"a week from {FIRST_DAY} to {LAST_DAY}")
    return monday


def mondays(first_day: date, last_day: date) -> Iterator[date]:
    """The Monday of every ISO week that [first_day, last_day] touches."""
    monday = monday_of(first_day)
    while monday <= last_day:
        yield monday
        monday += timedelta(days=7)


def overlaps(a_first: date, a_last: date, b_first: date, b_last: date) -> bool:
    return a_first <= b_last and b_first <= a_last
