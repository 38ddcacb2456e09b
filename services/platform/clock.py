"""What day it is, for the rules: the unit works in Copenhagen, whatever the server's
zone. Dates in the domain (enrolled_on, attendance dates) are Copenhagen dates."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

LOCAL_ZONE = ZoneInfo("Europe/Copenhagen")


def local_today() -> date:
    return datetime.now(LOCAL_ZONE).date()


def age_on(birth_date: date, day: date) -> int:
    """Whole years of age on `day`."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month,
                                                                 birth_date.day))


def add_years(day: date, years: int) -> date:
    """The same day `years` later (or earlier); 29 February becomes the 28th in a year
    without one."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)
