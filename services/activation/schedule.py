"""What placements occupy: hours per ISO week, seats per day. Pure functions over
placement rows; the callers hold the locks that make the answers stay true."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Protocol

from .models import Placement
from .weeks import mondays, overlaps, week_label


class Period(Protocol):
    """What the counts read of a placement (a row of three dates will do)."""

    starts_on: date
    ends_on: date
    ended_on: date | None


ONE_DAY = timedelta(days=1)


def last_day(placement: Period) -> date | None:
    """The last day the placement occupies, or None if it occupies none (ended on its
    first day). Ending frees hours and seat from the end date on."""
    last = placement.ended_on - ONE_DAY if placement.ended_on else placement.ends_on
    return last if last >= placement.starts_on else None


def occupies(placement: Period, first: date, last: date) -> bool:
    end = last_day(placement)
    return end is not None and overlaps(placement.starts_on, end, first, last)


def weekly_tenths(placements: Iterable[Placement], monday: date) -> int:
    """Hours scheduled in the ISO week of `monday` (a placement counts in full in every
    week it touches)."""
    sunday = monday + timedelta(days=6)
    return sum(p.weekly_tenths for p in placements if occupies(p, monday, sunday))


def first_week_over(placements: list[Placement], first: date, last: date, extra_tenths: int,
                    cap_tenths: int) -> str | None:
    """The first ISO week in [first, last] where the placements plus `extra_tenths`
    exceed the cap, or None."""
    for monday in mondays(first, last):
        if weekly_tenths(placements, monday) + extra_tenths > cap_tenths:
            return week_label(monday)
    return None


def busiest_week_from(placements: list[Placement], from_day: date) -> tuple[str, int] | None:
    """The week with the most hours scheduled from `from_day` on: (label, tenths)."""
    ends = [d for p in placements if (d := last_day(p)) is not None and d >= from_day]
    if not ends:
        return None
    start = max(from_day, min(p.starts_on for p in placements))
    best: tuple[str, int] | None = None
    for monday in mondays(start, max(ends)):
        tenths = weekly_tenths(placements, monday)
        if best is None or tenths > best[1]:
            best = (week_label(monday), tenths)
    return best


def most_concurrent(placements: Sequence[Period], first: date, last: date) -> int:
    """The largest number of placements occupying one day in [first, last]: a sweep over
    the days each one starts and stops occupying, O(n log n)."""
    changes: list[tuple[date, int]] = []
    for placement in placements:
        end = last_day(placement)
        if end is None:
            continue
        start, stop = max(placement.starts_on, first), min(end, last)
        if start <= stop:
            changes += [(start, 1), (stop + ONE_DAY, -1)]
    busiest = current = 0
    for _, change in sorted(changes):  # on one day, -1 sorts before +1: a seat freed first
        current += change
        busiest = max(busiest, current)
    return busiest
