"""The enrolment report on a data set built for it, on SQLite and PostgreSQL.

Expected figures are counted here from the periods themselves, the plain way, and compared
with what the SQL aggregates say."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.platform.clock import local_today

from ..support.builders import register
from ..support.system import System, bearer
from ..test_gateway import assert_problem

# (count, [(enrolled_on, exited_on, reason), ...]) per group of persons.
DATA_SET = [
    (6, [("2025-01-10", None, None)]),
    (5, [("2025-02-01", "2025-06-01", "job")]),
    (2, [("2025-02-01", "2025-07-01", "education")]),
    (5, [("2025-03-01", "2025-08-01", "benefit_ended")]),
    (1, [("2025-03-01", "2025-09-01", "imprisonment")]),
    (1, [("2025-03-01", "2025-09-01", "death")]),
    (1, [("2025-03-01", "2025-09-01", "moved")]),
    (1, [("2025-03-01", "2025-09-01", "other")]),
    # Left, came back, left again: counted once, by the latest exit.
    (1, [("2025-01-10", "2025-04-01", "moved"), ("2025-05-01", "2025-10-01", "job")]),
    # Left and came back: active.
    (1, [("2025-01-10", "2025-03-01", "other"), ("2025-04-01", None, None)]),
    # Enrolled the year before, exited early in the year: part of a full-year person.
    (5, [("2024-10-01", "2025-01-31", "education")]),
]
REASONS = ["job", "education", "benefit_ended", "imprisonment", "death", "moved", "other"]
GROUPS = {"job_or_education": ["job", "education"], "benefit_ended": ["benefit_ended"],
          "other": ["imprisonment", "death", "moved", "other"]}


def d(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def expected(as_of: date) -> dict:
    persons = active = 0
    reasons = dict.fromkeys(REASONS, 0)
    days = 0
    year_start = as_of.replace(month=1, day=1)
    for count, periods in DATA_SET:
        begun = [p for p in periods if d(p[0]) <= as_of]
        if not begun:
            continue
        persons += count
        latest = begun[-1]
        if d(latest[1]) is None or d(latest[1]) > as_of:
            active += count
        else:
            reasons[latest[2]] += count
        for start, end, _ in begun:
            day = max(d(start), year_start)
            stop = min(d(end) or as_of + timedelta(1), as_of + timedelta(1))
            while day < stop:
                days += count
                day += timedelta(1)

    def cell(n: int) -> int | None:
        return None if 1 <= n <= 4 else n

    return {
        "as_of": as_of.isoformat(),
        "enrolled_since_start": cell(persons),
        "active": cell(active),
        "exited": cell(persons - active),
        "exits": {g: cell(sum(reasons[r] for r in rs)) for g, rs in GROUPS.items()},
        "exit_reasons": {r: cell(n) for r, n in reasons.items()},
        "full_year_persons": round(days / ((as_of - year_start).days + 1), 2),
    }


@pytest.fixture(scope="module")
def loaded(system: System) -> System:
    caseworker = bearer(system.token_for("caseworker"))
    with system.http() as http:
        for count, periods in DATA_SET:
            for _ in range(count):
                citizen = register(http, caseworker)
                base = f"/v1/citizens/{citizen['id']}"
                for start, end, reason in periods:
                    r = http.post(f"{base}/enrolments", headers=caseworker,
                                  json={"enrolled_on": start, "referral_source": "police"})
                    assert r.status_code == 201, r.text
                    if end:
                        r = http.post(f"{base}/exit", headers=caseworker,
                                      json={"exited_on": end, "reason": reason})
                        assert r.status_code == 200, r.text
        # People registered but never enrolled are in no count.
        register(http, caseworker)
    return system


@pytest.mark.parametrize("as_of", [
    "2024-09-30",  # before anyone
    "2024-12-31",  # only the previous year's group (5): full-year persons of 2024
    "2025-01-31",  # the day that group exits: not active any more
    "2025-06-15",  # during
    "2025-09-01",  # an exit day
    "2025-12-31",  # after the last change
    "2026-03-01",  # next year: only the still active count for full-year persons
])
def test_report_matches_the_periods(loaded: System, as_of: str) -> None:
    analyst = bearer(loaded.token_for("analyst"))
    response = loaded.http().get("/v1/reports/enrolment", params={"as_of": as_of},
                                 headers=analyst)
    assert response.status_code == 200, response.text
    assert response.json() == expected(date.fromisoformat(as_of))


def test_the_figures_of_one_day_by_hand(loaded: System) -> None:
    """The expected() model, checked once against figures worked out by hand."""
    body = loaded.http().get("/v1/reports/enrolment", params={"as_of": "2025-12-31"},
                             headers=bearer(loaded.token_for("team_lead"))).json()
    assert body["enrolled_since_start"] == 29
    assert body["active"] == 7 and body["exited"] == 22
    assert body["exit_reasons"] == {"job": 6, "education": 7, "benefit_ended": 5,
                                    "imprisonment": None, "death": None, "moved": None,
                                    "other": None}
    assert body["exits"] == {"job_or_education": 13, "benefit_ended": 5, "other": None}


def test_before_anyone_every_count_is_zero_not_suppressed(loaded: System) -> None:
    body = loaded.http().get("/v1/reports/enrolment", params={"as_of": "2020-01-01"},
                             headers=bearer(loaded.token_for("analyst"))).json()
    assert body["enrolled_since_start"] == 0 and body["active"] == 0
    assert body["full_year_persons"] == 0.0


def test_report_roles(loaded: System) -> None:
    with loaded.http() as http:
        for role in ("caseworker", "admin", "auditor", "police"):
            response = http.get("/v1/reports/enrolment",
                                headers=bearer(loaded.token_for(role)))
            assert_problem(response, 403, "insufficient_scope")
        analyst = bearer(loaded.token_for("analyst"))
        # No such day; a number of seconds; the calendar's last day (no day after it).
        for as_of in ("2025-13-01", "1767225600", "9999-12-31"):
            bad = http.get("/v1/reports/enrolment", params={"as_of": as_of}, headers=analyst)
            assert_problem(bad, 422, "validation_error")
        today = http.get("/v1/reports/enrolment", headers=bearer(loaded.token_for("analyst")))
        assert today.json()["as_of"] == local_today().isoformat()
